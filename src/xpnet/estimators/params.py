"""The hyperparameters of one fit, checked: what was wrong, what was expected, what to do.

:class:`Config` reads an estimator's parameters (scikit-learn's names) once per fit, before
anything changes: those of one value through the constraint table model files are checked
with too (:mod:`xpnet.core.constraints`), the structured ones (layers, activations, dropout
rates, random_state, dtype) here; :func:`check_number` is the table's interval check for one
number.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xpnet.core.constraints import Interval, check
from xpnet.core.initializers import default_init
from xpnet.core.registry import HIDDEN_ACTIVATIONS, STOCHASTIC, activation_name

__all__ = ["NEVER", "STOCHASTIC", "Config", "check_number"]

#: what n_iter_no_change=inf counts to: never reached, so the schedule never stops on it
NEVER = 2 ** 62


def check_number(name: str, value: Any, *, low: float = -math.inf, high: float = math.inf,
                 low_open: bool = False, high_open: bool = False, integer: bool = False) -> Any:
    """``value`` as a Python int or float in the interval, else a ``ValueError`` saying which
    (a one-off :class:`xpnet.core.constraints.Interval`: the table's own check)."""
    return Interval(low, high, low_open, high_open, integer).check(name, value)


class Config:
    """The checked hyperparameters of one fit (nothing here touches the estimator)."""

    def __init__(self, est: Any) -> None:  # an MLPClassifier / MLPRegressor
        hls = est.hidden_layer_sizes
        hidden = [hls] if isinstance(hls, (int, np.integer)) and not isinstance(hls, bool) \
            else list(hls) if isinstance(hls, (list, tuple, np.ndarray)) else None
        if hidden is None or any(isinstance(n, bool) or not isinstance(n, (int, np.integer))
                                 or n < 1 for n in hidden):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hls!r}: give positive "
                             f"integers, one per hidden layer, e.g. (100,) or (256, 128)")
        self.hidden = [int(n) for n in hidden]
        act = est.activation
        acts = [act] * len(self.hidden) if isinstance(act, str) else list(act) \
            if isinstance(act, (list, tuple)) else None
        if acts is None or len(acts) != len(self.hidden):
            raise ValueError(f"activation must be a name or a list of one name per hidden layer "
                             f"({len(self.hidden)}); got {act!r}")
        for i, a in enumerate(acts):
            if activation_name(a) not in HIDDEN_ACTIVATIONS:
                raise ValueError(f"unknown activation {a!r}"
                                 + (f" for hidden layer {i + 1}" if not isinstance(act, str)
                                    else "")
                                 + f"; expected one of {', '.join(HIDDEN_ACTIVATIONS)} "
                                   f"(or 'logistic' for sigmoid)")
        self.activations = [activation_name(a) for a in acts]
        # the parameters of one value: checked by the table io/ checks model files with
        self.solver = check("solver", est.solver)
        self.schedule = check("learning_rate", est.learning_rate)
        self.alpha = check("alpha", est.alpha)
        self.lr = check("learning_rate_init", est.learning_rate_init)
        self.power_t = check("power_t", est.power_t)
        self.max_iter = check("max_iter", est.max_iter)
        self.tol = check("tol", est.tol)
        self.momentum = check("momentum", est.momentum)
        self.beta_1 = check("beta_1", est.beta_1)
        self.beta_2 = check("beta_2", est.beta_2)
        self.epsilon = check("epsilon", est.epsilon)
        n_iter_no_change = check("n_iter_no_change", est.n_iter_no_change)
        # np.inf: never stop on it (scikit-learn); the count never reaches NEVER
        self.n_iter_no_change = NEVER if n_iter_no_change == math.inf else n_iter_no_change
        self.max_fun = check("max_fun", getattr(est, "max_fun", 15000))
        self.validation_fraction = check("validation_fraction", est.validation_fraction)
        self.batch_size = check("batch_size", est.batch_size)
        try:  # None: X's, resolved by the fit (float32 X stays float32, else float64)
            dt = None if est.dtype is None else np.dtype(est.dtype).name
        except TypeError:
            dt = str(est.dtype)
        if dt not in (None, "float32", "float64"):
            raise ValueError(f"dtype must be None (X's: float32 stays float32, anything else "
                             f"float64), 'float32' or 'float64'; got {est.dtype!r}")
        self.dtype: str | None = dt
        drop = est.dropout
        rates = [drop] * len(self.hidden) if not isinstance(drop, (list, tuple)) else list(drop)
        if len(rates) != len(self.hidden):
            raise ValueError(f"dropout must be one rate or one per hidden layer "
                             f"({len(self.hidden)}); got {drop!r}")
        self.dropout = [check_number("dropout", r, low=0.0, high=1.0, high_open=True) for r in rates]
        if not any(self.dropout):
            self.dropout = None
        self.clip_norm = check("clip_norm", est.clip_norm)
        self.init = check("init", est.init)
        self.tf32 = check("tf32", est.tf32)
        # estimators pickled before the parameter existed have none: "auto"
        self.graphs = check("graphs", getattr(est, "graphs", "auto"))
        self.kernels = check("kernels", getattr(est, "kernels", "auto"))
        self.early_stopping = bool(est.early_stopping)
        self.shuffle = bool(est.shuffle)
        # verbose: scikit-learn's lines on stdout; progress_bar: tqdm bars (xpnet's own)
        self.verbose = bool(est.verbose)
        bars = check("progress_bar", getattr(est, "progress_bar", False))
        self.bars = 0 if bars is False else 2 if bars == "batches" else 1
        rs = est.random_state
        if not (rs is None or isinstance(rs, (np.random.Generator, np.random.RandomState))
                or isinstance(rs, (int, np.integer)) and not isinstance(rs, bool) and rs >= 0):
            raise ValueError(f"random_state must be None, a non-negative int, a "
                             f"numpy.random.Generator or RandomState; got {rs!r}")

    @property
    def stochastic(self) -> bool:
        """Whether the solver runs epochs of mini-batches (sgd, adam) rather than L-BFGS."""
        return self.solver in STOCHASTIC

    @property
    def itemsize(self) -> int:
        """Bytes per element of ``dtype``."""
        return 4 if self.dtype == "float32" else 8

    def batch_for(self, n: int) -> int:
        """The batch size for ``n`` samples: "auto" is min(200, n) (for memory estimates)."""
        return min(200, n) if self.batch_size == "auto" else self.batch_size

    def inits(self, g: list[str]) -> list[str]:
        """The initialisation scheme of each layer l = 1..L (activations ``g``): scikit-learn's
        "glorot" (factor 2, "glorot_logistic", where the layer's activation is logistic; the
        output layer follows the hidden layers' when they are all logistic, as scikit-learn,
        which uses its one activation for every layer), or "he" / "xavier" by activation."""
        if self.init == "he":
            return [default_init(a) for a in g]
        hidden = g[:-1]
        logistic = [a == "sigmoid" for a in hidden] + [all(a == "sigmoid" for a in hidden)]
        return ["glorot_logistic" if lg else "glorot" for lg in logistic]

