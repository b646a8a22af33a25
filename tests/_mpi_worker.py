"""Run under ``mpiexec -n N``: one rank of a data-parallel fit (tests/test_distributed.py).

    python tests/_mpi_worker.py OUT '{"task": "multiclass", "shuffle": false, ...}'

Every rank builds the same data from the seed, keeps its shard (contiguous, equal sizes), fits
with ``distributed="mpi"`` and writes its results to OUT.rank<r>.npz. A rank whose fit raises
writes the exception's type and message and the time to OUT.rank<r>.error.json, and a rank
that fails on purpose (``fail``, ``bad_rank``) writes the time of its failure to
OUT.failed.json, before it goes on.
"""

import json
import os
import sys
import time
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


def record_failure(out):
    """Note the time this rank fails on purpose (the test measures the job's end from it)."""
    with open(f"{out}.failed.json", "w") as f:
        json.dump({"time": time.time()}, f)


class Fail(Callback):
    """Rank ``rank`` fails at the end of epoch ``epoch``, ``how``: "raise" (a ValueError in
    this callback), "die" (os._exit), "sigint" (Ctrl-C), "hang" (stops answering), "fsize"
    (the file-size limit drops below the checkpoint's size: writing it fails, EFBIG), "step"
    (the next training step raises before its allreduce)."""

    def __init__(self, rank, epoch, how, out, checkpoint=None):
        self.rank, self.epoch, self.how, self.out = rank, epoch, how, out
        self.checkpoint = checkpoint

    def on_epoch_end(self, est, logs):
        from mpi4py import MPI

        if MPI.COMM_WORLD.rank != self.rank or logs["epoch"] != self.epoch:
            return
        if self.how == "sigint":  # Ctrl-C on this rank only
            import signal

            os.kill(os.getpid(), signal.SIGINT)
            return
        if self.how == "fsize":  # a full disk, for this process only
            import resource
            import signal

            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG instead
            size = os.path.getsize(self.checkpoint)
            resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, resource.RLIM_INFINITY))
            record_failure(self.out)
            return
        if self.how == "step":
            from xpnet.training.distributed import Plan

            def reduce(plan, grads, S):
                record_failure(self.out)
                raise RuntimeError(f"rank {self.rank}'s step fails on purpose")

            Plan.reduce = reduce
            return
        record_failure(self.out)
        if self.how == "die":
            os._exit(3)
        if self.how == "hang":
            time.sleep(600)
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
    distributed = cfg.get("distributed", "mpi")
    if cfg.get("timeout"):  # the deadline of every collective, in seconds
        from xpnet.training.distributed import MPIComm

        distributed = MPIComm(timeout=cfg["timeout"])
    est = cls(**cfg.get("params", {}), distributed=distributed,
              backend=cfg.get("backend", "numpy"))
    kw = {}
    if n_val:
        vrows = np.array_split(np.arange(n_val), N)[r]
        kw["validation_data"] = (Xv[vrows], yv[vrows])
    if cfg.get("weights"):
        kw["sample_weight"] = np.linspace(0.5, 2.0, len(X))[rows]
    if cfg.get("fail"):
        kw["callbacks"] = [Fail(**cfg["fail"], out=out, checkpoint=cfg.get("checkpoint"))]
    if cfg.get("checkpoint"):
        kw["checkpoint"] = cfg["checkpoint"]
        kw["resume"] = bool(cfg.get("resume"))
    diverged = None
    Xr = X[rows]
    if cfg.get("bad_rank") == r:  # this rank's shard holds a NaN: its input check fails
        Xr[len(Xr) // 2, 0] = np.nan
        record_failure(out)
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
    try:
        main()
    except BaseException as exc:
        from mpi4py import MPI

        with open(f"{sys.argv[1]}.rank{MPI.COMM_WORLD.rank}.error.json", "w") as f:
            json.dump({"type": type(exc).__name__, "message": str(exc), "time": time.time()},
                      f)
        raise
