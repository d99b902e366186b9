#!/usr/bin/env python3
"""fa2jit (tuned) vs PyTorch SDPA's flash and cuDNN backends (and FlexAttention), on the same inputs and GPU.

    python3 bench/bench_sdpa.py [--pass fwd|bwd|fwd+bwd] [--grid paper|gqa|all] [--quick] [--no-flex]
                                [--head-dim D ...] [--seqlen S ...] [--deterministic] [--db PATH] [--csv PATH]

SDPA gets [B, H, S, D] tensors; fa2jit gets BSHD copies of the same data. What is timed, by --pass:
  fwd      the attention forward alone (default). fa2jit writes into a preallocated O.
  bwd      the backward alone, from a forward done once beforehand: SDPA's as
           torch.autograd.grad(out, (q, k, v), dout, retain_graph=True) on that graph; fa2jit's as
           fa2jit.backward(dout, q, k, v, O, LSE) into preallocated dQ, dK, dV.
  fwd+bwd  a forward that records the graph and its backward: SDPA vs fa2jit.attention, each followed by
           torch.autograd.grad(out, (q, k, v), dout, retain_graph=True).
fa2jit's first call of a pass, which may tune its kernel classes (the on-first-use policy), is timed on
its own ("first s") and kept out of the measurement; for bwd, the forward that makes O and LSE uses the
built-in config, so only the backward's class is tuned. The error column is a sanity check, not the test suite's
tolerance: fa2jit's O (fwd) or dQ (bwd, fwd+bwd) relative to flash's (cuDNN's where flash cannot run).
TFLOP/s = 4*B*Hq*Sq*Sk*d / t for the forward, halved for causal (equal seqlens here); the backward counts
2.5x the forward's FLOPs (five GEMMs to the forward's two) and fwd+bwd 3.5x, as FlashAttention reports them.
FlexAttention (--pass fwd only): torch.compile(flex_attention) on the same [B, H, S, D] tensors, with a causal
block mask (made outside any timing) and enable_gqa for GQA; each point starts from torch._dynamo.reset(), so
its first call ("flex 1st s") is the compile a user pays for that shape, printed beside fa2jit's tuning time.
Ratios > 1: fa2jit is faster. --deterministic runs fa2jit's backward in its bitwise-reproducible mode
(SDPA has no such switch). A GQA shape an SDPA backend cannot take natively runs on K/V with repeated
heads, marked "repeat_kv" (for bwd and fwd+bwd that includes the gradient's sum over the copies).
"""

import argparse
import contextlib
import csv
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
PASS_FLOPS = {"fwd": 1.0, "bwd": 2.5, "fwd+bwd": 3.5}  # FLOPs of a pass, in forwards
BACKENDS = (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION))
COMPARED = ("flash", "cudnn", "flex")  # what fa2jit's ratios are taken against, where measured


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


def sdpa_calls(q, k, v, causal):
    """The ways to call SDPA on these tensors, as (fn, mark), in order of preference: for GQA enable_gqa
    first, then K/V with repeated heads (marked '*'; repeated here, outside any timing)."""
    def call(kk, vv, **extra):
        return lambda: F.scaled_dot_product_attention(q, kk, vv, is_causal=causal, **extra)

    if q.shape[1] == k.shape[1]:
        return [(call(k, v), "")]
    group = q.shape[1] // k.shape[1]
    return [(call(k, v, enable_gqa=True), ""),
            (call(k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)), "*")]


def sdpa_runner(backend, q, k, v, causal):
    """A timed call for `backend`: (fn, mark, its output) of the first of sdpa_calls that runs."""
    errors = []
    for fn, mark in sdpa_calls(q, k, v, causal):
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


