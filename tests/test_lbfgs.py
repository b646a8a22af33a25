"""solver="lbfgs" (xpnet.training.lbfgs) against scikit-learn's, side by side: the same
n_iter_, loss_ and coefficients within 1e-9 relative in float64, over binary, multiclass,
multilabel, one- and two-output regression and Poisson, with and without sample weights; a
warm start; max_fun; and scikit-learn's rules (no partial_fit, ConvergenceWarning).

L-BFGS's path through a non-convex loss amplifies last-bit differences of the values and
gradients as it goes (measured on these tasks: ~1e-13 after 20 iterations, ~1e-9 after 40,
~1e-6 after 50-100): the grid runs 15 iterations, where every run agrees to 1e-10 or better.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sk = pytest.importorskip("sklearn.neural_network")

import xpnet  # noqa: E402
from conftest import usable  # noqa: E402
from xpnet.estimators.sklearn_base import ConvergenceWarning  # noqa: E402
from test_sklearn_parity import TASKS, _relative  # noqa: E402

RTOL = 1e-9
LBFGS_TASKS = ["multiclass", "multiclass-raw", "binary", "multilabel", "regression",
               "regression-2-outputs", "poisson"]


def _fit(task, *, weights=False, backend="numpy", **extra):
    X, y = TASKS[task]
    kw = dict(hidden_layer_sizes=(12, 7), solver="lbfgs", max_iter=15, random_state=3,
              alpha=1e-3)
    kw.update(extra)
    reg = task.startswith("regression") or task == "poisson"
    if task == "poisson":
        kw["loss"] = "poisson"
    sw = np.random.RandomState(1).uniform(0.5, 2.0, len(y)) if weights else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = (sk.MLPRegressor if reg else sk.MLPClassifier)(**kw).fit(X, y, sample_weight=sw)
        got = (xpnet.MLPRegressor if reg else xpnet.MLPClassifier)(
            **kw, backend=backend).fit(X, y, sample_weight=sw)
    return got, ref


@pytest.mark.parametrize("weights", [False, True], ids=["", "sample_weight"])
@pytest.mark.parametrize("task", LBFGS_TASKS)
def test_lbfgs_is_scikit_learns(task, weights):
    got, ref = _fit(task, weights=weights)
    assert got.n_iter_ == ref.n_iter_
    assert got.loss_ == pytest.approx(ref.loss_, rel=RTOL)
    for a, b in zip(got.coefs_ + got.intercepts_, ref.coefs_ + ref.intercepts_):
        assert a.dtype == b.dtype == np.float64 and _relative(a, b) < RTOL
    assert got.loss_curve_[-1] == got.loss_  # xpnet's extra: J after each iteration
    assert not hasattr(ref, "loss_curve_") and got.best_loss_ is None


def test_lbfgs_converges_stops_and_warns_as_scikit_learn():
    """tol (gtol) stops it before max_iter in both; max_fun caps the evaluations with
    scikit-learn's ConvergenceWarning; a warm start continues from the fitted weights."""
    got, ref = _fit("binary", tol=1e-2, max_iter=200)
    assert got.n_iter_ == ref.n_iter_ < 200
    X, y = TASKS["multiclass"]
    with pytest.warns(ConvergenceWarning, match=r"lbfgs failed to converge after \d+ "
                                                      r"iteration\(s\) \(status=1\)"):
        est = xpnet.MLPClassifier((8,), solver="lbfgs", max_fun=10, random_state=0).fit(X, y)
    assert est.n_iter_ <= 10
    kw = dict(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=5, random_state=0,
              warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sk.MLPClassifier(**kw).fit(X, y).fit(X, y)
        got = xpnet.MLPClassifier(**kw).fit(X, y).fit(X, y)
    assert got.n_iter_ == ref.n_iter_ == 5
    for a, b in zip(got.coefs_, ref.coefs_):
        assert _relative(a, b) < RTOL


def test_lbfgs_has_no_partial_fit_and_refuses_what_needs_epochs():
    X, y = TASKS["binary"]
    assert not hasattr(xpnet.MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(xpnet.MLPRegressor(solver="lbfgs"), "partial_fit")
    assert hasattr(xpnet.MLPClassifier(solver="sgd"), "partial_fit")
    with pytest.raises(AttributeError, match="only available for stochastic optimizers"):
        xpnet.MLPClassifier(solver="lbfgs").partial_fit
    with pytest.raises(ValueError, match="solver='lbfgs' does not support dropout, clip_norm"):
        xpnet.MLPClassifier(solver="lbfgs", dropout=0.1, clip_norm=1.0).fit(X, y)
    with pytest.raises(ValueError, match="does not support validation_data"):
        xpnet.MLPClassifier(solver="lbfgs").fit(X, y, validation_data=(X, y))


def test_lbfgs_keeps_float32_and_saves():
    X, y = TASKS["multiclass"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = xpnet.MLPClassifier((8,), solver="lbfgs", max_iter=10,
                                  random_state=0).fit(X.astype(np.float32), y)
    assert est.coefs_[0].dtype == np.float32 and est.predict_proba(X).dtype == np.float32
    assert est.score(X, y) > 0.9


@pytest.mark.parametrize("backend", ["torch", "array_api_strict"])
def test_lbfgs_on_other_backends_agrees_with_numpy(backend):
    ok, why = usable(backend)
    if not ok:
        pytest.skip(why)
    got, ref = _fit("multiclass", backend=backend, max_iter=10)
    assert got.n_iter_ == ref.n_iter_ and got.loss_ == pytest.approx(ref.loss_, rel=1e-10)
    for a, b in zip(got.coefs_, ref.coefs_):
        assert _relative(a, b) < 1e-8
