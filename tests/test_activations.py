"""A = g(Z) and g'(Z) for every activation, on every backend; overflow-free sigmoid/softmax."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import assert_close, to_backend

import xpnet
from xpnet import to_numpy

from xpnet.core.activations import (ACTIVATIONS, DERIVATIVES, HIDDEN_ACTIVATIONS, LEAKY_RELU_SLOPE,
                               OUTPUT_ACTIVATIONS, activation_backward, check_activation,
                               softmax, softmax_backward)

# Values chosen away from 0 where the kinks are; every expected value from its definition.
Z_HOST = np.array([[-3.0, -0.5, 0.25], [2.0, -1.5, 4.0]])


def _expected(name: str, z: float) -> float:
    return {
        "relu": max(z, 0.0),
        "leaky_relu": z if z > 0 else LEAKY_RELU_SLOPE * z,
        "sigmoid": 1.0 / (1.0 + math.exp(-z)),
        "tanh": math.tanh(z),
        "identity": z,
    }[name]


def _expected_grad(name: str, z: float) -> float:
    s = 1.0 / (1.0 + math.exp(-z))
    return {
        "relu": 1.0 if z > 0 else 0.0,
        "leaky_relu": 1.0 if z > 0 else LEAKY_RELU_SLOPE,
        "sigmoid": s * (1.0 - s),
        "tanh": 1.0 - math.tanh(z) ** 2,
        "identity": 1.0,
    }[name]


def test_registries():
    assert ACTIVATIONS["softmax"] is softmax
    assert set(HIDDEN_ACTIVATIONS) == {"relu", "leaky_relu", "sigmoid", "tanh", "identity"}
    assert set(OUTPUT_ACTIVATIONS) == {"softmax", "sigmoid", "identity", "exp"}
    assert set(ACTIVATIONS) == set(HIDDEN_ACTIVATIONS) | set(OUTPUT_ACTIVATIONS)
    # every elementwise activation has its derivative (softmax: softmax_backward)
    assert set(DERIVATIVES) == set(HIDDEN_ACTIVATIONS) | {"exp"}


@pytest.mark.parametrize("name", HIDDEN_ACTIVATIONS)
def test_activation_values(backend, dtype, name):
    Z = to_backend(backend, Z_HOST, dtype)
    expected = np.vectorize(lambda z: _expected(name, z))(Z_HOST)
    A = ACTIVATIONS[name](Z, xp=backend.xp)
    assert_close(A, to_backend(backend, expected, dtype),
                 rtol=1e-6 if dtype == "float32" else 1e-14)


@pytest.mark.parametrize("name", HIDDEN_ACTIVATIONS)
def test_derivative_values(backend, dtype, name):
    Z = to_backend(backend, Z_HOST, dtype)
    A = ACTIVATIONS[name](Z, xp=backend.xp)
    expected = np.vectorize(lambda z: _expected_grad(name, z))(Z_HOST)
    got = DERIVATIVES[name](Z, A, xp=backend.xp)
    # tanh' = 1 - A^2 and sigmoid' = A (1 - A) are computed from the cached A: where A is near
    # +-1 the subtraction leaves an absolute (not relative) error of a few eps.
    f32 = dtype == "float32"
    assert_close(got, to_backend(backend, expected, dtype), rtol=1e-5 if f32 else 1e-13,
                 atol=4 * float(np.finfo(dtype).eps))


@pytest.mark.parametrize("name", HIDDEN_ACTIVATIONS)
def test_derivative_is_the_central_difference(name):
    z = Z_HOST.ravel()
    h = 1e-6
    num = (np.vectorize(lambda t: _expected(name, t))(z + h)
           - np.vectorize(lambda t: _expected(name, t))(z - h)) / (2 * h)
    xp = xpnet.get_backend("numpy").xp
    A = ACTIVATIONS[name](z, xp=xp)
    np.testing.assert_allclose(DERIVATIVES[name](z, A, xp=xp), num, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", HIDDEN_ACTIVATIONS)
def test_activation_backward_is_dA_times_g_prime(backend, name):
    rng = np.random.default_rng(0)
    dA = rng.standard_normal(Z_HOST.shape)
    Z, dAb = to_backend(backend, Z_HOST), to_backend(backend, dA)
    A = ACTIVATIONS[name](Z, xp=backend.xp)
    expected = dA * np.vectorize(lambda z: _expected_grad(name, z))(Z_HOST)
    assert_close(activation_backward(dAb, Z, A, name, xp=backend.xp), to_backend(backend, expected),
                 rtol=1e-13)


def test_relu_at_zero(backend):
    """relu'(0) = 0 (the subgradient the seeds use: 1 for z > 0, 0 otherwise)."""
    Z = to_backend(backend, np.array([[0.0, -0.0, 1e-300]]))
    A = ACTIVATIONS["relu"](Z, xp=backend.xp)
    assert_close(DERIVATIVES["relu"](Z, A, xp=backend.xp), to_backend(backend, [[0.0, 0.0, 1.0]]))
    assert_close(activation_backward(to_backend(backend, [[5.0, 5.0, 5.0]]), Z, A, "relu",
                                     xp=backend.xp), to_backend(backend, [[0.0, 0.0, 5.0]]))


