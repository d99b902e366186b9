#!/usr/bin/env bash
# The CPU test suite under AddressSanitizer (with LeakSanitizer) and UndefinedBehaviorSanitizer.
# Builds into build-asan/ (the library, fa2-tune and the tests, all instrumented: the CLI tests run
# fa2-tune as a subprocess, which then reports its own findings) and fails on the first finding.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFA2JIT_SANITIZE=address,undefined
# Only what the CPU suite runs: the GPU suite and the benchmark add build time and nothing to check here.
cmake --build build-asan -j"$(nproc)" --target fa2jit_cpu_tests fa2-tune

# halt_on_error/abort_on_error: a finding ends the process with a non-zero status. A fa2-tune
# subprocess that dies that way might still satisfy a test that expects it to fail, so every report
# also goes to a file under $reports (log_path appends the pid), and any such file fails the run.
# No LeakSanitizer suppressions: NVRTC (prebuilt, uninstrumented) runs in the suite and leaks nothing
# LSan sees; libcuda is never loaded on the CPU machines.
reports=$(mktemp -d "${TMPDIR:-/tmp}/fa2jit_sanitize.XXXXXX")
trap 'rm -rf "$reports"' EXIT
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1:log_path=$reports/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan"
status=0
build-asan/fa2jit_cpu_tests || status=$?
if compgen -G "$reports/*" >/dev/null; then
  for report in "$reports"/*; do
    echo "sanitize.sh: report $(basename "$report"):" >&2
    cat "$report" >&2
  done
  status=1
fi
if ((status != 0)); then
  echo "sanitize.sh: FAILED" >&2
  exit "$status"
fi
echo "sanitize.sh: the CPU suite passed under ASan, LSan and UBSan with no reports"
