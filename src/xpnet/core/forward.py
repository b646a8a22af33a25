"""Z[l] = W[l] A[l-1] + b[l],  A[l] = g[l](Z[l]),  l = 1..L,  A[0] = X (examples in columns)."""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence

from xpnet.backends import fastpath
from xpnet.core.activations import ACTIVATIONS
from xpnet.core.checks import check_network

__all__ = ["Cache", "forward", "linear_activation_forward", "linear_forward"]


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
            D: Mapping[int, Any] | None = None, xp: Any = None) -> tuple[Any, Cache]:
    """A[L] from X through layers l = 1..L; returns (A[L], cache).

    Parameters
    ----------
    X : (n[0], m) array.
    W, b : {l: (n[l], n[l-1])}, {l: (n[l], 1)} for l = 1..L.
    g : the L activation names, g[l-1] for layer l (hidden ones, then the output's).
    D : optional inverted-dropout masks {l: (n[l], m)} for hidden layers, already scaled by
        1/keep_prob: A[l] = g(Z[l]) * D[l].
    xp : the namespace. Left out, it is resolved from the arrays and the network is checked
        (shapes, dtypes, activations, one backend); passing it skips those checks.
    """
    if xp is None:
        xp = check_network(X, W, b, g)
    fast = fastpath.for_namespace(xp)  # NumPy: the same equations with fewer passes
    if fast is not None:
        return fast.forward(X, W, b, g, D)
    L = len(W)
    Z: dict[int, Any] = {}
    A: dict[int, Any] = {0: X}
    G = A if D is None else dict(A)
    for l in range(1, L + 1):
        Z[l] = W[l] @ A[l - 1] + b[l]
        G[l] = ACTIVATIONS[g[l - 1]](Z[l], xp=xp)
        A[l] = G[l] if D is None or l not in D else G[l] * D[l]
    return A[L], Cache(Z, A, G)
