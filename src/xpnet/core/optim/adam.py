"""t := t + 1;  m := b1 m + (1-b1) g;  v := b2 v + (1-b2) g^2;  p := p - lr_t m / (sqrt(v) + eps).

scikit-learn's ``AdamOptimizer``: the portable update (:func:`adam_update`), the step size
(:func:`adam_step_size`) and :class:`Adam`, which holds m, v and t. ``lr_t`` is a Python float
or a 0-d array on the parameters' device (see :mod:`xpnet.core.optim.base`).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from xpnet.core.optim.base import Optimizer, checked_float, update_function
from xpnet.core.params import ParamBuffer

__all__ = ["Adam", "adam_step_size", "adam_update"]


def adam_step_size(lr: float, beta_1: float, beta_2: float, t: int) -> float:
    """lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)  (a Python float: float32 stays float32)."""
    return lr * math.sqrt(1.0 - beta_2 ** t) / (1.0 - beta_1 ** t)


def adam_update(params: Sequence[Any], grads: Sequence[Any], ms: Sequence[Any],
                vs: Sequence[Any], lr_t: Any, beta_1: float, beta_2: float, epsilon: float, *,
                xp: Any, kernels: Any = None) -> None:
    """m := b1 m + (1-b1) g;  v := b2 v + (1-b2) g^2;  p := p - lr_t m / (sqrt(v) + eps)."""
    c1, c2 = 1.0 - beta_1, 1.0 - beta_2
    for p, g, m, v in zip(params, grads, ms, vs):
        m *= beta_1
        m += c1 * g
        g2 = g * g
        g2 *= c2
        v *= beta_2
        v += g2
        u = lr_t * m
        d = xp.sqrt(v)
        d += epsilon
        u /= d
        p -= u


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
        self.beta_1 = checked_float("beta_1", beta_1, low=0.0, high=1.0, high_open=True)
        self.beta_2 = checked_float("beta_2", beta_2, low=0.0, high=1.0, high_open=True)
        self.epsilon = checked_float("epsilon", epsilon, low=0.0, low_open=True, high_open=True)
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
        return {"beta_1": checked_float("beta_1", state.get("beta_1", self.beta_1), low=0.0,
                                        high=1.0, high_open=True),
                "beta_2": checked_float("beta_2", state.get("beta_2", self.beta_2), low=0.0,
                                        high=1.0, high_open=True),
                "epsilon": checked_float("epsilon", state.get("epsilon", self.epsilon), low=0.0,
                                         low_open=True, high_open=True),
                "t": int(t), "_ms": self._load_arrays(state, "ms", n),
                "_vs": self._load_arrays(state, "vs", n)}

    def step_scalars(self, steps: int) -> list[list[float]]:
        """[lr_t] for steps t+1 .. t+steps: lr sqrt(1 - b2^t) / (1 - b1^t), host floats."""
        return [[adam_step_size(self._lr, self.beta_1, self.beta_2, self.t + k)]
                for k in range(1, steps + 1)]

    def advance(self, steps: int) -> None:
        """t := t + steps (once per step, never once per layer)."""
        self.t += steps

    def update(self, params: Any, grads: Any, scalars: Sequence[Any],
               kernels: Any = None) -> None:
        """m, v and p updated in place; ``scalars`` = [lr_t] of this step."""
        (lr_t,) = scalars
        K = self._kernels if kernels is None else kernels
        ps, gs = self._segments(params, grads)
        update_function("adam", K, adam_update)(
            ps, gs, self._state_segments(self._ms, params),
            self._state_segments(self._vs, params), lr_t, self.beta_1, self.beta_2,
            self.epsilon, xp=self._xp, kernels=K)
