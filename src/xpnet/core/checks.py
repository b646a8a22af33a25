"""Checks of the functional API's inputs: one backend, float dtypes, shapes that chain.

Each error names the layer and the shapes, and says what was expected.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import array_api_compat

from xpnet.core.activations import check_activation
from xpnet.backends import namespace

__all__ = ["check_network", "check_targets"]


def _dtype_name(x: Any) -> str:
    return str(x.dtype).rsplit(".", 1)[-1]


def check_network(X: Any, W: Mapping[int, Any], b: Mapping[int, Any], g: Sequence[str]) -> Any:
    """The namespace of X, W, b after checking that they form an L-layer network; else ValueError/TypeError."""
    L = len(W)
    if L == 0:
        raise ValueError("W is empty: a network needs at least one layer W[1]")
    if sorted(W) != list(range(1, L + 1)) or sorted(b) != list(range(1, L + 1)):
        raise ValueError(f"W and b must be keyed by layer l = 1..L; got W keys {sorted(W)}, "
                         f"b keys {sorted(b)}")
    if isinstance(g, str) or len(g) != L:
        raise ValueError(f"g must list one activation per layer: {L} for L = {L} layers "
                         f"(hidden ones, then the output's); got {g!r}")
    for l in range(1, L):
        check_activation(g[l - 1], layer=l)
    check_activation(g[L - 1], output=True, layer=L)
    arrays = [X, *(W[l] for l in range(1, L + 1)), *(b[l] for l in range(1, L + 1))]
    try:
        xp = namespace(*arrays)
    except TypeError as exc:
        kinds = sorted({f"{type(a).__module__}.{type(a).__name__}" for a in arrays})
        raise TypeError(f"X, W and b must all be arrays of one backend; got {', '.join(kinds)}. "
                        "Move them with xpnet.get_backend(name).asarray(...)") from exc
    floating = (xp.float32, xp.float64)
    if X.dtype not in floating:
        raise TypeError(f"X must be float32 or float64; got {_dtype_name(X)}. "
                        "Convert it first, e.g. X.astype('float32')")
    if getattr(X, "ndim", len(X.shape)) != 2:
        raise ValueError(f"X must be 2-D with examples in columns, shape (n[0], m); got shape "
                         f"{tuple(X.shape)}")
    n_prev = X.shape[0]
    device = array_api_compat.device(X)
    for l in range(1, L + 1):
        for name, arr in (("W", W[l]), ("b", b[l])):
            if arr.dtype != X.dtype:
                raise TypeError(f"{name}[{l}] is {_dtype_name(arr)} but X is {_dtype_name(X)}; "
                                "xpnet never upcasts silently: use one dtype throughout")
            if array_api_compat.device(arr) != device:
                raise ValueError(f"{name}[{l}] is on device {array_api_compat.device(arr)} but X "
                                 f"is on {device}; move them to one device with "
                                 "xpnet.get_backend(name, device).asarray(...)")
        n = W[l].shape[0]
        if tuple(W[l].shape) != (n, n_prev):
            raise ValueError(f"layer {l}: W[{l}] has shape {tuple(W[l].shape)} but A[{l - 1}] has "
                             f"{n_prev} rows, so W[{l}] must be (n[{l}], {n_prev})")
        if tuple(b[l].shape) != (n, 1):
            raise ValueError(f"layer {l}: b[{l}] has shape {tuple(b[l].shape)}; expected "
                             f"({n}, 1) to match W[{l}] {tuple(W[l].shape)}")
        n_prev = n
    return xp


def check_targets(Y: Any, AL: Any) -> None:
    """Y must be on A[L]'s backend and device, with its shape (n[L], m) and dtype."""
    try:
        namespace(Y, AL)
    except TypeError:
        raise TypeError(f"Y must be an array of the same backend as X, W and b; got "
                        f"{type(Y).__module__}.{type(Y).__name__} but A[L] is "
                        f"{type(AL).__module__}.{type(AL).__name__}. Move it with "
                        "xpnet.get_backend(name).asarray(Y)") from None
    if array_api_compat.device(Y) != array_api_compat.device(AL):
        raise ValueError(f"Y is on device {array_api_compat.device(Y)} but A[L] is on "
                         f"{array_api_compat.device(AL)}; move Y to the network's device")
    if tuple(Y.shape) != tuple(AL.shape):
        raise ValueError(f"Y has shape {tuple(Y.shape)} but A[L] has {tuple(AL.shape)}; Y must be "
                         "(n[L], m) with examples in columns (one-hot for softmax)")
    if Y.dtype != AL.dtype:
        raise TypeError(f"Y is {_dtype_name(Y)} but A[L] is {_dtype_name(AL)}; use one dtype")
