"""Bad numbers (issue 5): property tests over random shapes, depths, activations and dtypes, with
extreme-but-finite inputs — logits ~1e4, inputs ~1e4, all-zero inputs, a single example, a
single feature. forward, the cost and backward must stay finite where the maths is finite, give
the right shapes, and keep float32 float32. NumPy gets many examples; torch and
array-api-strict a few."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the property tests need hypothesis (xpnet[test])")
from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import xpnet
from xpnet.core.activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS

MAX_WIDTH = 6
MAX_M = 6


class Case(NamedTuple):
    """One network and batch: host float64 arrays, cast to ``dtype`` on the backend."""

    dims: list[int]   # [n0, ..., nL]
    g: list[str]      # L activations, the output's last
    dtype: str
    X: np.ndarray     # (n0, m)
    Y: np.ndarray     # (nL, m)
    W: dict[int, np.ndarray]
    b: dict[int, np.ndarray]


def make_case(dims: list[int], g: list[str], dtype: str, m: int, x_scale: float,
              logit_shift: float, X_unit: np.ndarray | None = None,
              b_unit: np.ndarray | None = None, seed: int = 0) -> Case:
    """He-initialised W (host seed), zero hidden b, b[L] = logit_shift * b_unit (pushes the
    logits Z[L] to ~logit_shift), X = x_scale * X_unit, Y matching the output activation."""
    rng = np.random.default_rng(seed)
    L = len(dims) - 1
    m = X_unit.shape[1] if X_unit is not None else m
    W, b = xpnet.draw_parameters(dims, "he", rng)
    X_unit = rng.uniform(-1, 1, (dims[0], m)) if X_unit is None else X_unit
    b_unit = rng.uniform(-1, 1, (dims[L], 1)) if b_unit is None else b_unit
    b[L] = logit_shift * b_unit
    nL = dims[L]
    if g[-1] == "softmax":
        Y = np.eye(nL)[:, rng.integers(0, nL, size=m)]
    elif g[-1] == "sigmoid":
        Y = (rng.random((nL, m)) < 0.5).astype(np.float64)
    elif g[-1] == "exp":
        Y = rng.poisson(2.0, (nL, m)).astype(np.float64)
    else:
        Y = rng.standard_normal((nL, m))
    return Case(list(dims), list(g), dtype, x_scale * X_unit, Y, W, b)


@st.composite
def cases(draw: Any) -> Case:
    L = draw(st.integers(1, 4))
    g = draw(st.lists(st.sampled_from(HIDDEN_ACTIVATIONS), min_size=L - 1, max_size=L - 1))
    g.append(draw(st.sampled_from(OUTPUT_ACTIVATIONS)))
    dims = draw(st.lists(st.integers(1, MAX_WIDTH), min_size=L + 1, max_size=L + 1))
    m = draw(st.integers(1, MAX_M))
    unit = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False)
    X_unit = draw(hnp.arrays(np.float64, (dims[0], m), elements=unit))
    b_unit = draw(hnp.arrays(np.float64, (dims[L], 1), elements=unit))
    # the Poisson mean exp(Z[L]) is inf past Z = 88 (float32) / 709 (float64) by definition:
    # its cases keep the inputs and logits moderate
    big = [] if g[-1] == "exp" else [1e2, 1e4]
    return make_case(dims, g, draw(st.sampled_from(["float32", "float64"])), m,
                     x_scale=draw(st.sampled_from([0.0, 1.0, *big])),  # 0: all-zero input
                     logit_shift=draw(st.sampled_from([0.0, 1.0, *big])),
                     X_unit=X_unit, b_unit=b_unit, seed=draw(st.integers(0, 2**32 - 1)))


def host(x: Any) -> np.ndarray:
    return np.asarray(xpnet.to_numpy(x), dtype=np.float64)


def check_numbers(case: Case, backend_name: str) -> None:
    be = xpnet.get_backend(backend_name)
    dt = be.dtype(case.dtype)
    eps = float(np.finfo(case.dtype).eps)
    L, m = len(case.dims) - 1, case.X.shape[1]
    X, Y = be.asarray(case.X, dtype=case.dtype), be.asarray(case.Y, dtype=case.dtype)
    W = {l: be.asarray(w, dtype=case.dtype) for l, w in case.W.items()}
    b = {l: be.asarray(v, dtype=case.dtype) for l, v in case.b.items()}

    # forward: shapes, dtype, finite
    AL, cache = xpnet.forward(X, W, b, case.g)
    assert tuple(AL.shape) == (case.dims[L], m) and AL.dtype == dt
    for l in range(1, L + 1):
        for name, arr in (("Z", cache.Z[l]), ("A", cache.A[l])):
            assert tuple(arr.shape) == (case.dims[l], m), f"{name}[{l}] shape"
            assert arr.dtype == dt, f"{name}[{l}] is {arr.dtype}, expected {case.dtype}"
            assert np.all(np.isfinite(host(arr))), f"{name}[{l}] not finite"
    A, Z = host(AL), host(cache.Z[L])
    out = case.g[-1]
    if out in ("softmax", "sigmoid"):
        assert np.all((A >= 0) & (A <= 1)), "probabilities outside [0, 1]"
    if out == "softmax":
        np.testing.assert_allclose(A.sum(axis=0), 1.0, rtol=0, atol=4 * case.dims[L] * eps)

    # cost: a finite 0-d array of the dtype, >= 0, and no more than its bound from the logits
    J = xpnet.compute_cost(cache.Z[L], Y, out, xp=be.xp)
    assert tuple(J.shape) == () and J.dtype == dt
    Jh = float(J)
    assert math.isfinite(Jh), f"cost {Jh} not finite ({out}, max |Z[L]| {np.abs(Z).max()})"
    scale = np.abs(Z).sum() / m + 1.0  # the size of the numbers summed
    if out == "softmax":  # 0 <= lse(z) - z_y <= max_k z_k - z_y + log nL, per column
        bound = np.mean(Z.max(axis=0) - (case.Y * Z).sum(axis=0)) + math.log(case.dims[L])
    elif out == "sigmoid":  # 0 <= max(z, 0) - z y + log(1 + e^-|z|) <= |z| + log 2
        bound = (np.abs(Z).sum() + Z.size * math.log(2)) / m
    elif out == "exp":  # 0 <= y log y - y z - y + e^z <= y log y + y |z| + e^z, per entry
        Yc = case.Y
        bound = np.sum(np.where(Yc > 0, Yc * np.log(np.where(Yc > 0, Yc, 1.0)), 0.0)
                       + Yc * np.abs(Z) + np.exp(Z)) / m
        scale = bound + 1.0
    else:  # (1/2m) sum (z - y)^2
        bound = 0.5 * np.sum((Z - case.Y) ** 2) / m
        scale = bound + 1.0
    tol = 16 * eps * scale * (Z.size + 1)
    assert -tol <= Jh <= bound + tol, f"cost {Jh} outside [0, {bound}] ({out})"

    # backward: dW[l], db[l] finite, shaped like W[l], b[l], same dtype
    dW, db = xpnet.backward(Y, W, cache, case.g, xp=be.xp)
    assert sorted(dW) == sorted(db) == list(range(1, L + 1))
    for l in range(1, L + 1):
        for name, grad, like in (("dW", dW[l], W[l]), ("db", db[l], b[l])):
            assert tuple(grad.shape) == tuple(like.shape), f"{name}[{l}] shape"
            assert grad.dtype == dt, f"{name}[{l}] is {grad.dtype}, expected {case.dtype}"
            assert np.all(np.isfinite(host(grad))), f"{name}[{l}] not finite"


EXAMPLES = [
    # very large logits, every output activation, both dtypes
    make_case([3, 4, 5], ["relu", "softmax"], "float32", 4, 1.0, 1e4, seed=1),
    make_case([3, 4, 1], ["tanh", "sigmoid"], "float32", 4, 1.0, 1e4, seed=2),
    make_case([3, 4, 2], ["sigmoid", "identity"], "float64", 4, 1.0, 1e4, seed=3),
    # all-zero input, a single example, a single feature, the deepest net
    make_case([2, 3, 3, 3, 3], ["relu", "leaky_relu", "identity", "softmax"], "float32", 3,
              0.0, 0.0, seed=4),
    make_case([1, 1, 1], ["relu", "sigmoid"], "float32", 1, 1e4, 1e4, seed=5),
    make_case([1, 6, 6, 6, 6], ["tanh", "relu", "sigmoid", "softmax"], "float64", 1, 1e4, 1e2,
              seed=6),
]


@settings(max_examples=80, deadline=None)
@given(case=cases())
@example(case=EXAMPLES[0])
@example(case=EXAMPLES[1])
@example(case=EXAMPLES[2])
@example(case=EXAMPLES[3])
@example(case=EXAMPLES[4])
@example(case=EXAMPLES[5])
def test_forward_cost_backward_stay_finite_numpy(case: Case) -> None:
    check_numbers(case, "numpy")


@pytest.mark.skipif(not xpnet.available_backends()["array_api_strict"][0],
                    reason="array_api_strict is not installed")
@settings(max_examples=8, deadline=None)
@given(case=cases())
@example(case=EXAMPLES[0])
@example(case=EXAMPLES[4])
def test_forward_cost_backward_stay_finite_strict(case: Case) -> None:
    check_numbers(case, "array_api_strict")


def test_large_logits_give_the_exact_cost():
    """Z[L] = (1e4, -1e4) for one example of class 0 and one of class 1: the right one costs
    -log(1 - eps), the wrong one (2e4 unclipped) -log eps, as scikit-learn clips p to
    [eps, 1 - eps]; sigmoid BCE with y = (1, 1) the same; in float32, where exp(1e4) alone
    would overflow."""
    xp = xpnet.get_backend("numpy").xp
    eps = float(np.finfo(np.float32).eps)
    want = np.float32((np.float32(-math.log1p(-eps)) + np.float32(-math.log(eps))) / 2)
    Z = np.array([[1e4, 1e4], [-1e4, -1e4]], dtype=np.float32)
    Y = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    J = xpnet.compute_cost(Z, Y, "softmax", xp=xp)
    assert J.dtype == np.float32 and float(J) == pytest.approx(float(want), rel=1e-6)
    Zs = np.array([[1e4, -1e4]], dtype=np.float32)
    J = xpnet.compute_cost(Zs, np.ones((1, 2), dtype=np.float32), "sigmoid", xp=xp)
    assert J.dtype == np.float32 and float(J) == pytest.approx(float(want), rel=1e-6)


@pytest.mark.skipif(not xpnet.available_backends()["torch"][0], reason="torch is not installed")
@settings(max_examples=20, deadline=None)
@given(case=cases())
@example(case=EXAMPLES[1])
@example(case=EXAMPLES[5])
def test_forward_cost_backward_stay_finite_torch(case: Case) -> None:
    check_numbers(case, "torch")
