"""CuPy's kernels: the portable equations with fused elementwise CUDA kernels.

On a GPU every CuPy call is one kernel launch (~12-15 us of Python and driver time), and a
small network's step is bound by launches, not by arithmetic. These kernels cut the launches
of a step without changing its algebra (``tests/test_kernels.py`` compares each override with
the portable kernel on a GPU; ``tests/test_cupy_sources.py`` checks the CUDA bodies on the CPU):

* Z[l] := W[l] A[l-1] + b[l];  A[l] = g(Z[l]): one cuBLAS product and one kernel;
* dZ[l] = dA[l] * g'(Z[l]): one kernel;
* dW[l] = dZ[l] A[l-1]^T and db[l] = sum_i dZ[l], written by cuBLAS and a reduction straight
  into the flat gradient buffer (``out=``);
* softmax + cross-entropy + dZ[L]: one kernel (a thread per column) and one sum;
* D[l] = [U < T] / keep: the counter-based generator of :mod:`xpnet.core.random` in one kernel
  (no int64 temporaries);
* SGD, momentum, Nesterov and Adam: one kernel over the whole flat parameter buffer
  (registered as the optimizers' fast paths, :mod:`xpnet.core.optim`).

Matrix products go through ``ndarray.dot`` (CuPy's C-level ``_routines_linalg.dot``, the
cuBLAS call ``@`` makes), never ``cupy.matmul``: that is a Python-level generalized ufunc
(``_GUFunc``) which on CuPy 13 (``xpnet[cuda12]`` allows it) parses its signature, moves axes,
allocates its result and, given ``out=``, copies into it, on every call; CuPy 14 added a fast
path in front of it. Five products a step on a small net made the fused step slower than the
portable one, which uses ``@``.

The bodies are in :mod:`xpnet.backends.cupy_sources`. An estimator runs them with
``kernels="fused"`` (``CupyBackend.fused_kernels``) until a GPU run has verified them; the CuPy
backend's default is the portable kernels.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

import cupy
import numpy as np

from xpnet.backends.cupy_sources import ELEMENTWISE, HIDDEN, column_source, kernel_name
from xpnet.core.kernels import Kernels
from xpnet.core.optim.base import fast_path
from xpnet.core.random import dropout_threshold

__all__ = ["CupyKernels", "cupy_adam", "cupy_momentum", "cupy_sgd"]


@lru_cache(maxsize=None)
def _kernel(key: str) -> Any:
    """``ELEMENTWISE[key]`` as a ``cupy.ElementwiseKernel`` (compiled by NVRTC on first use)."""
    in_params, out_params, body = ELEMENTWISE[key]
    return cupy.ElementwiseKernel(in_params, out_params, body, kernel_name(key))


@lru_cache(maxsize=None)
def _column(key: str, T: str) -> Any:
    """``COLUMN[key]`` for ``T`` as a ``cupy.RawKernel`` (one thread per column)."""
    return cupy.RawKernel(column_source(key, T), f"{kernel_name(key)}_{T}")


class CupyKernels(Kernels):
    """The portable kernels with fused CUDA elementwise kernels and ``out=`` buffers."""

    # ------------------------------------------------------------------ forward
    def linear_activation(self, W: Any, A_prev: Any, b: Any, g: str, *, xp: Any, ws: Any,
                          l: int) -> tuple[Any, Any]:
        if g not in HIDDEN:  # softmax: a reduction over each column; the portable path
            return super().linear_activation(W, A_prev, b, g, xp=xp, ws=ws, l=l)
        Z = W.dot(A_prev)
        A = cupy.empty_like(Z)
        _kernel(f"bias_{g}")(b, Z, A)
        return Z, A

    def dropout_mask(self, keep: float, keys: tuple[int, int], shape: tuple[int, int],
                     dtype: Any, *, xp: Any, device: Any, ws: Any, l: int) -> Any:
        threshold = dropout_threshold(keep)
        if shape[0] * shape[1] > (1 << 32):  # the 32-bit counter; the portable path refuses
            return super().dropout_mask(keep, keys, shape, dtype, xp=xp, device=device,
                                        ws=ws, l=l)
        with cupy.cuda.Device(device):
            D = cupy.empty(shape, dtype=dtype)
            _kernel("dropout_mask")(keys[0], keys[1], threshold, 1.0 / keep, D)
        return D

    # ------------------------------------------------------------------ output layer
    def output_loss_delta(self, ZL: Any, Y: Any, g: str, *, xp: Any, ws: Any
                          ) -> tuple[Any, Any]:
        if g != "softmax":
            return super().output_loss_delta(ZL, Y, g, xp=xp, ws=ws)
        # S = sum_j S_j and dZ[L] from one kernel (a thread per column) and one sum
        n, m = ZL.shape
        T = "float" if ZL.dtype == cupy.float32 else "double"
        isz = ZL.dtype.itemsize
        dZ = cupy.empty((n, m), dtype=ZL.dtype)
        S = cupy.empty(m, dtype=ZL.dtype)
        threads = 128
        _column("softmax_xent", T)(
            ((m + threads - 1) // threads,), (threads,),
            (ZL, ZL.strides[0] // isz, ZL.strides[1] // isz, Y, Y.strides[0] // isz,
             Y.strides[1] // isz, dZ, S, np.int32(n), np.int32(m), np.float64(1.0 / m)))
        return cupy.sum(S), dZ

    def output_delta(self, AL: Any, Y: Any, *, xp: Any, ws: Any) -> Any:
        dZ = cupy.empty_like(AL)
        _kernel("output_delta")(AL, Y, 1.0 / AL.shape[1], dZ)
        return dZ

    def accumulate(self, total: Any, x: Any, scale: float, *, xp: Any) -> Any:
        if scale == 1.0:  # the loss sum: one launch, not two
            return x if total is None else total + x
        return super().accumulate(total, x, scale, xp=xp)

    # ------------------------------------------------------------------ backward
    def weight_grads(self, dZ: Any, A_prev: Any, *, xp: Any, ws: Any, l: int,
                     out: tuple[Any, Any] = (None, None)) -> tuple[Any, Any]:
        dW = out[0]
        if dW is None or dW.flags.c_contiguous:  # dot writes only into C order
            dW = dZ.dot(A_prev.T, dW)
        else:
            dW[...] = dZ.dot(A_prev.T)
        return dW, dZ.sum(axis=1, keepdims=True, out=out[1])

    def activation_backward(self, dA: Any, Z: Any, A: Any, g: str, *, xp: Any, ws: Any,
                            l: int) -> Any:
        if g not in HIDDEN:
            return super().activation_backward(dA, Z, A, g, xp=xp, ws=ws, l=l)
        dZ = cupy.empty_like(dA)
        _kernel(f"backward_{g}")(dA, Z, A, dZ)
        return dZ


# ---------------------------------------------------------------------- optimizer fast paths
# One kernel over the whole flat buffer. lr / lr_t: a Python float, or a 0-d device array
# (the training loop's step table), which the kernel reads as a broadcast T operand.
@fast_path("sgd", CupyKernels)
def cupy_sgd(params: Sequence[Any], grads: Sequence[Any], lr: Any, *, xp: Any,
             kernels: Any = None) -> None:
    """p := p - lr g."""
    for p, g in zip(params, grads):
        _kernel("sgd")(g, _scalar(lr, p), p)


@fast_path("momentum", CupyKernels)
def cupy_momentum(params: Sequence[Any], grads: Sequence[Any], velocities: Sequence[Any],
                  lr: Any, mu: float, nesterov: bool, *, xp: Any, kernels: Any = None) -> None:
    """v := mu v - lr g;  p := p + v  (Nesterov: p := p + mu v - lr g)."""
    k = _kernel("nesterov" if nesterov else "momentum")
    for p, g, v in zip(params, grads, velocities):
        k(g, _scalar(lr, p), mu, p, v)


@fast_path("adam", CupyKernels)
def cupy_adam(params: Sequence[Any], grads: Sequence[Any], ms: Sequence[Any],
              vs: Sequence[Any], lr_t: Any, beta_1: float, beta_2: float, epsilon: float, *,
              xp: Any, kernels: Any = None) -> None:
    """m := b1 m + (1-b1) g;  v := b2 v + (1-b2) g^2;  p := p - lr_t m / (sqrt(v) + eps)."""
    k = _kernel("adam")
    for p, g, m, v in zip(params, grads, ms, vs):
        k(g, _scalar(lr_t, p), beta_1, beta_2, epsilon, p, m, v)


def _scalar(x: Any, like: Any) -> Any:
    """A host float as ``like``'s dtype (what the kernel's ``T lr`` operand rounds it to), or
    the 0-d device array as it is."""
    return like.dtype.type(x) if isinstance(x, float) else x
