"""What each estimator parameter may hold, said once (scikit-learn's ``_parameter_constraints``).

:class:`xpnet.estimators.params.Config` checks a fit's parameters with this table, and
:mod:`xpnet.io.metadata` checks the parameters a model file records with the same table, so
a value fit refuses is refused in a file too, with the same words (here in ``core``, below
both). A constraint's ``check`` returns the value as a plain Python value
(``np.float32(0.1)`` -> ``0.1``) or raises ``ValueError`` saying what was expected;
``describe`` is that expectation alone. NumPy's scalars are recognised without importing
NumPy (they register as :mod:`numbers`; NumPy's bool by its type name).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from xpnet.core.registry import INITS, SCHEDULES, SOLVERS

__all__ = ["CONSTRAINTS", "Either", "Flag", "Interval", "Nullable", "Options", "check"]


def _is_bool(value: Any) -> bool:
    """Python's or NumPy's bool (``numpy.bool_``)."""
    return isinstance(value, bool) or type(value).__name__ in ("bool_", "bool") \
        and type(value).__module__ == "numpy"


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

    @staticmethod
    def takes(value: Any) -> bool:
        """Whether ``value`` is of this constraint's kind (a real number, not a bool)."""
        return isinstance(value, numbers.Real) and not _is_bool(value)

    def describe(self) -> str:
        lo, hi = "(" if self.low_open else "[", ")" if self.high_open else "]"
        what = "an integer" if self.integer else "a number"
        return f"{what} in {lo}{self.low:g}, {self.high:g}{hi}" + (" or inf" if self.inf else "")

    def check(self, name: str, value: Any) -> Any:
        ok = self.takes(value)
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

    @staticmethod
    def takes(value: Any) -> bool:
        """Whether ``value`` is of this constraint's kind (a name, or None)."""
        return isinstance(value, (str, type(None)))

    def describe(self) -> str:
        return "one of " + ", ".join(str(n) for n in self.names) + self.hint

    def check(self, name: str, value: Any) -> Any:
        if self.takes(value) and value in self.names:
            return value
        raise ValueError(f"unknown {name} {value!r}; expected {self.describe()}")


@dataclass(frozen=True)
class Flag:
    """True or False (NumPy's bools too)."""

    @staticmethod
    def takes(value: Any) -> bool:
        """Whether ``value`` is a bool (Python's or NumPy's)."""
        return _is_bool(value)

    def describe(self) -> str:
        return "True or False"

    def check(self, name: str, value: Any) -> bool:
        if self.takes(value):
            return bool(value)
        raise ValueError(f"{name} must be {self.describe()}; got {value!r}")


@dataclass(frozen=True)
class Either:
    """What either of two constraints of different kinds allows; a value of one's kind gets
    that one's error (``batch_size=0``: the interval's), unless ``description`` says it all."""

    first: Any
    second: Any
    description: str = ""

    def describe(self) -> str:
        return self.description or f"{self.first.describe()}, or {self.second.describe()}"

    def takes(self, value: Any) -> bool:
        return self.first.takes(value) or self.second.takes(value)

    def check(self, name: str, value: Any) -> Any:
        for constraint in (self.first, self.second):
            if constraint.takes(value):
                try:
                    return constraint.check(name, value)
                except ValueError:
                    if not self.description:
                        raise
                    break
        raise ValueError(f"{name} must be {self.describe()}; got {value!r}")


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
    "graphs": Either(Options(("auto",)), Flag(), "'auto', True or False"),
    "progress_bar": Either(Flag(), Options(("epochs", "batches")),
                           "False, True (or 'epochs': a bar over the epochs) or 'batches' "
                           "(also one over each epoch's batches)"),
    "kernels": Options(("auto", "portable", "fused"),
                       " ('auto': the backend's own; 'portable': the reference kernels; "
                       "'fused': CuPy's fused CUDA kernels)"),
}


def check(name: str, value: Any) -> Any:
    """``value`` checked against ``CONSTRAINTS[name]``, as a plain Python value."""
    return CONSTRAINTS[name].check(name, value)
