"""The drop-in promise: with ``backend="numpy", dtype="float64"``, the same parameters and
``random_state``, xpnet's MLPs give scikit-learn's model: coefficients and loss curve within
1e-9 relative, the same ``n_iter_``, ``t_``, early-stopping scores and best values.

scikit-learn runs side by side over a grid: sgd (constant, invscaling, adaptive, momentum,
Nesterov) and adam; shuffle on and off; early stopping on and off; binary, multiclass,
multilabel, single- and two-output regression, Poisson regression (``loss="poisson"``). The data are small slices of scikit-learn's
datasets, standardized (and raw digits, which saturate), so the grid runs in seconds. The same initial parameters hold on every
backend (the draws are on the host), so the other backends start from scikit-learn's too
(tests/test_agreement.py covers the backends' agreement).
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

sk = pytest.importorskip("sklearn.neural_network")
from sklearn.datasets import (load_breast_cancer, load_digits,  # noqa: E402
                              make_multilabel_classification, make_regression)

import xpnet  # noqa: E402

RTOL = 1e-9


def _scaled(X):
    return (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)


def _tasks():
    Xd, yd = load_digits(return_X_y=True)
    Xb, yb = load_breast_cancer(return_X_y=True)
    Xr, yr = make_regression(n_samples=150, n_features=8, n_targets=2, noise=0.1,
                             random_state=0)
    Xm, ym = make_multilabel_classification(n_samples=150, n_features=10, n_classes=3,
                                            random_state=0)
    Xp = _scaled(Xr[:, :4])
    yp = np.random.RandomState(0).poisson(np.exp(0.4 * Xp[:, 0] - 0.3 * Xp[:, 1] + 0.5))
    return {"multiclass": (_scaled(Xd[:200]), yd[:200]),
            # raw pixels 0..16: the first epochs saturate the softmax, and the loss is
            # scikit-learn's only with its clipping of p to [eps, 1 - eps]
            "multiclass-raw": (Xd[:200], yd[:200]),
            "poisson": (Xp, yp.astype(float)),
            "binary": (_scaled(Xb[:150]), yb[:150]),
            "multilabel": (_scaled(Xm), ym),
            "regression": (_scaled(Xr), yr[:, 0] / yr[:, 0].std()),
            "regression-2-outputs": (_scaled(Xr), yr / yr.std(0))}


TASKS = _tasks()
SOLVERS = {
    "sgd": dict(solver="sgd", learning_rate_init=0.05, momentum=0.0),
    "sgd-invscaling": dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.1),
    "sgd-adaptive": dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.05,
                         tol=5e-2, n_iter_no_change=1),
    "momentum": dict(solver="sgd", momentum=0.9, nesterovs_momentum=False,
                     learning_rate_init=0.01),
    "nesterov": dict(solver="sgd", momentum=0.9, nesterovs_momentum=True,
                     learning_rate_init=0.01),
    "adam": dict(solver="adam", learning_rate_init=0.003),
    "adam-tol": dict(solver="adam", learning_rate_init=0.01, tol=3e-2, n_iter_no_change=2),
}
GRID = list(itertools.product(TASKS, SOLVERS, [True, False], [False, True]))


def _pair(task, solver, shuffle, early_stopping, **extra):
    X, y = TASKS[task]
    kw = dict(hidden_layer_sizes=(12, 7), max_iter=20, random_state=3, shuffle=shuffle,
              early_stopping=early_stopping, alpha=1e-3, batch_size=32, **SOLVERS[solver])
    kw.update(extra)
    reg = task.startswith("regression") or task == "poisson"
    if task == "poisson":
        kw["loss"] = "poisson"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = (sk.MLPRegressor if reg else sk.MLPClassifier)(**kw).fit(X, y)
        got = (xpnet.MLPRegressor if reg else xpnet.MLPClassifier)(
            **kw, backend="numpy", dtype="float64").fit(X, y)
    return got, ref, X, y


def _relative(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))) if a.size else 0.0


@pytest.mark.parametrize("task,solver,shuffle,early_stopping", GRID,
                         ids=[f"{t}-{s}-{'shuffle' if sh else 'noshuffle'}"
                              f"{'-es' if es else ''}" for t, s, sh, es in GRID])
def test_same_model_as_scikit_learn(task, solver, shuffle, early_stopping):
    got, ref, X, y = _pair(task, solver, shuffle, early_stopping)
    assert got.n_iter_ == ref.n_iter_ and got.t_ == ref.t_
    assert len(got.loss_curve_) == len(ref.loss_curve_)
    assert _relative(got.loss_curve_, ref.loss_curve_) < RTOL
    for a, b in zip(got.coefs_ + got.intercepts_, ref.coefs_ + ref.intercepts_):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert _relative(a, b) < RTOL
    assert got.out_activation_ == ref.out_activation_
    if early_stopping:
        np.testing.assert_allclose(got.validation_scores_, ref.validation_scores_, rtol=RTOL)
        assert got.best_validation_score_ == pytest.approx(ref.best_validation_score_,
                                                           rel=RTOL)
        assert got.best_loss_ is None and ref.best_loss_ is None
    else:
        assert got.best_loss_ == pytest.approx(ref.best_loss_, rel=RTOL)
    if task.startswith("regression") or task == "poisson":
        np.testing.assert_allclose(got.predict(X), ref.predict(X), rtol=1e-8, atol=1e-10)
    else:
        np.testing.assert_array_equal(got.predict(X), ref.predict(X))


def test_the_grid_exercises_the_stopping_rules():
    """Not only max_iter: tol on the training loss, the adaptive schedule's lr / 5, and early
    stopping on the validation score end some of the grid's runs."""
    got, ref, _, _ = _pair("multiclass", "adam-tol", True, False)
    assert got.n_iter_ == ref.n_iter_ < 20  # tol on the training loss
    got, ref, _, _ = _pair("multiclass", "sgd-adaptive", True, False)
    assert ref._optimizer.learning_rate < 0.05  # divided by 5 at least once
    assert got._optimizer.learning_rate == pytest.approx(ref._optimizer.learning_rate)
    got, ref, _, _ = _pair("multilabel", "adam", True, True)
    assert got.n_iter_ == ref.n_iter_ < 20  # early stopping


