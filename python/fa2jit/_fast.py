"""The eager fast path of the forward and backward on torch tensors: what a call costs on the host.

A call through fa2jit.forward checks every argument in Python and builds a fresh ctypes struct: tens of
microseconds, more than a tiny attention takes on the GPU. Everything those checks read (shapes, strides,
dtypes, devices, flags, the tune policy and cache path) is put into a key here; the first call of a key
runs the full checks and keeps the filled struct, and later calls only allocate the outputs, write the data
pointers into the kept struct and call the library, which checks the pointers and dispatches by the problem
class as before. A key differing in any shape or stride gets its own struct, so sizes are never stale.

The kept structs are per thread: the library reads a struct while the GIL is released, and another
thread's call must not rewrite its pointers meanwhile. The key's outputs are allocated the way the checks
assumed (torch.empty_like(q), so O has the strides the struct was filled with).
"""

import ctypes
import threading

from . import _args, _backward, _lib, _tensors

MAX_KEYS = 1024  # per thread; a shape-varying workload (decode with a growing cache) starts over past this
WORKSPACE_ALIGNMENT = _backward.WORKSPACE_ALIGNMENT

_local = threading.local()
_functions = None  # (fa2_forward, fa2_backward, lib) once the library is loaded


class _Prepared:
    """A filled struct, a pointer to it for ctypes, and what a call allocates."""

    __slots__ = ("args", "pointer", "lse_shape", "workspace_bytes")

    def __init__(self, args, lse_shape=None, workspace_bytes=0):
        self.args = args
        self.pointer = ctypes.pointer(args)
        self.lse_shape = lse_shape
        self.workspace_bytes = workspace_bytes


def _cache(name):
    table = getattr(_local, name, None)
    if table is None or len(table) >= MAX_KEYS:
        table = {}
        setattr(_local, name, table)
    return table


def _library():
    global _functions
    if _functions is None:
        lib, _ = _lib.library()
        _functions = (lib.fa2_forward, lib.fa2_backward, lib)
    return _functions


def _stream_functions(torch):
    """(current device index, raw current stream of a device): torch's C entry points where it has them (what
    torch.compile's generated code calls; a fraction of a microsecond), else the public API."""
    get_device = getattr(torch._C, "_cuda_getDevice", None) or torch.cuda.current_device
    raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    if raw_stream is None:
        def raw_stream(index):
            return torch.cuda.current_stream(index).cuda_stream
    return get_device, raw_stream


_get_device = _raw_stream = None


def _call(function, pointer, index, torch):
    """function(pointer, stream) on the current stream of device `index`, with that device's context current."""
    global _get_device, _raw_stream
    if _raw_stream is None:
        _get_device, _raw_stream = _stream_functions(torch)
    if _get_device() == index:
        return function(pointer, _raw_stream(index))
    with torch.cuda.device(index):
        return function(pointer, _raw_stream(index))


def _check(status):
    if status:
        _lib.check(_library()[2], status)


def _variant_key(variant):
    """What a call's variant (_args.variant_of's tuple) contributes to a key: the values, and of the slopes what
    the checks read (their pointer is written per call)."""
    left, right, cap, slopes = variant
    if slopes is None:
        return left, right, cap
    return left, right, cap, tuple(slopes.shape), slopes.stride(), slopes.dtype, slopes.device


def _slopes_pointer(variant):
    slopes = variant[3]
    return None if slopes is None else slopes.data_ptr()


def forward(q, k, v, causal, softmax_scale, layout, tune, cache_path, return_lse, variant=_args.NO_VARIANT):
    """(O, LSE or None) for torch tensors q, k, v, allocated on q's device, on its current stream."""
    device = q.device
    key = (q.shape, q.stride(), k.shape, k.stride(), v.shape, v.stride(), q.dtype, k.dtype, v.dtype, device,
           k.device, v.device, causal, softmax_scale, layout, tune, cache_path, return_lse, _variant_key(variant))
    table = _cache("forwards")
    prepared = table.get(key)
    if prepared is None:
        from . import _forward  # here: _forward routes its torch calls to this module
        args, _, _ = _forward._prepare(q, k, v, None, causal, softmax_scale, layout, tune, cache_path, variant)
        lse_shape = (args.batch, args.heads_q, args.seqlen_q) if return_lse else None
        prepared = table[key] = _Prepared(args, lse_shape)
    torch = _tensors.import_torch()
    out = torch.empty_like(q)
    args = prepared.args
    args.q, args.k, args.v, args.o = q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr()
    args.alibi_slopes = _slopes_pointer(variant)
    lse = None
    if return_lse:
        lse = torch.empty(prepared.lse_shape, dtype=torch.float32, device=device)
        args.lse = lse.data_ptr()
    _check(_call(_library()[0], prepared.pointer, device.index, torch))
    return out, lse


