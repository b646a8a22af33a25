"""J += (alpha / 2m) sum_l ||W[l]||^2,  dW[l] += (alpha / m) W[l];  gradient clipping by
global norm (dict-based functional API; the training step uses the same kernels on flat buffers).

L2 follows scikit-learn's MLP: the penalty covers the weights W[l], not the biases b[l].
Dropout masks come from :mod:`xpnet.core.random` (counter-based, drawn on the device).
Nothing here reads a value back to the host.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, MutableMapping

from xpnet.core.kernels import Kernels

__all__ = ["add_weight_decay", "clip_by_global_norm", "l2_cost"]

_PORTABLE = Kernels()


def _check_alpha_m(alpha: Any, m: Any) -> tuple[float, int]:
    if isinstance(alpha, (bool, str)) or not hasattr(alpha, "__float__") \
            or not float(alpha) >= 0 or not math.isfinite(float(alpha)):
        raise ValueError(f"alpha (the L2 penalty) must be a finite number >= 0; got {alpha!r}")
    if isinstance(m, bool) or not hasattr(m, '__index__') or m < 1:
        raise ValueError(f"m (the number of examples) must be an integer >= 1; got {m!r}")
    return float(alpha), int(m)


def l2_cost(W: Mapping[int, Any], alpha: float, m: int, *, xp: Any) -> Any:
    """J_L2 = (alpha / 2m) sum_l ||W[l]||_F^2   (0-d array on the device; scikit-learn's term)."""
    alpha, m = _check_alpha_m(alpha, m)
    if not W:
        raise ValueError("W is empty: l2_cost needs at least one weight matrix W[1]")
    return (0.5 * alpha) * _PORTABLE.sum_of_squares(list(W.values()), xp=xp) / m


def add_weight_decay(dW: MutableMapping[int, Any], W: Mapping[int, Any], alpha: float,
                     m: int) -> None:
    """dW[l] := dW[l] + (alpha / m) W[l], for every l in dW, in place (biases are not decayed)."""
    alpha, m = _check_alpha_m(alpha, m)
    if alpha == 0.0:
        return
    _PORTABLE.axpy([dW[l] for l in dW], [W[l] for l in dW], alpha / m, xp=None)


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
    return _PORTABLE.clip_by_global_norm(grads, max_norm, xp=xp)
