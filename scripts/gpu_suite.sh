#!/usr/bin/env bash
# Everything that needs the GPU, in one call: the GPU test suite, the CLI check, compute-sanitizer
# (memcheck, racecheck, synccheck) over the default configs of head dims 64, 128 and 256, and the
# resource report of those configs. Logs go to $OUT (or ./gpu-logs) and a summary is printed last.
#
#   ./scripts/gpu_suite.sh [BUILD_DIR]     BUILD_DIR defaults to build-gpu if present, else build.
#
# A build made on the CPU machine runs on the GPU machine: build there into build-gpu and carry it.
# FA2JIT_GPU_SUITE_QUICK=1 skips the full test matrix and the sanitizers (a quick look after a change).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir=${1:-}
if [ -z "$build_dir" ]; then
  if [ -x build-gpu/fa2jit_gpu_tests ]; then build_dir=build-gpu; else build_dir=build; fi
fi
if [ ! -x "$build_dir/fa2jit_gpu_tests" ]; then
  echo "== building into $build_dir"
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$build_dir" -j"$(nproc)" || exit 1
fi
logs=${OUT:-gpu-logs}
mkdir -p "$logs"
# The carried build's RPATH points at the CPU machine's checkout: name the library folders here.
export LD_LIBRARY_PATH="$PWD/$build_dir:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin="$build_dir"
status=0
summary=()
step() {  # step NAME LOGFILE COMMAND...: run, keep the log, record pass/fail
  local name=$1 log=$2
  shift 2
  local start=$SECONDS
  "$@" >"$logs/$log" 2>&1
  local rc=$?
  summary+=("$(printf '%-44s %s  (%ds, log %s)' "$name" "$([ $rc -eq 0 ] && echo PASS || echo "FAIL rc=$rc")" $((SECONDS - start)) "$log")")
  [ $rc -eq 0 ] || status=1
  return $rc
}

nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu --format=csv,noheader
test_filter=()
[ "${FA2JIT_GPU_SUITE_QUICK:-0}" = 1 ] && test_filter=(--test-case-exclude="*full matrix*")
step "GPU test suite" gpu_tests.log "$bin/fa2jit_gpu_tests" "${test_filter[@]}"
grep -E "test cases|assertions|Status" "$logs/gpu_tests.log" | tail -3
grep -c " ok$" "$logs/gpu_tests.log" | sed 's/^/matrix cases ok: /'
grep " FAIL$" "$logs/gpu_tests.log" | head -20
step "fa2-tune check (defaults)" check.log "$bin/fa2-tune" check
cat "$logs/check.log"

sanitizer_dims="64 128 256"
[ "${FA2JIT_GPU_SUITE_QUICK:-0}" = 1 ] && sanitizer_dims=""
: >"$logs/sanitizer.log"
for d in $sanitizer_dims; do
  for causal in "" "--causal"; do
    for tool in memcheck racecheck synccheck; do
      step "compute-sanitizer $tool d$d ${causal:---full}" sanitizer_step.log \
        compute-sanitizer --tool "$tool" --error-exitcode 9 "$bin/fa2-tune" check --head-dim "$d" $causal \
        --batch 1 --heads 2 --heads-kv 1 --seqlen-q 257 --seqlen-k 190
      # One log for all runs: only a few files come back from the GPU machine.
      { echo "### $tool d$d ${causal:---full}"; cat "$logs/sanitizer_step.log"; } >>"$logs/sanitizer.log"
    done
  done
done

echo
echo "== resources of the default configs (bf16, causal, sm_90a)"
for d in 64 128 256; do
  "$bin/fa2-tune" --verbose emit --head-dim "$d" --causal --arch sm_90a --compile 2>>"$logs/nvrtc.log" |
    grep -E "kernel|registers|spill|smem"
done

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
rm -f "$logs/sanitizer_step.log"
exit $status