def _prepare_backward(dout, q, k, v, out, lse, causal, softmax_scale, deterministic, layout, tune, cache_path,
                      variant):
    grads = dict.fromkeys(("dq", "dk", "dv"))
    args, views = _backward._prepare(dout, q, k, v, out, lse, grads, causal, softmax_scale, deterministic, layout,
                                     tune, cache_path, variant)
    for grad_name, input_name in _backward.GRADIENTS:  # allocated with torch.empty_like(input) by each call
        for part, stride in zip(_args.PARTS, _args.allocation_strides(views[input_name], layout)):
            setattr(args, f"{grad_name}_{part}_stride", stride)
    lib = _library()[2]
    size = ctypes.c_size_t()
    _lib.check(lib, lib.fa2_backward_workspace_size(ctypes.byref(args), ctypes.byref(size)))
    return _Prepared(args, workspace_bytes=size.value)


def backward(dout, q, k, v, out, lse, causal, softmax_scale, deterministic, layout, tune, cache_path,
             variant=_args.NO_VARIANT):
    """(dQ, dK, dV) for torch tensors, allocated like q, k, v; the scratch from torch's allocator on the
    current stream (so it is recycled in stream order, and recorded in a CUDA graph's pool)."""
    device = q.device
    key = (dout.shape, dout.stride(), q.shape, q.stride(), k.shape, k.stride(), v.shape, v.stride(), out.shape,
           out.stride(), lse.shape, lse.stride(), dout.dtype, q.dtype, k.dtype, v.dtype, out.dtype, lse.dtype,
           device, dout.device, k.device, v.device, out.device, lse.device, causal, softmax_scale, deterministic,
           layout, tune, cache_path, _variant_key(variant))
    table = _cache("backwards")
    prepared = table.get(key)
    if prepared is None:
        prepared = table[key] = _prepare_backward(dout, q, k, v, out, lse, causal, softmax_scale, deterministic,
                                                  layout, tune, cache_path, variant)
    torch = _tensors.import_torch()
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    workspace = torch.empty(prepared.workspace_bytes, dtype=torch.uint8, device=device)
    offset = -workspace.data_ptr() % WORKSPACE_ALIGNMENT
    if offset:  # torch's blocks are 512-byte aligned; another allocator's may not be
        workspace = torch.empty(prepared.workspace_bytes + WORKSPACE_ALIGNMENT, dtype=torch.uint8, device=device)
        offset = -workspace.data_ptr() % WORKSPACE_ALIGNMENT
    args = prepared.args
    args.q, args.k, args.v, args.o = q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr()
    args.lse, args.dout = lse.data_ptr(), dout.data_ptr()
    args.dq, args.dk, args.dv = dq.data_ptr(), dk.data_ptr(), dv.data_ptr()
    args.alibi_slopes = _slopes_pointer(variant)
    args.workspace, args.workspace_bytes = workspace.data_ptr() + offset, prepared.workspace_bytes
    _check(_call(_library()[1], prepared.pointer, device.index, torch))
    return dq, dk, dv


def kvcache_applies(torch, *tensors):
    """Whether forward_with_kvcache's tensor arguments (q, k_cache, v_cache, then the optional ones) suit the
    fast path: torch tensors where given; anything else takes the full checks, which name what is wrong."""
    required, optional = tensors[:3], tensors[3:]
    return all(isinstance(t, torch.Tensor) for t in required) and all(
        t is None or isinstance(t, torch.Tensor) for t in optional)


def forward_with_kvcache(q, k_cache, v_cache, cache_seqlens, block_table, causal, softmax_scale, return_lse,
                         num_splits, out, tune, cache_path):
    """forward_with_kvcache without appended rows, on the current stream, for tensors kvcache_applies to: O
    (and LSE with return_lse). Decode calls it once per token and layer, so its host time is what a decode
    loop feels."""
    from . import _kvcache  # here: _kvcache routes its common calls to this module

    torch = _tensors.import_torch()
    optional = tuple(None if t is None else (t.shape, t.stride(), t.dtype, t.device)
                     for t in (cache_seqlens, block_table, out))
    device = q.device
    key = (q.shape, q.stride(), q.dtype, device, k_cache.shape, k_cache.stride(), k_cache.dtype, k_cache.device,
           v_cache.shape, v_cache.stride(), v_cache.dtype, v_cache.device, optional, causal, softmax_scale,
           return_lse, num_splits, tune, cache_path)
    table = _cache("kvcache_forwards")
    prepared = table.get(key)
    if prepared is None:
        with _args.on_device(_tensors.view("q", q)):
            args, _, lse = _kvcache._prepare(q, k_cache, v_cache, cache_seqlens, block_table, None, None, causal,
                                             softmax_scale, return_lse, num_splits, out, tune, cache_path, False,
                                             torch)
        prepared = table[key] = _Prepared(args, None if lse is None else tuple(lse.shape))
    if out is None:
        out = torch.empty_like(q)
    args = prepared.args
    args.q, args.k, args.v, args.o = q.data_ptr(), k_cache.data_ptr(), v_cache.data_ptr(), out.data_ptr()
    if cache_seqlens is not None:
        args.cache_seqlens = cache_seqlens.data_ptr()
    if block_table is not None:
        args.block_table = block_table.data_ptr()
    lse = None
    if return_lse:
        lse = torch.empty(prepared.lse_shape, dtype=torch.float32, device=device)
        args.lse = lse.data_ptr()
    _check(_call(_library()[2].fa2_forward_with_kvcache, prepared.pointer, device.index, torch))
    return (out, lse) if return_lse else out
