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


def check_cuda(name, tensor):
    if tensor.device.type != "cuda":
        raise argument_error(f"{name} is on device '{tensor.device}'; fa2jit needs CUDA tensors")


def _torch_view(name, tensor, torch):
    dtype = {torch.float16: FP16, torch.bfloat16: BF16}.get(tensor.dtype)
    if dtype is None:
        raise argument_error(f"{name} has dtype {tensor.dtype}; fa2jit takes torch.float16 or torch.bfloat16")
    check_cuda(name, tensor)
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
        strides = contiguous_strides(shape)
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


def contiguous_strides(shape):
    """Element strides of a C-contiguous array of `shape`."""
    strides, step = [], 1
    for extent in reversed(shape):
        strides.insert(0, step)
        step *= extent
    return tuple(strides)


def float32_view(name, obj, what="the forward's LSE"):
    """The View of a float32 array (`what`: the forward's LSE, ALiBi slopes): a torch tensor, an object with
    __cuda_array_interface__ typestr '<f4' or, with torch, one with __dlpack__. dtype is "float32"."""
    torch = import_torch()
    if torch is not None and not isinstance(obj, torch.Tensor) and hasattr(obj, "__dlpack__") \
            and getattr(obj, "__cuda_array_interface__", None) is None:
        obj = torch.from_dlpack(obj)
    if torch is not None and isinstance(obj, torch.Tensor):
        if obj.dtype != torch.float32:
            raise argument_error(f"{name} has dtype {obj.dtype}; it must be torch.float32 ({what})")
        check_cuda(name, obj)
        return View(obj.data_ptr(), tuple(obj.shape), tuple(obj.stride()), "float32", obj.device, obj)
    cai = getattr(obj, "__cuda_array_interface__", None)
    if cai is None:
        raise argument_error(f"{name} is a {type(obj).__name__}; fa2jit takes a float32 torch tensor or an object "
                             "with __cuda_array_interface__ typestr '<f4' there")
    if cai.get("typestr") != "<f4":
        raise argument_error(f"{name} has __cuda_array_interface__ typestr {cai.get('typestr')!r}; it must be "
                             f"'<f4' (float32, {what})")
    if cai.get("mask") is not None:
        raise argument_error(f"{name} has a __cuda_array_interface__ mask; fa2jit takes unmasked arrays")
    shape = tuple(int(extent) for extent in cai["shape"])
    if cai.get("strides") is None:
        strides = contiguous_strides(shape)
    else:
        byte_strides = tuple(int(stride) for stride in cai["strides"])
        if any(stride % 4 for stride in byte_strides):
            raise argument_error(f"{name} has byte strides {byte_strides}, not whole float32 elements")
        strides = tuple(stride // 4 for stride in byte_strides)
    return View(int(cai["data"][0] or 0), shape, strides, "float32", None, None)
