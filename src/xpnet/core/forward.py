"""Z[l] = W[l] A[l-1] + b[l],  A[l] = g[l](Z[l]),  l = 1..L,  A[0] = X (examples in columns)."""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence

from xpnet.core.activations import ACTIVATIONS
from xpnet.core.kernels import Kernels

__all__ = ["Cache", "PORTABLE", "forward", "linear_activation_forward", "linear_forward"]

PORTABLE = Kernels()


class Cache(NamedTuple):
    """What backpropagation needs: Z[l] and A[l] (A[0] = X), keyed by layer number.

    ``G[l] = g(Z[l])`` before dropout; it is ``A`` itself when no dropout was applied.
    """

    Z: dict[int, Any]
    A: dict[int, Any]
    G: dict[int, Any]


def linear_forward(A_prev: Any, W: Any, b: Any, *, xp: Any = None) -> Any:
    """Z[l] = W[l] A[l-1] + b[l]."""
    return W @ A_prev + b


def linear_activation_forward(A_prev: Any, W: Any, b: Any, g: str, *, xp: Any) -> tuple[Any, Any]:
    """Z[l] = W[l] A[l-1] + b[l];  A[l] = g(Z[l]).  Returns (Z[l], A[l])."""
    Z = W @ A_prev + b
    return Z, ACTIVATIONS[g](Z, xp=xp)


def forward(X: Any, W: Mapping[int, Any], b: Mapping[int, Any], g: Sequence[str], *,
            xp: Any, D: Mapping[int, Any] | None = None, kernels: Kernels = PORTABLE,
            ws: Any = None, logits: bool = False) -> tuple[Any, Cache]:
    """A[L] from X through layers l = 1..L; returns (A[L], cache).

    X : (n[0], m).  W, b : {l: (n[l], n[l-1])}, {l: (n[l], 1)}.  g : the L activation names.
    D : inverted-dropout masks {l: (n[l], m)} for hidden layers (1/keep already in them):
        A[l] = g(Z[l]) * D[l].
    kernels, ws : the backend's kernels and workspace (results may live in ``ws``).
    logits : stop at Z[L] (returned in A[L]'s place, ``cache.A[L]`` unset): the training step
        fuses g[L] into the cost (:meth:`Kernels.output_loss_delta`).
    """
    K = kernels
    L = len(W)
    Z: dict[int, Any] = {}
    A: dict[int, Any] = {0: X}
    G = A if D is None else dict(A)
    for l in range(1, L + 1):
        if l == L and logits:
            Z[L] = K.linear(W[L], A[L - 1], b[L], xp=xp, ws=ws, l=L)
            return Z[L], Cache(Z, A, G)
        Z[l], G[l] = K.linear_activation(W[l], A[l - 1], b[l], g[l - 1], xp=xp, ws=ws, l=l)
        A[l] = G[l] if D is None or l not in D else K.apply_mask(G[l], D[l], xp=xp, ws=ws, l=l)
    return A[L], Cache(Z, A, G)
