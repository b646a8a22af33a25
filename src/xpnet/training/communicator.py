"""The ranks' communicator in a data-parallel fit: MPI collectives with a deadline, and a
failure on any rank made known to every rank within milliseconds.

Each fit runs in a session (:meth:`MPIComm.session`) on its own duplicate of the MPI
communicator, so that its collectives and notes never meet the user's messages nor another
fit's. Inside a session:

    a rank raises         it sends a note (its rank, the exception's type and message) to
                          every other rank, then lets its own exception go on, with a note
                          naming the rank ("xpnet: rank r of N failed here ...")
    every collective      waits by polling its request and, meanwhile, the notes: a note
                          makes the rank leave the collective and raise DistributedError
                          naming the failed rank, its exception's type and message
    the fit ends          with a barrier: the fit returns on every rank or on none
    a rank dies           MPICH's process manager ends the job
    a rank stops          the others give up after ``timeout`` seconds (the backstop:
    answering             XPNET_MPI_TIMEOUT, default 120) and, when they exit, end the job
                          with MPI_Abort, so the silent rank does not hold the allocation

DivergenceError is not one rank's failure: every rank finds it at the same step (their
parameters are the same), raises it, and the session ends cleanly. After any other failure
the session's communicator is broken (a collective was left mid-way) and is never used again.
"""

from __future__ import annotations

import atexit
import os
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

from xpnet.errors import DistributedError, DivergenceError

__all__ = ["FAILURE_TAG", "MPIComm", "TIMEOUT_ENV", "default_timeout"]

#: The deadline of every collective, in seconds, when MPIComm is given none.
TIMEOUT_ENV = "XPNET_MPI_TIMEOUT"
#: The message tag of a failure note (on the session's own communicator).
FAILURE_TAG = 0x5850
#: At most this many characters of a failed rank's message travel in its note.
NOTE_CHARS = 1000
#: Seconds a rank that gave up on a silent rank waits at exit, for the others to report,
#: before MPI_Abort ends the job.
ABORT_GRACE = 1.0
#: Requests left mid-way (a failure, a deadline) with their buffers: MPI may still write into
#: those, so they are kept alive until the process ends (freeing them corrupted the heap).
_ABANDONED: list[Any] = []


