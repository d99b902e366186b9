"""What works without a GPU: importing, argument checks, clear errors, and the ctypes struct matching
the C header. Runs in CI (no torch needed: the torch cases skip)."""

import ctypes
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(PYTHON_DIR)
sys.path.insert(0, PYTHON_DIR)

import fa2jit  # noqa: E402
from fa2jit import _lib  # noqa: E402


class FakeArray:
    """A device array as far as __cuda_array_interface__ goes; the pointer is never dereferenced here."""

    def __init__(self, shape, typestr="<f2", ptr=1 << 20, readonly=False, strides=None):
        self.__cuda_array_interface__ = {"shape": tuple(shape), "typestr": typestr, "data": (ptr, readonly),
                                         "strides": strides, "version": 3}


def qkv(heads_q=4, heads_kv=2, head_dim=64, seqlen=16):
    return (FakeArray((1, seqlen, heads_q, head_dim)), FakeArray((1, seqlen, heads_kv, head_dim)),
            FakeArray((1, seqlen, heads_kv, head_dim)))


def backward_inputs(heads_q=4, heads_kv=2, head_dim=64, seqlen=16):
    """dout, q, k, v, out, lse of a valid backward call, and gradients to write into."""
    q, k, v = qkv(heads_q, heads_kv, head_dim, seqlen)
    inputs = dict(dout=FakeArray(q.__cuda_array_interface__["shape"]), q=q, k=k, v=v,
                  out=FakeArray(q.__cuda_array_interface__["shape"]),
                  lse=FakeArray((1, heads_q, seqlen), typestr="<f4"))
    grads = dict(dq=FakeArray((1, seqlen, heads_q, head_dim)), dk=FakeArray((1, seqlen, heads_kv, head_dim)),
                 dv=FakeArray((1, seqlen, heads_kv, head_dim)))
    return inputs, grads


def loaded_library():
    try:
        return _lib.library()[0]
    except fa2jit.Fa2Error as error:
        pytest.skip(f"libfa2jit.so is not built: {error}")


def driver_present():
    try:
        ctypes.CDLL("libcuda.so.1")
        return True
    except OSError:
        return False


