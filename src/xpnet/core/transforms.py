"""Gradient transforms between value-and-gradient and the update, on flat buffers, in place:

    L2 (weight decay):  S += (alpha/2) sum_l ||W[l]||^2;   dW[l] += (alpha/m) W[l]
    clipping:           g := g min(1, max_norm / (||g||_2 + 1e-6))   (g: every dW[l], db[l])

Each runs through the backend's whole-buffer kernels (:class:`xpnet.core.kernels.Kernels`:
``sum_of_squares``, ``axpy``, ``clip_by_global_norm``), reads nothing back to the host and
takes its per-step coefficients either as Python floats (constant from step to step) or as
0-d arrays on the device (the step table's, :mod:`xpnet.core.state`), so a captured step
replays them. The dict-based functional forms are :mod:`xpnet.core.regularization`.
"""

from __future__ import annotations

from typing import Any

from xpnet.core.kernels import Kernels
from xpnet.core.params import ParamBuffer

__all__ = ["add_weight_decay", "clip_gradients"]


def add_weight_decay(S: Any, grads: ParamBuffer, params: ParamBuffer, alpha: float, m: int, *,
                     scale: Any = None, xp: Any, kernels: Kernels) -> Any:
    """S + (alpha/2) sum_l ||W[l]||^2;  dW[l] += (alpha/m) W[l] in place (b is not decayed).

    ``scale`` (sample weights: m / sum_B w, scikit-learn's alpha / sum_B w): a pair of 0-d
    device arrays ``(alpha/2 * scale, alpha/m * scale)`` replacing the two coefficients.
    Returns the new S.
    """
    half, per_m = (0.5 * alpha, alpha / m) if scale is None else scale
    S = kernels.accumulate(S, kernels.sum_of_squares(params.weight_segments, xp=xp), half, xp=xp)
    kernels.axpy(grads.weight_segments, params.weight_segments, per_m, xp=xp)
    return S


def clip_gradients(grads: ParamBuffer, max_norm: float, *, xp: Any, kernels: Kernels) -> Any:
    """g := g min(1, max_norm / (||g||_2 + 1e-6)) over the whole gradient; returns ||g||_2."""
    return kernels.clip_by_global_norm(grads.segments, max_norm, xp=xp)
