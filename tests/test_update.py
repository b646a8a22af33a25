"""W[l] := W[l] - alpha dW[l];  b[l] := b[l] - alpha db[l], in place, dtype and device kept."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close, assert_same_place, to_backend, usable

import xpnet
from xpnet import update_parameters


def test_update_rule(backend, dtype):
    # W[1] = [[1, 2]], dW[1] = [[4, -2]], alpha = 0.25: [[1 - 1, 2 + 0.5]] = [[0, 2.5]]
    # b[1] = [[3]],    db[1] = [[8]]:                   [[3 - 2]]         = [[1]]
    # W[2] = [[-1], [0.5]], dW[2] = [[2], [2]]:        [[-1.5], [0]];  b[2] - 0.25 * 0 = b[2]
    W = {1: to_backend(backend, [[1.0, 2.0]], dtype),
         2: to_backend(backend, [[-1.0], [0.5]], dtype)}
    b = {1: to_backend(backend, [[3.0]], dtype), 2: to_backend(backend, [[0.0], [7.0]], dtype)}
    dW = {1: to_backend(backend, [[4.0, -2.0]], dtype),
          2: to_backend(backend, [[2.0], [2.0]], dtype)}
    db = {1: to_backend(backend, [[8.0]], dtype), 2: to_backend(backend, [[0.0], [0.0]], dtype)}
    objects = {l: (id(W[l]), id(b[l])) for l in W}
    update_parameters(W, b, dW, db, 0.25)
    assert_close(W[1], to_backend(backend, [[0.0, 2.5]], dtype), rtol=0.0)
    assert_close(b[1], to_backend(backend, [[1.0]], dtype), rtol=0.0)
    assert_close(W[2], to_backend(backend, [[-1.5], [0.0]], dtype), rtol=0.0)
    assert_close(b[2], to_backend(backend, [[0.0], [7.0]], dtype), rtol=0.0)
    assert objects == {l: (id(W[l]), id(b[l])) for l in W}  # in place


def test_update_matches_formula_on_random_values(backend, dtype):
    rng = np.random.default_rng(0)
    host = {k: {l: rng.standard_normal((3, 2) if k in ("W", "dW") else (3, 1)) for l in (1, 2)}
            for k in ("W", "b", "dW", "db")}
    W, b, dW, db = (to_backend(backend, host[k], dtype) for k in ("W", "b", "dW", "db"))
    alpha = 0.037
    update_parameters(W, b, dW, db, alpha)
    for l in (1, 2):
        # the reference in the same dtype: x - alpha * g, both rounded to dtype
        Wr = host["W"][l].astype(dtype) - np.asarray(alpha, dtype) * host["dW"][l].astype(dtype)
        br = host["b"][l].astype(dtype) - np.asarray(alpha, dtype) * host["db"][l].astype(dtype)
        rtol = 1e-6 if dtype == "float32" else 1e-15
        assert_close(W[l], to_backend(backend, Wr, dtype), rtol=rtol)
        assert_close(b[l], to_backend(backend, br, dtype), rtol=rtol)


@pytest.mark.parametrize("alpha", [0.1, np.float64(0.1), 1])
def test_float32_stays_float32(backend, alpha):
    """alpha as a Python float, a NumPy float64 or an int never upcasts float32 parameters."""
    W = {1: to_backend(backend, [[1.0, 2.0]], "float32")}
    b = {1: to_backend(backend, [[1.0]], "float32")}
    dW = {1: to_backend(backend, [[1.0, 1.0]], "float32")}
    db = {1: to_backend(backend, [[1.0]], "float32")}
    ref = to_backend(backend, [[1.0, 2.0]], "float32")
    update_parameters(W, b, dW, db, alpha)
    assert_same_place(W[1], ref)
    assert_same_place(b[1], ref)


def test_update_stays_on_a_strict_fake_device():
    if not usable("array_api_strict")[0]:
        pytest.skip("array_api_strict not installed")
    import array_api_strict

    dev = array_api_strict.Device("device1")
    be = xpnet.get_backend("array_api_strict", dev)
    W = {1: be.asarray(np.ones((2, 2)))}
    b = {1: be.asarray(np.ones((2, 1)))}
    update_parameters(W, b, {1: be.asarray(np.ones((2, 2)))}, {1: be.asarray(np.ones((2, 1)))}, 0.5)
    assert W[1].device == dev and b[1].device == dev
    np.testing.assert_array_equal(xpnet.to_numpy(W[1]), np.full((2, 2), 0.5))
