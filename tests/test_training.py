"""The training loop: the core equations driven per batch, scikit-learn's bookkeeping,
cross-backend agreement, divergence, Ctrl-C, out of memory."""

from __future__ import annotations

import os
import signal
import threading
from functools import partial

import numpy as np
from sklearn.model_selection import train_test_split
import pytest

import xpnet
from xpnet import MLPClassifier, MLPRegressor
from xpnet.estimators.sklearn_base import ConvergenceWarning
from xpnet.backends import is_out_of_memory
from xpnet.errors import DivergenceError

from conftest import blobs as _blobs, usable

CONV = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


blobs = partial(_blobs, n=48, spread=2.0)  # 48 examples, 4 features, 3 classes


# --------------------------------------------------------------------------- the equations
@CONV
@pytest.mark.parametrize("cls, out", [(MLPClassifier, "softmax"), (MLPRegressor, "identity")])
def test_one_full_batch_epoch_is_one_gradient_descent_step_of_the_core(cls, out):
    """batch = all examples, no shuffle, plain SGD, no L2: fit's first epoch is exactly
    xpnet.gradient_descent_step from the same host-drawn initial parameters."""
    X, y = blobs()
    est = cls(hidden_layer_sizes=(5,), solver="sgd", momentum=0.0, alpha=0.0,
              learning_rate_init=0.1, batch_size=48, shuffle=False, max_iter=1,
              random_state=7, dtype="float64", backend="numpy")
    est.fit(X, y)
    Y = np.eye(3)[y] if out == "softmax" else y[:, None].astype(float)
    W, b = xpnet.initialize_parameters([4, 5, Y.shape[1]], init="glorot",
                                       rng=np.random.RandomState(7), dtype="float64")
    J = xpnet.gradient_descent_step(np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T), W, b,
                                    ["relu", out], 0.1)
    assert est.loss_curve_ == [float(J)]
    for l in (1, 2):
        np.testing.assert_array_equal(est.coefs_[l - 1], W[l].T)
        np.testing.assert_array_equal(est.intercepts_[l - 1], b[l][:, 0])


@CONV
def test_epoch_loss_is_the_sample_weighted_mean_of_batch_losses_with_l2():
    """loss = (1/n) sum_B m_B (J_B + (alpha / 2 m_B) sum ||W||^2), W before each step."""
    X, y = blobs(n=10)
    est = MLPClassifier(hidden_layer_sizes=(3,), solver="sgd", momentum=0.0, alpha=0.5,
                        learning_rate_init=0.05, batch_size=4, shuffle=False, max_iter=1,
                        random_state=0, dtype="float64", backend="numpy").fit(X, y)
    W, b = xpnet.initialize_parameters([4, 3, 3], init="glorot",
                                       rng=np.random.RandomState(0), dtype="float64")
    Y = np.eye(3)[y]
    total = 0.0
    for s in range(0, 10, 4):  # batches of 4, 4, 2
        Xb, Yb = X[s:s + 4].T.copy(), Y[s:s + 4].T.copy()
        m = Xb.shape[1]
        AL, cache = xpnet.forward(Xb, W, b, ["relu", "softmax"])
        J = xpnet.compute_cost(cache.Z[2], Yb, "softmax", xp=np)
        J += 0.5 * 0.5 * sum((W[l] ** 2).sum() for l in W) / m
        dW, db = xpnet.backward(Yb, W, cache, ["relu", "softmax"], xp=np)
        for l in W:
            W[l] -= 0.05 * (dW[l] + 0.5 / m * W[l])
            b[l] -= 0.05 * db[l]
        total += m * float(J)
    assert est.loss_curve_[0] == pytest.approx(total / 10, rel=1e-14)
    np.testing.assert_allclose(est.coefs_[0], W[1].T, rtol=1e-13)


@pytest.mark.parametrize("validation", [None, "validation_data", "early_stopping",
                                        "early_stopping+validation_data"])
