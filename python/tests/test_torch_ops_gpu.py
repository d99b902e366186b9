"""The torch operators and CUDA graphs on the GPU: torch.library.opcheck of fwd and bwd, torch.compile
(fullgraph, static and dynamic shapes, inductor and reduce-overhead's CUDA graphs) of a model calling
fa2jit.attention against the eager model, capture and replay of the forward, backward and KV-cache decode
against eager calls (bitwise: the same kernels on the same inputs), and a capture meeting a class not yet
resolved: a clear Fa2Error before anything is done, the capture still valid, the stream still usable.
Needs torch with a CUDA GPU and a built libfa2jit.so; skips, saying which is missing, elsewhere."""

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

from attention_reference import make, relative_error  # noqa: E402
from fa2jit import _autograd  # noqa: E402

_autograd.torch_ops()
F = torch.nn.functional
TUNE = "heuristic"  # the built-in configs: nothing here waits for a tuning


class Block(torch.nn.Module):
    """Pre-norm causal GQA self-attention + MLP, bf16, attention through fa2jit.attention."""

    def __init__(self, dim=256, heads=8, heads_kv=2):
        super().__init__()
        self.heads, self.heads_kv, self.head_dim = heads, heads_kv, dim // heads
        self.norm = torch.nn.RMSNorm(dim)
        self.qkv = torch.nn.Linear(dim, (heads + 2 * heads_kv) * self.head_dim, bias=False)
        self.proj = torch.nn.Linear(dim, dim, bias=False)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(dim, 4 * dim), torch.nn.GELU(), torch.nn.Linear(4 * dim, dim))

    def forward(self, x):
        batch, seqlen, dim = x.shape
        qkv = self.qkv(self.norm(x)).view(batch, seqlen, self.heads + 2 * self.heads_kv, self.head_dim)
        q, k, v = qkv.split([self.heads, self.heads_kv, self.heads_kv], dim=2)
        x = x + self.proj(fa2jit.attention(q, k, v, causal=True, tune=TUNE).reshape(batch, seqlen, dim))
        return x + self.mlp(x)


def block_pair(seed=0):
    torch.manual_seed(seed)
    model = Block().cuda().to(torch.bfloat16)
    twin = Block().cuda().to(torch.bfloat16)
    twin.load_state_dict(model.state_dict())
    return model, twin


def inputs(seqlen=200, heads=(8, 2), head_dim=128, dtype=torch.bfloat16, seed=0, batch=2):
    q = make(batch, seqlen, heads[0], head_dim, dtype, "bshd", seed + 1)
    k = make(batch, seqlen, heads[1], head_dim, dtype, "bshd", seed + 2)
    v = make(batch, seqlen, heads[1], head_dim, dtype, "bshd", seed + 3)
    return q, k, v


def test_opcheck_fwd_and_bwd():
    q, k, v = (t.requires_grad_() for t in inputs())
    options = (True, None, True, "bshd", TUNE, None)  # deterministic: aot's rerun must match bitwise
    torch.library.opcheck(torch.ops.fa2jit.fwd.default, (q, k, v) + options)
    with torch.no_grad():
        out, lse = torch.ops.fa2jit.fwd(q, k, v, *options)
    dout = torch.randn_like(out)
    torch.library.opcheck(torch.ops.fa2jit.bwd.default, (dout, q.detach(), k.detach(), v.detach(), out, lse) + options)


