"""fa2jit as an attention implementation of HuggingFace transformers (4.53 and later: AttentionInterface and
AttentionMaskInterface):

    import fa2jit.integrations.transformers
    fa2jit.integrations.transformers.register()          # the name "fa2jit"
    model = AutoModelForCausalLM.from_config(config, attn_implementation="fa2jit")   # or from_pretrained(...)

transformers hands the attention function q [B, Hq, S, D] and k, v [B, Hkv, S_k, D] (fewer KV heads: GQA is
fa2jit's own, nothing is repeated) and takes the output back as [B, S, Hq, D]. fa2jit.attention reads them as
they are (layout "bhsd") and is differentiable, so the model trains too.

The mask. A model builds its mask through the mask function registered under the same name; an
implementation without one gets no mask at all (transformers drops it), and padding would be ignored
silently. fa2jit's mask function returns None, meaning "the module's own is_causal", exactly when that is
the mask: causal (or bidirectional) over all keys, no padding, and the queries being the last keys'
positions (a prefill, a decode step, a chunk against a DynamicCache), since fa2jit's causal mask is
bottom-right aligned. Everything else raises Fa2Error naming what it met: a padded batch, packed
sequences, sliding windows or chunked attention, a static cache (whose unwritten tail must be masked), a
custom mask. Use attn_implementation="sdpa" for those. Checking for padding reads the 2-D mask on the host
once per forward (as transformers' own flash-attention mask does), and so does transformers 4.5x's
cache_position: under torch.compile(fullgraph=True) call the model without an attention_mask (on
transformers 5), or let those reads break the graph.
"""

import fa2jit

from .._tensors import argument_error

NAME = "fa2jit"


# Keywords transformers' layers pass that do not change the attention itself.
_HARMLESS_KEYWORDS = frozenset({"is_causal", "position_ids", "cache_position", "output_attentions", "use_cache",
                                "past_key_value", "past_key_values", "layer_idx"})


def attention_forward(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers' attention function: (O [B, S, Hq, D], None); attention weights are never materialized."""
    if attention_mask is not None:
        raise argument_error(
            f"fa2jit's transformers attention got a {tuple(attention_mask.shape)} mask; it takes causal or full "
            f"attention without padding only (register() also registers the mask function that expresses that "
            f"as no mask). Use attn_implementation='sdpa' for padded batches or custom masks")
    if dropout:
        raise argument_error(f"fa2jit has no attention dropout (got {dropout}); set the config's attention_dropout "
                             "to 0.0")
    # Anything else a layer passes changes the scores (position_bias, sinks, sliding_window, softcap, s_aux, ...):
    # only the keywords known to leave them alone may be ignored.
    for name, given in kwargs.items():
        if given is not None and name not in _HARMLESS_KEYWORDS:
            raise argument_error(f"fa2jit's transformers attention does not support {name}= (the layer passes "
                                 f"it and fa2jit would ignore it); use attn_implementation='sdpa' for this model")
    is_causal = kwargs.get("is_causal")
    if is_causal is None:
        is_causal = getattr(module, "is_causal", True)
    out = fa2jit.attention(query, key, value, causal=bool(is_causal), softmax_scale=scaling, layout="bhsd")
    return out.transpose(1, 2), None


def _pattern(mask_function):
    """"causal" or "full" for transformers' two plain mask functions, else None."""
    from transformers import masking_utils
    if mask_function is None or mask_function is masking_utils.causal_mask_function:
        return "causal"
    if mask_function is getattr(masking_utils, "bidirectional_mask_function", object()):
        return "full"
    return None


def _last_query_position(q_length, q_offset, cache_position):
    """The position of the last query row (transformers 5 gives q_length and q_offset, 4.5x cache_position)."""
    if cache_position is not None:
        return int(cache_position[-1])
    if not isinstance(q_offset, int):
        raise argument_error("fa2jit's transformers attention cannot serve a static cache (its query offset is a "
                             "tensor and its unwritten keys must be masked); use a DynamicCache, or "
                             "attn_implementation='sdpa'")
    return q_offset + q_length - 1


def mask(batch_size=None, kv_length=None, kv_offset=0, mask_function=None, attention_mask=None, q_length=None,
         q_offset=0, cache_position=None, local_size=None, **kwargs):
    """transformers' mask function for "fa2jit": None where fa2jit's own causal flag is the mask, else Fa2Error."""
    del batch_size, kwargs
    pattern = _pattern(mask_function)
    if pattern is None or local_size is not None:
        raise argument_error("fa2jit's transformers attention takes plain causal or full attention; this layer asks "
                             "for another pattern (sliding window, chunked attention, packed sequences or a custom "
                             "mask function): use attn_implementation='sdpa'")
    if attention_mask is not None:
        if attention_mask.dim() != 2:
            raise argument_error(f"fa2jit's transformers attention takes no {attention_mask.dim()}-D mask")
        if attention_mask.shape[-1] < kv_offset + kv_length:
            raise argument_error("fa2jit's transformers attention cannot serve keys the mask does not cover (a static "
                                 "cache's unwritten tail); use a DynamicCache, or attn_implementation='sdpa'")
        if not bool(attention_mask[:, kv_offset:kv_offset + kv_length].all()):
            raise argument_error("fa2jit's transformers attention got a padded batch (attention_mask has zeros); "
                                 "it has no padding mask yet: use attn_implementation='sdpa' for padded batches")
    if pattern == "causal":
        last = _last_query_position(q_length, q_offset, cache_position)
        if last != kv_offset + kv_length - 1:
            raise argument_error(f"the queries end at position {last} but the keys at {kv_offset + kv_length - 1}; "
                                 "fa2jit's causal mask is bottom-right aligned, so the last query must be the last key")
    return None


def register(name=NAME):
    """Registers the attention function and its mask function under `name`; returns the name."""
    from transformers import AttentionInterface, AttentionMaskInterface
    AttentionInterface.register(name, attention_forward)
    AttentionMaskInterface.register(name, mask)
    return name
