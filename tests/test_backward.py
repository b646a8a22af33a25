"""Backpropagation: float64 central-difference gradient checks of every dW[l], db[l]; the fused
dZ[L] = A[L] - Y against the unfused chain rule; dropout masks; where the outputs live."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import assert_close, assert_same_place, random_network, to_backend, usable

import xpnet
from xpnet import (backward, backward_from_dA, backward_unfused, compute_cost, forward,
                   linear_backward, to_numpy)
from xpnet.core.activations import HIDDEN_ACTIVATIONS, softmax_backward

# Central-difference step. Its error is ~H^2 J'''/6 (truncation) + eps J / H (rounding): at
# H = 1e-5 both are ~1e-11, so even the small dW[1] of four sigmoid layers measures < 1e-7
# (at H = 1e-6 rounding alone gave 1.2e-7 there; measured worst at 1e-5: 1.1e-8).
H = 1e-5
REL_TOL = 1e-7      # the bound on the gradient check's relative error
KINK_MARGIN = 1e-3  # relu / leaky_relu: |Z[l]| must stay this far from 0 (H moves Z by ~1e-4)

# output activation, n[L], multilabel targets
OUTPUTS = {"softmax": ("softmax", 3, False), "sigmoid": ("sigmoid", 1, False),
           "sigmoid-multilabel": ("sigmoid", 3, True), "identity": ("identity", 2, False),
           "exp": ("exp", 2, False)}
HIDDEN_DIMS = [5, 4, 5]


def _case(L: int, hidden: str | None, output: str) -> tuple[list[int], list[str], bool]:
    out, nL, multilabel = OUTPUTS[output]
    dims = [4, *HIDDEN_DIMS[: L - 1], nL]
    return dims, [hidden] * (L - 1) + [out], multilabel


def relative_error(a: np.ndarray, n: np.ndarray) -> float:
    """||a - n|| / (||a|| + ||n||), 0 when both are 0."""
    den = np.linalg.norm(a) + np.linalg.norm(n)
    return 0.0 if den == 0 else float(np.linalg.norm(a - n) / den)


def numerical_gradients(J, W: dict[int, np.ndarray], b: dict[int, np.ndarray], h: float = H):
    """Central differences (J(p + h) - J(p - h)) / 2h for every entry of every W[l], b[l]."""
    grads = {}
    for name, P in (("W", W), ("b", b)):
        for l, p in P.items():
            g = np.zeros_like(p)
            for idx in np.ndindex(p.shape):
                old = p[idx]
                p[idx] = old + h
                plus = J(W, b)
                p[idx] = old - h
                minus = J(W, b)
                p[idx] = old
                g[idx] = (plus - minus) / (2 * h)
            grads[name, l] = g
    return grads


def gradient_check(backend: xpnet.Backend, dims: list[int], g: list[str], *, seed: int = 0,
                   multilabel: bool = False, dropout: float = 0.0,
                   h: float = H) -> dict[Any, float]:
    """{("W"|"b", l): relative error} between backward() and central differences of J, float64.

    The data are the first draw from ``seed``, ``seed + 1``, ... whose relu-like hidden layers
    keep |Z[l]| >= KINK_MARGIN (asserted), so no difference straddles a kink.
    """
    L = len(dims) - 1
    xp = backend.xp
    for seed in range(seed, seed + 20):
        X, Y, W, b = random_network(dims, g, m=5, seed=seed, multilabel=multilabel)
        D = None
        if dropout:
            rng = np.random.default_rng(seed + 100)
            D = {l: to_backend(backend, (rng.random((dims[l], 5)) >= dropout) / (1.0 - dropout))
                 for l in range(1, L)}
        Xb, Yb = to_backend(backend, X), to_backend(backend, Y)
        Wb, bb = to_backend(backend, W), to_backend(backend, b)
        _, cache = forward(Xb, Wb, bb, g, D=D)
        margin = min((float(np.min(np.abs(to_numpy(cache.Z[l])))) for l in range(1, L)
                      if g[l - 1] in ("relu", "leaky_relu")), default=np.inf)
        if margin >= KINK_MARGIN:
            break
    assert margin >= KINK_MARGIN, f"no draw keeps Z[l] {KINK_MARGIN} away from the relu kink"

    def J(Wn, bn):
        _, cache = forward(Xb, to_backend(backend, Wn), to_backend(backend, bn), g, D=D, xp=xp)
        return float(compute_cost(cache.Z[L], Yb, g[-1], xp=xp))

    dW, db = backward(Yb, Wb, cache, g, D=D, xp=xp)
    for l in range(1, L + 1):
        assert_same_place(dW[l], Wb[l])
        assert tuple(dW[l].shape) == tuple(Wb[l].shape)
        assert tuple(db[l].shape) == tuple(bb[l].shape)
    num = numerical_gradients(J, W, b, h)
    errors = {}
    for l in range(1, L + 1):
        errors["W", l] = relative_error(to_numpy(dW[l]), num["W", l])
        errors["b", l] = relative_error(to_numpy(db[l]), num["b", l])
    return errors


def _all_cases():
    for L in (1, 2, 3, 4):
        for hidden in (HIDDEN_ACTIVATIONS if L > 1 else (None,)):
            for output in OUTPUTS:
                yield pytest.param(L, hidden, output,
                                   id=f"L{L}-{hidden or 'none'}-{output}")


@pytest.fixture
def np_backend():
    return xpnet.get_backend("numpy")


@pytest.mark.parametrize("L, hidden, output", list(_all_cases()))
def test_gradient_check_every_activation_cost_and_depth(np_backend, L, hidden, output):
    """Every hidden activation x every output/cost pair x L = 1..4 (NumPy, float64)."""
    dims, g, multilabel = _case(L, hidden, output)
    errors = gradient_check(np_backend, dims, g, seed=10 * L, multilabel=multilabel)
    worst = max(errors.values())
    assert worst < REL_TOL, errors
    assert len(errors) == 2 * L


@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("output", list(OUTPUTS))
def test_gradient_check_on_every_backend(backend, hidden, output):
    """The same check, L = 3, run through each backend's namespace."""
    dims, g, multilabel = _case(3, hidden, output)
    errors = gradient_check(backend, dims, g, seed=30, multilabel=multilabel)
    assert max(errors.values()) < REL_TOL, errors


