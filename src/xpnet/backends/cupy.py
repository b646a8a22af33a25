"""The CuPy backend: CuPy arrays on one CUDA device."""

from __future__ import annotations

import contextlib
import operator
import os
import sys
from typing import Any

import numpy as np

from xpnet.backends.base import Backend, cuda_labels, instance_of, to_host
from xpnet.errors import BackendError

__all__ = ["CupyBackend"]

_INSTALL = "pip install 'xpnet[cuda12]' or 'xpnet[cuda13]'"


class CupyBackend(Backend):
    """CuPy (through array-api-compat's namespace); ``device`` is the CUDA device index."""

    name = "cupy"
    supports_views = True

    @classmethod
    def _probe(cls) -> tuple[bool, str]:
        try:
            import cupy
        except ImportError as exc:
            if exc.name not in (None, "cupy"):  # cupy is there, one of its dependencies is not
                return False, (f"cupy is installed but cannot be imported: {exc}; reinstall it "
                               f"with its dependencies ({_INSTALL})")
            return False, f"cupy is not installed ({exc}); {_INSTALL}"
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

    @classmethod
    def _namespace(cls) -> Any:
        import array_api_compat.cupy as xp

        return xp

    def dense_rows(self, block: Any) -> Any:
        """A SciPy sparse block goes to the GPU as CSR (its stored entries only) and is made
        dense there (cupyx.scipy.sparse)."""
        if not hasattr(block, "tocsr"):
            return super().dense_rows(block)
        import cupy
        import cupyx.scipy.sparse as cusparse

        csr = block.tocsr()
        with cupy.cuda.Device(self.device):
            gpu = cusparse.csr_matrix((cupy.asarray(csr.data), cupy.asarray(csr.indices),
                                       cupy.asarray(csr.indptr)), shape=csr.shape)
            return cupy.ascontiguousarray(gpu.toarray())

    def free_memory(self) -> int | None:
        """The driver's free bytes plus what CuPy's memory pool holds unused."""
        import cupy

        with cupy.cuda.Device(self.device) as dev:
            free = int(dev.mem_info[0])
        return free + int(cupy.get_default_memory_pool().free_bytes())

    @contextlib.contextmanager
    def matmul_precision(self, tf32: bool) -> Any:
        """CuPy's float32 compute type set to TF32 / the default inside; restored after.

        CuPy reads ``CUPY_TF32`` once, at the first float32 product of the process, into a
        per-dtype compute type that ``cupy._core._routines_linalg.set_compute_type`` changes
        (process-wide). Where that function is missing (another CuPy version), the
        environment variable is set instead, which takes effect only before that first product.
        """
        import numpy

        try:
            from cupy._core import _routines_linalg as linalg

            before = linalg.get_compute_type(numpy.float32)
            want = linalg.COMPUTE_TYPE_TF32 if tf32 else linalg.COMPUTE_TYPE_DEFAULT
        except (ImportError, AttributeError):
            os.environ["CUPY_TF32"] = "1" if tf32 else "0"
            yield
            return
        linalg.set_compute_type(numpy.float32, want)
        try:
            yield
        finally:
            linalg.set_compute_type(numpy.float32, before)

    @property
    def device_spec(self) -> Any:
        return int(self.device)  # the CUDA device index

    @property
    def on_host(self) -> bool:
        return False

    @classmethod
    def parse_device(cls, device: Any) -> Any:
        import cupy

        index = cls._index(device)
        if index is None:
            raise BackendError(f"backend 'cupy' expects device as an index (0, 1, ...), "
                               f"'cuda', 'cuda:N' or a cupy.cuda.Device; got {device!r}")
        count = cupy.cuda.runtime.getDeviceCount()
        if not 0 <= index < count:
            raise BackendError(f"CUDA device {index} does not exist: {count} device(s) "
                               f"(0..{count - 1}) are visible")
        return index

    @classmethod
    def _index(cls, device: Any) -> int | None:
        """The CUDA index ``device`` names (None, ``"cuda"``: the current device); None when
        it names none."""
        import cupy

        if device is None or device == "cuda":
            return int(cupy.cuda.runtime.getDevice())
        if isinstance(device, cupy.cuda.Device):
            return int(device.id)
        if isinstance(device, str):
            head, _, tail = device.partition(":")
            return int(tail) if head == "cuda" and tail.isdigit() else None
        if isinstance(device, bool):
            return None
        try:
            return operator.index(device)
        except TypeError:
            return None

    @classmethod
    def canonical_device(cls, device: Any) -> Any:
        """The CUDA index, an int (a ``cupy.cuda.Device`` or ``"cuda:N"`` becomes N)."""
        if isinstance(device, int) and not isinstance(device, bool):
            return device
        index = cls._index(device)
        return device if index is None else index

    @classmethod
    def _devices(cls, describe: bool) -> list[str]:
        found: list[str] = []
        try:
            import cupy

            def gpu_name(i: int) -> str:
                raw = cupy.cuda.runtime.getDeviceProperties(i)["name"]
                return raw.decode() if isinstance(raw, bytes) else str(raw)

            cuda_labels(cupy.cuda.runtime.getDeviceCount(), gpu_name, describe, found)
        except Exception:
            pass
        return found

    @staticmethod
    def is_array(x: Any) -> bool:
        return instance_of(x, "cupy", "ndarray")

    @staticmethod
    def device_of(x: Any) -> Any:
        return int(x.device.id)

    @classmethod
    def is_out_of_memory(cls, exc: BaseException) -> bool:
        if isinstance(exc, MemoryError):
            return True
        cupy = sys.modules.get("cupy")
        oom = getattr(getattr(getattr(cupy, "cuda", None), "memory", None), "OutOfMemoryError",
                      None)
        return oom is not None and isinstance(exc, oom)

    @classmethod
    def synchronize_all(cls) -> None:
        if "cupy" in sys.modules and cls.probe()[0]:
            import cupy

            cupy.cuda.get_current_stream().synchronize()

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        import cupy

        if not self.is_array(x):
            x = to_host(x)
        with cupy.cuda.Device(self.device):
            return cupy.asarray(x, dtype=dtype)

    @staticmethod
    def to_numpy(x: Any) -> np.ndarray:
        return x.get()

    def staging(self) -> Any:
        """Pinned host memory and a copy stream
        (:class:`xpnet.backends.cuda_staging.CupyStaging`)."""
        from xpnet.backends.cuda_staging import CupyStaging

        return CupyStaging(self)

    def synchronize(self) -> None:
        import cupy

        with cupy.cuda.Device(self.device):
            cupy.cuda.get_current_stream().synchronize()

    def device_context(self) -> Any:
        import cupy

        return cupy.cuda.Device(self.device)

    def fused_kernels(self) -> Any:
        """The fused CUDA kernels (:class:`xpnet.backends.cupy_kernels.CupyKernels`), chosen
        with ``kernels="fused"``; the default stays the portable kernels until a GPU run has
        verified them."""
        from xpnet.backends.cupy_kernels import CupyKernels

        return CupyKernels()
