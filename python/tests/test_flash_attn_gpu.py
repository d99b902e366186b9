"""The flash-attn drop-in names on a GPU: each gives what the fa2jit call it maps onto gives, bitwise, on the
same inputs, and flash_attn_func is differentiable; the varlen one refuses inputs that need a gradient. Needs
torch with a CUDA GPU and a built libfa2jit.so; skips elsewhere."""

import math
import os
import sys

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(TESTS_DIR))
sys.path.insert(0, TESTS_DIR)

import fa2jit  # noqa: E402

from gpu_required import torch_on_gpu  # noqa: E402

torch = torch_on_gpu()

from attention_reference import make, relative_error  # noqa: E402

BF16 = torch.bfloat16


def test_flash_attn_func_is_fa2jit_attention_and_differentiable():
    q = make(2, 257, 8, 128, BF16, "bshd", 1).requires_grad_()
    k = make(2, 300, 2, 128, BF16, "bshd", 2).requires_grad_()
    v = make(2, 300, 2, 128, BF16, "bshd", 3).requires_grad_()
    dout = make(2, 257, 8, 128, BF16, "bshd", 4)
    out = fa2jit.flash_attn_func(q, k, v, causal=True, softmax_scale=0.1, deterministic=True)
    out.backward(dout)
    grads = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    expected = fa2jit.attention(q, k, v, causal=True, softmax_scale=0.1, deterministic=True)
    expected.backward(dout)
    assert torch.equal(out, expected)
    for got, t in zip(grads, (q, k, v)):
        assert torch.equal(got, t.grad)
    # And it is attention: against SDPA in float64 on the same inputs (GQA expanded, causal bottom-right).
    reference = torch.nn.functional.scaled_dot_product_attention(
        q.detach().transpose(1, 2).double(), k.detach().transpose(1, 2).double().repeat_interleave(4, 1),
        v.detach().transpose(1, 2).double().repeat_interleave(4, 1), scale=0.1,
        attn_mask=torch.ones(257, 300, dtype=torch.bool, device="cuda").tril(300 - 257)).transpose(1, 2)
    assert relative_error(out, reference) < 6e-3


def test_flash_attn_varlen_func_is_varlen_forward_and_refuses_grad():
    seqlens = [5, 130, 64]
    cu = torch.tensor([0, 5, 135, 199], dtype=torch.int32, device="cuda")
    q = make(1, 199, 8, 64, BF16, "bshd", 5)[0]
    k = make(1, 199, 4, 64, BF16, "bshd", 6)[0]
    v = make(1, 199, 4, 64, BF16, "bshd", 7)[0]
    out = fa2jit.flash_attn_varlen_func(q, k, v, cu, cu, max(seqlens), max(seqlens), causal=True)
    assert torch.equal(out, fa2jit.varlen_forward(q, k, v, cu, cu, max(seqlens), max(seqlens), causal=True))
    with pytest.raises(fa2jit.Fa2Error, match="no backward yet"):
        fa2jit.flash_attn_varlen_func(q.requires_grad_(), k, v, cu, cu, 130, 130)
    with torch.no_grad():
        fa2jit.flash_attn_varlen_func(q, k, v, cu, cu, 130, 130)


def test_flash_attn_with_kvcache_appends_and_takes_an_int_length():
    batch, capacity, new = 2, 512, 1
    q = make(batch, new, 8, 128, BF16, "bshd", 8)
    k_cache = make(batch, capacity, 2, 128, BF16, "bshd", 9)
    v_cache = make(batch, capacity, 2, 128, BF16, "bshd", 10)
    k_new = make(batch, new, 2, 128, BF16, "bshd", 11)
    v_new = make(batch, new, 2, 128, BF16, "bshd", 12)
    k_copy, v_copy = k_cache.clone(), v_cache.clone()
    out, lse = fa2jit.flash_attn_with_kvcache(q, k_cache, v_cache, k=k_new, v=v_new, cache_seqlens=300,
                                              causal=True, return_softmax_lse=True)
    assert torch.equal(k_cache[:, 300:301], k_new) and torch.equal(v_cache[:, 300:301], v_new)
    lengths = torch.full((batch,), 300, dtype=torch.int32, device="cuda")
    expected, expected_lse = fa2jit.forward_with_kvcache(q, k_copy, v_copy, k=k_new, v=v_new, cache_seqlens=lengths,
                                                         causal=True, return_lse=True)
    assert torch.equal(out, expected) and torch.equal(lse, expected_lse)
    assert lse.shape == (batch, 8, new) and math.isfinite(float(lse.max()))
