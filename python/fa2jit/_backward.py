"""fa2jit.backward and fa2jit.backward_config_name: the backward pass through fa2_backward.

The backward of one forward call reads that call's q, k, v, O and LSE and the loss gradient dO, and writes
dQ, dK, dV shaped like q, k, v (for GQA/MQA, dK and dV have the KV heads: each sums over the query heads
that share it). Its scratch (an fp32 dQ accumulator, rowsum(dO * O), the deterministic mode's semaphores)
comes from torch's caching allocator when the call runs on the current torch stream, so that it is
recycled like any other torch allocation instead of being allocated and freed by the driver every call.
"""

import ctypes

from . import _args, _lib, _tensors
from ._lib import BackwardArgs
from ._tensors import argument_error

GRADIENTS = (("dq", "q"), ("dk", "k"), ("dv", "v"))  # each gradient and the input it is shaped like
WORKSPACE_ALIGNMENT = 256  # what fa2_backward_args.workspace must be aligned to


def _lse_pointer(lse, qv, sizes):
    """The pointer of the forward's LSE: float32 [B, Hq, Sq], contiguous, on q's device."""
    batch, seqlen_q, _, heads_q, _, _ = sizes
    view = _tensors.float32_view("lse", lse)
    if view.device is not None and qv.device is not None and view.device != qv.device:
        raise argument_error(f"lse is on {view.device} but q is on {qv.device}")
    expected = (batch, heads_q, seqlen_q)
    if view.shape != expected:
        raise argument_error(f"lse shape {view.shape} must be [B, Hq, Sq] = {expected}, as the forward returned it")
    # Strides of extent-1 dimensions never move the pointer, so they may be anything (as in torch).
    contiguous = _tensors.contiguous_strides(view.shape)
    if any(extent > 1 and stride != want for extent, stride, want in zip(view.shape, view.strides, contiguous)):
        raise argument_error(f"lse must be contiguous; its strides are {view.strides} (want {contiguous})")
    return view.ptr


def _prepare(dout, q, k, v, out, lse, grads, causal, softmax_scale, deterministic, layout, tune, cache_path,
             variant=_args.NO_VARIANT):
    """Checks every argument and fills BackwardArgs, except the pointers and strides of gradients that were
    not given. Returns (args, views) with views mapping 'q', 'k', 'v' and every given gradient's name."""
    (qv, kv, vv), sizes, strides = _args.qkv(q, k, v, layout)
    views = {"q": qv, "k": kv, "v": vv}
    ov = _tensors.view("out", out)
    strides["o"] = _args.shaped_like("out", ov, "q", qv, layout)
    dov = _tensors.view("dout", dout)
    strides["dout"] = _args.shaped_like("dout", dov, "q", qv, layout)
    lse_pointer = _lse_pointer(lse, qv, sizes)
    for grad_name, input_name in GRADIENTS:
        if grads[grad_name] is None:
            continue
        view = _tensors.view(grad_name, grads[grad_name], writable=True)
        strides[grad_name] = _args.shaped_like(grad_name, view, input_name, views[input_name], layout)
        views[grad_name] = view

    args = BackwardArgs()
    _args.fill_common(args, qv, sizes, strides, causal, softmax_scale, tune, cache_path)
    _args.fill_variant(args, qv, sizes, variant)
    args.q, args.k, args.v, args.o, args.dout = qv.ptr, kv.ptr, vv.ptr, ov.ptr, dov.ptr
    args.lse = lse_pointer
    args.deterministic = 1 if deterministic else 0
    for grad_name, _ in GRADIENTS:
        if grad_name in views:
            setattr(args, grad_name, views[grad_name].ptr)
    return args, views


def _set_tensor(args, name, view, layout):
    setattr(args, name, view.ptr)
    for part, stride in zip(_args.PARTS, _args.dims(name, view, layout)[1]):
        setattr(args, f"{name}_{part}_stride", stride)


def _workspace(lib, args, qv, handle):
    """A torch buffer for the scratch when the call runs on the current torch stream (returned to keep it
    alive until the kernels are enqueued; torch's allocator then hands its memory out again only in that
    stream's order, after them). Elsewhere None: the library takes it from the driver on the given stream."""
    if qv.tensor is None or handle != _args.current_stream_handle(qv):
        return None
    torch = _tensors.import_torch()
    size = ctypes.c_size_t()
    _lib.check(lib, lib.fa2_backward_workspace_size(ctypes.byref(args), ctypes.byref(size)))
    buffer = torch.empty(size.value, dtype=torch.uint8, device=qv.device)
    offset = -buffer.data_ptr() % WORKSPACE_ALIGNMENT
    if offset:  # torch's blocks are 512-byte aligned; another allocator's may not be
        buffer = torch.empty(size.value + WORKSPACE_ALIGNMENT, dtype=torch.uint8, device=qv.device)
        offset = -buffer.data_ptr() % WORKSPACE_ALIGNMENT
    args.workspace = buffer.data_ptr() + offset
    args.workspace_bytes = size.value
    return buffer


