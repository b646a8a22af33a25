"""NumPy's kernels: the same equations as :class:`xpnet.core.kernels.Kernels`, fewer passes over memory.

What differs from the portable kernels, and why it is faster on a CPU:

* samples-major storage: hidden Z[l], A[l] and dA[l] are (n[l], m) arrays stored as the
  transposes of C-ordered (m, n[l]) ones, so every product is one BLAS call on contiguous
  operands (Z[l]^T = A[l-1]^T W[l]^T, dA[l-1]^T = dZ[l]^T W[l]) and a batch ``X[a:b].T`` of a
  (n_samples, n[0]) matrix needs no copy. Z[L] of a softmax (and the logits of the fused loss)
  stays C-ordered: its softmax and cost reduce over n[L] contiguous rows;
* in place where the array is our own temporary: Z[l] += b[l]; the softmax; dZ = dA * (Z > 0)
  with ``out=`` (multiplying by a mask: ``where`` is several times slower on random signs);
* a workspace (:meth:`NumpyKernels.workspace`): Z, A, dZ, dA, the permuted data and the
  scratch of the update live in arrays reused step after step. Fresh large temporaries cost
  more than the arithmetic: glibc returns freed memory to the system and takes it back, and
  every new page faults (40% of a step at batch 512). Results written into ``ws`` are valid
  until the next call with the same ``ws``;
* dropout masks from native uint32 arithmetic (:mod:`xpnet.backends.numpy_random`), bit for
  bit the portable generator's.

The optimizer updates stay the portable ones: they equal scikit-learn's bit for bit.
``tests/test_kernels.py`` compares every method overridden here with the portable kernel.
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np

from xpnet.backends.numpy_random import numpy_dropout_mask
from xpnet.core.activations import ACTIVATIONS
from xpnet.core.kernels import Kernels
from xpnet.core.losses import log_loss_bounds
from xpnet.core.optim.base import fast_path

__all__ = ["MAX_SHARED_WORKSPACES", "NumpyKernels", "Workspace", "numpy_sgd"]

MAX_SHARED_WORKSPACES = 4


class Workspace(dict):
    """Scratch arrays reused from step to step, one per (role, shape, dtype): a loop whose last
    batch is smaller keeps a second set for it rather than reallocating twice an epoch."""

    def out(self, key: Any, shape: tuple[int, ...], dtype: Any) -> Any:
        k = (key, shape, np.dtype(dtype).str)
        buf = self.get(k)
        if buf is None:
            buf = self[k] = np.empty(shape, dtype)
        return buf

    @property
    def nbytes(self) -> int:
        """Bytes held by the scratch arrays."""
        return sum(buf.nbytes for buf in self.values())


class _Fresh:
    """Stands in for a workspace where none is given: every ``out`` is a new array, laid out as
    the workspace's would be (so results are bit for bit those of a run with a workspace)."""

    @staticmethod
    def out(key: Any, shape: tuple[int, ...], dtype: Any) -> Any:
        return np.empty(shape, dtype)


_FRESH = _Fresh()


def _out(ws: Any) -> Any:
    return (_FRESH if ws is None else ws).out


