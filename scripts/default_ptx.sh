#!/usr/bin/env bash
# PTX of the built-in forward and backward kernels (the mma.sync sm_80 and wgmma sm_90a schemes, both
# dtypes, causal and not, the deterministic and overlapped variants), one file per config, so that a
# template change meant to leave them alone can be checked to do so: run it before and after the change
# and diff the two folders (`diff -r BEFORE AFTER` must print nothing).
#
#   scripts/default_ptx.sh FA2_TUNE TEMPLATE_DIR OUT_DIR
#
# FA2_TUNE is the fa2-tune binary whose `emit` gives the generated sources, TEMPLATE_DIR the folder holding
# fa2/ that they include. Compiled with nvcc -ptx (no GPU needed), two at a time.
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 FA2_TUNE TEMPLATE_DIR OUT_DIR" >&2
  exit 2
fi
fa2_tune=$1
templates=$(cd "$2" && pwd)
out=$3
nvcc=${NVCC:-/usr/local/cuda/bin/nvcc}
mkdir -p "$out"

configs=()
for arch in sm_80 sm_90a; do
  for pass in fwd bwd; do
    for head_dim in 64 96 128 256; do
      configs+=("--pass $pass --arch $arch --head-dim $head_dim --dtype bf16")
      configs+=("--pass $pass --arch $arch --head-dim $head_dim --dtype bf16 --causal")
    done
    configs+=("--pass $pass --arch $arch --head-dim 128 --dtype fp16 --causal")
  done
  configs+=("--pass bwd --arch $arch --head-dim 128 --deterministic --causal")
done
configs+=("--pass fwd --arch sm_90a --head-dim 128 --scheme wgmma_overlap --causal")
configs+=("--pass fwd --arch sm_90a --head-dim 64 --scheme wgmma_overlap")
configs+=("--pass bwd --arch sm_90a --head-dim 128 --scheme wgmma_ss --causal")

compile_one() {
  local flags=$1
  local arch
  arch=$(sed -E 's/.*--arch ([a-z0-9_]+).*/\1/' <<<"$flags")
  local name
  name=$(tr ' ' '_' <<<"$flags" | tr -d '-')
  local source="$out/$name.cu"
  # shellcheck disable=SC2086
  "$fa2_tune" emit $flags >"$source"
  "$nvcc" -ptx -std=c++17 -arch="${arch/sm_/sm_}" -I"$templates" "$source" -o "$out/$name.ptx"
  rm -f "$source"
}
export -f compile_one
export fa2_tune templates out nvcc
printf '%s\n' "${configs[@]}" | xargs -P 2 -I{} bash -c 'compile_one "$@"' _ {}
ls "$out"/*.ptx | wc -l