def test_no_host_read_inside_an_epoch(monkeypatch, validation):
    """The loop reads from the device once per epoch (to_numpy of the stacked metrics); the
    validation loss and score ride along in that read."""
    import xpnet.training.loop as training

    calls = []
    original = training.to_numpy
    monkeypatch.setattr(training, "to_numpy", lambda x: calls.append(x.shape) or original(x))
    X, y = blobs(n=80)
    kw, fit_kw = {}, {}
    if validation and "validation_data" in validation:
        fit_kw["validation_data"] = (X[64:], y[64:])
    if validation and "early_stopping" in validation:
        kw = dict(early_stopping=True, validation_fraction=0.2, n_iter_no_change=100)
    with pytest.warns(ConvergenceWarning):
        MLPClassifier(hidden_layer_sizes=(4,), batch_size=8, max_iter=3, random_state=0,
                      backend="numpy", **kw).fit(X[:64], y[:64], **fit_kw)
    # 3 epochs x (loss, [validation loss, score,] finiteness flag), 8 (or 7) batches each
    assert calls == [(4,) if validation else (2,)] * 3


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_validation_data_adds_no_host_read_per_epoch_anywhere(monkeypatch, backend):
    """Counting every device->host copy of the whole package (to_numpy and the backends'
    own reads): a fit of 5 epochs makes exactly 3 more than a fit of 2, one per epoch, with
    validation_data as without it."""
    ok, reason = usable(backend)
    if not ok:
        pytest.skip(reason)
    import xpnet.backends
    from xpnet.estimators import base, fitting, inputs
    from xpnet.estimators import holdout as validation
    from xpnet.estimators import mlp as estimators
    from xpnet.io import modelfile
    from xpnet.training import loop as training

    calls, inside = [], []
    original = xpnet.backends.to_numpy

    def counted(x):  # on torch, a NumPy array passed through (the shuffle order) is no read
        if (backend == "numpy" or not isinstance(x, np.ndarray)) and not inside:
            calls.append(type(x).__name__)
        inside.append(1)
        try:
            return original(x)
        finally:
            inside.pop()

    for module in (xpnet.backends, base, estimators, fitting, inputs, modelfile, training,
                   validation):
        monkeypatch.setattr(module, "to_numpy", counted)
    if backend == "torch":  # torch's own reads outside to_numpy: .item(), .cpu(), ...
        import torch

        def wrap(name):
            method = getattr(torch.Tensor, name)

            def read(self, *args, **kwargs):
                if not inside:
                    calls.append(name)
                return method(self, *args, **kwargs)
            return read

        for name in ("item", "cpu", "numpy", "tolist", "__bool__", "__float__", "__int__"):
            monkeypatch.setattr(torch.Tensor, name, wrap(name))
    X, y = blobs(n=80)
    counts = {}
    for with_val in (False, True):
        for epochs in (2, 5):
            calls.clear()
            fit_kw = {"validation_data": (X[64:], y[64:])} if with_val else {}
            with pytest.warns(ConvergenceWarning):
                MLPClassifier(hidden_layer_sizes=(4,), batch_size=8, max_iter=epochs,
                              random_state=0, backend=backend).fit(X[:64], y[:64], **fit_kw)
            counts[with_val, epochs] = len(calls)
    assert counts[False, 5] - counts[False, 2] == 3
    assert counts[True, 5] - counts[True, 2] == 3


# --------------------------------------------------------------------------- backends agree
def _run(backend: str, **kw):
    X, y = blobs()
    params = dict(hidden_layer_sizes=(6, 5), activation=["tanh", "relu"], solver="sgd",
                  momentum=0.9, learning_rate_init=0.05, alpha=1e-3, batch_size=10,
                  dropout=[0.2, 0.1], clip_norm=2.0, max_iter=4, random_state=3,
                  dtype="float64", early_stopping=True, validation_fraction=0.25,
                  n_iter_no_change=100, backend=backend)
    params.update(kw)
    with pytest.warns(ConvergenceWarning):
        return MLPClassifier(**params).fit(X, y)