class NumpyKernels(Kernels):
    """The portable kernels with NumPy's ``out=``, in-place ufuncs and samples-major layout."""

    def __init__(self) -> None:
        self._shared: dict[tuple, Workspace] = {}

    # ------------------------------------------------------------------ bookkeeping
    def workspace(self) -> Workspace:
        return Workspace()

    def shared_workspace(self, key: Any) -> Workspace:
        """The workspace for this thread and shape ``key``; the ``MAX_SHARED_WORKSPACES`` most
        recently used are kept (free them with :meth:`clear_shared_workspaces`)."""
        k = (threading.get_ident(), key)
        ws = self._shared.pop(k, None)
        if ws is None:
            ws = Workspace()
            while len(self._shared) >= MAX_SHARED_WORKSPACES:
                self._shared.pop(next(iter(self._shared)))
        self._shared[k] = ws  # most recently used last
        return ws

    def clear_shared_workspaces(self) -> None:
        """Free the scratch arrays :meth:`shared_workspace` keeps between calls."""
        self._shared.clear()

    def take_rows(self, X: Any, idx: Any, *, xp: Any, ws: Any, role: str) -> Any:
        buf = _out(ws)(("rows", role), (int(idx.shape[0]), int(X.shape[1])), X.dtype)
        return np.take(X, idx, axis=0, out=buf, mode="wrap")  # "raise" copies via a buffer

    # ------------------------------------------------------------------ forward
    def linear(self, W: Any, A_prev: Any, b: Any, *, xp: Any, ws: Any, l: int,
               samples_major: bool = False) -> Any:
        n, m = W.shape[0], A_prev.shape[1]
        if samples_major:
            Z = np.matmul(A_prev.T, W.T, out=_out(ws)(("Z", l), (m, n), A_prev.dtype)).T
        else:
            Z = np.matmul(W, A_prev, out=_out(ws)(("Z", l), (n, m), A_prev.dtype))
        Z += b
        return Z

    def linear_activation(self, W: Any, A_prev: Any, b: Any, g: str, *, xp: Any, ws: Any,
                          l: int) -> tuple[Any, Any]:
        n, m, dt = W.shape[0], A_prev.shape[1], A_prev.dtype
        if g == "softmax":
            Z = self.linear(W, A_prev, b, xp=xp, ws=ws, l=l)
            G = np.subtract(Z, Z.max(axis=0, keepdims=True), out=_out(ws)(("G", l), (n, m), dt))
            np.exp(G, out=G)
            G /= G.sum(axis=0, keepdims=True)
            return Z, G
        Z = self.linear(W, A_prev, b, xp=xp, ws=ws, l=l, samples_major=True)
        if g == "relu":
            return Z, np.maximum(Z, 0.0, out=(_out(ws)(("G", l), (m, n), dt).T))
        return Z, ACTIVATIONS[g](Z, xp=np)

    def dropout_mask(self, keep: float, keys: tuple[int, int], shape: tuple[int, int],
                     dtype: Any, *, xp: Any, device: Any, ws: Any, l: int) -> Any:
        return numpy_dropout_mask(keep, keys[0], keys[1], shape, dtype)

    def apply_mask(self, G: Any, D: Any, *, xp: Any, ws: Any, l: int) -> Any:
        # g(Z[l]) * D[l] lands in C order (D's, as NumPy lays out the product)
        same = D.dtype == G.dtype and D.shape == G.shape and D.flags.c_contiguous
        return np.multiply(G, D, out=_out(ws)(("A", l), D.shape, G.dtype) if same else None)

    def mask_gradient(self, dA: Any, D: Any, *, xp: Any, ws: Any, l: int) -> Any:
        dA *= D  # dA is this step's temporary (back_propagate's output)
        return dA

    # ------------------------------------------------------------------ output layer
    def output_delta(self, AL: Any, Y: Any, *, xp: Any, ws: Any) -> Any:
        dZ = np.subtract(AL, Y, out=_out(ws)("dZ", AL.shape, AL.dtype))
        dZ *= 1.0 / AL.shape[1]
        return dZ

    def output_loss_delta(self, ZL: Any, Y: Any, g: str, *, xp: Any, ws: Any
                          ) -> tuple[Any, Any]:
        if g != "softmax":
            return super().output_loss_delta(ZL, Y, g, xp=xp, ws=ws)
        out, dt = _out(ws), ZL.dtype
        # S = sum_i clip(lse(Z(i)) - Y(i).Z(i)) (one-hot Y; clipped as scikit-learn clips p:
        # losses.log_loss_bounds);  A = exp(Z - max) / sum exp(Z - max)
        Zmax = ZL.max(axis=0, keepdims=True)
        E = np.subtract(ZL, Zmax, out=out("E", ZL.shape, dt))
        np.exp(E, out=E)
        s = E.sum(axis=0, keepdims=True)
        lse = np.log(s)
        lse += Zmax
        lse -= np.multiply(Y, ZL, out=out("YZ", ZL.shape, dt)).sum(axis=0, keepdims=True)
        S = np.clip(lse, *log_loss_bounds(dt, xp=np)).sum()
        E /= s
        return np.asarray(S), self.output_delta(E, Y, xp=xp, ws=ws)

    # ------------------------------------------------------------------ backward
    def weight_grads(self, dZ: Any, A_prev: Any, *, xp: Any, ws: Any, l: int,
                     out: tuple[Any, Any] = (None, None)) -> tuple[Any, Any]:
        n, dt = dZ.shape[0], dZ.dtype
        dW_out = out[0] if out[0] is not None else _out(ws)(("dW", l), (n, A_prev.shape[0]), dt)
        db_out = out[1] if out[1] is not None else _out(ws)(("db", l), (n, 1), dt)
        dW = np.matmul(dZ, A_prev.T, out=dW_out)
        db = dZ.sum(axis=1, keepdims=True, out=db_out)
        return dW, db

    def back_propagate(self, W: Any, dZ: Any, *, xp: Any, ws: Any, l: int) -> Any:
        m, n_prev = dZ.shape[1], W.shape[1]
        return np.matmul(dZ.T, W, out=_out(ws)(("dA", l - 1), (m, n_prev), dZ.dtype)).T

    def activation_backward(self, dA: Any, Z: Any, A: Any, g: str, *, xp: Any, ws: Any,
                            l: int) -> Any:
        if g != "relu":
            return super().activation_backward(dA, Z, A, g, xp=xp, ws=ws, l=l)
        m, n = Z.shape[1], Z.shape[0]
        mask = np.greater(Z, 0.0, out=(_out(ws)(("mask", l), (m, n), bool).T))
        return np.multiply(dA, mask, out=dA)  # dA is this step's temporary

    # ------------------------------------------------------------------ whole buffers
    def sum_of_squares(self, arrays: Sequence[Any], *, xp: Any) -> Any:
        if len(arrays) == 1 and arrays[0].ndim == 1:
            P = arrays[0]
            return np.asarray(np.dot(P, P))
        return super().sum_of_squares(arrays, xp=xp)

    def axpy(self, ys: Sequence[Any], xs: Sequence[Any], a: float, *, xp: Any) -> None:
        for y, x in zip(ys, xs):
            y += np.multiply(x, a, out=self.scratch(x))

    def scratch(self, like: Any) -> Any:
        """A scratch array of ``like``'s shape and dtype, kept per thread and shape."""
        return self.shared_workspace("scratch").out("scratch", like.shape, like.dtype)


@fast_path("sgd", NumpyKernels)
def numpy_sgd(params: Sequence[Any], grads: Sequence[Any], lr: Any, *, xp: Any,
              kernels: NumpyKernels) -> None:
    """p := p - lr g, with the product in a reused scratch array (bit for bit ``p -= lr * g``)."""
    for p, g in zip(params, grads):
        p -= np.multiply(g, lr, out=kernels.scratch(g))
