"""The PyTorch backend: torch tensors on the CPU or a CUDA device."""

from __future__ import annotations

import contextlib
import operator
import sys
from typing import Any

import numpy as np

from xpnet.backends.base import Backend, cuda_labels, instance_of, to_host
from xpnet.errors import BackendError

__all__ = ["TorchBackend"]


class TorchBackend(Backend):
    """PyTorch (through array-api-compat's namespace); ``device`` is a ``torch.device``."""

    name = "torch"
    supports_views = True

    @classmethod
    def _probe(cls) -> tuple[bool, str]:
        import torch

        return True, f"torch {torch.__version__}"

    @classmethod
    def _namespace(cls) -> Any:
        from xpnet.backends import torch_namespace  # compat's, scalars kept in maximum/minimum

        return torch_namespace

    def free_memory(self) -> int | None:
        """The driver's free bytes plus what torch's caching allocator holds unused (CUDA)."""
        if self.device.type != "cuda":
            return None
        import torch

        free = int(torch.cuda.mem_get_info(self.device)[0])
        return free + int(torch.cuda.memory_reserved(self.device)
                          - torch.cuda.memory_allocated(self.device))

    @contextlib.contextmanager
    def matmul_precision(self, tf32: bool) -> Any:
        """torch.backends.cuda.matmul.fp32_precision = "tf32" / "ieee" inside; restored after.
        A process-wide flag: a matrix product another thread runs meanwhile sees it too."""
        import torch

        m = torch.backends.cuda.matmul
        if getattr(self.device, "type", "cpu") != "cuda" or not hasattr(m, "fp32_precision"):
            yield
            return
        before = m.fp32_precision
        m.fp32_precision = "tf32" if tf32 else "ieee"
        try:
            yield
        finally:
            m.fp32_precision = before

    @property
    def device_spec(self) -> Any:
        return str(self.device)

    @property
    def on_host(self) -> bool:
        return self.device.type == "cpu"

    @classmethod
    def parse_device(cls, device: Any) -> Any:
        import torch

        if not isinstance(device, (str, bool, torch.device)) and device is not None:
            try:  # an index (int, numpy integer): a CUDA device, as torch reads it
                device = f"cuda:{operator.index(device)}"
            except TypeError:
                pass
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
        return cls.canonical_device(dev)

    @classmethod
    def canonical_device(cls, device: Any) -> Any:
        """As torch's tensors report their device: ``cpu`` without an index; an accelerator
        with one (``cuda`` -> ``cuda:i``, i the current device)."""
        import torch

        dev = torch.device(device)
        if dev.type == "cpu":
            return torch.device("cpu")
        if dev.index is None:
            module = getattr(torch, dev.type, None)
            current = getattr(module, "current_device", None)
            return torch.device(dev.type, int(current()) if callable(current) else 0)
        return dev

    @classmethod
    def _devices(cls, describe: bool) -> list[str]:
        found = ["cpu"]
        try:
            import torch

            n = torch.cuda.device_count() if torch.cuda.is_available() else 0
            cuda_labels(n, torch.cuda.get_device_name, describe, found)
        except Exception:
            pass
        return found

    @staticmethod
    def is_array(x: Any) -> bool:
        return instance_of(x, "torch", "Tensor")

    @staticmethod
    def device_of(x: Any) -> Any:
        return x.device

    @classmethod
    def is_out_of_memory(cls, exc: BaseException) -> bool:
        if isinstance(exc, MemoryError):
            return True
        oom = getattr(getattr(sys.modules.get("torch"), "cuda", None), "OutOfMemoryError", None)
        if oom is not None and isinstance(exc, oom):
            return True
        if isinstance(exc, RuntimeError):  # torch's CPU allocator raises a RuntimeError
            text = str(exc).lower()
            return "out of memory" in text or "can't allocate memory" in text
        return False

    @classmethod
    def synchronize_all(cls) -> None:
        if "torch" in sys.modules:
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        import torch

        if not self.is_array(x):
            x = to_host(x)
        if dtype is not None and not isinstance(dtype, torch.dtype):
            dtype = getattr(torch, np.dtype(dtype).name)
        return torch.as_tensor(x, dtype=dtype, device=self.device)

    def dense_rows(self, block: Any) -> Any:
        """A SciPy sparse block goes to the device as CSR (values, column indices, row
        pointers: its stored entries only) and is made dense there."""
        if not hasattr(block, "tocsr"):
            return super().dense_rows(block)
        import torch

        csr = block.tocsr()
        parts = (torch.as_tensor(csr.indptr.astype(np.int64), device=self.device),
                 torch.as_tensor(csr.indices.astype(np.int64), device=self.device),
                 torch.as_tensor(csr.data, device=self.device))
        # SciPy's CSR is valid by construction: opt out of the checks explicitly (torch warns
        # when they are left implicitly off)
        return torch.sparse_csr_tensor(*parts, size=csr.shape,
                                       check_invariants=False).to_dense()

    @staticmethod
    def to_numpy(x: Any) -> np.ndarray:
        return x.detach().cpu().numpy()

    def staging(self) -> Any:
        """On CUDA pinned host memory and a copy stream
        (:class:`xpnet.backends.cuda_staging.TorchStaging`); on the CPU the portable one."""
        if self.device.type != "cuda":
            return super().staging()
        from xpnet.backends.cuda_staging import TorchStaging

        return TorchStaging(self)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)

    def make_kernels(self) -> Any:
        """:class:`xpnet.backends.torch_kernels.TorchKernels` (imported here: torch loads lazily)."""
        from xpnet.backends.torch_kernels import TorchKernels

        return TorchKernels()
