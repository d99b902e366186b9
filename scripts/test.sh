#!/usr/bin/env bash
# Dependencies, build, then every test suite. The GPU suite skips itself, saying why, on a machine
# with no GPU, so this is also what CI runs. Then the packages as a user installs them (pip install .,
# cmake --install + find_package), and the hardening steps: the CPU suite again under ASan/LSan/UBSan,
# and each fuzz target for FA2JIT_FUZZ_SECONDS (60 s by default; 0 skips fuzzing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/deps.sh
./scripts/build.sh
ctest --test-dir build --output-on-failure
# The Python package's CPU tests (GPU tests skip themselves with a reason where there is no GPU).
python3 -m pytest --version >/dev/null 2>&1 || python3 -m pip install --quiet pytest
PYTHONDONTWRITEBYTECODE=1 python3 -m pytest -p no:cacheprovider python/tests -q -rs
# The packages: pip install . in a fresh venv, and cmake --install of build/ with examples/consumer
# built against it.
./scripts/package_check.sh build

# Hardening, last so that a plain test failure is reported first. Each builds its own directory
# (build-asan/, build-fuzz/), which is most of their time on a 2-core CI machine.
./scripts/sanitize.sh
if [[ ${FA2JIT_FUZZ_SECONDS:-60} != 0 ]]; then
  ./scripts/fuzz.sh
fi
