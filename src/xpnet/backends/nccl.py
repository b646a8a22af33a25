"""The step's allreduce on CuPy arrays with NCCL, GPU to GPU (data-parallel training).

One NCCL communicator per process, on the process's GPU, bootstrapped over MPI (rank 0's
NCCL id is broadcast). MPI stays the control plane: the sum runs on the current stream and
its completion is awaited by polling an event from the host, and meanwhile the MPI
communicator's failure notes (``mpi.check()``, :mod:`xpnet.training.communicator`). A note
from a failed rank, or the deadline passing (a rank stopped answering), aborts the NCCL
communicator (the kernel waiting for the missing rank ends) and raises DistributedError;
:meth:`NcclAllreduce.abort` is also what a failing rank runs before it leaves.

Written against CuPy 14's ``cupy.cuda.nccl``; it has not run on a GPU yet, so
``distributed="nccl"`` needs ``XPNET_NCCL=1`` until ci/gpu has verified it.
"""

from __future__ import annotations

import time
from typing import Any

from xpnet.errors import DistributedError

__all__ = ["NcclAllreduce"]

#: The buffers of allreduces left mid-way (a failure, a deadline): kept until the process ends.
_KEPT: list[Any] = []


class NcclAllreduce:
    """buffer := the sum of every rank's buffer (a 1-D float32/float64 CuPy array), in place."""

    def __init__(self, mpi: Any, device: int, timeout: float = 120.0) -> None:
        import cupy
        from cupy.cuda import nccl

        self.cupy, self.nccl, self.timeout, self.mpi = cupy, nccl, float(timeout), mpi
        self.aborted = False
        uid = mpi.bcast(nccl.get_unique_id() if mpi.rank == 0 else None, "the NCCL id")
        self.device = int(device)
        with cupy.cuda.Device(self.device):
            self.comm = nccl.NcclCommunicator(mpi.size, uid, mpi.rank)
        self._types = {"float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64}

    def __call__(self, buf: Any, what: str) -> None:
        if self.aborted:
            raise DistributedError(f"rank {self.mpi.rank}: the NCCL communicator was aborted "
                                   f"after a rank failed; it cannot sum {what}")
        cupy = self.cupy
        with cupy.cuda.Device(self.device):
            stream = cupy.cuda.get_current_stream()
            self.comm.allReduce(buf.data.ptr, buf.data.ptr, buf.size,
                                self._types[buf.dtype.name], self.nccl.NCCL_SUM, stream.ptr)
            done = cupy.cuda.Event(block=False, disable_timing=True)
            done.record(stream)
            deadline = time.monotonic() + self.timeout
            while not done.done:
                try:
                    self.mpi.check()  # another rank's failure note: raises DistributedError
                    if time.monotonic() > deadline:
                        raise self.mpi.expired(f"{what} (NCCL)")
                except DistributedError:
                    self.abort()
                    _KEPT.append(buf)  # never handed to another array: NCCL had it
                    raise
                time.sleep(1e-5)

    def abort(self) -> None:
        """Abort the NCCL communicator (once): its pending operations end, it is not used
        again."""
        if not self.aborted:
            self.aborted = True
            with self.cupy.cuda.Device(self.device):
                self.comm.abort()
