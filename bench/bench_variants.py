#!/usr/bin/env python3
"""fa2jit's attention variants vs FlexAttention (torch.compile) on the same masks and score mods (issue 13).

    python3 bench/bench_variants.py [--pass fwd|bwd|fwd+bwd|all] [--variant NAME ...] [--seqlen S ...] [--quick]
                                    [--batch B] [--heads H] [--heads-kv H] [--head-dim D] [--dtype bf16|fp16]
                                    [--window W] [--softcap C] [--documents N] [--tune on-first-use|heuristic]
                                    [--no-sdpa] [--warm-caches] [--db PATH] [--csv PATH]

Variants (every one causal, as in decoder training; the defaults are the issue's):
  causal    plain causal: the reference row (SDPA's flash and cuDNN backends take it natively); not in the median
  window    sliding window of W keys (default 1024): fa2jit window=(W, 0); Flex mask q - kv <= W
  softcap   Gemma 2's cap C (default 50): fa2jit softcap=C; Flex score_mod C * tanh(score / C)
  alibi     ALiBi, geometric per-head slopes 2^(-8 (h + 1) / H): fa2jit alibi_slopes=; Flex score_mod
            score - slope[h] * |q - kv|
  document  N documents (default 8) of random lengths packed in each sequence, causal inside each: Flex mask
            doc_id[q] == doc_id[kv]; fa2jit mask_mod="doc_id[q_idx] == doc_id[kv_idx]" with extra={"doc_id": ...},
            "n/a (needs mask_mod)" while fa2jit.attention takes no mask_mod
Passes (default all, in this order for each variant, so each pass's first call pays only what is new to it):
  fwd       the forward alone (no autograd graph)
  bwd       the backward alone: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True) on one recorded graph
  fwd+bwd   a forward recording the graph, then its backward, per timed call
Columns: TFLOP/s over the *effective* FLOPs, i.e. only the (query, key) pairs the mask leaves visible (counted
exactly from the mask; 4 * B * Hq * pairs * d for the forward, 2.5x for bwd, 3.5x for fwd+bwd, as bench_sdpa.py),
so a kernel that skips hidden tiles gets no credit for them and one that computes them pays; fa2jit/flex (> 1:
fa2jit faster); fa2jit's error against Flex (relative Frobenius norm, and the largest absolute difference; O for
fwd, the worst of dQ, dK, dV otherwise); the seconds of each contender's first call of the pass: fa2jit's
on-first-use tuning of the classes new to it, Flex's torch.compile (the inference graph in fwd, the training
graph in bwd). A row whose error is over the tolerance is marked BAD and left out of the medians.
SDPA (flash, cuDNN) runs where it can express the problem: causal natively; window, document and ALiBi only on
cuDNN through a dense additive [.., S, S] mask built outside the timing, which computes every tile (so expect
it below the kernels that skip hidden tiles); softcap not at all. A backend that refuses prints why.
Flex compiles cold: each variant starts from torch._dynamo.reset(), and unless --warm-caches the Inductor and
Triton caches are fresh temporary folders; fa2jit gets a fresh kernel cache unless --db. Set CUDA_CACHE_DISABLE=1
for cold compiles on both sides (scripts/gpu_suite.sh does).
"""

import argparse
import contextlib
import csv
import inspect
import os
import statistics
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(BENCH_DIR), "python"))
sys.path.insert(0, BENCH_DIR)
import fa2jit  # noqa: E402  (importing needs neither torch nor the library)

# Imported by main() once the arguments parse, so that --help works where torch is not installed.
torch = None
F = None
timings_ms = None

