"""Loading libfa2jit.so when its NVRTC is not on the loader path: preloaded from NVIDIA's wheel folder, or
an error naming what to install. A stand-in library (the C ABI's functions, linked to a stand-in NVRTC of a
CUDA major version no machine has) plays libfa2jit.so, so these run on any machine with a C compiler."""

import os
import re
import shutil
import subprocess
import sys

import pytest

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(PYTHON_DIR)
sys.path.insert(0, PYTHON_DIR)

import fa2jit  # noqa: E402
from fa2jit import _lib, _nvrtc  # noqa: E402

# Every function the binding declares, answering as a library of this ABI would.
STAND_IN_SOURCE = r"""
#include "fa2jit/fa2jit.h"
int nvrtc_stand_in(void);
int fa2_abi_version(void) { return FA2_ABI_VERSION + nvrtc_stand_in(); }
const char* fa2_version(void) { return "0.0-stand-in"; }
const char* fa2_last_error(void) { return ""; }
int fa2_forward_args_size(void) { return sizeof(fa2_forward_args); }
int fa2_backward_args_size(void) { return sizeof(fa2_backward_args); }
int fa2_kvcache_args_size(void) { return sizeof(fa2_kvcache_args); }
int fa2_forward(const fa2_forward_args* a, void* s) { (void)a; (void)s; return FA2_ERROR_INTERNAL; }
int fa2_backward(const fa2_backward_args* a, void* s) { (void)a; (void)s; return FA2_ERROR_INTERNAL; }
int fa2_forward_with_kvcache(const fa2_kvcache_args* a, void* s) { (void)a; (void)s; return FA2_ERROR_INTERNAL; }
int fa2_forward_config_name(const fa2_forward_args* a, char* b, size_t n) { (void)a; (void)b; (void)n; return 9; }
int fa2_backward_config_name(const fa2_backward_args* a, char* b, size_t n) { (void)a; (void)b; (void)n; return 9; }
int fa2_kvcache_config_name(const fa2_kvcache_args* a, char* b, size_t n) { (void)a; (void)b; (void)n; return 9; }
int fa2_backward_workspace_size(const fa2_backward_args* a, size_t* n) { (void)a; (void)n; return 9; }
int fa2_kvcache_workspace_size(const fa2_kvcache_args* a, size_t* n) { (void)a; (void)n; return 9; }
"""


def compiler():
    found = shutil.which("cc")
    if found is None:
        pytest.skip("no C compiler (cc) on PATH")
    return found


def shared_library(source, output, *flags):
    source_file = output.with_suffix(".c")
    source_file.write_text(source)
    subprocess.run([compiler(), "-std=c99", "-Wall", "-Werror", "-shared", "-fPIC", "-I", os.path.join(REPO, "include"),
                    str(source_file), "-o", str(output), *flags], check=True)


def stand_in_library(tmp_path, major):
    """A libfa2jit.so whose NEEDED holds libnvrtc.so.<major>, and the folder holding that NVRTC stand-in
    (not on any search path)."""
    nvrtc_dir = tmp_path / "nvrtc"
    nvrtc_dir.mkdir()
    soname = f"libnvrtc.so.{major}"
    shared_library("int nvrtc_stand_in(void) { return 0; }\n", nvrtc_dir / soname, f"-Wl,-soname,{soname}")
    library = tmp_path / "libfa2jit.so"
    shared_library(STAND_IN_SOURCE, library, "-Wl,--no-as-needed", "-L", str(nvrtc_dir), f"-l:{soname}")
    return library, nvrtc_dir / soname


@pytest.fixture
def fresh_loader(monkeypatch):
    monkeypatch.setattr(_lib, "_loaded", None)
    for name in ("CUDA_HOME", "CUDA_PATH"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_missing_nvrtc_names_it_and_what_to_install(tmp_path, fresh_loader):
    library, _ = stand_in_library(tmp_path, 97)
    fresh_loader.setenv("FA2JIT_LIBRARY", str(library))
    with pytest.raises(fa2jit.Fa2Error) as caught:
        fa2jit.library_version()
    message = str(caught.value)
    assert caught.value.status is None
    assert str(library) in message and "libnvrtc.so.97" in message
    assert 'pip install "nvidia-cuda-nvrtc==97.*"' in message and "LD_LIBRARY_PATH" in message


def test_nvrtc_in_the_nvidia_wheel_folder_is_preloaded(tmp_path, fresh_loader):
    library, nvrtc = stand_in_library(tmp_path, 98)
    wheel_lib = tmp_path / "site-packages" / "nvidia" / "cu98" / "lib"
    wheel_lib.mkdir(parents=True)
    shutil.copy(nvrtc, wheel_lib / nvrtc.name)
    # NVRTC dlopens its builtins by name at its first compile: they must be loaded beforehand.
    shared_library("int builtins_stand_in(void) { return 0; }\n", wheel_lib / "libnvrtc-builtins.so.98.0")
    fresh_loader.setattr(sys, "path", sys.path + [str(tmp_path / "site-packages")])
    fresh_loader.setenv("FA2JIT_LIBRARY", str(library))
    assert fa2jit.library_version() == "0.0-stand-in"
    with open("/proc/self/maps") as maps:
        mapped = maps.read()
    assert str(wheel_lib / "libnvrtc.so.98") in mapped and str(wheel_lib / "libnvrtc-builtins.so.98.0") in mapped


def test_nvrtc_names():
    assert _nvrtc.missing_soname(OSError("libnvrtc.so.13: cannot open shared object file")) == ("libnvrtc.so.13", 13)
    assert _nvrtc.missing_soname(OSError("libfmt.so.9: cannot open shared object file")) is None
    assert _nvrtc.wheel_name(12) == "nvidia-cuda-nvrtc-cu12"
    assert _nvrtc.wheel_name(13) == "nvidia-cuda-nvrtc==13.*"


def test_package_version_is_the_cmake_project_version():
    with open(os.path.join(REPO, "CMakeLists.txt")) as cmake:
        declared = re.search(r"project\(fa2jit VERSION ([0-9.]+)", cmake.read()).group(1)
    assert fa2jit.__version__ == declared
