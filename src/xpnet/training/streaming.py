"""Training data bigger than the device: X stays on the host and goes up in chunks of batches.

    each epoch:  order = rng.permutation(n)                  (the same draw as on the device)
        each chunk C = order[c0:c1] (a whole number of batches):
            X_C = upload(X[C])                               (one host-to-device copy)
            each batch B = rows a:b of the chunk:  step(X_C[a:b].T, Y[order][c0+a:c0+b].T)

A batch holds the same rows in the same order as when all of X is on the device (X[order]
then contiguous slices), so a streamed fit gives the same parameters, bit for bit. Y (n x
n[L], small next to X) is on the device and permuted there once per epoch, as before.

A sparse X (SciPy CSR) is always streamed, on every backend: each chunk's rows are taken from
the CSR matrix and sent as CSR, then made dense on the device where the backend can
(``Backend.dense_rows``: torch, CuPy) or just before the upload (NumPy), so memory holds one
dense chunk, never the dense X.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

__all__ = ["SPARSE_CHUNK_BYTES", "STREAM_SHARE", "chunk_rows", "host_batches", "host_rows",
           "is_sparse", "should_stream"]

#: The dense size of one chunk of a sparse X (rows x n[0] x itemsize).
SPARSE_CHUNK_BYTES = 64 * 2**20
#: Stream when X would take more than this share of the device's free memory.
STREAM_SHARE = 0.5


def is_sparse(X: Any) -> bool:
    """Whether X is a SciPy sparse matrix or array (without importing SciPy)."""
    return type(X).__module__.startswith("scipy.sparse") and hasattr(X, "tocsr")


def host_rows(X: Any, idx: Any) -> Any:
    """X[idx] for a host X: NumPy's take, or a CSR matrix's row indexing (stays sparse)."""
    return X[np.asarray(idx)] if is_sparse(X) else np.take(X, idx, axis=0)


def should_stream(x_bytes: int, free_bytes: int | None) -> bool:
    """Whether X (``x_bytes``) is too big to keep on a device with ``free_bytes`` free:
    more than :data:`STREAM_SHARE` of it (the rest is for W, b, their state and activations).
    ``free_bytes`` None (the host, or unknown): never."""
    return free_bytes is not None and x_bytes > STREAM_SHARE * free_bytes


def chunk_rows(row_bytes: int, batch_size: int, budget_bytes: int) -> int:
    """Rows per uploaded chunk: the most whole batches within ``budget_bytes``, at least one."""
    batches = max(1, int(budget_bytes) // max(1, int(row_bytes) * int(batch_size)))
    return batches * int(batch_size)


def host_batches(X: np.ndarray, order: np.ndarray | None, rows: int, batch_size: int,
                 upload: Any) -> Iterator[tuple[int, int, Any]]:
    """(start, stop, X[order][start:stop] on the device) for consecutive batches.

    X (n, n[0]) is a host array (NumPy, or SciPy CSR); ``order`` the epoch's permutation
    (None: the rows in order); ``upload`` copies a host block (NumPy, or SciPy sparse:
    ``Backend.dense_rows``) to the device, dense. Each chunk of ``rows`` rows (a multiple of
    ``batch_size``) is gathered on the host and uploaded once; its batches are views of it.
    """
    n = int(X.shape[0])
    for c0 in range(0, n, rows):
        c1 = min(c0 + rows, n)
        block = X[c0:c1] if order is None else host_rows(X, order[c0:c1])
        Xc = upload(block)
        del block
        for start in range(c0, c1, batch_size):
            stop = min(start + batch_size, c1)
            yield start, stop, Xc[start - c0:stop - c0, :]
