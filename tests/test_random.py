"""Counter-based dropout RNG (xpnet.core.random): exact hash, cross-backend bit identity,
statistical quality, host-free placement; and the NumPy-native fast path."""

from __future__ import annotations

import importlib
import math
import random

import numpy as np
import pytest

from xpnet.backends.numpy_random import numpy_dropout_mask as fast_dropout_mask
from xpnet.backends.numpy_random import numpy_uniform_bits as fast_uniform_bits
from xpnet.core.random import (dropout_keys, dropout_mask, dropout_threshold, mix32,
                               uniform_bits)

M32 = 0xFFFFFFFF
BACKENDS = ("numpy", "array_api_strict", "torch")
CHI2_255_P1E4 = 347.654  # scipy.stats.chi2.isf(1e-4, 255)


# --------------------------------------------------------------------------- backends
def namespace(name: str):
    """(xp, device) of a backend; skips when it is not installed."""
    if name == "numpy":
        compat = pytest.importorskip("array_api_compat")
        return compat.array_namespace(np.empty(0)), "cpu"
    if name == "array_api_strict":
        aas = pytest.importorskip("array_api_strict")
        aas.set_array_api_strict_flags(api_version="2024.12")
        return aas, aas.Device("CPU_DEVICE")
    if name == "torch":
        pytest.importorskip("torch")
        pytest.importorskip("array_api_compat")
        return importlib.import_module("array_api_compat.torch"), "cpu"
    raise AssertionError(name)


def host(x) -> np.ndarray:
    """A NumPy copy of any backend's (CPU) array."""
    if isinstance(x, np.ndarray):
        return x
    if type(x).__module__.startswith("torch"):
        return x.numpy()
    return np.from_dlpack(x)


@pytest.fixture(params=BACKENDS)
def ns(request):
    return namespace(request.param)


