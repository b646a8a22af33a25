"""CUDA graphs on CuPy: stream capture, with the products through nvmath-python's cuBLAS.

    warm     fn on the capture stream (ordered after the current stream's work, and the
             current stream after it), allocating from the capture's own memory pool
    capture  ``stream.begin_capture()`` .. ``end_capture()`` (relaxed mode), the same pool;
             then ``Graph.upload`` once
    replay   ``graph.launch(current stream)``

CuPy bakes the addresses of memory allocated during capture into the graph while its default
pool may later hand that memory to another array. Here every buffer the step keeps is in its
workspace before capture (:class:`CupyGraphKernels` writes Z, A, dZ, dA, the permuted epoch
data and the products with ``out=``), and what the kernels still allocate inside a capture
(dropout masks, the softmax kernel's outputs, reduction scratch) comes from a pool that only
this capture uses and that lives as long as the graph: no array outside the graph ever gets
that memory. ``cupy.random`` is never used in a step (dropout is the counter-based kernel).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

import cupy

from xpnet.backends.cupy_blas import Blas, tf32_enabled
from xpnet.backends.cupy_kernels import CupyKernels
from xpnet.backends.cupy_sources import ELEMENTWISE, HIDDEN, kernel_name
from xpnet.backends.capture import Capture

__all__ = ["CupyCapture", "CupyGraph", "CupyGraphKernels", "CupyWorkspace", "elementwise"]


class CupyWorkspace(dict):
    """CuPy arrays reused from step to step, one per (role, shape, dtype)."""

    def out(self, key: Any, shape: tuple[int, ...], like: Any) -> Any:
        """The buffer ``key`` of ``shape``, with ``like``'s dtype (on the current device)."""
        k = (key, tuple(int(s) for s in shape), like.dtype)
        buf = self.get(k)
        if buf is None:
            buf = self[k] = cupy.empty(k[1], dtype=like.dtype)
        return buf


@lru_cache(maxsize=None)
def elementwise(key: str) -> Any:
    """``ELEMENTWISE[key]`` as a ``cupy.ElementwiseKernel`` (CuPy caches the compiled code by
    source, so this shares the fused kernels' binaries)."""
    in_params, out_params, body = ELEMENTWISE[key]
    return cupy.ElementwiseKernel(in_params, out_params, body, kernel_name(key))


def _buf(ws: Any, key: Any, shape: tuple[int, ...], like: Any) -> Any:
    return cupy.empty(shape, dtype=like.dtype) if ws is None else ws.out(key, shape, like)


class CupyGraphKernels(CupyKernels):
    """The fused CuPy kernels with capturable products (:class:`Blas`) and ``out=`` buffers."""

    def __init__(self, device: int) -> None:
        self.blas = Blas(device)

    def workspace(self) -> CupyWorkspace:
        return CupyWorkspace()

    def take_rows(self, X: Any, idx: Any, *, xp: Any, ws: Any, role: str) -> Any:
        out = _buf(ws, ("rows", role), (idx.shape[0], X.shape[1]), X)
        return cupy.take(X, idx, axis=0, out=out)

    def linear(self, W: Any, A_prev: Any, b: Any, *, xp: Any, ws: Any, l: int) -> Any:
        Z = self.blas.matmul(W, A_prev, _buf(ws, ("Z", l), (W.shape[0], A_prev.shape[1]), W))
        return cupy.add(Z, b, out=Z)

    def linear_activation(self, W: Any, A_prev: Any, b: Any, g: str, *, xp: Any, ws: Any,
                          l: int) -> tuple[Any, Any]:
        if g not in HIDDEN:
            return super().linear_activation(W, A_prev, b, g, xp=xp, ws=ws, l=l)
        Z = self.blas.matmul(W, A_prev, _buf(ws, ("Z", l), (W.shape[0], A_prev.shape[1]), W))
        A = _buf(ws, ("A", l), Z.shape, Z)
        elementwise(f"bias_{g}")(b, Z, A)   # Z := Z + b;  A = g(Z)
        return Z, A

    def weight_grads(self, dZ: Any, A_prev: Any, *, xp: Any, ws: Any, l: int,
                     out: tuple[Any, Any] = (None, None)) -> tuple[Any, Any]:
        dW = out[0] if out[0] is not None else _buf(ws, ("dW", l),
                                                     (dZ.shape[0], A_prev.shape[0]), dZ)
        return (self.blas.matmul(dZ, A_prev.T, dW),
                cupy.sum(dZ, axis=1, keepdims=True, out=out[1]))

    def back_propagate(self, W: Any, dZ: Any, *, xp: Any, ws: Any, l: int) -> Any:
        return self.blas.matmul(W.T, dZ, _buf(ws, ("dA", l - 1), (W.shape[1], dZ.shape[1]), dZ))

    def activation_backward(self, dA: Any, Z: Any, A: Any, g: str, *, xp: Any, ws: Any,
                            l: int) -> Any:
        if g not in HIDDEN:
            return super().activation_backward(dA, Z, A, g, xp=xp, ws=ws, l=l)
        dZ = _buf(ws, ("dZ", l), dA.shape, dA)
        elementwise(f"backward_{g}")(dA, Z, A, dZ)
        return dZ


class CupyGraph:
    """A captured, uploaded ``cupy.cuda.Graph``, held with its pool."""

    def __init__(self, graph: Any, pool: Any) -> None:
        self.graph, self.pool = graph, pool

    def replay(self) -> None:
        """One launch of the whole graph on the current stream."""
        self.graph.launch(cupy.cuda.get_current_stream())


class CupyCapture(Capture):
    """Capture on CUDA device ``device`` (an index), with its own stream and memory pool."""

    def __init__(self, device: int) -> None:
        self.device = device
        with cupy.cuda.Device(device):
            self.stream = cupy.cuda.Stream(non_blocking=True)
        self.pool = cupy.cuda.MemoryPool()

    def key(self) -> tuple:
        return ("cupy", tf32_enabled())

    def _on_stream(self, fn: Callable[[], None]) -> None:
        current = cupy.cuda.get_current_stream()
        self.stream.wait_event(current.record())
        with cupy.cuda.using_allocator(self.pool.malloc), self.stream:
            fn()
        current.wait_event(self.stream.record())

    def warm(self, fn: Callable[[], None]) -> None:
        """fn eagerly on the capture stream, from the capture's pool."""
        with cupy.cuda.Device(self.device):
            self._on_stream(fn)

    def capture(self, fn: Callable[[], None]) -> CupyGraph:
        """fn's kernels captured on this capture's stream (nothing runs), then uploaded."""
        with cupy.cuda.Device(self.device):
            with cupy.cuda.using_allocator(self.pool.malloc), self.stream:
                self.stream.begin_capture()
                try:
                    fn()
                finally:
                    graph = self.stream.end_capture()
            graph.upload(self.stream)
            self.stream.synchronize()
        return CupyGraph(graph, self.pool)
