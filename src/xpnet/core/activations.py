"""A[l] = g(Z[l]), and g'(Z[l]) for backpropagation; each forward next to its derivative.

Every derivative takes ``Z`` and ``A = g(Z)`` (the forward's output, already cached), so
sigmoid and tanh need no second transcendental: sigmoid'(Z) = A (1 - A), tanh'(Z) = 1 - A^2.
Softmax has no elementwise derivative: its backward step is :func:`softmax_backward`.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = [
    "ACTIVATIONS",
    "DERIVATIVES",
    "HIDDEN_ACTIVATIONS",
    "OUTPUT_ACTIVATIONS",
    "LEAKY_RELU_SLOPE",
    "activation_backward",
    "check_activation",
    "exp",
    "exp_grad",
    "identity",
    "identity_grad",
    "leaky_relu",
    "leaky_relu_grad",
    "relu",
    "relu_grad",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "softmax_backward",
    "tanh",
    "tanh_grad",
]

LEAKY_RELU_SLOPE = 0.01


def relu(Z: Any, *, xp: Any) -> Any:
    """g(Z) = max(0, Z)."""
    return xp.maximum(Z, 0.0)


def relu_grad(Z: Any, A: Any, *, xp: Any) -> Any:
    """g'(Z) = 1 where Z > 0, else 0."""
    return xp.astype(Z > 0, Z.dtype)


def leaky_relu(Z: Any, *, xp: Any) -> Any:
    """g(Z) = Z where Z > 0, else 0.01 Z."""
    return xp.where(Z > 0, Z, LEAKY_RELU_SLOPE * Z)


def leaky_relu_grad(Z: Any, A: Any, *, xp: Any) -> Any:
    """g'(Z) = 1 where Z > 0, else 0.01."""
    return xp.where(Z > 0, xp.ones_like(Z), xp.full_like(Z, LEAKY_RELU_SLOPE))


def sigmoid(Z: Any, *, xp: Any) -> Any:
    """g(Z) = 1 / (1 + exp(-Z)), evaluated without overflow: E = exp(-|Z|) never exceeds 1."""
    E = xp.exp(-xp.abs(Z))
    return xp.where(Z >= 0, 1.0 / (1.0 + E), E / (1.0 + E))


def sigmoid_grad(Z: Any, A: Any, *, xp: Any) -> Any:
    """g'(Z) = g(Z) (1 - g(Z)) = A (1 - A)."""
    return A * (1.0 - A)


def tanh(Z: Any, *, xp: Any) -> Any:
    """g(Z) = tanh(Z)."""
    return xp.tanh(Z)


def tanh_grad(Z: Any, A: Any, *, xp: Any) -> Any:
    """g'(Z) = 1 - tanh(Z)^2 = 1 - A^2."""
    return 1.0 - A * A


def identity(Z: Any, *, xp: Any) -> Any:
    """g(Z) = Z."""
    return Z


def identity_grad(Z: Any, A: Any, *, xp: Any) -> Any:
    """g'(Z) = 1."""
    return xp.ones_like(Z)


def exp(Z: Any, *, xp: Any) -> Any:
    """g(Z) = exp(Z)  (the Poisson regressor's output: a positive mean, log link)."""
    return xp.exp(Z)


def exp_grad(Z: Any, A: Any, *, xp: Any) -> Any:
    """g'(Z) = exp(Z) = A."""
    return A


def softmax(Z: Any, *, xp: Any) -> Any:
    """g(Z)_k = exp(Z_k) / sum_j exp(Z_j) over each column; shifted by the column max, so
    large logits cannot overflow."""
    E = xp.exp(Z - xp.max(Z, axis=0, keepdims=True))
    return E / xp.sum(E, axis=0, keepdims=True)


def softmax_backward(dA: Any, Z: Any, A: Any, *, xp: Any) -> Any:
    """dZ = A * (dA - sum_k A_k dA_k): the softmax Jacobian applied to each column of dA."""
    return A * (dA - xp.sum(A * dA, axis=0, keepdims=True))


ACTIVATIONS: dict[str, Callable[..., Any]] = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "identity": identity,
    "softmax": softmax,
    "exp": exp,
}
DERIVATIVES: dict[str, Callable[..., Any]] = {
    "relu": relu_grad,
    "leaky_relu": leaky_relu_grad,
    "sigmoid": sigmoid_grad,
    "tanh": tanh_grad,
    "identity": identity_grad,
    "exp": exp_grad,
}
HIDDEN_ACTIVATIONS = ("relu", "leaky_relu", "sigmoid", "tanh", "identity")
OUTPUT_ACTIVATIONS = ("softmax", "sigmoid", "identity", "exp")


def check_activation(name: Any, *, output: bool = False, layer: int | None = None) -> str:
    """``name`` if it is a valid hidden (or output) activation, else a ``ValueError`` listing them."""
    valid = OUTPUT_ACTIVATIONS if output else HIDDEN_ACTIVATIONS
    if isinstance(name, str) and name in valid:
        return name
    where = f" for layer {layer}" if layer is not None else ""
    kind = "output" if output else "hidden"
    raise ValueError(f"unknown {kind} activation {name!r}{where}; expected one of "
                     f"{', '.join(valid)}")


def activation_backward(dA: Any, Z: Any, A: Any, name: str, *, xp: Any) -> Any:
    """dZ[l] = dA[l] * g'(Z[l])  (softmax: its Jacobian-vector product)."""
    if name == "relu":  # the common case, one pass: dA where Z > 0, else 0
        return xp.where(Z > 0, dA, 0.0)
    if name == "softmax":
        return softmax_backward(dA, Z, A, xp=xp)
    return dA * DERIVATIVES[name](Z, A, xp=xp)
