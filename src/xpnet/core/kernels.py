"""The portable kernels: one layer's equation, or a named fusion of adjacent ones; never a loop over l.

The loops over l (:mod:`xpnet.core.forward`, :mod:`xpnet.core.backward`, :mod:`xpnet.core.step`)
and the gradient transforms (:mod:`xpnet.core.transforms`) call these methods and nothing else
that touches arrays; the optimizers' updates live with each optimizer (:mod:`xpnet.core.optim`),
where a backend registers its fast paths. A backend may subclass :class:`Kernels` and override
any method with a faster equivalent (fused operations, ``out=`` buffers, its own memory
layout), but it never changes the algebra: ``tests/test_kernels.py`` finds every override and
compares it with this reference (float64 1e-12, float32 1e-5).

Conventions
-----------
* Arrays are (n[l], m): examples in columns. ``xp`` is the namespace, resolved once per call.
* ``ws`` is the backend's workspace (:meth:`Kernels.workspace`) or None; ``l`` the layer number.
  The portable kernels ignore both. With a workspace, results may live in it until the next
  call with the same ``ws``.
* ``out``: where the caller wants a result (a view of a flat gradient buffer, say); the
  kernel writes it there and returns it. The portable kernels copy into it (``out[...] = r``).
* dZ[L] carries the 1/m (:meth:`output_delta`), once, so dW[l] = dZ[l] A[l-1]^T and
  db[l] = sum_i dZ[l] need no further scaling: every later dZ[l] is linear in dZ[L].
"""

from __future__ import annotations

from typing import Any, Sequence

from xpnet.core.activations import ACTIVATIONS, activation_backward
from xpnet.core.losses import COSTS, OUTPUT_COST, PER_EXAMPLE
from xpnet.core.random import dropout_mask

__all__ = ["Kernels"]


def _into(out: Any, value: Any) -> Any:
    """``value`` written into ``out`` (when given), else ``value`` itself."""
    if out is None:
        return value
    out[...] = value
    return out


