"""fa2jit.forward and fa2jit.config_name: the forward pass through fa2_forward. torch tensors with neither out= nor
stream= take the direct path of _fast.py (checked once per shape); everything else is checked here per call."""

import ctypes

from . import _args, _fast, _lib, _tensors
from ._lib import ForwardArgs
from ._tensors import argument_error


def _prepare(q, k, v, out, causal, softmax_scale, layout, tune, cache_path, variant=_args.NO_VARIANT):
    """Checks the inputs and fills ForwardArgs except o and lse. Returns (args, q view, out view); the O
    strides are those of `out`, else those of the O that forward() would allocate. `variant`: _args.variant_of's."""
    (qv, kv, vv), sizes, strides = _args.qkv(q, k, v, layout)
    ov = None
    if out is not None:
        ov = _tensors.view("out", out, writable=True)
        strides["o"] = _args.shaped_like("out", ov, "q", qv, layout)
    else:
        strides["o"] = _args.allocation_strides(qv, layout)
    args = ForwardArgs()
    args.q, args.k, args.v = qv.ptr, kv.ptr, vv.ptr
    _args.fill_common(args, qv, sizes, strides, causal, softmax_scale, tune, cache_path)
    _args.fill_variant(args, qv, sizes, variant)
    return args, qv, ov


def forward(q, k, v, *, causal=False, softmax_scale=None, return_lse=False, layout="bshd", out=None,
            tune=None, cache_path=None, stream=None, window=None, softcap=0.0, alibi_slopes=None, score_mod=None,
            score_mod_grad=None, mask_mod=None, extra=None):
    """softmax(q k^T * softmax_scale) v, enqueued on the current torch stream of q's device.

    q: [B, Sq, Hq, D] ("bshd") or [B, Hq, Sq, D] ("bhsd"); k, v likewise with Hkv heads dividing Hq.
    float16 or bfloat16 CUDA tensors with a contiguous last dimension; other strides are passed as is.
    causal masks bottom-right aligned. tune: None, "on-first-use", "heuristic" or "cache-only".
    out: a tensor shaped like q to write into (required when q is not a torch tensor).
    Returns O, or (O, LSE) with LSE float32 [B, Hq, Sq] (natural log) when return_lse.
    Variants (flash-attn 2.6's): window=(left, right) keys around the bottom-right aligned diagonal a query
    sees (-1: unbounded side; causal makes right 0), softcap=cap for logits cap * tanh(logits / cap) (0: off),
    alibi_slopes: float32 [Hq] or [B, Hq] on q's device, a bias -slope * |i + Sk - Sq - j| on the logits.
    User modifications compiled into the kernel (fa2jit/user_mods.hpp): score_mod, a CUDA expression of score,
    batch, head, q_idx, kv_idx, seqlen_q, seqlen_k giving the new logit (e.g. "score - 0.1f * (q_idx - kv_idx)"),
    mask_mod, a boolean expression of batch, head, q_idx, kv_idx, seqlen_q, seqlen_k (e.g.
    "doc_id[q_idx] == doc_id[kv_idx]"), extra={name: tensor}: the read-only device arrays they index.
    No autograd graph is recorded: fa2jit.attention is the differentiable form.
    """
    variant = _args.variant_of(window, softcap, alibi_slopes)
    torch = _tensors.import_torch()
    user = (score_mod, score_mod_grad, mask_mod, extra)
    has_user = any(value is not None for value in user)
    if out is None and stream is None and not has_user and torch is not None and isinstance(q, torch.Tensor) \
            and isinstance(k, torch.Tensor) and isinstance(v, torch.Tensor) \
            and (alibi_slopes is None or isinstance(alibi_slopes, torch.Tensor)):
        out, lse = _fast.forward(q, k, v, bool(causal), softmax_scale, layout, tune, cache_path, bool(return_lse),
                                 variant)
        return (out, lse) if return_lse else out
    args, qv, ov = _prepare(q, k, v, out, causal, softmax_scale, layout, tune, cache_path, variant)
    kept = _args.fill_user_mods(args, qv, *user)  # noqa: F841 (alive until the call is enqueued)
    if ov is None:
        if qv.tensor is None:
            raise argument_error("q is not a torch tensor, so fa2jit cannot allocate O: pass out=")
        out = torch.empty_like(qv.tensor)
        ov = _tensors.view("out", out, writable=True)
        _, o_strides = _args.dims("out", ov, layout)
        args.o_batch_stride, args.o_head_stride, args.o_row_stride = o_strides
    args.o = ov.ptr
    lse = None
    if return_lse:
        if qv.tensor is None:
            raise argument_error("return_lse=True needs q to be a torch tensor (the LSE is allocated with torch)")
        lse = torch.empty((args.batch, args.heads_q, args.seqlen_q), dtype=torch.float32, device=qv.device)
        args.lse = lse.data_ptr()
    lib, _ = _lib.library()
    with _args.on_device(qv):
        handle = _args.stream_handle(stream, qv)
        _lib.check(lib, lib.fa2_forward(ctypes.byref(args), ctypes.c_void_p(handle)))
    return (out, lse) if return_lse else out


def config_name(q, k, v, *, causal=False, softmax_scale=None, return_lse=False, layout="bshd", out=None,
                tune=None, cache_path=None, stream=None, window=None, softcap=0.0, alibi_slopes=None):
    """The name of the kernel config forward() would use for these arguments (resolving it by the
    tune policy, which may tune). Takes forward()'s arguments; nothing is written."""
    del return_lse, stream  # they do not select the kernel
    args, qv, ov = _prepare(q, k, v, out, causal, softmax_scale, layout, tune, cache_path,
                            _args.variant_of(window, softcap, alibi_slopes))
    args.o = (ov or qv).ptr  # only checked, never written: no output is needed for the query
    lib, _ = _lib.library()
    buffer = ctypes.create_string_buffer(256)
    with _args.on_device(qv):
        _lib.check(lib, lib.fa2_forward_config_name(ctypes.byref(args), buffer, len(buffer)))
    return buffer.value.decode()
