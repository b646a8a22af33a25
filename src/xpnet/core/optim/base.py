"""What every optimizer shares: its parameters' layout, its state arrays, its learning rate,
and the fast paths a backend registers for its update.

An optimizer updates the parameters in place from their gradients (scikit-learn's
``_stochastic_optimizers``). Its per-step numbers (the learning rate, Adam's bias-corrected
rate) are :meth:`Optimizer.step_scalars`: computed on the host for a run of steps at once, in
Python floats (so float32 stays float32 and the numbers are scikit-learn's bit for bit), then
handed to :meth:`Optimizer.update` either as Python floats (:meth:`Optimizer.step`, the
functional API) or as 0-d arrays on the device (the training loop's step table,
:mod:`xpnet.core.state`): the same update, and on the device nothing per step is a Python
number, so a captured step replays the right values.

The update itself is a portable function of the optimizer's module (``sgd.py``, ``adam.py``)
over whole-buffer segments; a backend may register a faster equivalent with
:func:`fast_path` (``tests/test_kernels.py`` compares every registered one with the portable
update).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Sequence

from xpnet.core import dispatch
from xpnet.core.kernels import Kernels
from xpnet.core.params import ParamBuffer

__all__ = ["FAST_PATHS", "Optimizer", "checked_float", "dtype_name", "fast_path", "update_function"]

# (update name, Kernels subclass) -> the backend's update function
FAST_PATHS: dict[tuple[str, type], Callable[..., None]] = {}


def fast_path(name: str, kernels: type) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register ``fn`` as ``kernels``' (a :class:`Kernels` subclass) version of update ``name``."""
    def register(fn: Callable[..., None]) -> Callable[..., None]:
        FAST_PATHS[(name, kernels)] = fn
        return fn
    return register


def update_function(name: str, kernels: Kernels, portable: Callable[..., None]
                    ) -> Callable[..., None]:
    """The update ``name`` for these kernels: the closest registered fast path along their
    class hierarchy, else ``portable``."""
    for cls in type(kernels).__mro__:
        fn = FAST_PATHS.get((name, cls))
        if fn is not None:
            return fn
    return portable


def checked_float(name: str, value: Any, *, low: float, high: float = math.inf,
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


def dtype_name(dtype: Any) -> str:
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
                raise TypeError(f"parameter {i} has dtype {dtype_name(p.dtype)}; optimizers "
                                "update floating-point arrays only (float32 or float64)")
        self._buffer = buf
        self._kernels = kernels if kernels is not None else Kernels()
        self._backend = backend
        self._shapes = [tuple(p.shape) for p in arrays]
        self._dtypes = [dtype_name(p.dtype) for p in arrays]
        self.learning_rate = learning_rate
        self.learning_rate_init = self.learning_rate

    @property
    def learning_rate(self) -> float:
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._lr = checked_float("learning_rate", value, low=0.0, low_open=True, high_open=True)

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
            if "float" not in dtype_name(getattr(a, "dtype", "object")):
                raise TypeError(f"{self.name} state {key}[{i}] has dtype "
                                f"{dtype_name(getattr(a, 'dtype', None))}; expected floats")
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
        lr = checked_float("learning_rate", state["learning_rate"], low=0.0, low_open=True,
                           high_open=True)
        lr_init = checked_float("learning_rate_init", state["learning_rate_init"], low=0.0,
                         low_open=True, high_open=True)
        updates = self._check_state(state)
        self._lr, self.learning_rate_init = lr, lr_init
        for key, value in updates.items():
            setattr(self, key, value)

    def _check_state(self, state: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------------ the update
    n_scalars = 1  # per-step numbers :meth:`update` takes

    def step_scalars(self, steps: int) -> list[list[float]]:
        """The per-step numbers of the next ``steps`` steps (host floats, one row per step)."""
        raise NotImplementedError  # pragma: no cover

    def advance(self, steps: int) -> None:
        """Count ``steps`` steps as done (Adam's t)."""

    def update(self, params: Any, grads: Any, scalars: Sequence[Any],
               kernels: Kernels | None = None) -> None:
        """One update of every parameter from its gradient, in place, with this step's
        ``scalars`` (a row of :meth:`step_scalars`: floats, or 0-d arrays on the device);
        ``kernels``: whose fast path runs it (default the optimizer's; a training step
        passes its own, so ``kernels="fused"`` covers the update too)."""
        raise NotImplementedError  # pragma: no cover

    def step(self, params: Sequence[Any] | ParamBuffer, grads: Sequence[Any] | ParamBuffer
             ) -> None:
        """One update of every parameter from its gradient, in place (host scalars)."""
        self.update(params, grads, self.step_scalars(1)[0])
        self.advance(1)

    def __repr__(self) -> str:
        extra = ", ".join(f"{k}={v!r}" for k, v in self._scalars().items()
                          if k not in ("learning_rate_init",))
        return f"{type(self).__name__}({extra}, backend={self._backend})"
