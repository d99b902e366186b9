#!/usr/bin/env python3
"""Host overhead per call on a tiny attention: fa2jit's eager direct path and its torch operator vs SDPA.

    python3 bench/bench_overhead.py [--batch 1] [--seqlen 16] [--heads 4] [--heads-kv 4] [--head-dim 64]
                                    [--calls 500] [--repeats 21] [--tune heuristic] [--db PATH]

A tiny problem (default B1 S16 H4 D64 bf16, causal) runs in a few microseconds on the GPU, so what a call
costs is the host's work before its kernel is enqueued: Python, argument checks, allocating the output,
finding the kernel, the launch. That is what this measures, for each contender in the same run:

  fa2jit.attention        no input requires grad: the direct path (_fast.py), what inference takes
  fa2jit.forward          the same path through the pass's own name
  op fa2jit::fwd          torch.ops.fa2jit.fwd called eagerly: the torch.library dispatch that a compiled
                          graph and the autograd path go through (returns O and the LSE)
  attention (grad)        fa2jit.attention on inputs that require grad: the operator plus autograd's
                          bookkeeping (the forward of a training step; the backward is not run)
  sdpa flash, sdpa        torch's scaled_dot_product_attention restricted to the flash backend, and with
                          the backend torch picks, on [B, H, S, D] tensors (its native layout)
  sdpa (grad)             SDPA on inputs that require grad: the like-for-like row of "attention (grad)"
  kvcache decode          fa2jit.forward_with_kvcache of one new query row against k, v as the cache, with
                          cache_seqlens (a decode step's call)
  sdpa decode             SDPA of the same one row against k, v ([B, H, S, D]), not causal
  empty_like              one torch.empty_like(q): the floor under any call that allocates its output

Columns, per call, the median over --repeats timings of --calls back-to-back calls (after a warm-up that
resolves the kernel, so no tuning or compiling is timed):
  host us     wall time of the --calls calls / --calls, the host never waiting for the GPU in between
              (no synchronization inside; --calls stays well under the launch queue's depth, so the
              queue never fills and the host never blocks on it); a synchronize between timings, untimed
  cpu us      this thread's CPU time over the same calls / --calls (time.thread_time): equal to host us
              unless the thread was descheduled or blocked
  gpu us      CUDA events around the same back-to-back calls / --calls: how long the GPU is busy per call;
              when it is below host us, the GPU waits for the host (overhead bound)
  vs flash, vs sdpa   host us / SDPA flash's and SDPA default's host us (< 1: less host overhead than SDPA)
"""

import argparse
import contextlib
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
import fa2jit  # noqa: E402
from fa2jit import _autograd  # noqa: E402


def parse():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seqlen", type=int, default=16)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--heads-kv", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--calls", type=int, default=500, help="back-to-back calls per timing")
    parser.add_argument("--repeats", type=int, default=21, help="timings per contender (median reported)")
    parser.add_argument("--tune", default="heuristic", help="fa2jit's tune policy (heuristic: nothing is tuned)")
    parser.add_argument("--db", default=None, help="fa2jit's cache file (other policies)")
    return parser.parse_args()


def host_time(call, calls, repeats):
    """(median wall us per call, median CPU us per call) of `calls` unsynchronized calls."""
    walls, cpus = [], []
    for _ in range(repeats):
        torch.cuda.synchronize()
        wall, cpu = time.perf_counter(), time.thread_time()
        for _ in range(calls):
            call()
        cpus.append((time.thread_time() - cpu) / calls * 1e6)
        walls.append((time.perf_counter() - wall) / calls * 1e6)
    torch.cuda.synchronize()
    return statistics.median(walls), statistics.median(cpus)


def gpu_time(call, calls):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(calls):
        call()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / calls * 1e3


