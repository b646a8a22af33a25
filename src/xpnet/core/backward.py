"""Backpropagation, from the output layer L down to layer 1.

    dZ[L]   = A[L] - Y                         (fused output/cost pairs, see output_delta)
    dW[l]   = (1/m) dZ[l] A[l-1]^T
    db[l]   = (1/m) sum_i dZ[l]
    dA[l-1] = W[l]^T dZ[l]
    dZ[l-1] = dA[l-1] * g'(Z[l-1])
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from xpnet.backends import fastpath
from xpnet.core.activations import activation_backward
from xpnet.core.forward import Cache
from xpnet.core.losses import OUTPUT_COST, cost_derivative

__all__ = ["backward", "backward_from_dA", "backward_unfused", "linear_backward", "output_delta"]


def output_delta(AL: Any, Y: Any, *, xp: Any = None) -> Any:
    """dZ[L] = A[L] - Y.

    Valid only for the matching output/cost pairs: softmax + cross-entropy, sigmoid + binary
    cross-entropy, identity + squared error (each cost's derivative cancels g'(Z[L])).
    """
    return AL - Y


def linear_backward(dZ: Any, A_prev: Any, W: Any, *, xp: Any = None,
                    need_dA_prev: bool = True) -> tuple[Any, Any, Any]:
    """dW[l] = (1/m) dZ[l] A[l-1]^T;  db[l] = (1/m) sum_i dZ[l];  dA[l-1] = W[l]^T dZ[l].

    Returns (dA[l-1], dW[l], db[l]); dA[l-1] is None when ``need_dA_prev`` is false (layer 1).
    """
    if xp is None:
        from xpnet.backends import namespace

        xp = namespace(dZ, A_prev, W)
    m = dZ.shape[1]
    dW = (dZ @ A_prev.T) * (1.0 / m)
    db = xp.sum(dZ, axis=1, keepdims=True) * (1.0 / m)
    dA_prev = W.T @ dZ if need_dA_prev else None
    return dA_prev, dW, db


def _backward_layers(dZL: Any, W: Mapping[int, Any], cache: Cache, g: Sequence[str],
                     D: Mapping[int, Any] | None, xp: Any) -> tuple[dict[int, Any], dict[int, Any]]:
    L = len(W)
    dW: dict[int, Any] = {}
    db: dict[int, Any] = {}
    dZ = dZL
    for l in range(L, 0, -1):
        dA_prev, dW[l], db[l] = linear_backward(dZ, cache.A[l - 1], W[l], xp=xp,
                                                need_dA_prev=l > 1)
        if l > 1:
            if D is not None and (l - 1) in D:
                dA_prev = dA_prev * D[l - 1]
            dZ = activation_backward(dA_prev, cache.Z[l - 1], cache.G[l - 1], g[l - 2], xp=xp)
    return dW, db


def backward(Y: Any, W: Mapping[int, Any], cache: Cache, g: Sequence[str], *,
             D: Mapping[int, Any] | None = None, xp: Any) -> tuple[dict[int, Any], dict[int, Any]]:
    """dW[l], db[l] for l = 1..L, starting from the fused dZ[L] = A[L] - Y.

    ``g[-1]`` must be an output activation with a matching cost (softmax, sigmoid, identity).
    """
    fast = fastpath.for_namespace(xp)  # NumPy: the same equations with fewer passes
    if fast is not None:
        return fast.backward(Y, W, cache, g, D)
    L = len(W)
    return _backward_layers(output_delta(cache.A[L], Y), W, cache, g, D, xp)


def backward_from_dA(dAL: Any, W: Mapping[int, Any], cache: Cache, g: Sequence[str], *,
                     D: Mapping[int, Any] | None = None, xp: Any) -> tuple[dict[int, Any], dict[int, Any]]:
    """The general chain rule from dA[L] = m dJ/dA[L]: dZ[L] = dA[L] * g'(Z[L]), then as ``backward``."""
    L = len(W)
    dZL = activation_backward(dAL, cache.Z[L], cache.G[L], g[L - 1], xp=xp)
    return _backward_layers(dZL, W, cache, g, D, xp)


def backward_unfused(Y: Any, W: Mapping[int, Any], cache: Cache, g: Sequence[str], *,
                     xp: Any) -> tuple[dict[int, Any], dict[int, Any]]:
    """``backward_from_dA`` with dA[L] from the cost matching g[L] (proves the fused shortcut)."""
    L = len(W)
    dAL = cost_derivative(cache.A[L], Y, OUTPUT_COST[g[L - 1]], xp=xp)
    return backward_from_dA(dAL, W, cache, g, xp=xp)
