"""The Backend base class: what every backend offers, and the behaviour they share.

A backend is one array library on one device. Each library is a subclass (``numpy.py``,
``cupy.py``, ``torch.py``, ``array_api_strict.py``) that imports its library lazily, inside
its methods; ``is_array`` never imports it at all (einops' ``_backends`` pattern).
"""

from __future__ import annotations

import contextlib
import sys
from functools import cached_property, lru_cache
from typing import Any, Callable, ClassVar

import numpy as np

__all__ = ["Backend", "cuda_labels", "instance_of", "to_host"]


def instance_of(x: Any, module: str, attr: str) -> bool:
    """Whether ``x`` is a ``module.attr`` instance, without importing ``module``: an object of
    a library that is not loaded cannot be one of its arrays."""
    cls = getattr(sys.modules.get(module), attr, None)
    return isinstance(cls, type) and isinstance(x, cls)


def to_host(x: Any) -> Any:
    """Any backend's array as NumPy, through ``xpnet.backends.to_numpy`` looked up at call
    time: one patch of that function then sees every device-to-host copy xpnet makes."""
    return sys.modules["xpnet.backends"].to_numpy(x)


class Backend:
    """A backend and device: its array namespace ``xp`` and how to move arrays there.

    Make one with :func:`xpnet.backends.get_backend`; ``device`` is the library's own device
    object in its one spelling (:meth:`canonical_device`). Instances are immutable, equal (and
    hash equal) by ``(name, device)``: a device equals itself however it was named.
    """

    name: ClassVar[str] = ""
    #: Slices and reshapes of a 1-D array are views that in-place updates write through.
    supports_views: ClassVar[bool] = True

    def __init__(self, device: Any) -> None:
        object.__setattr__(self, "device", type(self).canonical_device(device))

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {key!r}")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"cannot delete field {key!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.device,)

    # ------------------------------------------------------------------ identity
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Backend):
            return NotImplemented
        return (self.name, self.device) == (other.name, other.device)

    def __hash__(self) -> int:
        return hash((self.name, self.device))

    def __repr__(self) -> str:
        return f"Backend(name={self.name!r}, device={self.device!r})"

    def __str__(self) -> str:
        return f"{self.name}, device={self.device}"

    # ------------------------------------------------------------------ library
    @classmethod
    @lru_cache(maxsize=None)
    def probe(cls) -> tuple[bool, str]:
        """(usable, reason) for this backend here; never raises, and caches its answer."""
        try:
            return cls._probe()
        except ImportError as exc:
            return False, f"{cls.name} is not installed ({exc})"
        except Exception as exc:  # a broken install must not crash detection
            return False, f"{cls.name} failed to import: {type(exc).__name__}: {exc}"

    @classmethod
    def _probe(cls) -> tuple[bool, str]:
        raise NotImplementedError

    @classmethod
    @lru_cache(maxsize=None)
    def namespace(cls) -> Any:
        """The library's array API namespace (imported on first use)."""
        return cls._namespace()

    @classmethod
    def _namespace(cls) -> Any:
        raise NotImplementedError

    @property
    def xp(self) -> Any:
        """The array namespace."""
        return type(self).namespace()

    @classmethod
    def parse_device(cls, device: Any) -> Any:
        """The library's own device object for a user's ``device`` argument (canonical)."""
        raise NotImplementedError

    @classmethod
    def canonical_device(cls, device: Any) -> Any:
        """The one spelling of a device of this library (torch: ``cuda`` -> ``cuda:0``, the
        current device; ``cpu:0`` -> ``cpu``), as its arrays report it: two spellings of one
        device compare equal after this. The library's device objects are that already here."""
        return device

    @property
    def on_host(self) -> bool:
        """Whether this backend's arrays live in host memory that a NumPy array can be read
        from in place (NumPy, torch on the CPU); False for a device (CUDA, array-api-strict's
        fake devices), where host rows go up through :meth:`staging`."""
        return True

    @classmethod
    def devices(cls, describe: bool = False) -> list[str]:
        """The devices here, spelled as ``get_backend(name, device)`` accepts them; ``[]`` when
        the backend is not usable. Never raises."""
        try:
            return cls._devices(describe) if cls.probe()[0] else []
        except Exception:
            return []

    @classmethod
    def _devices(cls, describe: bool) -> list[str]:
        return []

    def free_memory(self) -> int | None:
        """Bytes free on the device for new arrays; None on the host (NumPy, torch on the CPU,
        array-api-strict), where training data is never streamed."""
        return None

    def matmul_precision(self, tf32: bool) -> Any:
        """A context in which float32 matrix products use TF32 tensor cores (``tf32=True``) or
        full float32 (``False``); the setting before is restored on exit. A no-op where the
        library has no such mode (NumPy, array-api-strict, torch on the CPU)."""
        return contextlib.nullcontext()

    @property
    def device_spec(self) -> Any:
        """The device as a JSON value (None, an int or a str) that ``get_backend(name, ...)``
        accepts back; None: the library's default device."""
        return None

    @staticmethod
    def is_array(x: Any) -> bool:
        """Whether ``x`` is an array of this library; never imports the library."""
        return False

    @staticmethod
    def device_of(x: Any) -> Any:
        """The device object of one of this library's arrays."""
        raise NotImplementedError

    @classmethod
    def is_out_of_memory(cls, exc: BaseException) -> bool:
        """Whether ``exc`` is one of this library's out-of-memory errors."""
        return isinstance(exc, MemoryError)

    @classmethod
    def synchronize_all(cls) -> None:
        """Wait for all work queued on every device of this library (if loaded)."""

    # ------------------------------------------------------------------ arrays
    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """Move ``x`` (NumPy, a Python sequence, or any backend's array) to this backend/device."""
        raise NotImplementedError

    def dense_rows(self, block: Any) -> Any:
        """A block of rows of a host array as a dense C-ordered array on this backend: NumPy
        as is; SciPy sparse made dense here (backends that can build a sparse array on their
        device override this to send the CSR parts and make it dense there)."""
        if hasattr(block, "tocsr"):
            block = block.toarray()
        return self.asarray(np.ascontiguousarray(block))

    @staticmethod
    def to_numpy(x: Any) -> np.ndarray:
        """A NumPy copy (or view) of one of this library's arrays, on the host."""
        return np.asarray(x)

    def dtype(self, name: Any) -> Any:
        """The namespace's dtype for ``"float32"`` / ``"float64"`` / ``numpy.float32`` ..."""
        return getattr(self.xp, np.dtype(name).name)

    def owns(self, x: Any) -> bool:
        """Whether ``x`` is an array of this backend on this backend's device."""
        return self.is_array(x) and self.canonical_device(self.device_of(x)) == self.device

    def staging(self) -> Any:
        """A new host staging buffer for rows sent to this device (:mod:`xpnet.backends.staging`;
        page-locked on CUDA). Hold one per model: it is reused by every prediction."""
        from xpnet.backends.staging import Staging

        return Staging(self)

    def synchronize(self) -> None:
        """Block until all work queued on this backend's device is done (for timing)."""

    def device_context(self) -> Any:
        """A context making this device current (CuPy allocates on the current device)."""
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ kernels
    @cached_property
    def kernels(self) -> Any:
        """This backend's kernels, made once per instance by :meth:`make_kernels`."""
        return self.make_kernels()

    def make_kernels(self) -> Any:
        """The kernels (compute routines) this backend runs: the portable ones by default."""
        from xpnet.core.kernels import Kernels

        return Kernels()

    def fused_kernels(self) -> Any:
        """Kernels this backend has that are not its default yet (CuPy's fused CUDA kernels,
        until verified on a GPU), for ``kernels="fused"``; None where there are none."""
        return None


def cuda_labels(count: int, gpu_name: Callable[[int], str], describe: bool,
                found: list[str]) -> list[str]:
    """Append ``"cuda:i"`` (with ``" (GPU name)"`` when ``describe``) for each of ``count``
    devices to ``found``; a name that cannot be read is left out, not the device."""
    for i in range(count):
        label = f"cuda:{i}"
        if describe:
            try:
                label += f" ({gpu_name(i)})"
            except Exception:
                pass
        found.append(label)
    return found
