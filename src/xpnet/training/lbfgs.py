"""solver="lbfgs": SciPy's L-BFGS-B over the flat parameter buffer, as scikit-learn's MLP.

    theta := argmin J(theta),  J = c mean_i L(y(i), a[L](i)) + (alpha / 2n) sum_l ||W[l]||^2
    each evaluation:  theta -> device (one upload);  S = n J and dJ/dtheta on the device
                      (:func:`xpnet.core.objective.value_and_grad`, all n rows at once);
                      [dJ/dtheta, S] -> host
                      (one read);  SciPy takes the step on the host in float64

The vector SciPy sees is scikit-learn's ``_pack(coefs_, intercepts_)``: every W[l]^T raveled,
then every b[l]; xpnet's buffer holds W[l] (n[l], n[l-1]), so a fixed permutation maps one
layout onto the other on the host. With the same start, the same options (``maxfun``,
``maxiter``, ``gtol=tol``) and the same values and gradients, SciPy takes scikit-learn's steps.
(Like scikit-learn's, the gradient is that of c = 1: for several squared-error outputs the
reported loss is the mean over the outputs, the gradient the sum.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from xpnet.backends import to_numpy
from xpnet.core.objective import value_and_grad
from xpnet.core.params import ParamBuffer
from xpnet.training.network import Network

__all__ = ["LbfgsResult", "convergence_message", "minimize_lbfgs"]


@dataclass
class LbfgsResult:
    """What SciPy's L-BFGS-B returned: iterations, evaluations, the final loss J, its status
    (0: converged) and message, and J after each iteration."""

    nit: int
    nfev: int
    loss: float
    status: int
    message: str
    losses: list[float] = field(default_factory=list)


def _sklearn_order(dims: Sequence[int]) -> np.ndarray:
    """Indices p with vector_sklearn = theta_flat[p]: W[l]^T raveled for each l, then b[l]."""
    L = len(dims) - 1
    parts, start = [], 0
    for l in range(1, L + 1):
        n_out, n_in = dims[l], dims[l - 1]
        parts.append(start + np.arange(n_out * n_in).reshape(n_out, n_in).T.ravel())
        start += n_out * n_in
    size_b = sum(dims[1:])
    parts.append(start + np.arange(size_b))
    return np.concatenate(parts)


def minimize_lbfgs(net: Network, X: Any, Y: Any, *, alpha: float, loss_scale: float,
                   max_iter: int, max_fun: int, tol: float, sample_weight: np.ndarray | None,
                   on_iteration: Callable[[int, float], None] | None = None) -> LbfgsResult:
    """Train ``net`` on all rows of X (n, n[0]), Y (n, n[L]) (on its device) with
    ``scipy.optimize.minimize(method="L-BFGS-B", jac=True)`` and scikit-learn's options;
    ``net`` ends at SciPy's solution. ``on_iteration(k, J)`` after each iteration."""
    from scipy.optimize import minimize

    be, K = net.backend, net.kernels
    xp = be.xp
    theta = net.theta
    dims = net.dims
    n = int(X.shape[0])
    dtype = str(net.W[1].dtype).rsplit(".", 1)[-1]
    Xt, Yt = xp.permute_dims(X, (1, 0)), xp.permute_dims(Y, (1, 0))
    order = _sklearn_order(dims)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size)
    flat = theta.flat is not None
    with be.device_context():
        # the gradient and, in the slot after it, S: the evaluation's one read
        grads = ParamBuffer.zeros(theta.shapes, xp=xp, dtype=net.W[1].dtype,
                                  device=be.device, flat=True, extra=1) if flat \
            else theta.zeros_like(xp=xp)
        weights = l2_scale = None
        if sample_weight is not None:  # s = w / sum w; L2 over sum w, not n (scikit-learn's)
            total = float(np.sum(sample_weight))
            weights = be.asarray(np.ascontiguousarray(
                (sample_weight / total).reshape(1, -1), dtype=dtype))
            l2_scale = (0.5 * alpha * n / total, alpha / total)
    ws = K.workspace()

    def upload(x: np.ndarray) -> None:
        host = np.ascontiguousarray(x[inverse], dtype=dtype)
        if flat:
            theta.flat[...] = be.asarray(host)
        else:
            start = 0
            for A in theta.arrays:
                size = math.prod(A.shape)
                A[...] = be.asarray(host[start:start + size].reshape(A.shape))
                start += size

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        upload(x)
        S = value_and_grad(Xt, Yt, theta, grads, net.g, xp=xp, kernels=K, ws=ws, l2=alpha,
                           loss_scale=loss_scale, weights=weights, l2_scale=l2_scale)
        if flat:
            grads.extra[0] = S
            host = np.asarray(to_numpy(grads.storage), dtype=np.float64)
            value, grad = host[-1], host[:-1]
        else:
            value = float(to_numpy(S))
            grad = np.concatenate([np.asarray(to_numpy(G), dtype=np.float64).ravel()
                                   for G in grads.arrays])
        return float(value) / n, grad[order]

    losses: list[float] = []

    def callback(intermediate_result: Any) -> None:
        losses.append(float(intermediate_result.fun))
        if on_iteration is not None:
            on_iteration(len(losses), losses[-1])

    x0 = np.asarray(to_numpy(theta.flat) if flat else np.concatenate(
        [np.asarray(to_numpy(A)).ravel() for A in theta.arrays]), dtype=np.float64)[order]
    with be.device_context(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        res = minimize(fun, x0, method="L-BFGS-B", jac=True, callback=callback,
                       options={"maxfun": max_fun, "maxiter": max_iter, "gtol": tol})
        upload(res.x)
    message = res.message.decode() if isinstance(res.message, bytes) else str(res.message)
    return LbfgsResult(int(res.nit), int(res.nfev), float(res.fun), int(res.status), message,
                       losses)


def convergence_message(result: LbfgsResult, max_iter: int) -> str | None:
    """scikit-learn's ConvergenceWarning text for an L-BFGS run that did not converge (status
    != 0), or None (``sklearn.utils.optimize._check_optimize_result``)."""
    if result.status == 0:
        return None
    n_iter = min(result.nit, max_iter)
    msg = (f"lbfgs failed to converge after {n_iter} iteration(s) (status={result.status}):\n"
           f"{result.message}\n")
    if n_iter == max_iter:
        msg += (f"\nIncrease the number of iterations to improve the convergence "
                f"(max_iter={max_iter}).")
    return msg + ("\nYou might also want to scale the data as shown in:\n"
                  "    https://scikit-learn.org/stable/modules/preprocessing.html")
