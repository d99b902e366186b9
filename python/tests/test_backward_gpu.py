"""fa2jit.attention (autograd) and fa2jit.backward against an exact float64 reference, with PyTorch SDPA's
flash backend measured on the same cases as the yardstick for the tolerance. Needs torch with a CUDA GPU
and a built libfa2jit.so; skips, saying which is missing, elsewhere.

Tolerance. The reference is computed in float64 from the very 16-bit q, k, v and dO the kernels read, so
what is measured is the kernel's own error: P and dS rounded to 16 bits before the tensor-core GEMMs, fp32
accumulation in some order, and dQ, dK, dV rounded to 16 bits at the end. SDPA's flash backend is
FlashAttention-2 itself and rounds at the same places, so its error on the same case is what a correct
FA2 backward achieves there: fa2jit's relative Frobenius error on each of dQ, dK, dV must stay within
2x flash's, plus a floor (FLOOR) for cases where flash is so accurate that a factor of 2 on its error is
smaller than the output rounding alone (about 2e-3 for bf16, 3e-4 for fp16). Where flash cannot run a case
(this torch or GPU lacks it, or it returns non-finite values), fixed bounds apply (FIXED_BOUND): about 5x
the error such a backward typically has, a few units of 16-bit rounding, so they catch any wrong term or
missed block while not flaking on rounding.
"""

import math
import os
import sys
import warnings

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(TESTS_DIR)
sys.path.insert(0, PYTHON_DIR)
sys.path.insert(0, TESTS_DIR)

import fa2jit  # noqa: E402

from gpu_required import torch_on_gpu  # noqa: E402

torch = torch_on_gpu()

import attention_reference as ref  # noqa: E402
from attention_reference import make, relative_error, to_bhsd  # noqa: E402

F = torch.nn.functional
FLOOR = {torch.bfloat16: 1e-3, torch.float16: 2e-4}
FIXED_BOUND = {torch.bfloat16: 2e-2, torch.float16: 5e-3}
OUT_BOUND = {torch.bfloat16: 6e-3, torch.float16: 1e-3}  # O, as in test_forward_gpu.py
HEAD_DIMS = [32, 64, 96, 128, 160, 192, 224, 256]
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
SEQLENS = [(1, 17), (128, 1000), (1000, 128), (333, 333)]
HEADS = [(4, 4), (8, 2), (4, 1)]  # MHA, GQA 4:1, MQA
NAMES = ("dq", "dk", "dv")


