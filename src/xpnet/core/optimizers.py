"""p := p - lr g and its refinements: SGD (plain, momentum, Nesterov), Adam, and the
learning-rate schedules — each holding only its state (scikit-learn ``_stochastic_optimizers``).

An optimizer steps over parameters and gradients in place, on any backend, through one
update kernel (:class:`xpnet.core.kernels.Kernels`): given flat buffers
(:class:`xpnet.core.params.ParamBuffer`) that is a handful of whole-buffer operations for the
whole network; given a list of arrays, the same operations per array. Every scalar is a Python
float (so float32 stays float32), and nothing is read back to the host.

How a training loop drives them (scikit-learn's ``_fit_stochastic``, step for step)::

    opt = make_optimizer("sgd", params, learning_rate=0.1, momentum=0.9, nesterov=True)
    schedule = LearningRateSchedule("adaptive", power_t=0.5, tol=1e-4, n_iter_no_change=10)
    samples_seen = 0
    for epoch in ...:
        for X_batch, Y_batch in ...:
            ...                               # forward, cost, backward -> grads
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

import contextlib
import math
from typing import Any, NamedTuple, Sequence

from xpnet.core import dispatch
from xpnet.core.kernels import Kernels, adam_step_size
from xpnet.core.params import ParamBuffer

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "Adam",
    "EpochEnd",
    "LearningRateSchedule",
    "Optimizer",
    "SGD",
    "make_optimizer",
]

SCHEDULES = ("constant", "invscaling", "adaptive")


def _float(name: str, value: Any, *, low: float, high: float = math.inf,
           low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a Python float in the given interval, else a ``ValueError`` saying which."""
    if isinstance(value, (bool, str)) or not hasattr(value, "__float__"):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    x = float(value)
    if math.isnan(x) or x < low or x > high or (low_open and x == low) \
            or (high_open and x == high):
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must be in {lo}{low}, {high}{hi}; got {value!r}")
    return x


def _dtype_name(dtype: Any) -> str:
    return str(dtype).rsplit(".", 1)[-1]


