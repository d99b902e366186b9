"""fa2jit's passes as torch operators, torch.ops.fa2jit.*, so that torch.compile(fullgraph=True) traces a model
that calls fa2jit without a graph break, and so that autograd, FakeTensor and functionalization know them:

    fwd(q, k, v, causal, softmax_scale, deterministic, layout, tune, cache_path,
        window_left=-1, window_right=-1, softcap=0.0, alibi_slopes=None) -> (O, LSE)     differentiable
    bwd(dout, q, k, v, out, lse, causal, softmax_scale, deterministic, layout, tune, cache_path,
        window_left=-1, window_right=-1, softcap=0.0, alibi_slopes=None) -> (dQ, dK, dV)
    kvcache_fwd(q, k_cache, v_cache, cache_seqlens, block_table, causal, softmax_scale, num_splits, return_lse,
                tune, cache_path) -> (O, LSE)                  reads the caches only
    kvcache_append_fwd(q, k_cache!, v_cache!, cache_seqlens, block_table, k, v, causal, ...) -> (O, LSE)
                                                               writes k, v into the caches first
    varlen_fwd(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal, softmax_scale,
               num_splits, return_lse, tune, cache_path) -> (O, LSE)

Each has a CUDA kernel (the eager implementation: fa2jit's Python path and the library) and a fake one
(output shapes, strides and dtypes only, never the library), and fwd has its autograd formula registered
with the library (its backward calls bwd), so the compiled graph and its backward graph hold these ops.
The tune policy and the cache path are plain string arguments: they select the kernel at run time and
never break tracing. An LSE not asked for (return_lse False) is an empty float32 tensor.

They are defined with the low-level torch.library.Library (define / impl) rather than custom_op, whose
Python wrapper costs several microseconds more per call; fa2jit.attention calls them only while
torch.compile traces (and when a gradient is needed), and takes a direct path in plain eager inference
(_fast.py). Importing this module needs torch; fa2jit imports it on first use.
"""

import torch

from . import _args, _fast, _kvcache, _varlen
from ._autograd import _readable
from ._tensors import argument_error

NAMESPACE = "fa2jit"

_library = torch.library.Library(NAMESPACE, "DEF")
# The built-in variants come last, with defaults (off), so callers written before them keep working: the window's
# sides (-1 unbounded), the softcap (0 off) and the ALiBi slopes (float32 [Hq] or [B, Hq]; no gradient).
_VARIANT_SCHEMA = "int window_left=-1, int window_right=-1, float softcap=0.0, Tensor? alibi_slopes=None"
_library.define("fwd(Tensor q, Tensor k, Tensor v, bool causal, float? softmax_scale, bool deterministic, str layout, "
                f"str? tune, str? cache_path, {_VARIANT_SCHEMA}) -> (Tensor, Tensor)")
_library.define("bwd(Tensor dout, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, bool causal, "
                f"float? softmax_scale, bool deterministic, str layout, str? tune, str? cache_path, {_VARIANT_SCHEMA}) "
                "-> (Tensor, Tensor, Tensor)")
# Two KV-cache operators: one only reads the caches (a decode step with no append), so functionalization
# never copies them; the other writes k and v into them before attending.
_library.define("kvcache_fwd(Tensor q, Tensor k_cache, Tensor v_cache, Tensor? cache_seqlens, Tensor? block_table, "
                "bool causal, float? softmax_scale, int num_splits, bool return_lse, str? tune, str? cache_path) "
                "-> (Tensor, Tensor)")
_library.define("kvcache_append_fwd(Tensor q, Tensor(a!) k_cache, Tensor(b!) v_cache, Tensor cache_seqlens, "
                "Tensor? block_table, Tensor k, Tensor v, bool causal, float? softmax_scale, int num_splits, "
                "bool return_lse, str? tune, str? cache_path) -> (Tensor, Tensor)")
_library.define("varlen_fwd(Tensor q, Tensor k, Tensor v, Tensor cu_seqlens_q, Tensor cu_seqlens_k, int max_seqlen_q, "
                "int max_seqlen_k, bool causal, float? softmax_scale, int num_splits, bool return_lse, str? tune, "
                "str? cache_path) -> (Tensor, Tensor)")


def _lse_like(q, rows, wanted):
    """The LSE output: float32 `rows` on q's device, or an empty one when it was not asked for."""
    return q.new_empty(rows if wanted else (0,), dtype=torch.float32)