# --------------------------------------------------------------------------- references
def ref_mix32(x: int) -> int:
    """Plain-Python lowbias32 on ints mod 2^32."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    return x ^ (x >> 16)


def numpy_uniform_bits(k1: int, k2: int, shape) -> np.ndarray:
    """Independent native-uint32 NumPy version (no chunking), as int64."""
    x = np.arange(math.prod(shape), dtype=np.uint32)
    for k in (k1, k2):
        x ^= np.uint32(k)
        x ^= x >> 16
        x *= np.uint32(0x7FEB352D)
        x ^= x >> 15
        x *= np.uint32(0x846CA68B)
        x ^= x >> 16
    return (x >> 8).astype(np.int64).reshape(shape)


def kept(keep, seed, step, layer, shape=(512, 256)) -> np.ndarray:
    """Boolean keep pattern of a mask, from the NumPy backend."""
    xp, dev = namespace("numpy")
    return host(dropout_mask(keep, *dropout_keys(seed, step, layer), shape, xp.float64,
                             xp=xp, device=dev)) != 0


def assert_within(observed: float, expected: float, se: float, what: str) -> None:
    assert abs(observed - expected) <= 4 * se, (
        f"{what}: {observed:.6f} vs {expected:.6f} (|z| = {abs(observed - expected) / se:.2f})")


def assert_pairs_uncorrelated(a: np.ndarray, b: np.ndarray, p: float, what: str) -> None:
    """Fraction of positions with a & b within 4 s.e. of p^2 (a, b independent Bernoulli(p))."""
    both = np.mean(a & b)
    p2 = p * p
    assert_within(both, p2, math.sqrt(p2 * (1 - p2) / a.size), what)


# --------------------------------------------------------------------------- exactness
def test_mix32_matches_python_reference(ns):
    xp, dev = ns
    rng = random.Random(1234)
    values = [0, 1, 2, 0x7FFFFFFF, 0x80000000, M32 - 1, M32] + [rng.getrandbits(32)
                                                                 for _ in range(300)]
    x = xp.asarray(values, dtype=xp.int64, device=dev)
    got = host(mix32(x, xp=xp))
    assert got.dtype == np.int64
    assert got.tolist() == [ref_mix32(v) for v in values]


def test_uniform_bits_matches_python_reference(ns):
    xp, dev = ns
    k1, k2 = dropout_keys(7, 3, 1)
    u = uniform_bits(k1, k2, (5, 7), xp=xp, device=dev)
    assert u.dtype == xp.int64 and tuple(u.shape) == (5, 7)
    expected = [ref_mix32(ref_mix32(i ^ k1) ^ k2) >> 8 for i in range(35)]
    assert host(u).ravel().tolist() == expected  # row-major counter


@pytest.mark.parametrize("shape", [(64, 48), (3, 5, 2), (1, 1), (0, 4)])
def test_bit_identical_across_backends(shape):
    k1, k2 = dropout_keys(2**63 + 12345, 17, 2)
    u, masks = {}, {}
    for name in BACKENDS:
        try:
            xp, dev = namespace(name)
        except pytest.skip.Exception:
            continue
        u[name] = host(uniform_bits(k1, k2, shape, xp=xp, device=dev))
        for dt in ("float32", "float64"):
            masks[name, dt] = host(dropout_mask(0.7, k1, k2, shape, getattr(xp, dt),
                                                xp=xp, device=dev))
    assert "numpy" in u
    for name in u:
        assert u[name].dtype == np.int64 and u[name].shape == shape
        np.testing.assert_array_equal(u[name], u["numpy"], err_msg=name)
        for dt in ("float32", "float64"):
            m, ref = masks[name, dt], masks["numpy", dt]
            assert m.dtype == np.dtype(dt) and m.shape == shape
            assert m.tobytes() == ref.tobytes(), (name, dt)
        assert np.array_equal(masks[name, "float32"] == 0, masks[name, "float64"] == 0)
    if u["numpy"].size:
        assert set(np.unique(masks["numpy", "float64"])) <= {0.0, 1 / 0.7}


def test_keep_one_keeps_everything(ns):
    xp, dev = ns
    d = host(dropout_mask(1.0, *dropout_keys(1, 2, 3), (9, 11), xp.float32, xp=xp, device=dev))
    assert np.all(d == 1.0)


def test_argument_checks():
    xp, dev = namespace("numpy")
    for bad in (0.0, -0.1, 1.5, 2.0**-26):
        with pytest.raises(ValueError):
            dropout_threshold(bad)
    with pytest.raises(ValueError):
        uniform_bits(2**32, 0, (2, 2), xp=xp, device=dev)
    with pytest.raises(ValueError):
        dropout_keys(0, -1, 0)
    with pytest.raises(TypeError):
        dropout_keys(0, 1.0, 0)


def test_strict_fake_device_stays_on_device():
    aas = pytest.importorskip("array_api_strict")
    aas.set_array_api_strict_flags(api_version="2024.12")
    dev = aas.Device("device1")
    k1, k2 = dropout_keys(99, 4, 0)
    u = uniform_bits(k1, k2, (16, 8), xp=aas, device=dev)
    d = dropout_mask(0.6, k1, k2, (16, 8), aas.float32, xp=aas, device=dev)
    assert u.device == dev and d.device == dev
    cpu = aas.Device("CPU_DEVICE")
    ref = dropout_mask(0.6, k1, k2, (16, 8), aas.float32, xp=aas, device=cpu)
    assert host(d.to_device(cpu)).tobytes() == host(ref).tobytes()


# --------------------------------------------------------------------------- NumPy fast path
@pytest.mark.parametrize("shape", [(256, 128), (130, 257), (3, 5), (1,), (0, 3)])
def test_numpy_fast_path_bit_identical(shape):
    xp, dev = namespace("numpy")
    for seed, step, layer in [(0, 0, 0), (2**64 - 1, 5, 3), (31337, 100, 1)]:
        k1, k2 = dropout_keys(seed, step, layer)
        portable = uniform_bits(k1, k2, shape, xp=xp, device=dev)
        fast = fast_uniform_bits(k1, k2, shape)
        assert fast.dtype == portable.dtype == np.int64 and fast.shape == shape
        np.testing.assert_array_equal(fast, portable)
        np.testing.assert_array_equal(numpy_uniform_bits(k1, k2, shape), portable)
        for dt in (np.float32, np.float64):
            ref = dropout_mask(0.8, k1, k2, shape, dt, xp=xp, device=dev)
            got = fast_dropout_mask(0.8, k1, k2, shape, dt)
            assert got.dtype == ref.dtype and got.tobytes() == ref.tobytes()


# --------------------------------------------------------------------------- statistics
@pytest.mark.parametrize("keep", [0.5, 0.8])
def test_kept_fraction_and_mean(keep):
    xp, dev = namespace("numpy")
    p = dropout_threshold(keep) / 2**24
    assert abs(p - keep) <= 2**-25
    for seed, step, layer in [(0, 0, 0), (123456789, 41, 2)]:
        d = host(dropout_mask(keep, *dropout_keys(seed, step, layer), (512, 256), xp.float64,
                              xp=xp, device=dev))
        n = d.size
        assert_within(np.mean(d != 0), p, math.sqrt(p * (1 - p) / n), "kept fraction")
        assert_within(np.mean(d), 1.0, math.sqrt(p * (1 - p) / n) / keep, "mean of D")


@pytest.mark.parametrize("keep", [0.5, 0.8])
def test_masks_of_other_steps_layers_seeds_uncorrelated(keep):
    p = dropout_threshold(keep) / 2**24
    base = kept(keep, 2024, 10, 1)
    for other in [(2024, 11, 1), (2024, 10, 2), (2025, 10, 1), (2024, 0, 0), (0, 10, 1)]:
        assert_pairs_uncorrelated(base, kept(keep, *other), p, f"vs {other}")


@pytest.mark.parametrize("keep", [0.5, 0.8])
def test_neighbours_within_a_mask_uncorrelated(keep):
    """Adjacent columns and rows, as disjoint pairs (2j, 2j+1) and (2j+1, 2j+2) so that the
    pairs are independent under the null and the binomial standard error is exact."""
    p = dropout_threshold(keep) / 2**24
    k = kept(keep, 77, 3, 0)
    for off in (0, 1):
        cols = k[:, off:]
        cols = cols[:, :cols.shape[1] // 2 * 2]
        assert_pairs_uncorrelated(cols[:, 0::2], cols[:, 1::2], p, f"columns, offset {off}")
        rows = k[off:, :]
        rows = rows[:rows.shape[0] // 2 * 2, :]
        assert_pairs_uncorrelated(rows[0::2, :], rows[1::2, :], p, f"rows, offset {off}")


def test_uniform_bits_chi_square():
    xp, dev = namespace("numpy")
    for seed, step, layer in [(0, 0, 0), (987654321, 12, 3)]:
        u = host(uniform_bits(*dropout_keys(seed, step, layer), (512, 256), xp=xp, device=dev))
        assert u.min() >= 0 and u.max() < 2**24
        for what, buckets in [("high byte", u >> 16), ("middle byte", (u >> 8) & 255),
                              ("low byte", u & 255)]:
            counts = np.bincount(buckets.ravel(), minlength=256)
            expected = u.size / 256
            chi2 = float(np.sum((counts - expected) ** 2) / expected)
            assert chi2 < CHI2_255_P1E4, f"{what}: chi2 = {chi2:.1f}"


# --------------------------------------------------------------------------- keys
def test_dropout_keys_distinct_and_avalanche():
    triples = [(seed, step, layer) for seed in (0, 1, 2, 2**63, 2**64 - 1)
               for step in range(400) for layer in range(5)]  # 10,000
    keys = [dropout_keys(*t) for t in triples]
    assert all(0 <= k1 <= M32 and 0 <= k2 <= M32 for k1, k2 in keys)
    assert len(set(keys)) == len(triples)
    assert dropout_keys(5, 6, 7) == dropout_keys(5, 6, 7)
    # one step / layer / seed apart: about half of the 64 key bits flip
    flips = []
    for seed, step, layer in triples[:1000]:
        a = dropout_keys(seed, step, layer)
        for b in (dropout_keys(seed, step + 1, layer), dropout_keys(seed, step, layer + 1),
                  dropout_keys(seed + 1, step, layer)):
            flips.append(bin((a[0] ^ b[0]) | ((a[1] ^ b[1]) << 32)).count("1"))
    assert_within(float(np.mean(flips)), 32.0, math.sqrt(16 / len(flips)), "bits flipped")