@pytest.mark.parametrize("other", ["torch", "array_api_strict"])
def test_two_backends_from_one_seed_give_the_same_curves(other):
    ok, reason = usable(other)
    if not ok:
        pytest.skip(reason)
    a, b = _run("numpy"), _run(other)
    assert b._net.backend.name == other
    np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=1e-8)
    np.testing.assert_allclose(b.validation_loss_curve_, a.validation_loss_curve_, rtol=1e-8)
    assert b.validation_scores_ == a.validation_scores_
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(cb, ca, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_same_seed_same_backend_is_bit_for_bit(solver):
    a, b = _run("numpy", solver=solver), _run("numpy", solver=solver)
    assert a.loss_curve_ == b.loss_curve_ and a.validation_scores_ == b.validation_scores_
    for ca, cb in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(ca, cb)


# --------------------------------------------------------------------------- bookkeeping
def test_max_iter_reached_warns_and_history_is_complete():
    X, y = blobs()
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X, y)
    assert est.n_iter_ == 3 and len(est.loss_curve_) == 3 and est.t_ == 3 * 48
    assert [h["epoch"] for h in est.history_] == [1, 2, 3]
    assert [h["loss"] for h in est.history_] == est.loss_curve_
    assert all(h["val_loss"] is None and h["time"] > 0 for h in est.history_)
    assert est.validation_scores_ is None and est.best_loss_ == min(est.loss_curve_)


def test_tol_convergence_stops_after_n_iter_no_change_plus_one_bad_epochs():
    """scikit-learn: an epoch counts as no improvement when loss > best_loss - tol; stop when
    the count exceeds n_iter_no_change. With a huge tol every epoch after the first counts."""
    X, y = blobs()
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=50, tol=1e9, n_iter_no_change=2,
                        random_state=0).fit(X, y)  # no ConvergenceWarning: it converged
    assert est.n_iter_ == 4 and len(est.loss_curve_) == 4


def test_early_stopping_restores_the_best_weights():
    X, y = blobs(n=90, seed=2)
    est = MLPClassifier(hidden_layer_sizes=(16,), max_iter=200, early_stopping=True,
                        n_iter_no_change=5, validation_fraction=0.3, learning_rate_init=0.05,
                        random_state=0, dtype="float64").fit(X, y)
    assert est.n_iter_ < 200
    scores = est.validation_scores_
    assert len(scores) == len(est.validation_loss_curve_) == est.n_iter_
    assert est.best_validation_score_ == max(scores) and est.best_loss_ is None
    train_idx, val_idx = est._split
    assert len(val_idx) == 27 and len(set(train_idx) | set(val_idx)) == 90
    # scikit-learn's train_test_split, drawn from the stream after the initial parameters
    # (multiclass: not stratified, as scikit-learn's MLP)
    rs = np.random.RandomState(0)
    xpnet.initialize_parameters([4, 16, 3], init="glorot", rng=rs)
    want_train, want_val = train_test_split(np.arange(90), test_size=0.3, random_state=rs)
    np.testing.assert_array_equal(train_idx, want_train)
    np.testing.assert_array_equal(val_idx, want_val)
    assert est.score(X[val_idx], y[val_idx]) == pytest.approx(max(scores), abs=1e-12)
    if scores[-1] < max(scores):  # the last epoch was worse: the weights were rolled back
        assert est.score(X[val_idx], y[val_idx]) > scores[-1]


def test_early_stopping_validation_set_too_small():
    X, y = blobs(n=12)
    est = MLPClassifier(early_stopping=True, validation_fraction=0.05)  # 1 validation sample
    with pytest.raises(ValueError, match="validation set is too small"):
        est.fit(X, y)
    assert not hasattr(est, "n_features_in_")