def _bhs(q, layout):
    """(batch, heads, seqlen) of q in `layout`: the LSE's shape."""
    return (q.shape[0], q.shape[2], q.shape[1]) if layout == "bshd" else (q.shape[0], q.shape[1], q.shape[2])


# The eager (CUDA) implementations.

def _variant(window_left, window_right, softcap, alibi_slopes):
    return _args.variant_of(None if (window_left, window_right) == (-1, -1) else (window_left, window_right), softcap,
                            alibi_slopes)


def _fwd(q, k, v, causal, softmax_scale, deterministic, layout, tune, cache_path, window_left=-1, window_right=-1,
         softcap=0.0, alibi_slopes=None):
    del deterministic  # the backward's choice, carried here so the autograd formula sees it
    return _fast.forward(q, k, v, causal, softmax_scale, layout, tune, cache_path, True,
                         _variant(window_left, window_right, softcap, alibi_slopes))


def _bwd(dout, q, k, v, out, lse, causal, softmax_scale, deterministic, layout, tune, cache_path, window_left=-1,
         window_right=-1, softcap=0.0, alibi_slopes=None):
    # dO arrives with whatever strides its producer gave it (a zero-stride expand for out.sum()); only real
    # tensors can be inspected, so the copy, when needed, happens here rather than in the traced formula.
    dout = _readable(dout, layout, torch)
    return _fast.backward(dout, q, k, v, out, lse, causal, softmax_scale, deterministic, layout, tune, cache_path,
                          _variant(window_left, window_right, softcap, alibi_slopes))


def _kvcache_fwd(q, k_cache, v_cache, cache_seqlens, block_table, causal, softmax_scale, num_splits, return_lse, tune,
                 cache_path):
    return _kvcache_append_fwd(q, k_cache, v_cache, cache_seqlens, block_table, None, None, causal, softmax_scale,
                               num_splits, return_lse, tune, cache_path)


def _kvcache_append_fwd(q, k_cache, v_cache, cache_seqlens, block_table, k, v, causal, softmax_scale, num_splits,
                        return_lse, tune, cache_path):
    result = _kvcache.forward_with_kvcache(q, k_cache, v_cache, cache_seqlens=cache_seqlens, block_table=block_table,
                                           k=k, v=v, causal=causal, softmax_scale=softmax_scale, return_lse=return_lse,
                                           num_splits=num_splits, tune=tune, cache_path=cache_path)
    return result if return_lse else (result, _lse_like(q, None, False))


def _varlen_fwd(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal, softmax_scale, num_splits,
                return_lse, tune, cache_path):
    result = _varlen.varlen_forward(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal=causal,
                                    softmax_scale=softmax_scale, return_lse=return_lse, num_splits=num_splits,
                                    tune=tune, cache_path=cache_path)
    return result if return_lse else (result, _lse_like(q, None, False))


_library.impl("fwd", _fwd, "CUDA")
_library.impl("bwd", _bwd, "CUDA")
_library.impl("kvcache_fwd", _kvcache_fwd, "CUDA")
_library.impl("kvcache_append_fwd", _kvcache_append_fwd, "CUDA")
_library.impl("varlen_fwd", _varlen_fwd, "CUDA")


# The fake implementations: what the eager ones allocate (torch.empty_like keeps q's strides), nothing run.

@torch.library.register_fake(f"{NAMESPACE}::fwd")
def _fwd_fake(q, k, v, causal, softmax_scale, deterministic, layout, tune, cache_path, window_left=-1,
              window_right=-1, softcap=0.0, alibi_slopes=None):
    return torch.empty_like(q), _lse_like(q, _bhs(q, layout), True)


@torch.library.register_fake(f"{NAMESPACE}::bwd")
def _bwd_fake(dout, q, k, v, out, lse, causal, softmax_scale, deterministic, layout, tune, cache_path, window_left=-1,
              window_right=-1, softcap=0.0, alibi_slopes=None):
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


@torch.library.register_fake(f"{NAMESPACE}::kvcache_fwd")
def _kvcache_fwd_fake(q, k_cache, v_cache, cache_seqlens, block_table, causal, softmax_scale, num_splits, return_lse,
                      tune, cache_path):
    return torch.empty_like(q), _lse_like(q, _bhs(q, "bshd"), return_lse)


@torch.library.register_fake(f"{NAMESPACE}::kvcache_append_fwd")
def _kvcache_append_fwd_fake(q, k_cache, v_cache, cache_seqlens, block_table, k, v, causal, softmax_scale, num_splits,
                             return_lse, tune, cache_path):
    return torch.empty_like(q), _lse_like(q, _bhs(q, "bshd"), return_lse)


