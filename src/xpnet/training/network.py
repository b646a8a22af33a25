"""The network being trained: W[l], b[l] as views of one flat parameter buffer on a backend."""

from __future__ import annotations

from typing import Any

from xpnet.backends import Backend
from xpnet.core.optim import Optimizer, make_optimizer
from xpnet.core.params import ParamBuffer, layer_shapes

__all__ = ["Network"]


class Network:
    """W[l], b[l] (l = 1..L) on ``backend``, activations ``g`` (hidden ones, then the output).

    The parameters live in one :class:`ParamBuffer` ``theta`` (a flat buffer of views where
    the backend allows it); ``W`` and ``b`` are its views, keyed by layer. Write into them
    (``assign``, or ``W[l][...] = ...``); rebinding an entry of the dicts changes nothing.
    """

    def __init__(self, W: dict[int, Any], b: dict[int, Any], g: list[str],
                 backend: Backend) -> None:
        self.g, self.backend = list(g), backend
        L = len(W)
        dims = [int(W[1].shape[1])] + [int(W[l].shape[0]) for l in range(1, L + 1)]
        with backend.device_context():
            self.theta = ParamBuffer.zeros(layer_shapes(dims), xp=backend.xp, dtype=W[1].dtype,
                                           device=backend.device, flat=backend.supports_views)
            self.assign(W, b)

    @property
    def W(self) -> dict[int, Any]:
        return self.theta.W

    @property
    def b(self) -> dict[int, Any]:
        return self.theta.b

    @property
    def L(self) -> int:
        return self.theta.L

    @property
    def dims(self) -> list[int]:
        W = self.W
        return [int(W[1].shape[1])] + [int(W[l].shape[0]) for l in range(1, self.L + 1)]

    @property
    def kernels(self) -> Any:
        return self.backend.kernels

    def params(self) -> list[Any]:
        """[W[1], ..., W[L], b[1], ..., b[L]]: scikit-learn's coefs_ + intercepts_ order."""
        return list(self.theta.arrays)

    def copy(self) -> tuple[dict[int, Any], dict[int, Any]]:
        """Copies of W and b on the device."""
        xp = self.backend.xp
        with self.backend.device_context():
            return ({l: xp.asarray(w, copy=True) for l, w in self.W.items()},
                    {l: xp.asarray(v, copy=True) for l, v in self.b.items()})

    def assign(self, W: dict[int, Any], b: dict[int, Any]) -> None:
        """Copy ``W``, ``b`` (arrays on this backend and device) into the parameters."""
        L = self.L
        self.theta.assign([*(W[l] for l in range(1, L + 1)), *(b[l] for l in range(1, L + 1))])

    def all_finite(self) -> Any:
        """1 if every entry of every W[l], b[l] is finite, else 0 (0-d array, no host read)."""
        return self.kernels.all_finite(self.theta.segments, xp=self.backend.xp)

    def optimizer(self, name: str, **kw: Any) -> Optimizer:
        """``make_optimizer(name, theta, **kw)`` updating this network through its kernels."""
        return make_optimizer(name, self.theta, xp=self.backend.xp, kernels=self.kernels,
                              backend=self.backend, **kw)
