"""What each estimator parameter may hold, said once (scikit-learn's ``_parameter_constraints``).

:class:`xpnet.estimators.params.Config` checks a fit's parameters with this table, and
:mod:`xpnet.io.metadata` checks the parameters a model file records with the same table, so
a value fit refuses is refused in a file too, with the same words. A constraint's ``check``
returns the value as a plain Python value (``np.float32(0.1)`` -> ``0.1``) or raises
``ValueError`` saying what was expected; ``describe`` is that expectation alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from xpnet.core.registry import INITS, SCHEDULES, SOLVERS

__all__ = ["CONSTRAINTS", "Either", "Flag", "Interval", "Nullable", "Options", "check"]


@dataclass(frozen=True)
class Interval:
    """A real number (or an integer) in an interval; ``inf``: +inf itself is also allowed
    (``n_iter_no_change=np.inf``, scikit-learn's "never")."""

    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = True
    integer: bool = False
    inf: bool = False

    def describe(self) -> str:
        lo, hi = "(" if self.low_open else "[", ")" if self.high_open else "]"
        what = "an integer" if self.integer else "a number"
        return f"{what} in {lo}{self.low:g}, {self.high:g}{hi}" + (" or inf" if self.inf else "")

    def check(self, name: str, value: Any) -> Any:
        ok = not isinstance(value, (bool, str, np.bool_)) \
            and isinstance(value, (int, float, np.number))
        if ok and self.inf and math.isinf(float(value)) and float(value) > 0:
            return math.inf
        if ok and self.integer:
            ok = math.isfinite(float(value)) and float(value).is_integer()
        if ok:
            x = float(value)
            ok = (not math.isnan(x) and (x > self.low if self.low_open else x >= self.low)
                  and (x < self.high if self.high_open else x <= self.high))
        if not ok:
            raise ValueError(f"{name} must be {self.describe()}; got {value!r}")
        return int(value) if self.integer else float(value)


@dataclass(frozen=True)
class Options:
    """One of a few names (``None`` may be one)."""

    names: tuple
    hint: str = ""

    def describe(self) -> str:
        return "one of " + ", ".join(repr(n) for n in self.names) + self.hint

    def check(self, name: str, value: Any) -> Any:
        if isinstance(value, (str, type(None))) and value in self.names:
            return value
        raise ValueError(f"unknown {name} {value!r}; expected {self.describe()}")


@dataclass(frozen=True)
class Flag:
    """True or False (NumPy's bools too)."""

    def describe(self) -> str:
        return "True or False"

    def check(self, name: str, value: Any) -> bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise ValueError(f"{name} must be {self.describe()}; got {value!r}")


@dataclass(frozen=True)
class Either:
    """The first of two constraints that holds."""

    first: Any
    second: Any

    def describe(self) -> str:
        return f"{self.first.describe()}, or {self.second.describe()}"

    def check(self, name: str, value: Any) -> Any:
        try:
            return self.first.check(name, value)
        except ValueError:
            pass
        try:
            return self.second.check(name, value)
        except ValueError:
            raise ValueError(f"{name} must be {self.describe()}; got {value!r}") from None


def Nullable(constraint: Any) -> Either:
    """None, or what ``constraint`` allows."""
    return Either(Options((None,)), constraint)


#: The parameters with a constraint of one value; the structured ones (hidden_layer_sizes,
#: activation, dropout, random_state, dtype, class_weight, ...) are checked where they are read.
CONSTRAINTS: dict[str, Any] = {
    "solver": Options(SOLVERS),
    "learning_rate": Options(SCHEDULES),
    "init": Options(INITS, " ('glorot': scikit-learn's uniform W and b; 'he': He-normal for "
                           "relu layers, Glorot otherwise, zero b)"),
    "alpha": Interval(0.0),
    "learning_rate_init": Interval(0.0, low_open=True),
    "power_t": Interval(0.0),
    "max_iter": Interval(1, integer=True),
    "max_fun": Interval(1, integer=True),
    "tol": Interval(0.0),
    "momentum": Interval(0.0, 1.0, high_open=False),
    "beta_1": Interval(0.0, 1.0),
    "beta_2": Interval(0.0, 1.0),
    "epsilon": Interval(0.0, low_open=True),
    "n_iter_no_change": Interval(1, integer=True, inf=True),
    "validation_fraction": Interval(0.0, 1.0, low_open=True),
    "batch_size": Either(Options(("auto",)), Interval(1, integer=True)),
    "clip_norm": Nullable(Interval(0.0, low_open=True)),
    "tf32": Flag(),
    "shuffle": Flag(),
    "warm_start": Flag(),
    "nesterovs_momentum": Flag(),
    "early_stopping": Flag(),
}


def check(name: str, value: Any) -> Any:
    """``value`` checked against ``CONSTRAINTS[name]``, as a plain Python value."""
    return CONSTRAINTS[name].check(name, value)
