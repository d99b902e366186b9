"""fa2jit.forward_with_kvcache against a float64 reference on the same (upcast) cache rows: contiguous and paged
caches (shuffled pages), ragged lengths, decode and chunked-prefill rows, GQA, appended keys, forced splits and
the host-side value checks. Needs torch with a CUDA GPU and a built libfa2jit.so; skips elsewhere."""

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

TOLERANCE = {torch.bfloat16: 6e-3, torch.float16: 1e-3}


def paged(cache, page_size, generator):
    """The contiguous cache [B, S, H, D] cut into pages [num_pages, page_size, H, D] laid out in a shuffled order
    (one spare page), and the block table [B, pages per sequence]."""
    batch, seqlen = cache.shape[:2]
    per_sequence = -(-seqlen // page_size)
    padded = torch.zeros((batch, per_sequence * page_size) + tuple(cache.shape[2:]), dtype=cache.dtype,
                         device=cache.device)
    padded[:, :seqlen] = cache
    order = torch.randperm(batch * per_sequence + 1, generator=generator, device="cpu").to(cache.device)
    table = order[:batch * per_sequence].view(batch, per_sequence).to(torch.int32)
    pages = torch.full((batch * per_sequence + 1, page_size) + tuple(cache.shape[2:]), float("nan"),
                       dtype=cache.dtype, device=cache.device)
    pages[table.long().flatten()] = padded.view(batch * per_sequence, page_size, *cache.shape[2:])
    return pages, table


def reference(q, k_cache, v_cache, lengths, causal, scale):
    """(O [B, Sq, Hq, D], LSE [B, Hq, Sq]) in float64 per sequence over its first lengths[b] keys."""
    batch, seqlen_q, heads_q, _ = q.shape
    group = heads_q // k_cache.shape[2]
    outs, lses = [], []
    for b in range(batch):
        n = int(lengths[b])
        qf = q[b].double().transpose(0, 1)  # [Hq, Sq, D]
        kf = k_cache[b, :n].double().transpose(0, 1).repeat_interleave(group, 0)
        vf = v_cache[b, :n].double().transpose(0, 1).repeat_interleave(group, 0)
        scores = (qf @ kf.transpose(-1, -2)) * scale  # [Hq, Sq, n]
        if causal:
            rows = torch.arange(seqlen_q, device=q.device)[:, None]
            cols = torch.arange(n, device=q.device)[None, :]
            scores = scores.masked_fill(cols > rows + n - seqlen_q, -math.inf)
        lse = torch.logsumexp(scores, dim=-1) if n > 0 else torch.full((heads_q, seqlen_q), -math.inf,
                                                                         dtype=torch.float64, device=q.device)
        weights = torch.exp(scores - lse[..., None]).nan_to_num(0.0)
        outs.append((weights @ vf).transpose(0, 1))
        lses.append(torch.where(torch.isinf(lse), torch.full_like(lse, math.inf), lse))
    return torch.stack(outs), torch.stack(lses)


def check(out, lse, ref_out, ref_lse, dtype):
    assert not out.isnan().any(), "O has unwritten (NaN) elements"
    error = relative_error(out, ref_out)
    assert error < TOLERANCE[dtype], f"relative O error {error:.2e}"
    assert torch.equal(lse.isinf(), ref_lse.isinf()), "LSE is +inf on different rows than the reference"
    finite = ref_lse.isfinite()
    assert (lse[finite].double() - ref_lse[finite]).abs().max().item() < 1e-3 if finite.any() else True


@pytest.mark.parametrize("page_size", [0, 16, 256])
@pytest.mark.parametrize("seqlen_q,causal", [(1, False), (5, True), (130, True)])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_matches_reference_with_ragged_lengths(page_size, seqlen_q, causal, dtype):
    batch, heads_q, heads_kv, head_dim, capacity = 4, 16, 4, 128, 1500
    q = make(batch, seqlen_q, heads_q, head_dim, dtype, "bshd", 1)
    k_cache = make(batch, capacity, heads_kv, head_dim, dtype, "bshd", 2)
    v_cache = make(batch, capacity, heads_kv, head_dim, dtype, "bshd", 3)
    lengths = torch.tensor([0, 1, 777, capacity], dtype=torch.int32, device="cuda")
    kwargs = dict(cache_seqlens=lengths, causal=causal, return_lse=True, check_values=True)
    if page_size:
        generator = torch.Generator().manual_seed(4)
        k_pages, table = paged(k_cache, page_size, generator)
        v_pages = torch.empty_like(k_pages)
        v_pages[table.long().flatten()] = paged(v_cache, page_size, torch.Generator().manual_seed(4))[0][
            table.long().flatten()]
        out, lse = fa2jit.forward_with_kvcache(q, k_pages, v_pages, block_table=table, **kwargs)
    else:
        out, lse = fa2jit.forward_with_kvcache(q, k_cache, v_cache, **kwargs)
    torch.cuda.synchronize()
    ref_out, ref_lse = reference(q, k_cache, v_cache, lengths.tolist(), causal, 1 / math.sqrt(head_dim))
    check(out, lse, ref_out, ref_lse, dtype)


@pytest.mark.parametrize("page_size", [0, 32])
def test_appended_keys_land_in_the_cache_and_are_attended(page_size):
    batch, heads_q, heads_kv, head_dim, capacity, new = 3, 8, 1, 64, 700, 3
    dtype = torch.bfloat16
    q = make(batch, new, heads_q, head_dim, dtype, "bshd", 5)
    k_cache = make(batch, capacity, heads_kv, head_dim, dtype, "bshd", 6)
    v_cache = make(batch, capacity, heads_kv, head_dim, dtype, "bshd", 7)
    k_new = make(batch, new, heads_kv, head_dim, dtype, "bshd", 8)
    v_new = make(batch, new, heads_kv, head_dim, dtype, "bshd", 9)
    lengths = torch.tensor([0, 100, capacity - new], dtype=torch.int32, device="cuda")
    expected_k, expected_v = k_cache.clone(), v_cache.clone()
    for b, n in enumerate(lengths.tolist()):
        expected_k[b, n:n + new] = k_new[b]
        expected_v[b, n:n + new] = v_new[b]
    if page_size:
        k_pages, table = paged(k_cache, page_size, torch.Generator().manual_seed(1))
        v_pages, _ = paged(v_cache, page_size, torch.Generator().manual_seed(1))
        before = k_pages.clone()
        out = fa2jit.forward_with_kvcache(q, k_pages, v_pages, block_table=table, cache_seqlens=lengths, k=k_new,
                                          v=v_new, causal=True)
        got_k = k_pages[table.long()].flatten(1, 2)[:, :capacity]
        got_v = v_pages[table.long()].flatten(1, 2)[:, :capacity]
        # Only the appended rows changed: the spare page and every other row are as they were.
        changed = (k_pages != before) & ~(k_pages.isnan() & before.isnan())
        assert int(changed.any(-1).any(-1).sum()) == batch * new
    else:
        out = fa2jit.forward_with_kvcache(q, k_cache, v_cache, cache_seqlens=lengths, k=k_new, v=v_new, causal=True)
        got_k, got_v = k_cache, v_cache
    torch.cuda.synchronize()
    assert torch.equal(got_k, expected_k) and torch.equal(got_v, expected_v)
    assert lengths.tolist() == [0, 100, capacity - new], "cache_seqlens must not be modified"
    ref_out, _ = reference(q, expected_k, expected_v, [n + new for n in lengths.tolist()], True, 1 / 8)
    assert relative_error(out, ref_out) < TOLERANCE[dtype]


def test_forced_splits_agree_with_no_split():
    q = make(2, 1, 32, 128, torch.bfloat16, "bshd", 10)
    k_cache = make(2, 9000, 8, 128, torch.bfloat16, "bshd", 11)
    v_cache = make(2, 9000, 8, 128, torch.bfloat16, "bshd", 12)
    one, lse_one = fa2jit.forward_with_kvcache(q, k_cache, v_cache, num_splits=1, return_lse=True)
    for splits in (0, 3, 64):
        out, lse = fa2jit.forward_with_kvcache(q, k_cache, v_cache, num_splits=splits, return_lse=True)
        assert (out.float() - one.float()).abs().max().item() <= 2 ** -7 * one.float().abs().max().item()
        assert (lse - lse_one).abs().max().item() < 1e-5


def test_bad_values_are_named():
    q = make(2, 1, 8, 64, torch.float16, "bshd", 13)
    cache = make(2, 64, 2, 64, torch.float16, "bshd", 14)
    with pytest.raises(fa2jit.Fa2Error, match=r"cache_seqlens holds values in \[3, 65\]"):
        fa2jit.forward_with_kvcache(q, cache, cache, cache_seqlens=torch.tensor([3, 65], dtype=torch.int32,
                                                                               device="cuda"), check_values=True)
    pages, table = paged(cache, 16, torch.Generator().manual_seed(0))
    table[1, 0] = 99
    with pytest.raises(fa2jit.Fa2Error, match=r"block_table's used entries lie in \[\d+, 99\]"):
        fa2jit.forward_with_kvcache(q, pages, pages, block_table=table, check_values=True)
    with pytest.raises(fa2jit.Fa2Error, match="cache_seqlens has dtype torch.int64"):
        fa2jit.forward_with_kvcache(q, cache, cache, cache_seqlens=torch.tensor([3, 4], device="cuda"))
    pages_of_48 = make(4, 48, 2, 64, torch.float16, "bshd", 1)
    with pytest.raises(fa2jit.Fa2Error, match="page size 48"):
        fa2jit.forward_with_kvcache(q, pages_of_48, pages_of_48,
                                    block_table=torch.zeros(2, 2, dtype=torch.int32, device="cuda"))
    with pytest.raises(fa2jit.Fa2Error, match="num_splits=200"):
        fa2jit.forward_with_kvcache(q, cache, cache, num_splits=200)


@pytest.mark.parametrize("causal", [False, True])
def test_varlen_matches_a_per_sequence_reference(causal):
    seqlens_q, seqlens_k = [1, 130, 7, 300], [77, 129, 0, 1000]
    heads_q, heads_kv, head_dim, dtype = 8, 2, 128, torch.float16
    cu_q = torch.tensor([0] + list(torch.tensor(seqlens_q).cumsum(0)), dtype=torch.int32, device="cuda")
    cu_k = torch.tensor([0] + list(torch.tensor(seqlens_k).cumsum(0)), dtype=torch.int32, device="cuda")
    q = make(1, sum(seqlens_q), heads_q, head_dim, dtype, "bshd", 20)[0]
    k = make(1, sum(seqlens_k), heads_kv, head_dim, dtype, "bshd", 21)[0]
    v = make(1, sum(seqlens_k), heads_kv, head_dim, dtype, "bshd", 22)[0]
    out, lse = fa2jit.varlen_forward(q, k, v, cu_q, cu_k, max(seqlens_q), max(seqlens_k), causal=causal,
                                     return_lse=True)
    torch.cuda.synchronize()
    for b in range(len(seqlens_q)):
        rows = slice(int(cu_q[b]), int(cu_q[b + 1]))
        keys = slice(int(cu_k[b]), int(cu_k[b + 1]))
        ref_out, ref_lse = reference(q[None, rows], k[None, keys], v[None, keys], [seqlens_k[b]], causal,
                                     1 / math.sqrt(head_dim))
        check(out[None, rows], lse[None, :, rows], ref_out, ref_lse, dtype)


def test_varlen_bad_values_are_named_with_check_values():
    q = make(1, 10, 4, 64, torch.float16, "bshd", 23)[0]
    k = make(1, 12, 2, 64, torch.float16, "bshd", 24)[0]
    good_q = torch.tensor([0, 4, 10], dtype=torch.int32, device="cuda")
    cases = [
        (torch.tensor([1, 4, 10], dtype=torch.int32, device="cuda"), r"cu_seqlens_k\[0\] is 1"),
        (torch.tensor([0, 8, 6], dtype=torch.int32, device="cuda"), "cu_seqlens_k decreases at 2: 8 then 6"),
        (torch.tensor([0, 5, 13], dtype=torch.int32, device="cuda"), r"cu_seqlens_k\[-1\] is 13, past the 12 rows"),
        (torch.tensor([0, 2, 12], dtype=torch.int32, device="cuda"), "sequence 1 of cu_seqlens_k has 10 rows, above"),
    ]
    for cu_k, message in cases:
        with pytest.raises(fa2jit.Fa2Error, match=message):
            fa2jit.varlen_forward(q, k, k, good_q, cu_k, 6, 8, check_values=True)
    out = fa2jit.varlen_forward(q, k, k, good_q, torch.tensor([0, 4, 12], dtype=torch.int32, device="cuda"), 6, 8,
                                check_values=True)
    assert torch.isfinite(out.float()).all()


def test_append_past_the_capacity_is_named_with_check_values():
    q = make(2, 2, 8, 64, torch.bfloat16, "bshd", 25)
    cache = make(2, 64, 2, 64, torch.bfloat16, "bshd", 26)
    new = make(2, 2, 2, 64, torch.bfloat16, "bshd", 27)
    lengths = torch.tensor([10, 63], dtype=torch.int32, device="cuda")
    with pytest.raises(fa2jit.Fa2Error, match=r"cache_seqlens holds values in \[12, 65\]"):
        fa2jit.forward_with_kvcache(q, cache, cache.clone(), cache_seqlens=lengths, k=new, v=new, check_values=True)
