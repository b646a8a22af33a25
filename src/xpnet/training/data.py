"""Where a fit's training rows live, decided once, and how an epoch's batches reach the step.

    resident   X on the device: permuted once per epoch into the step's buffer (a gather into
               the same memory every epoch), each batch a contiguous view of it
    streamed   X on the host, bigger than the device: a chunk of whole batches gathered on the
               host and uploaded at a time (:mod:`xpnet.training.streaming`)
    sparse     X a host SciPy matrix (a data-parallel shard): each batch's rows sent as CSR
               and made dense on the device

Every kind yields the same batches in the same order, so the parameters do not depend on
where X lives (``tests/test_streaming.py``). Y (n x n[L], small) is always on the device and
permuted there, by the loop.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np

from xpnet.training.streaming import host_batches, host_rows, is_sparse

__all__ = ["DataSource"]


class DataSource:
    """X's rows (n, n[0]) for one fit on ``backend``; ``stream_rows``: X on the host, uploaded
    that many rows (whole batches) at a time. ``kind`` says which (see the module doc)."""

    def __init__(self, X: Any, backend: Any, stream_rows: int | None = None) -> None:
        self.X, self.backend, self.stream_rows = X, backend, stream_rows
        self.kind = ("streamed" if stream_rows is not None
                     else "sparse" if is_sparse(X) else "resident")

    @property
    def on_device(self) -> bool:
        return self.kind == "resident"

    def batches(self, spans: Sequence[tuple[int, int, int]], order: Any,
                host_order: np.ndarray | None, batch_size: int, *, kernels: Any, ws: Any
                ) -> Iterator[tuple[int, int, Any]]:
        """(a, z, rows a..z-1 of X[order] on the device, (z - a, n[0])) for each span.
        ``order``: the permutation on the device, ``host_order`` the same on the host (None
        for both: the rows in order)."""
        X, be = self.X, self.backend
        if self.kind == "resident":
            if order is not None:  # into the step's workspace: the same buffer every epoch
                X = kernels.take_rows(X, order, xp=be.xp, ws=ws, role="X")
            return ((a, z, X[a:z, :]) for a, z, _ in spans)
        if self.kind == "streamed":
            return host_batches(X, host_order, self.stream_rows, batch_size, be.dense_rows)
        upload = be.dense_rows
        return ((a, z, upload(X[a:z] if host_order is None else host_rows(X, host_order[a:z])))
                for a, z, _ in spans)
