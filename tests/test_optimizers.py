"""Optimizer steps rebuilt from their formulas on every backend, checked against scikit-learn's
own optimizers, float32 kept, state round trips, and scikit-learn's learning-rate schedules."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from conftest import assert_close

import xpnet
from xpnet.core.kernels import Kernels
from xpnet.core.optim import (SCHEDULES, SGD, Adam, LearningRateSchedule, make_optimizer)

SHAPES = [(4, 3), (4, 1), (2, 4), (2, 1)]  # W[1], b[1], W[2], b[2]
STEPS = 4


def host_problem(seed: int = 0, steps: int = STEPS
                 ) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    """Float64 host params and ``steps`` lists of grads (different every step)."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]
    return params, grads


def on(backend: xpnet.Backend, arrays: list[np.ndarray], dtype: str) -> list:
    return [backend.asarray(np.array(a, dtype=dtype, copy=True)) for a in arrays]


def assert_params(actual: list, expected: list[np.ndarray], backend: xpnet.Backend,
                  dtype: str) -> None:
    """Same backend, dtype, device and shape; values equal to the bit (same formula, same order
    of operations, same dtype: IEEE arithmetic gives the same rounding on every backend)."""
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert_close(a, backend.asarray(e), rtol=0.0, err_msg=f"param {i}")
        assert e.dtype == np.dtype(dtype)


# --------------------------------------------------------------------------- formulas
# The formulas are the portable kernels' (the reference, exact to the bit on every backend); a
# backend's own fused update (torch's add_/lerp_/addcdiv_) is compared with them in
# test_kernels.py, to rounding.
PORTABLE = Kernels()

def test_plain_sgd_is_the_seeds_update(backend, dtype):
    P0, grads = host_problem()
    lr = 0.1
    params = on(backend, P0, dtype)
    opt = SGD(params, learning_rate=lr, kernels=PORTABLE)
    # The seeds' update, xpnet.update_parameters, on a second copy.
    W = {1: on(backend, [P0[0]], dtype)[0], 2: on(backend, [P0[2]], dtype)[0]}
    b = {1: on(backend, [P0[1]], dtype)[0], 2: on(backend, [P0[3]], dtype)[0]}
    ref = [p.astype(dtype) for p in P0]
    for G in grads:
        g = on(backend, G, dtype)
        opt.step(params, g)
        xpnet.update_parameters(W, b, {1: g[0], 2: g[2]}, {1: g[1], 2: g[3]}, lr)
        ref = [p - lr * gr.astype(dtype) for p, gr in zip(ref, G)]  # p := p - lr g
    assert_params(params, ref, backend, dtype)
    for got, seed in zip(params, (W[1], b[1], W[2], b[2])):
        assert_close(got, seed, rtol=0.0)


@pytest.mark.parametrize("nesterov", [False, True], ids=["momentum", "nesterov"])
def test_momentum_rebuilt_from_formula(backend, dtype, nesterov):
    P0, grads = host_problem(1)
    lr, mu = 0.05, 0.9
    params = on(backend, P0, dtype)
    opt = SGD(params, learning_rate=lr, momentum=mu, nesterov=nesterov, kernels=PORTABLE)
    ref = [p.astype(dtype) for p in P0]
    vel = [np.zeros(s, dtype=dtype) for s in SHAPES]
    for G in grads:
        opt.step(params, on(backend, G, dtype))
        G = [gr.astype(dtype) for gr in G]
        vel = [mu * v - lr * g for v, g in zip(vel, G)]                  # v := mu v - lr g
        if nesterov:
            ref = [p + (mu * v - lr * g) for p, v, g in zip(ref, vel, G)]  # p := p + mu v - lr g
        else:
            ref = [p + v for p, v in zip(ref, vel)]                         # p := p + v
    assert_params(params, ref, backend, dtype)
    assert_params(opt.state_dict()["velocities"], vel, backend, dtype)


def test_adam_rebuilt_from_formula(backend, dtype):
    P0, grads = host_problem(2, steps=6)
    lr, b1, b2, eps = 0.01, 0.8, 0.95, 1e-7
    params = on(backend, P0, dtype)
    opt = Adam(params, learning_rate=lr, beta_1=b1, beta_2=b2, epsilon=eps, kernels=PORTABLE)
    ref = [p.astype(dtype) for p in P0]
    ms = [np.zeros(s, dtype=dtype) for s in SHAPES]
    vs = [np.zeros(s, dtype=dtype) for s in SHAPES]
    for t, G in enumerate(grads, start=1):
        opt.step(params, on(backend, G, dtype))
        assert opt.t == t  # once per step, not once per parameter array
        G = [g.astype(dtype) for g in G]
        ms = [b1 * m + (1 - b1) * g for m, g in zip(ms, G)]
        vs = [b2 * v + (1 - b2) * g ** 2 for v, g in zip(vs, G)]
        lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        ref = [p - lr_t * m / (np.sqrt(v) + eps) for p, m, v in zip(ref, ms, vs)]
    assert_params(params, ref, backend, dtype)
    state = opt.state_dict()
    assert state["t"] == len(grads)
    assert_params(state["ms"], ms, backend, dtype)
    assert_params(state["vs"], vs, backend, dtype)


