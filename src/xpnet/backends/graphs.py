"""CUDA graphs through the dispatcher: whether a backend can capture, and the object that does.

A :class:`Capture` (:mod:`xpnet.backends.capture`) turns a Python function that issues device
work into a graph:

    capture.warm(fn)         fn run eagerly, the way its capture will run (torch: on the
                             graph's own stream), so that every buffer and library handle it
                             needs exists before capture (the warm-up epoch)
    graph = capture.capture(fn)   fn's device work recorded, nothing executed
    graph.replay()           the recorded work launched again (one launch), on the current stream
    capture.key()            what else a capture bakes in (TF32 on or off)

torch: ``torch.cuda.graph`` (:mod:`xpnet.backends.torch_graph`); CuPy: ``Stream.begin_capture``
with the products through nvmath-python's cuBLAS bindings (:mod:`xpnet.backends.cupy_graph`,
:mod:`xpnet.backends.cupy_blas`). :func:`emulated` replaces capture by an
:class:`EmulatedCapture` on any backend: ``capture`` keeps the function and ``replay`` calls
it again, so the graph path's driver runs, on the CPU too, exactly the calls a real capture
records (how ``tests/test_graphs.py`` proves it).
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
from typing import Any, Iterator

from xpnet.backends.base import Backend
from xpnet.backends.capture import Capture, EmulatedCapture, EmulatedGraph

__all__ = ["Capture", "EmulatedCapture", "EmulatedGraph", "emulated", "graph_kernels",
           "graph_support", "make_capture", "support_table"]

_GRAPH_KERNELS: dict[Any, Any] = {}  # CUDA device -> CupyGraphKernels (its cuBLAS handle)
_EMULATE: contextvars.ContextVar[bool] = contextvars.ContextVar("xpnet_emulate_graphs",
                                                                default=False)


@contextlib.contextmanager
def emulated() -> Iterator[None]:
    """Inside, graph capture is emulated on every backend (:class:`EmulatedCapture`): for
    tests and debugging; a fit with ``graphs=True`` then runs on the CPU too."""
    token = _EMULATE.set(True)
    try:
        yield
    finally:
        _EMULATE.reset(token)


def graph_support(backend: Backend) -> tuple[bool, str]:
    """(whether ``backend`` can capture CUDA graphs here, why / why not); never raises."""
    if _EMULATE.get():
        return True, "capture emulated (xpnet.backends.graphs.emulated)"
    if backend.name == "torch":
        if getattr(backend.device, "type", "cpu") != "cuda":
            return False, f"torch runs on {backend.device}: CUDA graphs need a CUDA device"
        return True, "torch.cuda.graph"
    if backend.name == "cupy":
        if importlib.util.find_spec("nvmath") is None:
            return False, ("CuPy refuses cuBLAS during capture; its products go through "
                           "nvmath-python, which is not installed (pip install nvmath-python)")
        return True, "CuPy stream capture, products through nvmath-python's cuBLAS"
    return False, f"{backend.name} runs on the CPU: CUDA graphs need CuPy or torch on CUDA"


def graph_kernels(backend: Backend) -> Any:
    """The kernels a captured step runs on ``backend``: CuPy's with capturable products
    (:class:`xpnet.backends.cupy_graph.CupyGraphKernels`, one per device) where nvmath-python
    is installed; the backend's own elsewhere."""
    if backend.name == "cupy" and importlib.util.find_spec("nvmath") is not None:
        found = _GRAPH_KERNELS.get(backend.device)
        if found is None:
            from xpnet.backends.cupy_graph import CupyGraphKernels

            found = _GRAPH_KERNELS[backend.device] = CupyGraphKernels(backend.device)
        return found
    return backend.kernels


def make_capture(backend: Backend) -> Capture:
    """The :class:`Capture` for ``backend`` (check :func:`graph_support` first)."""
    if _EMULATE.get():
        return EmulatedCapture()
    if backend.name == "torch":
        from xpnet.backends.torch_graph import TorchCapture

        return TorchCapture(backend.device)
    if backend.name == "cupy":
        from xpnet.backends.cupy_graph import CupyCapture

        return CupyCapture(backend.device)
    raise ValueError(graph_support(backend)[1])


def support_table() -> list[tuple[str, bool, str]]:
    """(place, capturable, reason) for torch on CUDA and CuPy here (``xpnet info``)."""
    from xpnet.backends import available_backends, get_backend

    rows = []
    found = available_backends()
    for name, device in (("torch", "cuda"), ("cupy", None)):
        ok, why = found[name]
        if not ok:
            rows.append((name, False, why))
            continue
        try:
            be = get_backend(name, device)
        except Exception as exc:  # torch without CUDA: the device is refused
            rows.append((f"{name} cuda", False, str(exc).split(". ")[0]))
            continue
        rows.append((f"{name} {be.device}", *graph_support(be)))
    return rows