class Kernels:
    """The reference kernels, in standard array-API operations only."""

    # ------------------------------------------------------------------ bookkeeping
    def workspace(self) -> Any:
        """Scratch space a training loop holds for one fit (None: allocate freely)."""
        return None

    def shared_workspace(self, key: Any) -> Any:
        """A workspace kept between calls for one shape ``key`` (the functional step's)."""
        return None

    def take_rows(self, X: Any, idx: Any, *, xp: Any, ws: Any, role: str) -> Any:
        """X[idx, :]: the rows of X in the order ``idx`` (a per-epoch permutation)."""
        return xp.take(X, idx, axis=0)

    # ------------------------------------------------------------------ forward
    def linear(self, W: Any, A_prev: Any, b: Any, *, xp: Any, ws: Any, l: int) -> Any:
        """Z[l] = W[l] A[l-1] + b[l]."""
        return W @ A_prev + b

    def linear_activation(self, W: Any, A_prev: Any, b: Any, g: str, *, xp: Any, ws: Any,
                          l: int) -> tuple[Any, Any]:
        """Z[l] = W[l] A[l-1] + b[l];  A[l] = g(Z[l]).  Returns (Z[l], A[l])."""
        Z = self.linear(W, A_prev, b, xp=xp, ws=ws, l=l)
        return Z, ACTIVATIONS[g](Z, xp=xp)

    def dropout_mask(self, keep: float, keys: tuple[int, int], shape: tuple[int, int],
                     dtype: Any, *, xp: Any, device: Any, ws: Any, l: int) -> Any:
        """D[l] = [U < round(keep 2^24)] / keep, U the counter-based 24-bit uniforms of ``keys``."""
        return dropout_mask(keep, keys[0], keys[1], shape, dtype, xp=xp, device=device)

    def apply_mask(self, G: Any, D: Any, *, xp: Any, ws: Any, l: int) -> Any:
        """A[l] = g(Z[l]) * D[l]  (inverted dropout; D already holds 1/keep)."""
        return G * D

    def mask_gradient(self, dA: Any, D: Any, *, xp: Any, ws: Any, l: int) -> Any:
        """dA[l] := dA[l] * D[l]  (backpropagating through A[l] = g(Z[l]) * D[l])."""
        return dA * D

    # ------------------------------------------------------------------ output layer
    def cost(self, ZL: Any, Y: Any, g: str, *, xp: Any) -> Any:
        """J = (1/m) sum_i L(y(i), a[L](i)), from the logits Z[L] (a 0-d array)."""
        return COSTS[OUTPUT_COST[g]](ZL, Y, xp=xp)

    def output_delta(self, AL: Any, Y: Any, *, xp: Any, ws: Any) -> Any:
        """dZ[L] = (1/m) (A[L] - Y)  (softmax + cross-entropy, sigmoid + binary cross-entropy,
        identity + squared error: each cost's derivative cancels g'(Z[L]))."""
        m = AL.shape[1]
        return (AL - Y) * (1.0 / m)

    def output_loss_delta(self, ZL: Any, Y: Any, g: str, *, xp: Any, ws: Any
                          ) -> tuple[Any, Any]:
        """S = sum_i L(y(i), a[L](i)) = m J;  dZ[L] = (1/m) (g(Z[L]) - Y).  The training step's
        fusion: A[L] is needed only inside it."""
        m = ZL.shape[1]
        AL = ACTIVATIONS[g](ZL, xp=xp)
        return self.cost(ZL, Y, g, xp=xp) * m, self.output_delta(AL, Y, xp=xp, ws=ws)

    def weighted_loss_delta(self, ZL: Any, Y: Any, g: str, s: Any, *, xp: Any, ws: Any
                            ) -> tuple[Any, Any]:
        """S = m sum_i s_i L(y(i), a[L](i));  dZ[L] = (g(Z[L]) - Y) s   (s = w / sum_i w_i, a
        (1, m) row of sample weights: with s = 1/m this is :meth:`output_loss_delta`)."""
        m = ZL.shape[1]
        loss = PER_EXAMPLE[OUTPUT_COST[g]](ZL, Y, xp=xp)
        return xp.sum(loss * s) * m, (ACTIVATIONS[g](ZL, xp=xp) - Y) * s

    # ------------------------------------------------------------------ backward
    def weight_grads(self, dZ: Any, A_prev: Any, *, xp: Any, ws: Any, l: int,
                     out: tuple[Any, Any] = (None, None)) -> tuple[Any, Any]:
        """dW[l] = dZ[l] A[l-1]^T;  db[l] = sum_i dZ[l]  (the 1/m is in dZ[L])."""
        dW = dZ @ xp.permute_dims(A_prev, (1, 0))
        db = xp.sum(dZ, axis=1, keepdims=True)
        return _into(out[0], dW), _into(out[1], db)

    def back_propagate(self, W: Any, dZ: Any, *, xp: Any, ws: Any, l: int) -> Any:
        """dA[l-1] = W[l]^T dZ[l]."""
        return xp.permute_dims(W, (1, 0)) @ dZ

    def activation_backward(self, dA: Any, Z: Any, A: Any, g: str, *, xp: Any, ws: Any,
                            l: int) -> Any:
        """dZ[l] = dA[l] * g'(Z[l])."""
        return activation_backward(dA, Z, A, g, xp=xp)

    # ------------------------------------------------------------------ whole buffers
    def sum_of_squares(self, arrays: Sequence[Any], *, xp: Any) -> Any:
        """sum_k ||P_k||_F^2 over the arrays (a 0-d array)."""
        total = None
        for P in arrays:
            s = xp.sum(P * P)
            total = s if total is None else total + s
        return total

    def accumulate(self, total: Any, x: Any, scale: float, *, xp: Any) -> Any:
        """total + scale x  (0-d arrays on the device; ``total`` None: scale x)."""
        return x * scale if total is None else total + x * scale

    def axpy(self, ys: Sequence[Any], xs: Sequence[Any], a: float, *, xp: Any) -> None:
        """y := y + a x for each pair, in place (weight decay: dW += (alpha/m) W)."""
        for y, x in zip(ys, xs):
            y += a * x

    def all_finite(self, arrays: Sequence[Any], *, xp: Any) -> Any:
        """1 if every entry of every array is finite, else 0 (a 0-d bool array, no host read)."""
        flag = None
        for P in arrays:
            f = xp.all(xp.isfinite(P))
            flag = f if flag is None else xp.logical_and(flag, f)
        return flag

    def clip_by_global_norm(self, grads: Sequence[Any], max_norm: float, *, xp: Any) -> Any:
        """g := g min(1, max_norm / (||g||_2 + 1e-6)) over all arrays together, in place;
        returns ||g||_2 before clipping (0-d array).  ||g|| = c ||g / c||, c = max|g|, so a
        float32 sum of squares cannot overflow and zero the gradients."""
        c = xp.max(xp.stack([xp.max(xp.abs(G)) for G in grads]))
        c = xp.where(c > 0, c, xp.ones_like(c))
        total = None
        for G in grads:
            H = G / c
            s = xp.sum(H * H)
            total = s if total is None else total + s
        norm = c * xp.sqrt(total)
        scale = xp.minimum(max_norm / (norm + 1e-6), 1.0)
        for G in grads:
            G *= scale
        return norm