def test_adam_step_counter_once_per_step_many_layers():
    """With 8 parameter arrays, t after 3 steps is 3, and the bias correction uses t = 1, 2, 3:
    the first step of Adam moves every parameter by lr (m/sqrt(v) = g/|g| at t = 1)."""
    params = [np.ones((2, 2)) for _ in range(8)]
    opt = Adam(params, learning_rate=0.5, epsilon=1e-300)
    opt.step(params, [np.full((2, 2), 3.0) for _ in range(8)])
    assert opt.t == 1
    for p in params:  # m = 0.3, v = 0.009: lr_t m / sqrt(v) = 0.5 sqrt(.001)/.1 * 0.3/sqrt(.009)
        np.testing.assert_allclose(p, 0.5, rtol=1e-14)
    opt.step(params, [np.full((2, 2), 3.0) for _ in range(8)])
    opt.step(params, [np.full((2, 2), 3.0) for _ in range(8)])
    assert opt.t == 3
    for p in params:  # a constant gradient: every bias-corrected step is exactly lr
        np.testing.assert_allclose(p, 1.0 - 3 * 0.5, rtol=1e-14)


# --------------------------------------------------------------------------- scikit-learn
@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True),
                                               (0.0, True)])
def test_sgd_matches_sklearn(momentum, nesterov):
    so = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    P0, grads = host_problem(3, steps=6)
    ours = [p.copy() for p in P0]
    theirs = [p.copy() for p in P0]
    opt = SGD(ours, learning_rate=0.05, momentum=momentum, nesterov=nesterov)
    ref = so.SGDOptimizer(theirs, learning_rate_init=0.05, lr_schedule="constant",
                          momentum=momentum, nesterov=nesterov)
    for G in grads:
        opt.step(ours, G)
        ref.update_params(theirs, G)
    for a, e in zip(ours, theirs):
        np.testing.assert_array_equal(a, e)  # the same operations in the same order: bit-equal


