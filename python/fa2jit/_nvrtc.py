"""Finding NVRTC for libfa2jit.so when the dynamic loader does not.

libfa2jit.so links NVRTC (libnvrtc.so.<CUDA major>) and finds it the way any library does: LD_LIBRARY_PATH,
its RUNPATH (the toolkit directory it was built against) and ld.so.conf. Two places a user may have NVRTC
are not on that path: NVIDIA's `nvidia-cuda-nvrtc` wheel in site-packages (what torch installs), and a
toolkit unpacked without an ld.so.conf entry. When loading fails for want of NVRTC, the library is loaded
again after NVRTC is preloaded from one of those; when neither has it, the error says what to install.
"""

import ctypes
import os
import re
import sys

_SONAME = re.compile(r"(libnvrtc\.so\.(\d+))")


def missing_soname(error):
    """The NVRTC soname an OSError from dlopen says it could not find, e.g. ("libnvrtc.so.13", 13)."""
    match = _SONAME.search(str(error))
    return (match.group(1), int(match.group(2))) if match else None


def wheel_name(major):
    """The pip requirement of NVIDIA's NVRTC wheel for a CUDA major version."""
    return f"nvidia-cuda-nvrtc-cu{major}" if major <= 12 else f"nvidia-cuda-nvrtc=={major}.*"


def search_dirs(major):
    """Where NVRTC is looked for, in order: the wheel's library folder under each sys.path entry (CUDA 13
    wheels install nvidia/cu13/lib, CUDA 12 ones nvidia/cuda_nvrtc/lib), then a toolkit's lib64 and lib
    under $CUDA_HOME, $CUDA_PATH and /usr/local/cuda."""
    dirs = []
    for entry in sys.path:
        for wheel_dir in (f"cu{major}", "cuda_nvrtc"):
            dirs.append(os.path.join(entry or os.getcwd(), "nvidia", wheel_dir, "lib"))
    roots = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    for root in filter(None, roots):
        dirs += [os.path.join(root, "lib64"), os.path.join(root, "lib")]
    return list(dict.fromkeys(dirs))


def preload(soname, major):
    """Loads NVRTC from the first search dir that has it, globally, so that libfa2jit.so's NEEDED entry
    resolves to it. NVRTC opens its builtins library (libnvrtc-builtins.so.<major>.<minor>) by name at
    its first compile, so a builtins library beside it is loaded first the same way. Returns the folder
    it came from, or None with nothing loaded."""
    for folder in search_dirs(major):
        path = os.path.join(folder, soname)
        if not os.path.isfile(path):
            continue
        for name in sorted(os.listdir(folder)):
            if re.fullmatch(rf"libnvrtc-builtins\.so\.{major}\.\d+", name):
                ctypes.CDLL(os.path.join(folder, name), mode=ctypes.RTLD_GLOBAL)
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        return folder
    return None


def missing_message(library_path, soname, major):
    """What to do when no NVRTC was found for the library at library_path."""
    roots = [name for name in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(name)]
    return (f"fa2jit's library {library_path} needs NVRTC ({soname}, CUDA {major}), which is not installed "
            f"where fa2jit looks: install NVIDIA's wheel (pip install \"{wheel_name(major)}\"), or the CUDA {major} "
            f"toolkit with its lib64 on the loader path (an /etc/ld.so.conf.d entry, or "
            f"LD_LIBRARY_PATH=/usr/local/cuda/lib64). Looked on the loader path, in nvidia/cu{major}/lib and "
            f"nvidia/cuda_nvrtc/lib under each sys.path entry, and in lib64 and lib of "
            + ", ".join([f"${name}" for name in roots] + ["/usr/local/cuda"]))
