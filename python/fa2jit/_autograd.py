"""fa2jit.attention: the forward as a differentiable torch operation.

Three ways through, one result:
  - while torch.compile traces, and whenever a gradient may be needed: the torch operator fa2jit::fwd
    (_torch_ops.py), whose autograd formula, registered with torch.library, runs fa2jit::bwd on the saved
    q, k, v, O and LSE; the compiled graph holds the operator, so nothing breaks the graph;
  - plain eager inference (no input requires grad, or grad mode off): the direct path (_fast.py), which
    skips the operator's dispatch, a few microseconds per call that a tiny attention would notice.
torch is imported only when attention() is called, so the package still imports without it.
"""

from . import _args, _fast, _tensors
from ._tensors import argument_error

_MAX_ROW_STRIDE = (1 << 31) // 256  # the library's limit: 256 rows at 32-bit offsets
_ops = None  # the _torch_ops module, imported (and the operators registered) on first use


def _readable(dout, layout, torch):
    """dO as the kernels can read it. Autograd hands over whatever the consumer of O produced (an
    expanded zero-stride tensor for out.sum(), a transposed view, ...); a copy with the standard strides of
    its shape is made only when the library's stride rules would reject it."""
    strides = _args.layout_strides(dout.stride(), layout)
    head_dim = dout.shape[-1]
    readable = (dout.stride(-1) == 1 and all(s >= 0 and s % 8 == 0 for s in strides)
                and head_dim <= strides[2] <= _MAX_ROW_STRIDE and dout.data_ptr() % 16 == 0)
    if readable:
        return dout
    # torch.empty, not .contiguous(): the latter keeps odd strides on dimensions of extent 1.
    return torch.empty(dout.shape, dtype=dout.dtype, device=dout.device).copy_(dout)


def torch_ops():
    """The _torch_ops module (importing it registers torch.ops.fa2jit.*)."""
    global _ops
    if _ops is None:
        from . import _torch_ops
        _ops = _torch_ops
    return _ops


def _autocast_dtype(torch):
    """The CUDA autocast dtype when autocast is on, else None."""
    try:
        if torch.is_autocast_enabled("cuda"):
            return torch.get_autocast_dtype("cuda")
    except TypeError:  # torch before 2.4 takes no device type
        if torch.is_autocast_enabled():
            return torch.get_autocast_gpu_dtype()
    return None


def attention(q, k, v, *, causal=False, softmax_scale=None, deterministic=False, layout="bshd", tune=None,
              cache_path=None, window=None, softcap=0.0, alibi_slopes=None):
    """softmax(q k^T * softmax_scale) v as a differentiable torch operation: fa2jit's forward, and
    fa2jit's backward when the result is differentiated (torch.autograd, loss.backward()).

    Arguments as fa2jit.forward (torch tensors only; window, softcap and alibi_slopes too); deterministic makes the gradients bitwise
    reproducible. Inputs that do not require grad get no gradient. Under torch.autocast, float32
    inputs are cast to the autocast dtype first, as torch's scaled_dot_product_attention does.
    torch.compile traces it as the operator torch.ops.fa2jit.fwd (no graph break); in a CUDA graph
    capture it is recorded like any kernel once its problem class is resolved (one eager call before the
    capture; a class first met during a capture raises Fa2Error saying so).
    """
    torch = _tensors.import_torch()
    if torch is None:
        raise argument_error("fa2jit.attention needs torch (it records an autograd graph), which cannot be "
                             "imported; without torch use fa2jit.forward and fa2jit.backward")
    Tensor = torch.Tensor
    if not (isinstance(q, Tensor) and isinstance(k, Tensor) and isinstance(v, Tensor)):
        name, tensor = next((n, t) for n, t in (("q", q), ("k", k), ("v", v)) if not isinstance(t, Tensor))
        raise argument_error(f"{name} is a {type(tensor).__name__}; fa2jit.attention takes torch tensors "
                             "(fa2jit.forward also takes other arrays)")
    autocast = _autocast_dtype(torch)
    if autocast is not None:
        q, k, v = (t.to(autocast) if t.dtype == torch.float32 else t for t in (q, k, v))
    causal, deterministic = bool(causal), bool(deterministic)
    variant = _args.variant_of(window, softcap, alibi_slopes)
    if alibi_slopes is not None and not isinstance(alibi_slopes, Tensor):
        raise argument_error(f"alibi_slopes is a {type(alibi_slopes).__name__}; fa2jit.attention takes a float32 "
                             "torch tensor")
    if torch.compiler.is_compiling() or (torch.is_grad_enabled() and (q.requires_grad or k.requires_grad
                                                                        or v.requires_grad)):
        return torch_ops().attention(q, k, v, causal, softmax_scale, deterministic, layout, tune, cache_path, variant)
    return _fast.forward(q, k, v, causal, softmax_scale, layout, tune, cache_path, False, variant)[0]