def flex_runner(q, k, v, causal):
    """(fn, output, seconds of the first call) of torch.compile(flex_attention) on these tensors."""
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    torch._dynamo.reset()  # every shape compiles cold, as a user's first call of it does
    compiled = torch.compile(flex_attention, dynamic=False)
    block_mask = None
    if causal:
        seqlen_q, seqlen_k = q.shape[2], k.shape[2]
        block_mask = create_block_mask(lambda b, h, q_idx, kv_idx: q_idx >= kv_idx, None, None, seqlen_q, seqlen_k,
                                       device=q.device)
    gqa = q.shape[1] != k.shape[1]

    def fn():
        return compiled(q, k, v, block_mask=block_mask, enable_gqa=gqa)

    torch.cuda.synchronize()
    started = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return fn, out, time.perf_counter() - started


def point_inputs(point):
    dtype = DTYPES[point["dtype"]]
    b, s, hq, hkv, d = (point[key] for key in ("batch", "seqlen", "hq", "hkv", "d"))
    q = torch.randn(b, hq, s, d, device="cuda", dtype=dtype)
    k = torch.randn(b, hkv, s, d, device="cuda", dtype=dtype)
    v = torch.randn(b, hkv, s, d, device="cuda", dtype=dtype)
    return q, k, v


def forward_flops(point):
    b, s, hq, d = (point[key] for key in ("batch", "seqlen", "hq", "d"))
    return 4 * b * hq * s * s * d / (2 if point["causal"] else 1)


def record(row, name, flops, times):
    row[name] = flops / (times[1] * 1e-3) / 1e12
    row[name + "_spread"] = (times[2] - times[0]) / times[1]


def relative_error(value, reference):
    return ((value.float() - reference.float()).norm() / reference.float().norm()).item()


def bench_forward(point, db, deterministic, tune, flex):
    del deterministic  # the forward has no such mode
    q, k, v = point_inputs(point)
    causal = point["causal"]
    flops = forward_flops(point)
    row = dict(point)
    outputs = {}
    for name, backend in BACKENDS:
        try:
            times, mark, outputs[name] = time_sdpa(backend, q, k, v, causal)
            record(row, name, flops, times)
            row[name + "_note"] = "repeat_kv" if mark else ""
        except RuntimeError as error:
            row[name], row[name + "_note"] = None, str(error)[:200]
    if flex:
        try:
            fn, out, row["flex_first_s"] = flex_runner(q, k, v, causal)
            record(row, "flex", flops, timings_ms(fn))
            reference = outputs.get("flash", outputs.get("cudnn"))
            if reference is not None:
                row["flex_rel_err"] = relative_error(out, reference)
        except Exception as error:  # noqa: BLE001 - Triton and Inductor raise many types; any is a note here
            row["flex"], row["flex_note"] = None, f"{type(error).__name__}: {str(error).splitlines()[0][:180]}"

    qs, ks, vs = (t.transpose(1, 2).contiguous() for t in (q, k, v))
    out = torch.empty_like(qs)
    options = dict(causal=causal, tune=tune, cache_path=db, out=out)
    try:
        started = time.perf_counter()
        fa2jit.forward(qs, ks, vs, **options)
        torch.cuda.synchronize()
        row["fa2jit_first_s"] = time.perf_counter() - started
        row["fa2jit_config"] = fa2jit.config_name(qs, ks, vs, **options)
        record(row, "fa2jit", flops, timings_ms(lambda: fa2jit.forward(qs, ks, vs, **options)))
        reference = outputs.get("flash", outputs.get("cudnn"))
        if reference is not None:
            row["fa2jit_rel_err"] = relative_error(out.transpose(1, 2), reference)
    except fa2jit.Fa2Error as error:
        row["fa2jit"], row["fa2jit_note"] = None, str(error).splitlines()[0][:200]
    return row


