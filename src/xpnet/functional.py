"""The functional API: the seeds' equations on W, b dicts, dispatched to the arrays' backend.

Each function resolves the namespace ``xp`` and the backend's kernels once from its array
arguments (checking that they form a network when ``xp`` is left out) and calls the one
sequence of equations in :mod:`xpnet.core`. This is the layer that knows which library an
array belongs to; :mod:`xpnet.core` never asks.
"""

from __future__ import annotations

from typing import Any, Mapping, MutableMapping, Sequence

import numpy as np

from xpnet.backends import Backend, backend_of, get_backend, namespace
from xpnet.core import backward as _backward
from xpnet.core import checks, initializers
from xpnet.core import forward as _forward
from xpnet.core import step as _step
from xpnet.core.forward import Cache
from xpnet.core.random import dropout_keys

__all__ = ["backward", "backward_from_dA", "backward_unfused", "check_network", "check_targets",
           "compute_cost", "draw_parameters", "dropout_masks", "forward",
           "gradient_descent_step", "initialize_parameters", "kernels_of"]


def kernels_of(x: Any) -> Any:
    """The kernels of the backend array ``x`` lives on."""
    return backend_of(x).kernels


def check_network(X: Any, W: Mapping[int, Any], b: Mapping[int, Any], g: Sequence[str]) -> Any:
    """The namespace of X, W, b after checking that they form an L-layer network of one
    backend and device; else ValueError/TypeError naming the layer and shapes."""
    checks.check_layers(W, b, g)
    L = len(W)
    arrays = [X, *(W[l] for l in range(1, L + 1)), *(b[l] for l in range(1, L + 1))]
    try:
        xp = namespace(*arrays)
    except TypeError as exc:
        kinds = sorted({f"{type(a).__module__}.{type(a).__name__}" for a in arrays})
        raise TypeError(f"X, W and b must all be arrays of one backend; got {', '.join(kinds)}. "
                        "Move them with xpnet.get_backend(name).asarray(...)") from exc
    return checks.check_network(X, W, b, g, xp=xp)


def check_targets(Y: Any, AL: Any) -> None:
    """Y must be on A[L]'s backend and device, with its shape (n[L], m) and dtype."""
    try:
        namespace(Y, AL)
    except TypeError:
        raise TypeError(f"Y must be an array of the same backend as X, W and b; got "
                        f"{type(Y).__module__}.{type(Y).__name__} but A[L] is "
                        f"{type(AL).__module__}.{type(AL).__name__}. Move it with "
                        "xpnet.get_backend(name).asarray(Y)") from None
    checks.check_targets(Y, AL)


def forward(X: Any, W: Mapping[int, Any], b: Mapping[int, Any], g: Sequence[str], *,
            D: Mapping[int, Any] | None = None, xp: Any = None) -> tuple[Any, Cache]:
    """A[L] from X through layers l = 1..L: Z[l] = W[l] A[l-1] + b[l], A[l] = g(Z[l]).

    X : (n[0], m).  W, b : {l: (n[l], n[l-1])}, {l: (n[l], 1)}.  g : the L activation names.
    D : inverted-dropout masks {l: (n[l], m)} (1/keep already in them).
    xp : the namespace. Left out, it is resolved from the arrays and the network is checked.
    Returns (A[L], cache) as fresh arrays.
    """
    if xp is None:
        xp = check_network(X, W, b, g)
    return _forward.forward(X, W, b, g, xp=xp, D=D, kernels=kernels_of(X))


def backward(Y: Any, W: Mapping[int, Any], cache: Cache, g: Sequence[str], *,
             D: Mapping[int, Any] | None = None, xp: Any) -> tuple[dict[int, Any], dict[int, Any]]:
    """dW[l], db[l] for l = 1..L from the fused dZ[L] = (1/m)(A[L] - Y) (fresh arrays).

    ``g[-1]`` must be an output activation with a matching cost (softmax, sigmoid, identity).
    """
    return _backward.backward(Y, W, cache, g, xp=xp, D=D, kernels=kernels_of(Y))


backward_from_dA = _backward.backward_from_dA
backward_unfused = _backward.backward_unfused