def matrix():
    """Every (head dim, dtype, causal) meets every sequence-length pair; the head grouping and the layout
    rotate with the case so that each also meets every kernel, without the full product's run time."""
    cases = []
    for head_dim in HEAD_DIMS:
        for dtype_name in DTYPES:
            for causal in (False, True):
                for seqlen_q, seqlen_k in SEQLENS:
                    index = len(cases)
                    heads = HEADS[index % len(HEADS)]
                    layout = ("bshd", "bhsd")[(index // len(HEADS)) % 2]
                    case_id = (f"d{head_dim}-{dtype_name}-{'causal' if causal else 'full'}-q{seqlen_q}k{seqlen_k}-"
                               f"h{heads[0]}:{heads[1]}-{layout}")
                    cases.append(pytest.param(head_dim, dtype_name, causal, (seqlen_q, seqlen_k), heads, layout,
                                              id=case_id))
    return cases


def inputs(batch, seqlens, heads, head_dim, dtype, layout, seed=0, requires_grad=True):
    (seqlen_q, seqlen_k), (heads_q, heads_kv) = seqlens, heads
    q = make(batch, seqlen_q, heads_q, head_dim, dtype, layout, seed + 1)
    k = make(batch, seqlen_k, heads_kv, head_dim, dtype, layout, seed + 2)
    v = make(batch, seqlen_k, heads_kv, head_dim, dtype, layout, seed + 3)
    dout = make(batch, seqlen_q, heads_q, head_dim, dtype, layout, seed + 4)
    for tensor in (q, k, v):
        tensor.requires_grad_(requires_grad)
    return q, k, v, dout


def flash_errors(q, k, v, dout, causal, layout, scale, reference):
    """Relative errors of SDPA's flash backend on dQ, dK, dV against the same reference, or None where it
    cannot run the case. Bottom-right causal masking with Sq != Sk goes through causal_lower_right."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.attention.bias import causal_lower_right

    leaves = [to_bhsd(t.detach(), layout).requires_grad_() for t in (q, k, v)]
    seqlen_q, seqlen_k = leaves[0].shape[2], leaves[1].shape[2]
    options = dict(scale=scale)
    if causal and seqlen_q == seqlen_k:
        options["is_causal"] = True
    elif causal:
        with warnings.catch_warnings():  # "NaNs when seq_len_q > seq_len_kv": non-finite results are handled below
            warnings.simplefilter("ignore")
            options["attn_mask"] = causal_lower_right(seqlen_q, seqlen_k)
    if leaves[0].shape[1] != leaves[1].shape[1]:
        options["enable_gqa"] = True
    try:
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            out = F.scaled_dot_product_attention(*leaves, **options)
            grads = torch.autograd.grad(out, leaves, to_bhsd(dout, layout))
    except (RuntimeError, TypeError, ValueError, NotImplementedError):
        return None
    if not all(grad.isfinite().all() for grad in grads):
        return None
    return [relative_error(grad, exact) for grad, exact in zip(grads, reference[1:])]


def check_gradients(grads, q, k, v, dout, *, causal, layout, dtype, scale=None, out=None, compare_flash=True):
    """Asserts that (dq, dk, dv) (and O, when given) match the float64 reference within the tolerance the
    module docstring explains; returns the errors."""
    scale = scale or 1 / math.sqrt(q.shape[-1])
    reference = ref.reference_backward(q.detach(), k.detach(), v.detach(), dout, causal, scale, layout)
    if out is not None:
        error = relative_error(to_bhsd(out.detach(), layout), reference[0])
        assert error < OUT_BOUND[dtype], f"relative O error {error:.2e}"
    grads_bhsd = [to_bhsd(grad, layout) for grad in grads]
    for name, grad in zip(NAMES, grads_bhsd):
        assert grad is not None, f"{name} is None"
        assert grad.dtype == dtype, f"{name} has dtype {grad.dtype}"
        assert grad.isfinite().all(), f"{name} has non-finite elements"
    flash = flash_errors(q, k, v, dout, causal, layout, scale, reference) if compare_flash else None
    errors = [relative_error(grad, exact) for grad, exact in zip(grads_bhsd, reference[1:])]
    for index, name in enumerate(NAMES):
        bound = (2 * flash[index] + FLOOR[dtype]) if flash else FIXED_BOUND[dtype]
        yardstick = f"2 x flash's {flash[index]:.2e} + {FLOOR[dtype]:.0e}" if flash else "the fixed bound"
        assert errors[index] <= bound, f"relative {name} error {errors[index]:.2e} exceeds {bound:.2e} ({yardstick})"
    empty_rows = ~ref.visible(q.shape[1 if layout == "bshd" else 2], k.shape[1 if layout == "bshd" else 2],
                              causal).any(dim=1)
    if empty_rows.any():  # queries that see no key: O = 0 and no gradient, exactly
        assert torch.count_nonzero(grads_bhsd[0][:, :, empty_rows]) == 0, "dq is not zero on rows that see no key"
        if out is not None:
            assert torch.count_nonzero(to_bhsd(out.detach(), layout)[:, :, empty_rows]) == 0, \
                "O is not zero on rows that see no key"
    return errors


def autograd_gradients(q, k, v, dout, **options):
    out = fa2jit.attention(q, k, v, **options)
    out.backward(dout)
    return out, (q.grad, k.grad, v.grad)


@pytest.mark.parametrize("head_dim, dtype_name, causal, seqlens, heads, layout", matrix())
def test_gradients_match_reference(head_dim, dtype_name, causal, seqlens, heads, layout):
    dtype = DTYPES[dtype_name]
    q, k, v, dout = inputs(2, seqlens, heads, head_dim, dtype, layout)
    out, grads = autograd_gradients(q, k, v, dout, causal=causal, layout=layout, tune="heuristic")
    assert out.shape == q.shape and out.dtype == dtype
    assert grads[1].shape == k.shape and grads[2].shape == v.shape  # KV heads, not query heads
    check_gradients(grads, q, k, v, dout, causal=causal, layout=layout, dtype=dtype, out=out)


@pytest.mark.parametrize("head_dim, dtype_name, causal, heads, layout", [
    (128, "bf16", True, (4, 1), "bshd"),
    (64, "fp16", False, (2, 2), "bhsd"),
], ids=["d128-bf16-causal-mqa-bshd", "d64-fp16-full-mha-bhsd"])
def test_long_sequences(head_dim, dtype_name, causal, heads, layout):
    dtype = DTYPES[dtype_name]
    q, k, v, dout = inputs(1, (4097, 4097), heads, head_dim, dtype, layout, seed=10)
    out, grads = autograd_gradients(q, k, v, dout, causal=causal, layout=layout, tune="heuristic")
    check_gradients(grads, q, k, v, dout, causal=causal, layout=layout, dtype=dtype, out=out)


@pytest.mark.parametrize("head_dim, causal, heads, seqlens, dtype_name", [
    (64, True, (8, 2), (1000, 1000), "bf16"),
    (128, False, (4, 4), (777, 1500), "fp16"),
    (128, True, (8, 1), (1500, 600), "bf16"),
    (256, True, (4, 2), (513, 513), "fp16"),
])
def test_deterministic_is_bitwise_reproducible(head_dim, causal, heads, seqlens, dtype_name):
    dtype = DTYPES[dtype_name]
    q, k, v, dout = inputs(2, seqlens, heads, head_dim, dtype, "bshd", seed=20, requires_grad=False)
    options = dict(causal=causal, tune="heuristic")
    out, lse = fa2jit.forward(q, k, v, return_lse=True, **options)
    first = fa2jit.backward(dout, q, k, v, out, lse, deterministic=True, **options)
    check_gradients(first, q, k, v, dout, causal=causal, layout="bshd", dtype=dtype, compare_flash=False)
    for run in range(1, 10):
        grads = fa2jit.backward(dout, q, k, v, out, lse, deterministic=True, **options)
        for name, grad, expected in zip(NAMES, grads, first):
            assert torch.equal(grad, expected), f"run {run}: {name} differs bitwise from run 0"
    name = fa2jit.backward_config_name(dout, q, k, v, out, lse, deterministic=True, **options)
    assert name.startswith("fa2_bwd_") and "_det_" in name, name


@pytest.mark.parametrize("layout", ["bshd", "bhsd"])
def test_functional_backward_equals_autograd(layout):
    dtype = torch.bfloat16
    q, k, v, dout = inputs(2, (300, 500), (8, 2), 128, dtype, layout, seed=30)
    options = dict(causal=True, layout=layout, tune="heuristic", deterministic=True)
    out, grads = autograd_gradients(q, k, v, dout, **options)
    q0, k0, v0 = (t.detach() for t in (q, k, v))
    out0, lse = fa2jit.forward(q0, k0, v0, return_lse=True, causal=True, layout=layout, tune="heuristic")
    dq, dk, dv = (torch.full_like(t, math.nan) for t in (q0, k0, v0))  # written in place, every element
    result = fa2jit.backward(dout, q0, k0, v0, out0, lse, dq=dq, dk=dk, dv=dv, **options)
    assert result[0] is dq and result[1] is dk and result[2] is dv
    assert torch.equal(out.detach(), out0)
    for name, grad, expected in zip(NAMES, (dq, dk, dv), grads):
        assert torch.equal(grad, expected), f"functional {name} differs from autograd's"


def test_inputs_without_grad_get_none():
    dtype = torch.float16
    q, k, v, dout = inputs(1, (200, 200), (4, 2), 64, dtype, "bshd", seed=40, requires_grad=False)
    options = dict(causal=True, tune="heuristic", deterministic=True)
    full = [t.clone().requires_grad_() for t in (q, k, v)]
    _, expected = autograd_gradients(*full, dout, **options)
    for index, name in enumerate(("q", "k", "v")):
        leaves = [t.clone().requires_grad_(i == index) for i, t in enumerate((q, k, v))]
        fa2jit.attention(*leaves, **options).backward(dout)
        for i, leaf in enumerate(leaves):
            if i == index:
                assert torch.equal(leaf.grad, expected[i]), f"grad of {name} alone differs"
            else:
                assert leaf.grad is None, f"{('q', 'k', 'v')[i]} got a gradient without requiring one"


def test_any_dout_layout_autograd_hands_over():
    """out.sum() gives an expanded dO with zero strides, a transposed consumer a transposed dO: both are
    made readable for the kernels."""
    dtype = torch.bfloat16
    q, k, v, _ = inputs(2, (100, 300), (4, 4), 64, dtype, "bshd", seed=50)
    out = fa2jit.attention(q, k, v, causal=True, tune="heuristic")
    out.sum().backward()
    check_gradients((q.grad, k.grad, v.grad), q, k, v, torch.ones_like(out), causal=True, layout="bshd",
                    dtype=dtype, compare_flash=False)
    for t in (q, k, v):
        t.grad = None
    weight = make(2, 4, 100, 64, dtype, "bshd", 51)  # [B, H, S, D] memory: its transpose is a strided dO
    out = fa2jit.attention(q, k, v, causal=True, tune="heuristic")
    (out * weight.transpose(1, 2)).sum().backward()
    check_gradients((q.grad, k.grad, v.grad), q, k, v, weight.transpose(1, 2), causal=True, layout="bshd",
                    dtype=dtype, compare_flash=False)


def test_packed_qkv_and_softmax_scale():
    """q, k, v as views of one packed [B, S, 3, H, D] tensor: the gradients land in the packed tensor."""
    dtype = torch.bfloat16
    packed = make(2, 257, 3 * 4, 96, dtype, "bshd", 60).view(2, 257, 3, 4, 96).requires_grad_()
    q, k, v = packed.unbind(dim=2)
    dout = make(2, 257, 4, 96, dtype, "bshd", 61)
    fa2jit.attention(q, k, v, causal=False, softmax_scale=0.2, tune="heuristic").backward(dout)
    grads = packed.grad.unbind(dim=2)
    check_gradients(grads, q, k, v, dout, causal=False, layout="bshd", dtype=dtype, scale=0.2, compare_flash=False)


def test_autocast_and_no_grad():
    q, k, v, dout = inputs(1, (128, 128), (4, 4), 64, torch.float32, "bshd", seed=70)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = fa2jit.attention(q, k, v, causal=True, tune="heuristic")
    assert out.dtype == torch.bfloat16
    out.backward(dout.to(torch.bfloat16))
    assert q.grad.dtype == torch.float32  # through the cast back to the float32 leaves
    low = [t.detach().to(torch.bfloat16) for t in (q, k, v)]
    check_gradients([t.grad.to(torch.bfloat16) for t in (q, k, v)], *low, dout.to(torch.bfloat16), causal=True,
                    layout="bshd", dtype=torch.bfloat16, compare_flash=False)
    with torch.no_grad():
        plain = fa2jit.attention(*low, causal=True, tune="heuristic")
    assert plain.grad_fn is None
    assert torch.equal(plain, fa2jit.forward(*low, causal=True, tune="heuristic"))


def test_streams():
    """On a side stream, the workspace comes from torch on that stream; with an explicit stream= other
    than the current one, from the driver's stream-ordered allocator on it."""
    dtype = torch.bfloat16
    q, k, v, dout = inputs(2, (512, 512), (8, 8), 128, dtype, "bshd", seed=80, requires_grad=False)
    out, lse = fa2jit.forward(q, k, v, return_lse=True, tune="heuristic")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        grads = fa2jit.backward(dout, q, k, v, out, lse, tune="heuristic")
    side.synchronize()
    check_gradients(grads, q, k, v, dout, causal=False, layout="bshd", dtype=dtype, compare_flash=False)
    dq, dk, dv = (torch.zeros_like(t) for t in (q, k, v))
    side.wait_stream(torch.cuda.current_stream())
    fa2jit.backward(dout, q, k, v, out, lse, dq=dq, dk=dk, dv=dv, tune="heuristic", stream=side)
    side.synchronize()
    check_gradients((dq, dk, dv), q, k, v, dout, causal=False, layout="bshd", dtype=dtype, compare_flash=False)


def test_on_first_use_tunes_the_backward_into_the_given_cache(tmp_path):
    cache = str(tmp_path / "kernels.db")
    dtype = torch.bfloat16
    q, k, v, dout = inputs(1, (700, 700), (8, 2), 128, dtype, "bshd", seed=90, requires_grad=False)
    out, lse = fa2jit.forward(q, k, v, causal=True, return_lse=True, tune="on-first-use", cache_path=cache)
    grads = fa2jit.backward(dout, q, k, v, out, lse, causal=True, tune="on-first-use", cache_path=cache)
    check_gradients(grads, q, k, v, dout, causal=True, layout="bshd", dtype=dtype, compare_flash=False)
    name = fa2jit.backward_config_name(dout, q, k, v, out, lse, causal=True, tune="cache-only", cache_path=cache)
    assert name.startswith("fa2_bwd_") and all(part in name for part in ("_d128_", "_bf16_", "_causal")), name
    assert fa2jit.backward_config_name(dout, q, k, v, out, lse, causal=True, tune="on-first-use",
                                       cache_path=cache) == name


def test_rejects_bad_arguments_naming_the_value():
    dtype = torch.bfloat16
    q, k, v, dout = inputs(1, (64, 64), (4, 2), 64, dtype, "bshd", seed=100, requires_grad=False)
    out, lse = fa2jit.forward(q, k, v, return_lse=True, tune="heuristic")
    three_heads = make(1, 64, 3, 64, dtype, "bshd", 101)
    padded = make(1, 64, 4, 66, dtype, "bshd", 102)[..., :64]  # head stride 66: rows not 16-byte aligned
    cases = [
        (dict(dout=dout[:, :32]), "dout shape"),
        (dict(dout=dout.half()), "dout is float16 but q is bfloat16"),
        (dict(dout=dout.cpu()), "needs CUDA tensors"),
        (dict(out=out[..., :32]), "out shape"),
        (dict(lse=lse.half()), "torch.float16"),
        (dict(lse=lse[:, :2]), "lse shape (1, 2, 64)"),
        (dict(lse=lse.transpose(1, 2).contiguous().transpose(1, 2)), "lse must be contiguous"),
        (dict(lse=lse.cpu()), "lse is on device 'cpu'"),
        (dict(dk=torch.empty_like(q)), "dk shape"),
        (dict(dq=torch.empty_like(q, dtype=torch.float16)), "dq is float16"),
        (dict(layout="sbhd"), "layout='sbhd'"),
        (dict(tune="fast"), "tune='fast'"),
        (dict(softmax_scale=float("nan")), "softmax_scale nan"),
        (dict(k=three_heads, v=three_heads), "q's 4 heads are not a multiple of k/v's 3 heads"),
        (dict(dout=padded), "dout head stride 66 is not a multiple of 8"),  # checked by the library
    ]
    for change, expected in cases:
        arguments = dict(dout=dout, q=q, k=k, v=v, out=out, lse=lse)
        options = {key: change.pop(key) for key in list(change) if key not in arguments}
        arguments.update(change)
        with pytest.raises(fa2jit.Fa2Error) as caught:
            fa2jit.backward(arguments.pop("dout"), *arguments.values(), tune=options.pop("tune", "heuristic"),
                            **options)
        assert caught.value.status == fa2jit.ERROR_ARGUMENT, (expected, caught.value)
        assert expected in str(caught.value), (expected, str(caught.value))
    with pytest.raises(fa2jit.Fa2Error, match="fa2jit.attention takes torch tensors"):
        fa2jit.attention(q, k, [1, 2])
