"""Checks of the functional API's inputs: float dtypes, one device, shapes that chain.

Each error names the layer and the shapes, and says what was expected. That the arrays belong
to one library is the dispatcher's question (:func:`xpnet.functional.check_network` asks it
first); devices are compared through the standard's ``x.device``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from xpnet.core.activations import check_activation

__all__ = ["check_layers", "check_network", "check_targets"]


def _dtype_name(x: Any) -> str:
    return str(x.dtype).rsplit(".", 1)[-1]


def check_layers(W: Mapping[int, Any], b: Mapping[int, Any], g: Sequence[str]) -> None:
    """W, b keyed by l = 1..L with one valid activation per layer; else ValueError."""
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


def check_network(X: Any, W: Mapping[int, Any], b: Mapping[int, Any], g: Sequence[str], *,
                  xp: Any) -> Any:
    """``xp`` after checking that X, W, b (arrays of namespace ``xp``) form an L-layer network:
    float dtypes, one device, chaining shapes; else ValueError/TypeError."""
    check_layers(W, b, g)
    L = len(W)
    floating = (xp.float32, xp.float64)
    if X.dtype not in floating:
        raise TypeError(f"X must be float32 or float64; got {_dtype_name(X)}. "
                        "Convert it first, e.g. X.astype('float32')")
    if getattr(X, "ndim", len(X.shape)) != 2:
        raise ValueError(f"X must be 2-D with examples in columns, shape (n[0], m); got shape "
                         f"{tuple(X.shape)}")
    n_prev = X.shape[0]
    device = X.device
    for l in range(1, L + 1):
        for name, arr in (("W", W[l]), ("b", b[l])):
            if arr.dtype != X.dtype:
                raise TypeError(f"{name}[{l}] is {_dtype_name(arr)} but X is {_dtype_name(X)}; "
                                "xpnet never upcasts silently: use one dtype throughout")
            if arr.device != device:
                raise ValueError(f"{name}[{l}] is on device {arr.device} but X "
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
    """Y (already known to be of A[L]'s backend) must be on its device, with its shape
    (n[L], m) and dtype."""
    if Y.device != AL.device:
        raise ValueError(f"Y is on device {Y.device} but A[L] is on "
                         f"{AL.device}; move Y to the network's device")
    if tuple(Y.shape) != tuple(AL.shape):
        raise ValueError(f"Y has shape {tuple(Y.shape)} but A[L] has {tuple(AL.shape)}; Y must be "
                         "(n[L], m) with examples in columns (one-hot for softmax)")
    if Y.dtype != AL.dtype:
        raise TypeError(f"Y is {_dtype_name(Y)} but A[L] is {_dtype_name(AL)}; use one dtype")
