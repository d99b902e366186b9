"""User modifications through fa2jit.forward and fa2jit.backward: score_mod and mask_mod snippets with extra
device arrays (a document mask of 8 documents, prefix-LM, a relative-position bias, a tanh cap), against a
float64 torch reference that applies the same modification by its definition and differentiates it with
torch.autograd. Needs torch with a CUDA GPU and a built libfa2jit.so; skips elsewhere. Tolerances as
test_variants_gpu.py's."""

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

DEVICE = "cuda"
OUT_BOUND = {torch.bfloat16: 6e-3, torch.float16: 1e-3}
GRAD_BOUND = {torch.bfloat16: 2e-2, torch.float16: 5e-3}


def case(name, seqlen_q, seqlen_k, batch):
    """(kwargs for fa2jit, logit function of (s [B, H, Sq, Sk] float64, q_idx, kv_idx, b, h) -> s', visible mask
    [B, H, Sq, Sk] bool) of a named case."""
    q_idx = torch.arange(seqlen_q, device=DEVICE)[:, None]
    kv_idx = torch.arange(seqlen_k, device=DEVICE)[None, :]
    if name == "document":
        doc_q = (torch.arange(seqlen_q, device=DEVICE) * 8 // seqlen_q).to(torch.int32)
        doc_k = (torch.arange(seqlen_k, device=DEVICE) * 8 // seqlen_k).to(torch.int32)
        mask = (doc_q[:, None] == doc_k[None, :])[None, None]
        return (dict(mask_mod="doc_q[q_idx] == doc_k[kv_idx]", extra={"doc_q": doc_q, "doc_k": doc_k}),
                lambda s: s, mask)
    if name == "prefix-lm":
        prefix = torch.tensor([seqlen_k // 3, seqlen_k // 5][:batch], device=DEVICE, dtype=torch.int32)
        mask = (kv_idx[None] < prefix[:, None, None].long()) | (kv_idx <= q_idx)[None]
        return (dict(mask_mod="kv_idx < prefix[batch] || kv_idx <= q_idx", extra={"prefix": prefix}),
                lambda s: s, mask[:, None])
    if name == "relative-bias":
        bias = torch.linspace(-1.0, 1.0, seqlen_q + seqlen_k, device=DEVICE, dtype=torch.float32)
        table = bias[(q_idx - kv_idx + seqlen_k)].double()
        return (dict(score_mod="score + bias[q_idx - kv_idx + seqlen_k]", extra={"bias": bias}),
                lambda s: s + table, None)
    if name == "tanh-cap":
        return dict(score_mod="20.f * tanhf(score / 20.f)"), lambda s: 20.0 * torch.tanh(s / 20.0), None
    raise ValueError(name)


def reference(q, k, v, dout, scale, logit, mask):
    """O and (dQ, dK, dV) in float64 [B, H, S, D] (bshd inputs), with the modification applied to the scaled
    logits; rows with no visible key give O = 0 and zero gradients."""
    qf, kf, vf = (t.transpose(1, 2).double().requires_grad_() for t in (q, k, v))
    group = qf.shape[1] // kf.shape[1]
    scores = logit((qf @ kf.repeat_interleave(group, 1).transpose(-1, -2)) * scale)
    if mask is not None:
        scores = scores.masked_fill(~mask, -float("inf"))
    probs = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    out = probs @ vf.repeat_interleave(group, 1)
    out.backward(dout.transpose(1, 2).double())
    return out.detach(), (qf.grad, kf.grad, vf.grad)


@pytest.mark.parametrize("name", ["document", "prefix-lm", "relative-bias", "tanh-cap"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(2, 517, 517, 4, 4, 64), (2, 300, 300, 8, 2, 128)])
def test_user_mods_forward_and_backward(name, dtype, shape):
    batch, seqlen_q, seqlen_k, heads_q, heads_kv, head_dim = shape
    q = make(batch, seqlen_q, heads_q, head_dim, dtype, "bshd", 1)
    k = make(batch, seqlen_k, heads_kv, head_dim, dtype, "bshd", 2)
    v = make(batch, seqlen_k, heads_kv, head_dim, dtype, "bshd", 3)
    dout = make(batch, seqlen_q, heads_q, head_dim, dtype, "bshd", 4)
    kwargs, logit, mask = case(name, seqlen_q, seqlen_k, batch)
    scale = 1.0  # logits of std ~8 at d64: the cap and the bias bend the softmax visibly
    out, lse = fa2jit.forward(q, k, v, softmax_scale=scale, return_lse=True, **kwargs)
    out_ref, grads_ref = reference(q, k, v, dout, scale, logit, mask)
    assert relative_error(out.transpose(1, 2), out_ref) <= OUT_BOUND[dtype]
    grads = fa2jit.backward(dout, q, k, v, out, lse, softmax_scale=scale, **kwargs)
    for grad, grad_ref in zip(grads, grads_ref):
        assert relative_error(grad.transpose(1, 2), grad_ref) <= GRAD_BOUND[dtype]


def test_an_invalid_snippet_names_its_line():
    q = make(1, 64, 2, 64, torch.bfloat16, "bshd", 1)
    with pytest.raises(fa2jit.Fa2Error) as caught:
        fa2jit.forward(q, q, q, score_mod="score +\n  not_declared[q_idx]", tune="heuristic")
    assert "score_mod(2)" in str(caught.value)