@CONV
def test_warm_start_continues_from_the_fitted_weights():
    X, y = blobs()
    kw = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0, learning_rate_init=0.01)
    est = MLPClassifier(warm_start=True, **kw).fit(X, y)
    first = list(est.loss_curve_)
    est.fit(X, y)
    assert est.n_iter_ == 3 and est.loss_curve_[:3] == first and len(est.loss_curve_) == 6
    assert est.loss_curve_[3] < first[0]
    cold = MLPClassifier(**kw).fit(X, y).fit(X, y)  # warm_start=False: starts over
    assert cold.loss_curve_ == first


@CONV
def test_partial_fit_is_one_epoch_and_matches_fit_with_max_iter_1():
    X, y = blobs()
    kw = dict(hidden_layer_sizes=(5,), random_state=0, learning_rate_init=0.01)
    pf = MLPClassifier(**kw).partial_fit(X, y, classes=[0, 1, 2])
    one = MLPClassifier(max_iter=1, **kw).fit(X, y)
    assert pf.n_iter_ == 1 and pf.loss_curve_ == one.loss_curve_
    for a, b in zip(pf.coefs_, one.coefs_):
        np.testing.assert_array_equal(a, b)
    pf.partial_fit(X[:20], y[:20])  # later calls: classes known, Adam state kept
    assert pf.n_iter_ == 1 and len(pf.loss_curve_) == 2 and pf.t_ == 48 + 20
    assert pf._optimizer.t == 2  # one batch (of min(200, n)) per call


def test_invscaling_and_adaptive_schedules_follow_scikit_learn():
    X, y = blobs()
    with pytest.warns(ConvergenceWarning):
        inv = MLPClassifier(hidden_layer_sizes=(4,), solver="sgd", learning_rate="invscaling",
                            learning_rate_init=0.5, power_t=0.25, max_iter=3,
                            random_state=0).fit(X, y)
    for i, h in enumerate(inv.history_):  # lr after epoch i+1: lr0 / (t + 1) ** power_t
        assert h["learning_rate"] == pytest.approx(0.5 / (48 * (i + 1) + 1) ** 0.25, rel=1e-15)
    with pytest.warns(ConvergenceWarning):
        ada = MLPClassifier(hidden_layer_sizes=(4,), solver="sgd", learning_rate="adaptive",
                            learning_rate_init=0.1, tol=1e9, n_iter_no_change=1, max_iter=6,
                            random_state=0).fit(X, y)
    # count > 1 after epochs 3 and 5: lr /= 5 each time, and training carries on
    assert [h["learning_rate"] for h in ada.history_] == pytest.approx(
        [0.1, 0.1, 0.02, 0.02, 0.004, 0.004])


def test_progress_bar_shows_the_loss(capsys):
    X, y = blobs()
    with pytest.warns(ConvergenceWarning):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, progress_bar=True,
                      early_stopping=True, random_state=0).fit(X, y)
    out, err = capsys.readouterr()
    assert "2/2" in err and "loss=" in err and "val_score=" in err
    assert out == ""  # the bar alone: nothing on stdout
    with pytest.warns(ConvergenceWarning):  # validation metrics without early stopping too
        est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, progress_bar=True,
                            random_state=0).fit(X[:36], y[:36], validation_data=(X[36:], y[36:]))
    err = capsys.readouterr().err
    assert "2/2" in err and f"val_loss={est.validation_loss_curve_[-1]:.5g}" in err
    assert f"val_score={est.validation_scores_[-1]:.4f}" in err
    with pytest.warns(ConvergenceWarning):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, progress_bar=True,
                      random_state=0).fit(X, y)
    assert "val_loss" not in capsys.readouterr().err
    with pytest.raises(ValueError, match="progress_bar must be False, True"):
        MLPClassifier(progress_bar="yes").fit(X, y)


