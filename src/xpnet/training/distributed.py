"""Data-parallel training over MPI: each process (rank) trains on its own shard of the data,
and one allreduce per step sums the gradients, as Horovod and PyTorch DDP do.

    global batch k = rank 0's rows [k b_0, (k+1) b_0) of its shard, then rank 1's, ...
                     (b_r = the share of batch_size of rank r: B // N, one more for the first
                     B % N ranks; a rank whose shard is used up contributes no rows)
    each step:  dZ[L] carries 1/B_k (B_k the global batch's rows), dW, db local sums
                allreduce(dW, db, S, error flag)     <- the one collective of the step
                L2, clipping, the optimizer: the same arithmetic on the same sums everywhere,
                so the parameters stay identical without being sent again

With ``shuffle=False`` and shards whose global batches are all full but the last, N ranks
train exactly the model one process trains on ``X_all[global_order(...)]`` with the same
``batch_size`` (:func:`global_order` builds that order). With shuffling, each rank shuffles its
shard from its own stream: rank 0 from ``random_state`` (one rank is the plain fit), rank r
from ``SeedSequence([random_state, r])``; a run is reproducible for a given N.

Failure (:mod:`xpnet.training.communicator`): a fit is one session of the communicator; an
exception on any rank, anywhere in the fit (the step, a callback, writing the checkpoint,
validation, the input checks), is sent to every other rank, which leaves the collective it
waits in and raises :class:`xpnet.errors.DistributedError` naming the failed rank and its
error, within milliseconds; a rank that dies ends the job through MPI; a rank that stops
answering is given up after a deadline on every collective (``timeout`` seconds).
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from typing import Any, ContextManager, Sequence

import numpy as np

from xpnet.backends import to_numpy
from xpnet.training.communicator import MPIComm

__all__ = ["MPIComm", "Plan", "batch_shares", "global_order", "local_rank", "make_comm",
           "rank_stream_seed", "session"]

#: Slots after the gradients in the step's allreduce buffer: S (the loss sum) and a stop
#: request (Ctrl-C on any rank: all stop after the same step).
EXTRA_SLOTS = 2


def batch_shares(batch_size: int, size: int) -> list[int]:
    """b_r: rank r's rows of each global batch: B // N, one more for the first B % N ranks."""
    if batch_size < size:
        raise ValueError(f"batch_size={batch_size} is smaller than the {size} ranks: every "
                         f"rank needs at least one row of each global batch")
    return [batch_size // size + (1 if r < batch_size % size else 0) for r in range(size)]


def _rows(n: int, b: int, steps: int) -> list[int]:
    """A rank's rows in each of ``steps`` global batches (n rows, b per batch)."""
    return [max(0, min(b, n - k * b)) for k in range(steps)]


def global_order(shard_sizes: Sequence[int], batch_size: int) -> np.ndarray:
    """The row order in which ONE process, trained on the ranks' shards concatenated in rank
    order with the same ``batch_size`` and ``shuffle=False``, sees exactly the global batches
    of N ranks: fit(X_all[order], y_all[order]) gives their model. Needs every global batch
    but the last to be full (e.g. shards of equal size); raises ValueError otherwise."""
    shares = batch_shares(batch_size, len(shard_sizes))
    steps = max(-(-n // b) for n, b in zip(shard_sizes, shares))
    offsets = np.concatenate([[0], np.cumsum(shard_sizes)[:-1]])
    order = []
    sizes = []
    for k in range(steps):
        batch = [off + np.arange(k * b, k * b + m)
                 for off, b, m in ((o, b, _rows(n, b, steps)[k])
                                   for o, n, b in zip(offsets, shard_sizes, shares))]
        rows = np.concatenate(batch)
        order.append(rows)
        sizes.append(len(rows))
    if any(s != batch_size for s in sizes[:-1]):
        raise ValueError(f"the global batches have sizes {sizes}: one process's contiguous "
                         f"batches of {batch_size} cannot match them; use shards whose "
                         f"global batches are full but the last (e.g. equal shards)")
    return np.concatenate(order)


def rank_stream_seed(random_state: Any, rank: int) -> int:
    """The seed of rank r's shuffle stream (r >= 1): SeedSequence([random_state, r])."""
    base = 0 if random_state is None else int(random_state)
    return int(np.random.SeedSequence([base, rank]).generate_state(1)[0])


def local_rank(comm: Any) -> int:
    """This process's rank among the processes on its node (the GPU it takes)."""
    for var in ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_RANK",
                "SLURM_LOCALID"):
        if var in os.environ:
            return int(os.environ[var])
    return comm.rank


#: "1" lets distributed="nccl" run: written, not yet verified on a GPU.
NCCL_ENV = "XPNET_NCCL"


def make_comm(distributed: Any) -> Any:
    """The communicator for an estimator's ``distributed`` setting (None: not distributed).
    "nccl": MPI for the small collectives, NCCL for the step's allreduce (CuPy arrays)."""
    if distributed is None:
        return None
    if isinstance(distributed, MPIComm):
        return distributed
    if distributed == "mpi":
        return MPIComm()
    if distributed == "nccl":
        if os.environ.get(NCCL_ENV, "0") != "1":
            raise ValueError(f"distributed='nccl' (CuPy over NCCL) has not run on a GPU yet: "
                             f"set {NCCL_ENV}=1 to try it, or use distributed='mpi' (its "
                             f"allreduce goes through host memory)")
        comm = MPIComm()
        comm.nccl = True
        return comm
    raise ValueError(f"distributed must be None, 'mpi' or 'nccl'; got {distributed!r}")


def session(comm: MPIComm | None) -> ContextManager[Any]:
    """The context of one data-parallel fit (``comm.session()``; nothing without ``comm``):
    an exception on this rank inside it stops every rank within milliseconds."""
    return nullcontext() if comm is None else comm.session()


class Plan:
    """One fit's data-parallel schedule: this rank's rows in each global batch, the global
    batch sizes, and the step's allreduce over the gradient buffer."""

    def __init__(self, comm: MPIComm, n_local: int, batch_size: int, backend: Any) -> None:
        self.comm, self.backend = comm, backend
        self.shares = batch_shares(batch_size, comm.size)
        self.b = self.shares[comm.rank]
        sizes = comm.allgather(int(n_local), "the shard sizes")
        self.shard_sizes = [int(s) for s in sizes]
        self.n_global = sum(self.shard_sizes)
        self.steps = max(-(-n // b) if n else 0 for n, b in zip(self.shard_sizes, self.shares))
        per_rank = [_rows(n, b, self.steps) for n, b in zip(self.shard_sizes, self.shares)]
        self.local_rows = per_rank[comm.rank]
        self.global_rows = [sum(col) for col in zip(*per_rank)]
        self.interrupted: Any = lambda: False  # set by the Trainer: Ctrl-C seen on this rank
        self.stop_requested = False
        self.device_allreduce: Any = None
        if comm.nccl:
            if backend.name != "cupy":
                raise ValueError(f"distributed='nccl' sums CuPy arrays on the GPUs; the "
                                 f"backend is {backend.name} (use distributed='mpi')")
            from xpnet.backends.nccl import NcclAllreduce

            self.device_allreduce = NcclAllreduce(comm, backend.device, comm.timeout)
            comm.on_failure.append(self.device_allreduce.abort)  # never wait on a dead rank

    def batches(self, n: int) -> list[tuple[int, int, int]]:
        """(start, stop, global rows) of this rank's part of each global batch."""
        return [(min(k * self.b, n), min(k * self.b, n) + m, B)
                for k, (m, B) in enumerate(zip(self.local_rows, self.global_rows))]

    def reduce(self, grads: Any, S: Any) -> Any:
        """The step's one allreduce: dW, db, S and the stop request, summed in place."""
        extra = grads.extra
        extra[0] = S
        extra[1] = 1.0 if self.interrupted() else 0.0
        self.stop_requested = self._allreduce(grads.storage, "a training step's allreduce")
        return extra[0]

    def _allreduce(self, storage: Any, what: str) -> bool:
        """Sum ``storage`` over the ranks in place; True when a rank asked to stop."""
        if self.device_allreduce is not None:  # on the GPUs; the stop request read back
            self.device_allreduce(storage, what)
            return float(np.asarray(to_numpy(storage[-1:]))[0]) > 0
        host = np.ascontiguousarray(to_numpy(storage))
        self.comm.allreduce(host, what)
        if host is not storage:
            storage[...] = self.backend.asarray(host)
        return float(host[-1]) > 0

    def sum_host(self, values: np.ndarray, what: str) -> np.ndarray:
        """Every rank's ``values`` summed (host float64)."""
        out = np.ascontiguousarray(values, dtype=np.float64).copy()
        self.comm.allreduce(out, what)
        return out
