"""The training loop: epochs of mini-batch steps with the data on the device.

    each epoch:  order := order[rng.permutation(n)]       (scikit-learn's shuffle of its
                                                            sample_idx: order starts as 0..n-1
                                                            at each fit call; host, moved once)
                 X, Y := X[order], Y[order]                (once; batches are contiguous slices)
                 seed = rng.seed63()                       (with dropout: the epoch's mask seed)
                 table := StepTable(order, lr_t..., keys(seed, k, l), s)  (host maths, the
                                                            epoch's uploads: xpnet.training.
                                                            step_table)
        each batch B = rows a:b (m_B examples), step k:
            S += train_step(X[a:b].T, Y[a:b].T, table[k])  (xpnet.core.step: value and gradient,
                                                            clipping, the optimizer's update,
                                                            on flat buffers; every per-step
                                                            number a 0-d view of the table)
        loss = S / n      <- the epoch's only read from the device, together with the
                             validation loss and score and a finiteness flag of W, b

The equations are the core's (:mod:`xpnet.core.step` and what it calls); this module only
drives them through the backend's kernels, keeps
the bookkeeping scikit-learn's ``_fit_stochastic`` keeps, and makes a run survive what
happens to long runs: divergence (stopped with the last finite parameters), Ctrl-C (stopped
after the current batch) and running out of device memory (a clear error).
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
import warnings
from functools import partial
from typing import Any, Callable, Sequence

import numpy as np

from xpnet.backends import device_context, is_out_of_memory, to_numpy
from xpnet.errors import NON_FINITE, DivergenceError
from xpnet.training import graphs
from xpnet.training.progress import Settings, TrainingState, memory_estimate, out_of_memory
from xpnet.training.data import DataSource
from xpnet.training.step import Step, step_kernels
from xpnet.training.step_table import StepTable
from xpnet.training.validation import ShardedValidation, ValidationPass

__all__ = ["Trainer"]


class _InterruptFlag:
    """Ctrl-C sets ``raised`` (the loop stops after the current batch) instead of raising.

    Installed only in the main thread and only over Python's default SIGINT handler; the
    previous handler is restored on exit. A second Ctrl-C raises KeyboardInterrupt at once.
    """

    def __init__(self) -> None:
        self.raised = False
        self._previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True

    def __enter__(self) -> "_InterruptFlag":
        if threading.current_thread() is threading.main_thread():
            try:
                if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                    self._previous = signal.signal(signal.SIGINT, self._handler)
            except (ValueError, OSError):  # not supported here (embedded interpreters)
                self._previous = None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def _progress_bar(total: int, initial: int, desc: str) -> Any:
    """A tqdm bar over epochs, or None when tqdm is not installed."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, desc=desc, unit="epoch", leave=True,
                dynamic_ncols=True)