def test_operator_and_direct_path_agree_with_the_autograd_graph():
    q, k, v = (t.requires_grad_() for t in inputs(seqlen=300))
    out = fa2jit.attention(q, k, v, causal=True, tune=TUNE)  # the operator (inputs require grad)
    with torch.no_grad():
        direct = fa2jit.attention(q, k, v, causal=True, tune=TUNE)  # the direct path
        reference, _ = fa2jit.forward(q, k, v, causal=True, tune=TUNE, return_lse=True, out=torch.empty_like(q))
    assert torch.equal(out, direct) and torch.equal(out, reference)
    dout = torch.randn_like(out)
    out.backward(dout)
    dq, dk, dv = fa2jit.backward(dout, q.detach(), k.detach(), v.detach(), out.detach(),
                                 fa2jit.forward(q, k, v, causal=True, tune=TUNE, return_lse=True)[1],
                                 causal=True, tune=TUNE)
    for name, grad, expected in (("dq", q.grad, dq), ("dk", k.grad, dk), ("dv", v.grad, dv)):
        assert relative_error(grad, expected.float()) < 1e-2, name  # atomics: the order of float adds differs


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_compile_fullgraph_matches_eager(dynamic):
    model, twin = block_pair()
    explanation = torch._dynamo.explain(twin)(torch.randn(2, 64, 256, device="cuda", dtype=torch.bfloat16))
    assert explanation.graph_break_count == 0, explanation.break_reasons
    compiled = torch.compile(model, fullgraph=True, dynamic=dynamic)
    for seqlen in (128, 77) if dynamic else (128,):
        x = torch.randn(2, seqlen, 256, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        x_twin = x.detach().clone().requires_grad_()
        out, expected = compiled(x), twin(x_twin)
        assert relative_error(out, expected.float()) < 1e-2  # inductor fuses the rest differently
        grad = torch.randn_like(out)
        out.backward(grad)
        expected.backward(grad)
        assert relative_error(x.grad, x_twin.grad.float()) < 2e-2
        for (name, parameter), twin_parameter in zip(model.named_parameters(), twin.parameters()):
            assert relative_error(parameter.grad, twin_parameter.grad.float()) < 3e-2, name  # bf16 grads
        model.zero_grad(), twin.zero_grad()


def test_compile_reduce_overhead_cuda_graphs():
    """torch.compile's CUDA graphs (mode="reduce-overhead") warm the model up eagerly, then record it."""
    model, twin = block_pair(seed=1)
    compiled = torch.compile(model, mode="reduce-overhead", fullgraph=True)
    x = torch.randn(2, 96, 256, device="cuda", dtype=torch.bfloat16)
    with torch.no_grad():
        expected = twin(x)
        for _ in range(4):  # warm-up, record, replays
            out = compiled(x)
            assert relative_error(out, expected.float()) < 1e-2
            x2 = torch.randn_like(x)
            assert relative_error(compiled(x2), twin(x2).float()) < 1e-2


def capture(function):
    """(graph, output) of `function` captured on a side stream (as torch.cuda.graph does)."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        output = function()
    return graph, output


def test_warmed_up_forward_and_backward_capture_and_replay_bitwise():
    q, k, v = inputs(seqlen=333, seed=10)
    dout = make(2, 333, 8, 128, torch.bfloat16, "bshd", 14)
    options = (True, None, True, "bshd", TUNE, None)  # deterministic backward: bitwise comparable

    def step():
        out, lse = torch.ops.fa2jit.fwd(q, k, v, *options)
        return (out, lse) + tuple(torch.ops.fa2jit.bwd(dout, q, k, v, out, lse, *options))

    step()  # the warm-up resolves both classes
    torch.cuda.synchronize()
    graph, captured = capture(step)
    for seed in (20, 30):  # new contents in the same buffers: the graph reads them, nothing was snapshot
        for tensor, fresh in zip((q, k, v, dout), inputs(seqlen=333, seed=seed) + (torch.randn_like(dout),)):
            tensor.copy_(fresh)
        graph.replay()
        eager = step()
        torch.cuda.synchronize()
        for name, got, want in zip(("out", "lse", "dq", "dk", "dv"), captured, eager):
            assert torch.equal(got, want), name


def test_warmed_up_direct_path_and_kvcache_decode_capture_and_replay_bitwise():
    q, k, v = inputs(seqlen=64, seed=40)
    batch, seqlen_k, heads_q, heads_kv, head_dim = 2, 4133, 32, 8, 128
    decode_q = make(batch, 1, heads_q, head_dim, torch.float16, "bshd", 41)
    k_cache = make(batch, seqlen_k, heads_kv, head_dim, torch.float16, "bshd", 42)
    v_cache = make(batch, seqlen_k, heads_kv, head_dim, torch.float16, "bshd", 43)
    lens = torch.tensor([4133, 1000], dtype=torch.int32, device="cuda")

    def step():
        with torch.no_grad():
            prefill = fa2jit.attention(q, k, v, causal=True, tune=TUNE)
        # num_splits 4: the split partials take stream-ordered scratch from the driver, a graph memory node
        decode = fa2jit.forward_with_kvcache(decode_q, k_cache, v_cache, cache_seqlens=lens, causal=True,
                                             num_splits=4, tune=TUNE)
        return prefill, decode

    step()
    torch.cuda.synchronize()
    graph, captured = capture(step)
    for seed in (50, 60):
        q.copy_(make(2, 64, 8, 128, torch.bfloat16, "bshd", seed))
        decode_q.copy_(make(batch, 1, heads_q, head_dim, torch.float16, "bshd", seed + 1))
        lens.copy_(torch.tensor([seed * 10, 4133], dtype=torch.int32))
        graph.replay()
        eager = step()
        torch.cuda.synchronize()
        assert torch.equal(captured[0], eager[0]) and torch.equal(captured[1], eager[1])


def test_capture_of_an_unresolved_class_fails_cleanly(tmp_path):
    """A class first met inside a capture: Fa2Error before anything is done (no tuning, no compile, no module
    load), naming the class and the warm-up; the capture ends without error (it was never invalidated), what
    it recorded before the call replays, and the stream then runs eager calls and captures warmed-up ones."""
    cache = str(tmp_path / "never-filled.db")  # a cache path no call has used: its classes are all unresolved
    q, k, v = inputs(seqlen=96, heads=(6, 2), head_dim=64, seed=70)
    calls = {
        "direct path": lambda: fa2jit.attention(q, k, v, causal=True, tune="cache-only", cache_path=cache),
        "operator": lambda: fa2jit.attention(q.clone().requires_grad_(), k, v, causal=True, tune="cache-only",
                                             cache_path=cache),
        "kvcache": lambda: fa2jit.forward_with_kvcache(q[:, :1], k, v, causal=True, tune="on-first-use",
                                                       cache_path=cache),
    }
    for name, call in calls.items():
        graph = torch.cuda.CUDAGraph()
        with pytest.raises(fa2jit.Fa2Error) as caught:
            with torch.cuda.graph(graph):
                doubled = q * 2  # recorded before the refused call
                call()
        message = str(caught.value)
        assert caught.value.status == fa2jit.ERROR_LAUNCH, (name, message)
        assert "capturing a CUDA graph" in message and "one eager call with the same shapes" in message, message
        if " bshd " in message:  # fa2-tune tune fills bshd classes only: other layouts get the warm-up advice
            assert "fa2-tune tune" in message and cache in message, message
        else:
            assert "fa2-tune tune" not in message, message
        assert "gqa3" in message and "d64" in message, message  # the class it could not resolve
        doubled.zero_()
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(doubled, q * 2), name
        del graph
    assert not tmp_path.joinpath("never-filled.db").exists()  # nothing was tuned or stored
    # The stream is usable: eager calls run, and a warmed-up class captures and replays.
    expected = fa2jit.attention(q, k, v, causal=True, tune=TUNE)
    graph, captured = capture(lambda: fa2jit.attention(q, k, v, causal=True, tune=TUNE))
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(captured, expected)
    reference = F.scaled_dot_product_attention(q.transpose(1, 2).float(), k.transpose(1, 2).float(),
                                               v.transpose(1, 2).float(), is_causal=True, enable_gqa=True)
    assert relative_error(captured.transpose(1, 2), reference) < 6e-3
