"""L2 weight decay (scikit-learn semantics, checked against its own MLP), inverted dropout masks
identical on every backend for one seed, and clipping by global norm."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import assert_close, random_network, to_backend

import xpnet
from xpnet.core.regularization import add_weight_decay, clip_by_global_norm, l2_cost
from xpnet.functional import dropout_masks


def host_W(seed: int = 0) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {1: rng.standard_normal((4, 3)), 2: rng.standard_normal((2, 4))}


# --------------------------------------------------------------------------- L2
def test_l2_cost_rebuilt(backend, dtype):
    W = host_W()
    alpha, m = 0.3, 7
    J = l2_cost(to_backend(backend, W, dtype), alpha, m, xp=backend.xp)
    # 0.5 alpha sum_l ||W[l]||_F^2 / m
    want = 0.5 * alpha * sum(float(np.sum(w.astype(dtype).astype(np.float64) ** 2))
                             for w in W.values()) / m
    assert tuple(J.shape) == ()
    assert J.dtype == backend.dtype(dtype)
    np.testing.assert_allclose(float(J), want, rtol=1e-6 if dtype == "float32" else 1e-14)


def test_weight_decay_rebuilt_in_place(backend, dtype):
    W = host_W(1)
    dW_host = {l: np.random.default_rng(l).standard_normal(w.shape) for l, w in W.items()}
    alpha, m = 0.5, 4
    Wb, dW = to_backend(backend, W, dtype), to_backend(backend, dW_host, dtype)
    before = dict(dW)
    add_weight_decay(dW, Wb, alpha, m)
    for l in W:
        assert dW[l] is before[l]  # in place
        want = dW_host[l].astype(dtype) + (alpha / m) * W[l].astype(dtype)  # dW += (alpha/m) W
        assert_close(dW[l], backend.asarray(want), rtol=0.0)
    add_weight_decay(dW, Wb, 0.0, m)  # alpha = 0: nothing changes
    for l in W:
        assert_close(dW[l], backend.asarray(dW_host[l].astype(dtype) + (alpha / m)
                                            * W[l].astype(dtype)), rtol=0.0)


def test_l2_matches_sklearn_backprop():
    """scikit-learn's MLPClassifier._backprop with alpha: its loss is J + l2_cost, its
    coef_grads are (dW + (alpha/m) W)^T, its intercept_grads db (examples in rows there)."""
    nn = pytest.importorskip("sklearn.neural_network")
    layer_dims, g = [3, 5, 4, 3], ["tanh", "tanh", "softmax"]
    X, Y, W, b = random_network(layer_dims, g, m=9, seed=3)
    alpha, m = 0.7, X.shape[1]
    labels = np.argmax(Y, axis=0)
    est = nn.MLPClassifier(hidden_layer_sizes=(5, 4), activation="tanh", alpha=alpha,
                           max_iter=1, solver="sgd", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning after one epoch
        est.fit(X.T, np.r_[labels[:-3], 0, 1, 2])  # every class present
    est.coefs_ = [W[l].T.copy() for l in (1, 2, 3)]
    est.intercepts_ = [b[l].ravel().copy() for l in (1, 2, 3)]
    L = 3
    loss, coef_grads, intercept_grads = est._backprop(
        X.T, Y.T, None, [X.T] + [None] * L, [None] * L,
        [np.empty((layer_dims[l - 1], layer_dims[l])) for l in (1, 2, 3)],
        [np.empty(layer_dims[l]) for l in (1, 2, 3)])
    xp = xpnet.namespace(X)
    AL, cache = xpnet.forward(X, W, b, g)
    J = xpnet.compute_cost(cache.Z[L], Y, "softmax", xp=xp) + l2_cost(W, alpha, m, xp=xp)
    dW, db = xpnet.backward(Y, W, cache, g, xp=xp)
    add_weight_decay(dW, W, alpha, m)
    np.testing.assert_allclose(float(J), loss, rtol=1e-13)
    for l in (1, 2, 3):
        np.testing.assert_allclose(dW[l], coef_grads[l - 1].T, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(db[l][:, 0], intercept_grads[l - 1], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("alpha,m,msg", [(-0.1, 3, "alpha"), (float("nan"), 3, "alpha"),
                                         (0.1, 0, "m \\(the number"), (0.1, 2.0, "m \\(the")])
def test_l2_bad_input(alpha, m, msg):
    W = host_W()
    dW = {l: np.zeros_like(w) for l, w in W.items()}
    with pytest.raises(ValueError, match=msg):
        l2_cost(W, alpha, m, xp=xpnet.namespace(W[1]))
    with pytest.raises(ValueError, match=msg):
        add_weight_decay(dW, W, alpha, m)
    assert all(not np.any(v) for v in dW.values())


# --------------------------------------------------------------------------- dropout
def reference_masks(layer_dims, m, rates, seed):
    """D[l] = (U < T) / keep, T = round(keep 2^24), U the 24-bit counter-based uniforms of
    keys (s, 0, l), s drawn once from the seed's generator: the generator's own definition,
    evaluated on NumPy, hidden layers in order."""
    import array_api_compat.numpy as cnp

    from xpnet.core.random import dropout_keys, dropout_threshold, uniform_bits

    s = int(np.random.default_rng(seed).integers(0, 2 ** 63))
    out = {}
    for l, r in enumerate(rates, start=1):
        if r == 0:
            continue
        keep = 1 - r
        U = uniform_bits(*dropout_keys(s, 0, l), (layer_dims[l], m), xp=cnp, device=None)
        out[l] = (np.asarray(U) < dropout_threshold(keep)) / keep
    return out


@pytest.mark.parametrize("rate", [0.5, [0.2, 0.0, 0.75]], ids=["one-rate", "per-layer"])
def test_dropout_masks_rebuilt_on_every_backend(backend, dtype, rate):
    layer_dims, m, seed = [3, 6, 5, 4, 2], 7, 11
    rates = rate if isinstance(rate, list) else [rate] * 3
    D = dropout_masks(layer_dims, m, rate, np.random.default_rng(seed), backend, dtype)
    want = reference_masks(layer_dims, m, rates, seed)
    assert sorted(D) == sorted(want)  # hidden layers with rate > 0 only
    for l in want:
        assert_close(D[l], backend.asarray(want[l].astype(dtype)), rtol=0.0)
        scale = np.array(1 / (1 - rates[l - 1]), dtype=dtype)
        assert set(np.unique(xpnet.to_numpy(D[l]))) <= {0.0, float(scale)}


def test_dropout_masks_identical_across_backends_and_dtypes():
    layer_dims, m = [4, 8, 8, 3], 16
    masks = {}
    for name in ("numpy", "torch", "array_api_strict"):
        if not xpnet.available_backends()[name][0]:
            continue
        for dtype in ("float32", "float64"):
            D = dropout_masks(layer_dims, m, 0.3, np.random.default_rng(5), name, dtype)
            masks[name, dtype] = {l: xpnet.to_numpy(d) for l, d in D.items()}
    assert ("torch", "float32") in masks and ("array_api_strict", "float32") in masks
    ref = masks["numpy", "float64"]
    for key, D in masks.items():
        for l in (1, 2):
            np.testing.assert_array_equal(D[l] != 0, ref[l] != 0, err_msg=str(key))
            np.testing.assert_array_equal(D[l], ref[l].astype(D[l].dtype), err_msg=str(key))
    other = dropout_masks(layer_dims, m, 0.3, np.random.default_rng(6), "numpy", "float64")
    assert not np.array_equal(other[1], ref[1])  # a different seed, different masks


def test_dropout_keeps_the_expected_fraction_and_mean():
    D = dropout_masks([2, 200, 1], 500, 0.3, np.random.default_rng(0), "numpy", "float64")
    kept = np.mean(D[1] != 0)  # 100000 Bernoulli(0.7) draws: std 0.0014
    assert abs(kept - 0.7) < 0.01
    assert abs(np.mean(D[1]) - 1.0) < 0.015  # inverted dropout: E[D] = 1


def test_dropout_masks_feed_forward_and_backward(backend):
    """A[l] = g(Z[l]) * D[l] in forward; with one example, a dropped unit's row of dW[1] and
    db[1] is exactly zero and a kept unit's is not (tanh' > 0 everywhere)."""
    layer_dims, g = [3, 8, 2], ["tanh", "softmax"]
    X, Y, W, b = random_network(layer_dims, g, m=1, seed=2)
    Xb, Yb, Wb, bb = (to_backend(backend, t) for t in (X, Y, W, b))
    D = dropout_masks(layer_dims, 1, 0.5, np.random.default_rng(1), backend, "float64")
    _, cache = xpnet.forward(Xb, Wb, bb, g, D=D)
    assert_close(cache.A[1], cache.G[1] * D[1], rtol=0.0)
    dW, db = xpnet.backward(Yb, Wb, cache, g, D=D, xp=backend.xp)
    dropped = xpnet.to_numpy(D[1])[:, 0] == 0
    assert 0 < dropped.sum() < 8
    assert np.all(xpnet.to_numpy(dW[1])[dropped] == 0)
    assert np.all(xpnet.to_numpy(db[1])[dropped] == 0)
    assert np.all(xpnet.to_numpy(db[1])[~dropped] != 0)


@pytest.mark.parametrize("kw,msg", [
    ({"rate": 1.0}, r"rate for hidden layer 1 must be in \[0, 1\)"),
    ({"rate": -0.1}, r"must be in \[0, 1\)"),
    ({"rate": [0.1]}, "rate lists 1 dropout rates; the network has 2 hidden layers"),
    ({"rng": 0}, "rng must be a numpy.random.Generator"),
    ({"m": 0}, "m \\(the number of examples\\)"),
    ({"dtype": "int32"}, "float32 or float64"),
    ({"layer_dims": [3, 0, 2]}, "layer_dims must be positive integers"),
])
def test_dropout_bad_input(kw, msg):
    args = {"layer_dims": [3, 4, 4, 2], "m": 5, "rate": 0.5, "rng": np.random.default_rng(0),
            "backend": "numpy", "dtype": "float32", **kw}
    with pytest.raises((ValueError, TypeError), match=msg):
        dropout_masks(**args)


# --------------------------------------------------------------------------- clipping
def grads_host(seed: int = 0, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    dW = {1: scale * rng.standard_normal((4, 3)), 2: scale * rng.standard_normal((2, 4))}
    db = {1: scale * rng.standard_normal((4, 1)), 2: scale * rng.standard_normal((2, 1))}
    return dW, db


def test_clip_by_global_norm_rebuilt(backend, dtype):
    dW_h, db_h = grads_host(0, scale=3.0)
    dW, db = to_backend(backend, dW_h, dtype), to_backend(backend, db_h, dtype)
    before = (dict(dW), dict(db))
    norm = clip_by_global_norm(dW, db, 2.0, xp=backend.xp)
    # ||g|| over all dW, db together; s = min(1, max_norm / (||g|| + 1e-6))
    want_norm = np.sqrt(sum(np.sum(a.astype(dtype).astype(np.float64) ** 2)
                            for a in (*dW_h.values(), *db_h.values())))
    assert xpnet.backend_of(norm).name == backend.name  # a device array, not a host float
    assert norm.dtype == backend.dtype(dtype)
    np.testing.assert_allclose(float(norm), want_norm, rtol=1e-6 if dtype == "float32" else 1e-14)
    s = min(1.0, 2.0 / (want_norm + 1e-6))
    assert s < 1
    rtol = 1e-6 if dtype == "float32" else 1e-14
    for got, orig, src in ((dW, before[0], dW_h), (db, before[1], db_h)):
        for l in got:
            assert got[l] is orig[l]  # in place
            np.testing.assert_allclose(xpnet.to_numpy(got[l]), s * src[l], rtol=rtol)
            assert got[l].dtype == backend.dtype(dtype)
    clipped = np.sqrt(sum(np.sum(xpnet.to_numpy(a).astype(np.float64) ** 2)
                          for a in (*dW.values(), *db.values())))
    np.testing.assert_allclose(clipped, 2.0, rtol=1e-5)


def test_clip_leaves_small_gradients_bit_for_bit(backend):
    dW_h, db_h = grads_host(1, scale=0.01)
    dW, db = to_backend(backend, dW_h, "float32"), to_backend(backend, db_h, "float32")
    clip_by_global_norm(dW, db, 10.0, xp=backend.xp)
    for l in dW:
        assert_close(dW[l], backend.asarray(dW_h[l].astype("float32")), rtol=0.0)
        assert_close(db[l], backend.asarray(db_h[l].astype("float32")), rtol=0.0)


def test_clip_huge_float32_gradients_are_clipped_not_zeroed(backend):
    # |g| ~ 1e20: sum(g^2) ~ 1e40 overflows float32 (max ~3.4e38), yet ||g|| itself is finite.
    dW_h, db_h = grads_host(2, scale=1e20)
    dW, db = to_backend(backend, dW_h, "float32"), to_backend(backend, db_h, "float32")
    norm = clip_by_global_norm(dW, db, 1.0, xp=backend.xp)
    want = np.sqrt(sum(np.sum(a.astype("float32").astype(np.float64) ** 2)
                       for a in (*dW_h.values(), *db_h.values())))
    np.testing.assert_allclose(float(norm), want, rtol=1e-5)
    clipped = np.sqrt(sum(np.sum(xpnet.to_numpy(a).astype(np.float64) ** 2)
                          for a in (*dW.values(), *db.values())))
    np.testing.assert_allclose(clipped, 1.0, rtol=1e-5)  # clipped to max_norm, not zeroed


def test_clip_zero_gradients_stay_zero():
    dW, db = {1: np.zeros((2, 2))}, {1: np.zeros((2, 1))}
    norm = clip_by_global_norm(dW, db, 1.0, xp=xpnet.namespace(dW[1]))
    assert float(norm) == 0.0 and not np.any(dW[1]) and not np.any(db[1])


@pytest.mark.parametrize("max_norm", [0.0, -1.0, float("inf"), float("nan"), "1"])
def test_clip_bad_max_norm(max_norm):
    dW, db = grads_host()
    with pytest.raises(ValueError, match="max_norm must be a finite number > 0"):
        clip_by_global_norm(dW, db, max_norm, xp=xpnet.namespace(dW[1]))
    np.testing.assert_array_equal(dW[1], grads_host()[0][1])
