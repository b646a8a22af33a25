"""NumPy-native fast path of :mod:`xpnet.core.random` (temporary home: NumPy backend kernels).

Native uint32 arithmetic (multiplication wraps mod 2^32, so no 16-bit split and no int64
temporaries), in-place ufuncs with ``out=``, and the counter processed in cache-sized chunks
with two reused buffers. Bit-identical to the portable :func:`xpnet.core.random.uniform_bits`
and :func:`xpnet.core.random.dropout_mask` on NumPy (same values and dtypes).
"""

from __future__ import annotations

import math

import numpy as np

from xpnet.core.random import BITS, dropout_threshold

__all__ = ["numpy_dropout_mask", "numpy_uniform_bits"]

_C1 = np.uint32(0x7FEB352D)
_C2 = np.uint32(0x846CA68B)
_CHUNK = 1 << 14  # 64 KiB of uint32 per buffer: both buffers stay in L2


def _mix32_(x: np.ndarray, t: np.ndarray) -> None:
    """x <- lowbias32(x) in place (uint32, wraparound multiply); t: scratch of x's shape."""
    np.right_shift(x, 16, out=t)
    np.bitwise_xor(x, t, out=x)
    np.multiply(x, _C1, out=x)
    np.right_shift(x, 15, out=t)
    np.bitwise_xor(x, t, out=x)
    np.multiply(x, _C2, out=x)
    np.right_shift(x, 16, out=t)
    np.bitwise_xor(x, t, out=x)


def _chunks(k1: int, k2: int, size: int):
    """Yield (start, stop, U[start:stop] as a uint32 scratch view) over the counter 0..size-1."""
    if size > (1 << 32):
        raise ValueError(f"{size} elements; the 32-bit counter allows 2^32")
    k1u, k2u = np.uint32(int(k1)), np.uint32(int(k2))  # OverflowError outside [0, 2^32)
    base = np.arange(min(size, _CHUNK), dtype=np.uint32)
    x, t = np.empty_like(base), np.empty_like(base)
    for start in range(0, size, _CHUNK):
        stop = min(start + _CHUNK, size)
        xv, tv = x[:stop - start], t[:stop - start]
        np.add(base[:stop - start], np.uint32(start), out=xv)  # counter i (< 2^32: no wrap)
        np.bitwise_xor(xv, k1u, out=xv)
        _mix32_(xv, tv)
        np.bitwise_xor(xv, k2u, out=xv)
        _mix32_(xv, tv)
        np.right_shift(xv, 32 - BITS, out=xv)
        yield start, stop, xv


def numpy_uniform_bits(k1: int, k2: int, shape: tuple[int, ...]) -> np.ndarray:
    """U = mix32(mix32(i ^ k1) ^ k2) >> 8 in native uint32, as int64: == uniform_bits."""
    shape = tuple(int(s) for s in shape)
    out = np.empty(math.prod(shape), dtype=np.int64)
    for start, stop, u in _chunks(k1, k2, out.size):
        out[start:stop] = u
    return out.reshape(shape)


def numpy_dropout_mask(keep: float, k1: int, k2: int, shape: tuple[int, ...],
                       dtype: type = np.float64) -> np.ndarray:
    """D = [U < T] / keep, T = round(keep * 2^24), fused per chunk: == dropout_mask on NumPy."""
    threshold = np.uint32(dropout_threshold(keep))
    dtype = np.dtype(dtype)
    scale = dtype.type(1.0 / keep)  # what float32/float64 * Python float rounds the scalar to
    shape = tuple(int(s) for s in shape)
    out = np.empty(math.prod(shape), dtype=dtype)
    kept = np.empty(min(out.size, _CHUNK), dtype=bool)
    for start, stop, u in _chunks(k1, k2, out.size):
        kv = kept[:stop - start]
        np.less(u, threshold, out=kv)
        np.multiply(kv, scale, out=out[start:stop])
    return out.reshape(shape)
