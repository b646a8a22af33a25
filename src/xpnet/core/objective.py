"""S = m J_B and dJ_B/dtheta: forward, loss, backward and L2 on the flat buffers — no update.

Every solver starts here: the stochastic driver (:mod:`xpnet.training.loop`) follows it with
the gradient transforms (:mod:`xpnet.core.transforms`) and an optimizer
(:mod:`xpnet.core.optim`); L-BFGS calls it over all the rows and hands S / n and the
gradient to scipy. Nothing is read back to the host here, and nothing is updated.

    D[l]  = dropout masks from the counter-based generator (``keep[l-1] < 1``, ``keys(l)``)
    S     = c sum_i L(y(i), a[L](i)) + (alpha/2) sum_l ||W[l]||^2      (= m J_B)
    dW[l] = dZ[l] A[l-1]^T + (alpha/m) W[l];   db[l] = sum_i dZ[l]      (dZ[L] carries 1/m)

(c = ``loss_scale``: 1/n[L] reports the squared error as a mean over the outputs, as
scikit-learn does; the gradients are those of c = 1, as scikit-learn's.)
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from xpnet.core.backward import backpropagate
from xpnet.core.forward import forward
from xpnet.core.kernels import Kernels
from xpnet.core.params import ParamBuffer
from xpnet.core.transforms import add_weight_decay

__all__ = ["value_and_grad"]


def value_and_grad(X: Any, Y: Any, params: ParamBuffer, grads: ParamBuffer, g: Sequence[str],
                   *, xp: Any, kernels: Kernels, ws: Any = None, l2: float = 0.0,
                   loss_scale: float = 1.0, weights: Any = None, l2_scale: Any = None,
                   keep: Sequence[float] | None = None,
                   keys: Callable[[int], tuple[Any, Any]] | None = None,
                   reduce: Callable[[ParamBuffer, Any], Any] | None = None,
                   global_m: int | None = None) -> Any:
    """S = m J_B on the batch X (n[0], m), Y (n[L], m); dJ_B/dtheta written into ``grads``.

    Returns S as a 0-d array on the device, with the L2 term ``(l2/2) sum ||W||^2`` and the
    loss scale c applied; ``grads`` (views of its flat buffer) holds the gradient of J_B,
    L2 included. ``params`` is not changed.

    Sample weights (scikit-learn's semantics): ``weights`` is the row s = w / sum_B w (1, m)
    on the device and ``l2_scale`` = m / sum_B w (a 0-d device array); then
    J_B = sum_i s_i L(i) + (l2 / 2 sum_B w) sum_l ||W[l]||^2 and dZ[L] = (A[L] - Y) s.

    Data parallel: this process holds m of the ``global_m`` rows of the global batch (m may be
    0); dZ[L] carries 1/global_m (or s over the global batch's weights), ``reduce(grads, S)``
    sums the gradients and S over the processes in place (one collective) and returns the
    global S; L2 is then added to the sums, identically everywhere.

    Dropout: ``keys(l)`` gives layer l's generator keys (Python ints, or 0-d int64 arrays on
    the device, as :func:`xpnet.core.random.uniform_bits` takes them).
    """
    K = kernels
    W, b = params.W, params.b
    L = len(W)
    m = X.shape[1]
    m_total = m if global_m is None else global_m
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
    if loss_scale != 1.0:
        S = S * loss_scale
    if l2:
        S = add_weight_decay(S, grads, params, l2, m_total, scale=l2_scale, xp=xp, kernels=K)
    return S
