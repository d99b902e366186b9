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
    for call in (lambda: fa2jit.forward(q, k, v, out=FakeArray((1, 16, 4, 64)), tune="heuristic"),
                 lambda: fa2jit.config_name(q, k, v, tune="heuristic")):
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


def test_c_side_argument_checks_pass_through():
    loaded_library()
    q, k, v = qkv(head_dim=48)  # the Python layer leaves head dims to the library
    with pytest.raises(fa2jit.Fa2Error) as caught:
        fa2jit.forward(q, k, v, out=FakeArray((1, 16, 4, 48)))
    assert caught.value.status == fa2jit.ERROR_ARGUMENT
    assert "head_dim 48" in str(caught.value)


def test_c_rejects_a_wrong_struct_size():
    lib = loaded_library()
    args = _lib.ForwardArgs()
    args.struct_size = 12
    assert lib.fa2_forward(ctypes.byref(args), None) == fa2jit.ERROR_ARGUMENT
    assert "struct_size is 12" in _lib.last_error(lib)


def test_library_metadata():
    lib = loaded_library()
    assert lib.fa2_abi_version() == _lib.ABI_VERSION
    assert fa2jit.library_version() == fa2jit.__version__
    assert lib.fa2_forward_args_size() == ctypes.sizeof(_lib.ForwardArgs)


def test_struct_layout_matches_the_c_header(tmp_path):
    compiler = shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler (cc) on PATH")
    fields = [name for name, _ in _lib.ForwardArgs._fields_]
    source = tmp_path / "layout.c"
    source.write_text("#include <stddef.h>\n#include <stdio.h>\n#include \"fa2jit/fa2jit.h\"\nint main(void) {\n" +
                      'printf("%zu\\n", sizeof(fa2_forward_args));\n' +
                      "".join(f'printf("%zu\\n", offsetof(fa2_forward_args, {name}));\n' for name in fields) +
                      "return 0;\n}\n")
    binary = tmp_path / "layout"
    subprocess.run([compiler, "-std=c99", "-Wall", "-Werror", "-I", os.path.join(REPO, "include"), str(source),
                    "-o", str(binary)], check=True)
    printed = [int(line) for line in subprocess.run([str(binary)], check=True, capture_output=True,
                                                    text=True).stdout.split()]
    assert printed[0] == ctypes.sizeof(_lib.ForwardArgs)
    assert dict(zip(fields, printed[1:])) == {name: getattr(_lib.ForwardArgs, name).offset for name in fields}


def test_torch_cpu_tensors_are_rejected():
    torch = pytest.importorskip("torch", reason="torch is not installed: the torch argument checks are skipped")
    q = torch.zeros(1, 16, 4, 64, dtype=torch.float16)
    with pytest.raises(fa2jit.Fa2Error, match="needs CUDA tensors"):
        fa2jit.forward(q, q, q)
    with pytest.raises(fa2jit.Fa2Error, match="torch.float32"):
        fa2jit.forward(q.float(), q, q)
