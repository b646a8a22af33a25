"""The dispatcher: the one package that knows NumPy, CuPy, PyTorch and array-api-strict apart.

Everything else in xpnet is written against the Python array API standard and receives its
namespace ``xp`` from here. Each library is one small :class:`Backend` subclass
(``numpy.py``, ``cupy.py``, ``torch.py``, ``array_api_strict.py``; the shared behaviour is in
``base.py``); this module is their registry and answers four questions:

* which backends exist and which are usable here, and why not (``available_backends``);
* which backend and device a name such as ``"cupy"`` / ``"cuda:1"`` means (``get_backend``);
* which namespace a set of given arrays belongs to (``namespace``, ``backend_of``), and
  whether two arrays or backends share a device however it was spelled (``same_device``);
* how to move arrays to a backend and back to NumPy, and how to wait for a device
  (``Backend.asarray``, ``to_numpy``, ``synchronize``).

Libraries are imported lazily, inside the methods that need them; finding which library an
array belongs to never imports one.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from xpnet.backends.array_api_strict import StrictBackend
from xpnet.backends.base import Backend
from xpnet.backends.cupy import CupyBackend
from xpnet.backends.numpy import NumpyBackend
from xpnet.backends.torch import TorchBackend
from xpnet.core import dispatch
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
    "same_device",
    "synchronize",
    "to_numpy",
]

#: name -> class, in the order ``backend_of`` and ``to_numpy`` try them.
_CLASSES: dict[str, type[Backend]] = {
    cls.name: cls for cls in (NumpyBackend, CupyBackend, TorchBackend, StrictBackend)}
BACKENDS = tuple(_CLASSES)
_ALIASES = {"np": "numpy", "cp": "cupy", "pytorch": "torch", "strict": "array_api_strict",
            "array-api-strict": "array_api_strict"}
# One instance per (class, device): Backends are immutable, and their kernels are made once.
_INSTANCES: dict[tuple[type[Backend], Any], Backend] = {}


def _instance(cls: type[Backend], device: Any) -> Backend:
    key = (cls, cls.canonical_device(device))  # one instance however the device was spelled
    found = _INSTANCES.get(key)
    if found is None:
        found = _INSTANCES.setdefault(key, cls(device))
    return found


# --------------------------------------------------------------------------- detection
def available_backends() -> dict[str, tuple[bool, str]]:
    """{name: (usable, reason)} for every backend xpnet knows; never raises."""
    return {name: cls.probe() for name, cls in _CLASSES.items()}


def _auto() -> str:
    return "cupy" if CupyBackend.probe()[0] else "numpy"


def devices(name: str, *, describe: bool = False) -> list[str]:
    """The devices of backend ``name`` here, spelled as ``get_backend(name, device)`` accepts
    them: ``["cpu"]`` (NumPy), ``["cpu", "cuda:0", ...]`` (torch), ``["cuda:0", ...]`` (CuPy),
    the real and fake devices of array-api-strict. ``describe=True`` adds a GPU's name:
    ``"cuda:0 (NVIDIA H100)"``. An unknown or unusable backend has none; never raises (a
    device query that fails leaves out the devices it could not list)."""
    try:
        key = _ALIASES.get(name.lower(), name.lower()) if isinstance(name, str) else None
        if key == "auto":
            key = _auto()
        cls = _CLASSES.get(key)  # type: ignore[arg-type]
    except Exception:
        return []
    return [] if cls is None else cls.devices(describe)


def _unknown(name: object) -> str:
    return f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}, or 'auto'"


def _resolve_name(name: str) -> type[Backend]:
    if not isinstance(name, str):
        raise BackendError(_unknown(name))
    key = _ALIASES.get(name.lower(), name.lower())
    if key == "auto":
        return _CLASSES[_auto()]
    if key not in _CLASSES:
        raise BackendError(_unknown(name))
    usable, reason = _CLASSES[key].probe()
    if not usable:
        hint = (" Use backend='numpy' (CPU) or backend='auto' (CuPy when a GPU is usable, "
                "else NumPy).")
        raise BackendError(f"backend {key!r} is not usable here: {reason}.{hint}")
    return _CLASSES[key]


def get_backend(name: str | Backend = "auto", device: Any = None) -> Backend:
    """The :class:`Backend` for a name (``"numpy"``, ``"cupy"``, ``"torch"``,
    ``"array_api_strict"`` or ``"auto"``) and an optional device (``"cuda:1"``, ``1``, ``"cpu"``).

    ``"auto"`` picks CuPy when a usable CUDA device exists, else NumPy. A backend that is not
    usable here raises :class:`BackendError` with the reason.
    """
    if isinstance(name, Backend):
        return name if device is None else get_backend(name.name, device)
    cls = _resolve_name(name)
    return _instance(cls, cls.parse_device(device))


# --------------------------------------------------------------------------- given arrays
def namespace(*arrays: Any) -> Any:
    """The array API namespace of the given arrays (their backend's: ``Backend.xp``);
    ``TypeError`` if they mix libraries."""
    compat = array_api_compat.array_namespace(*arrays)  # TypeError when they mix libraries
    try:
        return backend_of(arrays[0]).xp
    except TypeError:  # a library xpnet has no backend for: array-api-compat's namespace
        return compat


def backend_of(x: Any) -> Backend:
    """The :class:`Backend` (library and device) an array lives on."""
    for cls in _CLASSES.values():
        if cls.is_array(x):
            return _instance(cls, cls.device_of(x))
    raise TypeError(f"not an array of a backend xpnet supports ({', '.join(BACKENDS)}): "
                    f"{type(x).__module__}.{type(x).__qualname__}")


def same_device(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` (each a :class:`Backend` or an array of one) are one library on
    one device, however the device was named: ``"cuda"``, ``"cuda:0"``, ``0`` and
    ``torch.device("cuda", 0)`` are one device (the current one for ``"cuda"``), as are
    ``"cpu"`` and ``"cpu:0"``. Every device comparison in xpnet goes through here or through
    ``Backend.__eq__``, which compares the canonical devices this relies on."""
    pa = a if isinstance(a, Backend) else backend_of(a)
    pb = b if isinstance(b, Backend) else backend_of(b)
    return pa == pb


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy (or view) of any backend's array, on the host."""
    if isinstance(x, np.ndarray):
        return x
    for cls in _CLASSES.values():
        if cls.is_array(x):
            return cls.to_numpy(x)
    if hasattr(x, "__dlpack__"):
        return np.from_dlpack(x)
    return np.asarray(x)


def synchronize(x: Any = None) -> None:
    """Wait for the device of array (or :class:`Backend`) ``x``; all CUDA work if ``None``."""
    if isinstance(x, Backend):
        x.synchronize()
    elif x is not None:
        backend_of(x).synchronize()
    else:
        for cls in _CLASSES.values():
            cls.synchronize_all()


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a backend's out-of-memory error: NumPy's ``MemoryError``,
    ``torch.cuda.OutOfMemoryError`` (or torch's CPU allocator failure), CuPy's
    ``OutOfMemoryError``. Never imports a library that is not already loaded."""
    if any(cls.is_out_of_memory(exc) for cls in _CLASSES.values()):
        return True
    if isinstance(exc, RuntimeError):
        text = str(exc).lower()
        return "out of memory" in text or "can't allocate memory" in text
    return False


def device_context(backend: Backend) -> Any:
    """A context making ``backend``'s device current: CuPy allocates (copies, creation
    functions) on the current device, whatever its inputs' device. A no-op elsewhere."""
    return backend.device_context()


def _resolve(*arrays: Any) -> tuple[Any, Backend]:
    array_api_compat.array_namespace(*arrays)  # TypeError when they mix libraries
    be = backend_of(arrays[0])
    return be.xp, be


dispatch.register(_resolve)
