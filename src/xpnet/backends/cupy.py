"""The CuPy backend: CuPy arrays on one CUDA device."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from xpnet.backends.base import Backend, cuda_labels, instance_of, to_host
from xpnet.errors import BackendError

__all__ = ["CupyBackend"]

_INSTALL = "pip install 'xpnet[cuda12]' or 'xpnet[cuda13]'"


class CupyBackend(Backend):
    """CuPy (through array-api-compat's namespace); ``device`` is the CUDA device index."""

    name = "cupy"
    supports_views = True

    @classmethod
    def _probe(cls) -> tuple[bool, str]:
        try:
            import cupy
        except ImportError as exc:
            if exc.name not in (None, "cupy"):  # cupy is there, one of its dependencies is not
                return False, (f"cupy is installed but cannot be imported: {exc}; reinstall it "
                               f"with its dependencies ({_INSTALL})")
            return False, f"cupy is not installed ({exc}); {_INSTALL}"
        try:
            if not cupy.cuda.is_available():
                return False, "cupy is installed but no CUDA device or driver is usable"
            n = cupy.cuda.runtime.getDeviceCount()
            # CUDA libraries can be missing even where a GPU exists: run one real operation,
            # a matrix product, which needs cuBLAS.
            a = cupy.ones((2, 2), dtype=cupy.float32)
            float((a @ a).sum())
        except Exception as exc:
            return False, f"cupy is installed but CUDA is not usable: {type(exc).__name__}: {exc}"
        return True, f"cupy {cupy.__version__}, {n} CUDA device(s)"

    @classmethod
    def _namespace(cls) -> Any:
        import array_api_compat.cupy as xp

        return xp

    @classmethod
    def parse_device(cls, device: Any) -> Any:
        import cupy

        if device is None:
            index = cupy.cuda.runtime.getDevice()
        elif isinstance(device, int) and not isinstance(device, bool):
            index = device
        elif isinstance(device, str) and device.startswith("cuda"):
            index = int(device.partition(":")[2] or 0)
        elif isinstance(device, cupy.cuda.Device):
            index = device.id
        else:
            raise BackendError(f"backend 'cupy' expects device as an index (0, 1, ...) or "
                               f"'cuda:N'; got {device!r}")
        count = cupy.cuda.runtime.getDeviceCount()
        if not 0 <= index < count:
            raise BackendError(f"CUDA device {index} does not exist: {count} device(s) "
                               f"(0..{count - 1}) are visible")
        return index

    @classmethod
    def _devices(cls, describe: bool) -> list[str]:
        found: list[str] = []
        try:
            import cupy

            def gpu_name(i: int) -> str:
                raw = cupy.cuda.runtime.getDeviceProperties(i)["name"]
                return raw.decode() if isinstance(raw, bytes) else str(raw)

            cuda_labels(cupy.cuda.runtime.getDeviceCount(), gpu_name, describe, found)
        except Exception:
            pass
        return found

    @staticmethod
    def is_array(x: Any) -> bool:
        return instance_of(x, "cupy", "ndarray")

    @staticmethod
    def device_of(x: Any) -> Any:
        return x.device.id

    @classmethod
    def is_out_of_memory(cls, exc: BaseException) -> bool:
        if isinstance(exc, MemoryError):
            return True
        cupy = sys.modules.get("cupy")
        oom = getattr(getattr(getattr(cupy, "cuda", None), "memory", None), "OutOfMemoryError",
                      None)
        return oom is not None and isinstance(exc, oom)

    @classmethod
    def synchronize_all(cls) -> None:
        if "cupy" in sys.modules and cls.probe()[0]:
            import cupy

            cupy.cuda.get_current_stream().synchronize()

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        import cupy

        if not self.is_array(x):
            x = to_host(x)
        with cupy.cuda.Device(self.device):
            return cupy.asarray(x, dtype=dtype)

    @staticmethod
    def to_numpy(x: Any) -> np.ndarray:
        return x.get()

    def synchronize(self) -> None:
        import cupy

        with cupy.cuda.Device(self.device):
            cupy.cuda.get_current_stream().synchronize()

    def device_context(self) -> Any:
        import cupy

        return cupy.cuda.Device(self.device)
