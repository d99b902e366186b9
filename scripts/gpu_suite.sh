#!/usr/bin/env bash
# Everything that needs the GPU, in one call. Parts (all by default, or name some in FA2JIT_GPU_PARTS):
#   tests      the GPU test suite (forward, backward and KV-cache correctness matrices, determinism, tuning
#              end to end) and `fa2-tune check` of every pass
#   tma        the warp-specialized forward (tma_ws, tma_ws_overlap, tma_ws_pingpong): its GPU tests, then
#              fa2-tune bench of each scheme against the default config on d64/128/256, seqlen 4096, each step capped
#              at 150 s so that a hang costs little; not in the default set
#   sanitizer  compute-sanitizer memcheck, racecheck and synccheck on the default forward, backward and
#              KV-cache configs of d64/128/256 (the KV cache paged and split), and on five configs of the
#              tma_ws forward schemes
#   resources  the resource report (registers, spills, shared memory) of those default configs
#   cli        fa2-tune tune (a model preset) into a fresh cache, then list, show and bench from it
#   fleet      scripts/fleet_check.sh: a cache shipped read-only serves another user's process with no
#              tuning, no compile and nothing written beside it
#   python     the Python package's tests (pytest python/tests) against torch SDPA
#   train      bench/train_check.py: a small transformer trained with fa2jit attention and with SDPA
#   bench      bench/tuner_bench: compile times, tuning time, first call, dispatch overhead, FA2 grid
#   sdpa       bench/bench_sdpa.py: fa2jit against PyTorch SDPA (flash, cuDNN) and FlexAttention; not in the default set,
#              takes FA2JIT_SDPA_ARGS (e.g. "--grid paper --db /tmp/k.db")
#   decode     bench/bench_decode.py: decode against a KV cache vs SDPA and the copy bandwidth; not in the
#              default set, takes FA2JIT_DECODE_ARGS (e.g. "--quick")
#   overhead   bench/bench_overhead.py: host time per call on a tiny problem, fa2jit's direct path and torch
#              operator vs SDPA; not in the default set, takes FA2JIT_OVERHEAD_ARGS
#   variants   bench/bench_variants.py: sliding window, softcap, ALiBi and document mask vs FlexAttention (and
#              SDPA where it can express them), forward and backward, cold compiles on both sides; not in the
#              default set, takes FA2JIT_VARIANTS_ARGS (e.g. "--quick" or "--pass fwd --seqlen 4096")
# Logs go to $OUT (or ./gpu-logs); a summary is printed last; the exit code is non-zero if any step failed.
#
#   ./scripts/gpu_suite.sh [BUILD_DIR]     BUILD_DIR defaults to build-gpu if present, else build.
#   FA2JIT_GPU_PARTS="tests cli" ./scripts/gpu_suite.sh
#
# A build made on the CPU machine runs on the GPU machine (which lacks sqlite3.h): build into
# build-gpu here and carry that folder. FA2JIT_GPU_SUITE_QUICK=1 skips the full test matrix.
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
parts=" ${FA2JIT_GPU_PARTS:-tests sanitizer resources cli fleet python train bench} "
want() { [[ $parts == *" $1 "* ]]; }
status=0
summary=()
step() {  # step NAME LOGFILE COMMAND...: run, append to the log, record pass/fail
  local name=$1 log=$2
  shift 2
  local start=$SECONDS
  { echo "### $name"; timeout --kill-after=10 "${FA2JIT_STEP_TIMEOUT:-540}" "$@"; } >>"$logs/$log" 2>&1
  local rc=$?
  summary+=("$(printf '%-46s %s  (%ds, log %s)' "$name" "$([ $rc -eq 0 ] && echo PASS || echo "FAIL rc=$rc")" $((SECONDS - start)) "$log")")
  [ $rc -eq 0 ] || status=1
  return $rc
}

nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu --format=csv,noheader

if want tests; then
  exclude=${FA2JIT_TEST_EXCLUDE:-}
  [ "${FA2JIT_GPU_SUITE_QUICK:-0}" = 1 ] && exclude="*full matrix*,*over its matrix*${exclude:+,$exclude}"
  test_filter=()
  [ -n "$exclude" ] && test_filter=(--test-case-exclude="$exclude")
  step "GPU test suite" gpu_tests.log "$bin/fa2jit_gpu_tests" "${test_filter[@]}"
  grep -E "test cases|assertions|Status" "$logs/gpu_tests.log" | tail -3
  grep -c " ok$" "$logs/gpu_tests.log" | sed 's/^/matrix cases ok: /'
  grep -E " FAIL$|ERROR" "$logs/gpu_tests.log" | head -20
  step "fa2-tune check (defaults)" check.log "$bin/fa2-tune" check
  step "fa2-tune check --pass bwd (defaults)" check.log "$bin/fa2-tune" check --pass bwd
  step "fa2-tune check --pass kvc (decode, paged)" check.log "$bin/fa2-tune" check --pass kvc --seqlen-q 1 \
    --seqlen-k 4133 --heads 32 --heads-kv 8 --page-size 16
  tail -6 "$logs/check.log"
