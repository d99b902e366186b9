"""fa2jit.attention: the forward as a differentiable torch operation.

Its autograd function runs fa2_forward with the LSE, saves q, k, v, O and LSE, and runs fa2_backward
when the graph is differentiated. torch is imported only when attention() is called, so the package
still imports without it.
"""

from . import _args, _tensors
from ._backward import backward
from ._forward import forward
from ._tensors import argument_error

_MAX_ROW_STRIDE = (1 << 31) // 256  # the library's limit: 256 rows at 32-bit offsets
_function = None  # the torch.autograd.Function subclass, made on first use


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


def _make_function(torch):
    from torch.autograd.function import once_differentiable

    class Attention(torch.autograd.Function):
        """O = softmax(q k^T * scale) v through fa2jit; options is a dict of the keyword arguments."""

        @staticmethod
        def forward(ctx, q, k, v, options):
            out, lse = forward(q, k, v, return_lse=True, causal=options["causal"],
                               softmax_scale=options["softmax_scale"], layout=options["layout"],
                               tune=options["tune"], cache_path=options["cache_path"])
            ctx.save_for_backward(q, k, v, out, lse)
            ctx.options = options
            return out

        @staticmethod
        @once_differentiable
        def backward(ctx, dout):
            q, k, v, out, lse = ctx.saved_tensors
            if dout.dtype != out.dtype:
                dout = dout.to(out.dtype)
            dout = _readable(dout, ctx.options["layout"], torch)
            # One kernel computes all three gradients, so they are computed even when some input does
            # not require grad; autograd is handed None for those.
            grads = backward(dout, q, k, v, out, lse, **ctx.options)
            return tuple(grad if needed else None for grad, needed in zip(grads, ctx.needs_input_grad)) + (None,)

    return Attention


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
              cache_path=None):
    """softmax(q k^T * softmax_scale) v as a differentiable torch operation: fa2jit's forward, and
    fa2jit's backward when the result is differentiated (torch.autograd, loss.backward()).

    Arguments as fa2jit.forward (torch tensors only); deterministic makes the gradients bitwise
    reproducible. Inputs that do not require grad get no gradient. Under torch.autocast, float32
    inputs are cast to the autocast dtype first, as torch's scaled_dot_product_attention does. When no
    gradient can be needed (no input requires grad, or grad mode is off) this is fa2jit.forward.
    """
    torch = _tensors.import_torch()
    if torch is None:
        raise argument_error("fa2jit.attention needs torch (it records an autograd graph), which cannot be "
                             "imported; without torch use fa2jit.forward and fa2jit.backward")
    for name, tensor in (("q", q), ("k", k), ("v", v)):
        if not isinstance(tensor, torch.Tensor):
            raise argument_error(f"{name} is a {type(tensor).__name__}; fa2jit.attention takes torch tensors "
                                 "(fa2jit.forward also takes other arrays)")
    autocast = _autocast_dtype(torch)
    if autocast is not None:
        q, k, v = (t.to(autocast) if t.dtype == torch.float32 else t for t in (q, k, v))
    options = dict(causal=bool(causal), softmax_scale=softmax_scale, deterministic=bool(deterministic),
                   layout=layout, tune=tune, cache_path=cache_path)
    if not (torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))):
        return forward(q, k, v, causal=options["causal"], softmax_scale=softmax_scale, layout=layout, tune=tune,
                       cache_path=cache_path)
    global _function
    if _function is None:
        _function = _make_function(torch)
    return _function.apply(q, k, v, options)
