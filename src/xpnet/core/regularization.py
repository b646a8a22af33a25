"""J += (alpha / 2m) sum_l ||W[l]||^2,  dW[l] += (alpha / m) W[l];  inverted dropout;
gradient clipping by global norm.

L2 follows scikit-learn's MLP: the penalty covers the weights W[l], not the biases b[l].
Dropout masks are drawn on the host from a ``numpy.random.Generator`` (the array API standard
has no random numbers), so one seed gives the very same masks on every backend and device.
Nothing here reads a value back to the host.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, MutableMapping, Sequence

import numpy as np

from xpnet.backends import Backend, get_backend

__all__ = ["add_weight_decay", "clip_by_global_norm", "dropout_masks", "l2_cost"]


def _check_alpha_m(alpha: Any, m: Any) -> tuple[float, int]:
    if isinstance(alpha, (bool, str)) or not hasattr(alpha, "__float__") \
            or not float(alpha) >= 0 or not math.isfinite(float(alpha)):
        raise ValueError(f"alpha (the L2 penalty) must be a finite number >= 0; got {alpha!r}")
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"m (the number of examples) must be an integer >= 1; got {m!r}")
    return float(alpha), int(m)


def l2_cost(W: Mapping[int, Any], alpha: float, m: int, *, xp: Any) -> Any:
    """J_L2 = (alpha / 2m) sum_l ||W[l]||_F^2   (0-d array on the device; scikit-learn's term)."""
    alpha, m = _check_alpha_m(alpha, m)
    total = None
    for l in W:
        s = xp.sum(W[l] * W[l])
        total = s if total is None else total + s
    if total is None:
        raise ValueError("W is empty: l2_cost needs at least one weight matrix W[1]")
    return (0.5 * alpha) * total / m


def add_weight_decay(dW: MutableMapping[int, Any], W: Mapping[int, Any], alpha: float,
                     m: int) -> None:
    """dW[l] := dW[l] + (alpha / m) W[l], for every l in dW, in place (biases are not decayed)."""
    alpha, m = _check_alpha_m(alpha, m)
    if alpha == 0.0:
        return
    c = alpha / m
    for l in dW:
        dW[l] += c * W[l]


def _np_dtype(dtype: Any) -> np.dtype:
    """NumPy's dtype for ``"float32"``, ``np.float64``, ``torch.float32``, ``xp.float32`` ..."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = np.dtype(str(dtype).rsplit(".", 1)[-1])
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dropout masks must be float32 or float64; got {dtype!r}")
    return dt


def dropout_masks(layer_dims: Sequence[int], m: int, rate: float | Sequence[float],
                  rng: np.random.Generator, backend: str | Backend = "numpy",
                  dtype: Any = "float32") -> dict[int, Any]:
    """D[l] = (U[l] < 1 - rate[l]) / (1 - rate[l]), U[l] ~ U[0, 1) of shape (n[l], m), for the
    hidden layers l = 1..L-1 (inverted dropout: A[l] = g(Z[l]) * D[l] keeps E[A[l]] unchanged).

    ``rate`` is the drop probability, one for all hidden layers or one per hidden layer; a layer
    with rate 0 gets no mask and draws nothing. The uniforms are drawn in float64 on the host
    from ``rng`` in layer order, then cast to ``dtype`` and moved to ``backend``: the same seed
    gives identical masks on every backend and for float32 and float64 alike.
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
    dt = _np_dtype(dtype)
    be = get_backend(backend) if not isinstance(backend, Backend) else backend
    D: dict[int, Any] = {}
    for l in range(1, L):
        if rates[l - 1] == 0.0:
            continue
        keep = 1.0 - rates[l - 1]
        mask = (rng.random((dims[l], int(m))) < keep).astype(dt)  # U ~ U[0, 1) in float64
        mask *= dt.type(1.0 / keep)
        D[l] = be.asarray(mask)
    return D


def clip_by_global_norm(dW: MutableMapping[int, Any], db: MutableMapping[int, Any],
                        max_norm: float, *, xp: Any) -> Any:
    """g := g min(1, max_norm / (||g||_2 + 1e-6)) for g = all dW[l], db[l] together, in place.

    Returns ||g||_2 before clipping as a 0-d array on the device (no host sync).
    """
    if isinstance(max_norm, (bool, str)) or not hasattr(max_norm, "__float__") \
            or not 0.0 < float(max_norm) < math.inf:
        raise ValueError(f"max_norm must be a finite number > 0; got {max_norm!r}")
    max_norm = float(max_norm)
    grads = (*dW.values(), *db.values())
    if not grads:
        raise ValueError("no gradients to clip: dW and db are empty")
    # ||g|| = c ||g / c|| with c = max|g|: sum(g^2) overflows float32 once |g| passes ~1e19,
    # which would make the scale 0 and zero the gradients silently.
    c = xp.max(xp.stack([xp.max(xp.abs(G)) for G in grads]))
    c = xp.where(c > 0, c, xp.ones_like(c))
    total = None
    for G in grads:
        H = G / c
        s = xp.sum(H * H)
        total = s if total is None else total + s
    norm = c * xp.sqrt(total)
    scale = xp.minimum(max_norm / (norm + 1e-6), 1.0)
    for l in dW:
        dW[l] *= scale
    for l in db:
        db[l] *= scale
    return norm
