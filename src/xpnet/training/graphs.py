"""CUDA graphs for training: an epoch's full batches captured once, then one launch per epoch.

    epoch e:   table_e  -> refill the captured table's device buffers    (2 copies)
               Y, X     := Y[order], X[order]  into the step's workspace (eagerly, as today)
               total    := 0
               full batches k = 0 .. n//B - 1:  one graph launch         (captured once)
               the last partial batch, if any:  eagerly, the same Step
    then, as today: the epoch's one read, validation, callbacks, checkpoints (eagerly).

Why the epoch and not the step is the unit: step k reads 0-d views ``table[k]`` and the batch
``X[a:z]``, different memory for each k but the same for every epoch (the capture contract,
``tests/test_capture_contract.py``). A per-step graph would need a device step counter and
gathers indexed by it; the epoch's full batches need nothing new, and launch once instead of
n/B times. Everything a captured epoch reads is memory that stays put: the parameters and
optimizer state, the :class:`Step`'s gradients, workspace and loss accumulator (kept here
with the graph), the captured :class:`StepTable` (refilled each epoch) and the permuted X, Y
(workspace buffers; with ``shuffle=False`` copies of X, Y owned here, never the caller's).

Lifecycle, per network and (shapes, options) — :meth:`EpochGraph.key`: the first epoch runs
eagerly (the warm-up: every buffer and library handle is made), the second is captured and
replayed, later ones replay. A new batch size, row count, dtype, option, optimizer or TF32
setting starts over (re-capture); so does anything that replaces the optimizer's state
(:meth:`EpochGraph.invalidate`). A stream of ``partial_fit`` calls with equal-sized data keeps
the graph between calls (:func:`driver_for`), so it replays.

Whether a fit captures: ``graphs`` (the estimator's parameter) and :func:`decide`. The graph
path issues the same calls as the eager loop, plus the two table copies (and, without
shuffling, the two input copies): ``tests/test_graphs.py`` proves it on torch's CPU with the
capture emulated (:func:`xpnet.backends.graphs.emulated`), and that the models are bit for
bit the eager ones.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Sequence

from xpnet.backends.graphs import graph_kernels, graph_support, make_capture
from xpnet.training.network import Network
from xpnet.training.progress import Settings
from xpnet.training.step import Step
from xpnet.training.step_table import StepTable

__all__ = ["EpochGraph", "decide", "driver_for", "driver_of", "release"]

AUTO = ("graphs='auto' runs eagerly until CUDA graphs are verified on a GPU (graphs=True "
        "captures)")

_DRIVERS: "weakref.WeakKeyDictionary[Network, EpochGraph]" = weakref.WeakKeyDictionary()


def decide(option: Any, backend: Any, *, data_kind: str = "resident",
           distributed: bool = False) -> tuple[bool, str]:
    """(capture?, why) for ``graphs=option`` on ``backend``; ``graphs=True`` where a capture is
    impossible raises ValueError saying why (nothing runs eagerly behind the user's back)."""
    if option is False:
        return False, "graphs=False"
    ok, why = graph_support(backend)
    if option == "auto":
        return False, AUTO + ("" if ok else f"; and here {why}")
    problems = [] if ok else [why]
    if distributed:
        problems.append("data-parallel training reduces the gradients with a host-driven "
                        "collective inside each step")
    if data_kind != "resident":
        problems.append(f"X is {data_kind} from the host; a captured epoch needs X on the "
                        "device (a dense array that fits there)")
    if problems:
        raise ValueError("graphs=True cannot capture this fit: " + "; ".join(problems)
                         + ". Pass graphs=False (or 'auto') to train eagerly.")
    return True, why


def driver_for(net: Network) -> "EpochGraph":
    """The network's :class:`EpochGraph`, made on first use and kept while the network lives
    (or until :func:`release`)."""
    found = _DRIVERS.get(net)
    if found is None:
        found = _DRIVERS[net] = EpochGraph(net.backend)
    return found


def driver_of(net: Network) -> "EpochGraph | None":
    """The network's :class:`EpochGraph` if it has one (tests, diagnostics)."""
    return _DRIVERS.get(net)


def release(net: Network) -> None:
    """Drop the network's graph, step and buffers (a fit call's end; partial_fit keeps them)."""
    _DRIVERS.pop(net, None)


def _step_key(optimizer: Any, s: Settings) -> tuple:
    """What a Step bakes in: the optimizer (its state buffers) and the constants it uses."""
    consts = tuple(getattr(optimizer, a, None)
                   for a in ("beta_1", "beta_2", "epsilon", "momentum", "nesterov"))
    return (optimizer, type(optimizer).__name__, consts, s.alpha,
            None if s.dropout is None else tuple(s.dropout), s.clip_norm, s.loss_scale, s.kind)


class EpochGraph:
    """One network's captured epoch: its :class:`Step`, captured table, inputs and graph."""

    def __init__(self, backend: Any) -> None:
        self.capture = make_capture(backend)
        self.kernels = graph_kernels(backend)
        self.xp = backend.xp
        self.captures = 0        # captures made (tests: re-capture only when the key changes)
        self.replays = 0         # graph launches
        self._step: Step | None = None
        self._step_key: tuple | None = None
        self._reset(None)

    def _reset(self, key: tuple | None) -> None:
        self._key, self._graph, self._warm = key, None, False
        self._table: StepTable | None = None
        self._inputs: dict[str, Any] = {}

    def invalidate(self) -> None:
        """Forget the graph and step (the optimizer's or the parameters' buffers changed)."""
        self._step, self._step_key = None, None
        self._reset(None)

    def step(self, net: Network, optimizer: Any, settings: Settings) -> Step:
        """The :class:`Step` for this fit call: the kept one while its key holds."""
        key = _step_key(optimizer, settings)
        if self._step is None or self._step_key != key:
            self._step = Step(net, optimizer, settings, kernels=self.kernels)
            self._step_key = key
            self._reset(None)
        return self._step

    def key(self, spans: Sequence[tuple[int, int, int]], table: StepTable, X: Any, Y: Any,
            batch_size: int, weighted: bool) -> tuple:
        """What a capture depends on besides the step: shapes, batches, table, TF32."""
        return (self._step_key, len(spans), batch_size, table.order is None, table.has_keys,
                weighted, tuple(X.shape), str(X.dtype), tuple(Y.shape), self.capture.key())

    def _input(self, name: str, arr: Any, owned: bool) -> Any:
        """The graph's input ``name``: ``arr`` itself when it is ours (a workspace buffer) the
        first time, else a buffer of ours holding a copy of it."""
        held = self._inputs.get(name)
        if held is None:
            held = arr if owned else self.xp.empty_like(arr)
            self._inputs[name] = held
        if held is not arr:
            held[...] = arr
        return held

    def epoch(self, spans: Sequence[tuple[int, int, int]], table: StepTable, *, X: Any, Y: Any,
              batch_size: int, weighted: bool, stop: Callable[[], bool], bar: Any = None
              ) -> tuple[Any, int]:
        """One epoch (see the module doc): (sum of m_B J_B on the device, batches done)."""
        step, xp = self._step, self.xp
        if step is None:
            raise RuntimeError("EpochGraph.step() must be called before epoch()")
        key = self.key(spans, table, X, Y, batch_size, weighted)
        if key != self._key:
            self._reset(key)
        if self._table is None:
            self._table = table
        else:
            self._table.refill(table)
        T, K, ws = self._table, step.kernels, step.ws
        # the eager loop's order: Y gathered, total := 0, X gathered (xpnet.training.loop)
        if T.order is not None:
            Y = K.take_rows(Y, T.order, xp=xp, ws=ws, role="Y")
        step.start_epoch()
        if T.order is not None:
            X = K.take_rows(X, T.order, xp=xp, ws=ws, role="X")
        Xs = self._input("X", X, owned=T.order is not None)
        Ys = self._input("Y", Y, owned=T.order is not None)
        total = step.total

        def run(k: int) -> None:  # the eager loop's body, call for call
            a, z, m_global = spans[k]
            Xb, Yb = Xs[a:z, :].T, Ys[a:z, :].T
            w = T.weights(a, z) if weighted else None
            acc = total
            acc += step(Xb, Yb, k, T, w, m_global)

        full = sum(1 for a, z, _ in spans if z - a == batch_size)

        def full_batches() -> None:
            for k in range(full):
                run(k)

        if full:
            if self._graph is not None:
                self._graph.replay()
                self.replays += 1
            elif self._warm:
                self._graph = self.capture.capture(full_batches)
                self.captures += 1
                self._graph.replay()
                self.replays += 1
            else:
                self.capture.warm(full_batches)
                self._warm = True
        done = full
        if bar is not None and full:
            bar.update(full)
        for k in range(full, len(spans)):
            if stop():
                break
            run(k)
            done += 1
            if bar is not None:
                bar.update(1)
        return total, done
