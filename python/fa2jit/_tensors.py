"""A uniform view (pointer, shape, element strides, dtype, device) of the tensors fa2jit accepts:
torch tensors, objects with __cuda_array_interface__ (fp16 only: bf16 has no typestr) and, when
torch is importable, anything torch.from_dlpack takes."""

import collections
import sys

from ._lib import ERROR_ARGUMENT, Fa2Error

FP16 = 0  # FA2_DTYPE_FP16
BF16 = 1  # FA2_DTYPE_BF16
DTYPE_NAMES = {FP16: "float16", BF16: "bfloat16"}

# device: a torch.device, or None for a __cuda_array_interface__ object (which does not say).
View = collections.namedtuple("View", "ptr shape strides dtype device tensor")


def import_torch():
    """torch if it can be imported, else None; fa2jit never needs it to import."""
    if "torch" in sys.modules:
        return sys.modules["torch"]
    try:
        import torch
    except ImportError:
        return None
    return torch


def argument_error(message):
    return Fa2Error(message, ERROR_ARGUMENT)


def _torch_view(name, tensor, torch):
    dtype = {torch.float16: FP16, torch.bfloat16: BF16}.get(tensor.dtype)
    if dtype is None:
        raise argument_error(f"{name} has dtype {tensor.dtype}; fa2jit takes torch.float16 or torch.bfloat16")
    if tensor.device.type != "cuda":
        raise argument_error(f"{name} is on device '{tensor.device}'; fa2jit needs CUDA tensors")
    return View(tensor.data_ptr(), tuple(tensor.shape), tuple(tensor.stride()), dtype, tensor.device, tensor)


def _cai_view(name, obj, writable):
    cai = obj.__cuda_array_interface__
    typestr = cai.get("typestr")
    if typestr != "<f2":
        raise argument_error(
            f"{name} has __cuda_array_interface__ typestr {typestr!r}; fa2jit takes '<f2' (float16) there. "
            "For bfloat16 pass a torch tensor or an object with __dlpack__ (needs torch installed)")
    if cai.get("mask") is not None:
        raise argument_error(f"{name} has a __cuda_array_interface__ mask; fa2jit takes unmasked arrays")
    ptr, readonly = cai["data"]
    if writable and readonly:
        raise argument_error(f"{name} is read-only (__cuda_array_interface__ data[1] is True)")
    shape = tuple(int(extent) for extent in cai["shape"])
    if cai.get("strides") is None:  # C-contiguous
        strides, step = [], 1
        for extent in reversed(shape):
            strides.insert(0, step)
            step *= extent
    else:
        byte_strides = tuple(int(stride) for stride in cai["strides"])
        if any(stride % 2 for stride in byte_strides):
            raise argument_error(f"{name} has byte strides {byte_strides}, not whole float16 elements")
        strides = [stride // 2 for stride in byte_strides]
    return View(int(ptr or 0), shape, tuple(strides), FP16, None, None)


def view(name, obj, writable=False):
    """The View of `obj`, or Fa2Error(ERROR_ARGUMENT) saying why it cannot be used."""
    torch = import_torch()
    if torch is not None and isinstance(obj, torch.Tensor):
        return _torch_view(name, obj, torch)
    cai = getattr(obj, "__cuda_array_interface__", None)
    if cai is not None and cai.get("typestr") == "<f2":
        return _cai_view(name, obj, writable)
    if hasattr(obj, "__dlpack__") and torch is not None:
        return _torch_view(name, torch.from_dlpack(obj), torch)
    if cai is not None:
        return _cai_view(name, obj, writable)  # raises, naming the typestr
    raise argument_error(
        f"{name} is a {type(obj).__name__}; fa2jit takes torch tensors, objects with __cuda_array_interface__ "
        "(float16) or, with torch installed, objects with __dlpack__")