def compute_cost(ZL: Any, Y: Any, output: str, *, xp: Any) -> Any:
    """J(Z[L], Y) for the cost matching the output activation (0-d array on the device)."""
    return _step.compute_cost(ZL, Y, output, xp=xp, kernels=kernels_of(ZL))


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
    K = kernels_of(X)
    ws = K.shared_workspace((X.shape[1], str(X.dtype), tuple(g),
                             tuple(tuple(W[l].shape) for l in range(1, len(W) + 1))))
    return _step.gradient_descent_step(X, Y, W, b, g, alpha, xp=xp, kernels=K, ws=ws,
                                       check=check_targets if checked else None)


# --------------------------------------------------------------------------- host draws
def _generator(rng: Any) -> Any:
    """A seed: a new ``numpy.random.Generator``; a Generator, RandomState (or any object
    with their ``uniform``/``standard_normal``): itself."""
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    return rng


def draw_parameters(layer_dims: Sequence[int], init: str | Sequence[str] = "he",
                    rng: int | np.random.Generator | None = 0
                    ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Host float64 draws of W[l] (n[l], n[l-1]) and zero b[l] (n[l], 1), l = 1..L.

    ``init`` is one scheme or one per layer (``"he"`` / ``"xavier"``); ``rng`` a seed or Generator.
    """
    return initializers.draw_parameters(layer_dims, init, _generator(rng), xp=np)


def initialize_parameters(layer_dims: Sequence[int], *, init: str | Sequence[str] = "he",
                          rng: int | np.random.Generator | None = 0, dtype: Any = "float32",
                          backend: str | Backend = "numpy", device: Any = None
                          ) -> tuple[dict[int, Any], dict[int, Any]]:
    """W[l], b[l] for l = 1..L on ``backend``/``device`` in ``dtype`` (float32 or float64)."""
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64; got {dtype!r}")
    be = get_backend(backend, device)
    W64, b64 = draw_parameters(layer_dims, init, rng)
    W = {l: be.asarray(w.astype(dtype)) for l, w in W64.items()}
    b = {l: be.asarray(v.astype(dtype)) for l, v in b64.items()}
    return W, b


def dropout_masks(layer_dims: Sequence[int], m: int, rate: float | Sequence[float],
                  rng: np.random.Generator, backend: str | Backend = "numpy",
                  dtype: Any = "float32") -> dict[int, Any]:
    """D[l] = [U[l] < 1 - rate[l]] / (1 - rate[l]) of shape (n[l], m) for the hidden layers
    l = 1..L-1, drawn on the device by the counter-based generator (:mod:`xpnet.core.random`)
    from one seed taken from ``rng``: identical masks on every backend, float32 and float64.

    ``rate``: the drop probability, one for all hidden layers or one per hidden layer; a layer
    with rate 0 gets no mask.
    """
    dims = list(layer_dims)
    L = len(dims) - 1
    if L < 1 or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1
                    for n in dims):
        raise ValueError(f"layer_dims must be positive integers [n0, ..., nL]; got {dims}")
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"m (the number of examples) must be an integer >= 1; got {m!r}")
    if isinstance(rate, (int, float, np.floating)) and not isinstance(rate, bool):
        rates = [float(rate)] * (L - 1)
    else:
        rates = [float(r) for r in rate]
        if len(rates) != L - 1:
            raise ValueError(f"rate lists {len(rates)} dropout rates; the network has {L - 1} "
                             f"hidden layers (layer_dims {dims})")
    for l, r in enumerate(rates, start=1):
        if not 0.0 <= r < 1.0:
            raise ValueError(f"dropout rate for hidden layer {l} must be in [0, 1); got {r!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)); "
                        f"got {type(rng).__name__}")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = np.dtype(str(dtype).rsplit(".", 1)[-1])
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dropout masks must be float32 or float64; got {dtype!r}")
    be = backend if isinstance(backend, Backend) else get_backend(backend)
    seed = int(rng.integers(0, 2 ** 63))
    K = be.kernels
    return {l: K.dropout_mask(1.0 - rates[l - 1], dropout_keys(seed, 0, l), (dims[l], int(m)),
                              be.dtype(dt.name), xp=be.xp, device=be.device, ws=None, l=l)
            for l in range(1, L) if rates[l - 1] > 0.0}
