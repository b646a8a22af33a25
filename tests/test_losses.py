"""The costs J(Z[L], Y): values from their definitions, stability at huge logits, dA[L]."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import xlogy
from conftest import assert_close, to_backend

import xpnet
from xpnet import to_numpy
from xpnet.core.losses import (COST_DERIVATIVES, COSTS, OUTPUT_COST, binary_cross_entropy,
                          cost_derivative, cross_entropy, squared_error)

ZL = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -0.5]])


def _clipped(loss, dtype):
    """-log p for p clipped to [eps, 1 - eps] (scikit-learn's)."""
    eps = float(np.finfo(dtype).eps)
    return min(max(loss, -math.log1p(-eps)), -math.log(eps))


def _tol(dtype):
    return 1e-6 if dtype == "float32" else 1e-14


def test_pairs():
    assert OUTPUT_COST == {"softmax": "cross_entropy", "sigmoid": "binary_cross_entropy",
                           "identity": "squared_error", "exp": "poisson_deviance"}
    assert set(COSTS) == set(COST_DERIVATIVES) == set(OUTPUT_COST.values())


def test_cross_entropy_definition(backend, dtype):
    Y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    P = np.exp(ZL) / np.exp(ZL).sum(axis=0)
    expected = -np.sum(Y * np.log(P)) / 3
    J = cross_entropy(to_backend(backend, ZL, dtype), to_backend(backend, Y, dtype), xp=backend.xp)
    assert_close(J, to_backend(backend, np.float64(expected), dtype), rtol=_tol(dtype))


def test_binary_cross_entropy_definition(backend, dtype):
    Y = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])  # multilabel: several ones per column
    A = 1.0 / (1.0 + np.exp(-ZL))
    expected = -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) / 3
    J = binary_cross_entropy(to_backend(backend, ZL, dtype), to_backend(backend, Y, dtype),
                             xp=backend.xp)
    assert_close(J, to_backend(backend, np.float64(expected), dtype), rtol=_tol(dtype))


def test_squared_error_definition(backend, dtype):
    Y = np.array([[0.5, -2.0, 1.5], [1.0, 1.0, 0.0]])
    # A - Y = [[0.5, 0, -1], [-1, 2, -0.5]];  (1/2m) sum ||A - Y||^2
    #       = (1/6)(0.25 + 0 + 1 + 1 + 4 + 0.25) = 6.5 / 6
    J = squared_error(to_backend(backend, ZL, dtype), to_backend(backend, Y, dtype), xp=backend.xp)
    assert_close(J, to_backend(backend, np.float64(6.5 / 6), dtype), rtol=_tol(dtype))


def test_poisson_deviance_definition(backend, dtype):
    """(1/m) sum [y log(y / a) - y + a], a = exp(Z), against scikit-learn's poisson_loss
    (the mean over samples, summed over outputs), zeros in y included (0 log 0 = 0)."""
    from sklearn.neural_network._base import poisson_loss

    from xpnet.core.losses import poisson_deviance

    Y = np.array([[0.0, 2.0, 5.0], [1.0, 0.0, 3.0]])
    want = poisson_loss(Y.T, np.exp(ZL).T)
    assert want == pytest.approx(np.sum(xlogy(Y, Y / np.exp(ZL)) - Y + np.exp(ZL)) / 3)
    J = poisson_deviance(to_backend(backend, ZL, dtype), to_backend(backend, Y, dtype),
                         xp=backend.xp)
    assert_close(J, to_backend(backend, np.float64(want), dtype), rtol=_tol(dtype))


@pytest.mark.parametrize("z", [1e4, 1e3, 100.0])
def test_cross_entropy_huge_logits(backend, dtype, z):
    """Logits z apart: J = log(1 + e^-z + e^-2z) ~ 0 when right, = z (+ log 2 ...) when wrong,
    each clipped to [-log(1 - eps), -log eps] as scikit-learn clips p to [eps, 1 - eps];
    finite, exact, no log(0), no overflow warnings (filterwarnings=error)."""
    Zh = np.array([[z, 0.0, 0.0], [0.0, z, 0.0], [-z, -z, z]])
    # column 1 right (class 1), column 2 wrong: lse = z + log(1 + e^-z + e^-2z), Y.Z = 0,
    # column 3 right and tied with nobody: lse = z + log(1 + 2 e^-z), Y.Z = z.
    Y = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    col1 = math.log1p(math.exp(-z) + math.exp(-2 * z))
    col2 = z + math.log1p(math.exp(-z) + math.exp(-2 * z))
    col3 = math.log1p(2 * math.exp(-z))
    expected = sum(_clipped(c, dtype) for c in (col1, col2, col3)) / 3
    J = cross_entropy(to_backend(backend, Zh, dtype), to_backend(backend, Y, dtype), xp=backend.xp)
    assert np.isfinite(float(J))
    assert_close(J, to_backend(backend, np.float64(expected), dtype), rtol=_tol(dtype))


