"""W[l] := W[l] - alpha dW[l];  b[l] := b[l] - alpha db[l]  (gradient descent, in place)."""

from __future__ import annotations

from typing import Any, MutableMapping, Mapping

__all__ = ["update_parameters"]


def update_parameters(W: MutableMapping[int, Any], b: MutableMapping[int, Any],
                      dW: Mapping[int, Any], db: Mapping[int, Any], alpha: float) -> None:
    """W[l] := W[l] - alpha dW[l];  b[l] := b[l] - alpha db[l], for l = 1..L, in place.

    ``alpha`` is a Python float, so float32 parameters stay float32.
    """
    alpha = float(alpha)
    for l in W:
        W[l] -= alpha * dW[l]
        b[l] -= alpha * db[l]
