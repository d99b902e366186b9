"""Finding, loading and describing libfa2jit.so through ctypes.

Loading is deferred to the first call so that `import fa2jit` works on machines without the
library, a driver or a GPU; the failure then surfaces as an Fa2Error naming the paths tried.
"""

import ctypes
import os
import threading

from . import _nvrtc

ABI_VERSION = 3  # FA2_ABI_VERSION of include/fa2jit/fa2jit.h this binding was written against

OK = 0
ERROR_ARGUMENT = 1
ERROR_CONFIG = 2
ERROR_COMPILE = 3
ERROR_DRIVER = 4
ERROR_LAUNCH = 5
ERROR_CACHE = 6
ERROR_TUNE = 7
ERROR_CODEGEN = 8
ERROR_INTERNAL = 9

STATUS_NAMES = {
    OK: "ok", ERROR_ARGUMENT: "argument", ERROR_CONFIG: "config", ERROR_COMPILE: "compile",
    ERROR_DRIVER: "driver", ERROR_LAUNCH: "launch", ERROR_CACHE: "cache", ERROR_TUNE: "tune",
    ERROR_CODEGEN: "codegen", ERROR_INTERNAL: "internal",
}


class Fa2Error(RuntimeError):
    """A failed fa2jit call. `status` is the C status code (ERROR_*), or None when the library
    itself could not be loaded."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status
        self.status_name = STATUS_NAMES.get(status, "library" if status is None else "unknown")


# The built-in variants, appended to each struct (fa2jit.h: window, softcap, ALiBi; all zero is off).
VARIANT_FIELDS = [
    ("window", ctypes.c_int),
    ("window_left", ctypes.c_int),
    ("window_right", ctypes.c_int),
    ("softcap", ctypes.c_float),
    ("alibi_slopes", ctypes.c_void_p),
    ("alibi_slopes_batch_stride", ctypes.c_int64),
]


# The user modifications, appended to the forward and backward structs after the variants (fa2jit.h: score_mod,
# score_mod_grad, mask_mod and up to MAX_EXTRA_ARRAYS named read-only device arrays; NULL / 0 is off).
MAX_EXTRA_ARRAYS = 4
EXTRA_TYPES = {"int32": 0, "int64": 1, "float32": 2, "uint8": 3}
USER_MOD_FIELDS = [
    ("score_mod", ctypes.c_char_p),
    ("score_mod_grad", ctypes.c_char_p),
    ("mask_mod", ctypes.c_char_p),
    ("num_extra", ctypes.c_int),
    ("extra_names", ctypes.c_char_p * MAX_EXTRA_ARRAYS),
    ("extra_types", ctypes.c_int * MAX_EXTRA_ARRAYS),
    ("extra_data", ctypes.c_void_p * MAX_EXTRA_ARRAYS),
]


class ForwardArgs(ctypes.Structure):
    """fa2_forward_args; field for field the C struct (checked against the library on load)."""

    _fields_ = [
        ("struct_size", ctypes.c_int),
        ("dtype", ctypes.c_int),
        ("q", ctypes.c_void_p),
        ("k", ctypes.c_void_p),
        ("v", ctypes.c_void_p),
        ("o", ctypes.c_void_p),
        ("lse", ctypes.c_void_p),
        ("batch", ctypes.c_int),
        ("heads_q", ctypes.c_int),
        ("heads_kv", ctypes.c_int),
        ("seqlen_q", ctypes.c_int),
        ("seqlen_k", ctypes.c_int),
        ("head_dim", ctypes.c_int),
    ] + [
        (f"{tensor}_{part}_stride", ctypes.c_int64)
        for tensor in "qkvo"
        for part in ("batch", "head", "row")
    ] + [
        ("causal", ctypes.c_int),
        ("softmax_scale", ctypes.c_float),
        ("tune_policy", ctypes.c_int),
        ("cache_path", ctypes.c_char_p),
    ] + VARIANT_FIELDS + USER_MOD_FIELDS


class BackwardArgs(ctypes.Structure):
    """fa2_backward_args; field for field the C struct (checked against the library on load). ctypes
    inserts the same padding a C compiler does (before `workspace` and `cache_path` on LP64)."""

    _fields_ = [
        ("struct_size", ctypes.c_int),
        ("dtype", ctypes.c_int),
        ("q", ctypes.c_void_p),
        ("k", ctypes.c_void_p),
        ("v", ctypes.c_void_p),
        ("o", ctypes.c_void_p),
        ("lse", ctypes.c_void_p),
        ("dout", ctypes.c_void_p),
        ("dq", ctypes.c_void_p),
        ("dk", ctypes.c_void_p),
        ("dv", ctypes.c_void_p),
        ("batch", ctypes.c_int),
        ("heads_q", ctypes.c_int),
        ("heads_kv", ctypes.c_int),
        ("seqlen_q", ctypes.c_int),
        ("seqlen_k", ctypes.c_int),
        ("head_dim", ctypes.c_int),
    ] + [
        (f"{tensor}_{part}_stride", ctypes.c_int64)
        for tensor in ("q", "k", "v", "o", "dout", "dq", "dk", "dv")
        for part in ("batch", "head", "row")
    ] + [
        ("causal", ctypes.c_int),
        ("softmax_scale", ctypes.c_float),
        ("deterministic", ctypes.c_int),
        ("workspace", ctypes.c_void_p),
        ("workspace_bytes", ctypes.c_size_t),
        ("tune_policy", ctypes.c_int),
        ("cache_path", ctypes.c_char_p),
    ] + VARIANT_FIELDS + USER_MOD_FIELDS


class KvcacheArgs(ctypes.Structure):
    """fa2_kvcache_args; field for field the C struct (checked against the library on load)."""

    _fields_ = [
        ("struct_size", ctypes.c_int),
        ("dtype", ctypes.c_int),
        ("q", ctypes.c_void_p),
        ("k", ctypes.c_void_p),
        ("v", ctypes.c_void_p),
        ("o", ctypes.c_void_p),
        ("lse", ctypes.c_void_p),
        ("cache_seqlens", ctypes.c_void_p),
        ("block_table", ctypes.c_void_p),
        ("block_table_stride", ctypes.c_int),
        ("page_size", ctypes.c_int),
        ("num_pages", ctypes.c_int),
        ("cu_seqlens_q", ctypes.c_void_p),
        ("cu_seqlens_k", ctypes.c_void_p),
        ("total_q", ctypes.c_int),
        ("k_new", ctypes.c_void_p),
        ("v_new", ctypes.c_void_p),
        ("seqlen_new", ctypes.c_int),
    ] + [
        (f"{tensor}_new_{part}_stride", ctypes.c_int64)
        for tensor in "kv"
        for part in ("batch", "head", "row")
    ] + [
        ("batch", ctypes.c_int),
        ("heads_q", ctypes.c_int),
        ("heads_kv", ctypes.c_int),
        ("seqlen_q", ctypes.c_int),
        ("seqlen_k", ctypes.c_int),
        ("head_dim", ctypes.c_int),
    ] + [
        (f"{tensor}_{part}_stride", ctypes.c_int64)
        for tensor in "qkvo"
        for part in ("batch", "head", "row")
    ] + [
        ("causal", ctypes.c_int),
        ("softmax_scale", ctypes.c_float),
        ("num_splits", ctypes.c_int),
        ("workspace", ctypes.c_void_p),
        ("workspace_bytes", ctypes.c_size_t),
        ("tune_policy", ctypes.c_int),
        ("cache_path", ctypes.c_char_p),
    ] + VARIANT_FIELDS


# Each struct the binding passes by pointer, with the library function reporting its C size.
STRUCTS = {"fa2_forward_args": (ForwardArgs, "fa2_forward_args_size"),
           "fa2_backward_args": (BackwardArgs, "fa2_backward_args_size"),
           "fa2_kvcache_args": (KvcacheArgs, "fa2_kvcache_args_size")}


def _package_dir():
    return os.path.dirname(os.path.abspath(__file__))


def candidate_paths():
    """Where the library is looked for, in order. $FA2JIT_LIBRARY, when set, is the only place."""
    explicit = os.environ.get("FA2JIT_LIBRARY")
    if explicit:
        return [explicit]
    package = _package_dir()
    repo = os.path.dirname(os.path.dirname(package))
    return [
        os.path.join(package, "libfa2jit.so"),
        os.path.join(repo, "build", "libfa2jit.so"),
        os.path.join(repo, "build-gpu", "libfa2jit.so"),
    ]


def _declare(lib):
    forward_p = ctypes.POINTER(ForwardArgs)
    backward_p = ctypes.POINTER(BackwardArgs)
    kvcache_p = ctypes.POINTER(KvcacheArgs)
    signatures = {
        "fa2_forward": (ctypes.c_int, [forward_p, ctypes.c_void_p]),
        "fa2_forward_config_name": (ctypes.c_int, [forward_p, ctypes.c_char_p, ctypes.c_size_t]),
        "fa2_forward_args_size": (ctypes.c_int, []),
        "fa2_backward": (ctypes.c_int, [backward_p, ctypes.c_void_p]),
        "fa2_backward_config_name": (ctypes.c_int, [backward_p, ctypes.c_char_p, ctypes.c_size_t]),
        "fa2_backward_workspace_size": (ctypes.c_int, [backward_p, ctypes.POINTER(ctypes.c_size_t)]),
        "fa2_backward_args_size": (ctypes.c_int, []),
        "fa2_forward_with_kvcache": (ctypes.c_int, [kvcache_p, ctypes.c_void_p]),
        "fa2_kvcache_config_name": (ctypes.c_int, [kvcache_p, ctypes.c_char_p, ctypes.c_size_t]),
        "fa2_kvcache_workspace_size": (ctypes.c_int, [kvcache_p, ctypes.POINTER(ctypes.c_size_t)]),
        "fa2_kvcache_args_size": (ctypes.c_int, []),
        "fa2_last_error": (ctypes.c_char_p, []),
        "fa2_version": (ctypes.c_char_p, []),
        "fa2_abi_version": (ctypes.c_int, []),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes


def _open(path):
    lib = ctypes.CDLL(path)
    # The version is read before the other declarations: an older library may lack the newer functions,
    # and its version makes the better message.
    lib.fa2_abi_version.restype = ctypes.c_int
    lib.fa2_abi_version.argtypes = []
    abi = lib.fa2_abi_version()
    if abi != ABI_VERSION:
        raise Fa2Error(f"{path} has C ABI version {abi}, but this fa2jit package needs {ABI_VERSION}: "
                       "rebuild the library or use the package from the same checkout")
    _declare(lib)
    for struct_name, (struct, size_function) in STRUCTS.items():
        size = getattr(lib, size_function)()
        if size != ctypes.sizeof(struct):
            raise Fa2Error(f"{path} has a {size}-byte {struct_name} but the package's is "
                           f"{ctypes.sizeof(struct)} bytes: the package and the library disagree")
    return lib


def _open_finding_nvrtc(path):
    """_open(path), preloading NVRTC from the nvidia wheel or a toolkit when the loader did not find it."""
    try:
        return _open(path)
    except OSError as error:
        missing = _nvrtc.missing_soname(error)
        if missing is None:
            raise
        if _nvrtc.preload(*missing) is None:
            raise Fa2Error(_nvrtc.missing_message(path, *missing)) from None
        return _open(path)


_lock = threading.Lock()
_loaded = None  # (ctypes.CDLL, path) once loaded; failures are not remembered, so a fix takes effect


def library():
    """The loaded library and its path; raises Fa2Error naming every path tried."""
    global _loaded
    with _lock:
        if _loaded is not None:
            return _loaded
        tried = []
        for path in candidate_paths():
            if not os.path.exists(path):
                tried.append(f"{path} (no such file)")
                continue
            try:
                _loaded = (_open_finding_nvrtc(path), path)
                return _loaded
            except (OSError, AttributeError) as error:
                tried.append(f"{path} ({error})")
        hint = ("set FA2JIT_LIBRARY to the path of libfa2jit.so" if not os.environ.get("FA2JIT_LIBRARY")
                else "FA2JIT_LIBRARY must name a loadable libfa2jit.so")
        raise Fa2Error("fa2jit could not load its library libfa2jit.so; tried: " + "; ".join(tried) +
                       f". Build it (cmake --build build) or {hint}")


def last_error(lib):
    return lib.fa2_last_error().decode("utf-8", errors="replace")


def check(lib, status):
    if status != OK:
        raise Fa2Error(last_error(lib) or f"fa2jit call failed with status {status}", status)