def sdpa_gradients(backend, q, k, v, dout, causal, with_forward):
    """(timings, mark, dQ) of SDPA's backward on `backend` (with_forward: of its forward + backward), from
    the first of sdpa_calls whose forward and backward both run."""
    leaves = [t.detach().requires_grad_() for t in (q, k, v)]
    errors = []
    for fn, mark in sdpa_calls(*leaves, causal):
        try:
            with sdpa_kernel(backend):
                out = fn()
                if with_forward:
                    def step():
                        return torch.autograd.grad(fn(), leaves, dout, retain_graph=True)
                else:
                    def step():
                        return torch.autograd.grad(out, leaves, dout, retain_graph=True)
                dq = step()[0]
                return timings_ms(step), mark, dq
        except RuntimeError as error:
            errors.append(str(error).splitlines()[0])
    raise RuntimeError("; ".join(errors))


def bench_backward(point, db, deterministic, with_forward, tune):
    """The bwd and fwd+bwd passes of one point."""
    q, k, v = point_inputs(point)
    dout = torch.randn_like(q)
    causal = point["causal"]
    flops = forward_flops(point) * PASS_FLOPS["fwd+bwd" if with_forward else "bwd"]
    row = dict(point)
    dqs = {}
    for name, backend in BACKENDS:
        try:
            times, mark, dqs[name] = sdpa_gradients(backend, q, k, v, dout, causal, with_forward)
            record(row, name, flops, times)
            row[name + "_note"] = "repeat_kv" if mark else ""
        except RuntimeError as error:
            row[name], row[name + "_note"] = None, str(error)[:200]

    qs, ks, vs, douts = (t.transpose(1, 2).contiguous() for t in (q, k, v, dout))
    options = dict(causal=causal, tune=tune, cache_path=db)
    # --pass bwd measures the backward only: its O and LSE come from the built-in forward config, which
    # saves tuning the forward's class (O and LSE are the same up to rounding either way).
    forward_options = options if with_forward else dict(options, tune="heuristic")
    try:
        if with_forward:
            leaves = [t.requires_grad_() for t in (qs, ks, vs)]

            def step():
                out = fa2jit.attention(*leaves, deterministic=deterministic, **options)
                return torch.autograd.grad(out, leaves, douts, retain_graph=True)
        else:
            out, lse = fa2jit.forward(qs, ks, vs, return_lse=True, **forward_options)
            grads = [torch.empty_like(t) for t in (qs, ks, vs)]

            def step():
                return fa2jit.backward(douts, qs, ks, vs, out, lse, deterministic=deterministic, dq=grads[0],
                                       dk=grads[1], dv=grads[2], **options)
        torch.cuda.synchronize()
        started = time.perf_counter()
        dq = step()[0]
        torch.cuda.synchronize()
        row["fa2jit_first_s"] = time.perf_counter() - started
        inputs = [t.detach() for t in (qs, ks, vs)]
        named_out, named_lse = fa2jit.forward(*inputs, return_lse=True, **forward_options)  # resolved by now
        if with_forward:
            row["fa2jit_config"] = fa2jit.config_name(*inputs, **options)
        row["fa2jit_bwd_config"] = fa2jit.backward_config_name(douts, *inputs, named_out, named_lse,
                                                               deterministic=deterministic, **options)
        record(row, "fa2jit", flops, timings_ms(step))
        reference = dqs.get("flash", dqs.get("cudnn"))
        if reference is not None:
            row["fa2jit_rel_err"] = relative_error(dq.transpose(1, 2), reference)
    except fa2jit.Fa2Error as error:
        row["fa2jit"], row["fa2jit_note"] = None, str(error).splitlines()[0][:200]
    return row


def bench_point(point, db, pass_, deterministic, tune, flex):
    if pass_ == "fwd":
        row = bench_forward(point, db, deterministic, tune, flex)
    else:
        row = bench_backward(point, db, deterministic, with_forward=pass_ == "fwd+bwd", tune=tune)
    for name in COMPARED:
        if row.get("fa2jit") and row.get(name):
            row["fa2jit/" + name] = row["fa2jit"] / row[name]
    return row


def fmt(value, spec):
    return "n/a" if value is None else format(value, spec)


