"""CUDA graphs on torch: ``torch.cuda.graph`` with a capture stream and a memory pool per graph.

    warm     fn on the capture stream (ordered after the current stream's work, and the
             current stream after it): cuBLAS' handle and workspace for that stream, and every
             workspace buffer of the step, exist before capture
    capture  ``torch.cuda.graph(g, pool=..., stream=...)``: torch's private pool makes memory
             allocated inside the capture safe (it is the graph's until the graph is freed)
    replay   ``g.replay()`` on the current stream

Each capture gets its own stream: graphs that share a capture stream share a cuBLAS workspace
(pytorch#193402). TF32 (``torch.backends.cuda.matmul``) is read when a product is captured,
so it is part of :meth:`TorchCapture.key`.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from xpnet.backends.capture import Capture

__all__ = ["TorchCapture", "TorchGraph"]


class TorchGraph:
    """A captured ``torch.cuda.CUDAGraph`` (held with its pool and stream)."""

    def __init__(self, graph: Any, stream: Any) -> None:
        self.graph, self.stream = graph, stream

    def replay(self) -> None:
        """One launch of the whole graph on the current stream."""
        self.graph.replay()


class TorchCapture(Capture):
    """Capture on the CUDA device ``device`` (a ``torch.device``)."""

    def __init__(self, device: Any) -> None:
        self.device = device
        self.stream = torch.cuda.Stream(device=device)
        self.pool = torch.cuda.graph_pool_handle()

    def key(self) -> tuple:
        m = torch.backends.cuda.matmul
        return ("torch", str(getattr(m, "fp32_precision", None)), bool(m.allow_tf32))

    def warm(self, fn: Callable[[], None]) -> None:
        """fn on the capture stream, between the current stream's work before and after."""
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        with torch.cuda.stream(self.stream):
            fn()
        current.wait_stream(self.stream)

    def capture(self, fn: Callable[[], None]) -> TorchGraph:
        """fn's kernels captured on this capture's stream, into its pool; nothing runs."""
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.device(self.device):
            with torch.cuda.graph(graph, pool=self.pool, stream=self.stream):
                fn()
        return TorchGraph(graph, self.stream)
