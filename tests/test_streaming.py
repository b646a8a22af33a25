"""Training data bigger than the device (xpnet.training.streaming): X stays on the host and is
uploaded a chunk of whole batches at a time, with the same batches, so a streamed fit equals
the fit with all of X on the device, bit for bit.

Streaming starts by itself when X would take more than half the device's free memory (a GPU);
here it is forced with the estimator's ``_stream_rows`` on backends whose arrays are not
host NumPy arrays (torch, array-api-strict), which exercise the same code.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import blobs, usable

import xpnet
from xpnet import MLPClassifier, MLPRegressor
from xpnet.training.streaming import chunk_rows, host_batches, should_stream

DEVICES = ["torch", "array_api_strict"]


def test_chunk_rows_and_when_to_stream():
    assert chunk_rows(row_bytes=100, batch_size=16, budget_bytes=100 * 16 * 5 + 99) == 80
    assert chunk_rows(row_bytes=100, batch_size=16, budget_bytes=1) == 16  # one batch at least
    assert should_stream(600, 1000) and not should_stream(500, 1000)
    assert not should_stream(10 ** 12, None)  # the host: never


@pytest.mark.parametrize("shuffle", [True, False])
def test_host_batches_are_the_rows_of_the_permuted_data(shuffle):
    X = np.arange(23 * 2, dtype=float).reshape(23, 2)
    order = np.random.default_rng(0).permutation(23) if shuffle else None
    uploads = []

    def upload(a):
        uploads.append(a.shape[0])
        return a.copy()

    got = list(host_batches(X, order, rows=10, batch_size=5, upload=upload))
    want = X if order is None else X[order]
    assert [(a, b) for a, b, _ in got] == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 23)]
    for a, b, rows in got:
        np.testing.assert_array_equal(rows, want[a:b])
    assert uploads == [10, 10, 3]  # one copy per chunk of two batches


def _fit(cls, backend, stream, X, y, **kw):
    params = dict(hidden_layer_sizes=(6,), batch_size=16, max_iter=3, random_state=0,
                  dtype="float64", backend=backend, learning_rate_init=0.05)
    params.update(kw)
    est = cls(**params)
    if stream:
        est._stream_rows = 48  # three batches per upload; the last chunk is partial
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    return est


def _same(a, b):
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(p, q)
    assert a.loss_curve_ == b.loss_curve_
    assert getattr(a, "validation_scores_", None) == getattr(b, "validation_scores_", None)


@pytest.mark.parametrize("backend", DEVICES)
@pytest.mark.parametrize("case", ["shuffle", "no-shuffle", "early-stopping+dropout",
                                  "regressor"])
def test_streamed_fit_equals_the_fit_on_the_device(backend, case):
    if not usable(backend)[0]:
        pytest.skip(f"{backend} not usable")
    X, y = blobs(n=110, d=4, k=3, seed=2)
    cls, kw = MLPClassifier, {}
    if case == "no-shuffle":
        kw = dict(shuffle=False)
    elif case == "early-stopping+dropout":
        kw = dict(early_stopping=True, validation_fraction=0.3, dropout=0.2,
                  n_iter_no_change=50)
    elif case == "regressor":
        cls, y = MLPRegressor, X[:, 0] - X[:, 1]
    _same(_fit(cls, backend, True, X, y, **kw), _fit(cls, backend, False, X, y, **kw))


def test_streamed_fit_uploads_chunks_not_all_of_x(monkeypatch):
    """Every upload of training rows during the epochs is one chunk (48 rows), never X."""
    from xpnet.backends.array_api_strict import StrictBackend

    shapes = []
    real = StrictBackend.asarray

    def counting(self, x, dtype=None):
        shapes.append(tuple(np.shape(x)))
        return real(self, x, dtype)

    monkeypatch.setattr(StrictBackend, "asarray", counting)
    X, y = blobs(n=110, d=4, k=3, seed=2)
    _fit(MLPClassifier, "array_api_strict", True, X, y, max_iter=2)
    assert (110, 4) not in shapes
    assert shapes.count((48, 4)) == 2 * 2 and shapes.count((14, 4)) == 2  # 2 epochs


def test_partial_fit_streams_too():
    X, y = blobs(n=64, d=4, k=3, seed=3)
    runs = []
    for stream in (True, False):
        est = MLPClassifier((5,), batch_size=16, random_state=0, dtype="float64",
                            backend="array_api_strict")
        if stream:
            est._stream_rows = 32
        for _ in range(2):
            est.partial_fit(X, y, classes=[0, 1, 2])
        runs.append(est)
    _same(*runs)
