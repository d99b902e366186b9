#!/usr/bin/env bash
# The two ways fa2jit is consumed outside this checkout, each checked from a fresh start:
#  1. Python: `pip install .` into a new virtual environment (the wheel builds the library again, ~2 min on
#     2 cores), then `import fa2jit` and fa2jit.library_version() from another directory, with the
#     library loaded from the installed package.
#  2. C/C++: `cmake --install` of BUILD_DIR (default build/, already built) into a temporary prefix, then
#     examples/consumer configured with find_package(fa2jit) against that prefix, built and run (it needs
#     no GPU). Every installed header must compile on its own, and only fa2jit/ headers are installed.
# Run by scripts/test.sh; on its own: scripts/package_check.sh [BUILD_DIR].
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
build_dir=$(realpath "${1:-build}")

./scripts/deps.sh --package

work=$(mktemp -d /tmp/fa2jit-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
step() { echo "package_check: $*"; }
seconds() { echo $((SECONDS - $1)); }

# 1. pip install . in a fresh venv; the import runs from $work, outside the checkout, with no
# FA2JIT_LIBRARY, so the library can only come from the installed package.
start=$SECONDS
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check --progress-bar off "$repo"
step "pip install . took $(seconds "$start") s"
(
  cd "$work"
  env -u FA2JIT_LIBRARY "$work/venv/bin/python" - "$work/venv" <<'EOF'
import os, sys
import fa2jit
from fa2jit import _lib
version = fa2jit.library_version()
path = _lib.library()[1]
print(f"package_check: import fa2jit: library_version() {version}, loaded from {path}")
assert os.path.realpath(path).startswith(os.path.realpath(sys.argv[1])), "the library did not come from the venv"
assert version == fa2jit.__version__, (version, fa2jit.__version__)
EOF
)
# What the wheel's library may need at run time: NVRTC, SQLite and the C/C++ runtime. Not libcuda (the
# driver is dlopen'ed, so import works without one) and not libfmt (compiled in).
wheel_lib=$(find "$work/venv" -name libfa2jit.so)
needed=$(readelf -d "$wheel_lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
step "the wheel's libfa2jit.so needs: $(echo $needed)"
unexpected=$(echo "$needed" | grep -Ev '^(libnvrtc\.so\.[0-9]+|libsqlite3\.so\.0|libstdc\+\+\.so\.6|libm\.so\.6|libgcc_s\.so\.1|libc\.so\.6|ld-linux-x86-64\.so\.2)$' || true)
if [[ -n $unexpected ]]; then
  echo "package_check: $wheel_lib needs libraries a user may not have: $(echo $unexpected)" >&2
  exit 1
fi

# 2. The installed C++ package and the example consumer built against it.
start=$SECONDS
prefix="$work/prefix"
cmake --install "$build_dir" --prefix "$prefix"
unexpected=$(cd "$prefix/include" && find . -type f ! -path "./fa2jit/*")
if [[ -n $unexpected ]]; then
  echo "package_check: headers installed outside include/fa2jit/: $unexpected" >&2
  exit 1
fi
for header in "$prefix"/include/fa2jit/*.hpp; do
  echo "#include <fa2jit/$(basename "$header")>" | c++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only \
    -I "$prefix/include" -x c++ -
done
echo "#include <fa2jit/fa2jit.h>" | cc -std=c99 -Wall -Wextra -pedantic -Werror -fsyntax-only -I "$prefix/include" -x c -
cmake -S examples/consumer -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release
cmake --build "$work/consumer" -j"$(nproc)"
"$work/consumer/fa2jit_consumer"
"$work/consumer/fa2jit_consumer_c"
step "cmake --install and examples/consumer took $(seconds "$start") s"
