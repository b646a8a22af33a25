"""p := p - lr g;  momentum: v := mu v - lr g, p := p + v;  Nesterov: p := p + mu v - lr g.

scikit-learn's ``SGDOptimizer``: the portable updates (:func:`sgd_update`,
:func:`momentum_update`) and :class:`SGD`, which holds the velocities. ``lr`` is a Python float
or a 0-d array on the parameters' device (see :mod:`xpnet.core.optim.base`).
"""

from __future__ import annotations

from typing import Any, Sequence

from xpnet.core.optim.base import Optimizer, checked_float, update_function
from xpnet.core.params import ParamBuffer

__all__ = ["SGD", "momentum_update", "sgd_update"]


def sgd_update(params: Sequence[Any], grads: Sequence[Any], lr: Any, *, xp: Any,
               kernels: Any = None) -> None:
    """p := p - lr g, in place."""
    for p, g in zip(params, grads):
        p -= lr * g


def momentum_update(params: Sequence[Any], grads: Sequence[Any], velocities: Sequence[Any],
                    lr: Any, mu: float, nesterov: bool, *, xp: Any,
                kernels: Any = None) -> None:
    """v := mu v - lr g;  p := p + v  (Nesterov: p := p + mu v - lr g), in place."""
    for p, g, v in zip(params, grads, velocities):
        if nesterov:
            u = lr * g
            v *= mu
            v -= u
            w = mu * v
            w -= u
            p += w
        else:
            v *= mu
            v -= lr * g
            p += v


class SGD(Optimizer):
    """p := p - lr g;  momentum: v := mu v - lr g, p := p + v;
    Nesterov: v := mu v - lr g, p := p + mu v - lr g  (scikit-learn's ``SGDOptimizer``).

    With ``momentum=0`` the step is exactly the seeds' ``p -= lr * g`` and no velocity is kept.
    """

    name = "sgd"

    def __init__(self, params: Sequence[Any] | ParamBuffer, learning_rate: float,
                 momentum: float = 0.0, nesterov: bool = False, **where: Any) -> None:
        super().__init__(params, learning_rate, **where)
        self.momentum = checked_float("momentum", momentum, low=0.0, high=1.0)
        self.nesterov = bool(nesterov)
        self._velocities = self._zeros() if self.momentum > 0 else None

    _state_arrays = ("velocities",)

    def _scalars(self) -> dict[str, Any]:
        return {**super()._scalars(), "momentum": self.momentum, "nesterov": self.nesterov}

    def _check_state(self, state: dict[str, Any]) -> dict[str, Any]:
        momentum = checked_float("momentum", state.get("momentum", self.momentum), low=0.0,
                                 high=1.0)
        nesterov = bool(state.get("nesterov", self.nesterov))
        velocities = self._load_arrays(state, "velocities",
                                       len(self._shapes) if momentum > 0 else 0)
        return {"momentum": momentum, "nesterov": nesterov, "_velocities": velocities}

    def step_scalars(self, steps: int) -> list[list[float]]:
        """[lr] for each step (a schedule changes lr between epochs only)."""
        return [[self._lr]] * steps

    def update(self, params: Any, grads: Any, scalars: Sequence[Any],
               kernels: Any = None) -> None:
        """p := p - lr g (or the momentum / Nesterov rule), in place; ``scalars`` = [lr]."""
        (lr,) = scalars
        K = self._kernels if kernels is None else kernels
        ps, gs = self._segments(params, grads)
        if self._velocities is None:
            update_function("sgd", K, sgd_update)(ps, gs, lr, xp=self._xp, kernels=K)
            return
        vs = self._state_segments(self._velocities, params)
        update_function("momentum", K, momentum_update)(
            ps, gs, vs, lr, self.momentum, self.nesterov, xp=self._xp, kernels=K)