fi

if want tma; then
  FA2JIT_STEP_TIMEOUT=150 step "tma_ws GPU tests" tma.log "$bin/fa2jit_gpu_tests" -tc='*tma_ws*'
  grep -E "test cases|assertions|Status|ERROR|FAIL" "$logs/tma.log" | tail -8
  # Timing a scheme whose tests fail or hang would only repeat the failure.
  [[ ${summary[-1]} == *PASS* ]] && for d in 64 128 256; do
    for causal in "" "--causal"; do
      for scheme in tma_ws tma_ws_overlap tma_ws_pingpong; do
        FA2JIT_STEP_TIMEOUT=60 step "fa2-tune bench $scheme d$d ${causal:---full}" tma.log "$bin/fa2-tune" bench \
          --scheme "$scheme" --head-dim "$d" $causal --batch 4 --heads 16 --seqlen-q 4096 --seqlen-k 4096
      done
    done
  done
  grep -vE "^###" "$logs/tma.log" | grep -iE "scheme|tma|default|fa2|TFLOP|error|mismatch" | head -60
fi

if want sanitizer; then
  for pass in fwd bwd; do
    for d in 64 128 256; do
      for causal in "" "--causal"; do
        for tool in memcheck racecheck synccheck; do
          step "compute-sanitizer $tool $pass d$d ${causal:---full}" sanitizer.log \
            compute-sanitizer --tool "$tool" --error-exitcode 9 "$bin/fa2-tune" check --pass "$pass" --head-dim "$d" \
            $causal --batch 1 --heads 2 --heads-kv 1 --seqlen-q 257 --seqlen-k 190
        done
      done
    done
  done
  # The KV cache: a decode step split over blocks (the combine kernel runs), paged, and a causal chunk.
  for d in 64 128 256; do
    for tool in memcheck racecheck synccheck; do
      step "compute-sanitizer $tool kvc d$d decode paged" sanitizer.log \
        compute-sanitizer --tool "$tool" --error-exitcode 9 "$bin/fa2-tune" check --pass kvc --head-dim "$d" \
        --batch 2 --heads 8 --heads-kv 2 --seqlen-q 1 --seqlen-k 3001 --page-size 16
      step "compute-sanitizer $tool kvc d$d chunk causal" sanitizer.log \
        compute-sanitizer --tool "$tool" --error-exitcode 9 "$bin/fa2-tune" check --pass kvc --head-dim "$d" \
        --causal --batch 1 --heads 4 --heads-kv 1 --seqlen-q 37 --seqlen-k 700
    done
  done
  # The warp-specialized forward (TMA loads into an mbarrier ring, setmaxnreg): two and three
  # consumer warpgroups and the overlapped variant, through fa2-tune bench, which checks the forced config
  # against the reference.
  for tiles in "tma_ws --head-dim 128 --causal" "tma_ws --head-dim 64 --warps 16 --block-m 192" \
    "tma_ws_overlap --head-dim 256" "tma_ws_pingpong --head-dim 128 --causal" \
    "tma_ws_pingpong --head-dim 64 --warps 16 --block-m 192"; do
    for tool in memcheck racecheck synccheck; do
      step "compute-sanitizer $tool fwd $tiles" sanitizer.log \
        compute-sanitizer --tool "$tool" --error-exitcode 9 "$bin/fa2-tune" bench --scheme $tiles \
        --batch 1 --heads 2 --heads-kv 1 --seqlen-q 257 --seqlen-k 190 --warmup 0 --repeats 1
    done
  done
  # The deterministic backward's ordering (semaphores across blocks), under the race and sync checkers too.
  for tool in memcheck racecheck synccheck; do
    step "compute-sanitizer $tool bwd d128 --causal --deterministic" sanitizer.log \
      compute-sanitizer --tool "$tool" --error-exitcode 9 "$bin/fa2-tune" check --pass bwd --deterministic \
      --head-dim 128 --causal --batch 1 --heads 4 --heads-kv 2 --seqlen-q 300 --seqlen-k 300
  done
fi

if want resources; then
  echo
  echo "== resources of the default configs (bf16, causal, sm_90a)"
  for pass in fwd bwd; do
    for d in 64 128 256; do
      "$bin/fa2-tune" --verbose emit --pass "$pass" --head-dim "$d" --causal --arch sm_90a --compile \
        2>>"$logs/nvrtc.log" | grep -E "kernel|registers|spill|stack|smem"
    done
  done
