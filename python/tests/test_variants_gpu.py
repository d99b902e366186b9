"""The built-in variants (sliding window, softcap, ALiBi) through fa2jit.forward, fa2jit.attention (gradients),
fa2jit.backward and flash_attn_func, against a float64 torch reference that applies them by flash-attn 2.6's
definition (softcap on the scaled logits, then the ALiBi bias, then the window and causal masks) and
differentiates it with torch.autograd. Needs torch with a CUDA GPU and a built libfa2jit.so; skips elsewhere.

Tolerances are those of test_forward_gpu.py (O) and test_backward_gpu.py's fixed bounds (gradients): a few
units of 16-bit rounding, which catch a wrong term or a missed key block without flaking on rounding."""

import math
import os
import sys

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(TESTS_DIR)
sys.path.insert(0, PYTHON_DIR)
sys.path.insert(0, TESTS_DIR)

import fa2jit  # noqa: E402

from gpu_required import torch_on_gpu  # noqa: E402

torch = torch_on_gpu()

from attention_reference import make, relative_error  # noqa: E402

DEVICE = "cuda"
OUT_BOUND = {torch.bfloat16: 6e-3, torch.float16: 1e-3}
GRAD_BOUND = {torch.bfloat16: 2e-2, torch.float16: 5e-3}
LSE_BOUND = 1e-4
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# name: (causal, window or None, softcap, alibi)
VARIANTS = {
    "sliding-causal": (True, (100, 0), 0.0, False),
    "two-sided": (False, (37, 90), 0.0, False),
    "right-only": (False, (-1, 3), 0.0, False),
    "softcap": (False, None, 1.5, False),
    "softcap-causal": (True, None, 30.0, False),
    "alibi": (False, None, 0.0, True),
    "alibi-causal": (True, None, 0.0, True),
    "all": (True, (64, -1), 5.0, True),
}
SEQLENS = [(1, 300), (257, 1000), (1000, 257), (333, 333)]


def slopes_for(batch, heads):
    """ALiBi's geometric slopes per head, varied per batch entry: float32 [B, Hq]."""
    base = torch.tensor([2.0 ** (-8.0 * (h + 1) / heads) for h in range(heads)], dtype=torch.float32)
    return torch.stack([base * (1 + 0.25 * b) for b in range(batch)]).to(DEVICE)


def reference(q, k, v, causal, window, softcap, slopes, scale):
    """(O, LSE) in float64, O as [B, Sq, Hq, D], with q, k, v leaf copies that require grad for autograd."""
    qf, kf, vf = (t.detach().double().transpose(1, 2).requires_grad_() for t in (q, k, v))
    batch, heads_q, seqlen_q, _ = qf.shape
    heads_kv, seqlen_k = kf.shape[1], kf.shape[2]
    group = heads_q // heads_kv
    logits = (qf @ kf.repeat_interleave(group, dim=1).transpose(-1, -2)) * scale
    if softcap:
        logits = softcap * torch.tanh(logits / softcap)
    rows = torch.arange(seqlen_q, device=DEVICE)[:, None] + (seqlen_k - seqlen_q)
    cols = torch.arange(seqlen_k, device=DEVICE)[None, :]
    if slopes is not None:
        slopes2 = slopes.double().reshape(-1, heads_q) if slopes.dim() == 2 else slopes.double()[None, :]
        logits = logits - slopes2[:, :, None, None] * (rows - cols).abs()
    visible = torch.ones(seqlen_q, seqlen_k, dtype=torch.bool, device=DEVICE)
    left, right = window if window is not None else (-1, -1)
    if causal:
        right = 0
    if left >= 0:
        visible &= cols >= rows - left
    if right >= 0:
        visible &= cols <= rows + right
    logits = logits.masked_fill(~visible, -math.inf)
    lse = torch.logsumexp(logits, dim=-1)
    probs = torch.exp(logits - lse[..., None]).nan_to_num(0.0)  # a row with no key: P = 0
    out = probs @ vf.repeat_interleave(group, dim=1)
    return out.transpose(1, 2), lse, (qf, kf, vf)