VARIANTS = ("causal", "window", "softcap", "alibi", "document")
PASSES = ("fwd", "bwd", "fwd+bwd")
PASS_FLOPS = {"fwd": 1.0, "bwd": 2.5, "fwd+bwd": 3.5}  # FLOPs of a pass, in forwards
DOC_MASK_MOD = "doc_id[q_idx] == doc_id[kv_idx]"  # fa2jit's snippet; causal comes from causal=True
# Relative error against Flex above which a row is BAD: both sides round P and O (and dS) to 16 bits, so they
# differ by a few of those roundings; a wrong mask or score mod moves whole rows, far beyond these.
REL_TOLERANCE = {"bf16": {"fwd": 2e-2, "grad": 3e-2}, "fp16": {"fwd": 5e-3, "grad": 1e-2}}
# The largest absolute difference, over the largest reference magnitude: catches a few wrong rows (say the first
# rows of a window) that the norm would average away.
MAX_TOLERANCE = 0.1


def say(*parts):
    print(*parts, flush=True)


def import_gpu_stack():
    global torch, F, timings_ms
    import torch as torch_module
    import torch.nn.functional as functional
    torch, F = torch_module, functional
    from bench_sdpa import timings_ms as bench_timings  # the same timing as the other benches (do_bench median)
    timings_ms = bench_timings


def alibi_slopes(heads, device):
    """The ALiBi paper's geometric slopes, fp32 [heads]."""
    exponents = torch.arange(1, heads + 1, dtype=torch.float32, device=device)
    return torch.exp2(-8.0 * exponents / heads)


def document_ids(seqlen, documents, device):
    """int32 [seqlen]: the document of each position, `documents` of random lengths (fixed seed) back to back."""
    generator = torch.Generator().manual_seed(0)
    cuts = torch.randperm(seqlen - 1, generator=generator)[:documents - 1] + 1  # distinct starts, none at 0
    starts = torch.zeros(seqlen, dtype=torch.int32)
    starts[cuts] = 1
    return torch.cumsum(starts, 0).to(torch.int32).to(device)


