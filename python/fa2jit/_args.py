"""Argument rules both passes share: layouts, shapes, dtypes and devices of tensor views, the softmax scale,
the tune policy, and which stream and device a call runs on. Everything here raises Fa2Error(ERROR_ARGUMENT)
naming the offending value, before the library is involved."""

import contextlib
import ctypes
import math
import os

from . import _lib, _tensors
from ._tensors import argument_error

# Dimension order of each layout as (batch, seqlen, heads, head_dim) positions.
LAYOUTS = {"bshd": (0, 1, 2, 3), "bhsd": (0, 2, 1, 3)}
TUNE_POLICIES = {None: -1, "on-first-use": 0, "heuristic": 1, "cache-only": 2}
INT_MAX = 2**31 - 1
PARTS = ("batch", "head", "row")  # the stride fields of the C structs, per tensor


def check_layout(layout):
    if layout not in LAYOUTS:
        raise argument_error(f"layout={layout!r} is not one of {sorted(LAYOUTS)}")


def dims(name, view, layout):
    """((batch, seqlen, heads, head_dim), (batch, head, row) strides) of a 4-D view in `layout`."""
    if len(view.shape) != 4:
        axes = "[B, S, H, D]" if layout == "bshd" else "[B, H, S, D]"
        raise argument_error(f"{name} must be 4-D {axes} for layout '{layout}', got shape {view.shape}")
    if view.strides[3] != 1:
        raise argument_error(f"{name}'s last dimension must be contiguous (stride 1), got strides {view.strides}")
    sizes = tuple(view.shape[i] for i in LAYOUTS[layout])
    if max(sizes) > INT_MAX:
        raise argument_error(f"{name} shape {view.shape} has a dimension over {INT_MAX}")
    return sizes, layout_strides(view.strides, layout)


def same(name, view, ref, what):
    """`view` has q's (`ref`'s) dtype and device."""
    if view.dtype != ref.dtype:
        raise argument_error(f"{name} is {_tensors.DTYPE_NAMES[view.dtype]} but q is "
                             f"{_tensors.DTYPE_NAMES[ref.dtype]}; {what} must match q's dtype")
    if view.device is not None and ref.device is not None and view.device != ref.device:
        raise argument_error(f"{name} is on {view.device} but q is on {ref.device}")


def shaped_like(name, view, ref_name, ref, layout):
    """The strides of `view`, which must have `ref`'s shape, dtype and device."""
    same(name, view, ref, name)
    if view.shape != ref.shape:
        raise argument_error(f"{name} shape {view.shape} differs from {ref_name} shape {ref.shape}")
    return dims(name, view, layout)[1]


def qkv(q, k, v, layout):
    """Views of q, k, v checked against each other. Returns (views, sizes, strides) where sizes are
    (batch, seqlen_q, seqlen_k, heads_q, heads_kv, head_dim) and strides map 'q', 'k', 'v' to theirs."""
    check_layout(layout)
    qv, kv, vv = _tensors.view("q", q), _tensors.view("k", k), _tensors.view("v", v)
    (batch, seqlen_q, heads_q, head_dim), q_strides = dims("q", qv, layout)
    k_dims, k_strides = dims("k", kv, layout)
    v_dims, v_strides = dims("v", vv, layout)
    same("k", kv, qv, "k")
    same("v", vv, qv, "v")
    if k_dims != v_dims:
        raise argument_error(f"k shape {kv.shape} and v shape {vv.shape} differ")
    if k_dims[0] != batch or k_dims[3] != head_dim:
        raise argument_error(f"k shape {kv.shape} does not match q shape {qv.shape} in batch or head_dim")
    heads_kv = k_dims[2]
    if heads_kv < 1 or heads_q % heads_kv != 0:
        raise argument_error(f"q's {heads_q} heads are not a multiple of k/v's {heads_kv} heads")
    sizes = (batch, seqlen_q, k_dims[1], heads_q, heads_kv, head_dim)
    return (qv, kv, vv), sizes, {"q": q_strides, "k": k_strides, "v": v_strides}


