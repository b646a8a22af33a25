"""Forward propagation: Z[l] = W[l] A[l-1] + b[l], A[l] = g(Z[l]); caches; dropout; placement."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close, assert_same_place, random_network, to_backend, usable

import xpnet
from xpnet import forward, linear_activation_forward, linear_forward

# Host reference: the equations in plain NumPy float64.
_REF = {
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
    "identity": lambda z: z,
    "softmax": lambda z: np.exp(z - z.max(axis=0)) / np.exp(z - z.max(axis=0)).sum(axis=0),
}


def _reference(X, W, b, g, D=None):
    Z, A = {}, {0: X}
    for l in range(1, len(W) + 1):
        Z[l] = W[l] @ A[l - 1] + b[l]
        A[l] = _REF[g[l - 1]](Z[l])
        if D is not None and l in D:
            A[l] = A[l] * D[l]
    return Z, A


def test_linear_forward(backend, dtype):
    # W = [[1, 2], [0, -1]], A = [[1, 0, 2], [3, 1, -1]], b = [[1], [2]]
    # W A = [[1 + 6, 0 + 2, 2 - 2], [-3, -1, 1]] = [[7, 2, 0], [-3, -1, 1]]; + b:
    W = to_backend(backend, [[1.0, 2.0], [0.0, -1.0]], dtype)
    A = to_backend(backend, [[1.0, 0.0, 2.0], [3.0, 1.0, -1.0]], dtype)
    b = to_backend(backend, [[1.0], [2.0]], dtype)
    expected = to_backend(backend, [[8.0, 3.0, 1.0], [-1.0, 1.0, 3.0]], dtype)
    assert_close(linear_forward(A, W, b), expected, rtol=0.0)
    Z, Aout = linear_activation_forward(A, W, b, "relu", xp=backend.xp)
    assert_close(Z, expected, rtol=0.0)
    assert_close(Aout, to_backend(backend, [[8.0, 3.0, 1.0], [0.0, 1.0, 3.0]], dtype), rtol=0.0)


@pytest.mark.parametrize("g", [["softmax"], ["relu", "softmax"], ["tanh", "leaky_relu", "sigmoid"],
                               ["sigmoid", "identity", "relu", "identity"]])
def test_forward_matches_the_equations(backend, dtype, g):
    L = len(g)
    dims = [3, 5, 4, 6, 2][: L + 1]
    X, _, W, b = random_network(dims, g, m=7, seed=L)
    Xb, Wb, bb = (to_backend(backend, t, dtype) for t in (X, W, b))
    AL, cache = forward(Xb, Wb, bb, g)
    Z_ref, A_ref = _reference(X, W, b, g)
    rtol = 2e-5 if dtype == "float32" else 1e-13
    atol = 1e-6 if dtype == "float32" else 1e-15
    assert sorted(cache.Z) == list(range(1, L + 1)) and sorted(cache.A) == list(range(L + 1))
    assert cache.A[0] is Xb
    assert cache.G is cache.A  # no dropout: G[l] = A[l]
    for l in range(1, L + 1):
        assert tuple(cache.Z[l].shape) == (dims[l], 7)
        assert_close(cache.Z[l], to_backend(backend, Z_ref[l], dtype), rtol=rtol, atol=atol)
        assert_close(cache.A[l], to_backend(backend, A_ref[l], dtype), rtol=rtol, atol=atol)
    assert AL is cache.A[L]


def test_forward_with_xp_given_is_the_same(backend):
    g = ["relu", "tanh", "softmax"]
    X, _, W, b = random_network([3, 4, 4, 2], g, m=5)
    Xb, Wb, bb = (to_backend(backend, t) for t in (X, W, b))
    A1, _ = forward(Xb, Wb, bb, g)
    A2, _ = forward(Xb, Wb, bb, g, xp=backend.xp)
    assert_close(A1, A2, rtol=0.0)


def test_dropout_forward(backend, dtype):
    """A[l] = g(Z[l]) * D[l] for the masked hidden layers; G[l] keeps g(Z[l])."""
    g = ["relu", "sigmoid", "softmax"]
    dims = [3, 4, 4, 2]
    X, _, W, b = random_network(dims, g, m=6, seed=1)
    rng = np.random.default_rng(0)
    D = {1: (rng.random((4, 6)) > 0.5) / 0.5, 2: (rng.random((4, 6)) > 0.25) / 0.75}
    Xb, Wb, bb, Db = (to_backend(backend, t, dtype) for t in (X, W, b, D))
    AL, cache = forward(Xb, Wb, bb, g, D=Db)
    Z_ref, A_ref = _reference(X, W, b, g, D)
    rtol, atol = (2e-5, 1e-6) if dtype == "float32" else (1e-13, 1e-15)
    for l in (1, 2, 3):
        assert_close(cache.A[l], to_backend(backend, A_ref[l], dtype), rtol=rtol, atol=atol)
    for l in (1, 2):
        assert_close(cache.G[l], to_backend(backend, _REF[g[l - 1]](Z_ref[l]), dtype), rtol=rtol,
                     atol=atol)
    assert cache.G[3] is cache.A[3]  # no mask on the output layer
    # A mask on only some layers: only those change.
    _, cache1 = forward(Xb, Wb, bb, g, D={2: Db[2]})
    _, cache0 = forward(Xb, Wb, bb, g)
    assert_close(cache1.A[1], cache0.A[1], rtol=0.0)


@pytest.mark.parametrize("g", [["relu", "softmax"], ["leaky_relu", "sigmoid"],
                               ["tanh", "identity"], ["sigmoid", "softmax"]])
def test_outputs_keep_backend_and_dtype(backend, dtype, g):
    """float32 in, float32 Z, A out (no silent upcast); the input's backend and device."""
    X, _, W, b = random_network([3, 4, 2], g, m=5)
    Xb, Wb, bb = (to_backend(backend, t, dtype) for t in (X, W, b))
    AL, cache = forward(Xb, Wb, bb, g)
    for l in (1, 2):
        assert_same_place(cache.Z[l], Xb)
        assert_same_place(cache.A[l], Xb)
    assert AL.dtype == backend.dtype(dtype)


