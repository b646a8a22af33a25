"""The CUDA bodies of the CuPy kernels (xpnet.backends.cupy_sources), checked without a GPU.

Each ``ElementwiseKernel`` body is plain C: the same text is compiled here by the host C++
compiler into a loop over the elements (``i`` the element index, output parameters as
references, inputs broadcast beforehand as CuPy does), called through ctypes, and compared with
the portable kernels on NumPy: the dropout generator bit for bit, the arithmetic to 1e-12
(float64) / 1e-5 (float32), the tolerances of tests/test_kernels.py. Where ``nvcc`` exists the
same bodies are compiled as CUDA device code (float and double), which catches what only the
CUDA compiler rejects. What this cannot show: that NVRTC inside CuPy accepts them, and the
speed; both wait for tests/test_kernels.py and the benchmark on a GPU.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from xpnet.backends.cupy_sources import COLUMN, ELEMENTWISE, HIDDEN, column_source, kernel_name
from xpnet.core.activations import ACTIVATIONS, activation_backward
from xpnet.core.kernels import Kernels
from xpnet.core.optim import adam_step_size, adam_update, momentum_update, sgd_update
from xpnet.core.random import dropout_mask, dropout_threshold

PORTABLE = Kernels()
CXX = shutil.which("g++") or shutil.which("c++")
NVCC = shutil.which("nvcc")
_CTYPES = {"float64": ctypes.c_double, "uint32": ctypes.c_uint32, "int64": ctypes.c_longlong}
_C = {"float64": "double", "uint32": "unsigned int", "int64": "long long"}


def _params(spec: str) -> list[tuple[str, str]]:
    """'T b, float64 lr' -> [("T", "b"), ("float64", "lr")]."""
    return [tuple(p.split()) for p in spec.split(",") if p.strip()]


def _signature(key: str, T: str) -> tuple[list[tuple[str, str, bool]], str]:
    """[(type, name, is_output)] and the C parameter list for element type ``T``."""
    ins, outs, _ = ELEMENTWISE[key]
    params = [(t, n, False) for t, n in _params(ins)] + [(t, n, True) for t, n in _params(outs)]
    c = []
    for t, n, out in params:
        if t == "T":
            c.append(f"{'' if out else 'const '}{T}* p_{n}")
        else:
            c.append(f"{_C[t]} {n}")
    return params, ", ".join(["long long n", *c])


def _bind(params: list[tuple[str, str, bool]]) -> str:
    """C statements binding each array element to the body's names."""
    lines = []
    for t, n, out in params:
        if t == "T":
            lines.append(f"T{' &' if out else ''} {n} = p_{n}[i];")
    return " ".join(lines)


def _host_source() -> str:
    parts = ["#include <cmath>", "using std::exp; using std::tanh; using std::fabs; "
             "using std::sqrt; using std::log;"]
    for key, (params, body) in COLUMN.items():  # the thread per column becomes a loop
        for T in ("float", "double"):
            sig = params.replace("T*", T + "*").replace("T ", T + " ")
            parts.append(f'extern "C" void {kernel_name(key)}_{T}({sig}) {{ typedef {T} T; '
                         f"for (int j = 0; j < m; ++j) {{ {body} }} }}")
    for key, (_, _, body) in ELEMENTWISE.items():
        for T in ("float", "double"):
            params, sig = _signature(key, T)
            parts.append(f'extern "C" void {kernel_name(key)}_{T}({sig}) {{ typedef {T} T; '
                         f"for (long long i = 0; i < n; ++i) {{ {_bind(params)} {body} }} }}")
    return "\n".join(parts)


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    if CXX is None:
        pytest.skip("no host C++ compiler (g++) to check the CUDA bodies with")
    d = tmp_path_factory.mktemp("cupy_sources")
    src, so = d / "kernels.cpp", d / "kernels.so"
    src.write_text(_host_source())
    # -ffp-contract=off: no fused multiply-adds, each operation rounded as NumPy rounds it
    r = subprocess.run([CXX, "-O1", "-ffp-contract=off", "-shared", "-fPIC", str(src), "-o",
                        str(so)], capture_output=True, text=True)
    assert r.returncode == 0, f"the CUDA bodies do not compile as C++:\n{r.stderr[-3000:]}"
    return ctypes.CDLL(str(so))