def variant_specs(args, seqlen, device):
    """Each variant's Flex mask_mod (also used to count visible pairs and build SDPA's mask), Flex score_mod, the
    fa2jit options that express the same thing, and how SDPA can take it ("causal", "mask", "bias" or None)."""
    window, cap = args.window, args.softcap
    slopes = alibi_slopes(args.heads, device)
    doc_id = document_ids(seqlen, args.documents, device)

    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    def sliding(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (q_idx - kv_idx <= window)

    def same_document(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (doc_id[q_idx] == doc_id[kv_idx])

    def softcapped(score, b, h, q_idx, kv_idx):
        return cap * torch.tanh(score / cap)

    def alibi(score, b, h, q_idx, kv_idx):
        return score - slopes[h] * (q_idx - kv_idx).abs()

    return {
        "causal": dict(mask=causal, score_mod=None, fa2jit=dict(causal=True), sdpa="causal"),
        "window": dict(mask=sliding, score_mod=None, fa2jit=dict(causal=True, window=(window, 0)), sdpa="mask"),
        "softcap": dict(mask=causal, score_mod=softcapped, fa2jit=dict(causal=True, softcap=cap), sdpa=None),
        "alibi": dict(mask=causal, score_mod=alibi, fa2jit=dict(causal=True, alibi_slopes=slopes), sdpa="bias",
                      slopes=slopes),
        "document": dict(mask=same_document, score_mod=None,
                         fa2jit=dict(causal=True, mask_mod=DOC_MASK_MOD, extra={"doc_id": doc_id}), sdpa="mask"),
    }


def visible_pairs(mask, seqlen, device):
    """(query, key) pairs of one (batch, head) that `mask` shows, counted in row chunks."""
    keys = torch.arange(seqlen, device=device)[None, :]
    total = 0
    for start in range(0, seqlen, 2048):
        rows = torch.arange(start, min(start + 2048, seqlen), device=device)[:, None]
        total += int(mask(0, 0, rows, keys).sum())
    return total


def sdpa_mask(spec, seqlen, dtype, device):
    """SDPA's additive mask for a variant: 0 where visible, -inf elsewhere, plus ALiBi's bias; [1, 1 or H, S, S]."""
    index = torch.arange(seqlen, device=device)
    rows, keys = index[:, None], index[None, :]
    hidden = ~spec["mask"](0, 0, rows, keys)
    if spec["sdpa"] == "bias":
        bias = -(spec["slopes"][:, None, None] * (rows - keys).abs()[None].float())
        return bias.masked_fill_(hidden[None], float("-inf")).to(dtype)[None]
    return torch.zeros(seqlen, seqlen, dtype=dtype, device=device).masked_fill_(hidden, float("-inf"))[None, None]


def missing_options(function, options):
    """The options `function` does not take (fa2jit's mask_mod and extra arrive with issue 13's next step)."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return []
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return []
    return [name for name in options if name not in parameters]


def compare(outputs, references, dtype_name, pass_):
    """(relative error, max abs diff, bad) of fa2jit's outputs against Flex's, the worst over the tensors."""
    worst_rel, worst_abs, bad = 0.0, 0.0, False
    tolerance = REL_TOLERANCE[dtype_name]["fwd" if pass_ == "fwd" else "grad"]
    for value, reference in zip(outputs, references):
        value, reference = value.float(), reference.float()
        difference = (value - reference).abs()
        rel = (difference.norm() / reference.norm()).item()
        largest = difference.max().item()
        worst_rel, worst_abs = max(worst_rel, rel), max(worst_abs, largest)
        if not (rel <= tolerance and largest <= MAX_TOLERANCE * reference.abs().max().item()):
            bad = True  # NaN compares false, so it is bad too
    return worst_rel, worst_abs, bad


def first_call(fn):
    """(result, seconds) of fn's first call, synchronized."""
    torch.cuda.synchronize()
    started = time.perf_counter()
    result = fn()
    torch.cuda.synchronize()
    return result, time.perf_counter() - started


def error_note(error):
    return f"{type(error).__name__}: {str(error).strip().splitlines()[0][:180] if str(error).strip() else ''}"


class Flex:
    """torch.compile(flex_attention) with one variant's score_mod and block mask (made outside any timing)."""

    def __init__(self, spec, q, k):
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
        torch._dynamo.reset()  # each variant compiles cold, as a user's first call of it does
        self.compiled = torch.compile(flex_attention, dynamic=False)
        self.block_mask = create_block_mask(spec["mask"], None, None, q.shape[2], k.shape[2], device=q.device)
        self.score_mod = spec["score_mod"]
        self.gqa = q.shape[1] != k.shape[1]

    def __call__(self, q, k, v):
        return self.compiled(q, k, v, score_mod=self.score_mod, block_mask=self.block_mask, enable_gqa=self.gqa)


def pass_steps(pass_, forward, leaves, dout):
    """(first, step) for a pass: `first` runs it once and returns what is compared (O, or dQ, dK, dV); `step` is
    what is timed. forward(*leaves) -> O."""
    if pass_ == "fwd":
        inputs = [t.detach() for t in leaves]  # no graph is recorded
        return (lambda: [forward(*inputs)]), (lambda: forward(*inputs))
    if pass_ == "fwd+bwd":
        step = lambda: torch.autograd.grad(forward(*leaves), leaves, dout)  # noqa: E731
        return (lambda: list(step())), step
    recorded = {}

    def first():
        recorded["out"] = forward(*leaves)
        return list(torch.autograd.grad(recorded["out"], leaves, dout, retain_graph=True))
    return first, lambda: torch.autograd.grad(recorded["out"], leaves, dout, retain_graph=True)


def run_contender(row, name, pass_, forward, leaves, dout, flops):
    """Times one contender's pass into row[name], its first call into row[name + '_first_s']; returns what the
    first call computed (None when it failed, with the reason in row[name + '_note'])."""
    first, step = pass_steps(pass_, forward, leaves, dout)
    try:
        outputs, row[name + "_first_s"] = first_call(first)
        times = timings_ms(step)
    except Exception as error:  # noqa: BLE001 - Triton, Inductor, cuDNN and fa2jit raise many types: a note here
        row[name], row[name + "_note"] = None, error_note(error)
        return None
    row[name + "_ms"] = times[1]
    row[name] = flops / (times[1] * 1e-3) / 1e12
    return outputs


def sdpa_forward(backend, spec, mask, gqa):
    from torch.nn.attention import sdpa_kernel

    def forward(q, k, v):
        with sdpa_kernel(backend):
            if spec["sdpa"] == "causal":
                return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
    return forward


def bench_variant(name, spec, args, point, db, passes, sdpa):
    """Every pass of one variant at one point: a row per pass."""
    from torch.nn.attention import SDPBackend
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    b, s, hq, hkv, d = point["batch"], point["seqlen"], args.heads, args.heads_kv, args.head_dim
    q = torch.randn(b, hq, s, d, device="cuda", dtype=dtype)
    k = torch.randn(b, hkv, s, d, device="cuda", dtype=dtype)
    v = torch.randn(b, hkv, s, d, device="cuda", dtype=dtype)
    dout = torch.randn_like(q)
    # fa2jit gets its native BSHD layout: copies of the same data, made here.
    qs, ks, vs, douts = (t.transpose(1, 2).contiguous() for t in (q, k, v, dout))
    pairs = visible_pairs(spec["mask"], s, q.device)
    forward_flops = 4 * b * hq * pairs * d
    flex = Flex(spec, q, k)
    options = dict(spec["fa2jit"], tune=args.tune, cache_path=db)
    mask = None
    if sdpa and spec["sdpa"] in ("mask", "bias"):
        mask = sdpa_mask(spec, s, dtype, q.device)
    rows = []
    for pass_ in passes:
        flops = forward_flops * PASS_FLOPS[pass_]
        row = dict(point, variant=name, dtype=args.dtype, heads=f"{hq}/{hkv}", d=d,
                   density=pairs / (s * s))
        row["pass"] = pass_
        leaves = [t.detach().requires_grad_(pass_ != "fwd") for t in (q, k, v)]
        reference = run_contender(row, "flex", pass_, flex, leaves, dout, flops)
        backends = [] if not sdpa else [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)]
        for backend_name, backend in backends:
            if spec["sdpa"] is None:
                row[backend_name], row[backend_name + "_note"] = None, "SDPA cannot express this score mod"
            elif spec["sdpa"] != "causal" and backend_name == "flash":
                row[backend_name], row[backend_name + "_note"] = None, "SDPA's flash backend takes no attn_mask"
            else:
                run_contender(row, backend_name, pass_, sdpa_forward(backend, spec, mask, hq != hkv), leaves, dout,
                              flops)
                if spec["sdpa"] != "causal" and row.get(backend_name):
                    row[backend_name + "_note"] = "dense [S, S] additive mask: every tile computed"
        # fwd times fa2jit.forward, the others fa2jit.attention: each must take the variant's options.
        missing = missing_options(fa2jit.forward if pass_ == "fwd" else fa2jit.attention, options)
        if missing:
            row["fa2jit"], row["fa2jit_note"] = None, f"n/a (needs {', '.join(missing)})"
        else:
            fa2_leaves = [t.detach().requires_grad_(pass_ != "fwd") for t in (qs, ks, vs)]
            if pass_ == "fwd":
                forward = lambda q_, k_, v_: fa2jit.forward(q_, k_, v_, **options)  # noqa: E731
            else:
                forward = lambda q_, k_, v_: fa2jit.attention(q_, k_, v_, **options)  # noqa: E731
            outputs = run_contender(row, "fa2jit", pass_, forward, fa2_leaves, douts, flops)
            if outputs is not None:
                with contextlib.suppress(Exception):  # the name is for the reader; a failure here is no result
                    if pass_ == "fwd":
                        row["fa2jit_config"] = fa2jit.config_name(*(t.detach() for t in fa2_leaves), **options)
                if reference is not None:
                    # BSHD back to Flex's BHSD for the comparison.
                    row["rel_err"], row["max_abs"], row["bad"] = compare(
                        [t.transpose(1, 2) for t in outputs], reference, args.dtype, pass_)
                else:
                    row["fa2jit_note"] = "unchecked: Flex gave no output to compare with"
        if row.get("fa2jit") and row.get("flex") and not row.get("bad"):
            row["fa2jit/flex"] = row["fa2jit"] / row["flex"]
        rows.append(row)
        print_row(row)
    return rows


def fmt(value, spec):
    return "n/a" if value is None else format(value, spec)


HEADER = (f"{'variant':8} {'pass':7} {'seqlen':>6} {'batch':>5} {'heads':>6} {'dense':>5} | {'flash':>6} "
          f"{'cudnn':>6} {'flex':>6} {'fa2jit':>6} | {'/flex':>6} | {'fa2 ms':>7} {'flex ms':>7} | {'rel err':>7} "
          f"{'max abs':>7} {'ok':>3} | {'fa2 1st':>7} {'flex 1st':>8}")


def print_row(row):
    check = "" if "bad" not in row else ("BAD" if row["bad"] else "ok")
    say(f"{row['variant']:8} {row['pass']:7} {row['seqlen']:>6} {row['batch']:>5} {row['heads']:>6} "
        f"{row['density']:5.3f} | "
        + " ".join(fmt(row.get(name), "6.1f") for name in ("flash", "cudnn", "flex", "fa2jit"))
        + f" | {fmt(row.get('fa2jit/flex'), '6.3f')} | {fmt(row.get('fa2jit_ms'), '7.3f')} "
          f"{fmt(row.get('flex_ms'), '7.3f')} | {fmt(row.get('rel_err'), '7.1e')} {fmt(row.get('max_abs'), '7.1e')} "
          f"{check:>3} | {fmt(row.get('fa2jit_first_s'), '7.2f')} {fmt(row.get('flex_first_s'), '8.2f')}")
    for name in ("fa2jit", "flex", "flash", "cudnn"):
        if row.get(name + "_note"):
            say(f"      {name}: {row[name + '_note']}")
    if row.get("fa2jit_config"):
        say(f"      fa2jit kernel: {row['fa2jit_config']}")


def summarize(rows):
    say("\nSummary: fa2jit / FlexAttention, effective TFLOP/s (> 1: fa2jit faster; the issue's target is >= 1.3 at "
        "the median, forward and backward); the causal row and BAD rows are left out")
    for pass_ in PASSES:
        ratios = [r["fa2jit/flex"] for r in rows if r["pass"] == pass_ and r["variant"] != "causal"
                  and r.get("fa2jit/flex")]
        if ratios:
            say(f"  {pass_:7} median {statistics.median(ratios):.3f}  min {min(ratios):.3f}  max {max(ratios):.3f}  "
                f"over {len(ratios)} rows")
    bad = [f"{r['variant']} {r['pass']} s{r['seqlen']}" for r in rows if r.get("bad")]
    if bad:
        say(f"  BAD (fa2jit differs from Flex beyond tolerance): {', '.join(bad)}")
    say("First calls, seconds summed over the passes of each variant (fa2jit: tuning on first use of each class; "
        "Flex: torch.compile of the inference and training graphs):")
    for key in sorted({(r["variant"], r["seqlen"]) for r in rows}, key=lambda k: (k[1], VARIANTS.index(k[0]))):
        subset = [r for r in rows if (r["variant"], r["seqlen"]) == key]
        fa2 = [r["fa2jit_first_s"] for r in subset if r.get("fa2jit") and "fa2jit_first_s" in r]
        flex = [r["flex_first_s"] for r in subset if r.get("flex") and "flex_first_s" in r]
        say(f"  {key[0]:8} s{key[1]:<6} fa2jit {fmt(sum(fa2) if fa2 else None, '6.2f')}  "
            f"flex {fmt(sum(flex) if flex else None, '6.2f')}")


def write_csv(path, rows):
    fields = []
    for row in rows:
        fields += [key for key in row if key not in fields]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__[__doc__.index("Variants"):])
    parser.add_argument("--pass", dest="pass_", choices=PASSES + ("all",), default="all")
    parser.add_argument("--variant", action="append", choices=VARIANTS, help="only these variants (repeatable)")
    parser.add_argument("--seqlen", type=int, action="append",
                        help="sequence lengths (repeatable; default 8192, --quick 4096)")
    parser.add_argument("--batch", type=int, help="default: 16384 tokens per batch (16384 // seqlen)")
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--heads-kv", type=int, help="KV heads (GQA when fewer than --heads; default --heads)")
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--dtype", choices=("bf16", "fp16"), default="bf16")
    parser.add_argument("--window", type=int, default=1024, help="sliding window: keys before the diagonal")
    parser.add_argument("--softcap", type=float, default=50.0)
    parser.add_argument("--documents", type=int, default=8, help="documents per sequence in the document mask")
    parser.add_argument("--quick", action="store_true", help="seqlen 4096 (batch 4) unless --seqlen")
    parser.add_argument("--tune", choices=("on-first-use", "heuristic"), default="on-first-use",
                        help="fa2jit's policy: tune each class on first use (default), or the built-in configs")
    parser.add_argument("--no-sdpa", dest="sdpa", action="store_false", help="skip SDPA's flash and cuDNN columns")
    parser.add_argument("--warm-caches", action="store_true",
                        help="keep Inductor's and Triton's usual cache folders (Flex's first calls then may be warm)")
    parser.add_argument("--db", help="fa2jit kernel cache (default: a temporary file, so every class is tuned)")
    parser.add_argument("--csv", help="write every measured field here")
    args = parser.parse_args()
    args.heads_kv = args.heads_kv or args.heads
    if args.heads % args.heads_kv:
        parser.error(f"--heads {args.heads} is not a multiple of --heads-kv {args.heads_kv}")
    args.seqlen = args.seqlen or [4096 if args.quick else 8192]
    if args.documents < 1 or any(args.documents > s for s in args.seqlen):
        parser.error(f"--documents {args.documents} must be in [1, seqlen]")
    if args.window < 0 or args.softcap <= 0:
        parser.error("--window must be >= 0 and --softcap > 0")
    return args