def backward(dout, q, k, v, out, lse, *, causal=False, softmax_scale=None, deterministic=False, layout="bshd",
             dq=None, dk=None, dv=None, tune=None, cache_path=None, stream=None, window=None, softcap=0.0,
             alibi_slopes=None, score_mod=None, score_mod_grad=None, mask_mod=None, extra=None):
    """dQ, dK, dV of the forward call out, lse = forward(q, k, v, ..., return_lse=True), given dout = dLoss/dO.

    q, k, v, out, lse: exactly as that forward call had and returned them (same causal, softmax_scale, layout,
    window, softcap and alibi_slopes; the slopes get no gradient); dout: shaped like out, same dtype and device, with a contiguous last dimension.
    deterministic: bitwise-identical gradients from run to run (the dQ contributions of the key blocks
    are added in a fixed order instead of with float atomics; somewhat slower).
    dq, dk, dv: tensors shaped like q, k, v to write into; those left None are allocated with torch
    (required when q is not a torch tensor). Enqueued on the current torch stream of q's device (or
    `stream`). Returns (dq, dk, dv). score_mod, score_mod_grad, mask_mod and extra: the forward's (see
    fa2jit.forward); score_mod's derivative is score_mod_grad's snippet, or derived from score_mod.
    """
    grads = {"dq": dq, "dk": dk, "dv": dv}
    args, views = _prepare(dout, q, k, v, out, lse, grads, causal, softmax_scale, deterministic, layout, tune,
                           cache_path, _args.variant_of(window, softcap, alibi_slopes))
    qv = views["q"]
    kept = _args.fill_user_mods(args, qv, score_mod, score_mod_grad, mask_mod, extra)  # noqa: F841
    torch = _tensors.import_torch()
    for grad_name, input_name in GRADIENTS:
        if grads[grad_name] is not None:
            continue
        source = views[input_name].tensor
        if source is None:
            raise argument_error(f"{input_name} is not a torch tensor, so fa2jit cannot allocate {grad_name}: "
                                 f"pass {grad_name}=")
        grads[grad_name] = torch.empty_like(source)
        _set_tensor(args, grad_name, _tensors.view(grad_name, grads[grad_name], writable=True), layout)
    lib, _ = _lib.library()
    with _args.on_device(qv):
        handle = _args.stream_handle(stream, qv)
        workspace = _workspace(lib, args, qv, handle)
        _lib.check(lib, lib.fa2_backward(ctypes.byref(args), ctypes.c_void_p(handle)))
    del workspace  # enqueued: from here on torch may hand its memory out again, in stream order
    return grads["dq"], grads["dk"], grads["dv"]


def backward_config_name(dout, q, k, v, out, lse, *, causal=False, softmax_scale=None, deterministic=False,
                         layout="bshd", dq=None, dk=None, dv=None, tune=None, cache_path=None, stream=None,
                         window=None, softcap=0.0, alibi_slopes=None):
    """The name of the kernel config backward() would use for these arguments (resolving it by the tune
    policy, which may tune). Takes backward()'s arguments; nothing is written."""
    del stream  # it does not select the kernel
    grads = {"dq": dq, "dk": dk, "dv": dv}
    args, views = _prepare(dout, q, k, v, out, lse, grads, causal, softmax_scale, deterministic, layout, tune,
                           cache_path, _args.variant_of(window, softcap, alibi_slopes))
    for grad_name, input_name in GRADIENTS:
        if grad_name not in views:
            # Only checked, never written; the strides are those backward() would allocate with, since the
            # layout class they form with the other tensors' selects the kernel.
            source = views[input_name]
            setattr(args, grad_name, source.ptr)
            for part, stride in zip(_args.PARTS, _args.allocation_strides(source, layout)):
                setattr(args, f"{grad_name}_{part}_stride", stride)
    lib, _ = _lib.library()
    buffer = ctypes.create_string_buffer(256)
    with _args.on_device(views["q"]):
        _lib.check(lib, lib.fa2_backward_config_name(ctypes.byref(args), buffer, len(buffer)))
    return buffer.value.decode()


def workspace_bytes(dout, q, k, v, out, lse, *, causal=False, layout="bshd", deterministic=False):
    """Bytes of scratch backward() takes for these arguments (from the library; needs no GPU)."""
    grads = dict.fromkeys(("dq", "dk", "dv"))
    args, _ = _prepare(dout, q, k, v, out, lse, grads, causal, None, deterministic, layout, "heuristic", None)
    lib, _ = _lib.library()
    size = ctypes.c_size_t()
    _lib.check(lib, lib.fa2_backward_workspace_size(ctypes.byref(args), ctypes.byref(size)))
    return size.value
