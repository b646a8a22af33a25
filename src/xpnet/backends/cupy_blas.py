"""Matrix products on CuPy arrays through nvmath-python's raw cuBLAS bindings: capturable.

CuPy refuses cuBLAS while a stream is being captured (``cupy.matmul`` and its own
``cublas.sgemm``: the check is in its ``setStream``, cupy#6290); nvmath-python's bindings
(``nvmath.bindings.cublas``) do not. So a captured step computes its products with a handle of
its own:

    create()                                 once per device
    set_stream(h, stream)                    whenever the current stream changes, and then
    set_workspace(h, ptr, 32 MiB)            again: SetStream resets the workspace
    set_math_mode(h, TF32_TENSOR_OP_MATH)    TF32 on (DEFAULT_MATH: off), read from CuPy's
                                             float32 compute type (``tf32=True`` sets it)
    sgemm / dgemm(h, ta, tb, m, n, k, &alpha, A, lda, B, ldb, &beta, C, ldc)

with alpha, beta constant host numbers (host pointer mode bakes them into a graph). cuBLAS is
column-major and CuPy row-major: a C-ordered (r, c) array is the column-major (c, r) matrix
X^T, so C = A B is computed as C^T = B^T A^T (:func:`gemm_plan`, checked on the CPU against
an emulation of cuBLAS' contract in ``tests/test_cupy_blas.py``).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

__all__ = ["Blas", "GemmPlan", "gemm_plan", "tf32_enabled"]

OP_N, OP_T = 0, 1                       # cublasOperation_t
DEFAULT_MATH, TF32_MATH = 0, 3          # cublasMath_t: CUBLAS_DEFAULT_MATH, TF32_TENSOR_OP_MATH
WORKSPACE_BYTES = 32 << 20              # cuBLAS' recommendation for Hopper


class GemmPlan(NamedTuple):
    """One cuBLAS gemm's arguments (column-major) for C = A B on row-major arrays."""

    transa: int
    transb: int
    m: int
    n: int
    k: int
    lda: int
    ldb: int
    ldc: int


def _as_transposed(shape: Sequence[int], strides: Sequence[int], what: str) -> tuple[int, int]:
    """(op, ld) that give X^T (c, r) in column-major terms for a row-major view X (r, c) with
    element ``strides``: C-ordered -> (N, stride 0); F-ordered (a transposed view) -> (T,
    stride 1)."""
    r, c = shape
    s0, s1 = strides
    if s1 == 1 and (r <= 1 or s0 >= c):
        return OP_N, max(s0 if r > 1 else c, 1)
    if s0 == 1 and (c <= 1 or s1 >= r):
        return OP_T, max(s1 if c > 1 else r, 1)
    raise ValueError(f"{what} of shape {tuple(shape)} has element strides {tuple(strides)}: "
                     "cuBLAS needs one unit stride (a C- or F-ordered view); make it contiguous")


def gemm_plan(a_shape: Sequence[int], a_strides: Sequence[int], b_shape: Sequence[int],
              b_strides: Sequence[int], c_shape: Sequence[int], c_strides: Sequence[int]
              ) -> GemmPlan:
    """cuBLAS' arguments for C (M, N) = A (M, K) B (K, N), row-major views with element
    strides; C must have unit stride along its rows. cuBLAS' A operand is our B, its B ours A:
    C^T = B^T A^T, with m = N, n = M, k = K."""
    M, K = a_shape
    K2, N = b_shape
    if K2 != K or tuple(c_shape) != (M, N):
        raise ValueError(f"C {tuple(c_shape)} = A {tuple(a_shape)} B {tuple(b_shape)}: the "
                         "shapes do not match")
    if not (c_strides[1] == 1 and (M <= 1 or c_strides[0] >= N)):
        raise ValueError(f"the product's output of shape {tuple(c_shape)} must be C-ordered "
                         f"(element strides {tuple(c_strides)})")
    op_b, ld_b = _as_transposed(b_shape, b_strides, "B")
    op_a, ld_a = _as_transposed(a_shape, a_strides, "A")
    ldc = max(c_strides[0] if M > 1 else N, 1)
    return GemmPlan(op_b, op_a, N, M, K, ld_b, ld_a, ldc)


def tf32_enabled() -> bool:
    """Whether CuPy's float32 products use TF32 now (``tf32=True`` sets its compute type)."""
    try:
        from cupy._core import _routines_linalg as linalg

        return linalg.get_compute_type(np.float32) == linalg.COMPUTE_TYPE_TF32
    except (ImportError, AttributeError):
        import os

        return os.environ.get("CUPY_TF32", "0") == "1"


class Blas:
    """A cuBLAS handle of our own on CUDA device ``device`` (nvmath-python), with its own
    32 MiB workspace, bound to the current CuPy stream at each call."""

    def __init__(self, device: int) -> None:
        import cupy
        from nvmath.bindings import cublas

        self._cublas = cublas
        with cupy.cuda.Device(device):
            self.handle = cublas.create()
            # the pool aligns to 512 bytes (cuBLAS asks for 256); alive as long as the handle
            self.workspace = cupy.empty(WORKSPACE_BYTES, dtype=cupy.uint8)
        self.device = device
        self._stream: int | None = None
        self._math: int | None = None
        # alpha = 1 and beta = 0 / 1 as host numbers (read at the call, baked into a capture)
        self._scalars = {np.dtype(t): (np.ones(1, t), np.zeros(1, t))
                         for t in (np.float32, np.float64)}

    def _bind(self, dtype: Any) -> None:
        import cupy

        cublas, h = self._cublas, self.handle
        stream = cupy.cuda.get_current_stream().ptr
        if stream != self._stream:
            cublas.set_stream(h, stream)
            cublas.set_workspace(h, self.workspace.data.ptr, self.workspace.nbytes)
            self._stream = stream
        math = TF32_MATH if dtype == np.float32 and tf32_enabled() else DEFAULT_MATH
        if math != self._math:
            cublas.set_math_mode(h, math)
            self._math = math

    def matmul(self, A: Any, B: Any, out: Any, *, accumulate: bool = False) -> Any:
        """out := A B (``accumulate``: out := A B + out), CuPy arrays of one float dtype."""
        if not (A.dtype == B.dtype == out.dtype) or A.dtype not in (np.float32, np.float64):
            raise TypeError(f"matmul needs one of float32/float64 for A, B and out; got "
                            f"{A.dtype}, {B.dtype}, {out.dtype}")
        isz = A.dtype.itemsize
        p = gemm_plan(A.shape, [s // isz for s in A.strides], B.shape,
                      [s // isz for s in B.strides], out.shape, [s // isz for s in out.strides])
        if out.size == 0:
            return out
        one, zero = self._scalars[np.dtype(A.dtype)]
        beta = one if accumulate else zero
        self._bind(A.dtype)
        gemm = self._cublas.sgemm if A.dtype == np.float32 else self._cublas.dgemm
        gemm(self.handle, p.transa, p.transb, p.m, p.n, p.k, one.ctypes.data, B.data.ptr, p.lda,
             A.data.ptr, p.ldb, beta.ctypes.data, out.data.ptr, p.ldc)
        return out

    def __del__(self) -> None:
        handle = getattr(self, "handle", None)
        if handle is not None:
            try:
                self._cublas.destroy(handle)
            except Exception:  # interpreter shutdown: the driver may be gone
                pass
