"""The flash-attn drop-in names without a GPU or torch: their signatures are flash-attn 2.6's (names, order,
defaults), and every argument fa2jit cannot honour is an error naming it, raised before any work is done."""

import inspect
import os
import sys

import pytest

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, PYTHON_DIR)

import fa2jit  # noqa: E402

# flash_attn/flash_attn_interface.py (flash-attn 2.6): parameter names in order, with their defaults.
FLASH_ATTN_SIGNATURES = {
    "flash_attn_func": [("q", None), ("k", None), ("v", None), ("dropout_p", 0.0), ("softmax_scale", None),
                        ("causal", False), ("window_size", (-1, -1)), ("softcap", 0.0), ("alibi_slopes", None),
                        ("deterministic", False), ("return_attn_probs", False)],
    "flash_attn_varlen_func": [("q", None), ("k", None), ("v", None), ("cu_seqlens_q", None), ("cu_seqlens_k", None),
                               ("max_seqlen_q", None), ("max_seqlen_k", None), ("dropout_p", 0.0),
                               ("softmax_scale", None), ("causal", False), ("window_size", (-1, -1)),
                               ("softcap", 0.0), ("alibi_slopes", None), ("deterministic", False),
                               ("return_attn_probs", False), ("block_table", None)],
    "flash_attn_with_kvcache": [("q", None), ("k_cache", None), ("v_cache", None), ("k", None), ("v", None),
                                ("rotary_cos", None), ("rotary_sin", None), ("cache_seqlens", None),
                                ("cache_batch_idx", None), ("cache_leftpad", None), ("block_table", None),
                                ("softmax_scale", None), ("causal", False), ("window_size", (-1, -1)),
                                ("softcap", 0.0), ("rotary_interleaved", True), ("alibi_slopes", None),
                                ("num_splits", 0), ("return_softmax_lse", False)],
}


@pytest.mark.parametrize("name", sorted(FLASH_ATTN_SIGNATURES))
def test_signatures_are_flash_attns(name):
    parameters = inspect.signature(getattr(fa2jit, name)).parameters.values()
    got = [(p.name, None if p.default is inspect.Parameter.empty else p.default) for p in parameters]
    assert got == FLASH_ATTN_SIGNATURES[name]


class FakeArray:
    """Stands for a tensor: the unsupported-argument checks run before any tensor is looked at."""


Q = K = V = FakeArray()


@pytest.mark.parametrize("call, named", [
    (lambda: fa2jit.flash_attn_func(Q, K, V, dropout_p=0.1), "dropout_p=0.1"),
    (lambda: fa2jit.flash_attn_func(Q, K, V, return_attn_probs=True), "return_attn_probs=True"),
    (lambda: fa2jit.flash_attn_varlen_func(Q, K, V, None, None, 1, 1, dropout_p=0.5), "dropout_p=0.5"),
    (lambda: fa2jit.flash_attn_varlen_func(Q, K, V, None, None, 1, 1, block_table=FakeArray()), "block_table"),
    (lambda: fa2jit.flash_attn_varlen_func(Q, K, V, None, None, 1, 1, window_size=(128, 0)), "window_size=(128, 0)"),
    (lambda: fa2jit.flash_attn_varlen_func(Q, K, V, None, None, 1, 1, softcap=50.0), "softcap=50.0"),
    (lambda: fa2jit.flash_attn_varlen_func(Q, K, V, None, None, 1, 1, alibi_slopes=FakeArray()), "alibi_slopes"),
    (lambda: fa2jit.flash_attn_with_kvcache(Q, K, V, alibi_slopes=FakeArray()), "alibi_slopes"),
    (lambda: fa2jit.flash_attn_with_kvcache(Q, K, V, rotary_cos=FakeArray(), rotary_sin=FakeArray()), "rotary_cos"),
    (lambda: fa2jit.flash_attn_with_kvcache(Q, K, V, cache_batch_idx=FakeArray()), "cache_batch_idx"),
    (lambda: fa2jit.flash_attn_with_kvcache(Q, K, V, cache_leftpad=FakeArray()), "cache_leftpad"),
    (lambda: fa2jit.flash_attn_with_kvcache(Q, K, V, window_size=[-1, 64]), "window_size=[-1, 64]"),
    (lambda: fa2jit.flash_attn_with_kvcache(Q, K, V, softcap=30.0), "softcap=30.0"),
])
def test_unsupported_arguments_are_named_errors(call, named):
    with pytest.raises(fa2jit.Fa2Error) as raised:
        call()
    assert named in str(raised.value)
    assert "not supported" in str(raised.value)
    assert raised.value.status == fa2jit.ERROR_ARGUMENT


def test_the_causal_window_is_accepted():
    """flash-attn expresses causal as window_size=(-1, 0): that passes the checks (then fails on the fakes)."""
    for call in (lambda: fa2jit.flash_attn_func(Q, K, V, window_size=(-1, 0)),
                 lambda: fa2jit.flash_attn_with_kvcache(Q, K, V, window_size=(-1, 0))):
        with pytest.raises(fa2jit.Fa2Error) as raised:
            call()
        assert "not supported" not in str(raised.value)


def test_flash_attn_func_takes_the_variants():
    """flash_attn_func has the sliding window, softcap and ALiBi (issue 13): they pass its checks and reach
    fa2jit.attention (which then needs torch or tensors, a different error)."""
    for call in (lambda: fa2jit.flash_attn_func(Q, K, V, window_size=(128, 0)),
                 lambda: fa2jit.flash_attn_func(Q, K, V, softcap=50.0),
                 lambda: fa2jit.flash_attn_func(Q, K, V, alibi_slopes=FakeArray())):
        with pytest.raises(fa2jit.Fa2Error) as raised:
            call()
        assert "not supported" not in str(raised.value)


def test_variants_in_the_other_entries_say_not_supported_yet():
    with pytest.raises(fa2jit.Fa2Error, match="not supported yet by flash_attn_with_kvcache"):
        fa2jit.flash_attn_with_kvcache(Q, K, V, softcap=30.0)


def test_supported_defaults_pass_the_checks():
    """With every unsupported argument at its default the call gets past the checks (and then fails on the
    fake tensors, which is a different error)."""
    with pytest.raises(fa2jit.Fa2Error) as raised:
        fa2jit.flash_attn_func(Q, K, V, window_size=[-1, -1])
    assert "not supported" not in str(raised.value)
