"""The step's allreduce on CuPy arrays with NCCL, GPU to GPU (data-parallel training).

One NCCL communicator per process, on the process's GPU, bootstrapped over MPI (rank 0's
NCCL id is broadcast). The sum runs on the current stream; its completion is awaited with a
deadline (an event polled from the host), and a rank that stops answering makes the others
abort the communicator and raise instead of hanging.

Written against CuPy 14's ``cupy.cuda.nccl``; it has not run on a GPU yet, so
``distributed="nccl"`` needs ``XPNET_NCCL=1`` until ci/gpu has verified it.
"""

from __future__ import annotations

import time
from typing import Any

from xpnet.errors import DistributedError

__all__ = ["NcclAllreduce"]


class NcclAllreduce:
    """buffer := the sum of every rank's buffer (a 1-D float32/float64 CuPy array), in place."""

    def __init__(self, mpi: Any, device: int, timeout: float = 120.0) -> None:
        import cupy
        from cupy.cuda import nccl

        self.cupy, self.nccl, self.timeout, self.rank = cupy, nccl, float(timeout), mpi.rank
        uid = mpi.bcast(nccl.get_unique_id() if mpi.rank == 0 else None, "the NCCL id")
        self.device = int(device)
        with cupy.cuda.Device(self.device):
            self.comm = nccl.NcclCommunicator(mpi.size, uid, mpi.rank)
        self._types = {"float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64}

    def __call__(self, buf: Any, what: str) -> None:
        cupy = self.cupy
        with cupy.cuda.Device(self.device):
            stream = cupy.cuda.get_current_stream()
            self.comm.allReduce(buf.data.ptr, buf.data.ptr, buf.size,
                                self._types[buf.dtype.name], self.nccl.NCCL_SUM, stream.ptr)
            done = cupy.cuda.Event(block=False, disable_timing=True)
            done.record(stream)
            deadline = time.monotonic() + self.timeout
            while not done.done:
                if time.monotonic() > deadline:
                    self.comm.abort()
                    raise DistributedError(
                        f"rank {self.rank}: the other ranks did not join {what} (NCCL) within "
                        f"{self.timeout:g} s: a rank died, hangs, or stopped with an error")
                time.sleep(1e-5)
