"""J = (1/m) sum_i L(y(i), a[L](i)): the costs, each computed from the output logits Z[L].

Working from Z[L] rather than A[L] = g(Z[L]) keeps every cost finite: cross-entropy uses
log-sum-exp, binary cross-entropy uses log(1 + exp(-|Z|)), the Poisson deviance uses Z for
log A, so no log(0) is ever taken. The two log losses then clip as scikit-learn clips the
probabilities, p in [eps, 1 - eps] (eps of the dtype), i.e. -log p in [-log(1 - eps), -log eps]
(:func:`log_loss_bounds`): a saturated output costs -log eps, not more, and the loss curve of
a saturating epoch is scikit-learn's. (Only the reported cost: the gradients are A[L] - Y,
unclipped, as scikit-learn's.) Each cost is paired with the output activation for which
dZ[L] = A[L] - Y holds (:data:`OUTPUT_COST`).

``cost_derivative`` gives dA[L] = m dJ/dA[L] for the general, unfused chain rule.
"""

from __future__ import annotations

import math
from typing import Any, Callable

__all__ = [
    "COSTS",
    "COST_DERIVATIVES",
    "OUTPUT_COST",
    "PER_EXAMPLE",
    "binary_cross_entropy",
    "binary_cross_entropy_derivative",
    "cost_derivative",
    "cross_entropy",
    "cross_entropy_derivative",
    "log_loss_bounds",
    "poisson_deviance",
    "poisson_deviance_derivative",
    "squared_error",
    "squared_error_derivative",
]


def _logsumexp(Z: Any, *, xp: Any) -> Any:
    """log sum_k exp(Z_k) per column, shifted by the column max."""
    Zmax = xp.max(Z, axis=0, keepdims=True)
    return Zmax + xp.log(xp.sum(xp.exp(Z - Zmax), axis=0, keepdims=True))


def log_loss_bounds(dtype: Any, *, xp: Any) -> tuple[float, float]:
    """(-log(1 - eps), -log eps): -log p for p clipped to [eps, 1 - eps], eps of ``dtype``
    (scikit-learn's clipping of the probabilities in its log losses)."""
    eps = float(xp.finfo(dtype).eps)
    return -math.log1p(-eps), -math.log(eps)


def _clip(L: Any, bounds: tuple[float, float], *, xp: Any) -> Any:
    """min(max(L, lo), hi) elementwise, the bounds Python numbers (kernel arguments on every
    backend: xpnet's torch namespace keeps them scalars; xp.clip would sync on CuPy)."""
    return xp.minimum(xp.maximum(L, bounds[0]), bounds[1])


def cross_entropy(ZL: Any, Y: Any, *, xp: Any) -> Any:
    """J = -(1/m) sum_i sum_k Y_k(i) log clip(softmax(Z[L])_k(i)), the log of softmax as
    Z_k - lse(Z) (p clipped to [eps, 1 - eps])."""
    m = ZL.shape[1]
    return xp.sum(cross_entropy_per_example(ZL, Y, xp=xp)) / m


def binary_cross_entropy(ZL: Any, Y: Any, *, xp: Any) -> Any:
    """J = -(1/m) sum [Y log clip(A) + (1 - Y) log(1 - clip(A))], A = sigmoid(Z[L]), with
    -log A = softplus(-Z), -log(1 - A) = softplus(Z) (p clipped to [eps, 1 - eps])."""
    m = ZL.shape[1]
    return xp.sum(binary_cross_entropy_per_example(ZL, Y, xp=xp)) / m


def squared_error(ZL: Any, Y: Any, *, xp: Any) -> Any:
    """J = (1/2m) sum_i ||A(i) - Y(i)||^2 with A = Z[L] (identity output)."""
    m = ZL.shape[1]
    D = ZL - Y
    return xp.sum(D * D) / (2 * m)


def poisson_deviance(ZL: Any, Y: Any, *, xp: Any) -> Any:
    """J = (1/m) sum_i sum_k [y log(y / a) - y + a], a = exp(Z[L])  (half the Poisson deviance;
    scikit-learn's ``poisson_loss``), as (1/m) sum [y log y - y Z - y + exp(Z)], 0 log 0 = 0."""
    m = ZL.shape[1]
    ylogy = Y * xp.log(xp.where(Y > 0, Y, xp.ones_like(Y)))
    return xp.sum(ylogy - Y * ZL - Y + xp.exp(ZL)) / m


