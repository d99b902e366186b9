"""fa2jit: FlashAttention-2 forward and backward with kernels generated and compiled for this GPU at run time.

    o = fa2jit.attention(q, k, v, causal=True)        # q [B, Sq, Hq, D], k/v [B, Sk, Hkv, D]; differentiable
    o.backward(do)                                    # q.grad, k.grad, v.grad through fa2jit's backward

    o, lse = fa2jit.forward(q, k, v, causal=True, return_lse=True)     # the passes on their own,
    dq, dk, dv = fa2jit.backward(do, q, k, v, o, lse, causal=True)    # without an autograd graph

    o = fa2jit.forward_with_kvcache(q, k_cache, v_cache, cache_seqlens=lens, block_table=pages)  # decode
    o = fa2jit.varlen_forward(q, k, v, cu_q, cu_k, max_q, max_k, causal=True)  # packed [total, H, D] batches

    from fa2jit import flash_attn_func, flash_attn_varlen_func, flash_attn_with_kvcache  # flash-attn's names

    torch.compile(model, fullgraph=True)             # fa2jit.attention is traced as torch.ops.fa2jit.fwd
    import fa2jit.integrations.transformers; fa2jit.integrations.transformers.register()  # attn_implementation="fa2jit"

Importing never needs the library, a GPU or torch; a call that needs them raises Fa2Error saying what
is missing.
"""

from ._lib import (ERROR_ARGUMENT, ERROR_CACHE, ERROR_CODEGEN, ERROR_COMPILE, ERROR_CONFIG, ERROR_DRIVER,
                   ERROR_INTERNAL, ERROR_LAUNCH, ERROR_TUNE, OK, Fa2Error, candidate_paths)
from . import _args, _lib
from ._autograd import attention
from ._backward import backward, backward_config_name
from ._flash_attn import flash_attn_func, flash_attn_varlen_func, flash_attn_with_kvcache
from ._forward import config_name, forward
from ._kvcache import forward_with_kvcache
from ._varlen import varlen_forward

__version__ = "0.1.0"

__all__ = ["attention", "forward", "backward", "forward_with_kvcache", "varlen_forward", "config_name", "backward_config_name", "library_version",
           "flash_attn_func", "flash_attn_varlen_func", "flash_attn_with_kvcache",
           "Fa2Error", "LAYOUTS", "TUNE_POLICIES"] + [
    "OK", "ERROR_ARGUMENT", "ERROR_CONFIG", "ERROR_COMPILE", "ERROR_DRIVER", "ERROR_LAUNCH", "ERROR_CACHE",
    "ERROR_TUNE", "ERROR_CODEGEN", "ERROR_INTERNAL", "candidate_paths"]

LAYOUTS = _args.LAYOUTS
TUNE_POLICIES = _args.TUNE_POLICIES


def library_version():
    """The loaded library's version string; raises Fa2Error when it cannot be loaded."""
    lib, _ = _lib.library()
    return lib.fa2_version().decode()
