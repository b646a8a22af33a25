"""The NumPy fast path (xpnet.fastpath) against the portable code it stands in front of.

Every case runs the public ``forward`` / ``backward`` / ``gradient_descent_step`` twice on the
same float64 inputs, once with the fast path and once inside ``fastpath.disabled()`` (the
portable array-API code, the reference), and asks for agreement to 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_network

import xpnet
from xpnet.backends import fastpath

RTOL = 1e-12

NETS = [
    ([7, 6, 5, 4], ["relu", "relu", "softmax"]),
    ([7, 6, 5, 1], ["tanh", "leaky_relu", "sigmoid"]),
    ([7, 6, 5, 3], ["sigmoid", "identity", "identity"]),
    ([7, 4], ["softmax"]),
]


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=1e-14)


def _both(fn):
    fast = fn()
    with fastpath.disabled():
        portable = fn()
    return fast, portable


def test_for_namespace_picks_numpy_only():
    import array_api_compat.numpy as cnp
    import array_api_strict

    assert fastpath.for_namespace(cnp) is fastpath
    assert fastpath.for_namespace(np) is fastpath
    assert fastpath.for_namespace(array_api_strict) is None
    with fastpath.disabled():
        assert fastpath.for_namespace(cnp) is None
    assert fastpath.ENABLED  # restored after the block


@pytest.mark.parametrize("dims,g", NETS)
@pytest.mark.parametrize("layout", ["C", "samples-major"])
def test_forward_and_backward_match_the_portable_code(dims, g, layout):
    X, Y, W, b = random_network(dims, g, m=9, seed=3)
    if layout == "samples-major":  # a batch X[rows].T from a (n_samples, n[0]) matrix
        X = np.ascontiguousarray(X.T).T
    (AL_f, cache_f), (AL_p, cache_p) = _both(lambda: xpnet.forward(X, W, b, g))
    _close(AL_f, AL_p)
    for l in range(1, len(dims)):
        _close(cache_f.Z[l], cache_p.Z[l])
        _close(cache_f.A[l], cache_p.A[l])
        assert cache_f.Z[l].shape == (dims[l], 9) and cache_f.A[l].dtype == np.float64
    (dW_f, db_f), (dW_p, db_p) = _both(lambda: xpnet.backward(Y, W, cache_p, g, xp=np))
    assert sorted(dW_f) == sorted(dW_p) == list(range(1, len(dims)))
    for l in dW_p:
        _close(dW_f[l], dW_p[l])
        _close(db_f[l], db_p[l])
        assert dW_f[l].shape == W[l].shape and db_f[l].shape == b[l].shape


def test_dropout_masks_are_applied_the_same_way():
    dims, g = [6, 5, 4, 3], ["relu", "tanh", "softmax"]
    X, Y, W, b = random_network(dims, g, m=8, seed=5)
    rng = np.random.default_rng(1)
    D = {l: (rng.random((dims[l], 8)) > 0.3) / 0.7 for l in (1, 2)}
    (AL_f, c_f), (AL_p, c_p) = _both(lambda: xpnet.forward(X, W, b, g, D=D))
    _close(AL_f, AL_p)
    for l in (1, 2):
        _close(c_f.G[l], c_p.G[l])
        _close(c_f.A[l], c_p.A[l])
    (dW_f, db_f), (dW_p, db_p) = _both(lambda: xpnet.backward(Y, W, c_p, g, D=D, xp=np))
    for l in dW_p:
        _close(dW_f[l], dW_p[l])
        _close(db_f[l], db_p[l])


def test_training_steps_match_and_stay_float32():
    dims, g = [12, 10, 8, 4], ["relu", "relu", "softmax"]
    X, Y, W0, b0 = random_network(dims, g, m=16, seed=7)
    runs = []
    for enabled in (True, False):
        W = {l: w.copy() for l, w in W0.items()}
        b = {l: v.copy() for l, v in b0.items()}
        fastpath.ENABLED = enabled
        try:
            costs = [float(xpnet.gradient_descent_step(X, Y, W, b, g, 0.1)) for _ in range(5)]
        finally:
            fastpath.ENABLED = True
        runs.append((costs, W, b))
    (c_f, W_f, b_f), (c_p, W_p, b_p) = runs
    _close(c_f, c_p)
    for l in W0:
        _close(W_f[l], W_p[l])
        _close(b_f[l], b_p[l])
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    W32 = {l: w.astype(np.float32) for l, w in W0.items()}
    b32 = {l: v.astype(np.float32) for l, v in b0.items()}
    AL, cache = xpnet.forward(X32, W32, b32, g)
    dW, db = xpnet.backward(Y32, W32, cache, g, xp=np)
    assert AL.dtype == np.float32
    assert all(dW[l].dtype == db[l].dtype == np.float32 for l in dW)


def test_step_workspace_never_leaks_into_what_is_returned():
    # the step reuses its scratch arrays: a returned cost must not change at the next step,
    # and a different batch size gets its own workspace
    dims, g = [6, 5, 3], ["relu", "softmax"]
    X, Y, W, b = random_network(dims, g, m=4, seed=11)
    J1 = xpnet.gradient_descent_step(X, Y, W, b, g, 0.5)
    kept = float(J1)
    J2 = xpnet.gradient_descent_step(X, Y, W, b, g, 0.5)
    assert float(J1) == kept and float(J2) < kept
    X8, Y8, _, _ = random_network(dims, g, m=8, seed=12)
    xpnet.gradient_descent_step(X8, Y8, W, b, g, 0.5)
    assert len(fastpath._WORKSPACES) >= 2
    fastpath.clear_workspaces()
    assert not fastpath._WORKSPACES


def test_step_with_bad_targets_changes_nothing():
    dims, g = [6, 5, 3], ["relu", "softmax"]
    X, Y, W, b = random_network(dims, g, m=4, seed=13)
    W0 = {l: w.copy() for l, w in W.items()}
    with pytest.raises(ValueError, match="Y has shape"):
        xpnet.gradient_descent_step(X, Y[:, :3], W, b, g, 0.5)
    for l in W:
        np.testing.assert_array_equal(W[l], W0[l])


@pytest.mark.parametrize("dims,g", NETS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_workspace_gives_the_same_bits_and_reuses_its_arrays(dims, g, dtype):
    # a training loop's workspace: forward/backward write into it, bit for bit what fresh
    # arrays hold; a smaller last batch gets its own set; nothing grows from step to step
    ws = fastpath.workspace()
    assert len(ws) == 0 and ws.nbytes == 0
    rng = np.random.default_rng(21)
    hidden = [l for l in range(1, len(dims) - 1)]
    seen: dict[int, tuple] = {}
    for step, m in enumerate([9, 9, 4, 9, 4]):
        X, Y, W, b = random_network(dims, g, m=m, seed=30 + step)
        X, Y = X.astype(dtype), Y.astype(dtype)
        W = {l: w.astype(dtype) for l, w in W.items()}
        b = {l: v.astype(dtype) for l, v in b.items()}
        D = {l: ((rng.random((dims[l], m)) < 0.7) / 0.7).astype(dtype) for l in hidden} or None
        AL_f, c_f = fastpath.forward(X, W, b, g, D)
        dW_f, db_f = fastpath.backward(Y, W, c_f, g, D)
        AL_w, c_w = fastpath.forward(X, W, b, g, D, ws)
        dW_w, db_w = fastpath.backward(Y, W, c_w, g, D, ws)
        np.testing.assert_array_equal(AL_w, AL_f)
        assert AL_w.dtype == dtype
        for l in W:
            np.testing.assert_array_equal(c_w.Z[l], c_f.Z[l])
            np.testing.assert_array_equal(c_w.A[l], c_f.A[l])
            np.testing.assert_array_equal(dW_w[l], dW_f[l])
            np.testing.assert_array_equal(db_w[l], db_f[l])
        held = (dW_w[1], c_w.Z[1])
        if m in seen:  # the same arrays as the last step of this batch size: reused
            assert all(np.shares_memory(a, b_) for a, b_ in zip(held, seen[m]))
        seen[m] = held
        if step == 1:
            size, count = ws.nbytes, len(ws)
        if step == 3:  # the first batch size again after the second: nothing new
            assert ws.nbytes > size and len(ws) > count  # the m = 4 set, added once
            size, count = ws.nbytes, len(ws)
    assert (ws.nbytes, len(ws)) == (size, count)


def test_results_without_a_workspace_are_fresh_arrays():
    dims, g = [6, 5, 3], ["relu", "softmax"]
    X, Y, W, b = random_network(dims, g, m=4, seed=41)
    AL1, c1 = fastpath.forward(X, W, b, g)
    dW1, _ = fastpath.backward(Y, W, c1, g)
    AL2, c2 = fastpath.forward(X, W, b, g, None, None)
    dW2, _ = fastpath.backward(Y, W, c2, g, None, None)
    assert not np.shares_memory(AL1, AL2) and not np.shares_memory(dW1[1], dW2[1])
    np.testing.assert_array_equal(AL1, AL2)