@pytest.mark.parametrize("z", [1000.0, -1000.0, 1e4, -1e4, 700.0, -700.0, 50.0, -50.0])
def test_sigmoid_extreme_values_are_finite_without_warnings(backend, dtype, z):
    """No overflow in exp (the test session runs with filterwarnings=error); sigmoid(z) for
    z << 0 keeps its relative precision, e^z / (1 + e^z), down to where e^z underflows."""
    Z = to_backend(backend, [[z]], dtype)
    A = ACTIVATIONS["sigmoid"](Z, xp=backend.xp)
    expected = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
    assert_close(A, to_backend(backend, [[expected]], dtype),
                 rtol=1e-6 if dtype == "float32" else 1e-14)
    G = DERIVATIVES["sigmoid"](Z, A, xp=backend.xp)
    assert np.all(np.isfinite(to_numpy(G)))
    assert 0.0 <= float(to_numpy(G)[0, 0]) <= 0.25


def test_softmax_columns_sum_to_one_and_match_definition(backend, dtype):
    Z = to_backend(backend, Z_HOST, dtype)
    A = ACTIVATIONS["softmax"](Z, xp=backend.xp)
    E = np.exp(Z_HOST)
    assert_close(A, to_backend(backend, E / E.sum(axis=0), dtype),
                 rtol=1e-6 if dtype == "float32" else 1e-14)
    assert_close(backend.xp.sum(A, axis=0), to_backend(backend, np.ones(3), dtype),
                 rtol=1e-6 if dtype == "float32" else 1e-15)


def test_softmax_huge_logits(backend, dtype):
    """Shifted by the column max: logits 1e4 apart give exact one-hot columns, no overflow."""
    Z = to_backend(backend, [[1e4, -1e4, 1000.0], [0.0, 0.0, 1000.0], [-1e4, 1e4, 1000.0]], dtype)
    A = ACTIVATIONS["softmax"](Z, xp=backend.xp)
    third = 1.0 / 3.0
    expected = [[1.0, 0.0, third], [0.0, 0.0, third], [0.0, 1.0, third]]
    assert_close(A, to_backend(backend, expected, dtype),
                 rtol=1e-6 if dtype == "float32" else 1e-15)


def test_softmax_backward_gradient_of_a_linear_function(backend):
    """f(Z) = sum(C * softmax(Z)): softmax_backward(C) is df/dZ (central differences)."""
    rng = np.random.default_rng(1)
    Z, C = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))

    def f(z):
        e = np.exp(z - z.max(axis=0))
        return float(np.sum(C * e / e.sum(axis=0)))

    h = 1e-6
    num = np.zeros_like(Z)
    for idx in np.ndindex(Z.shape):
        zp, zm = Z.copy(), Z.copy()
        zp[idx] += h
        zm[idx] -= h
        num[idx] = (f(zp) - f(zm)) / (2 * h)
    Zb = to_backend(backend, Z)
    A = ACTIVATIONS["softmax"](Zb, xp=backend.xp)
    got = softmax_backward(to_backend(backend, C), Zb, A, xp=backend.xp)
    np.testing.assert_allclose(to_numpy(got), num, rtol=1e-8, atol=1e-10)
    assert_close(activation_backward(to_backend(backend, C), Zb, A, "softmax", xp=backend.xp), got,
                 rtol=0.0)


def test_check_activation():
    assert check_activation("tanh") == "tanh"
    assert check_activation("softmax", output=True) == "softmax"
    with pytest.raises(ValueError, match=r"unknown hidden activation 'softmax'; expected one of "
                                         r"relu, leaky_relu, sigmoid, tanh, identity"):
        check_activation("softmax")
    with pytest.raises(ValueError, match=r"unknown output activation 'tanh' for layer 4; "
                                         r"expected one of softmax, sigmoid, identity"):
        check_activation("tanh", output=True, layer=4)
    with pytest.raises(ValueError, match=r"unknown hidden activation 'ReLU'"):
        check_activation("ReLU")
