#!/usr/bin/env bash
# Makes sure the build dependencies of fa2jit are present on a Debian/Ubuntu machine. Packages that
# are missing are installed with apt-get when running as root; any other user is told what to
# install, because a build without them would only fail later with a less clear message.
# The CUDA toolkit is not an apt package here (it comes from NVIDIA), so it is only checked.
#   deps.sh          what the build and the test suites need
#   deps.sh --fuzz   also clang with libFuzzer, for scripts/fuzz.sh only (gcc has no libFuzzer)
#   deps.sh --package  also python3-venv where python3 cannot make a virtual environment with pip
#                      (Debian splits ensurepip out), for scripts/package_check.sh only
set -euo pipefail

packages=(cmake make g++ libfmt-dev libcli11-dev libsqlite3-dev doctest-dev)
# libclang-rt-dev holds libFuzzer and the sanitizer runtimes of the distribution's clang; clang only
# recommends it, and apt-get below skips recommendations.
[[ ${1:-} == --fuzz ]] && packages+=(clang libclang-rt-dev)
if [[ ${1:-} == --package ]] && ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
  packages+=(python3-venv)
fi

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$package")
    fi
  done
else
  echo "deps.sh: no dpkg on this machine; make sure these are installed: ${packages[*]}" >&2
fi

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "deps.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "deps.sh: missing packages: ${missing[*]}" >&2
    echo "deps.sh: install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

# NVRTC and the CUDA headers come from the toolkit; the driver (libcuda) is only needed to run
# kernels and is looked up at run time, so it is not checked here. CMake finds the toolkit through
# nvcc on PATH or at /usr/local/cuda, so those are the places checked.
if ! command -v nvcc >/dev/null 2>&1 && [[ ! -x /usr/local/cuda/bin/nvcc ]] &&
  ! compgen -G "/usr/local/cuda/lib64/libnvrtc.so*" >/dev/null; then
  echo "deps.sh: CUDA toolkit not found (no nvcc on PATH, nothing at /usr/local/cuda)." >&2
  echo "deps.sh: fa2jit needs its headers and NVRTC: install the CUDA toolkit from NVIDIA." >&2
  exit 1
fi
