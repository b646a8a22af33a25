"""One gradient-descent step: forward, cost, backward, update — the seeds' loop body, written once.

:func:`gradient_descent_step` is the seeds' step on dicts W, b; :func:`train_step` is the
training loop's, over flat buffers (:class:`xpnet.core.params.ParamBuffer`) with L2, dropout,
clipping and any optimizer. Both run the one forward and backward sequence
(:mod:`xpnet.core.forward`, :mod:`xpnet.core.backward`) through the backend's kernels.
"""

from __future__ import annotations

from typing import Any, Callable, MutableMapping, Sequence

from xpnet.core.backward import backpropagate, backward
from xpnet.core.forward import PORTABLE, forward
from xpnet.core.kernels import Kernels
from xpnet.core.params import ParamBuffer
from xpnet.core.update import update_parameters

__all__ = ["compute_cost", "gradient_descent_step", "train_step"]


def compute_cost(ZL: Any, Y: Any, output: str, *, xp: Any, kernels: Kernels = PORTABLE) -> Any:
    """J(Z[L], Y) for the cost matching the output activation (0-d array on the device)."""
    return kernels.cost(ZL, Y, output, xp=xp)


def gradient_descent_step(X: Any, Y: Any, W: MutableMapping[int, Any],
                          b: MutableMapping[int, Any], g: Sequence[str], alpha: float, *,
                          xp: Any, kernels: Kernels = PORTABLE, ws: Any = None,
                          check: Callable[[Any, Any], None] | None = None) -> Any:
    """Forward, J, dW/db, then W[l] := W[l] - alpha dW[l] in place; returns J before the update.

    ``check(Y, A[L])`` (if given) runs before anything changes.
    """
    L = len(W)
    AL, cache = forward(X, W, b, g, xp=xp, kernels=kernels, ws=ws)
    if check is not None:
        check(Y, AL)
    J = kernels.cost(cache.Z[L], Y, g[L - 1], xp=xp)
    dW, db = backward(Y, W, cache, g, xp=xp, kernels=kernels, ws=ws)
    update_parameters(W, b, dW, db, alpha)
    return J


def train_step(X: Any, Y: Any, params: ParamBuffer, grads: ParamBuffer, g: Sequence[str],
               optimizer: Any, total: Any, *, xp: Any, kernels: Kernels, ws: Any = None,
               alpha: float = 0.0, clip_norm: float | None = None,
               keep: Sequence[float] | None = None,
               keys: Callable[[int], tuple[int, int]] | None = None,
               loss_scale: float = 1.0, weights: Any = None, weight_scale: float = 1.0,
               reduce: Callable[[ParamBuffer, Any], Any] | None = None,
               global_m: int | None = None) -> Any:
    """One step on the batch X (n[0], m), Y (n[L], m); returns total + m J_B on the device.

        D[l]  = dropout masks from the counter-based generator (``keep[l-1] < 1``, ``keys(l)``)
        S     = c sum_i L(y(i), a[L](i)) + (alpha/2) sum_l ||W[l]||^2      (= m J_B)
                (c = ``loss_scale``: 1/n[L] reports the squared error as a mean over the
                outputs, as scikit-learn does; the gradients are those of c = 1)
        dW[l] += (alpha/m) W[l];  g := clipped to ``clip_norm``;  optimizer step

    Sample weights (scikit-learn's semantics): ``weights`` is the row s = w / sum_B w (1, m) on
    the device and ``weight_scale`` = m / sum_B w on the host; then J_B = sum_i s_i L(i) +
    (alpha / 2 sum_B w) sum_l ||W[l]||^2 and dZ[L] = (A[L] - Y) s.

    Data parallel: this process holds m of the ``global_m`` rows of the global batch (m may be
    0); dZ[L] carries 1/global_m (or s over the global batch's weights), ``reduce(grads, S)``
    sums the gradients and S over the processes in place (one collective) and returns the
    global S; L2, clipping and the update then run on the sums, identically everywhere.

    Gradients land in ``grads`` (views of its flat buffer); nothing is read back to the host.
    """
    K = kernels
    W, b = params.W, params.b
    L = len(W)
    m = X.shape[1]
    m_total = m if global_m is None else global_m
    if weights is not None:
        alpha = alpha * weight_scale  # alpha / sum_B w where the unweighted step has alpha / m
    if m == 0:  # a data-parallel process with no rows in this global batch
        for G in grads.segments:
            G[...] = 0.0
        S = xp.zeros((), dtype=X.dtype, device=X.device)
    else:
        D = None
        if keep is not None:
            D = {l: K.dropout_mask(keep[l - 1], keys(l), (W[l].shape[0], m), X.dtype, xp=xp,
                                   device=X.device, ws=ws, l=l)
                 for l in range(1, L) if keep[l - 1] < 1.0}
        ZL, cache = forward(X, W, b, g, xp=xp, D=D, kernels=K, ws=ws, logits=True)
        if weights is None:
            S, dZL = K.output_loss_delta(ZL, Y, g[L - 1], xp=xp, ws=ws)
            if m_total != m:
                dZL = dZL * (m / m_total)  # 1/m_total in dZ[L], not 1/m
        else:
            S, dZL = K.weighted_loss_delta(ZL, Y, g[L - 1], weights, xp=xp, ws=ws)
            if m_total != m:
                S = S * (m_total / m)  # this process's part of m_total sum_i s_i L(i)
        backpropagate(dZL, W, cache, g, xp=xp, D=D, kernels=K, ws=ws, dW=grads.W, db=grads.b)
    if reduce is not None:
        S = reduce(grads, S)
    total = K.accumulate(total, S, loss_scale, xp=xp)
    if alpha:
        total = K.accumulate(total, K.sum_of_squares(params.weight_segments, xp=xp),
                             0.5 * alpha, xp=xp)
        K.axpy(grads.weight_segments, params.weight_segments, alpha / m_total, xp=xp)
    if clip_norm is not None:
        K.clip_by_global_norm(grads.segments, clip_norm, xp=xp)
    optimizer.step(params, grads)
    return total
