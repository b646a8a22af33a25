"""lr = lr_init ("constant"), lr_init / (t + 1)^power_t ("invscaling"), lr /= 5 on a plateau
("adaptive"): scikit-learn's MLP learning-rate schedules and its epoch-end bookkeeping.

How a training loop drives them (scikit-learn's ``_fit_stochastic``, step for step)::

    samples_seen = 0
    for epoch in ...:
        for X_batch, Y_batch in ...:
            ...                               # value and gradient, transforms
            opt.step(params, grads)           # per step: nothing else changes per step
        samples_seen += n_samples             # scikit-learn's t_
        end = schedule.epoch_ends(opt, samples_seen=samples_seen, loss=epoch_loss,
                                  val_score=val_score)  # val_score only with early stopping
        if end.improved: ...                  # early stopping: keep a copy of the best weights
        if end.message and verbose: print(end.message)
        if end.stop: break

``epoch_ends`` is, in order, scikit-learn's ``_update_no_improvement_count``, the optimizer's
``iteration_ends(t_)`` (invscaling: lr = lr_init / (t_ + 1) ** power_t, t_ = samples seen) and,
once the no-improvement count exceeds ``n_iter_no_change``, ``trigger_stopping`` (adaptive:
lr /= 5 and carry on, unless lr <= 1e-6; otherwise stop). As in scikit-learn, schedules act on
SGD only: Adam keeps its ``learning_rate`` and always stops when the count runs out.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from xpnet.core.optim.base import Optimizer, checked_float
from xpnet.core.optim.sgd import SGD

__all__ = ["SCHEDULES", "EpochEnd", "LearningRateSchedule"]

SCHEDULES = ("constant", "invscaling", "adaptive")


class EpochEnd(NamedTuple):
    """What :meth:`LearningRateSchedule.epoch_ends` decided.

    stop: training should stop now.  improved: (early stopping) the validation score is a new
    best, so keep a copy of the weights.  message: scikit-learn's verbose line, or None.
    """

    stop: bool
    improved: bool
    message: str | None


class LearningRateSchedule:
    """lr = lr_init ("constant");  lr = lr_init / (t + 1) ** power_t, t = samples seen
    ("invscaling");  lr /= 5 each time the no-improvement count exceeds ``n_iter_no_change``
    ("adaptive") — scikit-learn's MLP semantics, for SGD only.

    Holds scikit-learn's epoch-end bookkeeping: ``best_loss`` (training loss), or with
    ``early_stopping`` ``best_validation_score``, and ``no_improvement_count``.
    """

    def __init__(self, name: str = "constant", *, power_t: float = 0.5, tol: float = 1e-4,
                 n_iter_no_change: int = 10, early_stopping: bool = False) -> None:
        if name not in SCHEDULES:
            raise ValueError(f"unknown learning-rate schedule {name!r}; expected one of "
                             f"{', '.join(SCHEDULES)}")
        if isinstance(n_iter_no_change, bool) or not isinstance(n_iter_no_change, int) \
                or n_iter_no_change < 1:
            raise ValueError(f"n_iter_no_change must be an integer >= 1; got {n_iter_no_change!r}")
        self.name = name
        self.power_t = checked_float("power_t", power_t, low=0.0, high_open=True)
        self.tol = checked_float("tol", tol, low=0.0, high_open=True)
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = bool(early_stopping)
        self.best_loss = math.inf
        self.best_validation_score = -math.inf
        self.no_improvement_count = 0

    def iteration_ends(self, optimizer: Optimizer, time_step: int) -> None:
        """invscaling: lr = lr_init / (time_step + 1) ** power_t  (time_step = samples seen)."""
        if self.name == "invscaling" and isinstance(optimizer, SGD):
            optimizer.learning_rate = optimizer.learning_rate_init / (time_step + 1) ** self.power_t

    def trigger_stopping(self, optimizer: Optimizer) -> tuple[bool, str]:
        """(stop, what happened): adaptive SGD divides lr by 5 unless lr <= 1e-6; else stop."""
        if self.name != "adaptive" or not isinstance(optimizer, SGD):
            return True, "Stopping."
        if optimizer.learning_rate <= 1e-6:
            return True, "Learning rate too small. Stopping."
        optimizer.learning_rate = optimizer.learning_rate / 5.0
        return False, "Setting learning rate to %f" % optimizer.learning_rate

    def update_no_improvement_count(self, *, loss: float | None = None,
                                    val_score: float | None = None) -> bool:
        """Count epochs without improvement by ``tol``; True when ``val_score`` is a new best."""
        if self.early_stopping:
            if val_score is None:
                raise ValueError("early_stopping=True: pass val_score (the validation score)")
            score = float(val_score)
            if score < self.best_validation_score + self.tol:
                self.no_improvement_count += 1
            else:
                self.no_improvement_count = 0
            if score > self.best_validation_score:
                self.best_validation_score = score
                return True
            return False
        if loss is None:
            raise ValueError("pass loss (the epoch's training loss)")
        loss = float(loss)
        if loss > self.best_loss - self.tol:
            self.no_improvement_count += 1
        else:
            self.no_improvement_count = 0
        if loss < self.best_loss:
            self.best_loss = loss
        return False

    def epoch_ends(self, optimizer: Optimizer, *, samples_seen: int, loss: float | None = None,
                   val_score: float | None = None) -> EpochEnd:
        """Everything scikit-learn does after an epoch's batches, in its order (see module doc)."""
        improved = self.update_no_improvement_count(loss=loss, val_score=val_score)
        self.iteration_ends(optimizer, samples_seen)
        if self.no_improvement_count <= self.n_iter_no_change:
            return EpochEnd(False, improved, None)
        what = "Validation score" if self.early_stopping else "Training loss"
        msg = ("%s did not improve more than tol=%f for %d consecutive epochs."
               % (what, self.tol, self.n_iter_no_change))
        stop, outcome = self.trigger_stopping(optimizer)
        if not stop:
            self.no_improvement_count = 0
        return EpochEnd(stop, improved, f"{msg} {outcome}")

    def state_dict(self) -> dict[str, Any]:
        """The schedule's settings and bookkeeping, as Python scalars."""
        return {"name": self.name, "power_t": self.power_t, "tol": self.tol,
                "n_iter_no_change": self.n_iter_no_change, "early_stopping": self.early_stopping,
                "best_loss": self.best_loss, "best_validation_score": self.best_validation_score,
                "no_improvement_count": self.no_improvement_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; checked first, nothing changes on error."""
        try:
            new = LearningRateSchedule(state["name"], power_t=state["power_t"], tol=state["tol"],
                                       n_iter_no_change=state["n_iter_no_change"],
                                       early_stopping=state["early_stopping"])
            new.best_loss = float(state["best_loss"])
            new.best_validation_score = float(state["best_validation_score"])
            count = state["no_improvement_count"]
        except KeyError as exc:
            raise ValueError(f"learning-rate schedule state lacks {exc.args[0]!r}") from None
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"no_improvement_count must be an integer >= 0; got {count!r}")
        new.no_improvement_count = count
        self.__dict__.update(new.__dict__)

    def __repr__(self) -> str:
        return (f"LearningRateSchedule({self.name!r}, power_t={self.power_t}, tol={self.tol}, "
                f"n_iter_no_change={self.n_iter_no_change})")
