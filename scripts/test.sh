#!/usr/bin/env bash
# Dependencies, build, then every test suite. The GPU suite skips itself, saying why, on a machine
# with no GPU, so this is also what CI runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/deps.sh
./scripts/build.sh
ctest --test-dir build --output-on-failure
