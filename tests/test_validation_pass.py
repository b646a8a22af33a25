"""The per-epoch validation pass over row blocks (xpnet.training.validation): the cost and
score over all of X_val, as scikit-learn's metrics compute them from the whole-X forward pass,
with memory bounded by one block's activations.

One block (chunk_rows >= n) gives the whole pass's values bit for bit; smaller blocks sum the
same terms in another order, so they are compared with rtol 1e-12 (float64) / 1e-5 (float32).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, r2_score

import xpnet
from xpnet.core.forward import forward
from xpnet.training.validation import ValidationPass

from conftest import random_network, to_backend

N = 23
KINDS = {  # kind: (layer dims, activations, multilabel)
    "multiclass": ([3, 4, 3], ["relu", "softmax"], False),
    "binary": ([3, 4, 1], ["tanh", "sigmoid"], False),
    "multilabel": ([3, 4, 3], ["relu", "sigmoid"], True),
    "continuous": ([3, 4, 2], ["tanh", "identity"], False),
}


def _setup(backend, dtype, kind, seed=0):
    dims, g, multilabel = KINDS[kind]
    X, Y, W, b = random_network(dims, g, m=N, seed=seed, multilabel=multilabel)
    return (X, Y, to_backend(backend, W, dtype), to_backend(backend, b, dtype), g, dims,
            to_backend(backend, np.ascontiguousarray(X.T), dtype),
            to_backend(backend, np.ascontiguousarray(Y.T), dtype))


def _pass(backend, Xr, Yr, g, kind, dims, rows):
    return ValidationPass(Xr, Yr, g, kind, backend=backend, kernels=backend.kernels,
                          dims=dims, chunk_rows=rows)


def _host(a):
    return float(np.asarray(xpnet.to_numpy(a)))


@pytest.mark.parametrize("kind", list(KINDS))
def test_blocks_agree_with_whole_pass_and_sklearn(backend, dtype, kind):
    X, Y, W, b, g, dims, Xr, Yr = _setup(backend, dtype, kind)
    whole = _pass(backend, Xr, Yr, g, kind, dims, rows=None).evaluate(W, b)
    assert _pass(backend, Xr, Yr, g, kind, dims, rows=None).rows == N  # one block
    # the whole-X forward pass, scored by scikit-learn on the host
    AL, cache = forward(xpnet.backend_of(Xr).xp.permute_dims(Xr, (1, 0)), W, b, g,
                        xp=backend.xp, kernels=backend.kernels)
    A = np.asarray(xpnet.to_numpy(AL), dtype=np.float64).T
    Yt = Y.T
    if kind == "multiclass":  # cross-entropy by hand: float32 rows miss sum 1 by 1e-7
        want = (-np.mean(np.sum(Yt * np.log(A), axis=1)), accuracy_score(Yt.argmax(1),
                                                                         A.argmax(1)))
    elif kind == "binary":
        want = (log_loss(Yt[:, 0], A[:, 0], labels=[0, 1]), accuracy_score(Yt[:, 0],
                                                                           A[:, 0] > 0.5))
    elif kind == "multilabel":
        bce = -np.mean(np.sum(Yt * np.log(A) + (1 - Yt) * np.log1p(-A), axis=1))
        want = (bce, accuracy_score(Yt, (A > 0.5).astype(float)))
    else:
        want = (0.5 * np.mean(np.sum((A - Yt) ** 2, axis=1)), r2_score(Yt, A))
    rtol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose([_host(whole[0]), _host(whole[1])], want, rtol=rtol, atol=0)
    for rows in (1, 5, 22):
        blocks = _pass(backend, Xr, Yr, g, kind, dims, rows).evaluate(W, b)
        np.testing.assert_allclose([_host(v) for v in blocks],
                                   [_host(v) for v in whole], rtol=rtol, atol=0,
                                   err_msg=f"chunk_rows={rows}")


def test_budget_sets_block_rows_and_bad_rows_refused(backend):
    X, Y, W, b, g, dims, Xr, Yr = _setup(backend, "float64", "multiclass")
    per_row = 3 * 8 * sum(dims[1:])
    v = ValidationPass(Xr, Yr, g, "multiclass", backend=backend, kernels=backend.kernels,
                       dims=dims, max_bytes=4 * per_row)
    assert v.rows == 4
    assert [m for _, _, m, _ in v.blocks()] == [4, 4, 4, 4, 4, 3]
    with pytest.raises(ValueError, match="chunk_rows must be a positive"):
        _pass(backend, Xr, Yr, g, "multiclass", dims, rows=0)


def test_constant_target_r2_as_sklearn(backend):
    """SS_tot = 0 for an output: R^2 is 1 where the fit is exact, else 0 (scikit-learn)."""
    X, Y, W, b, g, dims, Xr, Yr = _setup(backend, "float64", "continuous")
    Yc = np.ones((N, 2))
    v = _pass(backend, Xr, to_backend(backend, Yc), g, "continuous", dims, rows=5)
    AL, _ = forward(backend.xp.permute_dims(Xr, (1, 0)), W, b, g, xp=backend.xp)
    A = np.asarray(xpnet.to_numpy(AL)).T
    assert _host(v.evaluate(W, b)[1]) == pytest.approx(r2_score(Yc, A), abs=0)
    assert r2_score(Yc, A) == 0.0