HEADER = (f"{'dtype':5} {'d':>3} {'causal':6} {'seqlen':>6} {'batch':>5} {'heads':>6} | {'flash':>6} {'cudnn':>6} "
          f"{'flex':>6} {'fa2jit':>6} | {'/flash':>6} {'/cudnn':>6} {'/flex':>6} | {'sprd fa2':>8} {'sprd fl':>7} | "
          f"{'err':>7} {'first s':>7} {'flex 1st':>8}")


def print_row(row):
    heads = f"{row['hq']}/{row['hkv']}"
    cells = [f"{row['dtype']:5} {row['d']:>3} {'yes' if row['causal'] else 'no':6} {row['seqlen']:>6} "
             f"{row['batch']:>5} {heads:>6}",
             " ".join(fmt(row.get(name), "6.1f") for name in ("flash", "cudnn", "flex", "fa2jit")),
             " ".join(fmt(row.get("fa2jit/" + name), "6.3f") for name in COMPARED),
             f"{fmt(row.get('fa2jit_spread'), '8.1%')} {fmt(row.get('flash_spread'), '7.1%')}",
             f"{fmt(row.get('fa2jit_rel_err'), '7.1e')} {fmt(row.get('fa2jit_first_s'), '7.2f')} "
             f"{fmt(row.get('flex_first_s'), '8.2f')}"]
    say(" | ".join(cells))
    for name in ("flash", "cudnn", "flex", "fa2jit"):
        if row.get(name + "_note"):
            say(f"      {name}: {row[name + '_note']}")


def summarize(rows):
    say("\nSummary (TFLOP/s ratios, > 1 = fa2jit faster)")
    for label, subset in [("all", rows)] + [(dtype, [r for r in rows if r["dtype"] == dtype]) for dtype in DTYPES]:
        for name in COMPARED:
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
    parser.add_argument("--pass", dest="pass_", choices=tuple(PASS_FLOPS), default="fwd",
                        help="what is timed: the forward, the backward, or both (default fwd)")
    parser.add_argument("--deterministic", action="store_true", help="fa2jit's backward in its deterministic mode")
    parser.add_argument("--grid", choices=("paper", "gqa", "all"), default="all")
    parser.add_argument("--quick", action="store_true", help="a handful of points instead of --grid")
    parser.add_argument("--head-dim", type=int, action="append", help="only these head dims (repeatable)")
    parser.add_argument("--seqlen", type=int, action="append", help="only these seqlens (repeatable)")
    parser.add_argument("--tune", choices=("on-first-use", "heuristic"), default="on-first-use",
                        help="fa2jit's policy: tune each class on its first call (default), or run the built-in "
                             "configs (no tuning: what a fresh install runs, and minutes less of GPU time)")
    parser.add_argument("--db", help="fa2jit kernel cache (default: a temporary file, so every class is tuned)")
    parser.add_argument("--csv", help="write every measured field here")
    parser.add_argument("--no-flex", dest="flex", action="store_false",
                        help="skip FlexAttention (its cold compile costs seconds per point)")
    args = parser.parse_args()
    args.flex = args.flex and args.pass_ == "fwd"
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
            f"fa2jit {fa2jit.library_version()} | policy {args.tune} | cache {db}")
        compared = "O" if args.pass_ == "fwd" else "dQ"
        mode = " (fa2jit deterministic)" if args.deterministic and args.pass_ != "fwd" else ""
        say(f"pass {args.pass_}{mode}, {PASS_FLOPS[args.pass_]:g}x the forward's FLOPs\n"
            f"columns: TFLOP/s of flash, cudnn, flex (FlexAttention), fa2jit; fa2jit/backend ratios; fa2jit's "
            f"{compared} error vs flash; seconds of fa2jit's first call (tuning) and of flex's (compile)\n{HEADER}")
        rows = []
        for point in points:
            row = bench_point(point, db, args.pass_, args.deterministic, args.tune, args.flex)
            rows.append(row)
            print_row(row)
            torch.cuda.empty_cache()
        summarize(rows)
        if args.csv:
            write_csv(args.csv, rows)
            say(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