def run(lib, key: str, dtype: str, **args):
    """Call kernel ``key`` on NumPy arrays / scalars named as its parameters; returns the
    outputs (arrays are broadcast to the outputs' shape first, as CuPy does)."""
    T = "float" if dtype == "float32" else "double"
    params, _ = _signature(key, T)
    shape = np.broadcast_shapes(*(np.shape(args[n]) for t, n, _ in params if t == "T"))
    arrays, c_args = {}, []
    for t, n, out in params:
        if t == "T":
            a = np.ascontiguousarray(np.broadcast_to(np.asarray(args[n], dtype=dtype), shape))
            if out:
                a = a.copy()
            arrays[n] = a
            c_args.append(a.ctypes.data_as(ctypes.c_void_p))
        else:
            c_args.append(_CTYPES[t](args[n]))
    fn = getattr(lib, f"{kernel_name(key)}_{T}")
    fn.restype = None
    fn(ctypes.c_longlong(int(np.prod(shape))), *c_args)
    return [arrays[n] for t, n, out in params if out and t == "T"]


def _rng(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape) * 3


def _close(got, want, dtype, what=""):
    rtol, atol = (1e-12, 1e-13) if dtype == "float64" else (1e-5, 1e-6)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


DTYPES = ["float32", "float64"]


def test_every_kernel_is_checked():
    checked = ({f"bias_{g}" for g in HIDDEN} | {f"backward_{g}" for g in HIDDEN}
               | {"dropout_mask", "output_delta", "sgd", "momentum", "nesterov", "adam"})
    assert set(ELEMENTWISE) == checked
    assert set(COLUMN) == {"softmax_xent"}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("g", HIDDEN)
def test_bias_activation(lib, dtype, g):
    WA, b = _rng(1, 4, 7).astype(dtype), _rng(2, 4, 1).astype(dtype)
    WA[0, :3] = [0.0, -0.0, 40.0]  # relu's edge, sigmoid's large |Z|
    Z, A = run(lib, f"bias_{g}", dtype, b=b, Z=WA, A=np.zeros_like(WA))
    want_Z = WA + b
    _close(Z, want_Z, dtype, "Z")
    _close(A, ACTIVATIONS[g](want_Z, xp=np), dtype, "A")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("g", HIDDEN)
def test_activation_backward(lib, dtype, g):
    Z, dA = _rng(3, 4, 7).astype(dtype), _rng(4, 4, 7).astype(dtype)
    Z[0, :2] = [0.0, -0.0]
    A = ACTIVATIONS[g](Z, xp=np)
    (dZ,) = run(lib, f"backward_{g}", dtype, dA=dA, Z=Z, A=A, dZ=np.zeros_like(Z))
    _close(dZ, activation_backward(dA, Z, A, g, xp=np), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keep,keys,shape", [(0.8, (0, 0), (5, 9)),
                                             (0.5, (0xFFFFFFFF, 12345), (64, 33)),
                                             (1 / 3, (0xDEADBEEF, 0x0BADF00D), (3, 1000))])