# --------------------------------------------------------------------------- per example
def cross_entropy_per_example(ZL: Any, Y: Any, *, xp: Any) -> Any:
    """L(i) = sum_k Y_k(i) clip(lse(Z(i)) - Z_k(i)), a (1, m) row: cross_entropy = mean of it."""
    nll = _clip(_logsumexp(ZL, xp=xp) - ZL, log_loss_bounds(ZL.dtype, xp=xp), xp=xp)
    return xp.sum(Y * nll, axis=0, keepdims=True)


def _softplus(Z: Any, *, xp: Any) -> Any:
    """log(1 + exp(Z)) = max(Z, 0) + log(1 + exp(-|Z|))."""
    return xp.maximum(Z, 0.0) + xp.log1p(xp.exp(-xp.abs(Z)))


def binary_cross_entropy_per_example(ZL: Any, Y: Any, *, xp: Any) -> Any:
    """L(i) = sum_k [Y clip(softplus(-Z)) + (1 - Y) clip(softplus(Z))], a (1, m) row."""
    bounds = log_loss_bounds(ZL.dtype, xp=xp)
    L = (Y * _clip(_softplus(-ZL, xp=xp), bounds, xp=xp)
         + (1.0 - Y) * _clip(_softplus(ZL, xp=xp), bounds, xp=xp))
    return xp.sum(L, axis=0, keepdims=True)


def squared_error_per_example(ZL: Any, Y: Any, *, xp: Any) -> Any:
    """L(i) = (1/2) ||Z(i) - Y(i)||^2, a (1, m) row."""
    D = ZL - Y
    return 0.5 * xp.sum(D * D, axis=0, keepdims=True)


def poisson_deviance_per_example(ZL: Any, Y: Any, *, xp: Any) -> Any:
    """L(i) = sum_k [y log y - y Z - y + exp(Z)], a (1, m) row."""
    ylogy = Y * xp.log(xp.where(Y > 0, Y, xp.ones_like(Y)))
    return xp.sum(ylogy - Y * ZL - Y + xp.exp(ZL), axis=0, keepdims=True)


def cross_entropy_derivative(AL: Any, Y: Any, *, xp: Any) -> Any:
    """dA[L] = -Y / A[L]  (with a softmax output; A[L] > 0 always)."""
    return -Y / AL


def binary_cross_entropy_derivative(AL: Any, Y: Any, *, xp: Any) -> Any:
    """dA[L] = -(Y / A[L] - (1 - Y) / (1 - A[L]))."""
    return -(Y / AL - (1.0 - Y) / (1.0 - AL))


def poisson_deviance_derivative(AL: Any, Y: Any, *, xp: Any) -> Any:
    """dA[L] = 1 - Y / A[L]  (A[L] = exp(Z[L]) > 0)."""
    return 1.0 - Y / AL


def squared_error_derivative(AL: Any, Y: Any, *, xp: Any) -> Any:
    """dA[L] = A[L] - Y."""
    return AL - Y


COSTS: dict[str, Callable[..., Any]] = {
    "cross_entropy": cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
    "squared_error": squared_error,
    "poisson_deviance": poisson_deviance,
}
#: L(y(i), a[L](i)) for each example, a (1, m) row (weighted costs: sum_i w_i L(i) / sum_i w_i).
PER_EXAMPLE: dict[str, Callable[..., Any]] = {
    "cross_entropy": cross_entropy_per_example,
    "binary_cross_entropy": binary_cross_entropy_per_example,
    "squared_error": squared_error_per_example,
    "poisson_deviance": poisson_deviance_per_example,
}
COST_DERIVATIVES: dict[str, Callable[..., Any]] = {
    "cross_entropy": cross_entropy_derivative,
    "binary_cross_entropy": binary_cross_entropy_derivative,
    "squared_error": squared_error_derivative,
    "poisson_deviance": poisson_deviance_derivative,
}
# The matching pairs for which dZ[L] = A[L] - Y.
OUTPUT_COST = {"softmax": "cross_entropy", "sigmoid": "binary_cross_entropy",
               "identity": "squared_error", "exp": "poisson_deviance"}


def cost_derivative(AL: Any, Y: Any, cost: str, *, xp: Any) -> Any:
    """dA[L] for the named cost (the unfused path; see ``backward.output_delta`` for the fused one)."""
    return COST_DERIVATIVES[cost](AL, Y, xp=xp)