@torch.library.register_fake(f"{NAMESPACE}::varlen_fwd")
def _varlen_fwd_fake(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal, softmax_scale,
                     num_splits, return_lse, tune, cache_path):
    return torch.empty_like(q), _lse_like(q, (q.shape[1], q.shape[0]), return_lse)


# Autograd of fwd: O's gradient through bwd; the LSE is an output with no gradient.

def _setup_context(ctx, inputs, output):
    q, k, v = inputs[:3]
    out, lse = output
    ctx.save_for_backward(q, k, v, out, lse)
    ctx.mark_non_differentiable(lse)
    ctx.options = tuple(inputs[3:])  # causal .. cache_path and the variants, as bwd takes them


def _fwd_backward(ctx, dout, dlse):
    del dlse  # non-differentiable
    q, k, v, out, lse = ctx.saved_tensors
    if dout.dtype != out.dtype:
        dout = dout.to(out.dtype)
    # One kernel computes all three gradients; autograd is handed None for inputs that need none.
    dq, dk, dv = torch.ops.fa2jit.bwd(dout, q, k, v, out, lse, *ctx.options)
    needed = ctx.needs_input_grad
    return (dq if needed[0] else None, dk if needed[1] else None, dv if needed[2] else None) + \
        (None,) * (len(needed) - 3)


torch.library.register_autograd(f"{NAMESPACE}::fwd", _fwd_backward, setup_context=_setup_context)


# bwd has no derivative in fa2jit. Without a formula, autograd's fallback would only warn and hand back no
# gradient (a gradient penalty's second derivative would silently be 0), so it gets one that refuses.

def _no_context(ctx, inputs, output):
    del ctx, inputs, output


def _bwd_backward(ctx, *grads):
    del ctx, grads
    raise argument_error("fa2jit's backward is not differentiable: a double backward (create_graph=True through "
                         "fa2jit.attention, e.g. a gradient penalty) needs attention's second derivative, which "
                         "fa2jit does not have")


torch.library.register_autograd(f"{NAMESPACE}::bwd", _bwd_backward, setup_context=_no_context)


def _refuse_gradients(what, tensors):
    """kvcache_fwd and varlen_fwd have no backward: a call that autograd would record is refused by name
    (autograd's fallback would only warn and give no gradient). Runs while tracing too (fake tensors keep
    requires_grad)."""
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        raise argument_error(f"{what} has no backward in fa2jit, but an input requires grad: call it under "
                             "torch.no_grad() or detach the inputs")


def attention(q, k, v, causal, softmax_scale, deterministic, layout, tune, cache_path, variant=_args.NO_VARIANT):
    """O of fa2jit.attention through the fwd operator (differentiable); `variant`: _args.variant_of's tuple."""
    window_left, window_right, softcap, alibi_slopes = variant
    return torch.ops.fa2jit.fwd(q, k, v, causal, softmax_scale, deterministic, layout, tune, cache_path, window_left,
                                window_right, softcap, alibi_slopes)[0]


def kvcache(q, k_cache, v_cache, cache_seqlens, block_table, k, v, causal, softmax_scale, num_splits, return_lse,
            tune=None, cache_path=None):
    """fa2jit.forward_with_kvcache's result through the kvcache_fwd (or, appending, kvcache_append_fwd) operator."""
    _refuse_gradients("forward_with_kvcache", (q, k_cache, v_cache, k, v))
    if k is None and v is None:
        out, lse = torch.ops.fa2jit.kvcache_fwd(q, k_cache, v_cache, cache_seqlens, block_table, causal, softmax_scale,
                                                num_splits, return_lse, tune, cache_path)
    else:
        if k is None or v is None or cache_seqlens is None:
            raise argument_error("appending to the cache needs k, v and cache_seqlens together")
        out, lse = torch.ops.fa2jit.kvcache_append_fwd(q, k_cache, v_cache, cache_seqlens, block_table, k, v, causal,
                                                       softmax_scale, num_splits, return_lse, tune, cache_path)
    return (out, lse) if return_lse else out


def varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal, softmax_scale, num_splits=0,
           return_lse=False, tune=None, cache_path=None):
    """fa2jit.varlen_forward's result through the varlen_fwd operator."""
    _refuse_gradients("varlen_forward", (q, k, v))
    out, lse = torch.ops.fa2jit.varlen_fwd(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal,
                                           softmax_scale, num_splits, return_lse, tune, cache_path)
    return (out, lse) if return_lse else out