def test_dropout_mask_bit_for_bit(lib, dtype, keep, keys, shape):
    """The uint32 arithmetic (wrapping multiplies) gives the int64 generator's bits exactly."""
    (D,) = run(lib, "dropout_mask", dtype, k1=keys[0], k2=keys[1],
               threshold=dropout_threshold(keep), inv_keep=1.0 / keep,
               D=np.zeros(shape, dtype=dtype))
    want = dropout_mask(keep, keys[0], keys[1], shape, np.dtype(dtype), xp=np, device=None)
    np.testing.assert_array_equal(D, want)
    assert D.dtype == want.dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_output_delta(lib, dtype):
    A, Y = np.abs(_rng(5, 3, 8)).astype(dtype), _rng(6, 3, 8).astype(dtype)
    (dZ,) = run(lib, "output_delta", dtype, A=A, Y=Y, inv_m=1.0 / 8, dZ=np.zeros_like(A))
    _close(dZ, PORTABLE.output_delta(A, Y, xp=np, ws=None), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rule", ["sgd", "momentum", "nesterov", "adam"])
def test_updates_over_three_steps(lib, dtype, rule):
    """The one-kernel updates of a flat buffer against the portable update, three steps."""
    p0 = _rng(7, 50).astype(dtype)
    grads = [_rng(8 + k, 50).astype(dtype) for k in range(3)]
    p, s1, s2 = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    pr, s1r, s2r = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(grads, start=1):
        if rule == "sgd":
            (p,) = run(lib, "sgd", dtype, g=g, lr=0.1, p=p)
            sgd_update([pr], [g], 0.1, xp=np)
        elif rule in ("momentum", "nesterov"):
            p, s1 = run(lib, rule, dtype, g=g, lr=0.1, mu=0.9, p=p, v=s1)
            momentum_update([pr], [g], [s1r], 0.1, 0.9, rule == "nesterov", xp=np)
        else:
            lr_t = adam_step_size(0.01, 0.9, 0.999, t)
            p, s1, s2 = run(lib, "adam", dtype, g=g, lr_t=lr_t, b1=0.9, b2=0.999, eps=1e-8,
                            p=p, m=s1, v=s2)
            adam_update([pr], [g], [s1r], [s2r], lr_t, 0.9, 0.999, 1e-8, xp=np)
    _close(p, pr, dtype, "p")
    _close(s1, s1r, dtype, "state 1")
    _close(s2, s2r, dtype, "state 2")


def _cuda_source() -> str:
    parts = [column_source(key, T) for key in COLUMN for T in ("float", "double")]
    for key, (_, _, body) in ELEMENTWISE.items():
        params, sig = _signature(key, "T")
        name = kernel_name(key)
        parts.append(f"template <typename T> __global__ void {name}({sig}) {{ long long i = "
                     f"(long long)blockIdx.x * blockDim.x + threadIdx.x; if (i >= n) return; "
                     f"{_bind(params)} {body} }}")
        for T in ("float", "double"):
            _, sig_t = _signature(key, T)
            parts.append(f"template __global__ void {name}<{T}>({_types(sig_t)});")
    return "\n".join(parts)


def _types(sig: str) -> str:
    """'long long n, const float* p_b, double lr' -> 'long long, const float*, double'."""
    return ", ".join(p.rsplit(" ", 1)[0] for p in sig.split(", "))


def test_bodies_compile_as_cuda(tmp_path):
    if NVCC is None:
        pytest.skip("nvcc not found: the CUDA compile check runs where the CUDA toolkit is")
    src = tmp_path / "kernels.cu"
    src.write_text(_cuda_source())
    r = subprocess.run([NVCC, "-c", "-arch=sm_90", str(src), "-o", str(tmp_path / "k.o")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"nvcc rejects the kernels:\n{r.stderr[-3000:]}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_column_kernel(lib, dtype):
    """S = sum_j S_j and dZ[L] against the portable output_loss_delta; Y a transposed view (as
    the training loop passes it), Z with large logits."""
    n, m = 4, 9
    Z = (_rng(20, n, m) * 10).astype(dtype)
    Y = np.eye(n)[np.random.default_rng(21).integers(0, n, m)].astype(dtype).copy().T
    assert not Y.flags.c_contiguous  # a view of (m, n) rows
    T = "float" if dtype == "float32" else "double"
    fn = getattr(lib, f"{kernel_name('softmax_xent')}_{T}")
    fn.restype = None
    dZ, S = np.zeros((n, m), dtype), np.zeros(m, dtype)
    isz = np.dtype(dtype).itemsize
    ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    fn(ptr(Z), ctypes.c_longlong(Z.strides[0] // isz), ctypes.c_longlong(Z.strides[1] // isz),
       ptr(Y), ctypes.c_longlong(Y.strides[0] // isz), ctypes.c_longlong(Y.strides[1] // isz),
       ptr(dZ), ptr(S), ctypes.c_int(n), ctypes.c_int(m), ctypes.c_double(1.0 / m))
    want_S, want_dZ = PORTABLE.output_loss_delta(Z, Y, "softmax", xp=np, ws=None)
    _close(S.sum(), want_S, dtype, "S")
    _close(dZ, want_dZ, dtype, "dZ")
