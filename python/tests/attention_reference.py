"""Inputs and exact references for the GPU tests: seeded random tensors in either layout, the bottom-right
causal mask, and attention's forward and backward in float64 on the (upcast) 16-bit inputs the kernels get.
Imported by the test modules after they have checked that torch and a GPU are there."""

import torch

DEVICE = "cuda"


def make(batch, seqlen, heads, head_dim, dtype, layout, seed):
    """A seeded N(0, 1) tensor [B, S, H, D] ("bshd") or [B, H, S, D] ("bhsd"), rounded to `dtype`."""
    generator = torch.Generator(device=DEVICE).manual_seed(seed)
    shape = (batch, seqlen, heads, head_dim) if layout == "bshd" else (batch, heads, seqlen, head_dim)
    return torch.randn(shape, generator=generator, device=DEVICE, dtype=torch.float32).to(dtype)


def to_bhsd(tensor, layout):
    return tensor.transpose(1, 2) if layout == "bshd" else tensor


def visible(seqlen_q, seqlen_k, causal):
    """[Sq, Sk] True where query i may see key j; causal is bottom-right aligned, as in FlashAttention:
    j <= i + Sk - Sq, so with Sq > Sk the first Sq - Sk queries see no key at all."""
    if not causal:
        return torch.ones(seqlen_q, seqlen_k, dtype=torch.bool, device=DEVICE)
    rows = torch.arange(seqlen_q, device=DEVICE)[:, None]
    cols = torch.arange(seqlen_k, device=DEVICE)[None, :]
    return cols <= rows + (seqlen_k - seqlen_q)


def relative_error(value, ref):
    """||value - ref|| / ||ref|| (Frobenius), computed in the reference's precision."""
    value = value.to(ref.dtype)
    return ((value - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def reference_backward(q, k, v, dout, causal, scale, layout):
    """(O, dQ, dK, dV) in float64, [B, H, S, D] each (dK and dV with the KV heads), of
    O = softmax(q k^T * scale) v with loss gradient dout, by the textbook formulas:
        P = softmax(S), dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dO * O)), dQ = scale dS K,
        dK = scale dS^T Q;
    a KV head's dK and dV sum over the query heads that share it. A query that sees no key gets P = 0,
    hence O = 0 and zero gradients."""
    qf, kf, vf, dof = (to_bhsd(t, layout).double() for t in (q, k, v, dout))
    batch, heads_q, seqlen_q, head_dim = qf.shape
    heads_kv, seqlen_k = kf.shape[1], kf.shape[2]
    group = heads_q // heads_kv
    kf, vf = kf.repeat_interleave(group, dim=1), vf.repeat_interleave(group, dim=1)
    mask = visible(seqlen_q, seqlen_k, causal)
    empty_rows = ~mask.any(dim=1)
    scores = (qf @ kf.transpose(-1, -2)) * scale
    probs = torch.softmax(scores.masked_fill(~mask, -float("inf")), dim=-1)
    del scores
    probs = probs.masked_fill(empty_rows[:, None], 0.0)  # softmax over no key is NaN
    out = probs @ vf
    dv = probs.transpose(-1, -2) @ dof
    dprobs = dof @ vf.transpose(-1, -2)
    delta = (dof * out).sum(dim=-1, keepdim=True)
    dscores = probs * (dprobs - delta)
    del probs, dprobs
    dq = (dscores @ kf) * scale
    dk = (dscores.transpose(-1, -2) @ qf) * scale

    def fold(grad):  # [B, Hq, Sk, D] -> [B, Hkv, Sk, D]; query head h belongs to KV head h // group
        return grad.view(batch, heads_kv, group, seqlen_k, head_dim).sum(dim=2)

    return out, dq, fold(dk), fold(dv)
