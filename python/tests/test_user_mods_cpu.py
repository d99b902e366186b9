"""User modifications' arguments without a GPU or torch: score_mod=, score_mod_grad=, mask_mod= and extra= of
fa2jit.forward and fa2jit.backward are checked in Python (naming what is wrong) and reach the C structs'
user-mod fields, which sit where fa2jit.h puts them."""

import ctypes
import os
import sys
import types

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(TESTS_DIR))
sys.path.insert(0, TESTS_DIR)

import fa2jit  # noqa: E402
from fa2jit import _args, _lib  # noqa: E402


class FakeTensor:
    """What fill_user_mods reads of a torch tensor: dtype, device, contiguity and the address."""

    def __init__(self, dtype="torch.int32", contiguous=True, device=None, ptr=0x1000):
        self.dtype, self.device, self._contiguous, self._ptr = dtype, device, contiguous, ptr

    def is_contiguous(self):
        return self._contiguous

    def data_ptr(self):
        return self._ptr


QV = types.SimpleNamespace(device=None)


def test_the_fields_follow_the_variants_in_both_structs():
    for struct in (_lib.ForwardArgs, _lib.BackwardArgs):
        names = [name for name, _ in struct._fields_]
        assert names[names.index("alibi_slopes_batch_stride") + 1:] == [name for name, _ in _lib.USER_MOD_FIELDS]


def test_snippets_and_extras_reach_the_struct():
    args = _lib.ForwardArgs()
    kept = _args.fill_user_mods(args, QV, score_mod="score * 0.5f", mask_mod="doc[q_idx] == doc[kv_idx]",
                                extra={"doc": FakeTensor(ptr=0x2000), "bias": FakeTensor("torch.float32", ptr=0x3000)})
    assert args.score_mod == b"score * 0.5f"
    assert args.score_mod_grad is None
    assert args.mask_mod == b"doc[q_idx] == doc[kv_idx]"
    assert args.num_extra == 2
    assert [args.extra_names[i] for i in range(2)] == [b"doc", b"bias"]
    assert [args.extra_types[i] for i in range(2)] == [_lib.EXTRA_TYPES["int32"], _lib.EXTRA_TYPES["float32"]]
    assert [args.extra_data[i] for i in range(2)] == [0x2000, 0x3000]
    assert len(kept) == 2
    empty = _lib.BackwardArgs()
    assert _args.fill_user_mods(empty, QV) == []
    assert empty.score_mod is None and empty.num_extra == 0


@pytest.mark.parametrize("change, expected", [
    (dict(score_mod=3), "score_mod=3 must be a string"),
    (dict(score_mod_grad="1.f"), "score_mod_grad is given without score_mod"),
    (dict(extra={"doc": FakeTensor()}), "without score_mod or mask_mod"),
    (dict(mask_mod="true", extra={"2doc": FakeTensor()}), "must be a C identifier"),
    (dict(mask_mod="true", extra={"doc": FakeTensor("torch.float16")}), "int32, int64, float32, uint8 or bool"),
    (dict(mask_mod="true", extra={"doc": FakeTensor(contiguous=False)}), "must be contiguous"),
    (dict(mask_mod="true", extra={"doc": FakeTensor(device="cuda:1")}), "is on cuda:1"),
    (dict(mask_mod="true", extra={name: FakeTensor() for name in "abcde"}), "at most 4"),
])
def test_bad_user_mod_arguments_are_named(change, expected):
    qv = types.SimpleNamespace(device="cuda:0")
    with pytest.raises(fa2jit.Fa2Error) as caught:
        _args.fill_user_mods(_lib.ForwardArgs(), qv, **change)
    assert caught.value.status == fa2jit.ERROR_ARGUMENT
    assert expected in str(caught.value)


def test_the_struct_sizes_match_the_header():
    # Three pointers, an int, then 4 names, 4 ints and 4 pointers (with the padding C gives them).
    fields = type("UserMods", (ctypes.Structure,), {"_fields_": _lib.USER_MOD_FIELDS})
    assert ctypes.sizeof(fields) == 3 * 8 + 8 + 4 * 8 + 4 * 4 + 4 * 8