def fill_common(args, qv, sizes, strides, causal, softmax_scale, tune, cache_path):
    """The fields fa2_forward_args and fa2_backward_args share, on either struct."""
    args.struct_size = ctypes.sizeof(args)
    args.dtype = qv.dtype
    batch, seqlen_q, seqlen_k, heads_q, heads_kv, head_dim = sizes
    args.batch, args.heads_q, args.heads_kv = batch, heads_q, heads_kv
    args.seqlen_q, args.seqlen_k, args.head_dim = seqlen_q, seqlen_k, head_dim
    for tensor, values in strides.items():
        for part, stride in zip(PARTS, values):
            setattr(args, f"{tensor}_{part}_stride", stride)
    args.causal = 1 if causal else 0
    args.softmax_scale = scale(softmax_scale)
    args.tune_policy = policy(tune)
    args.cache_path = os.fsencode(cache_path) if cache_path is not None else None


# (window_left, window_right, softcap, alibi_slopes) of a call without variants.
NO_VARIANT = (-1, -1, 0.0, None)


def variant_of(window, softcap, alibi_slopes):
    """The built-in variants of a call as (window_left, window_right, softcap, alibi_slopes), flash-attn 2.6's
    meaning: window (left, right) keys around the bottom-right aligned diagonal, -1 unbounded, None for none;
    softcap > 0 caps the logits, 0 (or None) is off; alibi_slopes float32 [Hq] or [B, Hq] on q's device, or None.
    The slopes are checked against q in fill_variant."""
    left, right = -1, -1
    if window is not None:
        if not (isinstance(window, (tuple, list)) and len(window) == 2):
            raise argument_error(f"window={window!r} must be a pair (left, right) of key counts, -1 for unbounded")
        for side, value in zip(("left", "right"), window):
            if isinstance(value, bool) or not isinstance(value, int) or value < -1 or value > INT_MAX:
                raise argument_error(f"window {side} {value!r} must be an int >= -1 (-1: unbounded), in {window!r}")
        left, right = int(window[0]), int(window[1])
    cap = 0.0 if softcap is None else float(softcap)
    if not (math.isfinite(cap) and cap >= 0):
        raise argument_error(f"softcap {softcap!r} must be finite and > 0, or 0 for no softcapping")
    return left, right, cap, alibi_slopes


def fill_variant(args, qv, sizes, variant):
    """Writes a call's variant (variant_of's tuple) into any of the structs, checking the slopes against q."""
    left, right, cap, slopes = variant
    args.window = 1 if (left, right) != (-1, -1) else 0
    args.window_left, args.window_right = left, right
    args.softcap = cap
    args.alibi_slopes, args.alibi_slopes_batch_stride = None, 0
    if slopes is None:
        return
    batch, _, _, heads_q, _, _ = sizes
    view = _tensors.float32_view("alibi_slopes", slopes, "ALiBi slopes")
    if view.device is not None and qv.device is not None and view.device != qv.device:
        raise argument_error(f"alibi_slopes is on {view.device} but q is on {qv.device}")
    if view.shape == (heads_q,) and (heads_q == 1 or view.strides[0] == 1):
        args.alibi_slopes_batch_stride = 0
    elif view.shape == (batch, heads_q) and (heads_q == 1 or view.strides[1] == 1) \
            and (batch == 1 or view.strides[0] >= heads_q):
        args.alibi_slopes_batch_stride = view.strides[0] if batch > 1 else 0
    else:
        raise argument_error(f"alibi_slopes shape {view.shape} (strides {view.strides}) must be [Hq] = ({heads_q},) "
                             f"or [B, Hq] = ({batch}, {heads_q}) with contiguous heads")
    args.alibi_slopes = view.ptr


def scale(softmax_scale):
    if softmax_scale is None:
        return 0.0  # the C API's "1/sqrt(head_dim)"
    value = float(softmax_scale)
    if not (math.isfinite(value) and value > 0):
        raise argument_error(f"softmax_scale {softmax_scale!r} must be finite and positive (None: 1/sqrt(D))")
    return value


def policy(tune):
    if tune not in TUNE_POLICIES:
        raise argument_error(f"tune={tune!r} is not a policy: use None ($FA2JIT_TUNE, else on-first-use), "
                             "'on-first-use', 'heuristic' or 'cache-only'")
    return TUNE_POLICIES[tune]


