"""The capture interface every backend's CUDA-graph capture offers, and its emulation.

    capture.warm(fn)              fn run eagerly, the way its capture will run
    graph = capture.capture(fn)   fn's device work recorded, nothing executed
    graph.replay()                the recorded work launched again, on the current stream
    capture.key()                 what else a capture bakes in (TF32 on or off)

:class:`EmulatedCapture` keeps the function and calls it again on each replay: the graph
path's logic on any device (:func:`xpnet.backends.graphs.emulated`).
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["Capture", "EmulatedCapture", "EmulatedGraph"]


class Capture:
    """What every backend's capture offers (see the module doc)."""

    def warm(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` eagerly, as its capture will run."""
        fn()

    def capture(self, fn: Callable[[], None]) -> Any:
        """A graph of ``fn``'s device work (nothing runs); ``graph.replay()`` launches it."""
        raise NotImplementedError  # pragma: no cover

    def key(self) -> tuple:
        """What a capture bakes in besides its buffers (the matrix products' precision)."""
        return ()


class EmulatedGraph:
    """A 'graph' that calls its function again on each replay (nothing is captured)."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn
        self.replays = 0

    def replay(self) -> None:
        """fn() again: the calls a real capture of fn would launch."""
        self.replays += 1
        self.fn()


class EmulatedCapture(Capture):
    """Capture that keeps the function (:func:`emulated`): the driver's logic on any device,
    with the kernels a real capture would run (so on a GPU, the eager twin of a capture)."""

    def __init__(self) -> None:
        self.captures = 0

    def capture(self, fn: Callable[[], None]) -> EmulatedGraph:
        self.captures += 1
        return EmulatedGraph(fn)