def cases():
    out = []
    for head_dim in (64, 128):
        for dtype_name in DTYPES:
            for name in VARIANTS:
                # Shifted by one per (head dim, dtype) group, so every variant meets every shape.
                group, position = divmod(len(out), len(VARIANTS))
                seqlens = SEQLENS[(group + position) % len(SEQLENS)]
                out.append(pytest.param(head_dim, dtype_name, name, seqlens,
                                        id=f"d{head_dim}-{dtype_name}-{name}-q{seqlens[0]}k{seqlens[1]}"))
    return out


def inputs(head_dim, dtype, seqlens, seed):
    seqlen_q, seqlen_k = seqlens
    q = make(2, seqlen_q, 8, head_dim, dtype, "bshd", seed)
    k = make(2, seqlen_k, 2, head_dim, dtype, "bshd", seed + 1)
    v = make(2, seqlen_k, 2, head_dim, dtype, "bshd", seed + 2)
    return q, k, v


@pytest.mark.parametrize("head_dim, dtype_name, name, seqlens", cases())
def test_forward_matches_the_reference(head_dim, dtype_name, name, seqlens):
    dtype = DTYPES[dtype_name]
    causal, window, softcap, alibi = VARIANTS[name]
    q, k, v = inputs(head_dim, dtype, seqlens, 11)
    slopes = slopes_for(2, 8) if alibi else None
    out, lse = fa2jit.forward(q, k, v, causal=causal, window=window, softcap=softcap, alibi_slopes=slopes,
                              return_lse=True, tune="heuristic")
    ref_out, ref_lse, _ = reference(q, k, v, causal, window, softcap, slopes, head_dim ** -0.5)
    assert torch.isfinite(out).all()
    assert relative_error(out, ref_out.detach()) <= OUT_BOUND[dtype]
    finite = torch.isfinite(ref_lse)
    assert torch.equal(torch.isinf(lse), ~finite)  # rows that see no key: +inf, as flash-attn
    assert relative_error(lse[finite], ref_lse.detach()[finite]) <= LSE_BOUND


@pytest.mark.parametrize("head_dim, dtype_name, name, seqlens", cases())
def test_gradients_match_the_reference(head_dim, dtype_name, name, seqlens):
    dtype = DTYPES[dtype_name]
    causal, window, softcap, alibi = VARIANTS[name]
    q, k, v = (t.requires_grad_() for t in inputs(head_dim, dtype, seqlens, 23))
    dout = make(2, seqlens[0], 8, head_dim, dtype, "bshd", 99)
    slopes = slopes_for(2, 8)[0] if alibi else None  # [Hq]: one row of slopes for the batch
    out = fa2jit.attention(q, k, v, causal=causal, window=window, softcap=softcap, alibi_slopes=slopes,
                           tune="heuristic")
    out.backward(dout)
    ref_out, _, leaves = reference(q, k, v, causal, window, softcap, slopes, head_dim ** -0.5)
    ref_out.backward(dout.double())
    for got, leaf in zip((q.grad, k.grad, v.grad), leaves):
        assert torch.isfinite(got).all()
        assert relative_error(got, leaf.grad.transpose(1, 2)) <= GRAD_BOUND[dtype]


def test_backward_entry_matches_attention():
    """fa2jit.backward with the forward's variant arguments gives what attention's autograd gives."""
    q, k, v = (t.requires_grad_() for t in inputs(128, torch.bfloat16, (300, 500), 5))
    slopes = slopes_for(2, 8)
    options = dict(causal=True, window=(128, 0), softcap=20.0, alibi_slopes=slopes, tune="heuristic")
    out, lse = fa2jit.forward(q, k, v, return_lse=True, **options)
    dout = torch.randn_like(out)
    grads = fa2jit.backward(dout, q, k, v, out, lse, deterministic=True, **options)
    out2 = fa2jit.attention(q, k, v, deterministic=True, **options)
    out2.backward(dout)
    assert torch.equal(out, out2)
    for got, want in zip(grads, (q.grad, k.grad, v.grad)):
        assert torch.equal(got, want)


