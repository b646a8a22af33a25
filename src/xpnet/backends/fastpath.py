"""NumPy fast path of ``forward``, ``backward`` and ``gradient_descent_step``: the same
equations, fewer passes over memory.

A delegation branch in front of the portable code (array-api-extra's pattern): ``forward``,
``backward`` and ``gradient_descent_step`` call :func:`for_namespace` once and, on NumPy, hand
over to the functions here.
The portable code stays the reference; ``tests/test_fastpath.py`` checks these against it
(float64, 1e-12). Set ``ENABLED = False`` (or use :func:`disabled`) to run the portable code.

What differs from the portable code, and why it is faster on a CPU:

* samples-major storage: hidden Z[l], A[l] and dZ[l] are (n[l], m) arrays stored as the
  transposes of C-ordered (m, n[l]) ones, so every product is one BLAS call on contiguous
  operands (Z[l]^T = A[l-1]^T W[l]^T, dW[l] = dZ[l] A[l-1]^T, dA[l-1]^T = dZ[l]^T W[l]), the
  BLAS kernels run faster on small batches, and a batch ``X[rows].T`` taken from a
  (n_samples, n[0]) matrix needs no copy (Z[L] stays C-ordered: its softmax and cost reduce
  over n[L] rows);
* in place where the array is our own temporary: Z[l] += b[l]; the softmax; dZ[l-1] =
  dA[l-1] * (Z[l-1] > 0) with ``out=`` (ReLU, multiplying by a mask: ``where`` is several
  times slower on random signs);
* 1/m applied once, to dZ[L], instead of to every dW[l] and db[l] (every later dZ[l] is
  linear in dZ[L]); dA[0] is never computed;
* a whole gradient-descent step (:func:`step`) allocates nothing large: its Z, A, dZ, dW are
  scratch arrays kept per thread and shape (at most ``MAX_WORKSPACES``; free them with
  :func:`clear_workspaces`), and alpha dW[l] overwrites dW[l];
* a training loop that drives :func:`forward` and :func:`backward` itself (``Trainer``) holds
  its own workspace for the length of a fit: ``ws = workspace()`` once, then
  ``forward(..., ws=ws)`` and ``backward(..., ws=ws)`` every step. Their results (A[L], the
  cache, dW, db) then live in ``ws`` and are overwritten by the next call with the same ``ws``:
  use them before that, copy what must be kept, and drop ``ws`` when the loop ends. Without
  ``ws`` (the default) every result is a fresh array, as in the portable code.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator, Mapping, MutableMapping, Sequence

import numpy as np

__all__ = ["ENABLED", "MAX_WORKSPACES", "backward", "clear_workspaces", "disabled",
           "for_namespace", "forward", "step", "workspace"]

ENABLED = True


def for_namespace(xp: Any) -> Any:
    """This module when ``xp`` is NumPy (plain or array-api-compat's) and the fast path is on."""
    if ENABLED and (xp is np or getattr(xp, "__name__", "") == "array_api_compat.numpy"):
        return _THIS
    return None


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the portable code inside the block (tests, benchmarks)."""
    global ENABLED
    before, ENABLED = ENABLED, False
    try:
        yield
    finally:
        ENABLED = before


class _Workspace(dict):
    """Scratch arrays reused from step to step, one per (role, shape, dtype): a loop whose last
    batch is smaller keeps a second set for it rather than reallocating twice an epoch."""

    def out(self, key: Any, shape: tuple[int, ...], dtype: Any) -> Any:
        k = (key, shape, dtype)
        buf = self.get(k)
        if buf is None:
            buf = self[k] = np.empty(shape, dtype)
        return buf

    @property
    def nbytes(self) -> int:
        """Bytes held by the scratch arrays."""
        return sum(buf.nbytes for buf in self.values())


def workspace() -> _Workspace:
    """A new, empty workspace for ``forward(..., ws=)`` and ``backward(..., ws=)``: their
    scratch arrays, created on first use and reused by every later call with the same shapes.

    Results returned while using it live in it and are overwritten by the next call: hold one
    per training loop (per thread), copy what must outlive a step, and drop it when done.
    """
    return _Workspace()


class _NoWorkspace:
    """Stands in for a workspace where results are returned: every ``out=`` is None (allocate)."""

    @staticmethod
    def out(key: Any, shape: tuple[int, ...], dtype: Any) -> None:
        return None


_FRESH = _NoWorkspace()
_WORKSPACES: dict[tuple, _Workspace] = {}
MAX_WORKSPACES = 4


def _workspace(X: Any, W: Mapping[int, Any], g: Sequence[str]) -> _Workspace:
    """The workspace for this thread, batch size, dtype, layer shapes and activations."""
    key = (threading.get_ident(), X.shape[1], X.dtype.str, tuple(g),
           tuple(W[l].shape for l in range(1, len(W) + 1)))
    ws = _WORKSPACES.pop(key, None)
    if ws is None:
        ws = _Workspace()
        while len(_WORKSPACES) >= MAX_WORKSPACES:
            _WORKSPACES.pop(next(iter(_WORKSPACES)))
    _WORKSPACES[key] = ws  # most recently used last
    return ws


def clear_workspaces() -> None:
    """Free the scratch arrays :func:`step` keeps between calls."""
    _WORKSPACES.clear()


def forward(X: Any, W: Mapping[int, Any], b: Mapping[int, Any], g: Sequence[str],
            D: Mapping[int, Any] | None = None, ws: _Workspace | None = None) -> tuple[Any, Any]:
    """Z[l] = W[l] A[l-1] + b[l],  A[l] = g(Z[l])  (A[l] *= D[l] with dropout); see ``forward``.

    ``ws`` (from :func:`workspace`): Z, A and A[L] are written into its scratch arrays, valid
    until the next call with ``ws``; None: fresh arrays.
    """
    from xpnet.core.activations import ACTIVATIONS
    from xpnet.core.forward import Cache

    matmul, maximum, out = np.matmul, np.maximum, (_FRESH if ws is None else ws).out
    L = len(W)
    m, dt = X.shape[1], X.dtype
    Z: dict[int, Any] = {}
    A: dict[int, Any] = {0: X}
    G = A if D is None else dict(A)
    prev = X
    for l in range(1, L + 1):
        n = W[l].shape[0]
        # hidden Z[l] (n[l], m) stored samples-major; Z[L] in C order, so that the softmax and
        # the cost reduce over contiguous rows rather than over n[L] values at a time
        if l < L:
            Zl = matmul(prev.T, W[l].T, out=out(("Z", l), (m, n), dt)).T
        else:
            Zl = matmul(W[l], prev, out=out(("Z", l), (n, m), dt))
        Zl += b[l]
        name = g[l - 1]
        if name == "relu":
            Gl = maximum(Zl, 0.0, out=None if l == L else _t(out(("G", l), (m, n), dt)))
        elif name == "softmax":
            Gl = np.subtract(Zl, Zl.max(axis=0, keepdims=True), out=out(("G", l), Zl.shape, dt))
            np.exp(Gl, out=Gl)
            Gl /= Gl.sum(axis=0, keepdims=True)
        else:
            Gl = ACTIVATIONS[name](Zl, xp=np)
        Z[l], G[l] = Zl, Gl
        if D is None or l not in D:
            A[l] = prev = Gl
        else:  # g(Z[l]) * D[l] lands in C order (D's, as NumPy lays out the product)
            Dl = D[l]
            same = Dl.dtype == dt and Dl.shape == (n, m) and Dl.flags.c_contiguous
            buf = out(("A", l), (n, m), dt) if same else None
            A[l] = prev = np.multiply(Gl, Dl, out=buf)
    return A[L], Cache(Z, A, G)


def _t(buf: Any) -> Any:
    return None if buf is None else buf.T


def backward(Y: Any, W: Mapping[int, Any], cache: Any, g: Sequence[str],
             D: Mapping[int, Any] | None = None, ws: _Workspace | None = None
             ) -> tuple[dict[int, Any], dict[int, Any]]:
    """dW[l], db[l] from the fused dZ[L] = A[L] - Y; see ``backward``.

    ``ws`` (from :func:`workspace`): dZ, dA, dW and db are written into its scratch arrays, valid
    until the next call with ``ws``; None: fresh arrays.
    """
    from xpnet.core.activations import activation_backward

    matmul, multiply, greater = np.matmul, np.multiply, np.greater
    out = (_FRESH if ws is None else ws).out
    L = len(W)
    A, Zc, G = cache.A, cache.Z, cache.G
    m, dt = A[L].shape[1], A[L].dtype
    dZ = np.subtract(A[L], Y, out=out("dZ", A[L].shape, dt))
    dZ *= 1.0 / m  # once: dW[l] = dZ[l] A[l-1]^T and db[l] = sum_i dZ[l] need no more
    dW: dict[int, Any] = {}
    db: dict[int, Any] = {}
    for l in range(L, 0, -1):
        dW[l] = matmul(dZ, A[l - 1].T, out=out(("dW", l), W[l].shape, dt))
        db[l] = dZ.sum(axis=1, keepdims=True, out=out(("db", l), (W[l].shape[0], 1), dt))
        if l == 1:
            break
        n_prev = W[l].shape[1]
        # dA[l-1] = W[l]^T dZ[l], stored samples-major
        dA = matmul(dZ.T, W[l], out=out(("dA", l - 1), (m, n_prev), dt)).T
        if D is not None and (l - 1) in D:
            dA *= D[l - 1]
        name = g[l - 2]
        if name == "relu":
            mask = greater(Zc[l - 1], 0.0, out=_t(out(("mask", l - 1), (m, n_prev), bool)))
            dZ = multiply(dA, mask, out=dA)
        else:
            dZ = activation_backward(dA, Zc[l - 1], G[l - 1], name, xp=np)
    return dW, db


def step(X: Any, Y: Any, W: MutableMapping[int, Any], b: MutableMapping[int, Any],
         g: Sequence[str], alpha: float, check: Callable[[Any, Any], None] | None = None,
         xp: Any = np) -> Any:
    """One gradient-descent step (see ``gradient_descent_step``) with no allocation in steady
    state: Z, A, dZ, dW live in a workspace kept for the next step of the same shape, and
    alpha dW[l] overwrites dW[l] (bit for bit ``backward`` then ``update_parameters``).

    Fresh large temporaries would cost more than the arithmetic: glibc returns freed memory
    to the system and takes it back, and every new page faults (40% of a step at batch 512).
    """
    from xpnet.core.step import compute_cost

    ws = _workspace(X, W, g)
    AL, cache = forward(X, W, b, g, None, ws)
    if check is not None:
        check(Y, AL)  # raises before anything changed
    L = len(W)
    J = compute_cost(cache.Z[L], Y, g[L - 1], xp=xp)
    dW, db = backward(Y, W, cache, g, None, ws)
    alpha = float(alpha)
    multiply, subtract = np.multiply, np.subtract
    for l in W:
        subtract(W[l], multiply(dW[l], alpha, out=dW[l]), out=W[l])
        subtract(b[l], multiply(db[l], alpha, out=db[l]), out=b[l])
    return J


import sys as _sys  # noqa: E402

_THIS = _sys.modules[__name__]
