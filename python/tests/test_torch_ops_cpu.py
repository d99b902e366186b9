"""The torch operators (torch.ops.fa2jit.*) and the eager direct path, without a GPU: schemas, fake
implementations, torch.compile(fullgraph=True) tracing forward and backward through the operators, and
the direct path's per-shape cache of filled structs. Skips without torch.

The compile tests run on CPU: a CPU kernel computing attention in float64 (a reference, not fa2jit) is
registered for fwd and bwd here, so that the graphs torch.compile traces through fa2jit.attention can be
run and compared with an eager SDPA model, and the backward graph is the registered autograd formula's."""

import math
import os
import sys

import pytest

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, PYTHON_DIR)

import fa2jit  # noqa: E402

torch = pytest.importorskip("torch", reason="torch is not installed: the operator tests are skipped")
from torch._subclasses.fake_tensor import FakeTensorMode  # noqa: E402

from fa2jit import _autograd, _fast, _lib, _tensors  # noqa: E402

_autograd.torch_ops()  # registers torch.ops.fa2jit.*
F = torch.nn.functional


def _probabilities(q, k, causal, scale, layout):
    """(q, k, P, scale) in float64 [B, H, S, D] with k's heads repeated for GQA; causal bottom-right."""
    q, k = ((t.transpose(1, 2) if layout == "bshd" else t).double() for t in (q, k))
    k = k.repeat_interleave(q.shape[1] // k.shape[1], 1)
    scale = scale or 1 / math.sqrt(q.shape[-1])
    scores = (q @ k.transpose(-1, -2)) * scale
    if causal:
        seqlen_q, seqlen_k = scores.shape[-2:]
        scores = scores.masked_fill(~torch.ones(seqlen_q, seqlen_k, dtype=torch.bool).tril(seqlen_k - seqlen_q),
                                    -math.inf)
    return q, k, scores, scale


def reference(q, k, v, causal, scale, layout):
    """(O, LSE) in float64 math, O in q's dtype and layout."""
    _, _, scores, _ = _probabilities(q, k, causal, scale, layout)
    vb = (v.transpose(1, 2) if layout == "bshd" else v).double()
    out = (torch.softmax(scores, -1) @ vb.repeat_interleave(scores.shape[1] // vb.shape[1], 1)).to(q.dtype)
    return (out.transpose(1, 2) if layout == "bshd" else out), torch.logsumexp(scores, -1).float()


def reference_backward(dout, q, k, v, causal, scale, layout):
    """dQ, dK, dV by the textbook formulas (no autograd: the kernel runs under opcheck's dispatch modes)."""
    def bhsd(t):
        return (t.transpose(1, 2) if layout == "bshd" else t).double()

    qb, kb, scores, scale = _probabilities(q, k, causal, scale, layout)
    group = qb.shape[1] // k.shape[2 if layout == "bshd" else 1]
    vb, dob = bhsd(v).repeat_interleave(group, 1), bhsd(dout)
    probs = torch.softmax(scores, -1)
    out = probs @ vb
    dscores = probs * (dob @ vb.transpose(-1, -2) - (dob * out).sum(-1, keepdim=True))

    def fold(grad):  # the query heads of each KV head summed
        return grad.unflatten(1, (grad.shape[1] // group, group)).sum(2)

    grads = ((dscores @ kb) * scale, fold(dscores.transpose(-1, -2) @ qb) * scale, fold(probs.transpose(-1, -2) @ dob))
    return tuple(g.transpose(1, 2) if layout == "bshd" else g for g in grads)


NO_VARIANT = (-1, -1, 0.0, None)  # window_left, window_right, softcap, alibi_slopes: the schema's defaults


def _cpu_fwd(q, k, v, causal, softmax_scale, deterministic, layout, tune, cache_path, *variant):
    assert variant == NO_VARIANT, "the CPU stand-in knows no variants"
    out, lse = reference(q, k, v, causal, softmax_scale, layout)
    return torch.empty_like(q).copy_(out), lse


def _cpu_bwd(dout, q, k, v, out, lse, causal, softmax_scale, deterministic, layout, tune, cache_path, *variant):
    assert variant == NO_VARIANT, "the CPU stand-in knows no variants"
    grads = reference_backward(dout, q, k, v, causal, softmax_scale, layout)
    return tuple(torch.empty_like(t).copy_(g) for t, g in zip((q, k, v), grads))


torch.library.impl("fa2jit::fwd", "CPU")(_cpu_fwd)
torch.library.impl("fa2jit::bwd", "CPU")(_cpu_bwd)


class Block(torch.nn.Module):
    """A causal GQA self-attention block through fa2jit.attention (or SDPA, for the reference)."""

    def __init__(self, use_fa2jit, dim=64, heads=4, heads_kv=2):
        super().__init__()
        self.use_fa2jit, self.heads, self.heads_kv = use_fa2jit, heads, heads_kv
        self.head_dim = dim // heads
        self.qkv = torch.nn.Linear(dim, (heads + 2 * heads_kv) * self.head_dim)
        self.proj = torch.nn.Linear(dim, dim)

    def forward(self, x):
        batch, seqlen, _ = x.shape
        qkv = self.qkv(x).view(batch, seqlen, self.heads + 2 * self.heads_kv, self.head_dim)
        q, k, v = qkv.split([self.heads, self.heads_kv, self.heads_kv], dim=2)
        if self.use_fa2jit:
            out = fa2jit.attention(q, k, v, causal=True)
        else:
            out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                 is_causal=True, enable_gqa=True).transpose(1, 2)
        return self.proj(out.reshape(batch, seqlen, -1))


def recording_backend(graphs):
    """aot_autograd with compilers that keep the forward and backward graphs and run them as they are."""
    from torch._dynamo.backends.common import aot_autograd
    from torch._functorch.aot_autograd import make_boxed_func

    def keep(name):
        def compiler(graph_module, example_inputs):
            graphs[name] = graph_module
            return make_boxed_func(graph_module.forward)
        return compiler

    return aot_autograd(fw_compiler=keep("forward"), bw_compiler=keep("backward"))


def targets(graph_module):
    return {node.target for node in graph_module.graph.nodes if node.op == "call_function"}


def test_schemas():
    fwd = torch.ops.fa2jit.fwd.default._schema
    variants = ["window_left", "window_right", "softcap", "alibi_slopes"]  # last, defaulted: older callers still work
    assert [a.name for a in fwd.arguments] == ["q", "k", "v", "causal", "softmax_scale", "deterministic", "layout",
                                               "tune", "cache_path"] + variants
    assert [a.name for a in torch.ops.fa2jit.bwd.default._schema.arguments][-4:] == variants
    assert [a.default_value for a in fwd.arguments[-4:]] == [-1, -1, 0.0, None]
    def mutated(op):
        return [a.name for a in op.default._schema.arguments if a.alias_info is not None and a.alias_info.is_write]
    assert mutated(torch.ops.fa2jit.kvcache_fwd) == []  # a plain decode step: the caches are never copied
    assert mutated(torch.ops.fa2jit.kvcache_append_fwd) == ["k_cache", "v_cache"]  # functionalization must know
    for op in (torch.ops.fa2jit.fwd, torch.ops.fa2jit.bwd, torch.ops.fa2jit.varlen_fwd):
        assert not any(a.alias_info is not None for a in op.default._schema.arguments)


@pytest.mark.parametrize("layout", ["bshd", "bhsd"])
def test_opcheck_on_cpu_reference_kernels(layout):
    """Schema, fake against real, autograd registration and aot_autograd with dynamic shapes."""
    shape = (2, 24, 4, 16) if layout == "bshd" else (2, 4, 24, 16)
    kv_shape = (2, 24, 2, 16) if layout == "bshd" else (2, 2, 24, 16)
    q = torch.randn(shape, requires_grad=True)
    k, v = torch.randn(kv_shape, requires_grad=True), torch.randn(kv_shape, requires_grad=True)
    options = (True, None, True, layout, "heuristic", None)
    torch.library.opcheck(torch.ops.fa2jit.fwd.default, (q, k, v) + options)
    with torch.no_grad():
        out, lse = torch.ops.fa2jit.fwd(q, k, v, *options)
    torch.library.opcheck(torch.ops.fa2jit.bwd.default,
                          (torch.randn_like(out), q.detach(), k.detach(), v.detach(), out, lse) + options)


@pytest.mark.parametrize("layout", ["bshd", "bhsd"])
def test_fake_outputs_match_what_the_kernels_allocate(layout):
    with FakeTensorMode():
        packed = torch.empty(2, 33, 4 + 2 * 2, 64, dtype=torch.bfloat16, device="cuda")
        q, k, v = packed.split([4, 2, 2], dim=2)  # non-contiguous views, as a fused QKV gives them
        if layout == "bhsd":
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        out, lse = torch.ops.fa2jit.fwd(q, k, v, True, None, False, layout, None, None)
        assert out.shape == q.shape and out.dtype == q.dtype and out.device == q.device
        assert out.stride() == torch.empty_like(q).stride()
        assert lse.shape == (2, 4, 33) and lse.dtype == torch.float32 and lse.is_contiguous()
        dq, dk, dv = torch.ops.fa2jit.bwd(out, q, k, v, out, lse, True, None, False, layout, "heuristic", None)
        assert (dq.shape, dk.shape, dv.shape) == (q.shape, k.shape, v.shape)
        assert dk.stride() == torch.empty_like(k).stride()


def test_fake_kvcache_and_varlen():
    with FakeTensorMode():
        q = torch.empty(3, 1, 8, 128, dtype=torch.float16, device="cuda")
        cache = torch.empty(3, 256, 2, 128, dtype=torch.float16, device="cuda")
        lens = torch.empty(3, dtype=torch.int32, device="cuda")
        out, lse = torch.ops.fa2jit.kvcache_fwd(q, cache, cache.clone(), lens, None, True, None, 0, True, None, None)
        assert out.shape == q.shape and lse.shape == (3, 8, 1) and lse.dtype == torch.float32
        _, no_lse = torch.ops.fa2jit.kvcache_fwd(q, cache, cache.clone(), lens, None, True, None, 0, False, None, None)
        assert no_lse.numel() == 0
        new = torch.empty(3, 1, 2, 128, dtype=torch.float16, device="cuda")
        out, lse = torch.ops.fa2jit.kvcache_append_fwd(q, cache, cache.clone(), lens, None, new, new, True, None, 0,
                                                       True, None, None)
        assert out.shape == q.shape and lse.shape == (3, 8, 1)
        packed_q = torch.empty(50, 8, 64, dtype=torch.bfloat16, device="cuda")
        packed_kv = torch.empty(70, 2, 64, dtype=torch.bfloat16, device="cuda")
        cu = torch.empty(4, dtype=torch.int32, device="cuda")
        out, lse = torch.ops.fa2jit.varlen_fwd(packed_q, packed_kv, packed_kv, cu, cu, 30, 40, True, None, 0, True,
                                               None, None)
        assert out.shape == packed_q.shape and lse.shape == (8, 50)


def test_compile_fullgraph_traces_forward_and_backward_through_the_operators():
    torch.manual_seed(0)
    model, reference_model = Block(True), Block(False)
    reference_model.load_state_dict(model.state_dict())
    graphs = {}
    compiled = torch.compile(model, fullgraph=True, backend=recording_backend(graphs))
    x = torch.randn(2, 24, 64)
    out = compiled(x)
    expected = reference_model(x)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert torch.ops.fa2jit.fwd.default in targets(graphs["forward"])
    grad = torch.randn_like(out)
    out.backward(grad)
    expected.backward(grad)
    assert torch.ops.fa2jit.bwd.default in targets(graphs["backward"])
    for (name, parameter), reference_parameter in zip(model.named_parameters(), reference_model.parameters()):
        torch.testing.assert_close(parameter.grad, reference_parameter.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_eager_gradient_goes_through_the_operator():
    torch.manual_seed(2)
    model, reference_model = Block(True), Block(False)
    reference_model.load_state_dict(model.state_dict())
    x = torch.randn(2, 19, 64)
    out, expected = model(x), reference_model(x)
    out.sum().backward()  # dO is an expanded zero-stride tensor: copied where the kernels could not read it
    expected.sum().backward()
    for (name, parameter), reference_parameter in zip(model.named_parameters(), reference_model.parameters()):
        torch.testing.assert_close(parameter.grad, reference_parameter.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_a_double_backward_and_gradients_through_kvcache_are_refused_not_zero():
    torch.manual_seed(3)
    q, k, v = (torch.randn(1, 9, 2, 64, dtype=torch.float64, requires_grad=True) for _ in range(3))
    out = fa2jit.attention(q, k, v, causal=True)
    (dq,) = torch.autograd.grad(out.square().sum(), q, create_graph=True)  # a gradient penalty's first step
    with pytest.raises(fa2jit.Fa2Error, match="double backward"):
        dq.square().sum().backward()
    cache = torch.randn(1, 16, 2, 64, requires_grad=True)
    with pytest.raises(fa2jit.Fa2Error, match="forward_with_kvcache has no backward"):
        fa2jit._torch_ops.kvcache(q.detach()[:, :1].float(), cache, cache, None, None, None, None, True, None, 0,
                                  False)


def test_compile_dynamic_shapes_and_no_graph_break():
    torch.manual_seed(1)
    model, reference_model = Block(True), Block(False)
    reference_model.load_state_dict(model.state_dict())
    explanation = torch._dynamo.explain(model)(torch.randn(1, 16, 64))
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
    compiled = torch.compile(model, fullgraph=True, dynamic=True, backend="aot_eager")
    with torch.no_grad():
        for seqlen in (16, 37, 5):
            x = torch.randn(2, seqlen, 64)
            torch.testing.assert_close(compiled(x), reference_model(x), rtol=1e-5, atol=1e-5)


def test_flash_attn_names_trace_to_the_operators():
    """flash_attn_func / with_kvcache / varlen_func under torch.compile become the operators, not Python calls
    (traced and run on meta tensors: the fake implementations serve the meta device too)."""
    seen = set()

    def graph_only(graph_module, example_inputs):
        seen.update(str(target) for target in targets(graph_module))
        return graph_module.forward

    def calls(q, k, v, cache, lens, cu):
        a = fa2jit.flash_attn_func(q, k, v, causal=True)
        b = fa2jit.flash_attn_with_kvcache(q[:, :1], cache, cache, cache_seqlens=lens, causal=True)
        c = fa2jit.flash_attn_varlen_func(q.flatten(0, 1), k.flatten(0, 1), v.flatten(0, 1), cu, cu, 8, 8)
        return a, b, c

    q = torch.empty(2, 8, 4, 64, dtype=torch.bfloat16, device="meta")
    cache = torch.empty(2, 32, 4, 64, dtype=torch.bfloat16, device="meta")
    lens = torch.empty(2, dtype=torch.int32, device="meta")
    cu = torch.empty(3, dtype=torch.int32, device="meta")
    with torch.no_grad():
        a, b, c = torch.compile(calls, fullgraph=True, backend=graph_only)(q, q.clone(), q.clone(), cache, lens, cu)
    assert {"fa2jit.fwd", "fa2jit.kvcache_fwd", "fa2jit.varlen_fwd"} <= seen, seen
    assert (a.shape, b.shape, c.shape) == (q.shape, (2, 1, 4, 64), (16, 4, 64))


class RecordingLibrary:
    """The library's fa2_forward, recording the struct each call passes (no GPU, nothing launched)."""

    def __init__(self):
        self.calls = []

    def fa2_forward(self, pointer, stream):
        args = pointer.contents
        self.calls.append({name: getattr(args, name) for name, _ in type(args)._fields_ if name != "cache_path"})
        return 0


def test_direct_path_keeps_one_struct_per_shape_and_never_a_stale_one(monkeypatch):
    """Shapes, strides and flags that differ get their own filled struct; pointers are each call's own."""
    recorder = RecordingLibrary()
    monkeypatch.setattr(_fast, "_functions", (recorder.fa2_forward, None, None))
    monkeypatch.setattr(_fast, "_call", lambda function, pointer, index, torch_module: function(pointer, 0))
    monkeypatch.setattr(_tensors, "check_cuda", lambda name, tensor: None)  # CPU tensors stand in for CUDA ones
    monkeypatch.setattr(_fast, "_local", type(_fast._local)())

    def tensors(seqlen, heads_kv=2, transposed=False):
        shape = (1, 4, seqlen, 64) if transposed else (1, seqlen, 4, 64)
        q = torch.randn(shape, dtype=torch.bfloat16)
        kv_shape = (1, heads_kv, seqlen, 64) if transposed else (1, seqlen, heads_kv, 64)
        k, v = torch.randn(kv_shape, dtype=torch.bfloat16), torch.randn(kv_shape, dtype=torch.bfloat16)
        if transposed:  # bshd memory viewed as [B, H, S, D], or the converse
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        return q, k, v

    cases = [(tensors(16), True), (tensors(48), True), (tensors(16), False), (tensors(16, 4), True),
             (tensors(16, transposed=True), True), (tensors(16), True)]
    for (q, k, v), causal in cases:
        out = fa2jit.attention(q, k, v, causal=causal)
        call = recorder.calls[-1]
        assert (call["q"], call["k"], call["v"], call["o"]) == (q.data_ptr(), k.data_ptr(), v.data_ptr(),
                                                                out.data_ptr())
        assert (call["seqlen_q"], call["seqlen_k"], call["heads_kv"], call["causal"]) == (q.shape[1], k.shape[1],
                                                                                         k.shape[2], int(causal))
        assert (call["q_batch_stride"], call["q_row_stride"], call["q_head_stride"]) == q.stride()[:3]
        assert (call["o_batch_stride"], call["o_row_stride"], call["o_head_stride"]) == out.stride()[:3]
        assert call["k_head_stride"] == k.stride(2) and call["lse"] is None
    assert len(_fast._local.forwards) == 5  # the last case reused the first one's struct
    _, lse = fa2jit.forward(*tensors(16), causal=True, return_lse=True)
    assert recorder.calls[-1]["lse"] == lse.data_ptr() and lse.shape == (1, 4, 16)


def test_direct_path_checks_before_caching(monkeypatch):
    monkeypatch.setattr(_fast, "_local", type(_fast._local)())
    q = torch.zeros(1, 16, 4, 64, dtype=torch.float16)
    with pytest.raises(fa2jit.Fa2Error, match="needs CUDA tensors"):
        fa2jit.attention(q, q, q)
    with pytest.raises(fa2jit.Fa2Error, match="layout='sbhd'"):
        fa2jit.forward(q, q, q, layout="sbhd")
    assert not getattr(_fast._local, "forwards", {})


def test_status_is_raised_with_the_library_message(monkeypatch):
    class Failing:
        def fa2_last_error(self):
            return b"fa2jit: the kernel of 'x' is not resolved ... capturing a CUDA graph"

    monkeypatch.setattr(_fast, "_functions", (lambda pointer, stream: _lib.ERROR_LAUNCH, None, Failing()))
    monkeypatch.setattr(_fast, "_call", lambda function, pointer, index, torch_module: function(pointer, 0))
    monkeypatch.setattr(_tensors, "check_cuda", lambda name, tensor: None)
    q = torch.zeros(1, 16, 4, 64, dtype=torch.float16)
    with pytest.raises(fa2jit.Fa2Error, match="capturing a CUDA graph") as caught:
        fa2jit.attention(q, q, q)
    assert caught.value.status == fa2jit.ERROR_LAUNCH
