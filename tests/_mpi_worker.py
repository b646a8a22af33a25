"""Run under ``mpiexec -n N``: one rank of a data-parallel fit (tests/test_distributed.py).

    python tests/_mpi_worker.py OUT.npz '{"task": "multiclass", "shuffle": false, ...}'

Every rank builds the same data from the seed, keeps its shard (contiguous, equal sizes), fits
with ``distributed="mpi"`` and writes its results to OUT.rank<r>.npz.
"""

import json
import sys
import warnings

import numpy as np

import xpnet
from xpnet.callbacks import Callback


def data(task: str, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    if task == "regression":
        y = np.stack([X[:, 0] - 2 * X[:, 1], np.tanh(X[:, 2])], axis=1)
    else:
        y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    return X, y


class Fail(Callback):
    """Rank ``rank`` raises (or dies) at the end of epoch ``epoch``."""

    def __init__(self, rank, epoch, how):
        self.rank, self.epoch, self.how = rank, epoch, how

    def on_epoch_end(self, est, logs):
        from mpi4py import MPI

        if MPI.COMM_WORLD.rank == self.rank and logs["epoch"] == self.epoch:
            import os

            if self.how == "die":
                os._exit(3)
            if self.how == "sigint":  # Ctrl-C on this rank only
                import signal

                os.kill(os.getpid(), signal.SIGINT)
                return
            raise ValueError(f"rank {self.rank} fails on purpose at epoch {self.epoch}")


def main() -> None:
    from mpi4py import MPI

    out, cfg = sys.argv[1], json.loads(sys.argv[2])
    comm = MPI.COMM_WORLD
    r, N = comm.rank, comm.size
    X, y = data(cfg.get("task", "multiclass"), cfg.get("n", 120))
    n_val = cfg.get("n_val", 0)
    Xv, yv = (X[-n_val:], y[-n_val:]) if n_val else (None, None)
    if n_val:
        X, y = X[:-n_val], y[:-n_val]
    rows = np.array_split(np.arange(len(X)), N)[r]
    labels = cfg.get("labels")
    if labels:  # each rank sees only some classes
        rows = rows[np.isin(y[rows], labels[r])]
    cls = xpnet.MLPRegressor if cfg.get("task") == "regression" else xpnet.MLPClassifier
    est = cls(**cfg.get("params", {}), distributed=cfg.get("distributed", "mpi"),
              backend=cfg.get("backend", "numpy"))
    kw = {}
    if n_val:
        vrows = np.array_split(np.arange(n_val), N)[r]
        kw["validation_data"] = (Xv[vrows], yv[vrows])
    if cfg.get("weights"):
        kw["sample_weight"] = np.linspace(0.5, 2.0, len(X))[rows]
    if cfg.get("fail"):
        kw["callbacks"] = [Fail(**cfg["fail"])]
    if cfg.get("checkpoint"):
        kw["checkpoint"] = cfg["checkpoint"]
        kw["resume"] = bool(cfg.get("resume"))
    diverged = None
    Xr = X[rows]
    if cfg.get("zero_small"):
        Xr = np.where(np.abs(Xr) < 0.5, 0.0, Xr)
    if cfg.get("sparse"):
        import scipy.sparse as sp

        Xr = sp.csr_matrix(Xr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            est.fit(Xr, y[rows], **kw)
        except xpnet.DivergenceError as exc:
            if not cfg.get("diverge"):
                raise
            diverged = (exc.epoch, exc.batch)
    res = {f"coef{i}": c for i, c in enumerate(est.coefs_ + est.intercepts_)}
    if diverged is not None:
        res["diverged"] = np.array(diverged)
    res["loss_curve"] = np.array(est.loss_curve_)
    res["n_iter"] = np.array(est.n_iter_)
    if getattr(est, "validation_scores_", None) is not None:
        res["val_scores"] = np.array(est.validation_scores_)
        res["val_loss"] = np.array(est.validation_loss_curve_)
    if hasattr(est, "classes_"):
        res["classes"] = np.asarray(est.classes_)
    np.savez(f"{out}.rank{r}.npz", **res)


if __name__ == "__main__":
    main()