def test_outputs_stay_on_a_strict_fake_device():
    if not usable("array_api_strict")[0]:
        pytest.skip("array_api_strict not installed")
    import array_api_strict

    dev = array_api_strict.Device("device1")
    be = xpnet.get_backend("array_api_strict", dev)
    g = ["relu", "leaky_relu", "sigmoid", "tanh", "identity", "softmax"]
    X, _, W, b = random_network([3, 4, 4, 4, 4, 4, 2], g, m=5)
    Xb, Wb, bb = (to_backend(be, t) for t in (X, W, b))
    D = {l: to_backend(be, np.full((4, 5), 2.0)) for l in (1, 3)}
    AL, cache = forward(Xb, Wb, bb, g, D=D)
    assert AL.device == dev
    for l in range(1, 7):
        assert cache.Z[l].device == dev and cache.A[l].device == dev and cache.G[l].device == dev


def test_torch_tensors_stay_torch():
    if not usable("torch")[0]:
        pytest.skip("torch not installed")
    import torch

    be = xpnet.get_backend("torch")
    g = ["relu", "softmax"]
    X, _, W, b = random_network([3, 4, 2], g, m=5)
    AL, cache = forward(*(to_backend(be, t, "float32") for t in (X, W, b)), g)
    assert isinstance(AL, torch.Tensor) and AL.dtype == torch.float32
    assert all(isinstance(z, torch.Tensor) for z in cache.Z.values())


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_forward_huge_logits_stay_finite(backend, dtype, output):
    """Output logits of +-1e4: A[L] is finite and exact (0/1, or 1/2 for ties), with no
    overflow warning (the session runs with filterwarnings=error)."""
    # Z[1] = X (identity hidden layer), Z[2] = W[2] Z[1]: columns (1e4, -1e4), (0, 0), (-1e4, 1e4)
    X = to_backend(backend, [[1.0, 0.0, -1.0]], dtype)
    W = {1: to_backend(backend, [[1.0]], dtype), 2: to_backend(backend, [[1e4], [-1e4]], dtype)}
    b = {1: to_backend(backend, [[0.0]], dtype), 2: to_backend(backend, [[0.0], [0.0]], dtype)}
    AL, _ = forward(X, W, b, ["identity", output])
    # softmax: one-hot columns or a tie; sigmoid: sigmoid(1e4) = 1, sigmoid(0) = 1/2,
    # sigmoid(-1e4) = 0 (exactly, in float32 and float64)
    expected = [[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]]
    assert_close(AL, to_backend(backend, expected, dtype), rtol=0.0)
