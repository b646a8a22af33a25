"""The hyperparameters of one fit, checked: what was wrong, what was expected, what to do.

:class:`Config` reads an estimator's parameters (scikit-learn's names) once per fit, before
anything changes; :func:`check_number` is its range check for one number.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xpnet.core.activations import HIDDEN_ACTIVATIONS
from xpnet.core.initializers import default_init
from xpnet.core.optim import SCHEDULES

__all__ = ["NEVER", "STOCHASTIC", "Config", "check_number"]

_SOLVERS = ("sgd", "adam", "lbfgs")
STOCHASTIC = ("sgd", "adam")
#: what n_iter_no_change=inf counts to: never reached, so the schedule never stops on it
NEVER = 2 ** 62
_BARS = (False, True, "epochs", "batches")
_INITS = ("glorot", "he")
_ALIASES = {"logistic": "sigmoid"}  # scikit-learn's name for the sigmoid


def check_number(name: str, value: Any, *, low: float = -math.inf, high: float = math.inf,
            low_open: bool = False, high_open: bool = False, integer: bool = False) -> Any:
    ok = not isinstance(value, (bool, str)) and isinstance(value, (int, float, np.number))
    if ok and integer:
        ok = float(value).is_integer()
    if ok:
        x = float(value)
        ok = (not math.isnan(x) and (x > low if low_open else x >= low)
              and (x < high if high_open else x <= high))
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        what = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {what} in {lo}{low:g}, {high:g}{hi}; got {value!r}")
    return int(value) if integer else float(value)


def _is_inf(value: Any) -> bool:
    return isinstance(value, (float, np.floating)) and math.isinf(value) and value > 0


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
            if _ALIASES.get(a, a) not in HIDDEN_ACTIVATIONS:
                raise ValueError(f"unknown activation {a!r}"
                                 + (f" for hidden layer {i + 1}" if not isinstance(act, str)
                                    else "")
                                 + f"; expected one of {', '.join(HIDDEN_ACTIVATIONS)} "
                                   f"(or 'logistic' for sigmoid)")
        self.activations = [_ALIASES.get(a, a) for a in acts]
        if est.solver not in _SOLVERS:
            raise ValueError(f"unknown solver {est.solver!r}; expected one of "
                             f"{', '.join(_SOLVERS)}")
        self.solver = est.solver
        if est.learning_rate not in SCHEDULES:
            raise ValueError(f"unknown learning_rate {est.learning_rate!r}; expected one of "
                             f"{', '.join(SCHEDULES)}")
        self.schedule = est.learning_rate
        self.alpha = check_number("alpha", est.alpha, low=0.0, high_open=True)
        self.lr = check_number("learning_rate_init", est.learning_rate_init, low=0.0, low_open=True,
                          high_open=True)
        self.power_t = check_number("power_t", est.power_t, low=0.0, high_open=True)
        self.max_iter = check_number("max_iter", est.max_iter, low=1, integer=True)
        self.tol = check_number("tol", est.tol, low=0.0, high_open=True)
        self.momentum = check_number("momentum", est.momentum, low=0.0, high=1.0)
        self.beta_1 = check_number("beta_1", est.beta_1, low=0.0, high=1.0, high_open=True)
        self.beta_2 = check_number("beta_2", est.beta_2, low=0.0, high=1.0, high_open=True)
        self.epsilon = check_number("epsilon", est.epsilon, low=0.0, low_open=True, high_open=True)
        n_iter_no_change = est.n_iter_no_change  # np.inf: never stop on it (scikit-learn)
        self.n_iter_no_change = NEVER if _is_inf(n_iter_no_change) else check_number(
            "n_iter_no_change", n_iter_no_change, low=1, integer=True)
        self.max_fun = check_number("max_fun", getattr(est, "max_fun", 15000), low=1,
                                    integer=True)
        self.validation_fraction = check_number("validation_fraction", est.validation_fraction,
                                           low=0.0, high=1.0, low_open=True, high_open=True)
        bs = est.batch_size
        if not (isinstance(bs, str) and bs == "auto"):
            bs = check_number("batch_size", bs, low=1, integer=True)
        self.batch_size = bs
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
        self.clip_norm = None if est.clip_norm is None else check_number(
            "clip_norm", est.clip_norm, low=0.0, low_open=True, high_open=True)
        if est.init not in _INITS:
            raise ValueError(f"unknown init {est.init!r}; expected 'glorot' (scikit-learn's: "
                             f"uniform W and b) or 'he' (He-normal for relu layers, Glorot "
                             f"otherwise, zero b)")
        self.init = est.init
        if not isinstance(est.tf32, (bool, np.bool_)):
            raise ValueError(f"tf32 must be True or False; got {est.tf32!r}")
        self.tf32 = bool(est.tf32)
        graphs = getattr(est, "graphs", "auto")  # estimators pickled before the parameter
        if not (isinstance(graphs, (bool, np.bool_)) or isinstance(graphs, str)
                and graphs == "auto"):
            raise ValueError(f"graphs must be 'auto', True or False; got {graphs!r}")
        self.graphs = graphs if isinstance(graphs, str) else bool(graphs)
        self.early_stopping = bool(est.early_stopping)
        self.shuffle = bool(est.shuffle)
        # verbose: scikit-learn's lines on stdout; progress_bar: tqdm bars (xpnet's own)
        self.verbose = bool(est.verbose)
        bars = getattr(est, "progress_bar", False)
        if isinstance(bars, np.bool_):
            bars = bool(bars)
        if not any(bars is b if isinstance(b, bool) else bars == b for b in _BARS):
            raise ValueError(f"progress_bar must be False, True (or 'epochs': a bar over the "
                             f"epochs) or 'batches' (also one over each epoch's batches); got "
                             f"{bars!r}")
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