class Optimizer:
    """What SGD and Adam share: the parameters' namespace, shapes, kernels and learning rate.

    ``params``: a :class:`ParamBuffer` (the training loop's flat buffers) or a list of arrays.
    ``xp``, ``kernels``, ``backend``: the backend's namespace, kernels and the backend itself
    (which moves loaded state onto the device); left out, the namespace comes from the arrays
    and the portable kernels are used. ``learning_rate`` is a Python float the training loop
    (or a schedule) may change between steps; ``learning_rate_init`` is the value it was
    built with.
    """

    name = ""
    _state_arrays: tuple[str, ...] = ()

    def __init__(self, params: Sequence[Any] | ParamBuffer, learning_rate: float, *,
                 xp: Any = None, kernels: Kernels | None = None, backend: Any = None) -> None:
        buf = params if isinstance(params, ParamBuffer) else ParamBuffer.of(list(params))
        arrays = buf.arrays
        if not arrays:
            raise ValueError(f"{type(self).__name__} needs at least one parameter array; got none")
        if xp is None:  # bare arrays: their backend's namespace, kernels and device
            try:
                xp, backend = dispatch.resolve(*arrays)
            except TypeError as exc:
                kinds = sorted({f"{type(p).__module__}.{type(p).__name__}" for p in arrays})
                raise TypeError(f"the parameters must all be arrays of one backend; got "
                                f"{', '.join(kinds)}") from exc
            kernels = backend.kernels if kernels is None else kernels
        self._xp = xp
        for i, p in enumerate(arrays):
            if not self._xp.isdtype(p.dtype, "real floating"):
                raise TypeError(f"parameter {i} has dtype {_dtype_name(p.dtype)}; optimizers "
                                "update floating-point arrays only (float32 or float64)")
        self._buffer = buf
        self._kernels = kernels if kernels is not None else Kernels()
        self._backend = backend
        self._shapes = [tuple(p.shape) for p in arrays]
        self._dtypes = [_dtype_name(p.dtype) for p in arrays]
        self.learning_rate = learning_rate
        self.learning_rate_init = self.learning_rate

    @property
    def learning_rate(self) -> float:
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._lr = _float("learning_rate", value, low=0.0, low_open=True, high_open=True)

    def _segments(self, params: Any, grads: Any) -> tuple[list[Any], list[Any]]:
        """The whole-buffer segments to update: the flat buffers, or the arrays pairwise."""
        if isinstance(params, ParamBuffer) and isinstance(grads, ParamBuffer) \
                and params.flat is not None and grads.flat is not None:
            return params.segments, grads.segments
        ps = params.arrays if isinstance(params, ParamBuffer) else list(params)
        gs = grads.arrays if isinstance(grads, ParamBuffer) else list(grads)
        n = len(self._shapes)
        if len(ps) != n or len(gs) != n:
            raise ValueError(f"{type(self).__name__} was built for {n} parameter arrays; got "
                             f"{len(ps)} params and {len(gs)} grads")
        return ps, gs

    def _state_segments(self, state: ParamBuffer, params: Any) -> list[Any]:
        flat = isinstance(params, ParamBuffer) and params.flat is not None
        return state.segments if flat and state.flat is not None else state.arrays

    def _on_device(self) -> Any:
        """A context that makes the parameters' device current (CuPy allocates there)."""
        if self._backend is not None:
            return self._backend.device_context()
        return contextlib.nullcontext()

    def _zeros(self) -> ParamBuffer:
        with self._on_device():
            return self._buffer.zeros_like(xp=self._xp)

    # ------------------------------------------------------------------ state
    def _scalars(self) -> dict[str, Any]:
        return {"learning_rate": self._lr, "learning_rate_init": self.learning_rate_init}

    def state_dict(self) -> dict[str, Any]:
        """{"name", Python scalars..., state name: [copies of the state arrays, on the device]}."""
        xp = self._xp
        state: dict[str, Any] = {"name": self.name, **self._scalars()}
        with self._on_device():
            for key in self._state_arrays:
                buf = getattr(self, "_" + key)
                state[key] = [xp.asarray(a, copy=True) for a in (buf.arrays if buf else [])]
        return state

    def _load_arrays(self, state: dict[str, Any], key: str, expected: int) -> list[Any]:
        """The arrays ``state[key]`` checked against the parameters, copied onto their device."""
        arrays = state.get(key)
        if not isinstance(arrays, (list, tuple)) or len(arrays) != expected:
            got = (f"{len(arrays)} arrays" if isinstance(arrays, (list, tuple))
                   else type(arrays).__name__)
            raise ValueError(f"{self.name} state {key!r} must list {expected} arrays (one per "
                             f"parameter); got {got}")
        out = []
        for i, (a, shape, dtype) in enumerate(zip(arrays, self._shapes, self._dtypes)):
            if tuple(getattr(a, "shape", ())) != shape:
                raise ValueError(f"{self.name} state {key}[{i}] has shape "
                                 f"{tuple(getattr(a, 'shape', ()))}; parameter {i} is {shape}")
            if "float" not in _dtype_name(getattr(a, "dtype", "object")):
                raise TypeError(f"{self.name} state {key}[{i}] has dtype "
                                f"{_dtype_name(getattr(a, 'dtype', None))}; expected floats")
            if self._backend is not None:
                moved = self._backend.asarray(a, dtype=dtype)
            else:
                like = self._buffer.arrays[i]
                moved = self._xp.asarray(a, dtype=like.dtype, device=like.device)
            out.append(moved)
        if not out:
            return None
        with self._on_device():
            buf = self._buffer.zeros_like(xp=self._xp)  # the parameters' layout, never aliased
        buf.assign(out)
        return buf

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (arrays may be NumPy: they are moved to the
        parameters' backend and device). Everything is checked first; on error nothing changes."""
        if not isinstance(state, dict) or state.get("name") != self.name:
            got = state.get("name") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"not a {self.name!r} optimizer state (name {got!r}); build the "
                             "optimizer that saved it with make_optimizer(name, params)")
        missing = [k for k in ("learning_rate", "learning_rate_init") if k not in state]
        if missing:
            raise ValueError(f"{self.name} state lacks {', '.join(missing)}")
        lr = _float("learning_rate", state["learning_rate"], low=0.0, low_open=True, high_open=True)
        lr_init = _float("learning_rate_init", state["learning_rate_init"], low=0.0,
                         low_open=True, high_open=True)
        updates = self._check_state(state)
        self._lr, self.learning_rate_init = lr, lr_init
        for key, value in updates.items():
            setattr(self, key, value)

    def _check_state(self, state: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def step(self, params: Sequence[Any], grads: Sequence[Any]) -> None:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        extra = ", ".join(f"{k}={v!r}" for k, v in self._scalars().items()
                          if k not in ("learning_rate_init",))
        return f"{type(self).__name__}({extra}, backend={self._backend})"


class SGD(Optimizer):
    """p := p - lr g;  momentum: v := mu v - lr g, p := p + v;
    Nesterov: v := mu v - lr g, p := p + mu v - lr g  (scikit-learn's ``SGDOptimizer``).

    With ``momentum=0`` the step is exactly the seeds' ``p -= lr * g`` and no velocity is kept.
    """

    name = "sgd"

    def __init__(self, params: Sequence[Any] | ParamBuffer, learning_rate: float,
                 momentum: float = 0.0, nesterov: bool = False, **where: Any) -> None:
        super().__init__(params, learning_rate, **where)
        self.momentum = _float("momentum", momentum, low=0.0, high=1.0)
        self.nesterov = bool(nesterov)
        self._velocities = self._zeros() if self.momentum > 0 else None

    _state_arrays = ("velocities",)

    def _scalars(self) -> dict[str, Any]:
        return {**super()._scalars(), "momentum": self.momentum, "nesterov": self.nesterov}

    def _check_state(self, state: dict[str, Any]) -> dict[str, Any]:
        momentum = _float("momentum", state.get("momentum", self.momentum), low=0.0, high=1.0)
        nesterov = bool(state.get("nesterov", self.nesterov))
        velocities = self._load_arrays(state, "velocities",
                                       len(self._shapes) if momentum > 0 else 0)
        return {"momentum": momentum, "nesterov": nesterov, "_velocities": velocities}

    def step(self, params: Sequence[Any] | ParamBuffer, grads: Sequence[Any] | ParamBuffer
             ) -> None:
        """One update of every parameter from its gradient, in place."""
        ps, gs = self._segments(params, grads)
        if self._velocities is None:
            self._kernels.sgd(ps, gs, self._lr, xp=self._xp)
            return
        vs = self._state_segments(self._velocities, params)
        self._kernels.momentum(ps, gs, vs, self._lr, self.momentum, self.nesterov, xp=self._xp)


class Adam(Optimizer):
    """t := t + 1;  m := b1 m + (1-b1) g;  v := b2 v + (1-b2) g^2;
    lr_t = lr sqrt(1 - b2^t) / (1 - b1^t);  p := p - lr_t m / (sqrt(v) + eps).

    The step counter ``t`` advances once per :meth:`step`, outside the loop over parameters
    (scikit-learn's ``AdamOptimizer``; ``learning_rate`` is its ``learning_rate_init``).
    """

    name = "adam"
    _state_arrays = ("ms", "vs")

    def __init__(self, params: Sequence[Any] | ParamBuffer, learning_rate: float = 0.001,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
                 **where: Any) -> None:
        super().__init__(params, learning_rate, **where)
        self.beta_1 = _float("beta_1", beta_1, low=0.0, high=1.0, high_open=True)
        self.beta_2 = _float("beta_2", beta_2, low=0.0, high=1.0, high_open=True)
        self.epsilon = _float("epsilon", epsilon, low=0.0, low_open=True, high_open=True)
        self.t = 0
        self._ms = self._zeros()
        self._vs = self._zeros()

    def _scalars(self) -> dict[str, Any]:
        return {**super()._scalars(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "t": self.t}

    def _check_state(self, state: dict[str, Any]) -> dict[str, Any]:
        t = state.get("t")
        if isinstance(t, bool) or not isinstance(t, int) and not hasattr(t, "__index__") \
                or int(t) < 0:
            raise ValueError(f"adam state 't' must be a step count >= 0; got {t!r}")
        n = len(self._shapes)
        return {"beta_1": _float("beta_1", state.get("beta_1", self.beta_1), low=0.0, high=1.0,
                                 high_open=True),
                "beta_2": _float("beta_2", state.get("beta_2", self.beta_2), low=0.0, high=1.0,
                                 high_open=True),
                "epsilon": _float("epsilon", state.get("epsilon", self.epsilon), low=0.0,
                                  low_open=True, high_open=True),
                "t": int(t), "_ms": self._load_arrays(state, "ms", n),
                "_vs": self._load_arrays(state, "vs", n)}

    def step(self, params: Sequence[Any] | ParamBuffer, grads: Sequence[Any] | ParamBuffer
             ) -> None:
        """One update of every parameter from its gradient, in place."""
        ps, gs = self._segments(params, grads)
        self.t += 1  # once per step, not once per layer
        lr_t = adam_step_size(self._lr, self.beta_1, self.beta_2, self.t)
        self._kernels.adam(ps, gs, self._state_segments(self._ms, params),
                           self._state_segments(self._vs, params), lr_t, self.beta_1,
                           self.beta_2, self.epsilon, xp=self._xp)


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam}


def make_optimizer(name: str, params: Sequence[Any] | ParamBuffer, **kw: Any) -> Optimizer:
    """``SGD(params, **kw)`` for ``"sgd"``, ``Adam(params, **kw)`` for ``"adam"``."""
    cls = OPTIMIZERS.get(name.lower()) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")
    return cls(params, **kw)


# --------------------------------------------------------------------------- schedules
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
        self.power_t = _float("power_t", power_t, low=0.0, high_open=True)
        self.tol = _float("tol", tol, low=0.0, high_open=True)
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
