#!/usr/bin/env python3
"""fa2jit (tuned) vs PyTorch SDPA's flash and cuDNN backends, side by side on the same inputs and GPU.

    python3 bench/bench_sdpa.py [--grid paper|gqa|all] [--quick] [--head-dim D ...] [--seqlen S ...]
                                [--db PATH] [--csv PATH]

SDPA gets [B, H, S, D] tensors; fa2jit gets BSHD copies of the same data. Only the attention call is
timed (fa2jit writes into a preallocated O; its first call, which may tune, is outside the timing).
TFLOP/s = 4*B*Hq*Sq*Sk*d / t, halved for causal (equal seqlens here). Ratios > 1: fa2jit is faster.
"""

import argparse
import contextlib
import csv
import math
import os
import statistics
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
import fa2jit  # noqa: E402

try:
    from triton.testing import do_bench
except ImportError:
    do_bench = None

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
QUANTILES = [0.2, 0.5, 0.8]


def say(*parts):
    print(*parts, flush=True)


def paper_grid():
    """The FA2 paper's forward grid: 16k tokens per batch, hidden 2048."""
    return [dict(dtype=dtype, d=d, causal=causal, seqlen=seqlen, batch=16384 // seqlen, hq=2048 // d, hkv=2048 // d)
            for dtype in DTYPES for d in (64, 128, 256) for causal in (False, True)
            for seqlen in (512, 1024, 2048, 4096, 8192, 16384)]


def gqa_grid():
    """Llama-style shapes: 32 query heads sharing 8 KV heads, d128, causal."""
    return [dict(dtype=dtype, d=128, causal=True, seqlen=seqlen, batch=batch, hq=32, hkv=8)
            for dtype in DTYPES for seqlen in (4096, 8192) for batch in (1, 4)]


def quick_grid():
    mha = [dict(dtype="bf16", d=d, causal=False, seqlen=4096, batch=4, hq=2048 // d, hkv=2048 // d)
           for d in (64, 128, 256)]
    return mha + [
        dict(dtype="bf16", d=128, causal=True, seqlen=2048, batch=8, hq=16, hkv=16),
        dict(dtype="fp16", d=128, causal=False, seqlen=4096, batch=4, hq=16, hkv=16),
        dict(dtype="bf16", d=128, causal=True, seqlen=4096, batch=1, hq=32, hkv=8),
    ]


def timings_ms(fn):
    """[p20, p50, p80] of fn's run time in ms."""
    if do_bench is not None:
        result = do_bench(fn, warmup=25, rep=100, quantiles=QUANTILES)
        return list(result) if isinstance(result, (list, tuple)) else [result] * 3
    for _ in range(10):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(100):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    cuts = statistics.quantiles(times, n=10)  # deciles: [1] = p20, [7] = p80
    return [cuts[1], statistics.median(times), cuts[7]]


def sdpa_runner(backend, q, k, v, causal):
    """A timed call for `backend`, preferring enable_gqa; falls back to repeated K/V heads (marked '*')."""
    def call(kk, vv, **extra):
        return lambda: F.scaled_dot_product_attention(q, kk, vv, is_causal=causal, **extra)

    attempts = [(call(k, v), "")]
    if q.shape[1] != k.shape[1]:
        group = q.shape[1] // k.shape[1]
        attempts = [(call(k, v, enable_gqa=True), ""),
                    (call(k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)), "*")]
    errors = []
    for fn, mark in attempts:
        try:
            with sdpa_kernel(backend):
                out = fn()
            return fn, mark, out
        except RuntimeError as error:
            errors.append(str(error).splitlines()[0])
    raise RuntimeError("; ".join(errors))


def time_sdpa(backend, q, k, v, causal):
    fn, mark, out = sdpa_runner(backend, q, k, v, causal)
    with sdpa_kernel(backend):
        return timings_ms(fn), mark, out


def bench_point(point, db):
    dtype = DTYPES[point["dtype"]]
    b, s, hq, hkv, d, causal = (point[key] for key in ("batch", "seqlen", "hq", "hkv", "d", "causal"))
    q = torch.randn(b, hq, s, d, device="cuda", dtype=dtype)
    k = torch.randn(b, hkv, s, d, device="cuda", dtype=dtype)
    v = torch.randn(b, hkv, s, d, device="cuda", dtype=dtype)
    flops = 4 * b * hq * s * s * d / (2 if causal else 1)
    row = dict(point)
    outputs = {}
    for name, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
        try:
            times, mark, outputs[name] = time_sdpa(backend, q, k, v, causal)
            row[name] = flops / (times[1] * 1e-3) / 1e12
            row[name + "_spread"] = (times[2] - times[0]) / times[1]
            row[name + "_note"] = "repeat_kv" if mark else ""
        except RuntimeError as error:
            row[name], row[name + "_note"] = None, str(error)[:200]

    qs, ks, vs = (t.transpose(1, 2).contiguous() for t in (q, k, v))
    out = torch.empty_like(qs)
    options = dict(causal=causal, tune="on-first-use", cache_path=db, out=out)
    try:
        started = time.perf_counter()
        fa2jit.forward(qs, ks, vs, **options)
        torch.cuda.synchronize()
        row["fa2jit_first_s"] = time.perf_counter() - started
        row["fa2jit_config"] = fa2jit.config_name(qs, ks, vs, **options)
        times = timings_ms(lambda: fa2jit.forward(qs, ks, vs, **options))
        row["fa2jit"] = flops / (times[1] * 1e-3) / 1e12
        row["fa2jit_spread"] = (times[2] - times[0]) / times[1]
        reference = outputs.get("flash", outputs.get("cudnn"))
        if reference is not None:  # a sanity check, not the test suite's tolerance
            diff = (out.transpose(1, 2).float() - reference.float()).norm() / reference.float().norm()
            row["fa2jit_rel_err"] = diff.item()
    except fa2jit.Fa2Error as error:
        row["fa2jit"], row["fa2jit_note"] = None, str(error).splitlines()[0][:200]
    for name in ("flash", "cudnn"):
        if row.get("fa2jit") and row.get(name):
            row["fa2jit/" + name] = row["fa2jit"] / row[name]
    return row


def fmt(value, spec):
    return "n/a" if value is None else format(value, spec)


HEADER = (f"{'dtype':5} {'d':>3} {'causal':6} {'seqlen':>6} {'batch':>5} {'heads':>6} | {'flash':>6} {'cudnn':>6} "
          f"{'fa2jit':>6} | {'/flash':>6} {'/cudnn':>6} | {'sprd fa2':>8} {'sprd fl':>7} | {'err':>7} {'first s':>7}")


def print_row(row):
    heads = f"{row['hq']}/{row['hkv']}"
    cells = [f"{row['dtype']:5} {row['d']:>3} {'yes' if row['causal'] else 'no':6} {row['seqlen']:>6} "
             f"{row['batch']:>5} {heads:>6}",
             " ".join(fmt(row.get(name), "6.1f") for name in ("flash", "cudnn", "fa2jit")),
             " ".join(fmt(row.get(name), "6.3f") for name in ("fa2jit/flash", "fa2jit/cudnn")),
             f"{fmt(row.get('fa2jit_spread'), '8.1%')} {fmt(row.get('flash_spread'), '7.1%')}",
             f"{fmt(row.get('fa2jit_rel_err'), '7.1e')} {fmt(row.get('fa2jit_first_s'), '7.2f')}"]
    say(" | ".join(cells))
    for name in ("flash", "cudnn", "fa2jit"):
        if row.get(name + "_note"):
            say(f"      {name}: {row[name + '_note']}")


def summarize(rows):
    say("\nSummary (TFLOP/s ratios, > 1 = fa2jit faster)")
    for label, subset in [("all", rows)] + [(dtype, [r for r in rows if r["dtype"] == dtype]) for dtype in DTYPES]:
        for name in ("flash", "cudnn"):
            ratios = [r["fa2jit/" + name] for r in subset if r.get("fa2jit/" + name)]
            if ratios:
                say(f"  {label:4} fa2jit/{name:5}: median {statistics.median(ratios):.3f}  min {min(ratios):.3f}  "
                    f"max {max(ratios):.3f}  over {len(ratios)} points")


def write_csv(path, rows):
    fields = []
    for row in rows:
        fields += [key for key in row if key not in fields]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=("paper", "gqa", "all"), default="all")
    parser.add_argument("--quick", action="store_true", help="a handful of points instead of --grid")
    parser.add_argument("--head-dim", type=int, action="append", help="only these head dims (repeatable)")
    parser.add_argument("--seqlen", type=int, action="append", help="only these seqlens (repeatable)")
    parser.add_argument("--db", help="fa2jit kernel cache (default: a temporary file, so every class is tuned)")
    parser.add_argument("--csv", help="write every measured field here")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_sdpa.py: torch sees no CUDA GPU")
    if args.quick:
        points = quick_grid()
    else:
        points = (paper_grid() if args.grid != "gqa" else []) + (gqa_grid() if args.grid != "paper" else [])
    points = [p for p in points if (not args.head_dim or p["d"] in args.head_dim)
              and (not args.seqlen or p["seqlen"] in args.seqlen)]
    if not points:
        sys.exit(f"bench_sdpa.py: no point of the grid has head dim in {args.head_dim} and seqlen in {args.seqlen}")
    with contextlib.ExitStack() as stack:
        db = args.db
        if db is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="fa2jit-bench-"))
            db = os.path.join(folder, "kernels.db")
        say(f"GPU {torch.cuda.get_device_name()} | torch {torch.__version__} | "
            f"timing {'triton do_bench' if do_bench else 'CUDA events'} (median, spread = (p80-p20)/p50) | "
            f"fa2jit {fa2jit.library_version()} | cache {db}")
        say(f"columns: TFLOP/s of flash, cudnn, fa2jit; fa2jit/backend ratios; fa2jit's O error vs flash; "
            f"seconds of fa2jit's first call (tuning)\n{HEADER}")
        rows = []
        for point in points:
            row = bench_point(point, db)
            rows.append(row)
            print_row(row)
            torch.cuda.empty_cache()
        summarize(rows)
        if args.csv:
            write_csv(args.csv, rows)
            say(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