@pytest.mark.parametrize("z", [1e4, 1000.0, 40.0])
def test_binary_cross_entropy_huge_logits(backend, dtype, z):
    """BCE at Z = +-z: right answers cost log(1 + e^-z) ~ 0, wrong ones cost z + log(1 + e^-z),
    each clipped as scikit-learn clips p: finite and exact where A = sigmoid(Z) rounds to
    exactly 0 or 1 (no log(0))."""
    Zh = np.array([[z, -z, z, -z]])
    Y = np.array([[1.0, 0.0, 0.0, 1.0]])
    right = math.log1p(math.exp(-z))
    wrong = z + math.log1p(math.exp(-z))
    expected = (2 * _clipped(right, dtype) + 2 * _clipped(wrong, dtype)) / 4
    J = binary_cross_entropy(to_backend(backend, Zh, dtype), to_backend(backend, Y, dtype),
                             xp=backend.xp)
    assert np.isfinite(float(J))
    assert_close(J, to_backend(backend, np.float64(expected), dtype), rtol=_tol(dtype))


def test_costs_at_perfect_prediction_are_scikit_learns_floor(backend):
    """A perfect prediction costs -log(1 - eps) ~ eps per log-loss term (p clipped to 1 - eps,
    scikit-learn's), the squared error 0."""
    Z = to_backend(backend, [[1e4, -1e4], [-1e4, 1e4]])
    Y = to_backend(backend, [[1.0, 0.0], [0.0, 1.0]])
    floor = -math.log1p(-np.finfo(np.float64).eps)
    assert_close(cross_entropy(Z, Y, xp=backend.xp), to_backend(backend, np.float64(floor)),
                 rtol=1e-15)
    assert_close(binary_cross_entropy(Z, Y, xp=backend.xp),
                 to_backend(backend, np.float64(2 * floor)), rtol=1e-15)  # 2 outputs each
    assert_close(squared_error(Y, Y, xp=backend.xp), to_backend(backend, np.float64(0.0)),
                 atol=0.0)


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_log_losses_are_scikit_learns_on_saturated_outputs(output):
    """scikit-learn's log_loss / binary_log_loss (probabilities clipped to [eps, 1 - eps])
    on outputs from right to saturated-wrong, float64: the same J to 1e-12."""
    from sklearn.neural_network._base import binary_log_loss, log_loss

    rng = np.random.default_rng(0)
    Z = rng.standard_normal((3, 40)) * np.geomspace(0.1, 60.0, 40)  # up to e^-100 and beyond
    if output == "softmax":
        Y = np.eye(3)[rng.integers(0, 3, 40)].T
        P = np.exp(Z - Z.max(0)) / np.exp(Z - Z.max(0)).sum(0)
        want, got = log_loss(Y.T, P.T), cross_entropy(Z, Y, xp=np)
    else:  # |z| < 5 or > 40 (p rounds to 0 or 1: clipped). In between, on a wrong answer,
        # scikit-learn's log(1 - p) of p within 1e-3 of 1 loses digits; softplus(z) does not
        Z = np.where(np.abs(Z) < 5, Z, np.sign(Z) * (40 + np.abs(Z)))
        Y = (rng.uniform(size=Z.shape) < 0.5).astype(float)
        want = binary_log_loss(Y.T, 1 / (1 + np.exp(-Z.T)))
        got = binary_cross_entropy(Z, Y, xp=np)
    assert float(got) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("cost, output", [("cross_entropy", "softmax"),
                                          ("binary_cross_entropy", "sigmoid"),
                                          ("squared_error", "identity"),
                                          ("poisson_deviance", "exp")])
def test_cost_derivative_is_m_dJ_dA(cost, output):
    """dA[L] = m dJ/dA[L] with J written in terms of A (central differences, NumPy)."""
    rng = np.random.default_rng(3)
    A = rng.uniform(0.1, 0.9, size=(3, 4))
    if output == "softmax":
        A /= A.sum(axis=0)
    Y = np.eye(3)[:, [0, 2, 1, 2]] if output != "identity" else rng.standard_normal((3, 4))
    m = 4

    def J(a):
        if cost == "cross_entropy":
            return -np.sum(Y * np.log(a)) / m
        if cost == "binary_cross_entropy":
            return -np.sum(Y * np.log(a) + (1 - Y) * np.log(1 - a)) / m
        if cost == "poisson_deviance":
            return np.sum(xlogy(Y, Y / a) - Y + a) / m
        return np.sum((a - Y) ** 2) / (2 * m)

    h = 1e-7
    num = np.zeros_like(A)
    for idx in np.ndindex(A.shape):
        ap, am = A.copy(), A.copy()
        ap[idx] += h
        am[idx] -= h
        num[idx] = m * (J(ap) - J(am)) / (2 * h)
    xp = xpnet.get_backend("numpy").xp
    np.testing.assert_allclose(cost_derivative(A, Y, cost, xp=xp), num, rtol=1e-7, atol=1e-8)


def test_cost_dtype_and_place(backend, dtype):
    """Float32 in, float32 0-d cost out on the same backend (no silent upcast)."""
    Z = to_backend(backend, ZL, dtype)
    Y = to_backend(backend, np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]), dtype)
    for name, fn in COSTS.items():
        J = fn(Z, Y, xp=backend.xp)
        assert xpnet.backend_of(J) == backend, name
        assert J.dtype == backend.dtype(dtype), name
        assert tuple(J.shape) == (), name
        dA = COST_DERIVATIVES[name](backend.xp.abs(Z) * 0.1 + 0.2, Y, xp=backend.xp)
        assert xpnet.backend_of(dA) == backend and dA.dtype == backend.dtype(dtype)
        assert np.isfinite(to_numpy(dA)).all()
