#!/usr/bin/env python3
"""Where one decode step's time goes: the GPU timeline of fa2jit.forward_with_kvcache next to SDPA's.

    python3 bench/decode_timeline.py [--batch 1] [--cache 1024] [--hq 32] [--hkv 8] [--splits 0]

For a latency-bound decode step (batch 1, a short cache) the kernels' own time is a fraction of the step: the
rest is launch gaps between the kernels of one call. This runs each contender 20 times back to back (after a
warm-up), records them with torch.profiler (CUPTI sees every kernel in the process, fa2jit's driver-API
launches included) and prints, per contender, each kernel's median duration, the median gap before it (from
the end of the previous kernel of the same step), and the median span of a whole step (first kernel's start
to last kernel's end). Steps are separated by a torch.cuda.synchronize(), so gaps inside a step are the
stream's own, not the host's. bf16, d128, one query row per sequence, as bench/bench_decode.py.
"""

import argparse
import os
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
import fa2jit  # noqa: E402

STEPS = 20


def kernel_events(profile):
    """The CUDA kernel (and memset/memcpy) events of a profile, sorted by start time (us)."""
    events = [e for e in profile.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    return sorted(events, key=lambda e: e.time_range.start)


def steps_of(events, step_marks):
    """Splits kernel events into steps by the host-side synchronize marks (every step ends in a sync)."""
    steps, current, index = [], [], 0
    for event in events:
        while index < len(step_marks) and event.time_range.start > step_marks[index]:
            if current:
                steps.append(current)
            current, index = [], index + 1
        current.append(event)
    if current:
        steps.append(current)
    return steps


def profile_steps(fn):
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    marks = []
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA,
                                            torch.profiler.ProfilerActivity.CPU]) as profile:
        for _ in range(STEPS):
            fn()
            torch.cuda.synchronize()
            with torch.profiler.record_function("step_end"):
                pass
    for event in profile.events():
        if event.name == "step_end":
            marks.append(event.time_range.start)
    return steps_of(kernel_events(profile), sorted(marks))


def report(name, steps):
    steps = [s for s in steps if len(s) == len(steps[-1])]  # drop any step with a stray event
    if not steps:
        print(f"{name}: no kernels recorded")
        return
    span = statistics.median(s[-1].time_range.end - s[0].time_range.start for s in steps)
    print(f"{name}: {len(steps[0])} kernels per step, step span {span:.1f} us (median of {len(steps)})")
    for i, event in enumerate(steps[0]):
        duration = statistics.median(s[i].time_range.end - s[i].time_range.start for s in steps)
        gap = (statistics.median(s[i].time_range.start - s[i - 1].time_range.end for s in steps) if i else 0.0)
        print(f"  {event.name[:70]:<70} {duration:7.1f} us  gap before {gap:5.1f} us")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--cache", type=int, default=1024)
    parser.add_argument("--hq", type=int, default=32)
    parser.add_argument("--hkv", type=int, default=8)
    parser.add_argument("--splits", type=int, default=0, help="fa2jit num_splits (0: its choice)")
    parser.add_argument("--tune", default="heuristic")
    args = parser.parse_args()
    torch.manual_seed(0)
    q = torch.randn(args.batch, 1, args.hq, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(args.batch, args.cache, args.hkv, 128, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
    out = torch.empty_like(q)
    print(f"decode step: batch {args.batch}, cache {args.cache}, heads {args.hq}/{args.hkv}, d128 bf16; "
          f"{torch.cuda.get_device_name()}")
    report("fa2jit", profile_steps(lambda: fa2jit.forward_with_kvcache(q, k, v, out=out, num_splits=args.splits,
                                                                       tune=args.tune)))
    qs, ks, vs = q.transpose(1, 2).contiguous(), k.transpose(1, 2).contiguous(), v.transpose(1, 2).contiguous()
    for name, backend in (("sdpa flash", SDPBackend.FLASH_ATTENTION), ("sdpa cudnn", SDPBackend.CUDNN_ATTENTION)):
        with sdpa_kernel(backend):
            report(name, profile_steps(lambda: F.scaled_dot_product_attention(qs, ks, vs, enable_gqa=True)))


if __name__ == "__main__":
    main()
