"""One gradient-descent step (forward, J, backward, update), and the seed-000 worked example."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import assert_close, random_network, to_backend

import xpnet
from xpnet import (activation_backward, backward, compute_cost, forward, gradient_descent_step,
                   linear_backward, output_delta, to_numpy)
from xpnet.core.losses import COSTS, OUTPUT_COST

# --------------------------------------------------------------------------- worked example
# Seed 000: a two-layer network, ReLU hidden layer, softmax output, cross-entropy, m = 2
# examples in columns. Every number below is worked out by hand.
#
#   X  = [[ 1, 2],        W[1] = [[1, -1],     b[1] = [[ 0  ],
#         [-1, 1]]                [0,  1]]             [-0.5]]
#
#   Z[1] = W[1] X + b[1]:  W[1] X = [[1*1 + (-1)(-1), 1*2 + (-1)*1],  = [[ 2, 1],
#                                    [0*1 +   1 (-1), 0*2 +    1*1]]     [-1, 1]]
#          + b[1]       ->  Z[1] = [[2, 1], [-1.5, 0.5]]
#   A[1] = max(0, Z[1])  =  [[2, 1], [0, 0.5]]
#
#   W[2] = [[2, 4],  b[2] = [[0],
#           [1, 0]]          [2]]
#   Z[2] = W[2] A[1] + b[2] = [[2*2 + 4*0,     2*1 + 4*0.5    ],  = [[4, 4],
#                              [1*2 + 0*0 + 2, 1*1 + 0*0.5 + 2]]     [4, 3]]
#   A[2] = softmax per column: column 1 (4, 4) -> (1/2, 1/2);
#          column 2 (4, 3) -> (e^4, e^3) / (e^4 + e^3) = (s, 1 - s),  s = e / (1 + e).
#   Y = [[1, 0],   (example 1 is class 1, example 2 is class 2)
#        [0, 1]]
#   J = (1/m) sum_i -log A[2]_{y(i)}(i) = (-log(1/2) - log(1 - s)) / 2 = (ln 2 + ln(1 + e)) / 2
#
#   dZ[2] = A[2] - Y = [[1/2 - 1, s - 0      ],  = [[-1/2,  s],
#                       [1/2 - 0, (1 - s) - 1]]     [ 1/2, -s]]
#   dW[2] = (1/m) dZ[2] A[1]^T,  A[1]^T = [[2, 0], [1, 0.5]]
#         = (1/2) [[-1/2*2 + s*1, -1/2*0 + s*0.5],  = [[(s - 1)/2,  s/4],
#                  [ 1/2*2 - s*1,  1/2*0 - s*0.5]]     [(1 - s)/2, -s/4]]
#   db[2] = (1/m) row sums of dZ[2] = [[(s - 1/2)/2], [(1/2 - s)/2]] = [[s/2 - 1/4], [1/4 - s/2]]
#   dA[1] = W[2]^T dZ[2],  W[2]^T = [[2, 1], [4, 0]]
#         = [[2(-1/2) + 1(1/2), 2s + 1(-s)],  = [[-1/2,  s],
#            [4(-1/2) + 0,      4s + 0    ]]     [-2,   4s]]
#   g'(Z[1]) = [[1, 1], [0, 1]]  (Z[1] = [[2, 1], [-1.5, 0.5]]: only -1.5 is <= 0)
#   dZ[1] = dA[1] * g'(Z[1]) = [[-1/2, s], [0, 4s]]
#   dW[1] = (1/m) dZ[1] X^T,  X^T = [[1, -1], [2, 1]]
#         = (1/2) [[-1/2*1 + s*2, -1/2*(-1) + s*1],  = [[s - 1/4, 1/4 + s/2],
#                  [0*1 + 4s*2,    0*(-1) + 4s*1  ]]     [4s,      2s       ]]
#   db[1] = (1/m) row sums of dZ[1] = [[(s - 1/2)/2], [4s/2]] = [[s/2 - 1/4], [2s]]
#
#   Update with alpha = 1/2:
#   W[1] := W[1] - dW[1]/2 = [[1 - (s - 1/4)/2, -1 - (1/4 + s/2)/2],  = [[9/8 - s/2, -9/8 - s/4],
#                             [0 - 2s,           1 - s            ]]     [-2s,        1 - s     ]]
#   b[1] := b[1] - db[1]/2 = [[-(s/2 - 1/4)/2], [-1/2 - s]] = [[1/8 - s/4], [-1/2 - s]]
#   W[2] := W[2] - dW[2]/2 = [[2 - (s - 1)/4, 4 - s/8],  = [[9/4 - s/4, 4 - s/8],
#                             [1 - (1 - s)/4, 0 + s/8]]     [3/4 + s/4, s/8    ]]
#   b[2] := b[2] - db[2]/2 = [[-(s/2 - 1/4)/2], [2 - (1/4 - s/2)/2]] = [[1/8 - s/4], [15/8 + s/4]]

E = math.e
S = E / (1.0 + E)  # 0.7310585786300049
EX = {
    "X": [[1.0, 2.0], [-1.0, 1.0]],
    "W1": [[1.0, -1.0], [0.0, 1.0]], "b1": [[0.0], [-0.5]],
    "W2": [[2.0, 4.0], [1.0, 0.0]], "b2": [[0.0], [2.0]],
    "Y": [[1.0, 0.0], [0.0, 1.0]],
    "Z1": [[2.0, 1.0], [-1.5, 0.5]], "A1": [[2.0, 1.0], [0.0, 0.5]],
    "Z2": [[4.0, 4.0], [4.0, 3.0]], "A2": [[0.5, S], [0.5, 1.0 - S]],
    "J": (math.log(2.0) + math.log(1.0 + E)) / 2.0,
    "dZ2": [[-0.5, S], [0.5, -S]],
    "dW2": [[(S - 1.0) / 2.0, S / 4.0], [(1.0 - S) / 2.0, -S / 4.0]],
    "db2": [[S / 2.0 - 0.25], [0.25 - S / 2.0]],
    "dA1": [[-0.5, S], [-2.0, 4.0 * S]],
    "dZ1": [[-0.5, S], [0.0, 4.0 * S]],
    "dW1": [[S - 0.25, 0.25 + S / 2.0], [4.0 * S, 2.0 * S]],
    "db1": [[S / 2.0 - 0.25], [2.0 * S]],
    "alpha": 0.5,
    "W1_new": [[9 / 8 - S / 2, -9 / 8 - S / 4], [-2 * S, 1 - S]],
    "b1_new": [[1 / 8 - S / 4], [-1 / 2 - S]],
    "W2_new": [[9 / 4 - S / 4, 4 - S / 8], [3 / 4 + S / 4, S / 8]],
    "b2_new": [[1 / 8 - S / 4], [15 / 8 + S / 4]],
}
G = ["relu", "softmax"]
TOL = 1e-12


def test_worked_example_seed_000(backend):
    """Forward Z, A, J; dZ, dW, db; the update; all to 1e-12 in float64, on every backend."""
    ex = {k: backend.asarray(np.array(v, dtype=np.float64)) for k, v in EX.items()
          if k != "alpha"}

    def close(actual, key):
        assert_close(actual, ex[key], rtol=TOL, atol=TOL, err_msg=key)

    X, Y = ex["X"], ex["Y"]
    W = {1: backend.asarray(np.array(EX["W1"])), 2: backend.asarray(np.array(EX["W2"]))}
    b = {1: backend.asarray(np.array(EX["b1"])), 2: backend.asarray(np.array(EX["b2"]))}

    A2, cache = forward(X, W, b, G)
    close(cache.Z[1], "Z1")
    close(cache.A[1], "A1")
    close(cache.Z[2], "Z2")
    close(cache.A[2], "A2")
    close(A2, "A2")
    close(compute_cost(cache.Z[2], Y, "softmax", xp=backend.xp), "J")

    # The per-layer steps as the seed presents them.
    xp = backend.xp
    dZ2 = output_delta(A2, Y, xp=xp)
    close(dZ2, "dZ2")
    dA1, dW2, db2 = linear_backward(dZ2, cache.A[1], W[2], xp=xp)
    close(dA1, "dA1")
    close(dW2, "dW2")
    close(db2, "db2")
    dZ1 = activation_backward(dA1, cache.Z[1], cache.A[1], "relu", xp=xp)
    close(dZ1, "dZ1")
    none, dW1, db1 = linear_backward(dZ1, X, W[1], xp=xp, need_dA_prev=False)
    assert none is None
    close(dW1, "dW1")
    close(db1, "db1")

    # The whole backward pass gives the same.
    dW, db = backward(Y, W, cache, G, xp=xp)
    close(dW[1], "dW1")
    close(db[1], "db1")
    close(dW[2], "dW2")
    close(db[2], "db2")

    # One full step: returns J before the update, updates W, b in place.
    J = gradient_descent_step(X, Y, W, b, G, EX["alpha"])
    close(J, "J")
    close(W[1], "W1_new")
    close(b[1], "b1_new")
    close(W[2], "W2_new")
    close(b[2], "b2_new")


def test_worked_example_hand_numbers_are_consistent():
    """The hand-derived dW, db are the central differences of J (a check on the comments)."""
    X, Y = np.array(EX["X"]), np.array(EX["Y"])

    def J(W1, b1, W2, b2):
        Z1 = W1 @ X + b1
        A1 = np.maximum(Z1, 0)
        Z2 = W2 @ A1 + b2
        P = np.exp(Z2) / np.exp(Z2).sum(axis=0)
        return -np.sum(Y * np.log(P)) / X.shape[1]

    params = [np.array(EX[k]) for k in ("W1", "b1", "W2", "b2")]
    assert J(*params) == pytest.approx(EX["J"], rel=1e-14)
    h = 1e-6
    for i, key in enumerate(("dW1", "db1", "dW2", "db2")):
        num = np.zeros_like(params[i])
        for idx in np.ndindex(params[i].shape):
            plus = [p.copy() for p in params]
            minus = [p.copy() for p in params]
            plus[i][idx] += h
            minus[i][idx] -= h
            num[idx] = (J(*plus) - J(*minus)) / (2 * h)
        np.testing.assert_allclose(num, EX[key], rtol=1e-8, atol=1e-9, err_msg=key)


# --------------------------------------------------------------------------- the step
@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity"])
def test_compute_cost_is_the_matching_cost(backend, output):
    X, Y, W, b = random_network([3, 4, 2], ["tanh", output], m=4, seed=3)
    ZL = to_backend(backend, W[2] @ np.tanh(W[1] @ X + b[1]) + b[2])
    Yb = to_backend(backend, Y)
    J = compute_cost(ZL, Yb, output, xp=backend.xp)
    expected = COSTS[OUTPUT_COST[output]](ZL, Yb, xp=backend.xp)
    assert_close(J, expected, rtol=0.0)
    assert tuple(J.shape) == ()


@pytest.mark.parametrize("g", [["relu", "softmax"], ["tanh", "sigmoid", "sigmoid"],
                               ["leaky_relu", "identity"]])
def test_step_is_forward_backward_update(backend, dtype, g):
    """gradient_descent_step == forward, J, backward, then W - alpha dW (rebuilt by hand)."""
    dims = [3, 5, 4, 2][: len(g) + 1]
    X, Y, W, b = random_network(dims, g, m=6, seed=7)
    Xb, Yb = to_backend(backend, X, dtype), to_backend(backend, Y, dtype)
    W1, b1 = to_backend(backend, W, dtype), to_backend(backend, b, dtype)
    W2, b2 = to_backend(backend, W, dtype), to_backend(backend, b, dtype)
    alpha = 0.3
    xp = backend.xp
    AL, cache = forward(Xb, W1, b1, g)
    J_ref = compute_cost(cache.Z[len(g)], Yb, g[-1], xp=xp)
    dW, db = backward(Yb, W1, cache, g, xp=xp)
    W_ref = {l: W1[l] - alpha * dW[l] for l in W1}
    b_ref = {l: b1[l] - alpha * db[l] for l in b1}
    ids = {l: id(W2[l]) for l in W2}
    J = gradient_descent_step(Xb, Yb, W2, b2, g, alpha)
    assert_close(J, J_ref, rtol=0.0)
    for l in W2:
        assert id(W2[l]) == ids[l]  # in place: the same array objects
        assert_close(W2[l], W_ref[l], rtol=0.0)
        assert_close(b2[l], b_ref[l], rtol=0.0)


def test_step_with_xp_given_skips_checks_and_agrees(backend):
    g = ["relu", "softmax"]
    X, Y, W, b = random_network([3, 4, 3], g, m=5, seed=2)
    Xb, Yb = to_backend(backend, X), to_backend(backend, Y)
    Wa, ba = to_backend(backend, W), to_backend(backend, b)
    Wb, bb = to_backend(backend, W), to_backend(backend, b)
    Ja = gradient_descent_step(Xb, Yb, Wa, ba, g, 0.1)
    Jb = gradient_descent_step(Xb, Yb, Wb, bb, g, 0.1, xp=backend.xp)
    assert_close(Ja, Jb, rtol=0.0)
    for l in Wa:
        assert_close(Wa[l], Wb[l], rtol=0.0)
        assert_close(ba[l], bb[l], rtol=0.0)


def test_cost_decreases(backend):
    """Plain gradient descent on one fixed batch lowers J monotonically for a small alpha."""
    g = ["tanh", "softmax"]
    X, Y, _, _ = random_network([4, 6, 3], g, m=12, seed=5)
    W, b = xpnet.initialize_parameters([4, 6, 3], init="xavier", rng=0, dtype="float64",
                                       backend=backend)
    Xb, Yb = to_backend(backend, X), to_backend(backend, Y)
    costs = [float(gradient_descent_step(Xb, Yb, W, b, g, 0.5)) for _ in range(30)]
    assert all(c2 < c1 for c1, c2 in zip(costs, costs[1:]))
    assert costs[-1] < 0.8 * costs[0]


# --------------------------------------------------------------------------- bad input
def _snapshot(W, b):
    return ({l: to_numpy(w).copy() for l, w in W.items()},
            {l: to_numpy(v).copy() for l, v in b.items()})


def _unchanged(W, b, snap):
    for l in W:
        np.testing.assert_array_equal(to_numpy(W[l]), snap[0][l])
        np.testing.assert_array_equal(to_numpy(b[l]), snap[1][l])


@pytest.mark.parametrize("case", ["W shape", "b shape", "activations", "unknown activation",
                                  "int X", "dtype", "Y shape", "Y dtype", "alpha", "Y backend"])
def test_bad_step_input_leaves_parameters_unchanged(backend, case):
    g = ["relu", "softmax"]
    X, Y, W, b = random_network([3, 4, 2], g, m=5, seed=1)
    Xb, Yb = to_backend(backend, X), to_backend(backend, Y)
    Wb, bb = to_backend(backend, W), to_backend(backend, b)
    alpha = 0.1
    if case == "W shape":
        Wb[2] = to_backend(backend, np.ones((2, 5)))
        err, match = ValueError, r"layer 2: W\[2\] has shape \(2, 5\) but A\[1\] has 4 rows"
    elif case == "b shape":
        bb[1] = to_backend(backend, np.ones((4,)))
        err, match = ValueError, r"layer 1: b\[1\] has shape \(4,\); expected \(4, 1\)"
    elif case == "activations":
        g = ["relu", "relu", "softmax"]
        err, match = ValueError, r"g must list one activation per layer: 2 for L = 2"
    elif case == "unknown activation":
        g = ["swish", "softmax"]
        err, match = ValueError, r"unknown hidden activation 'swish' for layer 1; expected one of"
    elif case == "int X":
        Xb = backend.asarray(np.ones((3, 5), dtype=np.int64))
        err, match = TypeError, r"X must be float32 or float64; got int64"
    elif case == "dtype":
        Xb = to_backend(backend, X, "float32")
        err, match = TypeError, r"W\[1\] is float64 but X is float32"
    elif case == "Y shape":
        Yb = to_backend(backend, Y[:, :4])
        err, match = ValueError, r"Y has shape \(2, 4\) but A\[L\] has \(2, 5\)"
    elif case == "Y dtype":
        Yb = to_backend(backend, Y, "float32")
        err, match = TypeError, r"Y is float32 but A\[L\] is float64"
    elif case == "alpha":
        alpha = -0.1
        err, match = ValueError, r"alpha \(the learning rate\) must be > 0; got -0.1"
    else:  # Y from another library
        other = "torch" if backend.name == "numpy" else "numpy"
        if not xpnet.available_backends()[other][0]:
            pytest.skip(f"{other} not usable")
        Yb = to_backend(xpnet.get_backend(other), Y)
        err, match = TypeError, r"Y must be an array of the same backend"
    snap = _snapshot(Wb, bb)
    with pytest.raises(err, match=match):
        gradient_descent_step(Xb, Yb, Wb, bb, g, alpha)
    _unchanged(Wb, bb, snap)
