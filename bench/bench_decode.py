#!/usr/bin/env python3
"""Decode against a KV cache: fa2jit.forward_with_kvcache vs PyTorch SDPA (flash, cuDNN) and vs the memory bound.

    python3 bench/bench_decode.py [--tune heuristic|on-first-use] [--db PATH] [--quick] [--csv PATH]

Each point is one decode step: one new query row per sequence (bf16, d128) against a cache of `cache` keys
per sequence, Hq query heads sharing Hkv KV heads. Everything is read from memory once, so the bound is the
cache's bytes: K/V bytes = 2 * batch * cache * Hkv * d * 2. Columns:
  flash, cudnn   SDPA's time on [B, H, S, D] tensors with enable_gqa=True (the backends' native GQA)
  fa2jit         forward_with_kvcache on a contiguous [B, S, Hkv, D] cache
  paged16        the same cache cut into 16-key pages in a shuffled order, read through a block table
  ratios         backend time / fa2jit time (> 1: fa2jit faster); paged/contig = contiguous time / paged time
  GB/s, %copy    K/V bytes / fa2jit time, and that as a share of this GPU's device-to-device copy bandwidth
                 measured in the same run (bytes read + written by a 2 GiB copy_ / its time)
Times are medians (triton do_bench when present, else CUDA events). Caches larger than L2 are read cold; the
small ones sit in L2 for every contender alike.

Chunked prefill (--part prefill, or all): a chunk of seqlen_q new rows whose keys are the last seqlen_q of a
cache of `cache` keys, causal bottom-right (row r sees keys up to cache - seqlen_q + r). Columns: SDPA flash
with a lower-right causal bias on K/V with repeated heads (made outside the timing), fa2jit's forward family
on the same contiguous tensors, and forward_with_kvcache (the kvc family) on them; TFLOP/s of the kvc call.
"""

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(BENCH_DIR), "python"))
sys.path.insert(0, BENCH_DIR)
import fa2jit  # noqa: E402
from bench_sdpa import timings_ms  # noqa: E402

BACKENDS = (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION))
HEAD_DIM = 128


def say(*parts):
    print(*parts, flush=True)


def points(quick):
    """(batch, cache, hq, hkv): the issue's Llama-3-8B shapes first, then batch 1..256, caches 1k..128k, GQA 8:1."""
    issue = [(1, 32768, 32, 8), (64, 8192, 32, 8), (8, 131072, 32, 8)]
    if quick:
        return issue
    more = [(1, 1024, 32, 8), (1, 131072, 32, 8), (4, 65536, 32, 8), (16, 16384, 32, 8), (32, 4096, 32, 8),
            (128, 2048, 32, 8), (256, 1024, 32, 8), (1, 32768, 64, 8), (16, 8192, 64, 8), (64, 4096, 64, 8)]
    return issue + more


def copy_bandwidth():
    """Bytes read + written per second by a device-to-device copy of 2 GiB: the memory bound's yardstick."""
    source = torch.empty(2**30, dtype=torch.float16, device="cuda")
    target = torch.empty_like(source)
    times = timings_ms(lambda: target.copy_(source))
    return 2 * source.numel() * 2 / (times[1] * 1e-3)


def paged_copy(cache, page_size, generator):
    """[B, S, H, D] cut into [num_pages, page_size, H, D] pages in a shuffled order, and the block table."""
    batch, seqlen = cache.shape[:2]
    per_sequence = seqlen // page_size
    order = torch.randperm(batch * per_sequence, generator=generator).to(cache.device)
    table = order.view(batch, per_sequence).to(torch.int32)
    pages = torch.empty((batch * per_sequence, page_size) + tuple(cache.shape[2:]), dtype=cache.dtype,
                        device=cache.device)
    pages[table.long().flatten()] = cache.reshape(batch * per_sequence, page_size, *cache.shape[2:])
    return pages, table


def sdpa_ms(backend, q, k, v):
    with sdpa_kernel(backend):
        fn = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)  # noqa: E731
        out = fn()
        return timings_ms(fn)[1], out


