"""Cross-backend agreement: the same seed gives bit-identical starting parameters everywhere,
and 50 gradient-descent steps on the same batches end at the same parameters (float64 to 1e-10
relative, float32 to 1e-4) as NumPy's. Also: the whole forward/backward/update path runs on
array-api-strict (standard-only code) and on its fake devices."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import gd_run, random_network, to_backend, usable

import xpnet
from xpnet import backward, compute_cost, forward, update_parameters

STEPS = 50
RTOL = {"float64": 1e-10, "float32": 1e-4}
# Tiny shapes: array-api-strict is 5-40x slower per call than NumPy.
CONFIGS = {
    "relu-softmax": ([4, 6, 3], ["relu", "softmax"]),
    "tanh-leaky-sigmoid": ([4, 5, 5, 3], ["tanh", "leaky_relu", "sigmoid"]),
    "sigmoid-identity": ([3, 5, 2], ["sigmoid", "identity"]),
}


def relative_disagreement(P: dict[int, np.ndarray], Q: dict[int, np.ndarray]) -> float:
    """max over entries of |p - q| / max(|q|, max|Q[l]| 1e-3): elementwise relative, with the
    layer's scale as a floor so an entry that is ~0 by chance does not divide by ~0."""
    worst = 0.0
    for l in Q:
        floor = 1e-3 * float(np.max(np.abs(Q[l])))
        worst = max(worst, float(np.max(np.abs(P[l] - Q[l]) / np.maximum(np.abs(Q[l]), floor))))
    return worst


@pytest.fixture(scope="module")
def numpy_runs():
    """The NumPy reference run for each (config, dtype), computed once per module."""
    cache = {}

    def get(config, dtype):
        if (config, dtype) not in cache:
            dims, g = CONFIGS[config]
            cache[config, dtype] = gd_run(xpnet.get_backend("numpy"), dtype, dims, g, STEPS)
        return cache[config, dtype]

    return get


@pytest.mark.parametrize("config", list(CONFIGS))
def test_same_seed_same_steps_same_parameters(backend, dtype, config, numpy_runs):
    dims, g = CONFIGS[config]
    W0, b0, W, b, costs = gd_run(backend, dtype, dims, g, STEPS)
    rW0, rb0, rW, rb, rcosts = numpy_runs(config, dtype)
    for l in rW0:  # bit-identical start
        assert W0[l].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(W0[l], rW0[l])
        np.testing.assert_array_equal(b0[l], rb0[l])
    for l in rW:
        assert W[l].dtype == np.dtype(dtype) and b[l].dtype == np.dtype(dtype)
    # the run really trained: lower J on the same 5 batches, parameters far from the start
    assert np.mean(rcosts[-5:]) < np.mean(rcosts[:5])
    assert relative_disagreement(rW, rW0) > 1e-3
    dis = max(relative_disagreement(W, rW), relative_disagreement(b, rb))
    assert dis < RTOL[dtype], f"{backend.name} vs numpy after {STEPS} steps: {dis:.3g}"
    np.testing.assert_allclose(costs, rcosts, rtol=RTOL[dtype])


def test_numpy_runs_are_deterministic(dtype):
    dims, g = CONFIGS["relu-softmax"]
    a = gd_run(xpnet.get_backend("numpy"), dtype, dims, g, 10)
    b = gd_run(xpnet.get_backend("numpy"), dtype, dims, g, 10)
    for l in a[2]:
        np.testing.assert_array_equal(a[2][l], b[2][l])
    assert a[4] == b[4]


@pytest.mark.parametrize("device", ["CPU_DEVICE", "device1", "device2"])
def test_whole_path_on_array_api_strict(device, dtype):
    """Forward, cost, backward (fused and with dropout masks), update: standard-only code, on a
    fake device too; every result on that device, in the input dtype."""
    if not usable("array_api_strict")[0]:
        pytest.skip("array_api_strict not installed")
    import array_api_strict

    dev = array_api_strict.Device(device)
    be = xpnet.get_backend("array_api_strict", dev)
    g = ["relu", "leaky_relu", "sigmoid", "tanh", "identity", "softmax"]
    dims = [3, 4, 3, 4, 3, 4, 2]
    X, Y, W, b = random_network(dims, g, m=4, seed=8)
    Xb, Yb, Wb, bb = (to_backend(be, t, dtype) for t in (X, Y, W, b))
    D = {l: to_backend(be, np.full((dims[l], 4), 1.25), dtype) for l in (2, 4)}
    xp = be.xp
    for masks in (None, D):
        AL, cache = forward(Xb, Wb, bb, g, D=masks)
        J = compute_cost(cache.Z[6], Yb, g[-1], xp=xp)
        dW, db = backward(Yb, Wb, cache, g, D=masks, xp=xp)
        for arr in (AL, J, *cache.Z.values(), *cache.A.values(), *dW.values(), *db.values()):
            assert isinstance(arr, array_api_strict._array_object.Array)
            assert arr.device == dev and arr.dtype == be.dtype(dtype)
    update_parameters(Wb, bb, dW, db, 0.1)
    J = xpnet.gradient_descent_step(Xb, Yb, Wb, bb, g, 0.1)
    for arr in (J, *Wb.values(), *bb.values()):
        assert arr.device == dev and arr.dtype == be.dtype(dtype)
    assert np.isfinite(float(J))
