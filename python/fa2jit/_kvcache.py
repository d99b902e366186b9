"""fa2jit.forward_with_kvcache: new queries against a KV cache, contiguous or paged (fa2_forward_with_kvcache),
with FlashAttention's flash_attn_with_kvcache conventions. Needs torch: the cache lengths and the block table
are int32 CUDA tensors. Appended keys and values are written into the cache by the library, before it attends."""

import ctypes

from . import _args, _fast, _lib, _tensors
from ._lib import KvcacheArgs
from ._tensors import argument_error

PAGE_SIZES = (16, 32, 64, 128, 256)


def _int32_tensor(name, tensor, torch, rows, device):
    if not isinstance(tensor, torch.Tensor):
        raise argument_error(f"{name} is a {type(tensor).__name__}; it must be an int32 CUDA torch tensor")
    if tensor.dtype != torch.int32:
        raise argument_error(f"{name} has dtype {tensor.dtype}; it must be torch.int32")
    if tensor.device != device:
        raise argument_error(f"{name} is on {tensor.device} but q is on {device}")
    if tensor.dim() < 1 or tensor.shape[0] != rows:
        raise argument_error(f"{name} shape {tuple(tensor.shape)} must start with the batch size {rows}")
    if tensor.stride(-1) != 1:
        raise argument_error(f"{name} must have a contiguous last dimension, got strides {tuple(tensor.stride())}")
    return tensor


def _append_args(args, k, v, qv, batch, heads_kv, head_dim, cache_seqlens):
    """Fills the appended rows' fields of `args` from k, v [B, S_new, Hkv, D] (the library writes them)."""
    kv_new, vv_new = _tensors.view("k", k), _tensors.view("v", v)
    (k_batch, seqlen_new, k_heads, k_dim), k_strides = _args.dims("k", kv_new, "bshd")
    v_dims, v_strides = _args.dims("v", vv_new, "bshd")
    if (k_batch, seqlen_new, k_heads, k_dim) != v_dims or (k_batch, k_heads, k_dim) != (batch, heads_kv, head_dim):
        raise argument_error(f"k, v to append must both be [B={batch}, S_new, Hkv={heads_kv}, D={head_dim}], "
                             f"got {kv_new.shape} and {vv_new.shape}")
    _args.same("k", kv_new, qv, "the appended k")
    _args.same("v", vv_new, qv, "the appended v")
    if cache_seqlens is None:
        raise argument_error("appending k, v needs cache_seqlens: where each sequence's new keys go")
    args.k_new, args.v_new, args.seqlen_new = kv_new.ptr, vv_new.ptr, seqlen_new
    for tensor, values in (("k", k_strides), ("v", v_strides)):
        for part, stride in zip(_args.PARTS, values):
            setattr(args, f"{tensor}_new_{part}_stride", stride)


def _check_values(cache_seqlens, block_table, seqlen_k, page_size, num_pages, torch):
    """The device values the library cannot see, checked here at the cost of one synchronization."""
    if cache_seqlens is not None:
        low, high = int(cache_seqlens.min()), int(cache_seqlens.max())
        if low < 0 or high > seqlen_k:
            raise argument_error(f"cache_seqlens holds values in [{low}, {high}]; each must be in [0, {seqlen_k}] "
                                 "(the keys the cache holds per sequence)")
    if block_table is not None:
        lengths = cache_seqlens if cache_seqlens is not None else torch.full(
            (block_table.shape[0],), seqlen_k, dtype=torch.int32, device=block_table.device)
        used_pages = torch.div(lengths.long() + page_size - 1, page_size, rounding_mode="floor")
        used = torch.arange(block_table.shape[1], device=block_table.device)[None, :] < used_pages[:, None]
        entries = block_table[used]
        if entries.numel() > 0:
            low, high = int(entries.min()), int(entries.max())
            if low < 0 or high >= num_pages:
                raise argument_error(f"block_table's used entries lie in [{low}, {high}]; each must be a page "
                                     f"index in [0, {num_pages})")


def forward_with_kvcache(q, k_cache, v_cache, *, cache_seqlens=None, block_table=None, k=None, v=None, causal=False,
                         softmax_scale=None, return_lse=False, num_splits=0, out=None, tune=None, cache_path=None,
                         stream=None, check_values=False):
    """softmax(q k^T * softmax_scale) v for q's new rows against a KV cache, on the current torch stream.

    q: [B, Sq, Hq, D] (Sq = 1 for a decode step). k_cache, v_cache: [B, Sk, Hkv, D] (contiguous cache), or
    with block_table [num_pages, page_size, Hkv, D] (paged; page_size 16, 32, 64, 128 or 256).
    cache_seqlens: int32 [B], the keys of each sequence (default: all Sk, or all pages of the block table).
    block_table: int32 [B, max_pages], sequence b's key j in page block_table[b, j // page_size].
    k, v: [B, S_new, Hkv, D] written into the cache at cache_seqlens[b] before attending (they are then
    attended to as well, and cache_seqlens is not modified). causal is bottom-right per sequence.
    num_splits: 0 lets fa2jit choose how many blocks share a sequence's keys; 1..128 forces it.
    check_values: verify cache_seqlens and the block table on the host first (one synchronization).
    Returns O [B, Sq, Hq, D], or (O, LSE float32 [B, Hq, Sq]) with return_lse.
    """
    torch = _tensors.import_torch()
    if torch is None:
        raise argument_error("forward_with_kvcache needs torch (cache lengths and block tables are torch tensors)")
    if k is None and v is None and not check_values and stream is None and _fast.kvcache_applies(
            torch, q, k_cache, v_cache, cache_seqlens, block_table, out):
        return _fast.forward_with_kvcache(q, k_cache, v_cache, cache_seqlens, block_table, causal, softmax_scale,
                                          return_lse, num_splits, out, tune, cache_path)
    qv = _tensors.view("q", q)
    with _args.on_device(qv):
        args, out, lse = _prepare(q, k_cache, v_cache, cache_seqlens, block_table, k, v, causal, softmax_scale,
                                  return_lse, num_splits, out, tune, cache_path, check_values, torch)
        lib, _ = _lib.library()
        handle = _args.stream_handle(stream, qv)
        _lib.check(lib, lib.fa2_forward_with_kvcache(ctypes.byref(args), ctypes.c_void_p(handle)))
    return (out, lse) if return_lse else out