def bench_point(batch, cache, hq, hkv, tune, db, bandwidth):
    row = dict(batch=batch, cache=cache, hq=hq, hkv=hkv)
    dtype = torch.bfloat16
    q = torch.randn(batch, 1, hq, HEAD_DIM, device="cuda", dtype=dtype)
    k = torch.randn(batch, cache, hkv, HEAD_DIM, device="cuda", dtype=dtype)
    v = torch.randn(batch, cache, hkv, HEAD_DIM, device="cuda", dtype=dtype)
    kv_bytes = 2 * k.numel() * 2
    reference = None
    # SDPA takes [B, H, S, D]; its own contiguous copies, made outside the timing.
    qs, ks, vs = q.transpose(1, 2).contiguous(), k.transpose(1, 2).contiguous(), v.transpose(1, 2).contiguous()
    for name, backend in BACKENDS:
        try:
            row[name], out = sdpa_ms(backend, qs, ks, vs)
            reference = out.transpose(1, 2) if reference is None else reference
        except RuntimeError as error:
            row[name], row[name + "_note"] = None, str(error).splitlines()[0][:160]
    del qs, ks, vs
    torch.cuda.empty_cache()

    out = torch.empty_like(q)
    options = dict(tune=tune, cache_path=db, out=out)
    started = time.perf_counter()
    fa2jit.forward_with_kvcache(q, k, v, **options)
    torch.cuda.synchronize()
    row["first_s"] = time.perf_counter() - started
    row["fa2jit"] = timings_ms(lambda: fa2jit.forward_with_kvcache(q, k, v, **options))[1]
    if reference is not None:
        row["rel_err"] = ((out.float() - reference.float()).norm() / reference.float().norm()).item()
    k_pages, table = paged_copy(k, 16, torch.Generator().manual_seed(0))
    v_pages, _ = paged_copy(v, 16, torch.Generator().manual_seed(0))
    del k, v
    torch.cuda.empty_cache()
    row["paged16"] = timings_ms(lambda: fa2jit.forward_with_kvcache(q, k_pages, v_pages, block_table=table,
                                                                      **options))[1]
    row["gbps"] = kv_bytes / (row["fa2jit"] * 1e-3) / 1e9
    row["copy_share"] = kv_bytes / (row["fa2jit"] * 1e-3) / bandwidth
    row["kv_mb"] = kv_bytes / 1e6
    return row


def prefill_points(quick):
    """(batch, seqlen_q, cache, hq, hkv): Llama-3-8B heads, chunks of 128..2048 rows against 4k..32k caches."""
    shapes = [(1, 512, 8192, 32, 8), (4, 256, 32768, 32, 8), (1, 2048, 32768, 32, 8), (8, 128, 4096, 32, 8)]
    return shapes[:2] if quick else shapes


def bench_prefill(batch, seqlen_q, cache, hq, hkv, tune, db):
    from torch.nn.attention.bias import causal_lower_right
    row = dict(batch=batch, seqlen_q=seqlen_q, cache=cache, hq=hq, hkv=hkv)
    dtype = torch.bfloat16
    q = torch.randn(batch, seqlen_q, hq, HEAD_DIM, device="cuda", dtype=dtype)
    k = torch.randn(batch, cache, hkv, HEAD_DIM, device="cuda", dtype=dtype)
    v = torch.randn(batch, cache, hkv, HEAD_DIM, device="cuda", dtype=dtype)
    pairs = seqlen_q * (cache - seqlen_q) + seqlen_q * (seqlen_q + 1) // 2  # (row, key) pairs seen
    flops = 4 * batch * hq * HEAD_DIM * pairs
    group = hq // hkv
    qs = q.transpose(1, 2).contiguous()
    ks = k.transpose(1, 2).repeat_interleave(group, dim=1).contiguous()
    vs = v.transpose(1, 2).repeat_interleave(group, dim=1).contiguous()
    bias = causal_lower_right(seqlen_q, cache)
    reference = None
    try:
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            fn = lambda: F.scaled_dot_product_attention(qs, ks, vs, attn_mask=bias)  # noqa: E731
            reference = fn().transpose(1, 2)
            row["flash"] = timings_ms(fn)[1]
    except RuntimeError as error:
        row["flash"], row["flash_note"] = None, str(error).splitlines()[0][:160]
    del qs, ks, vs
    torch.cuda.empty_cache()
    options = dict(causal=True, tune=tune, cache_path=db)
    row["fwd"] = timings_ms(lambda: fa2jit.forward(q, k, v, **options))[1]
    out = fa2jit.forward_with_kvcache(q, k, v, **options)
    row["kvc"] = timings_ms(lambda: fa2jit.forward_with_kvcache(q, k, v, **options))[1]
    row["tflops"] = flops / (row["kvc"] * 1e-3) / 1e12
    if reference is not None:
        row["rel_err"] = ((out.float() - reference.float()).norm() / reference.float().norm()).item()
    return row


def print_prefill_row(row):
    flash = row.get("flash")
    row["kvc_vs_flash"] = flash / row["kvc"] if flash else None
    row["kvc_vs_fwd"] = row["fwd"] / row["kvc"]
    say(f"{row['batch']:>5} {row['seqlen_q']:>5} {row['cache']:>7} {row['hq']:>3}/{row['hkv']:<2} | "
        f"{fmt(flash, '7.3f')} {row['fwd']:>7.3f} {row['kvc']:>7.3f} ms | {fmt(row['kvc_vs_flash'], '6.2f')} "
        f"{row['kvc_vs_fwd']:>6.2f} | {row['tflops']:>6.1f} | {fmt(row.get('rel_err'), '7.1e')}")
    if row.get("flash_note"):
        say(f"      flash: {row['flash_note']}")