def test_verbose_prints_scikit_learns_lines(capsys):
    """verbose=True: scikit-learn's lines on stdout, its numbers, and no bar."""
    sk = pytest.importorskip("sklearn.neural_network")
    X, y = blobs()
    kw = dict(hidden_layer_sizes=(4,), max_iter=3, early_stopping=True, random_state=0,
              validation_fraction=0.2)
    with pytest.warns(ConvergenceWarning):
        sk.MLPClassifier(**kw, verbose=True).fit(X, y)
    ref = capsys.readouterr().out.splitlines()
    with pytest.warns(ConvergenceWarning):
        MLPClassifier(**kw, verbose=True).fit(X, y)
    out, err = capsys.readouterr()
    assert out.splitlines() == ref  # float64 data: the very same numbers
    assert [line.split(",")[0] for line in ref[::2]] == [f"Iteration {k}" for k in (1, 2, 3)]
    assert ref[1].startswith("Validation score: ") and err == ""


def test_progress_bar_without_tqdm_prints_a_line_per_epoch(capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tqdm", None)  # "not installed": import raises
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    X, y = blobs()
    with pytest.warns(ConvergenceWarning):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, progress_bar=True,
                      random_state=0).fit(X, y)
    out = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in out] == ["Iteration 1", "Iteration 2"]
    assert "loss = " in out[0]


# --------------------------------------------------------------------------- what goes wrong
def test_divergence_stops_with_the_last_finite_parameters_and_a_hint():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    y = 1e4 * (X @ [1.0, 2.0, -1.0])
    est = MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", momentum=0.0,
                       learning_rate_init=1.0, batch_size=8, max_iter=20, random_state=0)
    with pytest.raises(DivergenceError, match=r"Training diverged at epoch 1, batch \d+ of 8: "
                                              r"the loss became (inf|nan).*lower "
                                              r"learning_rate_init \(now 1\).*float64.*clip_norm"
                       ) as info:
        est.fit(X, y)
    assert isinstance(info.value, ValueError)  # and scikit-learn's words, first
    assert str(info.value).startswith("Solver produced non-finite parameter weights. The input "
                                      "data may contain large values and need to be "
                                      "preprocessed.")
    assert info.value.epoch == 1 and 1 <= info.value.batch <= 8
    assert est.n_iter_ == 0 and est.loss_curve_ == []
    assert all(np.isfinite(c).all() for c in est.coefs_ + est.intercepts_)
    assert np.isfinite(est.predict(X)).all()  # usable
    # the kept parameters are those before the bad batch: the same initial draws, then the
    # first (bad - 1) batches of epoch 1's permutation, replayed with partial_fit
    bad = info.value.batch
    gen = np.random.RandomState(0)
    W, b = xpnet.initialize_parameters([3, 8, 1], init="glorot", rng=gen)
    rows = gen.permutation(64)[: 8 * (bad - 1)]
    if bad == 1:
        np.testing.assert_array_equal(est.coefs_[0], W[1].T)
    else:
        replay = MLPRegressor(**{**est.get_params(), "shuffle": False})
        replay.partial_fit(X[rows], y[rows])
        for a, c in zip(replay.coefs_ + replay.intercepts_, est.coefs_ + est.intercepts_):
            np.testing.assert_array_equal(a, c)
    est.set_params(learning_rate_init=1e-4, max_iter=2)  # still usable: it can train on
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y / 1e4)


def _interrupt_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


@pytest.mark.skipif(os.name != "posix", reason="SIGINT to self")
def test_ctrl_c_stops_after_the_current_batch_and_keeps_a_usable_model():
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        X, y = blobs(n=400)
        est = MLPClassifier(hidden_layer_sizes=(32,), batch_size=4, max_iter=10 ** 6,
                            random_state=0)
        timer = _interrupt_after(0.5)
        with pytest.warns(UserWarning, match=r"interrupted by user \(Ctrl-C\) in epoch \d+ "
                                             r"after batch \d+ of 100.*model is usable"):
            est.fit(X, y)
        timer.join()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
        assert 0 < est.n_iter_ < 10 ** 6 or est.n_iter_ == 0
        assert len(est.loss_curve_) == len(est.history_) == est.n_iter_
        assert np.isfinite(est.predict_proba(X)).all() and est.score(X, y) > 0.3
    finally:
        signal.signal(signal.SIGINT, previous)