def contenders(args):
    """name -> (call, context the calls run in: SDPA's backend choice is made once, outside the timing)."""
    shape_q = (args.batch, args.seqlen, args.heads, args.head_dim)
    shape_kv = (args.batch, args.seqlen, args.heads_kv, args.head_dim)
    q = torch.randn(shape_q, device="cuda", dtype=torch.bfloat16)
    k, v = (torch.randn(shape_kv, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    q_grad, k_grad, v_grad = (t.clone().requires_grad_() for t in (q, k, v))
    qh, kh, vh = (t.transpose(1, 2).contiguous() for t in (q, k, v))  # [B, H, S, D] for SDPA
    qh_grad, kh_grad, vh_grad = (t.clone().requires_grad_() for t in (qh, kh, vh))
    gqa = args.heads != args.heads_kv
    options = dict(causal=True, tune=args.tune, cache_path=args.db)
    _autograd.torch_ops()  # registers torch.ops.fa2jit.*
    op = torch.ops.fa2jit.fwd

    def sdpa():
        return F.scaled_dot_product_attention(qh, kh, vh, is_causal=True, enable_gqa=gqa)

    def sdpa_grad():
        return F.scaled_dot_product_attention(qh_grad, kh_grad, vh_grad, is_causal=True, enable_gqa=gqa)

    q_step = q[:, -1:].contiguous()  # one new row per sequence
    qh_step = q_step.transpose(1, 2).contiguous()
    cache_seqlens = torch.full((args.batch,), args.seqlen, dtype=torch.int32, device="cuda")

    def sdpa_decode():
        return F.scaled_dot_product_attention(qh_step, kh, vh, enable_gqa=gqa)

    return {
        "fa2jit.attention": (lambda: fa2jit.attention(q, k, v, **options), contextlib.nullcontext),
        "fa2jit.forward": (lambda: fa2jit.forward(q, k, v, **options), contextlib.nullcontext),
        "op fa2jit::fwd": (lambda: op(q, k, v, True, None, False, "bshd", args.tune, args.db), contextlib.nullcontext),
        "attention (grad)": (lambda: fa2jit.attention(q_grad, k_grad, v_grad, **options), contextlib.nullcontext),
        "sdpa flash": (sdpa, lambda: sdpa_kernel(SDPBackend.FLASH_ATTENTION)),
        "sdpa": (sdpa, contextlib.nullcontext),
        "sdpa (grad)": (sdpa_grad, contextlib.nullcontext),
        "kvcache decode": (lambda: fa2jit.forward_with_kvcache(q_step, k, v, cache_seqlens=cache_seqlens,
                                                               tune=args.tune, cache_path=args.db),
                           contextlib.nullcontext),
        "sdpa decode": (sdpa_decode, contextlib.nullcontext),
        "empty_like": (lambda: torch.empty_like(q), contextlib.nullcontext),
    }


def main():
    args = parse()
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, fa2jit {fa2jit.library_version()}; "
          f"B{args.batch} S{args.seqlen} Hq{args.heads} Hkv{args.heads_kv} D{args.head_dim} bf16 causal; "
          f"{args.calls} calls x {args.repeats} timings")
    results = {}
    for name, (call, context) in contenders(args).items():
        with context():
            try:
                for _ in range(20):  # warm-up: resolves fa2jit's kernels, fills torch's allocator
                    call()
            except RuntimeError as error:  # e.g. SDPA's flash backend refusing this shape or GPU
                if name != "sdpa flash":
                    raise
                print(f"sdpa flash cannot run here ({str(error).splitlines()[0]}); left out")
                continue
            host, cpu = host_time(call, args.calls, args.repeats)
            results[name] = (host, cpu, gpu_time(call, args.calls))
    flash = results.get("sdpa flash", (float("nan"),))[0]
    default = results["sdpa"][0]
    print(f"{'':20} {'host us':>8} {'cpu us':>8} {'gpu us':>8} {'vs flash':>9} {'vs sdpa':>8}")
    for name, (host, cpu, gpu) in results.items():
        print(f"{name:20} {host:8.2f} {cpu:8.2f} {gpu:8.2f} {host / flash:8.2f}x {host / default:7.2f}x")


if __name__ == "__main__":
    main()
