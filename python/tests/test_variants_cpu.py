"""The built-in variants' arguments without a GPU or torch: window, softcap and alibi_slopes of fa2jit.forward and
fa2jit.backward are checked in Python before the library runs (naming the value and what is allowed), reach the
C structs' variant fields, and the library's own checks pass through."""

import ctypes
import os
import sys

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(TESTS_DIR))
sys.path.insert(0, TESTS_DIR)

import fa2jit  # noqa: E402
from fa2jit import _args, _forward, _lib  # noqa: E402

from test_import_cpu import FakeArray, backward_inputs, driver_present, loaded_library, qkv  # noqa: E402


@pytest.mark.parametrize("change, expected", [
    (dict(window=(-2, 0)), "window left -2 must be an int >= -1"),
    (dict(window=(4, -9)), "window right -9"),
    (dict(window=(1, 2, 3)), "must be a pair (left, right)"),
    (dict(window=(1.5, 0)), "window left 1.5"),
    (dict(softcap=-1.0), "softcap -1.0 must be finite and > 0, or 0"),
    (dict(softcap=float("nan")), "softcap nan"),
    (dict(alibi_slopes=FakeArray((4,))), "alibi_slopes has __cuda_array_interface__ typestr '<f2'; it must be '<f4' "
                                         "(float32, ALiBi slopes)"),
    (dict(alibi_slopes=FakeArray((3,), typestr="<f4")), "alibi_slopes shape (3,)"),
    (dict(alibi_slopes=FakeArray((2, 4), typestr="<f4")), "must be [Hq] = (4,) or [B, Hq] = (1, 4)"),
    (dict(alibi_slopes=FakeArray((4,), typestr="<f4", strides=(8,))), "contiguous heads"),
])
def test_bad_variant_arguments_are_named(change, expected):
    q, k, v = qkv()
    with pytest.raises(fa2jit.Fa2Error) as caught:
        fa2jit.forward(q, k, v, out=FakeArray((1, 16, 4, 64)), **change)
    assert caught.value.status == fa2jit.ERROR_ARGUMENT
    assert expected in str(caught.value)
    inputs, grads = backward_inputs()
    with pytest.raises(fa2jit.Fa2Error) as caught:
        fa2jit.backward(*inputs.values(), **grads, **change)
    assert expected in str(caught.value)


def test_the_variant_reaches_the_struct():
    q, k, v = qkv()
    slopes = FakeArray((1, 4), typestr="<f4", ptr=1 << 21)
    args, _, _ = _forward._prepare(q, k, v, None, True, None, "bshd", None, None,
                                   _args.variant_of((128, 0), 30.0, slopes))
    assert (args.window, args.window_left, args.window_right) == (1, 128, 0)
    assert args.softcap == 30.0
    assert args.alibi_slopes == 1 << 21
    assert args.alibi_slopes_batch_stride == 0  # one batch entry: the stride is never used
    plain, _, _ = _forward._prepare(q, k, v, None, False, None, "bshd", None, None)
    assert (plain.window, plain.softcap, plain.alibi_slopes) == (0, 0.0, None)


def test_valid_variants_get_to_the_driver():
    loaded_library()
    if driver_present():
        pytest.skip("this machine has libcuda.so.1; the GPU-less error cannot be seen here")
    q, k, v = qkv()
    slopes = FakeArray((4,), typestr="<f4")
    with pytest.raises(fa2jit.Fa2Error) as caught:
        fa2jit.forward(q, k, v, out=FakeArray((1, 16, 4, 64)), window=(8, 8), softcap=50.0, alibi_slopes=slopes,
                       tune="heuristic")
    assert caught.value.status == fa2jit.ERROR_DRIVER


def test_the_library_checks_the_struct_fields_too():
    """A binding that writes the fields itself still gets the library's checks (here a window below -1)."""
    lib = loaded_library()
    q, k, v = qkv()
    args, _, _ = _forward._prepare(q, k, v, FakeArray((1, 16, 4, 64)), False, None, "bshd", "heuristic", None)
    args.o = 1 << 20
    args.window, args.window_left = 1, -3
    buffer = ctypes.create_string_buffer(256)
    assert lib.fa2_forward_config_name(ctypes.byref(args), buffer, len(buffer)) == fa2jit.ERROR_ARGUMENT
    assert "window_left -3" in _lib.last_error(lib)