def test_import_needs_neither_torch_nor_library():
    code = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None  # any `import torch` now fails
        import fa2jit
        try:
            fa2jit.forward(1, 2, 3)
        except fa2jit.Fa2Error as error:
            assert error.status == fa2jit.ERROR_ARGUMENT, error
        else:
            raise AssertionError("forward(1, 2, 3) did not raise")
        for call in (lambda: fa2jit.backward(1, 2, 3, 4, 5, 6), lambda: fa2jit.attention(1, 2, 3)):
            try:
                call()
            except fa2jit.Fa2Error as error:
                assert error.status == fa2jit.ERROR_ARGUMENT, error
            else:
                raise AssertionError("a call on ints did not raise")
        try:
            fa2jit.attention(1, 2, 3)
        except fa2jit.Fa2Error as error:
            assert "needs torch" in str(error), error
    """)
    env = dict(os.environ, FA2JIT_LIBRARY="/nonexistent/libfa2jit.so", PYTHONPATH=PYTHON_DIR)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_missing_library_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("FA2JIT_LIBRARY", "/nonexistent/libfa2jit.so")
    monkeypatch.setattr(_lib, "_loaded", None)
    q, k, v = qkv()
    with pytest.raises(fa2jit.Fa2Error) as caught:
        fa2jit.forward(q, k, v, out=FakeArray((1, 16, 4, 64)))
    assert caught.value.status is None
    assert "/nonexistent/libfa2jit.so" in str(caught.value) and "FA2JIT_LIBRARY" in str(caught.value)


def test_candidate_paths_without_env(monkeypatch):
    monkeypatch.delenv("FA2JIT_LIBRARY", raising=False)
    assert fa2jit.candidate_paths()[1:] == [os.path.join(REPO, "build", "libfa2jit.so"),
                                           os.path.join(REPO, "build-gpu", "libfa2jit.so")]


def test_forward_without_gpu_names_the_driver():
    loaded_library()
    if driver_present():
        pytest.skip("this machine has libcuda.so.1; the GPU-less error cannot be seen here")
    q, k, v = qkv()
    inputs, grads = backward_inputs()
    for call in (lambda: fa2jit.forward(q, k, v, out=FakeArray((1, 16, 4, 64)), tune="heuristic"),
                 lambda: fa2jit.config_name(q, k, v, tune="heuristic"),
                 lambda: fa2jit.backward(*inputs.values(), tune="heuristic", **grads),
                 lambda: fa2jit.backward_config_name(*inputs.values(), tune="heuristic", deterministic=True)):
        with pytest.raises(fa2jit.Fa2Error) as caught:
            call()
        assert caught.value.status == fa2jit.ERROR_DRIVER
        assert "libcuda.so.1" in str(caught.value)


@pytest.mark.parametrize("call, expected", [
    (lambda q, k, v: fa2jit.forward(q, k, v), "pass out="),
    (lambda q, k, v: fa2jit.forward(q, k, v, out=q, return_lse=True), "return_lse"),
    (lambda q, k, v: fa2jit.forward(q, k, v, out=q, layout="sbhd"), "layout='sbhd'"),
    (lambda q, k, v: fa2jit.forward(q, k, v, out=q, tune="fast"), "tune='fast'"),
    (lambda q, k, v: fa2jit.forward(q, k, v, out=q, softmax_scale=-1.0), "softmax_scale -1.0"),
    (lambda q, k, v: fa2jit.forward(q, k, v, out=FakeArray((1, 16, 4, 32))), "out shape"),
    (lambda q, k, v: fa2jit.forward(q, k, v, out=FakeArray((1, 16, 4, 64), readonly=True)), "read-only"),
    (lambda q, k, v: fa2jit.forward(q, FakeArray((1, 16, 3, 64)), FakeArray((1, 16, 3, 64)), out=q),
     "not a multiple"),
    (lambda q, k, v: fa2jit.forward(q, k, FakeArray((1, 8, 2, 64)), out=q), "differ"),
    (lambda q, k, v: fa2jit.forward(FakeArray((16, 4, 64)), k, v, out=q), "must be 4-D"),
    (lambda q, k, v: fa2jit.forward(q, FakeArray((1, 16, 2, 64), typestr="<f4"), v, out=q), "'<f4'"),
    (lambda q, k, v: fa2jit.forward(FakeArray((1, 4, 16, 64)), FakeArray((1, 3, 16, 64)), FakeArray((1, 3, 16, 64)),
                                    out=FakeArray((1, 4, 16, 64)), layout="bhsd"), "q's 4 heads"),
    (lambda q, k, v: fa2jit.forward(q, k, "v", out=q), "v is a str"),
    (lambda q, k, v: fa2jit.forward(q, FakeArray((1, 16, 2, 64), strides=(4096, 256, 128, 4)), v, out=q),
     "last dimension must be contiguous"),
])
def test_python_argument_checks(call, expected):
    q, k, v = qkv()
    with pytest.raises(fa2jit.Fa2Error) as caught:
        call(q, k, v)
    assert caught.value.status == fa2jit.ERROR_ARGUMENT
    assert expected in str(caught.value)


def backward_call(change):
    """fa2jit.backward on backward_inputs() with `change` applied (tensors or keyword arguments)."""
    inputs, grads = backward_inputs()
    options = dict(grads, tune="heuristic")
    for key, value in change.items():
        (inputs if key in inputs else options)[key] = value
    return fa2jit.backward(*inputs.values(), **options)


@pytest.mark.parametrize("change, expected", [
    (dict(dq=None), "cannot allocate dq: pass dq="),
    (dict(dk=None), "cannot allocate dk: pass dk="),
    (dict(lse=FakeArray((1, 4, 16))), "lse has __cuda_array_interface__ typestr '<f2'; it must be '<f4'"),
    (dict(lse=FakeArray((1, 4, 8), typestr="<f4")), "lse shape (1, 4, 8) must be [B, Hq, Sq] = (1, 4, 16)"),
    (dict(lse=FakeArray((1, 16, 4), typestr="<f4")), "lse shape (1, 16, 4)"),
    (dict(lse=FakeArray((1, 4, 16), typestr="<f4", strides=(256, 4, 16))), "lse must be contiguous"),
    (dict(lse=FakeArray((1, 4, 16), typestr="<f4", strides=(256, 64, 2))), "not whole float32 elements"),
    (dict(lse="lse"), "lse is a str"),
    (dict(dout=FakeArray((1, 8, 4, 64))), "dout shape (1, 8, 4, 64) differs from q shape (1, 16, 4, 64)"),
    (dict(out=FakeArray((1, 16, 4, 64), typestr="<f4")), "out has __cuda_array_interface__ typestr '<f4'"),
    (dict(dk=FakeArray((1, 16, 4, 64))), "dk shape (1, 16, 4, 64) differs from k shape (1, 16, 2, 64)"),
    (dict(dv=FakeArray((1, 16, 2, 64), readonly=True)), "dv is read-only"),
    (dict(dq=FakeArray((1, 16, 4, 64), strides=(8192, 512, 128, 4))), "dq's last dimension must be contiguous"),
    (dict(k=FakeArray((1, 16, 3, 64)), v=FakeArray((1, 16, 3, 64))), "not a multiple"),
    (dict(layout="sbhd"), "layout='sbhd'"),
    (dict(tune="fast"), "tune='fast'"),
    (dict(softmax_scale=0.0), "softmax_scale 0.0"),
    (dict(stream="s"), "stream 's'"),
])
def test_backward_argument_checks(change, expected):
    with pytest.raises(fa2jit.Fa2Error) as caught:
        backward_call(change)
    assert caught.value.status == fa2jit.ERROR_ARGUMENT
    assert expected in str(caught.value)


def test_backward_c_side_argument_checks_pass_through():
    loaded_library()
    inputs, grads = backward_inputs(head_dim=48)
    with pytest.raises(fa2jit.Fa2Error) as caught:
        fa2jit.backward(*inputs.values(), **grads)
    assert caught.value.status == fa2jit.ERROR_ARGUMENT
    assert "head_dim 48" in str(caught.value)
    inputs, grads = backward_inputs()
    grads["dk"] = FakeArray((1, 16, 2, 64), ptr=(1 << 20) + 8)  # struct fields beyond the forward's reach C
    with pytest.raises(fa2jit.Fa2Error) as caught:
        fa2jit.backward(*inputs.values(), **grads)
    assert caught.value.status == fa2jit.ERROR_ARGUMENT
    assert "dk = " in str(caught.value) and "16-byte aligned" in str(caught.value)


def test_backward_workspace_size_needs_no_gpu():
    loaded_library()
    from fa2jit import _backward
    inputs, _ = backward_inputs(heads_q=8, heads_kv=2, head_dim=128, seqlen=1000)
    size = _backward.workspace_bytes(*inputs.values(), causal=True)
    assert size >= 4 * 8 * 1000 * 128  # at least the fp32 dQ accumulator


def test_c_side_argument_checks_pass_through():
    loaded_library()
    q, k, v = qkv(head_dim=48)  # the Python layer leaves head dims to the library
    with pytest.raises(fa2jit.Fa2Error) as caught:
        fa2jit.forward(q, k, v, out=FakeArray((1, 16, 4, 48)))
    assert caught.value.status == fa2jit.ERROR_ARGUMENT
    assert "head_dim 48" in str(caught.value)


@pytest.mark.parametrize("struct_name", list(_lib.STRUCTS))
def test_c_rejects_a_wrong_struct_size(struct_name):
    lib = loaded_library()
    struct, _ = _lib.STRUCTS[struct_name]
    args = struct()
    args.struct_size = 12
    call = {_lib.ForwardArgs: lib.fa2_forward, _lib.BackwardArgs: lib.fa2_backward,
            _lib.KvcacheArgs: lib.fa2_forward_with_kvcache}[struct]
    assert call(ctypes.byref(args), None) == fa2jit.ERROR_ARGUMENT
    assert "struct_size is 12" in _lib.last_error(lib) and struct_name in _lib.last_error(lib)


def test_library_metadata():
    lib = loaded_library()
    assert lib.fa2_abi_version() == _lib.ABI_VERSION == 3
    assert fa2jit.library_version() == fa2jit.__version__
    for struct, size_function in _lib.STRUCTS.values():
        assert getattr(lib, size_function)() == ctypes.sizeof(struct)


def test_public_api():
    for name in ("attention", "forward", "backward", "forward_with_kvcache", "config_name", "backward_config_name",
                 "library_version"):
        assert name in fa2jit.__all__ and callable(getattr(fa2jit, name))


@pytest.mark.parametrize("struct_name", list(_lib.STRUCTS))
def test_struct_layout_matches_the_c_header(tmp_path, struct_name):
    compiler = shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler (cc) on PATH")
    struct, _ = _lib.STRUCTS[struct_name]
    fields = [name for name, _ in struct._fields_]
    source = tmp_path / "layout.c"
    source.write_text("#include <stddef.h>\n#include <stdio.h>\n#include \"fa2jit/fa2jit.h\"\nint main(void) {\n" +
                      f'printf("%zu\\n", sizeof({struct_name}));\n' +
                      "".join(f'printf("%zu\\n", offsetof({struct_name}, {name}));\n' for name in fields) +
                      "return 0;\n}\n")
    binary = tmp_path / "layout"
    subprocess.run([compiler, "-std=c99", "-Wall", "-Werror", "-I", os.path.join(REPO, "include"), str(source),
                    "-o", str(binary)], check=True)
    printed = [int(line) for line in subprocess.run([str(binary)], check=True, capture_output=True,
                                                    text=True).stdout.split()]
    assert printed[0] == ctypes.sizeof(struct)
    assert dict(zip(fields, printed[1:])) == {name: getattr(struct, name).offset for name in fields}


def test_torch_cpu_tensors_are_rejected():
    torch = pytest.importorskip("torch", reason="torch is not installed: the torch argument checks are skipped")
    q = torch.zeros(1, 16, 4, 64, dtype=torch.float16)
    with pytest.raises(fa2jit.Fa2Error, match="needs CUDA tensors"):
        fa2jit.forward(q, q, q)
    with pytest.raises(fa2jit.Fa2Error, match="torch.float32"):
        fa2jit.forward(q.float(), q, q)
    with pytest.raises(fa2jit.Fa2Error, match="fa2jit.attention takes torch tensors"):
        fa2jit.attention(q, q, FakeArray((1, 16, 4, 64)))


def test_dout_is_copied_only_when_the_kernels_cannot_read_it():
    torch = pytest.importorskip("torch", reason="torch is not installed: the dO stride rules are skipped")
    from fa2jit._autograd import _readable
    dout = torch.zeros(2, 64, 4, 64, dtype=torch.bfloat16)
    assert _readable(dout, "bshd", torch) is dout
    assert _readable(dout.transpose(1, 2), "bhsd", torch).data_ptr() == dout.data_ptr()  # a view, still readable
    expanded = torch.ones((), dtype=torch.bfloat16).expand(2, 64, 4, 64)  # what out.sum() hands back
    copied = _readable(expanded, "bshd", torch)
    assert copied.stride() == (64 * 4 * 64, 4 * 64, 64, 1) and torch.equal(copied, expanded)
    # One query row, with a row stride torch leaves odd because the extent is 1: .contiguous() would keep it.
    odd = torch.zeros(2, 4, 1, 64, dtype=torch.bfloat16).as_strided((2, 1, 4, 64), (256, 3, 64, 1))
    assert odd.is_contiguous()
    assert _readable(odd, "bshd", torch).stride() == (256, 256, 64, 1)
