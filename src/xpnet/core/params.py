"""theta = [W[1], ..., W[L], b[1], ..., b[L]]: parameters (or their gradients, or an optimizer's
state) as views of one flat buffer, so a whole-network update is a few whole-buffer operations.

Where the backend has no views that in-place updates write through (array-api-strict: the
standard leaves views unspecified) the same object holds separate arrays instead; the code
above it does not change: it updates ``segments`` and reads ``W``/``b``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

__all__ = ["ParamBuffer", "layer_shapes"]


def layer_shapes(dims: Sequence[int]) -> list[tuple[int, int]]:
    """[(n[l], n[l-1]) for W[l]] + [(n[l], 1) for b[l]], l = 1..L: scikit-learn's order."""
    L = len(dims) - 1
    return ([(int(dims[l]), int(dims[l - 1])) for l in range(1, L + 1)]
            + [(int(dims[l]), 1) for l in range(1, L + 1)])


class ParamBuffer:
    """Arrays in scikit-learn's order (W[1..L], then b[1..L]), views of ``flat`` where it exists.

    ``segments``: what a whole-buffer operation runs over: ``[flat]``, or every array.
    ``weight_segments``: the same for the weights alone (L2 decays W, not b): ``[flat[:nW]]``.
    """

    def __init__(self, arrays: Sequence[Any], flat: Any = None, n_weights: int | None = None,
                 storage: Any = None):
        self.arrays = list(arrays)
        self.flat = flat
        self.n_weights = n_weights
        # flat plus trailing slots (``zeros(extra=k)``): one buffer for a collective operation
        self.storage = flat if storage is None else storage

    @property
    def extra(self) -> Any:
        """The trailing slots after the parameters (empty unless made with ``extra``)."""
        return self.storage[self.flat.shape[0]:]

    @classmethod
    def zeros(cls, shapes: Sequence[tuple[int, ...]], *, xp: Any, dtype: Any, device: Any,
              flat: bool, extra: int = 0) -> "ParamBuffer":
        """Zeros of the given shapes: views of one flat buffer (``flat``) or separate arrays;
        ``extra`` more slots after the flat parameters, in the same buffer (``storage``)."""
        if not flat:
            if extra:
                raise ValueError("extra slots need a flat buffer (a backend with views)")
            return cls([xp.zeros(s, dtype=dtype, device=device) for s in shapes])
        total = sum(math.prod(s) for s in shapes)
        storage = xp.zeros(total + extra, dtype=dtype, device=device)
        buf = cls._views(storage[:total], shapes, xp=xp)
        buf.storage = storage
        return buf

    @classmethod
    def _views(cls, buf: Any, shapes: Sequence[tuple[int, ...]], *, xp: Any) -> "ParamBuffer":
        arrays, start = [], 0
        for s in shapes:
            size = math.prod(s)
            arrays.append(xp.reshape(buf[start:start + size], s))
            start += size
        n_w = sum(math.prod(s) for s in shapes[: len(shapes) // 2])
        return cls(arrays, buf, n_w)

    @classmethod
    def of(cls, arrays: Sequence[Any]) -> "ParamBuffer":
        """The given separate arrays (no flat buffer), used in place."""
        return cls(arrays)

    def zeros_like(self, *, xp: Any) -> "ParamBuffer":
        """Zeros with this buffer's shapes, dtype, device and layout (flat or not)."""
        if self.flat is None:
            return ParamBuffer([xp.zeros_like(a) for a in self.arrays])
        return ParamBuffer._views(xp.zeros_like(self.flat), self.shapes, xp=xp)

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [tuple(a.shape) for a in self.arrays]

    @property
    def L(self) -> int:
        return len(self.arrays) // 2

    @property
    def W(self) -> dict[int, Any]:
        """{l: W[l]} (views: writing into them writes into the buffer)."""
        return {l: self.arrays[l - 1] for l in range(1, self.L + 1)}

    @property
    def b(self) -> dict[int, Any]:
        """{l: b[l]}."""
        return {l: self.arrays[self.L + l - 1] for l in range(1, self.L + 1)}

    @property
    def segments(self) -> list[Any]:
        return list(self.arrays) if self.flat is None else [self.flat]

    @property
    def weight_segments(self) -> list[Any]:
        if self.flat is None:
            return self.arrays[: self.L]
        return [self.flat[: self.n_weights]]

    def assign(self, arrays: Sequence[Any]) -> None:
        """Copy ``arrays`` (same shapes, same namespace and device) into this buffer, in place."""
        for dst, src in zip(self.arrays, arrays, strict=True):
            dst[...] = src

    def clone(self, *, xp: Any) -> "ParamBuffer":
        """A copy with its own storage, same layout."""
        if self.flat is None:
            return ParamBuffer([xp.asarray(a, copy=True) for a in self.arrays])
        return ParamBuffer._views(xp.asarray(self.flat, copy=True), self.shapes, xp=xp)
