"""The dispatcher: the one module that knows NumPy, CuPy, PyTorch and array-api-strict apart.

Everything else in xpnet is written against the Python array API standard and receives its
namespace ``xp`` from here. This module answers four questions:

* which backends exist and which are usable here, and why not (``available_backends``);
* which backend and device a name such as ``"cupy"`` / ``"cuda:1"`` means (``get_backend``);
* which namespace a set of given arrays belongs to (``namespace``);
* how to move arrays to a backend and back to NumPy, and how to wait for a device
  (``Backend.asarray``, ``to_numpy``, ``synchronize``).

Libraries are imported lazily, inside the branch that needs them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import array_api_compat
import numpy as np

from xpnet.errors import BackendError

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "available_backends",
    "device_context",
    "devices",
    "backend_of",
    "get_backend",
    "is_out_of_memory",
    "namespace",
    "synchronize",
    "to_numpy",
]

BACKENDS = ("numpy", "cupy", "torch", "array_api_strict")
_ALIASES = {"np": "numpy", "cp": "cupy", "pytorch": "torch", "strict": "array_api_strict",
            "array-api-strict": "array_api_strict"}
STRICT_API_VERSION = "2024.12"



# --------------------------------------------------------------------------- detection
@lru_cache(maxsize=None)
def _probe(name: str) -> tuple[bool, str]:
    """(usable, reason) for one backend; never raises, and caches its answer."""
    try:
        if name == "numpy":
            return True, f"numpy {np.__version__}"
        if name == "array_api_strict":
            import array_api_strict

            return True, f"array_api_strict {array_api_strict.__version__}"
        if name == "torch":
            import torch

            return True, f"torch {torch.__version__}"
        if name == "cupy":
            return _probe_cupy()
    except ImportError as exc:
        return False, f"{name} is not installed ({exc})"
    except Exception as exc:  # a broken install must not crash detection
        return False, f"{name} failed to import: {type(exc).__name__}: {exc}"
    raise BackendError(_unknown(name))


def _probe_cupy() -> tuple[bool, str]:
    try:
        import cupy
    except ImportError as exc:
        if exc.name not in (None, "cupy"):  # cupy is there, one of its dependencies is not
            return False, (f"cupy is installed but cannot be imported: {exc}; reinstall it with "
                           "its dependencies (pip install 'xpnet[cuda12]' or 'xpnet[cuda13]')")
        return False, f"cupy is not installed ({exc}); pip install 'xpnet[cuda12]' or 'xpnet[cuda13]'"
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


def available_backends() -> dict[str, tuple[bool, str]]:
    """{name: (usable, reason)} for every backend xpnet knows; never raises."""
    return {name: _probe(name) for name in BACKENDS}


def devices(name: str, *, describe: bool = False) -> list[str]:
    """The devices of backend ``name`` here, spelled as ``get_backend(name, device)`` accepts
    them: ``["cpu"]`` (NumPy), ``["cpu", "cuda:0", ...]`` (torch), ``["cuda:0", ...]`` (CuPy),
    the real and fake devices of array-api-strict. ``describe=True`` adds a GPU's name:
    ``"cuda:0 (NVIDIA H100)"``. An unknown or unusable backend has none; never raises (a
    device query that fails leaves out the devices it could not list)."""
    try:
        key = _ALIASES.get(name.lower(), name.lower()) if isinstance(name, str) else None
        if key == "auto":
            key = "cupy" if _probe("cupy")[0] else "numpy"
        if key not in BACKENDS or not _probe(key)[0]:
            return []
    except Exception:
        return []
    if key == "numpy":
        return ["cpu"]
    if key == "array_api_strict":
        try:
            info = _namespace_for(key).__array_namespace_info__()
            return [str(getattr(d, "_device", d)) for d in info.devices()]
        except Exception:
            return []
    found = ["cpu"] if key == "torch" else []
    try:
        if key == "torch":
            import torch

            n = torch.cuda.device_count() if torch.cuda.is_available() else 0
            gpu_name = torch.cuda.get_device_name
        else:
            import cupy

            n = cupy.cuda.runtime.getDeviceCount()

            def gpu_name(i: int) -> str:
                raw = cupy.cuda.runtime.getDeviceProperties(i)["name"]
                return raw.decode() if isinstance(raw, bytes) else str(raw)
        for i in range(n):
            label = f"cuda:{i}"
            if describe:
                try:
                    label += f" ({gpu_name(i)})"
                except Exception:
                    pass
            found.append(label)
    except Exception:
        pass
    return found


def _unknown(name: object) -> str:
    return f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}, or 'auto'"


def _resolve_name(name: str) -> str:
    if not isinstance(name, str):
        raise BackendError(_unknown(name))
    key = _ALIASES.get(name.lower(), name.lower())
    if key == "auto":
        return "cupy" if _probe("cupy")[0] else "numpy"
    if key not in BACKENDS:
        raise BackendError(_unknown(name))
    usable, reason = _probe(key)
    if not usable:
        hint = " Use backend='numpy' (CPU) or backend='auto' (CuPy when a GPU is usable, else NumPy)."
        raise BackendError(f"backend {key!r} is not usable here: {reason}.{hint}")
    return key


# --------------------------------------------------------------------------- backends
@dataclass(frozen=True)
class Backend:
    """A backend and device: its array namespace ``xp`` and how to move arrays there.

    Make one with :func:`get_backend`; ``native`` is the library's own device object.
    """

    name: str
    xp: Any = field(repr=False)
    device: Any = None

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """Move ``x`` (NumPy, a Python sequence, or any backend's array) to this backend/device."""
        if self.name == "numpy":
            return np.asarray(x if isinstance(x, np.ndarray) else to_numpy(x), dtype=dtype)
        if self.name == "cupy":
            import cupy

            if not _is_cupy(x):
                x = to_numpy(x)
            with cupy.cuda.Device(self.device):
                return cupy.asarray(x, dtype=dtype)
        if self.name == "torch":
            import torch

            if not array_api_compat.is_torch_array(x):
                x = to_numpy(x)
            if dtype is not None and not isinstance(dtype, torch.dtype):
                dtype = getattr(torch, np.dtype(dtype).name)
            return torch.as_tensor(x, dtype=dtype, device=self.device)
        # array_api_strict
        if _is_strict(x):
            x = to_numpy(x)
        if dtype is not None and not isinstance(dtype, type(self.xp.float64)):
            dtype = getattr(self.xp, np.dtype(dtype).name)
        return self.xp.asarray(np.asarray(x), dtype=dtype, device=self.device)

    def dtype(self, name: Any) -> Any:
        """The namespace's dtype for ``"float32"`` / ``"float64"`` / ``numpy.float32`` ..."""
        return getattr(self.xp, np.dtype(name).name)

    def synchronize(self) -> None:
        """Block until all work queued on this backend's device is done (for timing)."""
        if self.name == "cupy":
            import cupy

            with cupy.cuda.Device(self.device):
                cupy.cuda.get_current_stream().synchronize()
        elif self.name == "torch" and self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)

    def owns(self, x: Any) -> bool:
        """Whether ``x`` is an array of this backend on this backend's device."""
        return backend_of(x) == self

    def __str__(self) -> str:
        dev = "" if self.name in ("numpy",) else f", device={self.device}"
        return f"{self.name}{dev}"


