"""array-api-compat's torch namespace, with Python scalars kept as scalars in ``maximum`` and
``minimum``.

array-api-compat turns a Python scalar argument of ``maximum``/``minimum`` into a tensor with
``torch.asarray(x, device=...)``: on a GPU that is a host-to-device copy on every call (the
portable ReLU, softplus and the log losses' clipping call them every step), which a captured
CUDA graph cannot hold. ``torch.clamp_min``/``clamp_max`` take the scalar as an argument of
the kernel instead: the same values (NaN propagates as in ``torch.maximum``), no copy.
Everything else is array-api-compat's, unchanged.
"""

from __future__ import annotations

import builtins
from typing import Any

import array_api_compat.torch as _compat
import torch
from array_api_compat.torch import *  # noqa: F401,F403

__all__ = ["maximum", "minimum"]  # and, through the star import, the rest of compat's

_SCALARS = (builtins.int, builtins.float)  # the star import brings torch's bool, ...


def _real_scalar(x: Any) -> bool:
    return isinstance(x, _SCALARS) and not isinstance(x, builtins.bool)


def _scalar_kept(clamp: Any, compat: Any, what: str) -> Any:
    """compat's two-argument function, with a Python real on either side of a floating tensor
    passed to ``clamp`` as a kernel argument instead of made into a tensor."""
    def f(x1: Any, x2: Any, /) -> Any:
        if isinstance(x1, torch.Tensor) and _real_scalar(x2) and x1.is_floating_point():
            return clamp(x1, x2)
        if isinstance(x2, torch.Tensor) and _real_scalar(x1) and x2.is_floating_point():
            return clamp(x2, x1)
        return compat(x1, x2)
    f.__name__ = f.__qualname__ = compat.__name__
    f.__doc__ = f"{what} elementwise; a Python scalar on either side stays a kernel argument."
    return f


maximum = _scalar_kept(torch.clamp_min, _compat.maximum, "max(x1, x2)")
minimum = _scalar_kept(torch.clamp_max, _compat.minimum, "min(x1, x2)")


def __getattr__(name: str) -> Any:  # what ``import *`` did not bring (private helpers)
    return getattr(_compat, name)