def current_stream_handle(qv):
    """The handle of the current torch stream on q's device (0, the legacy default stream, without torch)."""
    if qv.tensor is None:
        return 0
    return _tensors.import_torch().cuda.current_stream(qv.device).cuda_stream


def stream_handle(stream, qv):
    if stream is None:
        return current_stream_handle(qv)
    if isinstance(stream, int):
        return stream
    for attribute in ("cuda_stream", "ptr"):  # torch.cuda.Stream, cupy.cuda.Stream
        if hasattr(stream, attribute):
            return int(getattr(stream, attribute))
    raise argument_error(f"stream {stream!r} is not an int handle or an object with .cuda_stream or .ptr")


def on_device(qv):
    """Makes q's device current, so that fa2jit runs in the context torch uses for it."""
    if qv.device is None:
        return contextlib.nullcontext()
    return _tensors.import_torch().cuda.device(qv.device)


def layout_strides(strides, layout):
    """(batch, head, row) of a 4-D tensor's element strides in `layout`."""
    order = LAYOUTS[layout]
    return strides[order[0]], strides[order[2]], strides[order[1]]


def allocation_strides(view, layout):
    """(batch, head, row) strides of the tensor torch.empty_like allocates for `view`, found on the meta
    device so that nothing is allocated. A view that is not a torch tensor keeps its own."""
    if view.tensor is None:
        return layout_strides(view.strides, layout)
    torch = _tensors.import_torch()
    return layout_strides(torch.empty_like(view.tensor, device="meta").stride(), layout)


# torch dtypes (by name) an extra array may have, and their fa2_extra_type names.
_EXTRA_DTYPES = {"torch.int32": "int32", "torch.int64": "int64", "torch.float32": "float32", "torch.uint8": "uint8",
                 "torch.bool": "uint8"}


def fill_user_mods(args, qv, score_mod=None, score_mod_grad=None, mask_mod=None, extra=None):
    """Writes a call's user modifications (fa2jit/user_mods.hpp) into a forward or backward struct: the snippets
    as strings, and extra={name: tensor} as named read-only device arrays (int32, int64, float32, uint8 or bool
    tensors on q's device, indexed by the snippets as flat arrays). Returns the tensors, to keep alive."""
    for name, text in (("score_mod", score_mod), ("score_mod_grad", score_mod_grad), ("mask_mod", mask_mod)):
        if text is not None and not isinstance(text, str):
            raise argument_error(f"{name}={text!r} must be a string of CUDA code (or None)")
    if score_mod_grad is not None and score_mod is None:
        raise argument_error("score_mod_grad is given without score_mod: it is score_mod's derivative")
    args.score_mod = score_mod.encode() if score_mod else None
    args.score_mod_grad = score_mod_grad.encode() if score_mod_grad else None
    args.mask_mod = mask_mod.encode() if mask_mod else None
    extra = dict(extra or {})
    if len(extra) > _lib.MAX_EXTRA_ARRAYS:
        raise argument_error(f"extra has {len(extra)} arrays: at most {_lib.MAX_EXTRA_ARRAYS}")
    if extra and not (score_mod or mask_mod):
        raise argument_error("extra arrays are given without score_mod or mask_mod to read them")
    kept = []
    for index, (name, tensor) in enumerate(extra.items()):
        if not isinstance(name, str) or not name.isidentifier():
            raise argument_error(f"extra array name {name!r} must be a C identifier")
        dtype = _EXTRA_DTYPES.get(str(getattr(tensor, "dtype", None)))
        if dtype is None or not hasattr(tensor, "data_ptr"):
            raise argument_error(f"extra array '{name}' must be a torch tensor of int32, int64, float32, uint8 or "
                                 f"bool, not {type(tensor).__name__} {getattr(tensor, 'dtype', '')}")
        if not tensor.is_contiguous():
            raise argument_error(f"extra array '{name}' must be contiguous (the snippets index it as a flat array)")
        device = getattr(tensor, "device", None)
        if qv.device is not None and device is not None and device != qv.device:
            raise argument_error(f"extra array '{name}' is on {device} but q is on {qv.device}")
        args.extra_names[index] = name.encode()
        args.extra_types[index] = _lib.EXTRA_TYPES[dtype]
        args.extra_data[index] = tensor.data_ptr()
        kept.append(tensor)
    args.num_extra = len(extra)
    return kept
