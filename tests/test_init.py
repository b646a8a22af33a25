"""Initial parameters: host-seeded He / Xavier draws, bit-identical on every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import BACKEND_NAMES, usable

import xpnet
from xpnet import draw_parameters, initialize_parameters, to_numpy
from xpnet.core.initializers import default_init


def test_shapes_and_zero_biases():
    W, b = draw_parameters([5, 4, 3, 2], rng=0)
    assert sorted(W) == sorted(b) == [1, 2, 3]
    for l, (n, n_prev) in enumerate([(4, 5), (3, 4), (2, 3)], start=1):
        assert W[l].shape == (n, n_prev) and W[l].dtype == np.float64
        assert b[l].shape == (n, 1)
        assert not b[l].any()


def test_he_is_normal_with_variance_2_over_fan_in():
    """W ~ N(0, 2 / n[l-1]): the same draws as the Generator's standard normal, scaled."""
    W, _ = draw_parameters([50, 40], init="he", rng=7)
    ref = np.random.default_rng(7).standard_normal((40, 50)) * math.sqrt(2.0 / 50)
    np.testing.assert_array_equal(W[1], ref)
    big, _ = draw_parameters([400, 500], init="he", rng=1)
    assert abs(big[1].std() - math.sqrt(2.0 / 400)) < 0.01 * math.sqrt(2.0 / 400)
    assert abs(big[1].mean()) < 0.01 * math.sqrt(2.0 / 400)


def test_xavier_is_uniform_in_plus_minus_sqrt_6_over_fan_in_plus_fan_out():
    W, _ = draw_parameters([300, 200], init="xavier", rng=2)
    r = math.sqrt(6.0 / 500)
    assert W[1].min() >= -r and W[1].max() < r
    assert W[1].min() < -0.99 * r and W[1].max() > 0.99 * r
    assert abs(W[1].std() - r / math.sqrt(3)) < 0.01 * r


def test_per_layer_schemes():
    W, _ = draw_parameters([20, 30, 10], init=["xavier", "he"], rng=0)
    r = math.sqrt(6.0 / 50)
    assert np.abs(W[1]).max() < r
    gen = np.random.default_rng(0)
    gen.uniform(-r, r, size=(30, 20))
    np.testing.assert_array_equal(W[2], gen.standard_normal((10, 30)) * math.sqrt(2.0 / 30))


def test_default_init():
    assert default_init("relu") == default_init("leaky_relu") == "he"
    assert default_init("tanh") == default_init("sigmoid") == default_init("identity") == "xavier"


def test_seed_and_generator_are_reproducible():
    a, _ = draw_parameters([3, 4, 2], rng=11)
    b, _ = draw_parameters([3, 4, 2], rng=np.random.default_rng(11))
    c, _ = draw_parameters([3, 4, 2], rng=12)
    for l in a:
        np.testing.assert_array_equal(a[l], b[l])
    assert not np.array_equal(a[1], c[1])


@pytest.mark.parametrize("init", ["he", "xavier"])
def test_every_backend_starts_from_bit_identical_parameters(backend, dtype, init):
    dims = [6, 5, 3]
    W, b = initialize_parameters(dims, init=init, rng=3, dtype=dtype, backend=backend)
    W64, b64 = draw_parameters(dims, init, 3)
    for l in (1, 2):
        assert xpnet.backend_of(W[l]) == backend and xpnet.backend_of(b[l]) == backend
        assert W[l].dtype == backend.dtype(dtype) and b[l].dtype == backend.dtype(dtype)
        # float32: the float64 draw rounded once, the same bits on every backend
        np.testing.assert_array_equal(to_numpy(W[l]), W64[l].astype(dtype))
        np.testing.assert_array_equal(to_numpy(b[l]), b64[l].astype(dtype))


def test_backends_agree_bitwise_with_each_other():
    seen = {}
    for name in BACKEND_NAMES:
        if usable(name)[0]:
            W, _ = initialize_parameters([4, 3, 2], rng=5, backend=name)
            seen[name] = to_numpy(W[2]).tobytes()
    assert len(set(seen.values())) == 1, seen.keys()


def test_parameters_are_fresh_arrays(backend):
    """Two calls never share memory (updates happen in place)."""
    W1, _ = initialize_parameters([3, 2], rng=0, backend=backend, dtype="float64")
    W2, _ = initialize_parameters([3, 2], rng=0, backend=backend, dtype="float64")
    W1[1] -= 1.0
    np.testing.assert_array_equal(to_numpy(W2[1]) - 1.0, to_numpy(W1[1]))


def test_strict_fake_device():
    if not usable("array_api_strict")[0]:
        pytest.skip("array_api_strict not installed")
    import array_api_strict

    W, b = initialize_parameters([3, 4, 2], backend="array_api_strict", device="device1")
    for l in (1, 2):
        assert W[l].device == array_api_strict.Device("device1")
        assert b[l].device == array_api_strict.Device("device1")


@pytest.mark.parametrize("dims, match", [
    ([3], r"layer_dims needs at least n\[0\] and n\[L\]; got \[3\]"),
    ([3, 0, 2], r"layer size n\[1\] must be a positive integer; got 0 in \[3, 0, 2\]"),
    ([3, 2.5], r"layer size n\[1\] must be a positive integer; got 2.5"),
    ([True, 2], r"layer size n\[0\] must be a positive integer; got True"),
])
def test_bad_layer_dims(dims, match):
    with pytest.raises(ValueError, match=match):
        draw_parameters(dims)


def test_bad_init_scheme():
    with pytest.raises(ValueError, match=r"unknown init 'lecun' for layer 1; expected one of "
                                         r"he, xavier, glorot, glorot_logistic"):
        draw_parameters([3, 2], init="lecun")
    with pytest.raises(ValueError, match=r"init lists 1 schemes for 2 layers"):
        draw_parameters([3, 2, 2], init=["he"])


@pytest.mark.parametrize("dtype", ["float16", "int32"])
def test_bad_dtype(dtype):
    with pytest.raises(ValueError, match=rf"dtype must be float32 or float64; got '{dtype}'"):
        initialize_parameters([3, 2], dtype=dtype)