@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("output", ["softmax", "sigmoid-multilabel", "identity"])
def test_gradient_check_with_fixed_dropout_masks(hidden, output, np_backend):
    """A[l] = g(Z[l]) * D[l] with a fixed inverted-dropout mask: backward(..., D) is dJ/dW."""
    dims, g, multilabel = _case(3, hidden, output)
    errors = gradient_check(np_backend, dims, g, seed=4, multilabel=multilabel, dropout=0.4)
    assert max(errors.values()) < REL_TOL, errors


def test_dropout_gradient_check_on_every_backend(backend):
    dims, g, multilabel = _case(3, "relu", "softmax")
    errors = gradient_check(backend, dims, g, seed=4, dropout=0.4)
    assert max(errors.values()) < REL_TOL, errors


def test_dropout_mask_zeroes_the_dropped_units_gradient(backend):
    """A unit dropped in every example (a zero row of D[1]) gets dW[1] row = 0, db[1] = 0."""
    dims, g = [3, 4, 2], ["tanh", "softmax"]
    X, Y, W, b = random_network(dims, g, m=5, seed=2)
    D1 = np.full((4, 5), 2.0)
    D1[2] = 0.0
    Xb, Yb, Wb, bb = (to_backend(backend, t) for t in (X, Y, W, b))
    D = {1: to_backend(backend, D1)}
    _, cache = forward(Xb, Wb, bb, g, D=D)
    assert_close(cache.A[1], cache.G[1] * D[1], rtol=0.0)
    dW, db = backward(Yb, Wb, cache, g, D=D, xp=backend.xp)
    assert np.all(to_numpy(dW[1])[2] == 0.0) and to_numpy(db[1])[2, 0] == 0.0
    assert np.all(to_numpy(dW[2])[:, 2] == 0.0)


# --------------------------------------------------------------------------- fused vs unfused
def _fused_unfused(backend, dims, g, multilabel, seed=1):
    X, Y, W, b = random_network(dims, g, m=6, seed=seed, multilabel=multilabel)
    Xb, Yb, Wb, bb = (to_backend(backend, t) for t in (X, Y, W, b))
    xp = backend.xp
    _, cache = forward(Xb, Wb, bb, g)
    return backward(Yb, Wb, cache, g, xp=xp), backward_unfused(Yb, Wb, cache, g, xp=xp)


def _assert_grads_close(a, b_, rtol):
    for l in a:
        scale = float(np.max(np.abs(to_numpy(b_[l]))))
        assert_close(a[l], b_[l], rtol=rtol, atol=rtol * scale, err_msg=f"layer {l}")


@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("output", list(OUTPUTS))
@pytest.mark.parametrize("L", [1, 2, 3])
def test_unfused_chain_rule_equals_fused(np_backend, L, hidden, output):
    """dA[L] from the cost's derivative, through g'(Z[L]) (softmax: its Jacobian), gives the
    same dW, db as the fused dZ[L] = A[L] - Y."""
    dims, g, multilabel = _case(L, hidden, output)
    (dWf, dbf), (dWu, dbu) = _fused_unfused(np_backend, dims, g, multilabel)
    _assert_grads_close(dWu, dWf, 1e-12)
    _assert_grads_close(dbu, dbf, 1e-12)


def test_unfused_equals_fused_on_every_backend(backend, dtype):
    rtol = 1e-12 if dtype == "float64" else 1e-5
    for output in OUTPUTS:
        dims, g, multilabel = _case(3, "tanh", output)
        X, Y, W, b = random_network(dims, g, m=6, seed=1, multilabel=multilabel)
        Xb, Yb, Wb, bb = (to_backend(backend, t, dtype) for t in (X, Y, W, b))
        _, cache = forward(Xb, Wb, bb, g)
        dWf, dbf = backward(Yb, Wb, cache, g, xp=backend.xp)
        dWu, dbu = backward_unfused(Yb, Wb, cache, g, xp=backend.xp)
        _assert_grads_close(dWu, dWf, rtol)
        _assert_grads_close(dbu, dbf, rtol)