def test_flash_attn_func_takes_window_size_softcap_and_alibi():
    q, k, v = inputs(64, torch.float16, (200, 200), 7)
    slopes = slopes_for(2, 8)
    got = fa2jit.flash_attn_func(q, k, v, causal=True, window_size=(32, 0), softcap=10.0, alibi_slopes=slopes)
    want = fa2jit.attention(q, k, v, causal=True, window=(32, 0), softcap=10.0, alibi_slopes=slopes)
    assert torch.equal(got, want)
    # flash-attn's (L, 0) window without causal is causal with a window: the same kernel and result.
    assert torch.equal(fa2jit.flash_attn_func(q, k, v, window_size=(32, 0), softcap=10.0, alibi_slopes=slopes), want)


def test_slopes_one_row_or_per_batch():
    q, k, v = inputs(128, torch.bfloat16, (100, 160), 3)
    row = slopes_for(1, 8)[0]
    per_batch = row[None, :].expand(2, 8).contiguous()
    assert torch.equal(fa2jit.forward(q, k, v, alibi_slopes=row), fa2jit.forward(q, k, v, alibi_slopes=per_batch))


def test_config_names_carry_the_variant():
    q, k, v = inputs(128, torch.bfloat16, (64, 64), 1)
    name = fa2jit.config_name(q, k, v, causal=True, window=(16, 0), softcap=30.0, alibi_slopes=slopes_for(2, 8),
                              tune="heuristic")
    assert "_causal_win_cap_alibi_" in name
    assert "_win" not in fa2jit.config_name(q, k, v, causal=True, tune="heuristic")


@pytest.mark.parametrize("change, expected", [
    (dict(window=(-2, 0)), "window left -2"),
    (dict(softcap=-1.0), "softcap -1.0"),
    (dict(alibi_slopes="slopes"), "alibi_slopes"),
])
def test_bad_variant_arguments_name_the_value(change, expected):
    q, k, v = inputs(64, torch.bfloat16, (16, 16), 1)
    with pytest.raises(fa2jit.Fa2Error, match=expected):
        fa2jit.forward(q, k, v, **change)


def test_slopes_of_the_wrong_dtype_shape_or_device_are_errors():
    q, k, v = inputs(64, torch.bfloat16, (16, 16), 1)
    for slopes, expected in ((torch.ones(8, device=DEVICE, dtype=torch.float16), "float32"),
                             (torch.ones(3, device=DEVICE), "alibi_slopes shape"),
                             (torch.ones(8), "alibi_slopes")):
        with pytest.raises(fa2jit.Fa2Error, match=expected):
            fa2jit.forward(q, k, v, alibi_slopes=slopes)


def test_the_operator_carries_the_variants():
    """torch.ops.fa2jit.fwd/bwd with the variant arguments: opcheck (schema, fakes, autograd registration)."""
    q, k, v = inputs(64, torch.bfloat16, (64, 96), 2)
    slopes = slopes_for(2, 8)
    args = (q, k, v, True, None, False, "bshd", "heuristic", None, 32, 0, 20.0, slopes)
    torch.library.opcheck(torch.ops.fa2jit.fwd, args, test_utils=("test_schema", "test_faketensor"))
    compiled = torch.compile(lambda a, b, c: fa2jit.attention(a, b, c, causal=True, window=(32, 0), softcap=20.0,
                                                               alibi_slopes=slopes), fullgraph=True)
    assert torch.equal(compiled(q, k, v), fa2jit.attention(q, k, v, causal=True, window=(32, 0), softcap=20.0,
                                                          alibi_slopes=slopes))
