"""The optimizers (one module each, with its state and its portable update), their registry
and scikit-learn's learning-rate schedules.

    opt = make_optimizer("sgd", params, learning_rate=0.1, momentum=0.9, nesterov=True)
    opt.step(params, grads)                        # host scalars: the functional API
    opt.update(params, grads, [lr_device])         # the training loop: 0-d device scalars
"""

from __future__ import annotations

from typing import Any, Sequence

from xpnet.core.optim.adam import Adam, adam_step_size, adam_update
from xpnet.core.optim.base import FAST_PATHS, Optimizer, fast_path, update_function
from xpnet.core.optim.schedules import SCHEDULES, EpochEnd, LearningRateSchedule
from xpnet.core.optim.sgd import SGD, momentum_update, sgd_update
from xpnet.core.params import ParamBuffer

__all__ = [
    "FAST_PATHS", "OPTIMIZERS", "PORTABLE_UPDATES", "SCHEDULES", "Adam", "EpochEnd",
    "LearningRateSchedule", "Optimizer", "SGD", "adam_step_size", "adam_update", "fast_path",
    "make_optimizer", "momentum_update", "sgd_update", "update_function",
]

OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam}

# the portable update of every name a backend may register a fast path for
PORTABLE_UPDATES = {"sgd": sgd_update, "momentum": momentum_update, "adam": adam_update}


def make_optimizer(name: str, params: Sequence[Any] | ParamBuffer, **kw: Any) -> Optimizer:
    """``SGD(params, **kw)`` for ``"sgd"``, ``Adam(params, **kw)`` for ``"adam"``."""
    cls = OPTIMIZERS.get(name.lower()) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")
    return cls(params, **kw)
