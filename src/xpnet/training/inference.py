"""A[L] = f(X) computed over row blocks of X: memory O(chunk) not O(n).

Prediction needs A[L] only, never the cache that backpropagation keeps, yet the forward pass
over all n examples at once holds every layer's Z[l] and A[l] for all of them: (sum_l n[l])
x n values, gigabytes for a million rows. Each example's column is independent of the others,
so the same equations (:func:`xpnet.core.forward.forward`, not a copy of them) run on blocks
of rows X[i:j] (passed as the view X[i:j]^T, examples in columns), and what the caller keeps
of each block, ``finish(A[L] block)`` (class indices, probabilities, ...), is written into one
preallocated output on the device. Peak memory: one block's activations plus the output.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence


from xpnet.core.forward import forward

__all__ = ["DEFAULT_MAX_BYTES", "chunk_rows_for", "class_index", "itemsize", "predict_in_chunks",
           "probabilities"]

DEFAULT_MAX_BYTES = 64 * 2**20
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


def predict_in_chunks(W: Mapping[int, Any], b: Mapping[int, Any], g: Sequence[str],
                      backend: Any, X: Any, finish: Callable[[Any], Any], *,
                      chunk_rows: int | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
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
    max_bytes : the activations' budget per block when ``chunk_rows`` is None.
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
    if chunk_rows is None:
        size = X.dtype.itemsize if upload is not None else itemsize(xp, X.dtype)
        units = [w.shape[0] for w in W.values()]
        if upload is not None:  # the uploaded dense block counts too (n[0] per row)
            units.append(W[1].shape[1])
        rows = chunk_rows_for(units, size, max_bytes)
    else:
        rows = int(chunk_rows)
        if rows < 1:
            raise ValueError(f"chunk_rows must be a positive number of rows; got {chunk_rows!r}")
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


# --------------------------------------------------------------------------- what A[L] means
def probabilities(AL: Any, kind: str, *, xp: Any) -> Any:
    """P (rows, n_classes) from A[L] (n[L], rows): binary [1 - p, p]; otherwise A[L]^T
    (multiclass: the softmax; multilabel: one sigmoid per label)."""
    if kind == "binary":
        p = AL[0, :]
        return xp.stack([1.0 - p, p], axis=1)
    return xp.permute_dims(AL, (1, 0))


def class_index(AL: Any, kind: str, *, xp: Any) -> Any:
    """The predicted class of each row as an int64 index into the classes (multiclass: the
    argmax; binary: p > 0.5), or for multilabel the int64 0/1 indicator (rows, n_labels)."""
    if kind == "multilabel":
        return xp.permute_dims(xp.astype(AL > 0.5, xp.int64), (1, 0))
    if kind == "multiclass":
        return xp.astype(xp.argmax(AL, axis=0), xp.int64)
    return xp.astype(AL[0, :] > 0.5, xp.int64)
