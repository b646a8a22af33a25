"""J = (1/m) sum_i L(y(i), a[L](i)): the costs, each computed from the output logits Z[L].

Working from Z[L] rather than A[L] = g(Z[L]) keeps every cost finite: cross-entropy uses
log-sum-exp, binary cross-entropy uses log(1 + exp(-|Z|)), the Poisson deviance uses Z for
log A, so no log(0) is ever taken and large logits give large but finite costs. Each cost is paired with the output activation for
which dZ[L] = A[L] - Y holds (:data:`OUTPUT_COST`).

``cost_derivative`` gives dA[L] = m dJ/dA[L] for the general, unfused chain rule.
"""

from __future__ import annotations

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
    "poisson_deviance",
    "poisson_deviance_derivative",
    "squared_error",
    "squared_error_derivative",
]


def _logsumexp(Z: Any, *, xp: Any) -> Any:
    """log sum_k exp(Z_k) per column, shifted by the column max."""
    Zmax = xp.max(Z, axis=0, keepdims=True)
    return Zmax + xp.log(xp.sum(xp.exp(Z - Zmax), axis=0, keepdims=True))


def cross_entropy(ZL: Any, Y: Any, *, xp: Any) -> Any:
    """J = -(1/m) sum_i sum_k Y_k(i) log softmax(Z[L])_k(i) = (1/m) sum_i [lse(Z(i)) - Y(i).Z(i)]."""
    m = ZL.shape[1]
    return (xp.sum(_logsumexp(ZL, xp=xp)) - xp.sum(Y * ZL)) / m


def binary_cross_entropy(ZL: Any, Y: Any, *, xp: Any) -> Any:
    """J = -(1/m) sum [Y log A + (1 - Y) log(1 - A)], A = sigmoid(Z[L]),
    as (1/m) sum [max(Z, 0) - Z Y + log(1 + exp(-|Z|))]."""
    m = ZL.shape[1]
    return xp.sum(xp.maximum(ZL, 0.0) - ZL * Y + xp.log1p(xp.exp(-xp.abs(ZL)))) / m


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
    """L(i) = lse(Z(i)) - Y(i).Z(i), a (1, m) row: cross_entropy = mean of it."""
    return _logsumexp(ZL, xp=xp) - xp.sum(Y * ZL, axis=0, keepdims=True)


def binary_cross_entropy_per_example(ZL: Any, Y: Any, *, xp: Any) -> Any:
    """L(i) = sum_k [max(Z, 0) - Z Y + log(1 + exp(-|Z|))], a (1, m) row."""
    return xp.sum(xp.maximum(ZL, 0.0) - ZL * Y + xp.log1p(xp.exp(-xp.abs(ZL))), axis=0,
                  keepdims=True)


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