@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity", "exp"])
def test_backward_from_dA_is_the_general_chain_rule(np_backend, output):
    """J = (1/m) sum C * A[L] for a fixed C, so dA[L] = m dJ/dA[L] = C: backward_from_dA(C)
    matches central differences (softmax_backward with a dA that is no cost's)."""
    dims, g = [4, 5, 3], ["leaky_relu", output]
    X, _, W, b = random_network(dims, g, m=5, seed=6)
    C = np.random.default_rng(9).standard_normal((3, 5))
    xp = np_backend.xp

    def J(Wn, bn):
        AL, _ = forward(X, Wn, bn, g, xp=xp)
        return float(np.sum(C * AL) / 5)

    _, cache = forward(X, W, b, g)
    dW, db = backward_from_dA(C, W, cache, g, xp=xp)
    num = numerical_gradients(J, {l: w.copy() for l, w in W.items()},
                              {l: v.copy() for l, v in b.items()})
    for l in (1, 2):
        assert relative_error(dW[l], num["W", l]) < REL_TOL
        assert relative_error(db[l], num["b", l]) < REL_TOL


def test_softmax_backward_is_the_jacobian(backend):
    """dZ = J_softmax(Z)^T dA column by column, J = diag(a) - a a^T (built explicitly)."""
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((4, 3))
    dA = rng.standard_normal((4, 3))
    A = np.exp(Z) / np.exp(Z).sum(axis=0)
    expected = np.stack([(np.diag(A[:, i]) - np.outer(A[:, i], A[:, i])) @ dA[:, i]
                         for i in range(3)], axis=1)
    Zb, dAb, Ab = (to_backend(backend, t) for t in (Z, dA, A))
    got = softmax_backward(dAb, Zb, Ab, xp=backend.xp)
    assert_close(got, to_backend(backend, expected), rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- linear_backward
def test_linear_backward(backend, dtype):
    """dW = (1/m) dZ A_prev^T, db = (1/m) sum_i dZ, dA_prev = W^T dZ (checked against NumPy)."""
    rng = np.random.default_rng(1)
    dZ, A_prev = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    W = rng.standard_normal((3, 2))
    dZb, Ab, Wb = (to_backend(backend, t, dtype) for t in (dZ, A_prev, W))
    # float32 sums of O(1) terms that cancel: absolute error ~1e-7 per term.
    atol = 1e-6 if dtype == "float32" else 0.0
    for xp in (backend.xp, None):
        dA, dW, db = linear_backward(dZb, Ab, Wb, xp=xp)
        assert_close(dW, to_backend(backend, dZ @ A_prev.T / 4, dtype), atol=atol)
        assert_close(db, to_backend(backend, dZ.sum(axis=1, keepdims=True) / 4, dtype), atol=atol)
        assert_close(dA, to_backend(backend, W.T @ dZ, dtype), atol=atol)
    assert linear_backward(dZb, Ab, Wb, xp=backend.xp, need_dA_prev=False)[0] is None


# --------------------------------------------------------------------------- where outputs live
@pytest.mark.parametrize("g", [["relu", "softmax"], ["leaky_relu", "sigmoid"],
                               ["sigmoid", "identity"], ["tanh", "softmax"]])
def test_gradients_keep_backend_device_and_dtype(backend, dtype, g):
    X, Y, W, b = random_network([3, 4, 2], g, m=5, seed=3)
    Xb, Yb, Wb, bb = (to_backend(backend, t, dtype) for t in (X, Y, W, b))
    _, cache = forward(Xb, Wb, bb, g)
    for dW, db in (backward(Yb, Wb, cache, g, xp=backend.xp),
                   backward_unfused(Yb, Wb, cache, g, xp=backend.xp)):
        for l in (1, 2):
            assert_same_place(dW[l], Wb[l])
            assert_same_place(db[l], bb[l])
            assert dW[l].dtype == backend.dtype(dtype)


def test_gradients_stay_on_a_strict_fake_device():
    if not usable("array_api_strict")[0]:
        pytest.skip("array_api_strict not installed")
    import array_api_strict

    dev = array_api_strict.Device("device1")
    be = xpnet.get_backend("array_api_strict", dev)
    g = ["relu", "tanh", "softmax"]
    X, Y, W, b = random_network([3, 4, 4, 2], g, m=5, seed=3)
    Xb, Yb, Wb, bb = (to_backend(be, t) for t in (X, Y, W, b))
    D = {l: to_backend(be, np.full((4, 5), 1.25)) for l in (1, 2)}
    _, cache = forward(Xb, Wb, bb, g, D=D)
    for dW, db in (backward(Yb, Wb, cache, g, D=D, xp=be.xp),
                   backward_unfused(Yb, Wb, cache, g, xp=be.xp)):
        for l in (1, 2, 3):
            assert dW[l].device == dev and db[l].device == dev

