"""One gradient-descent step: forward, cost, backward, update — the seeds' loop body."""

from __future__ import annotations

from typing import Any, MutableMapping, Sequence

from xpnet.backends import fastpath
from xpnet.core.backward import backward
from xpnet.core.checks import check_network, check_targets
from xpnet.core.forward import forward
from xpnet.core.losses import COSTS, OUTPUT_COST
from xpnet.core.update import update_parameters

__all__ = ["compute_cost", "gradient_descent_step"]


def compute_cost(ZL: Any, Y: Any, output: str, *, xp: Any) -> Any:
    """J(Z[L], Y) for the cost matching the output activation (0-d array on the device)."""
    return COSTS[OUTPUT_COST[output]](ZL, Y, xp=xp)


def gradient_descent_step(X: Any, Y: Any, W: MutableMapping[int, Any],
                          b: MutableMapping[int, Any], g: Sequence[str], alpha: float, *,
                          xp: Any = None) -> Any:
    """Forward, J, dW/db, then W[l] := W[l] - alpha dW[l] in place; returns J before the update.

    With ``xp`` left out, the inputs are checked first and nothing is changed if they are bad.
    """
    checked = xp is None
    if checked:
        xp = check_network(X, W, b, g)
        if float(alpha) <= 0:
            raise ValueError(f"alpha (the learning rate) must be > 0; got {alpha!r}")
    fast = fastpath.for_namespace(xp)  # NumPy: the same step, allocating nothing large
    if fast is not None:
        return fast.step(X, Y, W, b, g, alpha, check_targets if checked else None, xp)
    AL, cache = forward(X, W, b, g, xp=xp)
    if checked:
        check_targets(Y, AL)
    L = len(W)
    J = compute_cost(cache.Z[L], Y, g[L - 1], xp=xp)
    dW, db = backward(Y, W, cache, g, xp=xp)
    update_parameters(W, b, dW, db, alpha)
    return J
