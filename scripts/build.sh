#!/usr/bin/env bash
# Configures and builds fa2jit (library, fa2-tune, tests) into build/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
