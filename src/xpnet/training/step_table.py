"""An epoch's per-step numbers, computed on the host once and moved to the device at once.

What changes from one step to the next — the optimizer's learning rate (Adam's
bias-corrected lr_t of step t), the dropout generator's keys of step k and layer l, the
sample-weight row s = w / sum_B w and its L2 coefficients — is computed here for the whole
epoch, in Python floats and ints exactly as before (so results are scikit-learn's bit for
bit), and uploaded in two transfers: the integers (the epoch's permutation, then the keys)
and the floats (the parameters' dtype). Step k then reads 0-d views of these device arrays:
no Python number that changes between steps reaches a kernel, no upload happens inside the
batch loop, and two epochs issue the same calls with the same non-tensor arguments (the
capture contract, ``tests/test_capture_contract.py``).

    ints   = [order (n) | keys (steps, layers, 2)]                       int64
    floats = [optimizer scalars (steps, k) | L2 pair (steps, 2) | s (n)]  parameters' dtype
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from xpnet.core.random import dropout_keys

__all__ = ["StepTable"]


class StepTable:
    """One epoch's per-step scalars on the device (see the module doc).

    ``order``: the epoch's permutation (host, (n,)) or None; ``optimizer_rows``: the
    optimizer's ``step_scalars(steps)``; ``seed``, ``layers``: dropout's epoch seed and the
    layers l that drop (keys for every step); ``l2_rows``: per step (alpha/2 c, alpha/m c)
    with sample weights (c = m / sum_B w), else None; ``s``: host (n,) s_i = w_i / sum_B w
    in the epoch's row order, else None.
    """

    def __init__(self, backend: Any, dtype: str, *, order: np.ndarray | None,
                 optimizer_rows: Sequence[Sequence[float]], seed: int | None = None,
                 layers: Sequence[int] = (), l2_rows: Sequence[Sequence[float]] | None = None,
                 s: np.ndarray | None = None) -> None:
        steps = len(optimizer_rows)
        self._layer = {l: i for i, l in enumerate(layers)}
        n = 0 if order is None else int(order.shape[0])
        ints = [np.zeros(0, np.int64) if order is None else np.asarray(order, np.int64)]
        if seed is not None and layers:
            ints.append(np.array([[dropout_keys(seed, k, l) for l in layers]
                                  for k in range(steps)], dtype=np.int64).ravel())
        floats = [np.asarray(optimizer_rows, np.float64).reshape(steps, -1)]
        self._k = floats[0].shape[1]
        if l2_rows is not None:
            floats.append(np.asarray(l2_rows, np.float64).reshape(steps, 2))
        width = sum(f.shape[1] for f in floats)
        flat = [np.concatenate(floats, axis=1).ravel()] if steps else []
        if s is not None:
            flat.append(np.asarray(s, np.float64))
        xp = self._xp = backend.xp
        self._ints = None
        if n or len(ints) > 1:
            self._ints = backend.asarray(np.concatenate(ints))                # upload 1
        self._floats = backend.asarray(np.concatenate(flat).astype(dtype))     # upload 2
        self.order = None if order is None else self._ints[:n]
        self._keys = None
        if len(ints) > 1:
            self._keys = xp.reshape(self._ints[n:], (steps, len(layers), 2))
        self._rows = xp.reshape(self._floats[:steps * width], (steps, width))
        self._l2 = l2_rows is not None
        self._s = None if s is None else self._floats[steps * width:]

    def refill(self, other: "StepTable") -> "StepTable":
        """This table's device buffers overwritten with ``other``'s numbers (the next epoch's,
        same layout): a captured epoch reads the same memory every epoch. Two device copies."""
        same = (self._ints is None) == (other._ints is None) and (
            self._ints is None or self._ints.shape == other._ints.shape) and \
            self._floats.shape == other._floats.shape and self._k == other._k and \
            self._layer == other._layer and self._l2 == other._l2 and \
            (self._s is None) == (other._s is None)
        if not same:
            raise ValueError("refill needs a table of the same layout (rows, steps, layers, "
                             "sample weights)")
        if self._ints is not None:
            self._ints[...] = other._ints
        self._floats[...] = other._floats
        return self

    @property
    def has_keys(self) -> bool:
        """Whether dropout's keys are in the table."""
        return self._keys is not None

    def optimizer_scalars(self, k: int) -> list[Any]:
        """Step k's row of the optimizer's scalars (0-d device arrays)."""
        return [self._rows[k, j] for j in range(self._k)]

    def keys(self, k: int, l: int) -> tuple[Any, Any]:
        """Dropout keys (k1, k2) of step k, layer l (0-d int64 device arrays)."""
        i = self._layer[l]
        return self._keys[k, i, 0], self._keys[k, i, 1]

    def l2(self, k: int) -> tuple[Any, Any] | None:
        """Step k's L2 coefficients (alpha/2 c, alpha/m c) with sample weights, else None."""
        if not self._l2:
            return None
        return self._rows[k, self._k], self._rows[k, self._k + 1]

    def weights(self, a: int, z: int) -> Any:
        """The row s = w / sum_B w of the epoch's rows a..z-1, shaped (1, z - a)."""
        return self._xp.reshape(self._s[a:z], (1, z - a))
