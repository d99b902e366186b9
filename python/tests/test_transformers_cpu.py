"""fa2jit's transformers integration without a GPU: what reaches the attention function (layout, GQA heads,
the causal flag, no mask), what the mask function accepts and refuses, and a tiny Llama on CPU whose logits
and greedy tokens match "sdpa" when the kernel call is stood in for by an exact float32 attention with
fa2jit's conventions (bottom-right causal, [B, H, S, D] in, the output allocated like q). Skips without
torch or transformers. The same model against fa2jit's kernels runs in test_transformers_gpu.py."""

import math
import os
import sys

import pytest

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, PYTHON_DIR)

import fa2jit  # noqa: E402

torch = pytest.importorskip("torch", reason="torch is not installed")
transformers = pytest.importorskip("transformers", reason="transformers is not installed")
from fa2jit.integrations import transformers as fa2jit_hf  # noqa: E402

F = torch.nn.functional
NAME = fa2jit_hf.register()


class StandIn:
    """fa2jit.attention's contract in float32 on CPU, recording each call's arguments."""

    def __init__(self):
        self.calls = []

    def __call__(self, q, k, v, *, causal=False, softmax_scale=None, layout="bshd", **options):
        assert layout == "bhsd" and not options
        self.calls.append(dict(q=tuple(q.shape), k=tuple(k.shape), causal=causal, scale=softmax_scale))
        seqlen_q, seqlen_k = q.shape[2], k.shape[2]
        mask = None
        if causal:  # bottom-right: query i sees keys j <= i + Sk - Sq
            mask = torch.ones(seqlen_q, seqlen_k, dtype=torch.bool).tril(seqlen_k - seqlen_q)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=softmax_scale,
                                             enable_gqa=q.shape[1] != k.shape[1])
        return torch.empty_like(q).copy_(out)


def tiny_llama(attn_implementation, seed=0):
    config = transformers.LlamaConfig(vocab_size=1000, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                                      num_attention_heads=8, num_key_value_heads=2, head_dim=64,
                                      max_position_embeddings=256, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(seed)
    return transformers.LlamaForCausalLM._from_config(config, attn_implementation=attn_implementation).eval()


@pytest.fixture
def stand_in(monkeypatch):
    recorder = StandIn()
    monkeypatch.setattr(fa2jit, "attention", recorder)
    return recorder


def prompt(batch=2, length=12, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(3, 1000, (batch, length), generator=generator)


def test_prefill_and_greedy_generation_match_sdpa(stand_in):
    model, reference = tiny_llama(NAME), tiny_llama("sdpa")
    reference.load_state_dict(model.state_dict())
    ids = prompt()
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, reference(ids).logits, rtol=1e-4, atol=1e-4)
    first = stand_in.calls[0]
    assert first["q"] == (2, 8, 12, 64) and first["k"] == (2, 2, 12, 64)  # GQA heads as they are, not repeated
    assert first["causal"] is True and first["scale"] == pytest.approx(1 / math.sqrt(64))
    options = dict(max_new_tokens=16, min_new_tokens=16, do_sample=False, attention_mask=torch.ones_like(ids))
    with torch.no_grad():
        tokens = model.generate(ids, **options)
        expected = reference.generate(ids, **options)
    assert torch.equal(tokens, expected)
    decode = stand_in.calls[-1]
    assert decode["q"][2] == 1 and decode["k"][2] == 12 + 15 and decode["causal"] is True  # one row vs the cache


def test_training_step_matches_sdpa(stand_in):
    model, reference = tiny_llama(NAME), tiny_llama("sdpa")
    reference.load_state_dict(model.state_dict())
    ids = prompt(length=24)
    for each in (model, reference):
        each.train()
        each(ids, labels=ids).loss.backward()
    assert stand_in.calls and all(call["causal"] for call in stand_in.calls)
    for (name, parameter), expected in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(parameter.grad, expected.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_padding_is_refused_not_ignored(stand_in):
    model = tiny_llama(NAME)
    ids = prompt()
    padded = torch.ones_like(ids)
    padded[0, :3] = 0
    with torch.no_grad(), pytest.raises(fa2jit.Fa2Error, match="padded batch"):
        model(ids, attention_mask=padded)
    with torch.no_grad(), pytest.raises(fa2jit.Fa2Error, match=r"\(2, 1, 12, 12\) mask"):
        model(ids, attention_mask=torch.ones(2, 1, 12, 12, dtype=torch.bool))
    assert not stand_in.calls


def test_mask_function_rules():
    from transformers import masking_utils
    causal = masking_utils.causal_mask_function
    ones = torch.ones(2, 20, dtype=torch.bool)
    # A prefill, a decode step and a chunk against a cache: the queries are the last keys' positions.
    assert fa2jit_hf.mask(batch_size=2, q_length=20, q_offset=0, kv_length=20, mask_function=causal) is None
    assert fa2jit_hf.mask(batch_size=2, q_length=1, q_offset=19, kv_length=20, attention_mask=ones,
                          mask_function=causal) is None
    assert fa2jit_hf.mask(batch_size=2, cache_position=torch.arange(12, 20), kv_length=20,
                          mask_function=causal) is None  # transformers 4.5x's arguments
    with pytest.raises(fa2jit.Fa2Error, match="bottom-right"):
        fa2jit_hf.mask(batch_size=2, q_length=5, q_offset=0, kv_length=20, mask_function=causal)
    with pytest.raises(fa2jit.Fa2Error, match="static cache"):
        fa2jit_hf.mask(batch_size=2, q_length=5, q_offset=torch.tensor(0), kv_length=64, mask_function=causal)
    with pytest.raises(fa2jit.Fa2Error, match="static cache"):
        fa2jit_hf.mask(batch_size=2, q_length=5, q_offset=0, kv_length=64, attention_mask=ones[:, :5],
                       mask_function=causal)
    with pytest.raises(fa2jit.Fa2Error, match="sliding window"):
        fa2jit_hf.mask(batch_size=2, q_length=20, kv_length=20,
                       mask_function=masking_utils.sliding_window_causal_mask_function(4))
    with pytest.raises(fa2jit.Fa2Error, match="sliding window"):
        fa2jit_hf.mask(batch_size=2, q_length=20, kv_length=20, mask_function=causal, local_size=8)


def test_attention_function_refuses_what_it_cannot_honour(stand_in):
    module = torch.nn.Module()
    q = torch.zeros(1, 4, 8, 64)
    with pytest.raises(fa2jit.Fa2Error, match="dropout"):
        fa2jit_hf.attention_forward(module, q, q, q, None, dropout=0.1)
    for keyword in ("sliding_window", "position_bias", "sinks", "softcap"):  # each would change the scores
        with pytest.raises(fa2jit.Fa2Error, match=f"does not support {keyword}="):
            fa2jit_hf.attention_forward(module, q, q, q, None, **{keyword: 4096})
    fa2jit_hf.attention_forward(module, q, q, q, None, position_ids=torch.arange(8), use_cache=True)
    module.is_causal = False
    out, weights = fa2jit_hf.attention_forward(module, q, q, q, None, scaling=0.5)
    assert out.shape == (1, 8, 4, 64) and weights is None
    assert stand_in.calls[-1]["causal"] is False and stand_in.calls[-1]["scale"] == 0.5
    fa2jit_hf.attention_forward(module, q, q, q, None, is_causal=True)
    assert stand_in.calls[-1]["causal"] is True  # the call's is_causal wins over the module's
