"""The NumPy backend: the CPU, always available."""

from __future__ import annotations

from typing import Any

import numpy as np

from xpnet.backends.base import Backend, to_host
from xpnet.errors import BackendError

__all__ = ["NumpyBackend"]


class NumpyBackend(Backend):
    """NumPy (through array-api-compat's namespace) on the CPU."""

    name = "numpy"
    supports_views = True

    @classmethod
    def _probe(cls) -> tuple[bool, str]:
        return True, f"numpy {np.__version__}"

    @classmethod
    def _namespace(cls) -> Any:
        import array_api_compat.numpy as xp

        return xp

    @classmethod
    def parse_device(cls, device: Any) -> Any:
        if device not in (None, "cpu"):
            raise BackendError(f"backend 'numpy' runs on the CPU only; got device={device!r}. "
                               "Use device=None or 'cpu', or backend='cupy'/'torch' for a GPU.")
        return "cpu"

    @classmethod
    def _devices(cls, describe: bool) -> list[str]:
        return ["cpu"]

    @staticmethod
    def is_array(x: Any) -> bool:
        return isinstance(x, (np.ndarray, np.generic))

    @staticmethod
    def device_of(x: Any) -> Any:
        return "cpu"

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        return np.asarray(x if isinstance(x, np.ndarray) else to_host(x), dtype=dtype)

    @staticmethod
    def to_numpy(x: Any) -> np.ndarray:
        return np.asarray(x)

    def __str__(self) -> str:
        return self.name

    def make_kernels(self) -> Any:
        """:class:`xpnet.backends.numpy_kernels.NumpyKernels`, one per process (its shared
        workspaces outlive any one Backend object)."""
        return _KERNELS


def _numpy_kernels() -> Any:
    from xpnet.backends.numpy_kernels import NumpyKernels

    return NumpyKernels()


_KERNELS = _numpy_kernels()