def main():
    args = parse_args()
    with contextlib.ExitStack() as stack:
        if not args.warm_caches:
            # Before torch is imported: Inductor and Triton read these when they first need a cache folder.
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="fa2jit-flex-caches-"))
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(folder, "inductor")
            os.environ["TRITON_CACHE_DIR"] = os.path.join(folder, "triton")
        import_gpu_stack()
        if not torch.cuda.is_available():
            sys.exit("bench_variants.py: torch sees no CUDA GPU")
        db = args.db
        if db is None:
            db = os.path.join(stack.enter_context(tempfile.TemporaryDirectory(prefix="fa2jit-bench-")), "kernels.db")
        passes = PASSES if args.pass_ == "all" else (args.pass_,)
        variants = [name for name in VARIANTS if not args.variant or name in args.variant]
        say(f"GPU {torch.cuda.get_device_name()} | torch {torch.__version__} | fa2jit {fa2jit.library_version()} | "
            f"policy {args.tune} | cache {db} | Flex caches {'as usual' if args.warm_caches else 'fresh'} | "
            f"CUDA_CACHE_DISABLE={os.environ.get('CUDA_CACHE_DISABLE', 'unset')}")
        say(f"{args.dtype} d{args.head_dim}, window {args.window}, softcap {args.softcap:g}, {args.documents} documents; "
            f"TFLOP/s over visible pairs only (dense = visible share of the S x S pairs); ms are medians\n{HEADER}")
        rows = []
        for seqlen in args.seqlen:
            point = dict(seqlen=seqlen, batch=args.batch or max(1, 16384 // seqlen))
            specs = variant_specs(args, seqlen, "cuda")
            for name in variants:
                rows += bench_variant(name, specs[name], args, point, db, passes, args.sdpa)
                torch.cuda.empty_cache()
        summarize(rows)
        if args.csv:
            write_csv(args.csv, rows)
            say(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
