"""Sparse X (SciPy CSR and CSC): trained and predicted without ever making all of X dense.

The rows of each chunk of batches are taken from the CSR matrix and made dense just before
they go to the device, so a sparse fit equals the dense fit bit for bit (same rows, same
order, same arithmetic) on every backend, and equals scikit-learn's MLP on the same sparse X.
"""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
from conftest import usable

import xpnet
from xpnet import MLPClassifier, MLPRegressor

sp = pytest.importorskip("scipy.sparse")
sk = pytest.importorskip("sklearn.neural_network")


def _data(n=150, d=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[np.abs(X) < 1.0] = 0.0  # about 30% stored
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    return X, y


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


@pytest.mark.parametrize("backend", ["numpy", "torch", "array_api_strict"])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_sparse_fit_and_predict_equal_dense(backend, fmt, early_stopping):
    if not usable(backend)[0]:
        pytest.skip(f"{backend} not usable")
    X, y = _data()
    S = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    kw = dict(hidden_layer_sizes=(8,), max_iter=4, random_state=0, dtype="float64",
              batch_size=32, backend=backend, early_stopping=early_stopping, dropout=0.1)
    a = _quiet(MLPClassifier(**kw).fit, S, y)
    b = _quiet(MLPClassifier(**kw).fit, X, y)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(p, q)
    assert a.loss_curve_ == b.loss_curve_
    P, Q = a.predict_proba(S), b.predict_proba(X)
    np.testing.assert_array_equal(xpnet.to_numpy(P), xpnet.to_numpy(Q))


def test_sparse_validation_data_and_regressor():
    X, y = _data(seed=1)
    t = X[:, 2] - X[:, 3]
    S = sp.csr_matrix(X)
    kw = dict(hidden_layer_sizes=(6,), max_iter=3, random_state=0, dtype="float64")
    a = _quiet(MLPRegressor(**kw).fit, S[:100], t[:100], validation_data=(S[100:], t[100:]))
    b = _quiet(MLPRegressor(**kw).fit, X[:100], t[:100], validation_data=(X[100:], t[100:]))
    assert a.validation_scores_ == b.validation_scores_
    assert a.validation_loss_curve_ == b.validation_loss_curve_
    np.testing.assert_array_equal(a.predict(S), b.predict(X))


def test_sparse_fit_is_scikit_learns():
    X, y = _data(seed=2)
    S = sp.csr_matrix(X)
    kw = dict(hidden_layer_sizes=(8,), max_iter=8, random_state=4, solver="sgd",
              learning_rate_init=0.05, batch_size=20)
    ref = _quiet(sk.MLPClassifier(**kw).fit, S, y)
    got = _quiet(MLPClassifier(**kw, backend="numpy", dtype="float64").fit, S, y)
    for a, b in zip(got.coefs_, ref.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert got.loss_curve_ == pytest.approx(ref.loss_curve_, rel=1e-9)


def test_memory_stays_one_dense_chunk():
    """A 12,000 x 6,000 float32 CSR (0.1% stored): dense it would be 275 MiB; fitting and
    predicting hold a few dense chunks (64 MiB each) at most."""
    rng = np.random.default_rng(0)
    n, d = 12_000, 6_000
    S = sp.random(n, d, density=0.001, format="csr", dtype=np.float32, random_state=rng)
    y = rng.integers(0, 2, n)
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, batch_size=500, random_state=0)
    tracemalloc.start()
    try:
        _quiet(est.fit, S, y)
        est.predict(S)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    dense_bytes = n * d * 4
    assert peak < 0.6 * dense_bytes, f"peak {peak / 2**20:.0f} MiB"


def test_coo_and_other_formats_are_converted_as_scikit_learn_does():
    X, y = _data()
    csr = _quiet(MLPClassifier((4,), max_iter=2, random_state=0).fit, sp.csr_matrix(X), y)
    for fmt in (sp.coo_matrix, sp.coo_array, sp.lil_matrix, sp.dok_array):
        est = _quiet(MLPClassifier((4,), max_iter=2, random_state=0).fit, fmt(X), y)
        np.testing.assert_array_equal(est.coefs_[0], csr.coefs_[0])
        np.testing.assert_array_equal(est.predict_proba(fmt(X)), csr.predict_proba(X))


def test_bad_sparse_input_is_refused():
    X, y = _data()
    bad = sp.csr_matrix(X)
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MLPClassifier(max_iter=1).fit(bad, y)
    est = _quiet(MLPClassifier((4,), max_iter=1).fit, sp.csr_matrix(X), y)
    with pytest.raises(ValueError, match="features"):
        est.predict(sp.csr_matrix(X[:, :5]))


@pytest.mark.parametrize("backend", ["numpy", "torch", "array_api_strict"])
def test_dense_rows_sends_csr_and_densifies_on_the_device(backend):
    """Backend.dense_rows: the same dense block whatever the route (torch builds a sparse CSR
    tensor on its device and makes it dense there)."""
    if not usable(backend)[0]:
        pytest.skip(f"{backend} not usable")
    X, _ = _data(n=20, d=7)
    be = xpnet.get_backend(backend)
    got = be.dense_rows(sp.csr_matrix(X[3:11]))
    assert xpnet.backend_of(got) == be
    np.testing.assert_array_equal(xpnet.to_numpy(got), X[3:11])
    np.testing.assert_array_equal(xpnet.to_numpy(be.dense_rows(X[3:11])), X[3:11])
