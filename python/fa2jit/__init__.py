"""fa2jit: FlashAttention-2 forward with kernels generated and compiled for this GPU at run time.

    o = fa2jit.forward(q, k, v, causal=True)          # q [B, Sq, Hq, D], k/v [B, Sk, Hkv, D]

Importing never needs the library, a GPU or torch; a call that needs them raises Fa2Error saying what
is missing. Forward only: the outputs carry no autograd graph.
"""

import contextlib
import ctypes
import math
import os

from ._lib import (ERROR_ARGUMENT, ERROR_CACHE, ERROR_CODEGEN, ERROR_COMPILE, ERROR_CONFIG, ERROR_DRIVER,
                   ERROR_INTERNAL, ERROR_LAUNCH, ERROR_TUNE, OK, Fa2Error, ForwardArgs, candidate_paths)
from . import _lib, _tensors
from ._tensors import argument_error

__version__ = "0.1.0"

__all__ = ["forward", "config_name", "library_version", "Fa2Error", "LAYOUTS", "TUNE_POLICIES"] + [
    "OK", "ERROR_ARGUMENT", "ERROR_CONFIG", "ERROR_COMPILE", "ERROR_DRIVER", "ERROR_LAUNCH", "ERROR_CACHE",
    "ERROR_TUNE", "ERROR_CODEGEN", "ERROR_INTERNAL", "candidate_paths"]

# Dimension order of each layout as (batch, seqlen, heads, head_dim) positions.
LAYOUTS = {"bshd": (0, 1, 2, 3), "bhsd": (0, 2, 1, 3)}
TUNE_POLICIES = {None: -1, "on-first-use": 0, "heuristic": 1, "cache-only": 2}
_INT_MAX = 2**31 - 1


def library_version():
    """The loaded library's version string; raises Fa2Error when it cannot be loaded."""
    lib, _ = _lib.library()
    return lib.fa2_version().decode()


def _dims(name, view, layout):
    if len(view.shape) != 4:
        axes = "[B, S, H, D]" if layout == "bshd" else "[B, H, S, D]"
        raise argument_error(f"{name} must be 4-D {axes} for layout '{layout}', got shape {view.shape}")
    if view.strides[3] != 1:
        raise argument_error(f"{name}'s last dimension must be contiguous (stride 1), got strides {view.strides}")
    order = LAYOUTS[layout]
    dims = tuple(view.shape[i] for i in order)
    if max(dims) > _INT_MAX:
        raise argument_error(f"{name} shape {view.shape} has a dimension over {_INT_MAX}")
    strides = (view.strides[order[0]], view.strides[order[2]], view.strides[order[1]])  # batch, head, row
    return dims, strides


def _same(name, view, ref, what):
    if view.dtype != ref.dtype:
        raise argument_error(f"{name} is {_tensors.DTYPE_NAMES[view.dtype]} but q is "
                             f"{_tensors.DTYPE_NAMES[ref.dtype]}; {what} must match q's dtype")
    if view.device is not None and ref.device is not None and view.device != ref.device:
        raise argument_error(f"{name} is on {view.device} but q is on {ref.device}")


def _scale(softmax_scale):
    if softmax_scale is None:
        return 0.0  # the C API's "1/sqrt(head_dim)"
    scale = float(softmax_scale)
    if not (math.isfinite(scale) and scale > 0):
        raise argument_error(f"softmax_scale {softmax_scale!r} must be finite and positive (None: 1/sqrt(D))")
    return scale


def _policy(tune):
    if tune not in TUNE_POLICIES:
        raise argument_error(f"tune={tune!r} is not a policy: use None ($FA2JIT_TUNE, else on-first-use), "
                             "'on-first-use', 'heuristic' or 'cache-only'")
    return TUNE_POLICIES[tune]