def _prepare(q, k_cache, v_cache, cache_seqlens, block_table, k, v, causal, softmax_scale, return_lse, num_splits,
             out, tune, cache_path, check_values, torch):
    """(args, out, lse): every argument checked and the library's struct filled, out and lse allocated where
    not given; on q's device (the caller's on_device). What the call after it would do is the caller's."""
    qv = _tensors.view("q", q)
    kv, vv = _tensors.view("k_cache", k_cache, writable=k is not None), _tensors.view("v_cache", v_cache,
                                                                                         writable=k is not None)
    if qv.tensor is None:
        raise argument_error("q must be a torch tensor for forward_with_kvcache")
    (batch, seqlen_q, heads_q, head_dim), q_strides = _args.dims("q", qv, "bshd")
    k_dims, k_strides = _args.dims("k_cache", kv, "bshd")
    v_dims, v_strides = _args.dims("v_cache", vv, "bshd")
    _args.same("k_cache", kv, qv, "k_cache")
    _args.same("v_cache", vv, qv, "v_cache")
    if k_dims != v_dims:
        raise argument_error(f"k_cache shape {kv.shape} and v_cache shape {vv.shape} differ")
    if k_dims[3] != head_dim:
        raise argument_error(f"k_cache shape {kv.shape} does not match q shape {qv.shape} in head_dim")
    heads_kv = k_dims[2]
    if heads_kv < 1 or heads_q % heads_kv != 0:
        raise argument_error(f"q's {heads_q} heads are not a multiple of the cache's {heads_kv} heads")

    args = KvcacheArgs()
    page_size = num_pages = 0
    if block_table is not None:
        block_table = _int32_tensor("block_table", block_table, torch, batch, qv.device)
        if block_table.dim() != 2:
            raise argument_error(f"block_table must be 2-D [B, max_pages], got shape {tuple(block_table.shape)}")
        num_pages, page_size = k_dims[0], k_dims[1]
        if page_size not in PAGE_SIZES:
            raise argument_error(f"k_cache's page size {page_size} (dimension 1 with a block_table) is not one of "
                                 f"{PAGE_SIZES}")
        seqlen_k = block_table.shape[1] * page_size
        args.block_table = block_table.data_ptr()
        args.block_table_stride = block_table.stride(0)
        args.page_size, args.num_pages = page_size, num_pages
    else:
        if k_dims[0] != batch:
            raise argument_error(f"k_cache shape {kv.shape} does not match q shape {qv.shape} in batch "
                                 "(pass block_table for a paged cache)")
        seqlen_k = k_dims[1]
    if cache_seqlens is not None:
        cache_seqlens = _int32_tensor("cache_seqlens", cache_seqlens, torch, batch, qv.device)
        if cache_seqlens.dim() != 1:
            raise argument_error(f"cache_seqlens must be 1-D [B], got shape {tuple(cache_seqlens.shape)}")
    if (k is None) != (v is None):
        raise argument_error("k and v are appended together: pass both or neither")

    if k is not None:
        _append_args(args, k, v, qv, batch, heads_kv, head_dim, cache_seqlens)
        if check_values:
            _check_values(cache_seqlens + args.seqlen_new, block_table, seqlen_k, page_size, num_pages, torch)
    elif check_values:
        _check_values(cache_seqlens, block_table, seqlen_k, page_size, num_pages, torch)

    if out is None:
        out = torch.empty_like(q)
    ov = _tensors.view("out", out, writable=True)
    o_strides = _args.shaped_like("out", ov, "q", qv, "bshd")
    args.q, args.k, args.v, args.o = qv.ptr, kv.ptr, vv.ptr, ov.ptr
    sizes = (batch, seqlen_q, seqlen_k, heads_q, heads_kv, head_dim)
    strides = {"q": q_strides, "k": k_strides, "v": v_strides, "o": o_strides}
    _args.fill_common(args, qv, sizes, strides, causal, softmax_scale, tune, cache_path)
    if cache_seqlens is not None:
        args.cache_seqlens = cache_seqlens.data_ptr()
    if not isinstance(num_splits, int) or not 0 <= num_splits <= 128:
        raise argument_error(f"num_splits={num_splits!r} must be an int in [0, 128] (0: chosen per problem)")
    args.num_splits = num_splits
    lse = None
    if return_lse:
        lse = torch.empty((batch, heads_q, seqlen_q), dtype=torch.float32, device=qv.device)
        args.lse = lse.data_ptr()
    return args, out, lse