def test_fit_in_a_worker_thread_leaves_signal_handlers_alone():
    X, y = blobs()
    before = signal.getsignal(signal.SIGINT)
    result = {}

    def work():
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result["est"] = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, y)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert result["est"].n_iter_ == 2 and signal.getsignal(signal.SIGINT) is before


def test_is_out_of_memory_recognises_the_backends_errors():
    assert is_out_of_memory(MemoryError("x"))
    with pytest.raises(MemoryError) as info:
        np.empty((2 ** 40,), dtype=np.float64)  # 8 TiB: NumPy's own _ArrayMemoryError
    assert is_out_of_memory(info.value)
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not is_out_of_memory(ValueError("shapes do not match"))
    ok, _ = usable("torch")
    if ok:
        import torch

        with pytest.raises(RuntimeError) as info:
            torch.empty(2 ** 40, dtype=torch.float64)  # torch's CPU allocator failure
        assert is_out_of_memory(info.value), str(info.value)


# --------------------------------------------------------------------------- NumPy workspace
@CONV
@pytest.mark.parametrize("kw", [
    dict(solver="adam", alpha=0.01, dropout=0.3, early_stopping=True, n_iter_no_change=50),
    dict(solver="sgd", momentum=0.9, nesterovs_momentum=True, clip_norm=0.5, alpha=1e-3,
         dtype="float64", validation_data=True),
])
def test_numpy_fit_holds_one_workspace_and_gives_the_bits_of_fresh_arrays(monkeypatch, kw):
    """On NumPy a fit holds one kernels' workspace (the permuted data, Z, A, dZ, dA reused step
    to step, a second set for the smaller last batch); nothing it keeps — the validation pass,
    the best weights, the optimizer state, the curves — changes from fit with fresh arrays
    every step."""
    from xpnet.backends.numpy_kernels import NumpyKernels

    X, y = blobs(n=93, seed=4)  # batches of 20 and a smaller last one
    kw = dict(kw)
    if kw.pop("validation_data", False):
        kw_fit = {"validation_data": (X[:30], y[:30])}
    else:
        kw_fit = {}
    params = dict(hidden_layer_sizes=(12, 7), batch_size=20, max_iter=6, random_state=3,
                  backend="numpy", **kw)
    made, real = [], NumpyKernels.workspace

    def recording(self):
        made.append(real(self))
        return made[-1]

    monkeypatch.setattr(NumpyKernels, "workspace", recording)
    held = MLPClassifier(**params).fit(X, y, **kw_fit)
    assert len(made) == 1 and made[0].nbytes > 0
    sizes = {k[1][0] for k in made[0] if k[0] == ("Z", 1)}  # (role, shape, dtype)
    assert 20 in sizes and len(sizes) == 2  # full batches and the smaller last one
    monkeypatch.setattr(NumpyKernels, "workspace", lambda self: None)  # fresh arrays
    fresh = MLPClassifier(**params).fit(X, y, **kw_fit)
    assert held.loss_curve_ == fresh.loss_curve_ and len(held.loss_curve_) == 6
    assert held.validation_scores_ == fresh.validation_scores_
    assert held.validation_loss_curve_ == fresh.validation_loss_curve_
    for a, b in zip(held.coefs_ + held.intercepts_, fresh.coefs_ + fresh.intercepts_):
        np.testing.assert_array_equal(a, b)
        assert not any(np.shares_memory(a, buf) for buf in made[0].values())
