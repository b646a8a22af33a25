"""cupy_blas.gemm_plan: row-major products as column-major cuBLAS calls, checked on the CPU.

cuBLAS' contract (column-major): C[:m, :n] := alpha op(A) op(B) + beta C, element (i, j) of
a stored matrix at ptr[i + j ld], op(A) = A (m x k, "N") or the transpose of the stored
k x m matrix ("T"), ld at least the stored rows. :func:`cublas_gemm` below implements that
contract on flat NumPy buffers; each case builds row-major views (C-ordered, padded rows,
transposed views) over flat buffers exactly as CuPy lays them out, runs the plan through the
emulation and compares with NumPy's A @ B, checking that nothing outside C's window changed.
The calls themselves run on a GPU (tests/test_graphs_gpu.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.backends.cupy_blas import OP_N, OP_T, gemm_plan


def _mat(buf: np.ndarray, rows: int, cols: int, ld: int) -> np.ndarray:
    """The column-major (rows, cols) matrix at buf with leading dimension ld (a view)."""
    isz = buf.itemsize
    return np.lib.stride_tricks.as_strided(buf, (rows, cols), (isz, ld * isz))


def cublas_gemm(transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc) -> None:
    """cuBLAS gemm's documented semantics on flat buffers (and its argument checks)."""
    assert transa in (OP_N, OP_T) and transb in (OP_N, OP_T)
    assert lda >= max(1, m if transa == OP_N else k), "cuBLAS: invalid lda"
    assert ldb >= max(1, k if transb == OP_N else n), "cuBLAS: invalid ldb"
    assert ldc >= max(1, m), "cuBLAS: invalid ldc"
    opA = _mat(A, m, k, lda) if transa == OP_N else _mat(A, k, m, lda).T
    opB = _mat(B, k, n, ldb) if transb == OP_N else _mat(B, n, k, ldb).T
    Cm = _mat(C, m, n, ldc)
    Cm[...] = alpha * (opA @ opB) + beta * Cm


def _view(rng, shape, layout):
    """(flat buffer starting at the view, the row-major view) for ``layout``: "C", "C+pad"
    (rows further apart than their length), "F" (a transposed C array), "F+pad"."""
    r, c = shape
    if layout.startswith("C"):
        ld = c + (3 if layout.endswith("pad") else 0)
        base = rng.standard_normal(r * ld)
        return base, np.lib.stride_tricks.as_strided(base, (r, c), (8 * ld, 8))
    ld = r + (2 if layout.endswith("pad") else 0)
    base = rng.standard_normal(c * ld)
    return base, np.lib.stride_tricks.as_strided(base, (r, c), (8, 8 * ld))


def _run(A, Ab, B, Bb, M, N, c_layout, rng, accumulate=False):
    ldc = N + (5 if c_layout == "C+pad" else 0)
    Cb = rng.standard_normal(max(M, 1) * ldc + 7)  # poison: every element is a random number
    before = Cb.copy()
    C = np.lib.stride_tricks.as_strided(Cb, (M, N), (8 * ldc, 8))
    want = A @ B + (C.copy() if accumulate else 0.0)
    p = gemm_plan(A.shape, [s // 8 for s in A.strides], B.shape, [s // 8 for s in B.strides],
                  C.shape, [s // 8 for s in C.strides])
    # cuBLAS' A operand is our B, its B our A (C^T = B^T A^T), as Blas.matmul calls it
    cublas_gemm(p.transa, p.transb, p.m, p.n, p.k, 1.0, Bb, p.lda, Ab, p.ldb,
                1.0 if accumulate else 0.0, Cb, p.ldc)
    np.testing.assert_allclose(C, want, rtol=1e-12, atol=1e-12)
    outside = np.ones(Cb.shape, bool)
    for i in range(M):
        outside[i * ldc:i * ldc + N] = False
    assert np.array_equal(Cb[outside], before[outside]), "wrote outside C"


LAYOUTS = ["C", "C+pad", "F", "F+pad"]


@pytest.mark.parametrize("a_layout", LAYOUTS)
@pytest.mark.parametrize("b_layout", LAYOUTS)
@pytest.mark.parametrize("c_layout", ["C", "C+pad"])
def test_every_layout_gives_numpys_product(a_layout, b_layout, c_layout):
    rng = np.random.default_rng(0)
    M, K, N = 5, 7, 4
    Ab, A = _view(rng, (M, K), a_layout)
    Bb, B = _view(rng, (K, N), b_layout)
    _run(A, Ab, B, Bb, M, N, c_layout, rng)
    _run(A, Ab, B, Bb, M, N, c_layout, rng, accumulate=True)


@pytest.mark.parametrize("M, K, N", [(1, 7, 4), (5, 1, 4), (5, 7, 1), (1, 1, 1)])
@pytest.mark.parametrize("layout", ["C", "F"])
def test_a_dimension_of_one(M, K, N, layout):
    """Vectors: the stride of a length-1 dimension is free; the plan's ld stays legal."""
    rng = np.random.default_rng(1)
    Ab, A = _view(rng, (M, K), layout)
    Bb, B = _view(rng, (K, N), layout)
    _run(A, Ab, B, Bb, M, N, "C", rng)


def test_the_steps_products():
    """The three products of a step, as the graph kernels pass them: Z = W A (W C-ordered,
    A = X[a:z].T a transposed view), dW = dZ A^T, dA = W^T dZ."""
    rng = np.random.default_rng(2)
    n0, n1, m = 6, 4, 3
    Xb, Xrows = _view(rng, (m, n0), "C+pad")     # rows a..z of the permuted X
    Wb, W = _view(rng, (n1, n0), "C")
    dZb, dZ = _view(rng, (n1, m), "C")
    A = Xrows.T                                   # (n0, m), F-ordered
    _run(W, Wb, A, Xb, n1, m, "C", rng)           # Z = W A
    _run(dZ, dZb, A.T, Xb, n1, n0, "C", rng)      # dW = dZ A^T
    _run(W.T, Wb, dZ, dZb, n0, m, "C", rng)       # dA = W^T dZ


def test_what_cublas_cannot_take_is_refused():
    with pytest.raises(ValueError, match="shapes do not match"):
        gemm_plan((2, 3), (3, 1), (4, 2), (2, 1), (2, 2), (2, 1))
    with pytest.raises(ValueError, match="must be C-ordered"):
        gemm_plan((2, 3), (3, 1), (3, 2), (2, 1), (2, 2), (1, 2))
    with pytest.raises(ValueError, match="one unit stride"):
        gemm_plan((2, 3), (6, 2), (3, 2), (2, 1), (2, 2), (2, 1))  # A[:, ::2]
