#!/usr/bin/env bash
# The fleet path on the GPU machine: tune one class of the forward and of the KV-cache forward into a
# cache, ship it read-only (the file 0444 in a 0555 directory, read by another user, as from a container
# image), and check that a process given only that cache through FA2JIT_CACHE_PATH tunes nothing,
# compiles nothing, loads every cubin from it, and writes nothing there.
#
#   ./scripts/fleet_check.sh [BUILD_DIR]    (a build with fa2-tune and libfa2jit.so; default build-gpu)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=$(realpath "${1:-build-gpu}")
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
chmod 755 "$work"
mkdir "$work/image" "$work/bin"
# The other user reads the tool from here (the checkout may sit in a directory only its owner may enter).
cp "$bin/fa2-tune" "$bin/libfa2jit.so" "$work/bin/"
chmod -R a+rX "$work/bin"
export LD_LIBRARY_PATH="$work/bin:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
tuned="$work/tuned.db"
db="$work/image/kernels.db"

echo "== tune into $tuned, export to $db (what the README says to ship)"
"$bin/fa2-tune" --db "$tuned" tune --pass fwd --head-dim 64 --dtype bf16 --causal on --batch 1 --heads 8 --seqlen 512
"$bin/fa2-tune" --db "$tuned" tune --pass kvc --head-dim 128 --dtype bf16 --causal on --batch 1 --heads 32 \
  --heads-kv 8 --seqlen 1 --seqlen-k 8192
"$bin/fa2-tune" --db "$tuned" export "$db"
chmod 0444 "$db"
chmod 0555 "$work/image"

# Another user, who may not write the image (root would ignore the modes).
as_reader() {
  if [ "$(id -u)" != 0 ]; then
    "$@"
  elif command -v setpriv >/dev/null; then
    setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
  else
    su -s /bin/sh nobody -c "$(printf '%q ' "$@")"
  fi
}

failed=0
check() {  # check NAME ARGS...: fa2-tune check from the read-only cache only
  local name=$1
  shift
  local output
  output=$(as_reader env HOME=/nonexistent FA2JIT_CACHE_PATH="$work/image" LD_LIBRARY_PATH="$LD_LIBRARY_PATH" \
    "$work/bin/fa2-tune" check --policy on-first-use "$@" 2>&1) || true
  echo "$output"
  if grep -q "compiled 0, cubins from cache 1, tuned 0, cubins rejected 0, cache faults 0" <<<"$output" &&
    grep -q "PASS" <<<"$output"; then
    echo "fleet $name: PASS (served from the read-only cache: no tuning, no compile)"
  else
    echo "fleet $name: FAIL"
    failed=1
  fi
}
check fwd --head-dim 64 --dtype bf16 --causal --batch 1 --heads 8 --seqlen-q 512 --seqlen-k 512
check kvc --pass kvc --head-dim 128 --dtype bf16 --causal --batch 1 --heads 32 --heads-kv 8 --seqlen-q 1 \
  --seqlen-k 8192

if [ "$(ls -A "$work/image")" != "kernels.db" ]; then
  echo "fleet: FAIL: files appeared beside the read-only cache: $(ls -A "$work/image" | tr '\n' ' ')"
  failed=1
fi
exit $failed
