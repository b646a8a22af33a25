"""Data-parallel training over MPI (xpnet.training.distributed), with real ``mpiexec``.

Each test launches ``mpiexec -n N`` on tests/_mpi_worker.py (every rank fits its shard with
``distributed="mpi"`` and writes its results), then checks them here:

* equivalence: with ``shuffle=False`` N ranks train the model one process trains on
  ``X_all[global_order(...)]`` with the same batch_size (float64, 1e-12 relative), for
  sgd/momentum/adam, L2, clipping, sample weights, per-rank validation data, a regressor;
* every rank ends with the same parameters; shuffled runs are reproducible for a given N;
* classes_ is the union of the labels seen on any rank;
* a failure on any rank (a callback, the checkpoint write, the step, the input checks) ends the
  job within 10 s, every rank exiting non-zero and naming the failed rank; a rank that dies
  does too; a silent rank is given up at the deadline (XPNET_MPI_TIMEOUT) and the job ends;
  a checkpoint whose write failed keeps its last version, which resumes bit for bit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import xpnet
from xpnet.training.communicator import TIMEOUT_ENV, default_timeout
from xpnet.training.distributed import batch_shares, global_order

sys.path.insert(0, str(Path(__file__).parent))
import _mpi_worker as worker  # noqa: E402

pytest.importorskip("mpi4py")
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which(
    "mpiexec")
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (pip install mpich)")
WORKER = str(Path(__file__).parent / "_mpi_worker.py")


def launch(tmp_path, n, cfg, timeout=120, env=None):
    out = tmp_path / "res"
    start = time.monotonic()
    done = subprocess.run([MPIEXEC, "-n", str(n), sys.executable, WORKER, str(out),
                           json.dumps(cfg)], capture_output=True, text=True, timeout=timeout,
                          env=None if env is None else {**os.environ, **env})
    elapsed = time.monotonic() - start
    ranks = [dict(np.load(f"{out}.rank{r}.npz")) if Path(f"{out}.rank{r}.npz").exists()
             else None for r in range(n)]
    return done, ranks, elapsed


#: Each rank's exit status, written by the shell that runs it (MPICH: PMI_RANK).
STATUS = ('"$@"; s=$?; echo $s > "$0.rank${PMI_RANK:-$OMPI_COMM_WORLD_RANK}.status"; '
          'exit $s')


def launch_failing(tmp_path, n, cfg, env=None):
    """Run a job that fails on purpose: (mpiexec's result, each rank's exit status, each
    rank's error {type, message, time} or None, the failure's time, the job's end)."""
    out = tmp_path / "res"
    done = subprocess.run([MPIEXEC, "-n", str(n), "sh", "-c", STATUS, str(out),
                           sys.executable, WORKER, str(out), json.dumps(cfg)],
                          capture_output=True, text=True, timeout=300,
                          env=None if env is None else {**os.environ, **env})
    end = time.time()
    status = [int(Path(f"{out}.rank{r}.status").read_text())
              if Path(f"{out}.rank{r}.status").exists() else None for r in range(n)]
    errors = [json.loads(Path(f"{out}.rank{r}.error.json").read_text())
              if Path(f"{out}.rank{r}.error.json").exists() else None for r in range(n)]
    assert Path(f"{out}.failed.json").exists(), done.stderr[-3000:]
    failed = json.loads(Path(f"{out}.failed.json").read_text())["time"]
    assert not any(Path(f"{out}.rank{r}.npz").exists() for r in range(n))  # none finished
    return done, status, errors, failed, end


def _coefs(res):
    return [res[k] for k in sorted((k for k in res if k.startswith("coef")),
                                   key=lambda k: int(k[4:]))]


def test_batch_shares_and_global_order():
    assert batch_shares(10, 3) == [4, 3, 3]
    order = global_order([4, 4], 4)  # rank 0's rows 0..3, rank 1's rows 4..7; 2 per batch
    np.testing.assert_array_equal(order, [0, 1, 4, 5, 2, 3, 6, 7])
    with pytest.raises(ValueError, match="cannot match them"):
        global_order([5, 2], 4)
    with pytest.raises(ValueError, match="smaller than the 3 ranks"):
        batch_shares(2, 3)


def test_the_deadline_comes_from_XPNET_MPI_TIMEOUT(monkeypatch):
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert default_timeout() == 120.0
    monkeypatch.setenv(TIMEOUT_ENV, "2.5")
    assert default_timeout() == 2.5
    for bad in ("0", "-1", "soon", "nan"):
        monkeypatch.setenv(TIMEOUT_ENV, bad)
        with pytest.raises(ValueError, match=f"XPNET_MPI_TIMEOUT='{bad}': expected a number"):
            default_timeout()


CASES = {
    "sgd-momentum": dict(params=dict(solver="sgd", momentum=0.9, learning_rate_init=0.05)),
    "adam-l2-clip": dict(params=dict(solver="adam", alpha=0.01, clip_norm=0.5,
                                     learning_rate_init=0.01)),
    "weights": dict(params=dict(solver="sgd", learning_rate_init=0.05), weights=True),
    "validation": dict(params=dict(solver="adam", learning_rate_init=0.01), n_val=24),
    "regressor": dict(params=dict(solver="adam", learning_rate_init=0.01), task="regression"),
}


@pytest.mark.parametrize("n_ranks", [2, 3])
@pytest.mark.parametrize("case", list(CASES))
def test_n_ranks_equal_one_process_on_the_global_batches(tmp_path, n_ranks, case):
    cfg = json.loads(json.dumps(CASES[case]))
    n_train = 120
    cfg["n"] = n_train + cfg.get("n_val", 0)
    cfg["params"].update(hidden_layer_sizes=[7], max_iter=4, random_state=0, dtype="float64",
                         batch_size=12 if n_ranks == 2 else 15, shuffle=False)
    done, ranks, _ = launch(tmp_path, n_ranks, cfg)
    assert done.returncode == 0, done.stderr[-3000:]
    for other in ranks[1:]:  # every rank holds the same model
        for a, b in zip(_coefs(ranks[0]), _coefs(other)):
            np.testing.assert_array_equal(a, b)
    X, y = worker.data(cfg.get("task", "multiclass"), cfg["n"])
    n_val = cfg.get("n_val", 0)
    Xv, yv = (X[-n_val:], y[-n_val:]) if n_val else (None, None)
    X, y = (X[:-n_val], y[:-n_val]) if n_val else (X, y)
    shards = [len(r) for r in np.array_split(np.arange(len(X)), n_ranks)]
    order = global_order(shards, cfg["params"]["batch_size"])
    cls = xpnet.MLPRegressor if cfg.get("task") == "regression" else xpnet.MLPClassifier
    kw = {}
    if cfg.get("weights"):
        kw["sample_weight"] = np.linspace(0.5, 2.0, len(X))[order]
    if n_val:
        kw["validation_data"] = (Xv, yv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = cls(**cfg["params"], backend="numpy").fit(X[order], y[order], **kw)
    np.testing.assert_allclose(ranks[0]["loss_curve"], ref.loss_curve_, rtol=1e-12)
    for a, b in zip(_coefs(ranks[0]), ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    if n_val:
        np.testing.assert_allclose(ranks[0]["val_scores"], ref.validation_scores_, rtol=1e-12)
        np.testing.assert_allclose(ranks[0]["val_loss"], ref.validation_loss_curve_,
                                   rtol=1e-12)


def test_shuffled_runs_agree_across_ranks_and_repeat(tmp_path):
    cfg = dict(params=dict(hidden_layer_sizes=[7], max_iter=3, random_state=5,
                           dtype="float64", batch_size=16, dropout=0.2, early_stopping=True,
                           validation_fraction=0.2, n_iter_no_change=50))
    runs = []
    for k in range(2):
        d = tmp_path / f"run{k}"
        d.mkdir()
        done, ranks, _ = launch(d, 2, cfg)
        assert done.returncode == 0, done.stderr[-3000:]
        for a, b in zip(_coefs(ranks[0]), _coefs(ranks[1])):
            np.testing.assert_array_equal(a, b)
        runs.append(ranks[0])
    for a, b in zip(_coefs(runs[0]), _coefs(runs[1])):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(runs[0]["val_scores"], runs[1]["val_scores"])


def test_classes_are_the_labels_of_every_rank(tmp_path):
    cfg = dict(labels=[[0, 1], [1, 2]],
               params=dict(hidden_layer_sizes=[4], max_iter=2, random_state=0, batch_size=10))
    done, ranks, _ = launch(tmp_path, 2, cfg)
    assert done.returncode == 0, done.stderr[-3000:]
    for res in ranks:
        np.testing.assert_array_equal(res["classes"], [0, 1, 2])


FAILURES = {  # (failing rank: "last" or 0, what fails, the exception's type and message)
    "callback": ("last", dict(fail=dict(epoch=2, how="raise"), checkpoint=True),
                 "ValueError", "fails on purpose at epoch 2"),
    # the last epoch's: the other ranks have no step left, they wait at the fit's end
    "checkpoint-write": (0, dict(fail=dict(epoch=2, how="fsize"), checkpoint=True,
                                 max_iter=2), "OSError", "File too large"),
    "step": ("last", dict(fail=dict(epoch=2, how="step")),
             "RuntimeError", "step fails on purpose"),
    "input": ("last", dict(bad=True), "ValueError", "Input X contains NaN"),
}
FAILURE_RUNS = [(case, n) for case in ("callback", "checkpoint-write", "step") for n in (2, 3)
                ] + [("input", 3)]


@pytest.mark.parametrize(("case", "n_ranks"), FAILURE_RUNS)
def test_a_failure_on_any_rank_ends_the_job_within_seconds(tmp_path, case, n_ranks):
    """One rank raises (in a callback while the others gather the checkpoint's state, in
    writing the last checkpoint on rank 0, in the step, in the input checks): every other rank
    stops with DistributedError naming it and its error, every rank exits non-zero, and the
    job ends within 10 s of the failure (it took 120 s, the deadline, before)."""
    who, extra, kind, text = FAILURES[case]
    failed = n_ranks - 1 if who == "last" else who
    cfg = dict(params=dict(hidden_layer_sizes=[4], max_iter=extra.get("max_iter", 50),
                           random_state=0, batch_size=12, tol=0, n_iter_no_change=1000))
    if "fail" in extra:
        cfg["fail"] = dict(extra["fail"], rank=failed)
    if extra.get("checkpoint"):
        cfg["checkpoint"] = str(tmp_path / "run.ckpt")
    if extra.get("bad"):
        cfg["bad_rank"] = failed
    done, status, errors, t_fail, end = launch_failing(tmp_path, n_ranks, cfg)
    assert done.returncode != 0
    assert all(s is not None and s != 0 for s in status), (status, done.stderr[-3000:])
    assert errors[failed]["type"] == kind and text in errors[failed]["message"]
    for r in range(n_ranks):
        if r != failed:
            assert errors[r]["type"] == "DistributedError", errors[r]
            assert f"rank {failed} failed with {kind}: " in errors[r]["message"], errors[r]
            assert text in errors[r]["message"]
    if sys.version_info >= (3, 11):  # the failing rank's own traceback names it
        assert f"rank {failed} of {n_ranks} failed here" in done.stderr
    assert end - t_fail < 10, f"the job ended {end - t_fail:.1f} s after the failure"


def test_a_rank_that_dies_stops_the_others_fast(tmp_path):
    cfg = dict(params=dict(hidden_layer_sizes=[4], max_iter=50, random_state=0, batch_size=10,
                           tol=0, n_iter_no_change=1000),
               fail=dict(rank=1, epoch=2, how="die"))
    done, ranks, elapsed = launch(tmp_path, 2, cfg, timeout=300)
    assert done.returncode != 0
    assert elapsed < 60, f"took {elapsed:.0f} s"
    assert ranks[0] is None  # rank 0 did not finish as if nothing happened


def test_a_silent_rank_is_given_up_at_the_deadline(tmp_path):
    """A rank that stops answering (asleep in a callback): the other gives up after
    XPNET_MPI_TIMEOUT seconds and ends the job (MPI_Abort), the silent rank included."""
    cfg = dict(params=dict(hidden_layer_sizes=[4], max_iter=50, random_state=0, batch_size=12,
                           tol=0, n_iter_no_change=1000),
               fail=dict(rank=1, epoch=2, how="hang"))
    done, status, errors, t_fail, end = launch_failing(tmp_path, 2, cfg,
                                                       env={"XPNET_MPI_TIMEOUT": "2"})
    assert done.returncode != 0
    assert errors[0]["type"] == "DistributedError"
    assert "did not join a training step's allreduce within 2 s" in errors[0]["message"]
    assert errors[1] is None  # still asleep when the job ended
    assert 2 <= end - t_fail < 2 + 10, f"the job ended {end - t_fail:.1f} s after the hang"


def test_checkpoint_resume_is_bit_exact_with_the_same_ranks(tmp_path):
    """Rank 0 writes every rank's state; 6 epochs straight == 3, then resume to 6 (shuffled,
    with dropout and each rank's early-stopping split). Another N is refused."""
    params = dict(hidden_layer_sizes=[6], random_state=3, dtype="float64", batch_size=16,
                  dropout=0.2, early_stopping=True, validation_fraction=0.2,
                  n_iter_no_change=50)
    straight_dir, ckpt_dir = tmp_path / "straight", tmp_path / "ckpt"
    straight_dir.mkdir()
    ckpt_dir.mkdir()
    ckpt = str(ckpt_dir / "run.ckpt")
    done, straight, _ = launch(straight_dir, 2, dict(params={**params, "max_iter": 6}))
    assert done.returncode == 0, done.stderr[-3000:]
    done, _, _ = launch(ckpt_dir, 2, dict(params={**params, "max_iter": 3}, checkpoint=ckpt))
    assert done.returncode == 0, done.stderr[-3000:]
    assert xpnet.load(ckpt).n_iter_ == 3
    done, resumed, _ = launch(ckpt_dir, 2, dict(params={**params, "max_iter": 6},
                                                checkpoint=ckpt, resume=True))
    assert done.returncode == 0, done.stderr[-3000:]
    for r in range(2):
        for a, b in zip(_coefs(resumed[r]), _coefs(straight[r])):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(resumed[r]["loss_curve"], straight[r]["loss_curve"])
        np.testing.assert_array_equal(resumed[r]["val_scores"], straight[r]["val_scores"])
    done, _, _ = launch(ckpt_dir, 3, dict(params={**params, "max_iter": 8}, checkpoint=ckpt,
                                          resume=True))
    assert done.returncode != 0 and "written by 2 rank(s)" in done.stderr


def test_a_checkpoint_write_that_fails_leaves_the_last_one_to_resume(tmp_path):
    """Rank 0's disk fills while it writes epoch 3's checkpoint: every rank stops, the file
    still holds epoch 2 (no temporary file left), and resuming it with the same ranks gives
    the run that never failed, bit for bit."""
    params = dict(hidden_layer_sizes=[6], random_state=3, dtype="float64", batch_size=16,
                  dropout=0.2, early_stopping=True, validation_fraction=0.2,
                  n_iter_no_change=50, max_iter=4)
    straight_dir, ckpt_dir = tmp_path / "straight", tmp_path / "ckpt"
    straight_dir.mkdir()
    ckpt_dir.mkdir()
    ckpt = str(ckpt_dir / "run.ckpt")
    done, straight, _ = launch(straight_dir, 2, dict(params=params))
    assert done.returncode == 0, done.stderr[-3000:]
    done, _, _ = launch(ckpt_dir, 2, dict(params=params, checkpoint=ckpt,
                                          fail=dict(rank=0, epoch=3, how="fsize")))
    assert done.returncode != 0 and "File too large" in done.stderr, done.stderr[-3000:]
    assert "rank 0 failed with OSError" in done.stderr
    assert xpnet.load(ckpt).n_iter_ == 2
    assert sorted(p.name for p in ckpt_dir.iterdir() if "ckpt" in p.name) == ["run.ckpt"]
    done, resumed, _ = launch(ckpt_dir, 2, dict(params=params, checkpoint=ckpt, resume=True))
    assert done.returncode == 0, done.stderr[-3000:]
    for r in range(2):
        for a, b in zip(_coefs(resumed[r]), _coefs(straight[r])):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(resumed[r]["loss_curve"], straight[r]["loss_curve"])
        np.testing.assert_array_equal(resumed[r]["val_scores"], straight[r]["val_scores"])


def test_load_shard_maps_only_the_ranks_rows(tmp_path):
    from xpnet.datasets import load_shard

    X = np.arange(10 * 3, dtype=np.float64).reshape(10, 3)
    np.save(tmp_path / "X.npy", X)
    shards = [load_shard(tmp_path / "X.npy", rank=r, size=3) for r in range(3)]
    assert [len(s) for s in shards] == [4, 3, 3]
    np.testing.assert_array_equal(np.concatenate(shards), X)
    assert all(isinstance(s, np.memmap) for s in shards)  # mapped, not read
    rows = [np.asarray(r) for r in np.array_split(np.arange(10), 3)]
    for s, r in zip(shards, rows):
        np.testing.assert_array_equal(s, X[r])
    with pytest.raises(ValueError, match="rank must be in"):
        load_shard(tmp_path / "X.npy", rank=3, size=3)


def test_ctrl_c_on_one_rank_stops_every_rank_after_the_same_step(tmp_path):
    cfg = dict(params=dict(hidden_layer_sizes=[4], max_iter=20, random_state=0, batch_size=10,
                           dtype="float64", tol=0, n_iter_no_change=1000),
               fail=dict(rank=1, epoch=2, how="sigint"))
    done, ranks, _ = launch(tmp_path, 2, cfg)
    assert done.returncode == 0, done.stderr[-3000:]
    # rank 1's Ctrl-C at the end of epoch 2 reaches every rank with the next step's allreduce:
    # all stop there (epoch 3 unfinished), keep the same parameters, and return normally
    assert int(ranks[0]["n_iter"]) == int(ranks[1]["n_iter"]) == 2
    for a, b in zip(_coefs(ranks[0]), _coefs(ranks[1])):
        np.testing.assert_array_equal(a, b)


def test_divergence_is_found_at_the_same_batch_on_every_rank(tmp_path):
    cfg = dict(task="regression", diverge=True,
               params=dict(hidden_layer_sizes=[8], max_iter=20, random_state=0, batch_size=10,
                           dtype="float64", solver="sgd", momentum=0.0,
                           learning_rate_init=50.0))
    done, ranks, _ = launch(tmp_path, 2, cfg)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "diverged" in ranks[0] and "diverged" in ranks[1]
    np.testing.assert_array_equal(ranks[0]["diverged"], ranks[1]["diverged"])
    for a, b in zip(_coefs(ranks[0]), _coefs(ranks[1])):
        np.testing.assert_array_equal(a, b)
        assert np.isfinite(a).all()


def test_the_command_line_under_mpiexec(tmp_path):
    model = tmp_path / "m.xpnet"
    done = subprocess.run([MPIEXEC, "-n", "2", str(Path(sys.executable).parent / "xpnet"),
                           "train", "--dataset", "breast_cancer", "--epochs", "20", "--quiet",
                           "--layers", "16", "--distributed", "mpi", "--save", str(model)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("test accuracy:") == 1  # rank 0 reports, once
    assert "data parallel over MPI" in done.stdout
    est = xpnet.load(model)
    assert est.n_iter_ == 20 and est.get_params()["distributed"] == "mpi"


def test_sparse_shards_train_the_dense_model(tmp_path):
    """Each rank's CSR shard, made dense a batch at a time, trains the model of the same
    shard given dense (shuffled, so the rows go through the host order too)."""
    params = dict(hidden_layer_sizes=[5], max_iter=3, random_state=0, dtype="float64",
                  batch_size=16)
    runs = {}
    for sparse in (False, True):
        d = tmp_path / str(sparse)
        d.mkdir()
        done, ranks, _ = launch(d, 2, dict(params=params, zero_small=True, sparse=sparse))
        assert done.returncode == 0, done.stderr[-3000:]
        runs[sparse] = ranks
    for r in range(2):
        for a, b in zip(_coefs(runs[True][r]), _coefs(runs[False][r])):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(runs[True][r]["loss_curve"], runs[False][r]["loss_curve"])


def test_nccl_is_off_until_verified():
    with pytest.raises(ValueError, match="has not run on a GPU yet: set XPNET_NCCL=1"):
        xpnet.MLPClassifier(distributed="nccl").fit(np.zeros((4, 2)), [0, 1, 0, 1])


@pytest.mark.gpu
def test_nccl_ranks_equal_one_process(tmp_path):
    """CuPy ranks summing their gradients with NCCL (one rank per GPU, or one rank alone on a
    single GPU) train the model one NumPy process trains on the global batches."""
    import cupy

    n_ranks = min(2, cupy.cuda.runtime.getDeviceCount())
    cfg = dict(backend="cupy", distributed="nccl", n=120,
               params=dict(hidden_layer_sizes=[7], max_iter=4, random_state=0,
                           dtype="float64", batch_size=12, shuffle=False, solver="adam",
                           learning_rate_init=0.01))
    done, ranks, _ = launch(tmp_path, n_ranks, cfg, env={"XPNET_NCCL": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    X, y = worker.data("multiclass", 120)
    order = global_order([len(r) for r in np.array_split(np.arange(120), n_ranks)], 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = xpnet.MLPClassifier(**cfg["params"], backend="numpy").fit(X[order], y[order])
    np.testing.assert_allclose(ranks[0]["loss_curve"], ref.loss_curve_, rtol=1e-10)
    for a, b in zip(_coefs(ranks[0]), ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.gpu
@pytest.mark.multi_gpu
@pytest.mark.parametrize("case", ["callback", "step"])
def test_nccl_ranks_share_a_failure_within_seconds(tmp_path, case):
    """Two CuPy ranks summing over NCCL (one GPU each): rank 1 fails; rank 0, waiting in the
    NCCL allreduce or an MPI collective, aborts the NCCL communicator and raises naming it."""
    cfg = dict(backend="cupy", distributed="nccl",
               params=dict(hidden_layer_sizes=[4], max_iter=50, random_state=0,
                           batch_size=12, tol=0, n_iter_no_change=1000),
               fail=dict(rank=1, epoch=2, how="raise" if case == "callback" else "step"))
    done, status, errors, t_fail, end = launch_failing(tmp_path, 2, cfg,
                                                       env={"XPNET_NCCL": "1"})
    assert all(s is not None and s != 0 for s in status), (status, done.stderr[-3000:])
    assert errors[0]["type"] == "DistributedError", errors[0]
    assert "rank 1 failed with" in errors[0]["message"]
    assert end - t_fail < 10, f"the job ended {end - t_fail:.1f} s after the failure"
