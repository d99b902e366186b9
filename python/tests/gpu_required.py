"""The precondition of every *_gpu.py test module: torch with a CUDA GPU and a loadable libfa2jit.so.
Call at import time; it skips the whole module, saying which is missing, elsewhere."""

import pytest

import fa2jit


def torch_on_gpu():
    """torch, once torch is importable, sees a CUDA GPU and fa2jit's library loads; else a module-level skip."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA GPU", allow_module_level=True)
    try:
        fa2jit.library_version()
    except fa2jit.Fa2Error as error:
        pytest.skip(f"libfa2jit.so cannot be loaded: {error}", allow_module_level=True)
    return torch