def test_adam_matches_sklearn():
    so = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    P0, grads = host_problem(4, steps=8)
    ours = [p.copy() for p in P0]
    theirs = [p.copy() for p in P0]
    opt = Adam(ours, learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    ref = so.AdamOptimizer(theirs, learning_rate_init=0.01, beta_1=0.9, beta_2=0.999,
                           epsilon=1e-8)
    for G in grads:
        opt.step(ours, G)
        ref.update_params(theirs, G)
    assert opt.t == ref.t == len(grads)
    for a, e in zip(ours, theirs):
        np.testing.assert_array_equal(a, e)
    for a, e in zip(opt.state_dict()["ms"] + opt.state_dict()["vs"], ref.ms + ref.vs):
        np.testing.assert_array_equal(a, e)


# --------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam"])
def test_float32_stays_float32(backend, name):
    P0, grads = host_problem(5)
    params = on(backend, P0, "float32")
    kw = {"sgd": {}, "momentum": {"momentum": 0.9}, "nesterov": {"momentum": 0.9, "nesterov": True},
          "adam": {}}[name]
    opt = make_optimizer("adam" if name == "adam" else "sgd", params, learning_rate=0.01, **kw)
    opt.learning_rate = np.float64(0.02)  # a NumPy scalar would upcast float32 arrays (NEP 50)
    assert type(opt.learning_rate) is float
    for G in grads:
        opt.step(params, on(backend, G, "float32"))
    f32 = backend.dtype("float32")
    assert all(p.dtype == f32 for p in params)
    state = opt.state_dict()
    for key in ("velocities", "ms", "vs"):
        assert all(a.dtype == f32 for a in state.get(key, []))


def test_steps_are_in_place(backend):
    P0, grads = host_problem(6)
    for name, kw in (("sgd", {}), ("sgd", {"momentum": 0.5, "nesterov": True}), ("adam", {})):
        params = on(backend, P0, "float64")
        before = [p for p in params]
        opt = make_optimizer(name, params, learning_rate=0.1, **kw)
        opt.step(params, on(backend, grads[0], "float64"))
        assert all(p is q for p, q in zip(params, before))
        assert not np.array_equal(xpnet.to_numpy(params[0]), P0[0])  # and they did change


# --------------------------------------------------------------------------- state
@pytest.mark.parametrize("name,kw", [("sgd", {}), ("sgd", {"momentum": 0.9}),
                                     ("sgd", {"momentum": 0.9, "nesterov": True}),
                                     ("adam", {"beta_1": 0.8})],
                         ids=["sgd", "momentum", "nesterov", "adam"])
def test_state_round_trip_continues_bit_for_bit(backend, dtype, name, kw):
    """Save after 3 steps (arrays to NumPy, as in a file), load into a fresh optimizer on a
    copy of the parameters: the next 3 steps are identical to the uninterrupted run's."""
    P0, grads = host_problem(7, steps=6)
    params = on(backend, P0, dtype)
    opt = make_optimizer(name, params, learning_rate=0.03, **kw)
    for G in grads[:3]:
        opt.step(params, on(backend, G, dtype))
    opt.learning_rate = 0.017  # as a schedule would have
    state = opt.state_dict()
    saved = {k: [xpnet.to_numpy(a).copy() for a in v] if isinstance(v, list) else v
             for k, v in state.items()}
    resumed_params = on(backend, [xpnet.to_numpy(p) for p in params], dtype)
    resumed = make_optimizer(name, resumed_params, learning_rate=0.5)  # other settings
    resumed.load_state_dict(saved)
    assert resumed.learning_rate == 0.017 and resumed.learning_rate_init == 0.03
    for G in grads[3:]:
        opt.step(params, on(backend, G, dtype))
        resumed.step(resumed_params, on(backend, G, dtype))
    for a, e in zip(resumed_params, params):
        assert_close(a, e, rtol=0.0)
    s1, s2 = opt.state_dict(), resumed.state_dict()
    assert {k: v for k, v in s1.items() if not isinstance(v, list)} == \
        {k: v for k, v in s2.items() if not isinstance(v, list)}
    for key in ("velocities", "ms", "vs"):
        for a, e in zip(s2.get(key, []), s1.get(key, [])):
            assert_close(a, e, rtol=0.0)
    # The loaded state did not alias the caller's NumPy arrays.
    for key in ("velocities", "ms", "vs"):
        for a, e in zip(saved.get(key, []), state.get(key, [])):
            np.testing.assert_array_equal(a, xpnet.to_numpy(e))


def test_state_dict_is_a_snapshot():
    params = [np.zeros((2, 2))]
    opt = Adam(params)
    state = opt.state_dict()
    opt.step(params, [np.ones((2, 2))])
    assert state["t"] == 0
    np.testing.assert_array_equal(state["ms"][0], 0.0)


def test_bad_state_is_refused_and_changes_nothing():
    params = [np.zeros((2, 2)), np.zeros((2, 1))]
    opt = Adam(params, learning_rate=0.01)
    opt.step(params, [np.ones((2, 2)), np.ones((2, 1))])
    good = opt.state_dict()
    bad_cases = [
        ({**good, "name": "sgd"}, "not a 'adam' optimizer state"),
        ({**good, "ms": good["ms"][:1]}, "must list 2 arrays"),
        ({**good, "vs": [np.zeros((2, 2)), np.zeros((1, 2))]}, r"vs\[1\] has shape \(1, 2\)"),
        ({**good, "t": -1}, "step count"),
        ({**good, "learning_rate": 0.0}, "learning_rate must be in"),
        ({**good, "ms": [np.zeros((2, 2), dtype=np.int64), np.zeros((2, 1))]}, "expected floats"),
    ]
    for state, msg in bad_cases:
        with pytest.raises((ValueError, TypeError), match=msg):
            opt.load_state_dict(state)
        after = opt.state_dict()
        assert after["t"] == 1 and after["learning_rate"] == 0.01
        np.testing.assert_array_equal(after["ms"][0], good["ms"][0])


# --------------------------------------------------------------------------- bad input
def test_make_optimizer_names():
    params = [np.zeros(3)]
    assert isinstance(make_optimizer("sgd", params, learning_rate=0.1), SGD)
    assert isinstance(make_optimizer("Adam", params), Adam)
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'; expected one of sgd, adam"):
        make_optimizer("lbfgs", params)


@pytest.mark.parametrize("kw,msg", [
    ({"learning_rate": 0.0}, "learning_rate must be in"),
    ({"learning_rate": -1.0}, "learning_rate must be in"),
    ({"learning_rate": float("nan")}, "learning_rate must be in"),
    ({"learning_rate": "0.1"}, "learning_rate must be a real number"),
    ({"learning_rate": 0.1, "momentum": 1.5}, "momentum must be in"),
])
def test_bad_sgd_settings(kw, msg):
    with pytest.raises((ValueError, TypeError), match=msg):
        SGD([np.zeros(3)], **kw)


@pytest.mark.parametrize("kw,msg", [({"beta_1": 1.0}, "beta_1"), ({"beta_2": -0.1}, "beta_2"),
                                    ({"epsilon": 0.0}, "epsilon")])
def test_bad_adam_settings(kw, msg):
    with pytest.raises(ValueError, match=msg):
        Adam([np.zeros(3)], **kw)


def test_bad_params_and_grads():
    with pytest.raises(ValueError, match="at least one parameter"):
        SGD([], learning_rate=0.1)
    with pytest.raises(TypeError, match="floating-point"):
        SGD([np.zeros(3, dtype=np.int64)], learning_rate=0.1)
    params = [np.zeros(3), np.zeros(2)]
    opt = Adam(params)
    with pytest.raises(ValueError, match="built for 2 parameter arrays; got 2 params and 1 grads"):
        opt.step(params, [np.ones(3)])
    assert opt.t == 0  # a failed step changes nothing
    with pytest.raises(ValueError, match="learning_rate must be in"):
        opt.learning_rate = -0.1
    assert opt.learning_rate == 0.001


# --------------------------------------------------------------------------- schedules
def sklearn_epochs(losses, optimizer, *, tol, n_iter_no_change, n_samples):
    """scikit-learn's _fit_stochastic epoch-end logic rebuilt line by line (without early
    stopping) around one of its optimizers: the learning rate after each epoch, and the epoch
    at which it stops (or None)."""
    best_loss, count, t_, lrs = np.inf, 0, 0, []
    for epoch, loss in enumerate(losses, start=1):
        t_ += n_samples
        # _update_no_improvement_count
        if loss > best_loss - tol:
            count += 1
        else:
            count = 0
        if loss < best_loss:
            best_loss = loss
        optimizer.iteration_ends(t_)
        if count > n_iter_no_change:
            if optimizer.trigger_stopping("msg", False):
                lrs.append(optimizer.learning_rate)
                return lrs, epoch
            count = 0
        lrs.append(optimizer.learning_rate)
    return lrs, None


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedules_match_sklearn_semantics(name):
    so = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    # losses that improve, then stall (within tol), then improve a little, then stall again
    losses = [1.0, 0.8, 0.7, 0.69995, 0.6999, 0.6998, 0.6997, 0.6, 0.59999, 0.59998, 0.59997,
              0.59996, 0.59995, 0.59994, 0.59993, 0.59992, 0.59991, 0.5999, 0.59989, 0.59988]
    params = [np.zeros(3)]
    ours = SGD(params, learning_rate=0.1, momentum=0.9, nesterov=True)
    schedule = LearningRateSchedule(name, power_t=0.25, tol=1e-3, n_iter_no_change=2)
    ref = so.SGDOptimizer(params, learning_rate_init=0.1, lr_schedule=name, momentum=0.9,
                          nesterov=True, power_t=0.25)
    want_lrs, want_stop = sklearn_epochs(losses, ref, tol=1e-3, n_iter_no_change=2, n_samples=50)
    got_lrs, got_stop = [], None
    for epoch, loss in enumerate(losses, start=1):
        end = schedule.epoch_ends(ours, samples_seen=50 * epoch, loss=loss)
        got_lrs.append(ours.learning_rate)
        if end.stop:
            got_stop = epoch
            break
    assert got_stop == want_stop
    assert got_lrs == want_lrs  # exactly the same floats
    if name == "invscaling":  # lr = lr_init / (t + 1) ** power_t, t = samples seen
        assert got_lrs[:3] == [0.1 / 51 ** 0.25, 0.1 / 101 ** 0.25, 0.1 / 151 ** 0.25]
    if name == "adaptive":  # the loss stalls at epochs 4, 5, 6 (count 3 > 2): lr /= 5 after 6
        assert got_lrs[:6] == [0.1] * 5 + [0.02]
        assert got_stop is None
    else:
        assert got_stop == 6


def test_adaptive_stops_when_lr_too_small():
    """Every epoch stalls; n_iter_no_change = 1: lr /= 5 every second epoch until lr <= 1e-6,
    then the next trigger stops: 0.1 / 5^k <= 1e-6 first at k = 8 (0.1 / 390625 = 2.56e-7)."""
    opt = SGD([np.zeros(1)], learning_rate=0.1)
    schedule = LearningRateSchedule("adaptive", tol=0.5, n_iter_no_change=1)
    epochs = 0
    while True:
        epochs += 1
        end = schedule.epoch_ends(opt, samples_seen=epochs, loss=1.0)
        if end.stop:
            break
    assert end.message == ("Training loss did not improve more than tol=0.500000 for 1 "
                           "consecutive epochs. Learning rate too small. Stopping.")
    assert opt.learning_rate == 0.1 / 5 / 5 / 5 / 5 / 5 / 5 / 5 / 5
    # epoch 1 sets best_loss (count 0); then a trigger every 2 epochs: 8 divisions + 1 stop
    assert epochs == 1 + 2 * 9


def test_schedules_leave_adam_alone():
    opt = Adam([np.zeros(1)], learning_rate=0.01)
    for name in SCHEDULES:
        schedule = LearningRateSchedule(name, n_iter_no_change=1)
        ends = [schedule.epoch_ends(opt, samples_seen=10 * e, loss=1.0) for e in (1, 2, 3)]
        assert opt.learning_rate == 0.01  # scikit-learn: the schedule is for solver="sgd"
        assert [e.stop for e in ends] == [False, False, True]  # count 2 > 1 at epoch 3: stop


def test_early_stopping_bookkeeping():
    schedule = LearningRateSchedule("constant", tol=0.01, n_iter_no_change=2, early_stopping=True)
    opt = SGD([np.zeros(1)], learning_rate=0.1)
    scores = [0.5, 0.7, 0.705, 0.71, 0.70, 0.9]
    ends = [schedule.epoch_ends(opt, samples_seen=e, val_score=s)
            for e, s in enumerate(scores[:5], start=1)]
    # improved = a new best score (keep the weights); count grows while score < best + tol
    assert [e.improved for e in ends] == [True, True, True, True, False]
    assert schedule.no_improvement_count == 3 and ends[-1].stop
    assert ends[-1].message.startswith("Validation score did not improve more than tol=0.010000")
    assert schedule.best_validation_score == 0.71
    with pytest.raises(ValueError, match="pass val_score"):
        schedule.epoch_ends(opt, samples_seen=6, loss=0.1)


def test_schedule_replays_sklearn_mlp_run():
    """scikit-learn's own MLPRegressor: fed its loss curve, the schedule stops at the same
    epoch with the same final learning rate."""
    nn = pytest.importorskip("sklearn.neural_network")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(60)
    for name in ("adaptive", "invscaling"):
        est = nn.MLPRegressor(hidden_layer_sizes=(5,), solver="sgd", learning_rate=name,
                              learning_rate_init=0.01, power_t=0.3, n_iter_no_change=2, tol=0.05,
                              max_iter=60, batch_size=20, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning if it runs to max_iter
            est.fit(X, y)
        opt = SGD([np.zeros(1)], learning_rate=0.01, momentum=0.9, nesterov=True)
        schedule = LearningRateSchedule(name, power_t=0.3, tol=0.05, n_iter_no_change=2)
        for epoch, loss in enumerate(est.loss_curve_, start=1):
            end = schedule.epoch_ends(opt, samples_seen=60 * epoch, loss=loss)
            if end.stop:
                break
        assert epoch == est.n_iter_
        assert end.stop == (est.n_iter_ < 60)
        assert opt.learning_rate == est._optimizer.learning_rate
        assert schedule.best_loss == est.best_loss_


def test_schedule_state_round_trip_and_errors():
    schedule = LearningRateSchedule("adaptive", tol=0.1, n_iter_no_change=3)
    opt = SGD([np.zeros(1)], learning_rate=0.1)
    for e, loss in enumerate([1.0, 0.95, 0.93], start=1):
        schedule.epoch_ends(opt, samples_seen=e, loss=loss)
    copy = LearningRateSchedule()
    copy.load_state_dict(schedule.state_dict())
    assert copy.state_dict() == schedule.state_dict()
    assert copy.no_improvement_count == 2 and copy.best_loss == 0.93
    with pytest.raises(ValueError, match="lacks 'tol'"):
        copy.load_state_dict({k: v for k, v in schedule.state_dict().items() if k != "tol"})
    assert copy.state_dict() == schedule.state_dict()
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'cosine'; expected one "
                                         "of constant, invscaling, adaptive"):
        LearningRateSchedule("cosine")
    with pytest.raises(ValueError, match="n_iter_no_change"):
        LearningRateSchedule("constant", n_iter_no_change=0)
