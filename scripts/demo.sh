#!/usr/bin/env bash
# The whole path on a fresh machine: dependencies, build, then generate + compile the default
# causal bf16 d=128 kernel for sm_90a and print its resource report. Compiling needs no GPU; when
# one is present, the default kernel is also run and checked against an fp32 reference.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/deps.sh
./scripts/build.sh

echo
echo "== fa2-tune emit --head-dim 128 --dtype bf16 --causal --arch sm_90a --compile"
build/fa2-tune emit --head-dim 128 --dtype bf16 --causal --arch sm_90a --compile

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo
  echo "== fa2-tune check"
  build/fa2-tune check
else
  echo
  echo "No GPU found (nvidia-smi -L failed): skipping fa2-tune check."
fi
