"""flash-attn's entry points under their own names and arguments, so that switching is an import change:

    from fa2jit import flash_attn_func, flash_attn_varlen_func, flash_attn_with_kvcache

The arguments, their order and their defaults are flash-attn 2.6's. flash_attn_func has the sliding window,
softcap and ALiBi; what fa2jit does not (yet) support (dropout, those three variants in the varlen and KV-cache
entries other than the causal window (-1, 0), rotary embeddings, cache_batch_idx, cache_leftpad, the attention
probabilities, the varlen backward, a paged varlen cache) raises Fa2Error naming the argument and its value:
nothing is silently ignored. Everything else maps onto fa2jit.attention,
fa2jit.varlen_forward and fa2jit.forward_with_kvcache; while torch.compile traces, onto their torch operators
(torch.ops.fa2jit.*), so that a compiled model keeps one graph."""

from . import _tensors
from ._autograd import attention, torch_ops
from ._kvcache import forward_with_kvcache
from ._tensors import argument_error
from ._varlen import varlen_forward


def _unbounded(window_size):
    return window_size is None or (len(window_size) == 2 and all(int(w) == -1 for w in window_size))


def _causal_window(window_size):
    """flash-attn's causal mask is the window (-1, 0): it asks for causal=True, nothing more."""
    return window_size is not None and len(window_size) == 2 and int(window_size[0]) == -1 and int(window_size[1]) == 0


def _compiling(torch):
    return torch is not None and torch.compiler.is_compiling()


def _reject_unsupported(function, dropout_p=0.0, window_size=(-1, -1), softcap=0.0, alibi_slopes=None,
                        variants=False, **more):
    """Raises for the first argument fa2jit cannot honour; `more` maps further names to (value, supported).
    variants: the entry has the window, softcap and ALiBi (else they are not supported yet there)."""
    where = f"not supported yet by {function} (fa2jit.attention and flash_attn_func have it)"
    checks = [("dropout_p", dropout_p, dropout_p == 0.0, "dropout (issue 13) is not in fa2jit yet: pass 0.0"),
              ("window_size", window_size, variants or _unbounded(window_size) or _causal_window(window_size),
               f"a sliding window is {where}: pass (-1, -1) or the causal (-1, 0)"),
              ("softcap", softcap, variants or softcap == 0.0, f"softcap is {where}: pass 0.0"),
              ("alibi_slopes", "a tensor" if alibi_slopes is not None else None, variants or alibi_slopes is None,
               f"ALiBi is {where}: pass None")]
    checks += [(name, value, supported, hint) for name, (value, supported, hint) in more.items()]
    for name, value, supported, hint in checks:
        if not supported:
            raise argument_error(f"{function}: {name}={value!r} is not supported; {hint}")


def flash_attn_func(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0,
                    alibi_slopes=None, deterministic=False, return_attn_probs=False):
    """flash_attn.flash_attn_func: q [B, Sq, Hq, D], k/v [B, Sk, Hkv, D]; differentiable (fa2jit.attention)."""
    _reject_unsupported("flash_attn_func", dropout_p, window_size, softcap, alibi_slopes, variants=True,
                        return_attn_probs=(return_attn_probs, not return_attn_probs,
                                           "fa2jit returns no attention probabilities: pass False"))
    window = None if window_size is None else tuple(window_size)
    return attention(q, k, v, causal=causal, softmax_scale=softmax_scale, deterministic=deterministic, window=window,
                     softcap=softcap, alibi_slopes=alibi_slopes)


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p=0.0,
                           softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0, alibi_slopes=None,
                           deterministic=False, return_attn_probs=False, block_table=None):
    """flash_attn.flash_attn_varlen_func: q [total_q, Hq, D], k/v [total_k, Hkv, D], int32 cu_seqlens [B + 1].
    Forward only for now: inputs that require grad (with grad mode on) are an error, not a silent detach."""
    _reject_unsupported("flash_attn_varlen_func", dropout_p, window_size, softcap, alibi_slopes,
                        return_attn_probs=(return_attn_probs, not return_attn_probs,
                                           "fa2jit returns no attention probabilities: pass False"),
                        block_table=("a tensor" if block_table is not None else None, block_table is None,
                                     "a paged varlen cache is not supported: use flash_attn_with_kvcache"))
    torch = _tensors.import_torch()
    if torch is not None and torch.is_grad_enabled() and any(
            isinstance(t, torch.Tensor) and t.requires_grad for t in (q, k, v)):
        raise argument_error("flash_attn_varlen_func: q, k or v requires grad, but fa2jit's varlen path has no "
                             "backward yet; call it under torch.no_grad(), or use flash_attn_func on padded "
                             "batches to train")
    causal = causal or _causal_window(window_size)
    if _compiling(torch):
        return torch_ops().varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal, softmax_scale)
    return varlen_forward(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal=causal,
                          softmax_scale=softmax_scale)


def flash_attn_with_kvcache(q, k_cache, v_cache, k=None, v=None, rotary_cos=None, rotary_sin=None,
                            cache_seqlens=None, cache_batch_idx=None, cache_leftpad=None, block_table=None,
                            softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0,
                            rotary_interleaved=True, alibi_slopes=None, num_splits=0, return_softmax_lse=False):
    """flash_attn.flash_attn_with_kvcache: new queries against a contiguous or paged cache, appending k/v first.
    cache_seqlens may be an int (every sequence) or int32 [B]; rotary_interleaved matters only with rotary."""
    _reject_unsupported(
        "flash_attn_with_kvcache", 0.0, window_size, softcap, alibi_slopes,
        rotary_cos=("a tensor" if rotary_cos is not None else None, rotary_cos is None and rotary_sin is None,
                    "rotary embeddings are not applied by fa2jit: rotate q and k before the call"),
        cache_batch_idx=("a tensor" if cache_batch_idx is not None else None, cache_batch_idx is None,
                         "index the cache before the call (k_cache[cache_batch_idx])"),
        cache_leftpad=("a tensor" if cache_leftpad is not None else None, cache_leftpad is None,
                       "left-padded caches are not supported"))
    torch = _tensors.import_torch()
    if isinstance(cache_seqlens, int):
        if torch is None or not isinstance(q, torch.Tensor):
            raise argument_error("flash_attn_with_kvcache: q must be a torch tensor")
        cache_seqlens = torch.full((q.shape[0],), cache_seqlens, dtype=torch.int32, device=q.device)
    causal = causal or _causal_window(window_size)
    if _compiling(torch):
        return torch_ops().kvcache(q, k_cache, v_cache, cache_seqlens, block_table, k, v, causal, softmax_scale,
                                   num_splits, return_softmax_lse)
    return forward_with_kvcache(q, k_cache, v_cache, cache_seqlens=cache_seqlens, block_table=block_table, k=k, v=v,
                                causal=causal, softmax_scale=softmax_scale, return_lse=return_softmax_lse,
                                num_splits=num_splits)
