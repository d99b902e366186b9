"""fa2jit.forward against PyTorch SDPA in float32 on the same (upcast) inputs. Needs torch with a
CUDA GPU and a built libfa2jit.so; skips, saying which is missing, elsewhere."""

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

from attention_reference import make, relative_error, to_bhsd, visible  # noqa: E402

F = torch.nn.functional
TOLERANCE = {torch.bfloat16: 6e-3, torch.float16: 1e-3}  # ||o - ref|| / ||ref||
SEQLENS = [(1, 17), (128, 128), (1000, 333), (333, 1000)]


def reference(q, k, v, causal, scale, layout):
    """(O [B, H, Sq, D], LSE [B, H, Sq]) in float32; rows that see no key give O = 0 and LSE = +inf."""
    qf, kf, vf = (to_bhsd(t, layout).float() for t in (q, k, v))
    group = qf.shape[1] // kf.shape[1]
    kf, vf = kf.repeat_interleave(group, dim=1), vf.repeat_interleave(group, dim=1)
    mask = visible(qf.shape[2], kf.shape[2], causal)
    empty_rows = ~mask.any(dim=1)
    out = F.scaled_dot_product_attention(qf, kf, vf, attn_mask=mask, scale=scale)
    out[:, :, empty_rows, :] = 0  # SDPA gives NaN (or 0, by version) where every key is masked
    scores = (qf @ kf.transpose(-1, -2)) * scale
    lse = torch.logsumexp(scores.masked_fill(~mask, -math.inf), dim=-1)
    lse[:, :, empty_rows] = math.inf
    return out, lse


def check(q, k, v, *, causal, layout, dtype, scale=None, **kwargs):
    out = torch.full_like(q, math.nan)  # elements the kernel fails to write stay NaN
    result, lse = fa2jit.forward(q, k, v, causal=causal, softmax_scale=scale, layout=layout, out=out,
                                 return_lse=True, **kwargs)
    assert result is out
    torch.cuda.synchronize()
    ref_out, ref_lse = reference(q, k, v, causal, scale or 1 / math.sqrt(q.shape[-1]), layout)
    out_bhsd = to_bhsd(out, layout)
    assert not out_bhsd.isnan().any(), "O has unwritten (NaN) elements"
    error = relative_error(out_bhsd, ref_out)
    assert error < TOLERANCE[dtype], f"relative O error {error:.2e}"
    assert lse.shape == ref_lse.shape and lse.dtype == torch.float32
    assert torch.equal(lse.isinf(), ref_lse.isinf()), "LSE is +inf on different rows than the reference"
    finite = ref_lse.isfinite()
    torch.testing.assert_close(lse[finite], ref_lse[finite], rtol=1e-4, atol=2e-4)
    return out


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("head_dim", [64, 128, 256])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("seqlens", SEQLENS, ids=[f"q{a}k{b}" for a, b in SEQLENS])
@pytest.mark.parametrize("layout", ["bshd", "bhsd"])
@pytest.mark.parametrize("heads", [(4, 4), (8, 2)], ids=["mha", "gqa8:2"])
def test_matches_sdpa(dtype, head_dim, causal, seqlens, layout, heads):
    (seqlen_q, seqlen_k), (heads_q, heads_kv) = seqlens, heads
    q = make(2, seqlen_q, heads_q, head_dim, dtype, layout, 1)
    k = make(2, seqlen_k, heads_kv, head_dim, dtype, layout, 2)
    v = make(2, seqlen_k, heads_kv, head_dim, dtype, layout, 3)
    check(q, k, v, causal=causal, layout=layout, dtype=dtype, tune="heuristic")


def test_strided_views_and_scale():
    """q, k, v sliced from one packed [B, S, 3, H, D] tensor: no copies, strides passed through."""
    dtype = torch.bfloat16
    packed = make(2, 300, 3 * 8, 128, dtype, "bshd", 4).view(2, 300, 3, 8, 128)
    q, k, v = packed.unbind(dim=2)
    assert not q.is_contiguous()
    check(q, k, v, causal=True, layout="bshd", dtype=dtype, scale=0.3, tune="heuristic")


def test_bhsd_view_of_bshd_memory():
    dtype = torch.float16
    q, k, v = (make(1, 200, 4, 64, dtype, "bshd", seed).transpose(1, 2) for seed in (5, 6, 7))
    check(q, k, v, causal=False, layout="bhsd", dtype=dtype, tune="heuristic")


def test_allocates_outputs_in_qs_layout():
    q = make(1, 64, 2, 64, torch.bfloat16, "bshd", 8)
    out, lse = fa2jit.forward(q, q, q, return_lse=True, tune="heuristic")
    assert out.shape == q.shape and out.stride() == q.stride() and out.dtype == q.dtype
    assert lse.shape == (1, 2, 64)
    assert isinstance(fa2jit.forward(q, q, q, tune="heuristic"), torch.Tensor)


def test_runs_on_the_current_stream():
    q = make(2, 512, 4, 128, torch.bfloat16, "bshd", 9)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        out = fa2jit.forward(q, q, q, tune="heuristic")
    stream.synchronize()
    error = relative_error(out.transpose(1, 2), reference(q, q, q, False, 1 / math.sqrt(128), "bshd")[0])
    assert error < TOLERANCE[torch.bfloat16]


def test_on_first_use_tunes_into_the_given_cache(tmp_path):
    cache = tmp_path / "kernels.db"
    dtype = torch.bfloat16
    q, k, v = (make(1, 1024, 4, 128, dtype, "bshd", seed) for seed in (10, 11, 12))
    check(q, k, v, causal=True, layout="bshd", dtype=dtype, tune="on-first-use", cache_path=str(cache))
    assert cache.exists()
    name = fa2jit.config_name(q, k, v, causal=True, tune="on-first-use", cache_path=str(cache))
    assert name.startswith("fa2_fwd_") and all(part in name for part in ("_d128_", "_bf16_", "_causal_"))
    assert fa2jit.config_name(q, k, v, causal=True, tune="cache-only", cache_path=str(cache)) == name


def test_rejects_mixed_inputs_before_the_library():
    q = make(1, 16, 2, 64, torch.bfloat16, "bshd", 13)
    with pytest.raises(fa2jit.Fa2Error, match="k is float16 but q is bfloat16"):
        fa2jit.forward(q, q.half(), q)
    with pytest.raises(fa2jit.Fa2Error, match="needs CUDA tensors"):
        fa2jit.forward(q, q, q.cpu())