# --------------------------------------------------------------------------- the loop
class Trainer:
    """One call of fit / partial_fit: runs epochs over ``X``, ``Y`` (rows are examples, on
    ``state.net.backend``) from ``state`` (network, optimizer, schedule, progress, random
    stream, best weights, row order: a :class:`TrainingState`) until max_iter, convergence,
    divergence or Ctrl-C.

    ``X_val``, ``Y_val`` (``validation_data`` or the early-stopping split) are scored after
    every epoch, inside the epoch's one host read; with early stopping the best W, b are kept
    in ``best``. Epochs without them append NaN to validation curves that already exist, so
    the curves keep one entry per epoch, as ``loss_curve``. ``on_epoch_end(trainer, last)``
    runs after each epoch's bookkeeping (the estimator writes checkpoints there); ``last`` is
    True for the fit's final epoch. ``sample_weight`` / ``val_weight``: host (n,) weights of
    the training and validation rows (scikit-learn's semantics), or None. ``stream_rows``: X
    is a host NumPy array bigger than the device and goes up ``stream_rows`` rows (whole
    batches) at a time, with the same batches as on the device (:mod:`xpnet.training.data`).
    """

    def __init__(self, state: TrainingState, settings: Settings, X: Any, Y: Any,
                 X_val: Any = None, Y_val: Any = None,
                 on_epoch_end: Callable[["Trainer", bool], None] | None = None,
                 stream_rows: int | None = None, sample_weight: np.ndarray | None = None,
                 val_weight: np.ndarray | None = None, callbacks: Sequence[Any] = (),
                 owner: Any = None, plan: Any = None) -> None:
        net = state.net
        self.net, self.optimizer, self.schedule = net, state.optimizer, state.schedule
        self.progress, self.rng, self.settings = state.progress, state.rng, settings
        self.X, self.Y, self.X_val, self.Y_val = X, Y, X_val, Y_val
        self.best = state.best
        order = state.order
        self.on_epoch_end = on_epoch_end
        self.callbacks, self.owner = list(callbacks), owner  # owner: what callbacks are given
        self.plan = plan  # data parallel (xpnet.training.distributed.Plan), or None
        if plan is not None:
            plan.interrupted = lambda: self._interrupt.raised
        self._final: list[Callable[[], None]] = []
        self._validation = None
        if X_val is not None:
            kind = ValidationPass if plan is None else partial(ShardedValidation, plan=plan)
            self._validation = kind(X_val, Y_val, net.g, settings.kind, backend=net.backend,
                                    kernels=net.kernels, dims=net.dims,
                                    loss_scale=settings.loss_scale, weights=val_weight)
        self.stop_reason: str | None = None
        self.n = int(X.shape[0])
        # sample weights: host float64 (n,) for the per-batch sums, and a device column
        self.sample_weight = None if sample_weight is None else np.asarray(sample_weight,
                                                                            np.float64)
        # the rows' order after the last shuffle (scikit-learn's sample_idx)
        self.order = np.arange(self.n) if order is None else np.asarray(order)
        if self.order.shape != (self.n,):
            raise ValueError(f"order has {self.order.shape[0]} rows; the data has {self.n}")
        # X on the host while the network is on a device: streamed in chunks of this many rows
        self.stream_rows: int | None = stream_rows
        self.data = DataSource(X, net.backend, stream_rows)  # where X lives, decided once
        self._interrupt = _InterruptFlag()
        self.step: Step | None = None  # built by run(): buffers, workspace, accumulator
        self._graphs: graphs.EpochGraph | None = None  # settings.graphs: the captured epoch
        self.graphs_reason = ""  # why the fit captures or runs eagerly

    # ---------------------------------------------------------------- one step, one epoch
    def _epoch(self, check_each: bool = False) -> tuple[Any, int, int | None]:
        """Run one epoch: (sum of m_B J_B on the device, batches done, first bad batch or None).

        ``check_each`` (replaying a diverged epoch) reads J and a finiteness flag after every
        batch and stops before the first step whose loss or result is not finite.
        """
        net, xp, s = self.net, self.net.backend.xp, self.settings
        step = self.step
        K, ws = step.kernels, step.ws  # the step's kernels gather into the step's workspace
        Y, n, bs = self.Y, self.n, s.batch_size
        host_order = None
        if s.shuffle:
            self.order = host_order = self.order[self.rng.permutation(n)]
        plan = self.plan
        if plan is None:
            spans = [(a, min(a + bs, n), min(a + bs, n) - a) for a in range(0, n, bs)]
        else:  # this rank's part of each global batch, and the global batch's rows
            spans = plan.batches(n)
        seed = self.rng.seed63() if s.dropout else None
        table = self._table(spans, host_order, seed)  # the epoch's uploads, before the loop
        if self._graphs is not None and not check_each:  # full batches as one captured graph
            return self._graph_epoch(spans, table)
        if table.order is not None:
            Y = K.take_rows(Y, table.order, xp=xp, ws=ws, role="Y")
        step.start_epoch()
        total = step.total
        done = 0
        batches = self.data.batches(spans, table.order, host_order, bs, kernels=K, ws=ws)
        steps = self._batch_bar(len(spans)) if s.bars >= 2 and not check_each else None
        for start, stop, Xrows in batches:
            if steps is not None:  # counts batches only: no read from the device
                steps.update(1)
            Xb, Yb = Xrows.T, Y[start:stop, :].T
            m_global = spans[done][2]
            w = None if self.sample_weight is None else table.weights(start, stop)
            if check_each:
                before = net.copy(), self.optimizer.state_dict()
                S = step(Xb, Yb, done, table, w, m_global)
                if not (math.isfinite(float(S)) and bool(net.all_finite())):
                    (W, b), state = before
                    net.assign(W, b)
                    self.optimizer.load_state_dict(state)
                    self.optimizer.advance(done)
                    return total, done, done + 1
                total += S
            else:
                total += step(Xb, Yb, done, table, w, m_global)
            done += 1
            if plan.stop_requested if plan is not None else self._interrupt.raised:
                break  # data parallel: every rank stops after the same step
        self.optimizer.advance(done)
        if steps is not None:
            steps.close()
        return total, done, None

    def _graph_epoch(self, spans: list[tuple[int, int, int]], table: StepTable
                     ) -> tuple[Any, int, None]:
        """The epoch through :class:`xpnet.training.graphs.EpochGraph` (same calls, same
        results; Ctrl-C is seen after the full batches)."""
        s = self.settings
        bar = self._batch_bar(len(spans)) if s.bars >= 2 else None
        total, done = self._graphs.epoch(
            spans, table, X=self.X, Y=self.Y, batch_size=s.batch_size,
            weighted=self.sample_weight is not None, stop=lambda: self._interrupt.raised,
            bar=bar)
        self.optimizer.advance(done)
        if bar is not None:
            bar.close()
        return total, done, None

    def _table(self, spans: list[tuple[int, int, int]], host_order: np.ndarray | None,
               seed: int | None) -> StepTable:
        """The epoch's :class:`StepTable`: the optimizer's per-step scalars, dropout's keys and,
        with sample weights, s = w / sum_B w and the L2 coefficients alpha/2 c, alpha/m c
        (c = m / sum_B w, scikit-learn's alpha / sum_B w), computed on the host."""
        s, net = self.settings, self.net
        rows = self.optimizer.step_scalars(len(spans))
        layers = [l for l in range(1, net.L) if s.dropout and s.dropout[l - 1] > 0.0]
        sw = self.sample_weight
        s_rows = l2_rows = None
        if sw is not None:
            if host_order is not None:
                sw = sw[host_order]
            # sum_B w per batch on the host (data parallel: summed over the ranks, once)
            sums = np.array([sw[a:z].sum() for a, z, _ in spans])
            if self.plan is not None:
                sums = self.plan.sum_host(sums, "the global batches' weights")
            # a batch of zero weights: no data gradient
            inv = np.array([1.0 / float(t) if t > 0 else 0.0 for t in sums])
            s_rows = np.concatenate([sw[a:z] * inv[k] for k, (a, z, _) in enumerate(spans)]) \
                if spans else np.zeros(0)
            l2_rows = []
            for k, (_, _, m_global) in enumerate(spans):
                a_k = s.alpha * (m_global * float(inv[k]))
                l2_rows.append([0.5 * a_k, a_k / m_global])
        return StepTable(net.backend, self._dtype, order=host_order, optimizer_rows=rows,
                         seed=seed, layers=layers, l2_rows=l2_rows, s=s_rows)

    def _batch_bar(self, n_batches: int) -> Any:
        """A transient tqdm bar over one epoch's batches (verbose=2), or None without tqdm."""
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return None
        return tqdm(total=n_batches, desc="batches", unit="batch", leave=False, position=1,
                    dynamic_ncols=True)

    # ---------------------------------------------------------------- the epochs
    def run(self) -> str:
        """Run the epochs; returns why it stopped: "max_iter", "converged", "interrupted",
        "epoch" (partial_fit's single epoch) or "diverged" (with early stopping: the epoch's
        validation score is nan, as scikit-learn's, and the best weights are kept). Raises
        DivergenceError (without early stopping) / DeviceMemoryError.

        The kernels' workspace (NumPy: the permuted data, Z, A, dZ, dA) is held for this call
        and dropped when it returns; nothing that outlives a step points there.
        """
        s, p, net = self.settings, self.progress, self.net
        self._dims = net.dims
        self._dtype = str(net.W[1].dtype).rsplit(".", 1)[-1]
        on, self.graphs_reason = graphs.decide(s.graphs, net.backend, data_kind=self.data.kind,
                                               distributed=self.plan is not None)
        self._graphs = graphs.driver_for(net) if on else None
        kernels = step_kernels(net.backend, s.kernels)
        self.step = (Step(net, self.optimizer, s, self.plan, kernels=kernels)
                     if self._graphs is None
                     else self._graphs.step(net, self.optimizer, s))
        if s.verbose and (on or s.graphs is True or graphs.graph_support(net.backend)[0]):
            print(f"CUDA graphs: {'on' if on else 'off'} ({self.graphs_reason})", flush=True)
        bar = None
        if s.bars:
            bar = _progress_bar(s.max_iter if not s.incremental else p.n_iter + 1, p.n_iter,
                                s.name)
        self._final: list[Callable[[], None]] = []  # what to say once the bar is closed
        reason = "error"
        for cb in self.callbacks:
            cb.on_train_begin(self.owner)
        try:
            with self._interrupt, device_context(net.backend), \
                    np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                reason = self._run(bar)
        finally:
            self.step = None  # its buffers and workspace go with the call
            if self._graphs is not None and not (s.incremental and reason == "epoch"):
                graphs.release(net)  # partial_fit keeps the graph for the next call
            if bar is not None:
                if reason in ("converged", "callback", "interrupted", "diverged"):
                    bar.total = bar.n  # stopped early: the bar ends full, not frozen at 65%
                    bar.refresh()
                bar.close()
            for say in self._final:  # the reason, after the bar, never inside it
                say()
            for cb in self.callbacks:
                cb.on_train_end(self.owner, reason)
        self.stop_reason = reason
        return reason

    def _snapshot(self) -> tuple[Any, Any, dict, np.ndarray]:
        return self.net.copy(), self.optimizer.state_dict(), self.rng.state, self.order

    def _restore(self, snap: tuple[Any, Any, dict, np.ndarray]) -> None:
        (W, b), state, rng_state, self.order = snap
        self.net.assign(W, b)
        self.optimizer.load_state_dict(state)  # new state buffers: a captured graph is stale
        if self._graphs is not None:
            self._graphs.invalidate()
        self.rng.state = rng_state

    def _run(self, bar: Any) -> str:
        s, p, net = self.settings, self.progress, self.net
        while s.incremental or p.n_iter < s.max_iter:
            epoch = p.n_iter + 1
            t0 = time.perf_counter()
            snap = self._snapshot()
            try:
                total, done, _ = self._epoch()
            except KeyboardInterrupt:  # no handler of ours (another thread, custom handler)
                self._restore(snap)
                self._warn_interrupt(epoch, None)
                return "interrupted"
            except Exception as exc:
                if is_out_of_memory(exc):
                    self._restore(snap)
                    raise out_of_memory(exc, f"training epoch {epoch}", net.backend,
                                        s.batch_size, self._needed()) from exc
                raise
            stopped = self.plan.stop_requested if self.plan is not None \
                else self._interrupt.raised
            if stopped:
                self._warn_interrupt(epoch, done)
                return "interrupted"
            host = self._epoch_read(total)
            loss = float(host[0])
            if not (math.isfinite(loss) and host[-1] == 1):
                if self.schedule.early_stopping and self.X_val is not None:
                    return self._diverged_early_stopping(snap, loss, time.perf_counter() - t0)
                self._diverged(epoch, snap, loss)
            elapsed = time.perf_counter() - t0
            stop = self._bookkeeping(epoch, loss, host, elapsed, bar)
            by_callback = self._callbacks_stop(dict(p.history[-1]))
            self.stop_reason = ("converged" if stop else "callback" if by_callback
                                else "epoch" if s.incremental
                                else "max_iter" if p.n_iter >= s.max_iter else None)
            if self.on_epoch_end is not None:
                self.on_epoch_end(self, self.stop_reason is not None)
            if self.stop_reason is not None:
                return self.stop_reason
        return "max_iter"

    def _bookkeeping(self, epoch: int, loss: float, host: np.ndarray, elapsed: float,
                     bar: Any) -> bool:
        """scikit-learn's end of an epoch: curves, the no-improvement count, the schedule and
        the best weights; True when training should stop."""
        s, p, net = self.settings, self.progress, self.net
        p.n_iter += 1
        p.t += self.n
        p.loss = loss
        p.loss_curve.append(loss)
        val_loss = val_score = None
        if self.X_val is not None:
            val_loss, val_score = float(host[1]), float(host[2])
            p.val_loss_curve.append(val_loss)
            p.val_scores.append(val_score)
        elif p.val_loss_curve is not None:  # one entry per epoch, as loss_curve
            p.val_loss_curve.append(math.nan)
            p.val_scores.append(math.nan)
        end = self.schedule.epoch_ends(self.optimizer, samples_seen=p.t, loss=loss,
                                       val_score=val_score)
        if end.improved:
            self.best = net.copy()
        p.history.append({"epoch": len(p.history) + 1, "loss": loss, "val_loss": val_loss,
                          "val_score": val_score, "time": elapsed,
                          "learning_rate": self.optimizer.learning_rate})
        if s.verbose or s.bars:
            self._report(bar, epoch, loss, val_loss, val_score, elapsed, end.message, end.stop)
        return end.stop

    def _epoch_read(self, total: Any) -> np.ndarray:
        """[loss, val_loss, val_score, finite] of the epoch on the host: the one read (data
        parallel: the validation sums of every rank's shard added, one more collective)."""
        net, xp = self.net, self.net.backend.xp
        dt = net.W[1].dtype
        n = self.n if self.plan is None else self.plan.n_global
        values = [total / n]
        if self.X_val is not None and self.plan is None:
            values.extend(self._validation.evaluate(net.W, net.b))
        parts = None
        if self.X_val is not None and self.plan is not None:
            parts = self._validation.parts(net.W, net.b)
        values.append(net.all_finite())
        flat = xp.stack([xp.astype(v, dt) for v in values])
        if parts is None:
            return to_numpy(flat)  # the one read
        host = to_numpy(xp.concat([flat, xp.astype(parts, dt)]))
        sums = self.plan.sum_host(host[len(values):], "the validation sums")
        return np.concatenate([host[:1], self._validation.finish(sums), host[len(values) - 1:
                                                                             len(values)]])

    def _callbacks_stop(self, logs: dict[str, Any]) -> bool:
        """Every callback's on_epoch_end (all run, in order); True when one asks to stop."""
        stop = False
        for cb in self.callbacks:
            if cb.on_epoch_end(self.owner, logs):
                stop = True
                text = getattr(cb, "message", None)
                if (self.settings.verbose or self.settings.bars) and text:
                    self._final.append(lambda t=f"{type(cb).__name__}: {text}": print(t, flush=True))
        return stop

    def _report(self, bar: Any, epoch: int, loss: float, val_loss: float | None,
                val_score: float | None, elapsed: float, message: str | None,
                stop: bool = False) -> None:
        """verbose: scikit-learn's lines ("Iteration 3, loss = 0.69314718", "Validation score:
        0.950000", why the learning rate changed or training stopped) on stdout; progress_bar:
        the bar shows the loss (without tqdm, the lines stand in for it)."""
        s = self.settings
        lines = []
        if s.verbose or bar is None:
            lines.append("Iteration %d, loss = %.8f" % (epoch, loss))
            if val_score is not None:
                lines.append("Validation score: %f" % val_score)
        if message and (s.verbose or bar is None):
            lines.append(message)
        elif message and stop:  # the bar alone: why it stopped, after the bar is closed
            self._final.append(lambda: print(message, flush=True))
        if bar is None:
            for line in lines:
                print(line, flush=True)
            return
        metrics = {"loss": f"{loss:.5g}"}
        if val_loss is not None:
            metrics["val_loss"] = f"{val_loss:.5g}"
            metrics["val_score"] = f"{val_score:.4f}"
        bar.set_postfix(metrics, refresh=False)
        bar.update(1)
        for line in lines:
            bar.write(line)

    # ---------------------------------------------------------------- what can go wrong
    def _needed(self) -> int:
        itemsize = 4 if self._dtype == "float32" else 8
        rows = self.n if self.stream_rows is None else self.stream_rows
        data = (rows * int(self.X.shape[1]) + int(self.Y.shape[0]) * int(self.Y.shape[1])
                ) * itemsize
        return data + memory_estimate(self._dims, self.settings.batch_size, itemsize,
                                      self.optimizer.name)

    def _diverged_early_stopping(self, snap: tuple[Any, Any, dict, np.ndarray], loss: float,
                                 elapsed: float) -> str:
        """With early stopping a non-finite loss is no error (scikit-learn): the epoch is
        recorded with a nan validation score and training stops; the best weights (or, with
        none yet, those from the start of this epoch) are what the estimator keeps."""
        p = self.progress
        p.n_iter += 1
        p.t += self.n
        p.loss = loss
        p.loss_curve.append(loss)
        p.val_loss_curve.append(math.nan)
        p.val_scores.append(math.nan)
        p.history.append({"epoch": len(p.history) + 1, "loss": loss, "val_loss": math.nan,
                          "val_score": math.nan, "time": elapsed,
                          "learning_rate": self.optimizer.learning_rate})
        if self.best is None:
            self.best = snap[0]
        if self.settings.verbose:
            print("Iteration %d, loss = %.8f\nValidation score: nan" % (p.n_iter, loss),
                  flush=True)
        return "diverged"

    def _diverged(self, epoch: int, snap: tuple[Any, Any, dict], loss: float) -> None:
        """Find the first bad batch by replaying the epoch from its start (same permutation
        and dropout masks), keep the parameters before it, and raise DivergenceError."""
        self._restore(snap)
        n_batches = -(-self.n // self.settings.batch_size)
        _, done, bad = self._epoch(check_each=True)
        where = f"epoch {epoch}"
        if bad is None:  # not reproduced: keep the parameters from the start of the epoch
            self._restore(snap)
            kept = f"the parameters from the start of epoch {epoch}"
        else:
            where += f", batch {bad} of {n_batches}"
            kept = (f"the last finite parameters (after batch {bad - 1} of epoch {epoch})"
                    if bad > 1 else f"the parameters from the start of epoch {epoch}")
        what = "the loss" if not math.isfinite(loss) else "a parameter"
        value = loss if not math.isfinite(loss) else "not finite"
        lr = self.optimizer.learning_rate
        raise DivergenceError(
            f"{NON_FINITE} Training diverged at {where}: {what} became {value}. The model "
            f"keeps {kept} and "
            f"stays usable. Try a lower learning_rate_init (now {lr:g}), dtype='float64', "
            f"clip_norm (e.g. 1.0), or standardized features.", epoch, bad)

    def _warn_interrupt(self, epoch: int, done: int | None) -> None:
        """The Ctrl-C warning, issued once the progress bar is closed."""
        self._final.append(lambda: self._interrupt_warning(epoch, done))

    def _interrupt_warning(self, epoch: int, done: int | None) -> None:
        n_batches = -(-self.n // self.settings.batch_size)
        if done is None:
            where = f"during epoch {epoch}; the model keeps the parameters from its start"
        else:
            where = (f"in epoch {epoch} after batch {done} of {n_batches}; the model keeps the "
                     f"parameters after that batch")
        warnings.warn(f"Training interrupted by user (Ctrl-C) {where}. The history covers the "
                      f"{self.progress.n_iter} completed epoch(s); the model is usable.",
                      UserWarning, stacklevel=6)
        sys.stderr.flush()