def _is_cupy(x: Any) -> bool:
    return array_api_compat.is_cupy_array(x)


def _is_strict(x: Any) -> bool:
    return type(x).__module__.startswith("array_api_strict")


@lru_cache(maxsize=None)
def _namespace_for(name: str) -> Any:
    if name == "numpy":
        import array_api_compat.numpy as xp
    elif name == "cupy":
        import array_api_compat.cupy as xp
    elif name == "torch":
        import array_api_compat.torch as xp
    else:
        import array_api_strict as xp

        xp.set_array_api_strict_flags(api_version=STRICT_API_VERSION)
    return xp


def _parse_device(name: str, device: Any) -> Any:
    """The library's own device object for a user's ``device`` argument."""
    if name == "numpy":
        if device not in (None, "cpu"):
            raise BackendError(f"backend 'numpy' runs on the CPU only; got device={device!r}. "
                               "Use device=None or 'cpu', or backend='cupy'/'torch' for a GPU.")
        return "cpu"
    if name == "cupy":
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
    if name == "torch":
        import torch

        if isinstance(device, int) and not isinstance(device, bool):
            device = f"cuda:{device}"
        try:
            dev = torch.device("cpu" if device is None else device)
        except (RuntimeError, TypeError) as exc:
            raise BackendError(f"backend 'torch' cannot use device {device!r}: {exc}") from None
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                raise BackendError(f"device {device!r} asked for, but torch sees no CUDA "
                                   "device. Use device='cpu'.")
            if (dev.index or 0) >= torch.cuda.device_count():
                raise BackendError(f"CUDA device {dev.index} does not exist: "
                                   f"{torch.cuda.device_count()} device(s) are visible")
        return dev
    import array_api_strict

    if device is None:
        return array_api_strict.Device("CPU_DEVICE")
    if isinstance(device, array_api_strict.Device):
        return device
    try:
        return array_api_strict.Device(device)
    except Exception as exc:
        raise BackendError(f"backend 'array_api_strict' cannot use device {device!r}: {exc}") from None


