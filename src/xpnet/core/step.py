"""One gradient-descent step: forward, cost, backward, update — the seeds' loop body, written once.

:func:`gradient_descent_step` is the seeds' step on dicts W, b; :func:`train_step` is the
training loop's, over flat buffers (:class:`xpnet.core.params.ParamBuffer`): the value and
gradient (:mod:`xpnet.core.objective`: forward, loss, backward, L2, dropout), the gradient
transforms (:mod:`xpnet.core.transforms`) and any optimizer's update (:mod:`xpnet.core.optim`).
"""

from __future__ import annotations

from typing import Any, Callable, MutableMapping, Sequence

from xpnet.core.backward import backward
from xpnet.core.forward import PORTABLE, forward
from xpnet.core.kernels import Kernels
from xpnet.core.objective import value_and_grad
from xpnet.core.params import ParamBuffer
from xpnet.core.transforms import clip_gradients
from xpnet.core.update import update_parameters

__all__ = ["compute_cost", "gradient_descent_step", "train_step"]


def compute_cost(ZL: Any, Y: Any, output: str, *, xp: Any, kernels: Kernels = PORTABLE) -> Any:
    """J(Z[L], Y) for the cost matching the output activation (0-d array on the device)."""
    return kernels.cost(ZL, Y, output, xp=xp)


def gradient_descent_step(X: Any, Y: Any, W: MutableMapping[int, Any],
                          b: MutableMapping[int, Any], g: Sequence[str], alpha: float, *,
                          xp: Any, kernels: Kernels = PORTABLE, ws: Any = None,
                          check: Callable[[Any, Any], None] | None = None) -> Any:
    """Forward, J, dW/db, then W[l] := W[l] - alpha dW[l] in place; returns J before the update.

    ``check(Y, A[L])`` (if given) runs before anything changes.
    """
    L = len(W)
    AL, cache = forward(X, W, b, g, xp=xp, kernels=kernels, ws=ws)
    if check is not None:
        check(Y, AL)
    J = kernels.cost(cache.Z[L], Y, g[L - 1], xp=xp)
    dW, db = backward(Y, W, cache, g, xp=xp, kernels=kernels, ws=ws)
    update_parameters(W, b, dW, db, alpha)
    return J


def train_step(X: Any, Y: Any, params: ParamBuffer, grads: ParamBuffer, g: Sequence[str],
               optimizer: Any, *, xp: Any, kernels: Kernels, scalars: Sequence[Any],
               ws: Any = None, l2: float = 0.0, clip_norm: float | None = None,
               **objective: Any) -> Any:
    """S = m J_B and one update: :func:`value_and_grad`, clipping, ``optimizer.update`` (all
    through ``kernels``, the update's fast path included).

    ``scalars``: the optimizer's numbers for this step (a row of its ``step_scalars``, as
    Python floats or 0-d device arrays); ``objective``: the rest of :func:`value_and_grad`'s
    keywords (loss scale, sample weights, dropout, data parallel). Returns S on the device;
    nothing is read back to the host.
    """
    S = value_and_grad(X, Y, params, grads, g, xp=xp, kernels=kernels, ws=ws, l2=l2,
                       **objective)
    if clip_norm is not None:
        clip_gradients(grads, clip_norm, xp=xp, kernels=kernels)
    optimizer.update(params, grads, scalars, kernels=kernels)
    return S