def _prepare(q, k, v, out, causal, softmax_scale, layout, tune, cache_path):
    """Checks the inputs and fills ForwardArgs except o and lse. Returns (args, q view, out view)."""
    if layout not in LAYOUTS:
        raise argument_error(f"layout={layout!r} is not one of {sorted(LAYOUTS)}")
    qv, kv, vv = _tensors.view("q", q), _tensors.view("k", k), _tensors.view("v", v)
    (batch, seqlen_q, heads_q, head_dim), q_strides = _dims("q", qv, layout)
    k_dims, k_strides = _dims("k", kv, layout)
    v_dims, v_strides = _dims("v", vv, layout)
    _same("k", kv, qv, "k")
    _same("v", vv, qv, "v")
    if k_dims != v_dims:
        raise argument_error(f"k shape {kv.shape} and v shape {vv.shape} differ")
    if k_dims[0] != batch or k_dims[3] != head_dim:
        raise argument_error(f"k shape {kv.shape} does not match q shape {qv.shape} in batch or head_dim")
    heads_kv = k_dims[2]
    if heads_kv < 1 or heads_q % heads_kv != 0:
        raise argument_error(f"q's {heads_q} heads are not a multiple of k/v's {heads_kv} heads")
    ov = None
    o_strides = q_strides
    if out is not None:
        ov = _tensors.view("out", out, writable=True)
        _same("out", ov, qv, "out")
        if ov.shape != qv.shape:
            raise argument_error(f"out shape {ov.shape} differs from q shape {qv.shape}")
        _, o_strides = _dims("out", ov, layout)

    args = ForwardArgs()
    args.struct_size = ctypes.sizeof(ForwardArgs)
    args.dtype = qv.dtype
    args.q, args.k, args.v = qv.ptr, kv.ptr, vv.ptr
    args.batch, args.heads_q, args.heads_kv = batch, heads_q, heads_kv
    args.seqlen_q, args.seqlen_k, args.head_dim = seqlen_q, k_dims[1], head_dim
    for tensor, strides in zip("qkvo", (q_strides, k_strides, v_strides, o_strides)):
        for part, stride in zip(("batch", "head", "row"), strides):
            setattr(args, f"{tensor}_{part}_stride", stride)
    args.causal = 1 if causal else 0
    args.softmax_scale = _scale(softmax_scale)
    args.tune_policy = _policy(tune)
    args.cache_path = os.fsencode(cache_path) if cache_path is not None else None
    return args, qv, ov


def _stream_handle(stream, qv):
    if stream is None:
        if qv.tensor is None:
            return 0  # the legacy default stream
        return _tensors.import_torch().cuda.current_stream(qv.device).cuda_stream
    if isinstance(stream, int):
        return stream
    for attribute in ("cuda_stream", "ptr"):  # torch.cuda.Stream, cupy.cuda.Stream
        if hasattr(stream, attribute):
            return int(getattr(stream, attribute))
    raise argument_error(f"stream {stream!r} is not an int handle or an object with .cuda_stream or .ptr")


def _on_device(qv):
    """Makes q's device current, so that fa2jit runs in the context torch uses for it."""
    if qv.device is None:
        return contextlib.nullcontext()
    return _tensors.import_torch().cuda.device(qv.device)


def forward(q, k, v, *, causal=False, softmax_scale=None, return_lse=False, layout="bshd", out=None,
            tune=None, cache_path=None, stream=None):
    """softmax(q k^T * softmax_scale) v, enqueued on the current torch stream of q's device.

    q: [B, Sq, Hq, D] ("bshd") or [B, Hq, Sq, D] ("bhsd"); k, v likewise with Hkv heads dividing Hq.
    float16 or bfloat16 CUDA tensors with a contiguous last dimension; other strides are passed as is.
    causal masks bottom-right aligned. tune: None, "on-first-use", "heuristic" or "cache-only".
    out: a tensor shaped like q to write into (required when q is not a torch tensor).
    Returns O, or (O, LSE) with LSE float32 [B, Hq, Sq] (natural log) when return_lse.
    """
    args, qv, ov = _prepare(q, k, v, out, causal, softmax_scale, layout, tune, cache_path)
    torch = _tensors.import_torch()
    if ov is None:
        if qv.tensor is None:
            raise argument_error("q is not a torch tensor, so fa2jit cannot allocate O: pass out=")
        out = torch.empty_like(qv.tensor)
        ov = _tensors.view("out", out, writable=True)
        _, o_strides = _dims("out", ov, layout)
        args.o_batch_stride, args.o_head_stride, args.o_row_stride = o_strides
    args.o = ov.ptr
    lse = None
    if return_lse:
        if qv.tensor is None:
            raise argument_error("return_lse=True needs q to be a torch tensor (the LSE is allocated with torch)")
        lse = torch.empty((args.batch, args.heads_q, args.seqlen_q), dtype=torch.float32, device=qv.device)
        args.lse = lse.data_ptr()
    lib, _ = _lib.library()
    with _on_device(qv):
        handle = _stream_handle(stream, qv)
        _lib.check(lib, lib.fa2_forward(ctypes.byref(args), ctypes.c_void_p(handle)))
    return (out, lse) if return_lse else out


def config_name(q, k, v, *, causal=False, softmax_scale=None, return_lse=False, layout="bshd", out=None,
                tune=None, cache_path=None, stream=None):
    """The name of the kernel config forward() would use for these arguments (resolving it by the
    tune policy, which may tune). Takes forward()'s arguments; nothing is written."""
    del return_lse, stream  # they do not select the kernel
    args, qv, ov = _prepare(q, k, v, out, causal, softmax_scale, layout, tune, cache_path)
    args.o = (ov or qv).ptr  # only checked, never written: no output is needed for the query
    lib, _ = _lib.library()
    buffer = ctypes.create_string_buffer(256)
    with _on_device(qv):
        _lib.check(lib, lib.fa2_forward_config_name(ctypes.byref(args), buffer, len(buffer)))
    return buffer.value.decode()