def get_backend(name: str | Backend = "auto", device: Any = None) -> Backend:
    """The :class:`Backend` for a name (``"numpy"``, ``"cupy"``, ``"torch"``,
    ``"array_api_strict"`` or ``"auto"``) and an optional device (``"cuda:1"``, ``1``, ``"cpu"``).

    ``"auto"`` picks CuPy when a usable CUDA device exists, else NumPy. A backend that is not
    usable here raises :class:`BackendError` with the reason.
    """
    if isinstance(name, Backend):
        return name if device is None else get_backend(name.name, device)
    key = _resolve_name(name)
    return Backend(key, _namespace_for(key), _parse_device(key, device))


# --------------------------------------------------------------------------- given arrays
def namespace(*arrays: Any) -> Any:
    """The array API namespace of the given arrays; ``TypeError`` if they mix libraries."""
    return array_api_compat.array_namespace(*arrays)


def backend_of(x: Any) -> Backend:
    """The :class:`Backend` (library and device) an array lives on."""
    if isinstance(x, np.ndarray) or array_api_compat.is_numpy_array(x):
        return Backend("numpy", _namespace_for("numpy"), "cpu")
    if _is_cupy(x):
        return Backend("cupy", _namespace_for("cupy"), x.device.id)
    if array_api_compat.is_torch_array(x):
        return Backend("torch", _namespace_for("torch"), x.device)
    if _is_strict(x):
        return Backend("array_api_strict", _namespace_for("array_api_strict"), x.device)
    raise TypeError(f"not an array of a backend xpnet supports ({', '.join(BACKENDS)}): "
                    f"{type(x).__module__}.{type(x).__qualname__}")


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy (or view) of any backend's array, on the host."""
    if isinstance(x, np.ndarray):
        return x
    if _is_cupy(x):
        return x.get()
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    if _is_strict(x) or hasattr(x, "__dlpack__"):
        return np.from_dlpack(x)
    return np.asarray(x)


def synchronize(x: Any = None) -> None:
    """Wait for the device of array (or :class:`Backend`) ``x``; all CUDA work if ``None``."""
    if isinstance(x, Backend):
        x.synchronize()
    elif x is not None:
        backend_of(x).synchronize()
    else:
        if "cupy" in sys.modules and _probe("cupy")[0]:
            import cupy

            cupy.cuda.get_current_stream().synchronize()
        if "torch" in sys.modules:
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a backend's out-of-memory error: NumPy's ``MemoryError``,
    ``torch.cuda.OutOfMemoryError`` (or torch's CPU allocator failure), CuPy's
    ``OutOfMemoryError``. Never imports a library that is not already loaded."""
    if isinstance(exc, MemoryError):
        return True
    if "cupy" in sys.modules:
        import cupy

        if isinstance(exc, cupy.cuda.memory.OutOfMemoryError):
            return True
    if "torch" in sys.modules:
        import torch

        oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
        if oom is not None and isinstance(exc, oom):
            return True
    if isinstance(exc, RuntimeError):
        text = str(exc).lower()
        return "out of memory" in text or "can't allocate memory" in text
    return False


def device_context(backend: "Backend") -> Any:
    """A context making ``backend``'s device current: CuPy allocates (copies, creation
    functions) on the current device, whatever its inputs' device. A no-op elsewhere."""
    if backend.name == "cupy":
        import cupy

        return cupy.cuda.Device(backend.device)
    import contextlib

    return contextlib.nullcontext()
