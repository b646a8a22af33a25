"""The array-api-strict backend: the standard's reference namespace, pinned to 2024.12."""

from __future__ import annotations

from typing import Any

import numpy as np

from xpnet.backends.base import Backend, to_host
from xpnet.errors import BackendError

__all__ = ["STRICT_API_VERSION", "StrictBackend"]

STRICT_API_VERSION = "2024.12"


class StrictBackend(Backend):
    """array-api-strict on one of its (real or fake) devices. The standard leaves views
    unspecified, so code must not rely on in-place writes through a slice or reshape."""

    name = "array_api_strict"
    supports_views = False

    @classmethod
    def _probe(cls) -> tuple[bool, str]:
        import array_api_strict

        return True, f"array_api_strict {array_api_strict.__version__}"

    @classmethod
    def _namespace(cls) -> Any:
        import array_api_strict as xp

        xp.set_array_api_strict_flags(api_version=STRICT_API_VERSION)
        return xp

    @property
    def device_spec(self) -> Any:
        return getattr(self.device, "_device", None)  # "CPU_DEVICE", "device1", ...

    @property
    def on_host(self) -> bool:
        """Its CPU device is the host; the fake ones (``device1`` ...) stand for a device."""
        return self.device_spec == "CPU_DEVICE"

    @classmethod
    def parse_device(cls, device: Any) -> Any:
        import array_api_strict

        if device is None:
            return array_api_strict.Device("CPU_DEVICE")
        if isinstance(device, array_api_strict.Device):
            return device
        try:
            return array_api_strict.Device(device)
        except Exception as exc:
            raise BackendError(f"backend 'array_api_strict' cannot use device {device!r}: "
                               f"{exc}") from None

    @classmethod
    def canonical_device(cls, device: Any) -> Any:
        """A ``Device`` (its name, ``"device1"``, becomes ``Device("device1")``)."""
        if isinstance(device, str):
            import array_api_strict

            return array_api_strict.Device(device)
        return device

    @classmethod
    def _devices(cls, describe: bool) -> list[str]:
        info = cls.namespace().__array_namespace_info__()
        return [str(getattr(d, "_device", d)) for d in info.devices()]

    @staticmethod
    def is_array(x: Any) -> bool:
        return type(x).__module__.startswith("array_api_strict")

    @staticmethod
    def device_of(x: Any) -> Any:
        return x.device

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        if self.is_array(x):
            x = to_host(x)
        if dtype is not None and not isinstance(dtype, type(self.xp.float64)):
            dtype = getattr(self.xp, np.dtype(dtype).name)
        return self.xp.asarray(np.asarray(x), dtype=dtype, device=self.device)

    @staticmethod
    def to_numpy(x: Any) -> np.ndarray:
        # Off the CPU device (the fake "device1", ...) move to it first, as a real device's
        # array is copied to the host: array-api-strict refuses np.asarray there, and DLPack
        # export of non-CPU arrays is being made an error upstream (array-api-strict PR 233).
        import array_api_strict

        cpu = array_api_strict.Device("CPU_DEVICE")
        if x.device != cpu:
            x = x.to_device(cpu)
        return np.from_dlpack(x)
