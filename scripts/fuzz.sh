#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with clang (ASan + UBSan, into build-fuzz/) and runs each for
# FA2JIT_FUZZ_SECONDS (default 60), starting from the seeds in fuzz/corpus/<target>/. Fails on the
# first crash, sanitizer report, uncaught exception, hang (-timeout) or blown memory limit; the input
# that did it is kept under build-fuzz/findings/ and its path printed. Reproduce one with
#   build-fuzz/<target> build-fuzz/findings/<target>/crash-...
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${FA2JIT_FUZZ_SECONDS:-60}
targets=(fuzz_config fuzz_cli fuzz_cache_row)

./scripts/deps.sh --fuzz
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DFA2JIT_FUZZ=ON \
  -DFA2JIT_BUILD_TESTS=OFF
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]}"

# New inputs go to a scratch corpus, never into the seeds in the repository; the targets' own temp
# files (fuzz_cache_row's databases) go under a TMPDIR removed at exit.
work=$(mktemp -d "${TMPDIR:-/tmp}/fa2jit_fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
export TMPDIR=$work
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

for target in "${targets[@]}"; do
  mkdir -p "$work/corpus/$target" "build-fuzz/findings/$target"
  dict=()
  [[ -f fuzz/$target.dict ]] && dict=(-dict="fuzz/$target.dict")
  echo "fuzz.sh: $target for ${seconds}s"
  # -timeout: an input taking over 10 s is a hang; -print_final_stats: the run count for the summary.
  if ! "build-fuzz/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="build-fuzz/findings/$target/" "${dict[@]}" "$work/corpus/$target" "fuzz/corpus/$target" \
    >"$work/$target.log" 2>&1; then
    tail -n 60 "$work/$target.log" >&2
    echo "fuzz.sh: $target FAILED; the input is in build-fuzz/findings/$target/" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$target.log")
  echo "fuzz.sh: $target ok: $runs inputs, corpus $(ls "$work/corpus/$target" | wc -l) files"
done
