"""Counter-based random bits and inverted-dropout masks, written once in array-API integers.

Element ``i`` (row-major over the logical shape ``(n[l], m)``) of step ``t``'s mask for layer
``l`` is a pure function of ``(k1, k2, i)``: ``h = mix32(mix32(i ^ k1) ^ k2)``, with the keys
``(k1, k2) = dropout_keys(seed, t, l)`` computed on the host in plain Python ints (the
training loop computes an epoch's keys at once and uploads them with its step table). The array
work is ``arange`` plus integer ``^ & >> << * +`` on int64, so NumPy, CuPy, PyTorch and
array-api-strict draw bit-identical masks from the same seed, on the array's own device, with
no host draw or upload per step.

int64 rather than uint32: PyTorch's uint32 support is too limited. Values stay in [0, 2^32)
and every product stays below 2^49 (see :func:`mix32`), so nothing overflows a signed int64.

This module imports nothing but the standard library; the namespace ``xp`` is passed in.
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any

__all__ = ["dropout_keys", "dropout_mask", "dropout_threshold", "mix32", "uniform_bits"]

_M16 = 0xFFFF
_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF
_GAMMA = 0x9E3779B97F4A7C15  # splitmix64 increment, 2^64 / golden ratio (odd)
_C1 = 0x7FEB352D  # lowbias32 multipliers (C. Wellons, hash-prospector)
_C2 = 0x846CA68B
BITS = 24  # uniform_bits returns BITS-bit integers
_ONE = 1 << BITS


# --------------------------------------------------------------------------- host side
def _splitmix64(z: int) -> int:
    """z -> fmix64(z + gamma) mod 2^64: splitmix64 (Steele, Lea & Flood 2014), a bijection."""
    z = (z + _GAMMA) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _uint(value: Any, bits: int, name: str) -> int:
    v = operator.index(value)  # rejects floats (and NumPy floats); accepts NumPy ints
    if not 0 <= v < (1 << bits):
        raise ValueError(f"{name} must be an integer in [0, 2^{bits}), got {v}")
    return int(v)


def dropout_keys(seed: int, step: int, layer: int) -> tuple[int, int]:
    """(k1, k2) = (h mod 2^32, h >> 32), h = sm64(sm64(sm64(seed) ^ step) ^ layer).

    ``sm64`` is the splitmix64 output function (a bijection of 64-bit ints with full
    avalanche), so for a fixed seed distinct (step, layer) pairs never share a step's inner
    state and the keys of nearby triples are unrelated. ``seed`` is taken mod 2^64 (draw it
    once per epoch); ``step`` and ``layer`` must be in [0, 2^64). Pure Python ints.
    """
    h = _splitmix64(operator.index(seed) & _M64)
    h = _splitmix64(h ^ _uint(step, 64, "step"))
    h = _splitmix64(h ^ _uint(layer, 64, "layer"))
    return h & _M32, h >> 32


def dropout_threshold(keep: float) -> int:
    """T = round(keep * 2^24): integer keep-threshold for 24-bit uniforms, P(U < T) = T / 2^24."""
    keep = float(keep)
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    threshold = round(keep * _ONE)  # keep * 2^24 is exact in float64; |T/2^24 - keep| <= 2^-25
    if threshold == 0:
        raise ValueError(f"keep={keep} rounds to a zero keep-threshold (keep < 2^-25)")
    return threshold


# --------------------------------------------------------------------------- device side
def _mul32(x: Any, c: int) -> Any:
    """(x c) mod 2^32 = (x c_lo + (((x c_hi) & 0xFFFF) << 16)) & 0xFFFFFFFF, c = c_hi 2^16 + c_lo.
    """
    # x < 2^32 and c_lo, c_hi < 2^16: x*c_lo < 2^48, the shifted term < 2^32, the sum < 2^49.
    return (x * (c & _M16) + (((x * (c >> 16)) & _M16) << 16)) & _M32


def mix32(x: Any, *, xp: Any) -> Any:
    """x ^= x>>16; x *= 0x7feb352d; x ^= x>>15; x *= 0x846ca68b; x ^= x>>16 (all mod 2^32).

    C. Wellons' "lowbias32" integer hash, a bijection of [0, 2^32). ``x``: an int64 array of
    namespace ``xp`` with values in [0, 2^32) (not checked: that would sync with the device);
    the result is int64 in [0, 2^32), same shape and device. Only array operators are used;
    ``xp`` keeps this module's calling convention uniform.
    """
    x = x ^ (x >> 16)
    x = _mul32(x, _C1)
    x = x ^ (x >> 15)
    x = _mul32(x, _C2)
    return x ^ (x >> 16)


def uniform_bits(k1: int, k2: int, shape: tuple[int, ...], *, xp: Any, device: Any) -> Any:
    """U = mix32(mix32(i ^ k1) ^ k2) >> 8, i = 0..prod(shape)-1 row-major: 24-bit int64s.

    Uniform on [0, 2^24), keyed by the 32-bit ``k1``, ``k2`` (see :func:`dropout_keys`): Python
    ints, or 0-d int64 arrays on ``device`` holding them (no host read).
    Element ``[r, c]`` of a logical ``(n[l], m)`` shape uses counter ``r * m + c``, so the
    values do not depend on the backend or on how the caller later lays the array out.
    Made on ``device`` with ``xp.arange(..., dtype=xp.int64)`` and ``xp.reshape``.
    """
    if isinstance(k1, numbers.Integral):  # Python or NumPy ints: checked
        k1, k2 = _uint(k1, 32, "k1"), _uint(k2, 32, "k2")
    # else 0-d int64 arrays on the device (a step table's): used as they are, never read
    shape = tuple(operator.index(s) for s in shape)
    size = math.prod(shape)
    if size > (1 << 32):
        raise ValueError(f"shape {shape} has {size} elements; the 32-bit counter allows 2^32")
    i = xp.arange(size, dtype=xp.int64, device=device)
    h = mix32(mix32(i ^ k1, xp=xp) ^ k2, xp=xp)
    return xp.reshape(h >> (32 - BITS), shape)


def dropout_mask(keep: float, k1: int, k2: int, shape: tuple[int, ...], dtype: Any, *,
                 xp: Any, device: Any) -> Any:
    """D = [U < T] / keep, T = round(keep * 2^24), U = uniform_bits(k1, k2, shape).

    The keep test is an exact integer comparison (identical on every backend); the values
    0 and 1/keep are cast to ``dtype`` (the namespace's float32 / float64). E[D] = (T / 2^24)
    / keep, which is 1 to within 2^-25 / keep (T rounds keep * 2^24). keep = 1 gives all ones.
    """
    threshold = dropout_threshold(keep)
    u = uniform_bits(k1, k2, shape, xp=xp, device=device)
    return xp.astype(u < threshold, dtype) * (1.0 / keep)
