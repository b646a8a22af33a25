"""Backpropagation, from the output layer L down to layer 1.

    dZ[L]   = (1/m) (A[L] - Y)                 (fused output/cost pairs; 1/m applied once here)
    dW[l]   = dZ[l] A[l-1]^T
    db[l]   = sum_i dZ[l]
    dA[l-1] = W[l]^T dZ[l]
    dZ[l-1] = dA[l-1] * g'(Z[l-1])             (* D[l-1] first, with dropout)

Carrying the 1/m in dZ[L] is the seeds' dW[l] = (1/m) dZ[l] A[l-1]^T rearranged: every later
dZ[l] is linear in dZ[L], so one scaling of the smallest array serves all layers.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from xpnet.core import dispatch
from xpnet.core.activations import activation_backward
from xpnet.core.forward import PORTABLE, Cache
from xpnet.core.kernels import Kernels
from xpnet.core.losses import OUTPUT_COST, cost_derivative

__all__ = ["backpropagate", "backward", "backward_from_dA", "backward_unfused",
           "linear_backward", "output_delta"]


def output_delta(AL: Any, Y: Any, *, xp: Any = None) -> Any:
    """dZ[L] = A[L] - Y.

    Valid only for the matching output/cost pairs: softmax + cross-entropy, sigmoid + binary
    cross-entropy, identity + squared error (each cost's derivative cancels g'(Z[L])).
    """
    return AL - Y


def linear_backward(dZ: Any, A_prev: Any, W: Any, *, xp: Any = None,
                    need_dA_prev: bool = True) -> tuple[Any, Any, Any]:
    """dW[l] = (1/m) dZ[l] A[l-1]^T;  db[l] = (1/m) sum_i dZ[l];  dA[l-1] = W[l]^T dZ[l].

    The seeds' single-layer step with an unscaled dZ[l]. Returns (dA[l-1], dW[l], db[l]);
    dA[l-1] is None when ``need_dA_prev`` is false (layer 1).
    """
    if xp is None:
        xp, _ = dispatch.resolve(dZ, A_prev, W)
    m = dZ.shape[1]
    dW = (dZ @ A_prev.T) * (1.0 / m)
    db = xp.sum(dZ, axis=1, keepdims=True) * (1.0 / m)
    dA_prev = W.T @ dZ if need_dA_prev else None
    return dA_prev, dW, db


def backpropagate(dZL: Any, W: Mapping[int, Any], cache: Cache, g: Sequence[str], *, xp: Any,
                  D: Mapping[int, Any] | None = None, kernels: Kernels = PORTABLE,
                  ws: Any = None, dW: dict[int, Any] | None = None,
                  db: dict[int, Any] | None = None) -> tuple[dict[int, Any], dict[int, Any]]:
    """dW[l], db[l] for l = L..1 from dZ[L] (which carries the 1/m).

    ``dW``, ``db``: where to write the gradients (views of a flat gradient buffer, say);
    left out, fresh arrays (or the workspace's) are returned.
    """
    K = kernels
    L = len(W)
    dW = {} if dW is None else dW
    db = {} if db is None else db
    dZ = dZL
    for l in range(L, 0, -1):
        dW[l], db[l] = K.weight_grads(dZ, cache.A[l - 1], xp=xp, ws=ws, l=l,
                                      out=(dW.get(l), db.get(l)))
        if l == 1:
            break
        dA = K.back_propagate(W[l], dZ, xp=xp, ws=ws, l=l)
        if D is not None and (l - 1) in D:
            dA = K.mask_gradient(dA, D[l - 1], xp=xp, ws=ws, l=l - 1)
        dZ = K.activation_backward(dA, cache.Z[l - 1], cache.G[l - 1], g[l - 2], xp=xp, ws=ws,
                                   l=l - 1)
    return dW, db


def backward(Y: Any, W: Mapping[int, Any], cache: Cache, g: Sequence[str], *, xp: Any,
             D: Mapping[int, Any] | None = None, kernels: Kernels = PORTABLE,
             ws: Any = None) -> tuple[dict[int, Any], dict[int, Any]]:
    """dW[l], db[l] for l = 1..L, starting from the fused dZ[L] = (1/m)(A[L] - Y).

    ``g[-1]`` must be an output activation with a matching cost (softmax, sigmoid, identity).
    """
    L = len(W)
    dZL = kernels.output_delta(cache.A[L], Y, xp=xp, ws=ws)
    return backpropagate(dZL, W, cache, g, xp=xp, D=D, kernels=kernels, ws=ws)


def backward_from_dA(dAL: Any, W: Mapping[int, Any], cache: Cache, g: Sequence[str], *,
                     xp: Any, D: Mapping[int, Any] | None = None
                     ) -> tuple[dict[int, Any], dict[int, Any]]:
    """The general chain rule from dA[L] = m dJ/dA[L]: dZ[L] = (1/m) dA[L] * g'(Z[L]), then as
    ``backward``."""
    L = len(W)
    m = cache.A[L].shape[1]
    dZL = activation_backward(dAL, cache.Z[L], cache.G[L], g[L - 1], xp=xp) * (1.0 / m)
    return backpropagate(dZL, W, cache, g, xp=xp, D=D)


def backward_unfused(Y: Any, W: Mapping[int, Any], cache: Cache, g: Sequence[str], *,
                     xp: Any) -> tuple[dict[int, Any], dict[int, Any]]:
    """``backward_from_dA`` with dA[L] from the cost matching g[L] (proves the fused shortcut)."""
    L = len(W)
    dAL = cost_derivative(cache.A[L], Y, OUTPUT_COST[g[L - 1]], xp=xp)
    return backward_from_dA(dAL, W, cache, g, xp=xp)