def default_timeout() -> float:
    """The collectives' deadline: XPNET_MPI_TIMEOUT seconds, or 120."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return 120.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r}: expected a number of seconds > 0 (the "
                         f"deadline of every collective of a data-parallel fit)")
    return value


class MPIComm:
    """The collectives a data-parallel fit needs, over an MPI communicator (mpi4py), each with
    a deadline (``timeout`` seconds; default XPNET_MPI_TIMEOUT or 120), used inside
    :meth:`session`."""

    def __init__(self, comm: Any = None, timeout: float | None = None) -> None:
        try:
            from mpi4py import MPI
        except ImportError as exc:
            raise ImportError(f"distributed='mpi' needs mpi4py and an MPI library: pip install "
                              f"mpi4py mpich (or 'xpnet[mpi]'); run with mpiexec -n N ({exc})"
                              ) from None
        self.MPI = MPI
        self.base = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.base.Get_rank(), self.base.Get_size()
        self.timeout = default_timeout() if timeout is None else float(timeout)
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds; got {timeout!r}")
        self.nccl = False  # True: the step's allreduce runs on the GPUs (distributed="nccl")
        self.comm: Any = None  # the session's duplicate of ``base``
        self.failure: tuple[int, str, str] | None = None  # (rank, type, message) once known
        self.on_failure: list[Callable[[], None]] = []  # run once a failure is known
        self._abort_at_exit = False  # a deadline passed: end the job when this process exits

    # ---------------------------------------------------------------- the session
    @contextmanager
    def session(self) -> Iterator["MPIComm"]:
        """One fit's collectives, on a fresh duplicate of the communicator; an exception on
        this rank inside is told to every other rank (module doc). It ends with a barrier:
        the fit returns on every rank or on none."""
        if self.comm is not None:
            raise RuntimeError("MPIComm.session() is already open: one fit at a time")
        comm, request = self.base.Idup()
        self._wait(request, "the start of the fit", notes=False)
        self.comm, self.failure, self.on_failure = comm, None, []
        try:
            yield self
            # a fit returns on a rank only once every rank's fit has: a failure in the last
            # epoch's checkpoint or after training still reaches the others
            self._wait(comm.Ibarrier(), "the end of the fit")
        except BaseException as exc:
            if isinstance(exc, DivergenceError) or self.size == 1:  # every rank's, at once
                comm.Free()
            elif self.failure is None:  # this rank fails first: the others must know
                self._tell_others(exc)
            raise
        else:
            comm.Free()
        finally:  # a broken one (a collective left mid-way) is never used again
            self.comm = None

    def _tell_others(self, exc: BaseException) -> None:
        """Send this rank's failure to every other rank (briefly waiting for the sends, which
        a gone rank never takes), and name the rank on ``exc``."""
        self.failure = (self.rank, type(exc).__name__, str(exc)[:NOTE_CHARS])
        try:
            requests = [self.comm.isend(self.failure, dest=r, tag=FAILURE_TAG)
                        for r in range(self.size) if r != self.rank]
            _ABANDONED.extend(requests)  # with their notes: a rank may never take its own
            deadline = time.monotonic() + 1.0
            while not self.MPI.Request.Testall(requests) and time.monotonic() < deadline:
                time.sleep(1e-3)
        except Exception:  # a rank that is gone: the job ends anyway
            pass
        self._failed()
        if hasattr(exc, "add_note"):  # Python >= 3.11
            exc.add_note(f"xpnet: rank {self.rank} of {self.size} failed here; the other "
                         f"ranks were told and stop with DistributedError")

    def _failed(self) -> None:
        """Run the ``on_failure`` hooks, once."""
        hooks, self.on_failure = self.on_failure, []
        for hook in hooks:  # e.g. abort the NCCL communicator; failing again changes nothing
            try:
                hook()
            except Exception:  # the job is failing already: do the other hooks
                pass

    def _abort(self) -> None:
        """At exit, after a rank stopped answering: end the whole job (MPI_Abort)."""
        time.sleep(ABORT_GRACE)
        self.base.Abort(1)

    def check(self) -> None:
        """Raise DistributedError if another rank's failure note has come."""
        status = self.MPI.Status()
        if self.comm is None or not self.comm.Iprobe(source=self.MPI.ANY_SOURCE,
                                                     tag=FAILURE_TAG, status=status):
            return
        rank, kind, message = self.comm.recv(source=status.Get_source(), tag=FAILURE_TAG)
        self.failure = (rank, kind, message)
        self._failed()
        raise DistributedError(f"rank {self.rank} of {self.size}: rank {rank} failed with "
                               f"{kind}{': ' + message if message else ''}; stopping")

    # ---------------------------------------------------------------- the collectives
    def _wait(self, request: Any, what: str, notes: bool = True, buffer: Any = None) -> None:
        """Poll ``request`` until it completes, the deadline passes, or (``notes``) another
        rank's failure note comes; a request left mid-way is kept, with its ``buffer``."""
        deadline = time.monotonic() + self.timeout
        pause = 1e-5
        try:
            while not request.Test():
                if notes:
                    self.check()
                if time.monotonic() > deadline:
                    raise self.expired(what)
                time.sleep(pause)
                pause = min(pause * 2, 1e-3)
        except BaseException:
            _ABANDONED.append((request, buffer))
            raise

    def expired(self, what: str) -> DistributedError:
        """The error of a collective past its deadline. A rank stopped answering: this
        process will end the job with MPI_Abort when it exits, so that rank goes too."""
        if not self._abort_at_exit:
            self._abort_at_exit = True
            atexit.register(self._abort)
        return DistributedError(
            f"rank {self.rank} of {self.size}: the other ranks did not join {what} within "
            f"{self.timeout:g} s: a rank died, hangs, or is busy elsewhere (the deadline: "
            f"{TIMEOUT_ENV})")

    def _channel(self) -> Any:
        """The session's communicator, while it is usable."""
        if self.comm is None:
            raise RuntimeError("MPIComm's collectives run inside MPIComm.session() (one fit)")
        if self.failure is not None:
            raise DistributedError(f"rank {self.rank} of {self.size}: the session is broken "
                                   f"since rank {self.failure[0]} failed ({self.failure[1]})")
        return self.comm

    def allreduce(self, host: np.ndarray, what: str) -> None:
        """host := the sum of every rank's ``host`` (a C-contiguous NumPy array), in place."""
        comm = self._channel()
        self._wait(comm.Iallreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM), what,
                   buffer=host)

    def allgather(self, value: Any, what: str) -> list[Any]:
        """Every rank's ``value`` (any picklable object), in rank order."""
        sizes = np.zeros(self.size, dtype=np.int64)
        data = np.frombuffer(_pickle(value), dtype=np.uint8)
        sizes[self.rank] = data.size
        self.allreduce(sizes, what)
        buf = np.zeros(int(sizes.sum()), dtype=np.uint8)
        start = int(sizes[: self.rank].sum())
        buf[start:start + data.size] = data
        self.allreduce(buf, what)  # each rank's bytes in its own window: the sum gathers
        out, start = [], 0
        for s in sizes:
            out.append(_unpickle(buf[start:start + int(s)].tobytes()))
            start += int(s)
        return out

    def bcast(self, value: Any, what: str, root: int = 0) -> Any:
        """Rank ``root``'s ``value`` on every rank."""
        return self.allgather(value if self.rank == root else None, what)[root]


def _pickle(value: Any) -> bytes:
    import pickle

    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _unpickle(data: bytes) -> Any:
    import pickle

    return pickle.loads(data)  # noqa: S301  (bytes from the job's own ranks)
