"""W[l] ~ N(0, 2 / n[l-1]) (He) or U(-r, r), r = sqrt(6 / (n[l-1] + n[l])) (Xavier/Glorot); b[l] = 0.

``"glorot"`` is scikit-learn's MLP initialisation, draw for draw: per layer, W[l]^T
(n[l-1], n[l]) then b[l] (n[l],) from U(-r, r), r = sqrt(6 / (n[l-1] + n[l]))
(``"glorot_logistic"``: sqrt(2 / ...), its choice for logistic activations), so the same
seeded ``RandomState`` gives scikit-learn's initial coefs_ and intercepts_.

The array API standard has no random numbers, so the draws come from a seeded host generator
(a ``numpy.random.Generator`` or ``RandomState``, passed in), in float64; the caller casts and
moves them: for one seed every backend and device starts from bit-identical parameters.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

__all__ = ["INITIALIZERS", "default_init", "draw_parameters"]

INITIALIZERS = ("he", "xavier", "glorot", "glorot_logistic")


def default_init(activation: str) -> str:
    """He for relu-like hidden layers, Xavier/Glorot for tanh, sigmoid and identity."""
    return "he" if activation in ("relu", "leaky_relu") else "xavier"


def _check_dims(layer_dims: Sequence[int]) -> list[int]:
    dims = list(layer_dims)
    if len(dims) < 2:
        raise ValueError(f"layer_dims needs at least n[0] and n[L]; got {dims}")
    for l, n in enumerate(dims):
        if isinstance(n, bool) or not hasattr(n, "__index__") or n < 1:
            raise ValueError(f"layer size n[{l}] must be a positive integer; got {n!r} in {dims}")
    return [int(n) for n in dims]


def draw_parameters(layer_dims: Sequence[int], init: str | Sequence[str], gen: Any, *,
                    xp: Any) -> tuple[dict[int, Any], dict[int, Any]]:
    """Host float64 draws of W[l] (n[l], n[l-1]) and b[l] (n[l], 1) from ``gen``, l = 1..L:
    b[l] = 0 except for the glorot schemes, which draw it too.

    ``init`` is one scheme or one per layer (:data:`INITIALIZERS`); ``xp`` the host
    namespace the generator's arrays belong to (for the zeros).
    """
    dims = _check_dims(layer_dims)
    L = len(dims) - 1
    schemes = [init] * L if isinstance(init, str) else list(init)
    if len(schemes) != L:
        raise ValueError(f"init lists {len(schemes)} schemes for {L} layers")
    W, b = {}, {}
    for l in range(1, L + 1):
        n_prev, n = dims[l - 1], dims[l]
        if schemes[l - 1] == "he":
            W[l] = gen.standard_normal((n, n_prev)) * math.sqrt(2.0 / n_prev)
        elif schemes[l - 1] == "xavier":
            r = math.sqrt(6.0 / (n_prev + n))
            W[l] = gen.uniform(-r, r, size=(n, n_prev))
        elif schemes[l - 1] in ("glorot", "glorot_logistic"):
            factor = 2.0 if schemes[l - 1] == "glorot_logistic" else 6.0
            r = math.sqrt(factor / (n_prev + n))
            W[l] = gen.uniform(-r, r, size=(n_prev, n)).T.copy()
            b[l] = gen.uniform(-r, r, size=n).reshape(n, 1)
            continue
        else:
            raise ValueError(f"unknown init {schemes[l - 1]!r} for layer {l}; expected one of "
                             f"{', '.join(INITIALIZERS)}")
        b[l] = xp.zeros((n, 1), dtype=xp.float64)
    return W, b
