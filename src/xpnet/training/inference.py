"""A[L] = f(X) computed over row blocks of X: memory O(chunk) not O(n).

Prediction needs A[L] only, never the cache that backpropagation keeps, yet the forward pass
over all n examples at once holds every layer's Z[l] and A[l] for all of them: (sum_l n[l])
x n values, gigabytes for a million rows. Each example's column is independent of the others,
so the same equations (:func:`xpnet.core.forward.forward`, not a copy of them) run on blocks
of rows X[i:j] (passed as the view X[i:j]^T, examples in columns), and what the caller keeps
of each block, ``finish(A[L] block)`` (class indices, probabilities, ...), is written into one
preallocated output on the device. Peak memory: one block's activations plus the output.

On a device the blocks are sized from its free memory (a quarter of it); host rows for a
device go up block by block through the model's reused staging buffer, the copy of one block
overlapping the computation of the one before (:func:`predict_staged`).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from xpnet.backends.staging import fill
from xpnet.core.forward import forward

__all__ = ["DEFAULT_MAX_BYTES", "budget_bytes", "chunk_rows_for", "class_index", "itemsize",
           "label_classes", "predict_in_chunks", "predict_staged", "probabilities",
           "regression_values", "staging_for"]

DEFAULT_MAX_BYTES = 64 * 2**20
#: The share of a device's free memory one block's activations may take.
DEVICE_SHARE = 0.25
# per row and layer: Z[l], A[l] and one temporary of the activation (softmax's exp, ...)
_COPIES_PER_LAYER = 3


def itemsize(xp: Any, dtype: Any) -> int:
    """Bytes per element of a standard dtype."""
    if xp.isdtype(dtype, "real floating") or xp.isdtype(dtype, "complex floating"):
        return xp.finfo(dtype).bits // 8
    if xp.isdtype(dtype, "integral"):
        return xp.iinfo(dtype).bits // 8
    return 1


def chunk_rows_for(units: Sequence[int], itemsize: int, max_bytes: int = DEFAULT_MAX_BYTES
                   ) -> int:
    """rows = floor(max_bytes / (3 itemsize sum_l n[l])), at least 1: the most examples whose
    activations (Z[l], A[l] and a temporary for each layer l = 1..L) fit in ``max_bytes``.
    ``units`` are the layer widths n[1], ..., n[L]."""
    per_row = _COPIES_PER_LAYER * itemsize * sum(int(n_l) for n_l in units)
    return max(1, int(max_bytes) // max(1, per_row))


def budget_bytes(backend: Any) -> int:
    """One block's activation budget: :data:`DEVICE_SHARE` of the device's free memory (at
    least :data:`DEFAULT_MAX_BYTES`); on the host :data:`DEFAULT_MAX_BYTES`."""
    free = backend.free_memory()
    return DEFAULT_MAX_BYTES if free is None else max(DEFAULT_MAX_BYTES, int(DEVICE_SHARE * free))


def _rows(chunk_rows: int | None, units: list[int], size: int, max_bytes: int) -> int:
    if chunk_rows is None:
        return chunk_rows_for(units, size, max_bytes)
    if int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows must be a positive number of rows; got {chunk_rows!r}")
    return int(chunk_rows)


def predict_in_chunks(W: Mapping[int, Any], b: Mapping[int, Any], g: Sequence[str],
                      backend: Any, X: Any, finish: Callable[[Any], Any], *,
                      chunk_rows: int | None = None, max_bytes: int | None = None,
                      kernels: Any = None, upload: Callable[[Any], Any] | None = None) -> Any:
    """A[L] = f(X) computed over row blocks of X: memory O(chunk) not O(n).

    out[i:j] = finish(A[L](X[i:j]^T)) for consecutive blocks of rows; returns ``out``.

    Parameters
    ----------
    W, b, g : the network, as for :func:`xpnet.core.forward.forward` (W[l] (n[l], n[l-1]),
        b[l] (n[l], 1), the L activation names).
    backend : the :class:`xpnet.Backend` the arrays live on (its namespace ``xp``).
    X : (n, n[0]) array on ``backend``, rows are examples (scikit-learn's layout). Blocks are
        views (X[i:j]^T); X itself is never copied.
    finish : A[L] block (n[L], rows) -> an array whose first axis is the block's rows, e.g.
        ``lambda A: xp.argmax(A, axis=0)`` or ``lambda A: xp.permute_dims(A, (1, 0))``. It runs
        on the device; every block's result must have the same trailing shape and dtype.
    chunk_rows : rows per block; None: :func:`chunk_rows_for` (``max_bytes``).
    max_bytes : the activations' budget per block when ``chunk_rows`` is None; None:
        :func:`budget_bytes` (a quarter of a device's free memory).
    kernels : the compute routines ``forward`` runs (its ``kernels=``); None: the backend's own
        (``backend.kernels``) where it has them, else ``forward``'s default.
    upload : for an X that is not on ``backend`` (a sparse host matrix): block -> the block as
        a dense array on ``backend``, called once per block.

    The result is one array (n, ...) on ``backend``, written block by block (no host round
    trip, no concatenation). Each example's column goes through the same equations as in the
    whole-X pass, so the values are those of ``finish(forward(X^T)[0])``.
    """
    xp = backend.xp
    n = int(X.shape[0])
    size = X.dtype.itemsize if upload is not None else itemsize(xp, X.dtype)
    units = [w.shape[0] for w in W.values()]
    if upload is not None:  # the uploaded dense block counts too (n[0] per row)
        units.append(W[1].shape[1])
    rows = _rows(chunk_rows, units, size, budget_bytes(backend) if max_bytes is None
                 else max_bytes)
    rows = min(rows, max(n, 1))
    kernels = backend.kernels if kernels is None else kernels
    out = None
    for i in range(0, max(n, 1), rows):
        j = min(i + rows, n)
        # [0]: the cache (every Z[l], A[l] of the block) is dropped here, before the next block
        block = X[i:j, ...] if upload is None else upload(X[i:j])
        R = finish(forward(block.T, W, b, g, xp=xp, kernels=kernels)[0])
        del block
        if out is None:
            out = xp.empty((n, *tuple(R.shape)[1:]), dtype=R.dtype,
                           device=R.device)
        out[i:j, ...] = R
        del R
    return out


# --------------------------------------------------------------------------- host rows, staged
_STAGINGS: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()
_STAGINGS_LOCK = threading.Lock()


def staging_for(owner: Any, backend: Any) -> Any:
    """The staging buffer ``owner`` (a model's network) holds for ``backend``'s device, made
    by ``backend.staging()`` on first use and kept while ``owner`` lives."""
    with _STAGINGS_LOCK:
        found = _STAGINGS.get(owner)
        if found is None or found.backend != backend:
            found = _STAGINGS[owner] = backend.staging()
        return found


def _either(flag: Any, new: Any, xp: Any) -> Any:
    return new if flag is None else xp.logical_or(flag, new)


def predict_staged(W: Mapping[int, Any], b: Mapping[int, Any], g: Sequence[str], backend: Any,
                   X: np.ndarray, finish: Callable[[Any], Any], *, staging: Any, dtype: Any,
                   chunk_rows: int | None = None, max_bytes: int | None = None,
                   kernels: Any = None) -> tuple[Any, Any, Any]:
    """out[i:j] = finish(A[L](X[i:j]^T)) for a host X (n, n[0]) on a device backend, the rows
    sent a block at a time through ``staging`` (:mod:`xpnet.backends.staging`): the copy of a
    block overlaps the computation of the one before, and X is read once on the host (cast to
    ``dtype`` as it is copied), never checked there.

    Returns (out, has_nan, has_inf): ``out`` (n, ...) on the device and two 0-d device flags
    for the values the model saw; the caller reads them (one sync) and refuses a non-finite X.
    Blocks: as :func:`predict_in_chunks` (the uploaded block counts in the budget), and at
    most one staging slot (:meth:`Staging.slot_rows`).
    """
    xp = backend.xp
    n, n0 = int(X.shape[0]), int(X.shape[1])
    units = [int(w.shape[0]) for w in W.values()] + [n0]
    rows = _rows(chunk_rows, units, np.dtype(dtype).itemsize,
                 budget_bytes(backend) if max_bytes is None else max_bytes)
    if chunk_rows is None:
        rows = min(rows, staging.slot_rows(n0, dtype))
    rows = min(rows, max(n, 1))
    kernels = backend.kernels if kernels is None else kernels
    out = has_nan = has_inf = None
    with staging.session(rows, n0, dtype) as s, np.errstate(over="ignore", invalid="ignore"):
        for k, i in enumerate(range(0, n, rows)):
            j, slot = min(i + rows, n), k % 2
            s.wait_host(slot)
            fill(s.host[slot, :j - i], X[i:j])
            D = s.send(slot, j - i)
            has_nan = _either(has_nan, xp.any(xp.isnan(D)), xp)
            has_inf = _either(has_inf, xp.any(xp.isinf(D)), xp)
            R = finish(forward(D.T, W, b, g, xp=xp, kernels=kernels)[0])
            if out is None:
                out = xp.empty((n, *tuple(R.shape)[1:]), dtype=R.dtype, device=R.device)
            out[i:j, ...] = R
            s.release(slot)
            del D, R
    return out, has_nan, has_inf


# --------------------------------------------------------------------------- what A[L] means
def probabilities(AL: Any, kind: str, *, xp: Any) -> Any:
    """P (rows, n_classes) from A[L] (n[L], rows): binary [1 - p, p]; otherwise A[L]^T
    (multiclass: the softmax; multilabel: one sigmoid per label)."""
    if kind == "binary":
        p = AL[0, :]
        return xp.stack([1.0 - p, p], axis=1)
    return xp.permute_dims(AL, (1, 0))


def label_classes(classes: np.ndarray) -> np.ndarray:
    """What a :func:`class_index` indexes: ``classes_``, or a one-class model's class twice
    (scikit-learn's: its output unit is trained to 0, and either index names that class)."""
    classes = np.asarray(classes)
    return classes if classes.shape[0] > 1 else np.repeat(classes, 2)


def regression_values(AL: Any, outputs: int, *, xp: Any) -> Any:
    """A regressor's predictions from A[L] (n[L] = ``outputs``, rows): (rows,) for one
    output, else A[L]^T (``outputs`` given: a graph node may not know its shape)."""
    return AL[0, :] if outputs == 1 else xp.permute_dims(AL, (1, 0))


def class_index(AL: Any, kind: str, *, xp: Any) -> Any:
    """The predicted class of each row as an int64 index into the classes (multiclass: the
    argmax; binary: p > 0.5), or for multilabel the int64 0/1 indicator (rows, n_labels)."""
    if kind == "multilabel":
        return xp.permute_dims(xp.astype(AL > 0.5, xp.int64), (1, 0))
    if kind == "multiclass":
        return xp.astype(xp.argmax(AL, axis=0), xp.int64)
    return xp.astype(AL[0, :] > 0.5, xp.int64)
