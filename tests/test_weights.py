"""sample_weight (fit, partial_fit) and class_weight, with scikit-learn's semantics.

A batch's loss is the weighted mean of its rows' losses, the L2 term divided by the batch's
total weight; with NumPy in float64 the model equals scikit-learn's MLP fitted with the same
weights (1e-9, as tests/test_sklearn_parity.py). Integer weights equal repeated rows when the
batches hold the same rows (one full batch, no shuffle). class_weight multiplies each row's
weight by its class's ("balanced": n / (n_classes count), scikit-learn's formula).
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from conftest import blobs, usable

import xpnet
from xpnet import MLPClassifier, MLPRegressor

sk = pytest.importorskip("sklearn.neural_network")
from sklearn.utils.class_weight import compute_sample_weight  # noqa: E402

RTOL = 1e-9


def _relative(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def _data(task, n=120, seed=0):
    X, y = blobs(n=n, d=5, k=3, seed=seed)
    X = (X - X.mean(0)) / X.std(0)
    if task == "regression":
        y = X[:, 0] - 0.5 * X[:, 1] + 0.1 * np.sin(3 * X[:, 2])
    elif task == "binary":
        y = (y == 1).astype(int)
    w = np.random.default_rng(seed + 7).uniform(0.0, 3.0, n)
    w[:5] = 0.0  # rows that do not count
    return X, y, w


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


GRID = list(itertools.product(["multiclass", "binary", "regression"],
                              [dict(solver="sgd", learning_rate_init=0.05),
                               dict(solver="adam", learning_rate_init=0.01)],
                              [True, False], [False, True]))


@pytest.mark.parametrize("task,solver,shuffle,early_stopping", GRID)
def test_weighted_fit_is_scikit_learns(task, solver, shuffle, early_stopping):
    X, y, w = _data(task)
    kw = dict(hidden_layer_sizes=(8,), max_iter=15, random_state=2, batch_size=25,
              alpha=1e-2, shuffle=shuffle, early_stopping=early_stopping, **solver)
    reg = task == "regression"
    ref = _quiet((sk.MLPRegressor if reg else sk.MLPClassifier)(**kw).fit, X, y,
                 sample_weight=w)
    got = _quiet((MLPRegressor if reg else MLPClassifier)(**kw, backend="numpy",
                                                          dtype="float64").fit, X, y,
                 sample_weight=w)
    assert got.n_iter_ == ref.n_iter_
    assert _relative(got.loss_curve_, ref.loss_curve_) < RTOL
    for a, b in zip(got.coefs_ + got.intercepts_, ref.coefs_ + ref.intercepts_):
        assert _relative(a, b) < RTOL
    if early_stopping:  # the weighted validation score (accuracy / R^2)
        np.testing.assert_allclose(got.validation_scores_, ref.validation_scores_, rtol=RTOL)


def test_weighted_partial_fit_is_scikit_learns():
    X, y, w = _data("multiclass")
    kw = dict(hidden_layer_sizes=(8,), random_state=2, batch_size=30, solver="sgd",
              learning_rate_init=0.05)
    ref, got = sk.MLPClassifier(**kw), MLPClassifier(**kw, backend="numpy", dtype="float64")
    for est in (ref, got):
        for k in range(3):
            rows = slice(40 * k, 40 * k + 40)
            _quiet(est.partial_fit, X[rows], y[rows], sample_weight=w[rows], classes=[0, 1, 2])
    assert _relative(got.loss_curve_, ref.loss_curve_) < RTOL
    for a, b in zip(got.coefs_, ref.coefs_):
        assert _relative(a, b) < RTOL


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_integer_weights_equal_repeated_rows(cls):
    """One full batch, no shuffle: the batch holds the same rows either way."""
    X, y, _ = _data("regression" if cls is MLPRegressor else "multiclass", n=40)
    counts = np.random.default_rng(1).integers(0, 4, 40)
    kw = dict(hidden_layer_sizes=(6,), max_iter=5, random_state=0, solver="sgd",
              learning_rate_init=0.1, shuffle=False, backend="numpy", dtype="float64")
    weighted = _quiet(cls(**kw, batch_size=40).fit, X, y, sample_weight=counts)
    repeated = _quiet(cls(**kw, batch_size=int(counts.sum())).fit,
                      np.repeat(X, counts, axis=0), np.repeat(y, counts))
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-12)
    for a, b in zip(weighted.coefs_ + weighted.intercepts_,
                    repeated.coefs_ + repeated.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("backend", ["torch", "array_api_strict"])
def test_weights_agree_across_backends(backend):
    if not usable(backend)[0]:
        pytest.skip(f"{backend} not usable")
    X, y, w = _data("multiclass", n=60)
    kw = dict(hidden_layer_sizes=(6,), max_iter=3, random_state=0, batch_size=16,
              dtype="float64", class_weight={0: 2.0})
    ref = _quiet(MLPClassifier(**kw, backend="numpy").fit, X, y, sample_weight=w)
    got = _quiet(MLPClassifier(**kw, backend=backend).fit, X, y, sample_weight=w)
    np.testing.assert_allclose(got.loss_curve_, ref.loss_curve_, rtol=1e-10)
    for a, b in zip(got.coefs_, ref.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("class_weight", ["balanced", {0: 3.0, 2: 0.5}])
def test_class_weight_is_sample_weight_by_class(class_weight):
    X, y, w = _data("multiclass")
    y = np.where(np.arange(len(y)) < 70, 0, y)  # imbalanced
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0, backend="numpy",
              dtype="float64")
    by_class = _quiet(MLPClassifier(**kw, class_weight=class_weight).fit, X, y,
                      sample_weight=w)
    factors = compute_sample_weight(class_weight, y)  # scikit-learn's formula
    by_rows = _quiet(MLPClassifier(**kw).fit, X, y, sample_weight=w * factors)
    assert by_class.loss_curve_ == pytest.approx(by_rows.loss_curve_, rel=1e-12)
    for a, b in zip(by_class.coefs_, by_rows.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_class_weight_with_string_labels_and_binary():
    X, y, _ = _data("binary")
    labels = np.array(["no", "yes"])[y]
    kw = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0, dtype="float64")
    a = _quiet(MLPClassifier(**kw, class_weight={"yes": 4.0}).fit, X, labels)
    b = _quiet(MLPClassifier(**kw).fit, X, labels, sample_weight=np.where(y == 1, 4.0, 1.0))
    assert a.loss_curve_ == pytest.approx(b.loss_curve_, rel=1e-12)


@pytest.mark.parametrize("sample_weight,kw,error,match", [
    (-np.ones(120), {}, ValueError, "negative"),
    (np.ones(7), {}, ValueError, r"sample_weight.shape == \(7,\), expected \(120,\)"),
    (np.full(120, np.nan), {}, ValueError, "NaN or infinity"),
    (np.zeros(120), {}, ValueError, "all zero"),
    (None, dict(class_weight="heavy"), ValueError, "'balanced' or a dict"),
    (None, dict(class_weight={7: 1.0}), ValueError, r"labels \[7\] that are not classes"),
    (None, dict(class_weight={0: -1.0}), ValueError, "finite and >= 0"),
])
def test_bad_weights_are_refused_and_change_nothing(sample_weight, kw, error, match):
    X, y, _ = _data("multiclass")
    est = _quiet(MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit, X, y)
    before = [c.copy() for c in est.coefs_]
    est.set_params(**kw)
    with pytest.raises(error, match=match):
        est.fit(X, y, sample_weight=sample_weight)
    for a, b in zip(est.coefs_, before):
        np.testing.assert_array_equal(a, b)


def test_class_weight_refusals():
    X, y, _ = _data("multiclass")
    with pytest.raises(ValueError, match="not supported for partial_fit"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
    Y = np.stack([y == 0, y == 1], axis=1).astype(int)
    with pytest.raises(ValueError, match="not supported for multilabel"):
        MLPClassifier(class_weight={0: 1.0}, max_iter=1).fit(X, Y)
