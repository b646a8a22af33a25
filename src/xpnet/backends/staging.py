"""Rows of a host array sent to a device through one reused staging buffer.

Prediction from host rows on a device is bound by the host (xpnet's FACTS: the forward pass of
a million rows takes 17 ms on an H200, the copy from pageable NumPy memory 0.39 s). So the
rows go up in chunks through a buffer of two slots that is allocated once per model and device
(page-locked on CUDA, so the copy is a DMA that runs while the host fills the other slot):

    for chunk k (rows i:j, slot s = k mod 2):
        wait_host(s)          the copy that last read host[s] is done
        fill(s, X[i:j])       host[s][:j-i] = X[i:j], cast to the model's dtype, several threads
        D = send(s, j-i)      host[s] -> device slot s on a copy stream, once compute is done
                              with that slot; the compute stream waits for the copy
        ... forward(D) ...    queued on the compute stream
        release(s)            the device slot may be overwritten after the work queued so far

:class:`Staging` is the portable version (a NumPy buffer, ``Backend.asarray`` for the copy,
everything synchronous), which is what array-api-strict's fake devices run; the CUDA versions
(:mod:`xpnet.backends.cuda_staging`) override the buffer and the session.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any, Iterator

import numpy as np

__all__ = ["STAGE_BYTES", "Session", "Staging", "fill"]

#: Bytes of one slot of the host staging buffer (two slots per model and device).
STAGE_BYTES = 64 * 2**20
# below this many elements a chunk is copied by the calling thread alone
_PARALLEL_ELEMENTS = 1 << 20
# threads that copy one chunk (8 copy 3.1 GB into pinned memory 4.6x faster than one: FACTS)
_WORKERS = min(8, os.cpu_count() or 1)


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    """Threads that copy a chunk of rows together (NumPy releases the GIL in copies)."""
    return ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="xpnet-stage")


def _copy(dst: np.ndarray, src: Any) -> None:
    with np.errstate(over="ignore", invalid="ignore"):  # per thread: overflow is inf, checked
        np.copyto(dst, src, casting="unsafe")


def fill(dst: np.ndarray, src: Any) -> None:
    """dst[...] = src, cast to dst's dtype (float64 -> float32 rounds, too large -> inf: the
    caller checks finiteness), in row blocks on several threads when it is large."""
    rows = int(dst.shape[0])
    workers = _WORKERS if dst.size >= _PARALLEL_ELEMENTS else 1
    if workers <= 1 or rows < 2:
        _copy(dst, src)
        return
    step = -(-rows // workers)
    futures = [_pool().submit(_copy, dst[a:a + step], src[a:a + step])
               for a in range(0, rows, step)]
    for f in futures:
        f.result()


class Session:
    """One prediction's use of the buffer (portable: synchronous, a fresh device copy)."""

    def __init__(self, staging: "Staging", host: np.ndarray) -> None:
        self.staging, self.host = staging, host

    def wait_host(self, slot: int) -> None:
        """Block until the copy that last read ``host[slot]`` is done."""

    def send(self, slot: int, rows: int) -> Any:
        """``host[slot, :rows]`` as an array on the device, ready for the compute stream."""
        return self.staging.backend.asarray(self.host[slot, :rows])

    def release(self, slot: int) -> None:
        """The work queued so far is all that reads the device copy of ``slot``."""


class Staging:
    """A model's host staging buffer for one backend and device: ``host`` is (2, rows, n[0]),
    allocated on first use, reused while it is big enough, grown (doubling, at most
    :data:`STAGE_BYTES` a slot) when a call needs more. ``allocations`` counts the buffers
    made. One prediction at a time uses it (a lock)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.host: np.ndarray | None = None
        self.allocations = 0
        self._lock = threading.Lock()

    @staticmethod
    def slot_rows(n_features: int, dtype: Any) -> int:
        """The most rows one slot holds: STAGE_BYTES / (n[0] itemsize), at least 1."""
        return max(1, STAGE_BYTES // max(1, n_features * np.dtype(dtype).itemsize))

    def buffer(self, rows: int, n_features: int, dtype: Any) -> np.ndarray:
        """The (2, >= rows, n[0]) buffer of ``dtype``; ``rows`` at most :meth:`slot_rows`."""
        dtype = np.dtype(dtype)
        host = self.host
        if (host is not None and host.dtype == dtype and host.shape[2] == n_features
                and host.shape[1] >= rows):
            return host
        grown = rows
        if host is not None and host.dtype == dtype and host.shape[2] == n_features:
            grown = max(rows, min(2 * host.shape[1], self.slot_rows(n_features, dtype)))
        self.host = None  # the old buffer goes before the new one is made
        self.host = self._allocate((2, grown, n_features), dtype)
        self.allocations += 1
        return self.host

    def _allocate(self, shape: tuple[int, int, int], dtype: np.dtype) -> np.ndarray:
        """A host array the device copies from (page-locked on CUDA)."""
        return np.empty(shape, dtype=dtype)

    @contextlib.contextmanager
    def session(self, rows: int, n_features: int, dtype: Any) -> Iterator[Session]:
        """The buffer, locked for one prediction of chunks of at most ``rows`` rows."""
        with self._lock:
            host = self.buffer(rows, n_features, dtype)
            yield self._session(host)

    def _session(self, host: np.ndarray) -> Session:
        return Session(self, host)
