"""fa2jit.varlen_forward: a batch of sequences of different lengths packed without padding, FlashAttention's
flash_attn_varlen_func conventions, through fa2_forward_with_kvcache (the KV-cache family reads varlen rows)."""

import ctypes

from . import _args, _lib, _tensors
from ._kvcache import _int32_tensor
from ._lib import KvcacheArgs
from ._tensors import argument_error


def _packed(name, view):
    """(rows, heads, head_dim) and (batch, head, row) strides of a [total, H, D] view (no batch stride)."""
    if len(view.shape) != 3:
        raise argument_error(f"{name} must be 3-D [total, H, D] (sequences packed along dim 0), got shape {view.shape}")
    if view.strides[2] != 1:
        raise argument_error(f"{name}'s last dimension must be contiguous (stride 1), got strides {view.strides}")
    return view.shape, (0, view.strides[1], view.strides[0])


def _check_cu_seqlens(name, cu_seqlens, total, max_seqlen):
    """The device values the library cannot see, checked here at the cost of one synchronization."""
    values = cu_seqlens.tolist()
    if values[0] != 0:
        raise argument_error(f"{name}[0] is {values[0]}; it must be 0")
    for b, (start, end) in enumerate(zip(values, values[1:])):
        if end < start:
            raise argument_error(f"{name} decreases at {b + 1}: {start} then {end}; it must not decrease")
        if end - start > max_seqlen:
            raise argument_error(f"sequence {b} of {name} has {end - start} rows, above max_seqlen "
                                 f"{max_seqlen} (the kernels would cut it)")
    if values[-1] > total:
        raise argument_error(f"{name}[-1] is {values[-1]}, past the {total} rows of the packed tensor")


def varlen_forward(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, *, causal=False,
                   softmax_scale=None, return_lse=False, num_splits=0, out=None, tune=None, cache_path=None,
                   stream=None, check_values=False):
    """softmax(q k^T * softmax_scale) v per sequence of a packed batch, on the current torch stream.

    q: [total_q, Hq, D]; k, v: [total_k, Hkv, D]; cu_seqlens_q, cu_seqlens_k: int32 [B + 1], increasing from 0,
    sequence b being rows cu[b] .. cu[b + 1] - 1; max_seqlen_q, max_seqlen_k: the longest of each (they size
    the grid; a sequence longer than them is cut). A sequence may have 0 keys (its rows give O = 0, LSE = +inf).
    causal is bottom-right per sequence. Returns O [total_q, Hq, D], or (O, LSE float32 [Hq, total_q]).
    check_values: verify cu_seqlens_q/k and the max_seqlen bounds on the host first (one synchronization).
    """
    torch = _tensors.import_torch()
    if torch is None:
        raise argument_error("varlen_forward needs torch (cu_seqlens are torch tensors)")
    qv, kv, vv = _tensors.view("q", q), _tensors.view("k", k), _tensors.view("v", v)
    if qv.tensor is None:
        raise argument_error("q must be a torch tensor for varlen_forward")
    (total_q, heads_q, head_dim), q_strides = _packed("q", qv)
    (total_k, heads_kv, k_dim), k_strides = _packed("k", kv)
    v_shape, v_strides = _packed("v", vv)
    _args.same("k", kv, qv, "k")
    _args.same("v", vv, qv, "v")
    if v_shape != kv.shape:
        raise argument_error(f"k shape {kv.shape} and v shape {vv.shape} differ")
    if k_dim != head_dim:
        raise argument_error(f"k shape {kv.shape} does not match q shape {qv.shape} in head_dim")
    if heads_kv < 1 or heads_q % heads_kv != 0:
        raise argument_error(f"q's {heads_q} heads are not a multiple of k/v's {heads_kv} heads")
    if cu_seqlens_q is None or cu_seqlens_k is None:
        raise argument_error("cu_seqlens_q and cu_seqlens_k are both required (int32 [B + 1])")
    if not isinstance(cu_seqlens_q, torch.Tensor) or cu_seqlens_q.dim() != 1 or cu_seqlens_q.shape[0] < 2:
        raise argument_error("cu_seqlens_q must be a 1-D int32 tensor of at least 2 entries [B + 1]")
    batch = cu_seqlens_q.shape[0] - 1
    cu_seqlens_q = _int32_tensor("cu_seqlens_q", cu_seqlens_q, torch, batch + 1, qv.device)
    cu_seqlens_k = _int32_tensor("cu_seqlens_k", cu_seqlens_k, torch, batch + 1, qv.device)
    for name, value in (("max_seqlen_q", max_seqlen_q), ("max_seqlen_k", max_seqlen_k)):
        if not isinstance(value, int) or value < 1:
            raise argument_error(f"{name}={value!r} must be a positive int (the longest sequence)")
    if not isinstance(num_splits, int) or not 0 <= num_splits <= 128:
        raise argument_error(f"num_splits={num_splits!r} must be an int in [0, 128] (0: chosen per problem)")
    if check_values:
        _check_cu_seqlens("cu_seqlens_q", cu_seqlens_q, total_q, max_seqlen_q)
        _check_cu_seqlens("cu_seqlens_k", cu_seqlens_k, total_k, max_seqlen_k)

    with _args.on_device(qv):
        if out is None:
            out = torch.empty_like(q)
        ov = _tensors.view("out", out, writable=True)
        _args.same("out", ov, qv, "out")
        if ov.shape != qv.shape:
            raise argument_error(f"out shape {ov.shape} differs from q shape {qv.shape}")
        _, o_strides = _packed("out", ov)
        args = KvcacheArgs()
        args.q, args.k, args.v, args.o = qv.ptr, kv.ptr, vv.ptr, ov.ptr
        sizes = (batch, max_seqlen_q, max_seqlen_k, heads_q, heads_kv, head_dim)
        strides = {"q": q_strides, "k": k_strides, "v": v_strides, "o": o_strides}
        _args.fill_common(args, qv, sizes, strides, causal, softmax_scale, tune, cache_path)
        args.cu_seqlens_q, args.cu_seqlens_k = cu_seqlens_q.data_ptr(), cu_seqlens_k.data_ptr()
        args.total_q = total_q
        args.num_splits = num_splits
        lse = None
        if return_lse:
            lse = torch.empty((heads_q, total_q), dtype=torch.float32, device=qv.device)
            args.lse = lse.data_ptr()
        lib, _ = _lib.library()
        handle = _args.stream_handle(stream, qv)
        _lib.check(lib, lib.fa2_forward_with_kvcache(ctypes.byref(args), ctypes.c_void_p(handle)))
    return (out, lse) if return_lse else out
