"""J_val = (1/n) sum_B m_B J_B and the validation score, computed over row blocks of X_val.

The per-epoch validation pass needs the cost and the score over all n validation examples,
not every layer's Z[l], A[l] for all of them at once (gigabytes for a million rows). Both
are sums over examples, so they are accumulated block by block on the device:

    J      = sum_B (m_B / n) J_B                       (J_B: the cost of block B's Z[L])
    score  = (1/n) sum_B hits_B                        (classifiers: accuracy, subset accuracy)
    R^2    = mean_k 1 - SS_res,k / SS_tot,k            (regressors; SS_res,k = sum_B sum_i
                                                         (y_k(i) - a_k(i))^2, SS_tot,k from
                                                         Y's mean over all n, computed once)

With a single block (n within the memory budget) the values are those of the whole-X pass,
bit for bit. Nothing is read to the host: the caller stacks the 0-d results into its one
read per epoch.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from xpnet.backends import to_numpy
from xpnet.core.forward import forward
from xpnet.core.losses import OUTPUT_COST, PER_EXAMPLE
from xpnet.training.inference import DEFAULT_MAX_BYTES, chunk_rows_for, itemsize
from xpnet.training.streaming import is_sparse

__all__ = ["ShardedValidation", "ValidationPass", "block_hits"]


def block_hits(AL: Any, Y: Any, kind: str, *, xp: Any, w: Any = None) -> Any:
    """hits = sum_i w_i [a(i) predicts y(i)] over a block's columns (a 0-d array; w: a (1, m)
    row of weights, None: 1): argmax agrees (multiclass), a > 0.5 agrees (binary), every
    label agrees (multilabel)."""
    if kind == "multiclass":
        hit = xp.argmax(AL, axis=0) == xp.argmax(Y, axis=0)
    elif kind == "binary":
        hit = (AL[0, :] > 0.5) == (Y[0, :] > 0.5)
    elif kind == "multilabel":
        hit = xp.all((AL > 0.5) == (Y > 0.5), axis=0)
    else:
        raise ValueError(f"kind must be 'multiclass', 'binary' or 'multilabel'; got {kind!r}")
    hit = xp.astype(hit, AL.dtype)
    return xp.sum(hit) if w is None else xp.sum(hit * w[0, :])


class ValidationPass:
    """(J_val, score) of a network on fixed validation data, over blocks of rows.

    ``X`` (n, n[0]) and ``Y`` (n, n[L]) hold examples in rows (the estimator's layout); each
    block is passed to the equations as the view X[i:j]^T. ``kind`` is "multiclass",
    "binary", "multilabel" (score: accuracy) or "continuous" (score: R^2). ``chunk_rows``:
    rows per block (None: as many as fit in ``max_bytes`` of activations,
    :func:`xpnet.training.inference.chunk_rows_for`).
    """

    def __init__(self, X: Any, Y: Any, g: Sequence[str], kind: str, *, backend: Any,
                 kernels: Any, dims: Sequence[int], chunk_rows: int | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES, loss_scale: float = 1.0,
                 weights: np.ndarray | None = None) -> None:
        self.X, self.Y, self.g, self.kind = X, Y, list(g), kind
        self.xp, self.kernels = backend.xp, kernels
        self.loss_scale = float(loss_scale)
        on_host = (isinstance(X, np.ndarray) and backend.name != "numpy") or is_sparse(X)
        self._upload = backend.dense_rows if on_host else None
        self.n = int(X.shape[0])
        if chunk_rows is None:
            size = np.dtype(X.dtype).itemsize if on_host else itemsize(self.xp, X.dtype)
            # a host X's block is uploaded (dense): its n[0] values per row count too
            units = [*dims[1:], dims[0]] if on_host else dims[1:]
            chunk_rows = chunk_rows_for(units, size, max_bytes)
        if int(chunk_rows) < 1:
            raise ValueError(f"chunk_rows must be a positive number of rows; got {chunk_rows!r}")
        self.rows = min(int(chunk_rows), max(self.n, 1))
        # sample weights: a device column (n, 1), and their total on the host
        self._w, self.total_weight = None, float(self.n)
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64).reshape(-1, 1)
            self.total_weight = float(w.sum())
            with backend.device_context():
                self._w = backend.asarray(np.ascontiguousarray(w, dtype=_dtype_name(Y)))
        self._ss_tot = None
        if kind == "continuous":  # SS_tot,k = sum_i w_i (y_k(i) - mean_k)^2, fixed
            xp = self.xp
            if self._w is None:
                D = Y - xp.mean(Y, axis=0, keepdims=True)
                self._ss_tot = xp.sum(D * D, axis=0)
            else:
                mean = xp.sum(self._w * Y, axis=0, keepdims=True) / self.total_weight
                D = Y - mean
                self._ss_tot = xp.sum(self._w * D * D, axis=0)

    def blocks(self) -> Any:
        """(X[i:j]^T, Y[i:j]^T, m_B, w[i:j]^T or None) for consecutive blocks of rows (a host
        X, streamed training data's split, goes up to the device one block at a time)."""
        host = self._upload is not None
        for i in range(0, self.n, self.rows):
            j = min(i + self.rows, self.n)
            Xb = self._upload(self.X[i:j, ...]) if host else self.X[i:j, ...]
            wb = None if self._w is None else self._w[i:j, ...].T
            yield Xb.T, self.Y[i:j, ...].T, j - i, wb

    def evaluate(self, W: Mapping[int, Any], b: Mapping[int, Any]) -> tuple[Any, Any]:
        """(J_val, score): two 0-d arrays on the device; no host read."""
        xp, K, L = self.xp, self.kernels, len(self.g)
        J = acc = None
        for Xb, Yb, m, wb in self.blocks():
            AL, cache = forward(Xb, W, b, self.g, xp=xp, kernels=K)
            if wb is None:
                Jb = K.cost(cache.Z[L], Yb, self.g[-1], xp=xp) * (self.loss_scale * m / self.n)
            else:  # sum_i w_i L(i) / sum w
                loss = PER_EXAMPLE[OUTPUT_COST[self.g[-1]]](cache.Z[L], Yb, xp=xp)
                Jb = xp.sum(loss * wb) * (self.loss_scale / self.total_weight)
            if self.kind == "continuous":
                R = (Yb - AL) ** 2                           # SS_res,k of this block
                part = xp.sum(R if wb is None else R * wb, axis=1)
            else:
                part = block_hits(AL, Yb, self.kind, xp=xp, w=wb)
            J = Jb if J is None else J + Jb
            acc = part if acc is None else acc + part
            del AL, cache
        if self.kind != "continuous":
            return J, acc / self.total_weight
        tot = self._ss_tot  # R^2_k = 1 - SS_res/SS_tot; 1 or 0 where SS_tot = 0, as scikit-learn
        safe = xp.where(tot == 0, xp.ones_like(tot), tot)
        r2 = xp.where(tot == 0, xp.astype(acc == 0, acc.dtype), 1.0 - acc / safe)
        return J, xp.mean(r2)


def _dtype_name(x: Any) -> str:
    return str(x.dtype).rsplit(".", 1)[-1]


class ShardedValidation(ValidationPass):
    """The validation pass of data-parallel training: each rank scores its own shard of the
    validation data, and the ranks' sums are added once per epoch (``plan.sum_host``):

        J_val = sum_ranks J_sum / sum_ranks W,   accuracy = sum_ranks hits / sum_ranks W,
        R^2_k = 1 - sum_ranks SS_res,k / SS_tot,k   (SS_tot,k about the global weighted mean)

    (W: the total weight; n without sample weights). The totals are summed once, at the start.
    """

    def __init__(self, *args: Any, plan: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plan = plan
        self.total_weight = float(plan.sum_host(np.array([self.total_weight]),
                                                "the validation sizes")[0])
        if self.kind == "continuous":
            Y = np.asarray(to_numpy(self.Y), dtype=np.float64)
            w = (np.ones((Y.shape[0], 1)) if self._w is None
                 else np.asarray(to_numpy(self._w), dtype=np.float64))
            mean = plan.sum_host((w * Y).sum(axis=0), "the validation means") / self.total_weight
            self._ss_tot_host = plan.sum_host((w * (Y - mean) ** 2).sum(axis=0),
                                              "the validation variances")

    def parts(self, W: Mapping[int, Any], b: Mapping[int, Any]) -> Any:
        """[J_sum, hits] or [J_sum, SS_res,1 .. SS_res,k] of this rank's shard (device, 1-D):
        sums, not yet divided by the totals."""
        xp, K, L = self.xp, self.kernels, len(self.g)
        J = acc = None
        for Xb, Yb, m, wb in self.blocks():
            AL, cache = forward(Xb, W, b, self.g, xp=xp, kernels=K)
            loss = PER_EXAMPLE[OUTPUT_COST[self.g[-1]]](cache.Z[L], Yb, xp=xp)
            Jb = xp.sum(loss if wb is None else loss * wb) * self.loss_scale
            if self.kind == "continuous":
                R = (Yb - AL) ** 2
                part = xp.sum(R if wb is None else R * wb, axis=1)
            else:
                part = xp.reshape(block_hits(AL, Yb, self.kind, xp=xp, w=wb), (1,))
            J = Jb if J is None else J + Jb
            acc = part if acc is None else acc + part
        if J is None:  # an empty shard
            n_acc = self.Y.shape[1] if self.kind == "continuous" else 1
            return xp.zeros(1 + n_acc, dtype=self.Y.dtype, device=self.Y.device)
        return xp.concat([xp.reshape(J, (1,)), acc])

    def finish(self, sums: np.ndarray) -> np.ndarray:
        """[J_val, score] from every rank's parts summed."""
        J = sums[0] / self.total_weight
        if self.kind != "continuous":
            return np.array([J, sums[1] / self.total_weight])
        res, tot = sums[1:], self._ss_tot_host
        r2 = np.where(tot == 0, (res == 0).astype(float), 1.0 - res / np.where(tot == 0, 1, tot))
        return np.array([J, float(np.mean(r2))])