def test_partial_fit_and_warm_start_as_scikit_learn():
    X, y = TASKS["multiclass"]
    kw = dict(hidden_layer_sizes=(9,), random_state=1, batch_size=40, solver="sgd",
              learning_rate_init=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sk.MLPClassifier(**kw)
        got = xpnet.MLPClassifier(**kw, backend="numpy", dtype="float64")
        for est in (ref, got):
            for k in range(3):
                est.partial_fit(X[60 * k: 60 * k + 60], y[60 * k: 60 * k + 60],
                                classes=np.arange(10))
        ref_w = sk.MLPClassifier(**kw, warm_start=True, max_iter=3).fit(X, y)
        got_w = xpnet.MLPClassifier(**kw, warm_start=True, max_iter=3, backend="numpy",
                                    dtype="float64").fit(X, y)
        ref_w.fit(X, y)
        got_w.fit(X, y)
    for g, r in ((got, ref), (got_w, ref_w)):
        assert g.loss_curve_ == pytest.approx(r.loss_curve_, rel=RTOL)
        for a, b in zip(g.coefs_ + g.intercepts_, r.coefs_ + r.intercepts_):
            assert _relative(a, b) < RTOL


def test_initial_parameters_are_scikit_learns_on_every_backend():
    """max_iter=1 with a zero learning rate is not allowed; one epoch of lr 1e-300 leaves the
    initial draws as they were (float64), scikit-learn's Glorot-uniform from the seed."""
    X, y = TASKS["binary"]
    rs = np.random.RandomState(5)
    W, b = xpnet.initialize_parameters([X.shape[1], 6, 1], init="glorot", rng=rs,
                                       dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sk.MLPClassifier((6,), random_state=5, max_iter=1, solver="sgd",
                               learning_rate_init=1e-300, alpha=0).fit(X, y)
    for l in (1, 2):
        np.testing.assert_array_equal(ref.coefs_[l - 1], W[l].T)
        np.testing.assert_array_equal(ref.intercepts_[l - 1], b[l][:, 0])