def fmt(value, spec):
    return format(value, spec) if value is not None else "-".rjust(int(spec.split(".")[0]))


HEADER = (f"{'batch':>5} {'cache':>7} {'Hq/Hkv':>6} {'K/V MB':>8} | {'flash':>7} {'cudnn':>7} {'fa2jit':>7} "
          f"{'paged16':>7} ms | {'/flash':>6} {'/cudnn':>6} {'paged/contig':>12} | {'GB/s':>6} {'%copy':>6} | "
          f"{'err':>7} {'first s':>7}")


def print_row(row):
    flash, cudnn, ours, paged = (row.get(key) for key in ("flash", "cudnn", "fa2jit", "paged16"))
    row["vs_flash"] = flash / ours if flash else None
    row["vs_cudnn"] = cudnn / ours if cudnn else None
    row["paged_ratio"] = ours / paged
    say(f"{row['batch']:>5} {row['cache']:>7} {row['hq']:>3}/{row['hkv']:<2} {row['kv_mb']:>8.0f} | "
        f"{fmt(flash, '7.3f')} {fmt(cudnn, '7.3f')} {ours:>7.3f} {paged:>7.3f}    | "
        f"{fmt(row['vs_flash'], '6.2f')} {fmt(row['vs_cudnn'], '6.2f')} {row['paged_ratio']:>12.2f} | "
        f"{row['gbps']:>6.0f} {row['copy_share']:>6.1%} | {fmt(row.get('rel_err'), '7.1e')} {row['first_s']:>7.2f}")
    for name in ("flash", "cudnn"):
        if row.get(name + "_note"):
            say(f"      {name}: {row[name + '_note']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", choices=("on-first-use", "heuristic"), default="heuristic",
                        help="fa2jit's policy: the built-in config (default) or tune each class on first use")
    parser.add_argument("--db", help="fa2jit kernel cache for --tune on-first-use (default: a temporary file)")
    parser.add_argument("--quick", action="store_true", help="only the three shapes of issue 11 (and two chunks)")
    parser.add_argument("--part", choices=("decode", "prefill", "all"), default="all",
                        help="decode steps, chunked prefill, or both (default)")
    parser.add_argument("--csv", help="write every measured field here")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_decode.py: torch sees no CUDA GPU")
    with contextlib.ExitStack() as stack:
        db = args.db or os.path.join(stack.enter_context(tempfile.TemporaryDirectory(prefix="fa2jit-decode-")),
                                     "kernels.db")
        bandwidth = copy_bandwidth()
        say(f"GPU {torch.cuda.get_device_name()} | torch {torch.__version__} | fa2jit {fa2jit.library_version()} | "
            f"policy {args.tune} | copy bandwidth {bandwidth / 1e12:.2f} TB/s (read + write)\n"
            f"decode: bf16, d{HEAD_DIM}, one query row per sequence, non-causal\n{HEADER}")
        rows = []
        for batch, cache, hq, hkv in points(args.quick) if args.part != "prefill" else []:
            rows.append(bench_point(batch, cache, hq, hkv, args.tune, db, bandwidth))
            print_row(rows[-1])
            torch.cuda.empty_cache()
        say("\nSummary (> 1: fa2jit faster)")
        for key, label in (("vs_flash", "fa2jit/flash"), ("vs_cudnn", "fa2jit/cudnn"), ("paged_ratio", "paged/contig")):
            values = [r[key] for r in rows if r.get(key)]
            if values:
                say(f"  {label:13} median {statistics.median(values):.2f}  min {min(values):.2f}  "
                    f"max {max(values):.2f}  over {len(values)} points")
        big = [r["copy_share"] for r in rows if r["kv_mb"] > 256]
        if big:
            say(f"  %copy where K/V > 256 MB: min {min(big):.1%}  median {statistics.median(big):.1%}")
        if args.part != "decode":
            say(f"\nchunked prefill: bf16, d{HEAD_DIM}, causal bottom-right; flash = SDPA with causal_lower_right\n"
                f"{'batch':>5} {'rows':>5} {'cache':>7} {'Hq/Hkv':>6} | {'flash':>7} {'fwd':>7} {'kvc':>7} ms | "
                f"{'/flash':>6} {'/fwd':>6} | {'TFLOP/s':>6} | {'err':>7}")
            for shape in prefill_points(args.quick):
                rows.append(bench_prefill(*shape, args.tune, db))
                print_prefill_row(rows[-1])
                torch.cuda.empty_cache()
        if args.csv:
            import csv
            with open(args.csv, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=sorted({key for row in rows for key in row}))
                writer.writeheader()
                writer.writerows(rows)


if __name__ == "__main__":
    main()
