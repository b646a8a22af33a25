"""The staging buffer on CUDA (CuPy, torch): page-locked host memory, copies on a second stream.

The pipeline is :mod:`xpnet.backends.staging`'s; here each slot has two events: ``copied``
(recorded on the copy stream after host[s] -> device[s]; the compute stream waits for it, the
host waits for it before refilling host[s]) and ``computed`` (recorded on the compute stream
after the work that reads device[s]; the copy stream waits for it before overwriting
device[s]). The device slots are allocated per prediction from the library's pool on the
compute stream, which the copy stream waits for before its first copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xpnet.backends.staging import Session, Staging

__all__ = ["CupyStaging", "TorchStaging"]


class _CudaSession(Session):
    """Slots, events and streams; the library's calls are the subclass's."""

    def __init__(self, staging: Staging, host: np.ndarray) -> None:
        super().__init__(staging, host)
        self.copied: list[Any] = [None, None]
        self.computed: list[Any] = [None, None]

    def wait_host(self, slot: int) -> None:
        if self.copied[slot] is not None:
            self.copied[slot].synchronize()

    def release(self, slot: int) -> None:
        self.computed[slot] = self._event(self.compute)

    def send(self, slot: int, rows: int) -> Any:
        if self.computed[slot] is not None:
            self.copy.wait_event(self.computed[slot])
        self._copy(slot, rows)
        self.copied[slot] = self._event(self.copy)
        self.compute.wait_event(self.copied[slot])
        return self.dev[slot, :rows]


# --------------------------------------------------------------------------- CuPy
class _CupySession(_CudaSession):
    def __init__(self, staging: "CupyStaging", host: np.ndarray) -> None:
        import cupy

        super().__init__(staging, host)
        self.cupy = cupy
        self.compute = cupy.cuda.get_current_stream()
        self.copy = staging.copy_stream()
        self.dev = cupy.empty(host.shape, dtype=host.dtype)
        self.copy.wait_event(self._event(self.compute))  # the slots' memory is free there

    def _event(self, stream: Any) -> Any:
        ev = self.cupy.cuda.Event(disable_timing=True)
        ev.record(stream)
        return ev

    def _copy(self, slot: int, rows: int) -> None:
        self.dev[slot, :rows].set(self.host[slot, :rows], stream=self.copy)  # async: pinned


class CupyStaging(Staging):
    """Pinned host memory from ``cupyx.empty_pinned``; one non-blocking copy stream."""

    def __init__(self, backend: Any) -> None:
        super().__init__(backend)
        self._stream = None

    def copy_stream(self) -> Any:
        import cupy

        if self._stream is None:
            with cupy.cuda.Device(self.backend.device):
                self._stream = cupy.cuda.Stream(non_blocking=True)
        return self._stream

    def _allocate(self, shape: tuple[int, int, int], dtype: np.dtype) -> np.ndarray:
        import cupy
        import cupyx

        with cupy.cuda.Device(self.backend.device):
            return cupyx.empty_pinned(shape, dtype=dtype)

    def _session(self, host: np.ndarray) -> Session:
        import cupy

        with cupy.cuda.Device(self.backend.device):
            return _CupySession(self, host)


# --------------------------------------------------------------------------- torch
class _TorchSession(_CudaSession):
    def __init__(self, staging: "TorchStaging", host: np.ndarray) -> None:
        import torch

        super().__init__(staging, host)
        self.torch = torch
        dev = staging.backend.device
        self.host_t = staging.tensor
        self.compute = torch.cuda.current_stream(dev)
        self.copy = staging.copy_stream()
        self.dev = torch.empty(tuple(host.shape), dtype=self.host_t.dtype, device=dev)
        self.copy.wait_stream(self.compute)  # the slots' memory is free there
        self.dev.record_stream(self.copy)  # the allocator: the copy stream uses it too

    def _event(self, stream: Any) -> Any:
        ev = self.torch.cuda.Event()
        ev.record(stream)
        return ev

    def _copy(self, slot: int, rows: int) -> None:
        with self.torch.cuda.stream(self.copy):
            self.dev[slot, :rows].copy_(self.host_t[slot, :rows], non_blocking=True)


class TorchStaging(Staging):
    """Pinned host memory from ``torch.empty(..., pin_memory=True)`` (``host`` is its NumPy
    view, ``tensor`` the tensor); one copy stream on the device."""

    def __init__(self, backend: Any) -> None:
        super().__init__(backend)
        self.tensor = None
        self._stream = None

    def copy_stream(self) -> Any:
        import torch

        if self._stream is None:
            self._stream = torch.cuda.Stream(device=self.backend.device)
        return self._stream

    def _allocate(self, shape: tuple[int, int, int], dtype: np.dtype) -> np.ndarray:
        import torch

        self.tensor = None
        self.tensor = torch.empty(shape, dtype=getattr(torch, dtype.name), pin_memory=True)
        return self.tensor.numpy()

    def _session(self, host: np.ndarray) -> Session:
        return _TorchSession(self, host)