fi

if want cli; then
  db=$(mktemp -d)/kernels.db
  step "fa2-tune tune --model llama3-8b" cli.log "$bin/fa2-tune" --db "$db" tune --model llama3-8b --seqlen 4096 \
    --batch 2 --causal on
  step "fa2-tune list / show" cli.log bash -c "'$bin/fa2-tune' --db '$db' list && '$bin/fa2-tune' --db '$db' show \
    'bf16 d128 causal gqa4 bshd q4096 k4096 bh64' | head -20"
  step "fa2-tune bench (llama3-8b shape)" cli.log "$bin/fa2-tune" --db "$db" bench --head-dim 128 --causal --batch 2 \
    --heads 32 --heads-kv 8 --seqlen-q 4096 --seqlen-k 4096
  step "fa2-tune check --policy cache-only" cli.log "$bin/fa2-tune" --db "$db" check --policy cache-only \
    --head-dim 128 --causal --batch 2 --heads 32 --heads-kv 8 --seqlen-q 4096 --seqlen-k 4096
  tail -40 "$logs/cli.log"
fi

if want fleet; then
  step "fleet: a read-only shipped cache serves without tuning" fleet.log scripts/fleet_check.sh "$bin"
  grep -E "^fleet" "$logs/fleet.log"
fi

if want python; then
  step "python tests (pytest python/tests)" python.log env PYTHONDONTWRITEBYTECODE=1 \
    FA2JIT_LIBRARY="$PWD/$bin/libfa2jit.so" python3 -m pytest -p no:cacheprovider python/tests -q -rs
  tail -5 "$logs/python.log"
fi

if want train; then
  step "training check (bench/train_check.py)" train.log env PYTHONUNBUFFERED=1 \
    FA2JIT_LIBRARY="$PWD/$bin/libfa2jit.so" python3 bench/train_check.py
  tail -25 "$logs/train.log"
fi

if want bench; then
  # Compile and tuning times are taken cold: with a driver present NVRTC serves repeated compiles of the
  # same source from the driver's compute cache (~25 ms instead of ~0.3-1 s).
  step "tuner bench (tune cold, then first call)" bench.log env CUDA_CACHE_DISABLE=1 "$bin/fa2jit_tuner_bench" first-call
  step "tuner bench (compile cold)" bench.log env CUDA_CACHE_DISABLE=1 "$bin/fa2jit_tuner_bench" compile
  step "tuner bench (overhead)" bench.log "$bin/fa2jit_tuner_bench" overhead
  step "tuner bench (FA2 paper grid)" bench.log "$bin/fa2jit_tuner_bench" grid
  grep -vE "^###|^device" "$logs/bench.log"
fi

if want sdpa; then
  step "bench_sdpa.py ${FA2JIT_SDPA_ARGS:-}" sdpa.log env PYTHONUNBUFFERED=1 FA2JIT_LIBRARY="$PWD/$bin/libfa2jit.so" \
    python3 bench/bench_sdpa.py ${FA2JIT_SDPA_ARGS:-}
  grep -vE "^###" "$logs/sdpa.log" | tail -60
fi

if want decode; then
  step "bench_decode.py ${FA2JIT_DECODE_ARGS:-}" decode.log env PYTHONUNBUFFERED=1 \
    FA2JIT_LIBRARY="$PWD/$bin/libfa2jit.so" python3 bench/bench_decode.py ${FA2JIT_DECODE_ARGS:-}
  grep -vE "^###" "$logs/decode.log" | tail -30
fi

if want overhead; then
  step "bench_overhead.py ${FA2JIT_OVERHEAD_ARGS:-}" overhead.log env PYTHONUNBUFFERED=1 \
    FA2JIT_LIBRARY="$PWD/$bin/libfa2jit.so" python3 bench/bench_overhead.py ${FA2JIT_OVERHEAD_ARGS:-}
  grep -vE "^###" "$logs/overhead.log" | tail -12
fi

if want variants; then
  # Cold compiles for both contenders (as the bench part's tuner timings): Flex's Triton kernels and fa2jit's
  # NVRTC ones would otherwise come from the driver's compute cache on a second run.
  step "bench_variants.py ${FA2JIT_VARIANTS_ARGS:-}" variants.log env PYTHONUNBUFFERED=1 CUDA_CACHE_DISABLE=1 \
    FA2JIT_LIBRARY="$PWD/$bin/libfa2jit.so" python3 bench/bench_variants.py ${FA2JIT_VARIANTS_ARGS:-}
  grep -vE "^###" "$logs/variants.log" | tail -60
fi

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
exit $status
