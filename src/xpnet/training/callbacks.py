"""Per-epoch hooks of ``fit(..., callbacks=[...])``: they see the history and may stop training.

    class Callback:
        on_train_begin(estimator)               before the first epoch of the call
        on_epoch_end(estimator, logs) -> bool   after each epoch's bookkeeping; True stops
        on_train_end(estimator, reason)         after the last epoch (reason: "max_iter",
                                                "converged", "callback", "interrupted", "epoch")

``logs`` is the epoch's entry of ``history_`` (epoch, loss, val_loss, val_score, time,
learning_rate): numbers already on the host, read with the epoch's one device read, so a
callback adds no host synchronisation. Built on them: :class:`EarlyStopping` (Keras' rule:
watch a metric with patience, keep the best weights), :class:`CSVLogger` and
:class:`TensorBoardLogger` (TensorBoard event files, through tensorboardX).
"""

from __future__ import annotations

import csv
import math
import os
from typing import Any

__all__ = ["CSVLogger", "Callback", "EarlyStopping", "TensorBoardLogger"]


class Callback:
    """The hooks; each does nothing unless overridden."""

    def on_train_begin(self, estimator: Any) -> None:
        """Before the first epoch of a fit / partial_fit call."""

    def on_epoch_end(self, estimator: Any, logs: dict[str, Any]) -> bool | None:
        """After an epoch; return True to stop training after it."""
        return None

    def on_train_end(self, estimator: Any, reason: str) -> None:
        """After the call's last epoch, with why training stopped."""


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs; with
    ``restore_best_weights`` the model ends with the weights of its best epoch.

    ``monitor``: "val_loss" (lower is better; needs validation data), "val_score" (higher
    is better) or "loss". Epochs where the metric is missing (no validation data) count as no
    improvement. The best weights are a copy on the device (no host transfer).
    """

    _MODES = {"val_loss": -1.0, "loss": -1.0, "val_score": 1.0}

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 restore_best_weights: bool = True) -> None:
        if monitor not in self._MODES:
            raise ValueError(f"monitor must be one of {', '.join(self._MODES)}; got "
                             f"{monitor!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be an integer >= 1; got {patience!r}")
        if not (isinstance(min_delta, (int, float)) and math.isfinite(min_delta)
                and min_delta >= 0):
            raise ValueError(f"min_delta must be a finite number >= 0; got {min_delta!r}")
        self.monitor, self.patience, self.min_delta = monitor, patience, float(min_delta)
        self.restore_best_weights = bool(restore_best_weights)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None
        self._weights: Any = None

    def on_train_begin(self, estimator: Any) -> None:
        self.best, self.best_epoch, self.wait, self.stopped_epoch = None, None, 0, None
        self._weights = None

    def on_epoch_end(self, estimator: Any, logs: dict[str, Any]) -> bool:
        value = logs.get(self.monitor)
        sign = self._MODES[self.monitor]
        if value is not None and math.isfinite(value) and (
                self.best is None or sign * (value - self.best) > self.min_delta):
            self.best, self.best_epoch, self.wait = float(value), int(logs["epoch"]), 0
            if self.restore_best_weights:
                self._weights = estimator._net.copy()
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = int(logs["epoch"])
            return True
        return False

    def on_train_end(self, estimator: Any, reason: str) -> None:
        if self.restore_best_weights and self._weights is not None:
            estimator._net.assign(*self._weights)
        self._weights = None

    @property
    def message(self) -> str:
        """What happened, for a report."""
        if self.stopped_epoch is None:
            return f"{self.monitor} best {self.best} at epoch {self.best_epoch}"
        return (f"stopped at epoch {self.stopped_epoch}: {self.monitor} did not improve for "
                f"{self.patience} epochs; best {self.best:.6g} at epoch {self.best_epoch}"
                + (" (weights restored)" if self.restore_best_weights else ""))


class CSVLogger(Callback):
    """One CSV row per epoch (epoch, loss, val_loss, val_score, time, learning_rate), written
    and flushed as training goes; ``append`` continues an existing file."""

    FIELDS = ("epoch", "loss", "val_loss", "val_score", "time", "learning_rate")

    def __init__(self, path: str | os.PathLike, append: bool = False) -> None:
        self.path = os.path.expanduser(os.fspath(path))
        self.append = bool(append)
        self._file: Any = None
        self._writer: Any = None

    def on_train_begin(self, estimator: Any) -> None:
        new = not (self.append and os.path.exists(self.path) and os.path.getsize(self.path))
        self._file = open(self.path, "a" if self.append else "w", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=self.FIELDS, extrasaction="ignore")
        if new:
            self._writer.writeheader()

    def on_epoch_end(self, estimator: Any, logs: dict[str, Any]) -> None:
        self._writer.writerow({k: ("" if logs.get(k) is None else logs[k])
                               for k in self.FIELDS})
        self._file.flush()

    def on_train_end(self, estimator: Any, reason: str) -> None:
        if self._file is not None:
            self._file.close()
        self._file = self._writer = None


class TensorBoardLogger(Callback):
    """The epoch's loss, val_loss, val_score and learning_rate as TensorBoard scalars (step =
    epoch) in ``logdir``, through tensorboardX (``pip install 'xpnet[tensorboard]'``); view
    with ``tensorboard --logdir LOGDIR``."""

    TAGS = ("loss", "val_loss", "val_score", "learning_rate")

    def __init__(self, logdir: str | os.PathLike) -> None:
        self.logdir = os.path.expanduser(os.fspath(logdir))
        self._writer: Any = None

    def on_train_begin(self, estimator: Any) -> None:
        try:
            from tensorboardX import SummaryWriter
        except ImportError as exc:
            raise ImportError(f"TensorBoardLogger writes through tensorboardX, which is not "
                              f"installed: pip install tensorboardX (or 'xpnet[tensorboard]') "
                              f"({exc})") from None
        self._writer = SummaryWriter(self.logdir)

    def on_epoch_end(self, estimator: Any, logs: dict[str, Any]) -> None:
        for tag in self.TAGS:
            value = logs.get(tag)
            if value is not None and math.isfinite(value):
                self._writer.add_scalar(tag, value, int(logs["epoch"]))

    def on_train_end(self, estimator: Any, reason: str) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer = None
