"""What is measured: network configurations and candidates, and the targets they are held to."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CANDIDATES", "CPU_CONFIGS", "GPU_CONFIGS", "QUICK_CONFIGS", "TARGETS", "Candidate",
           "Config", "Target", "parse_config"]


@dataclass(frozen=True)
class Config:
    """A network ``dims`` = (n[0], ..., n[L]) trained with mini-batches of ``batch`` examples;
    one timed repeat is an epoch of ``n_batches`` batches."""

    dims: tuple[int, ...]
    batch: int
    n_batches: int
    gpu_only: bool = False

    @property
    def name(self) -> str:
        return f"{'-'.join(map(str, self.dims))}@{self.batch}"

    @property
    def width(self) -> int:
        return max(self.dims[1:-1], default=self.dims[-1])


def _epoch_batches(batch: int) -> int:
    """Enough batches for an epoch of ~16k examples, at least 16 and at most 256."""
    return max(16, min(256, 16384 // batch))


def parse_config(text: str, n_batches: int | None = None, gpu_only: bool = False) -> Config:
    """``"784-256-256-10@128"`` -> Config; error says the expected form."""
    try:
        dims_text, batch_text = text.split("@")
        dims = tuple(int(n) for n in dims_text.split("-"))
        batch = int(batch_text)
        if len(dims) < 2 or min(dims) < 1 or batch < 1:
            raise ValueError
    except ValueError:
        raise ValueError(f"bad configuration {text!r}; expected layer sizes and a batch size "
                         "like 784-256-256-10@128") from None
    return Config(dims, batch, n_batches or _epoch_batches(batch), gpu_only)


def _configs(*names: str) -> tuple[Config, ...]:
    return tuple(parse_config(n) for n in names)


CPU_CONFIGS = _configs("784-256-256-10@32", "784-256-256-10@128", "784-256-256-10@512",
                       "784-1024-1024-10@512")
GPU_CONFIGS = CPU_CONFIGS + (parse_config("784-4096-4096-10@4096", gpu_only=True),)
QUICK_CONFIGS = (parse_config("784-256-256-10@128", n_batches=64),
                 parse_config("784-256-256-10@32", n_batches=128))


@dataclass(frozen=True)
class Candidate:
    """One row of the table: ``kind`` is step (xpnet), eager (PyTorch), sklearn, floor or fit;
    ``backend`` the library; ``device`` 'cpu' or 'cuda'; ``tf32`` lets float32 products use TF32;
    ``fused``: CuPy's fused CUDA kernels (``kernels="fused"``, ``Backend.fused_kernels``)."""

    name: str
    kind: str
    backend: str
    device: str = "cpu"
    tf32: bool = False
    fused: bool = False
    sanity: bool = False  # a tiny row only (array-api-strict): first configuration, few batches

    @property
    def gpu(self) -> bool:
        return self.device == "cuda"

    @property
    def floor(self) -> str:
        """The floor row on the same backend and device: what this row's products alone take."""
        lib = "numpy" if self.backend == "numpy-portable" else self.backend
        cuda = "-cuda" if self.gpu and lib == "torch" else ""
        return f"floor-{lib}{cuda}{'-tf32' if self.tf32 else ''}"

    @property
    def eager(self) -> str:
        """PyTorch eager's row on the same device (and TF32 setting)."""
        return f"torch-eager{'-cuda' if self.gpu else ''}{'-tf32' if self.tf32 else ''}"


CANDIDATES = (
    Candidate("xpnet-numpy", "step", "numpy"),
    Candidate("xpnet-numpy-portable", "step", "numpy-portable"),
    Candidate("xpnet-torch", "step", "torch"),
    Candidate("xpnet-strict", "step", "array_api_strict", sanity=True),
    Candidate("torch-eager", "eager", "torch"),
    Candidate("sklearn", "sklearn", "sklearn"),
    Candidate("floor-numpy", "floor", "numpy"),
    Candidate("floor-torch", "floor", "torch"),
    Candidate("fit-numpy", "fit", "numpy"),
    Candidate("xpnet-cupy", "step", "cupy", "cuda"),
    Candidate("xpnet-torch-cuda", "step", "torch", "cuda"),
    Candidate("torch-eager-cuda", "eager", "torch", "cuda"),
    Candidate("floor-cupy", "floor", "cupy", "cuda"),
    Candidate("floor-torch-cuda", "floor", "torch", "cuda"),
    Candidate("xpnet-cupy-tf32", "step", "cupy", "cuda", tf32=True),
    Candidate("xpnet-torch-cuda-tf32", "step", "torch", "cuda", tf32=True),
    Candidate("torch-eager-cuda-tf32", "eager", "torch", "cuda", tf32=True),
    Candidate("floor-cupy-tf32", "floor", "cupy", "cuda", tf32=True),
    Candidate("floor-torch-cuda-tf32", "floor", "torch", "cuda", tf32=True),
    Candidate("fit-cupy", "fit", "cupy", "cuda"),
    Candidate("xpnet-cupy-fused", "step", "cupy", "cuda", fused=True),
    Candidate("xpnet-cupy-fused-tf32", "step", "cupy", "cuda", tf32=True, fused=True),
    Candidate("fit-cupy-fused", "fit", "cupy", "cuda", fused=True),
)


@dataclass(frozen=True)
class Target:
    """``candidate`` vs ``other`` on ``config``: samples/s ratio >= ``at_least`` (``speedup``),
    or time-per-sample ratio <= ``at_most`` (``within``)."""

    config: str
    candidate: str
    other: str
    at_least: float | None = None
    at_most: float | None = None

    @property
    def text(self) -> str:
        if self.at_least is not None:
            return f"{self.candidate} >= {self.at_least}x {self.other} samples/s @{self.config}"
        return f"{self.candidate} time within {self.at_most}x {self.other} @{self.config}"


# The CPU targets (784-256-256-10, float32, plain SGD, NumPy backend), then the GPU ones
# (checked only where their rows ran): a small net's step no slower than PyTorch eager's, a
# large one's within 1.10x of cuBLAS's products alone with TF32.
TARGETS = (
    Target("784-256-256-10@128", "xpnet-numpy", "torch-eager", at_least=1.3),
    Target("784-256-256-10@128", "xpnet-numpy", "sklearn", at_least=1.5),
    Target("784-256-256-10@128", "xpnet-numpy", "floor-numpy", at_most=1.35),
    Target("784-256-256-10@32", "xpnet-numpy", "torch-eager", at_least=2.5),
    Target("784-256-256-10@128", "fit-numpy", "xpnet-numpy", at_most=1.15),
    Target("784-256-256-10@32", "fit-numpy", "xpnet-numpy", at_most=1.15),
    Target("784-256-256-10@128", "xpnet-cupy-fused", "torch-eager-cuda", at_least=1.0),
    Target("784-256-256-10@128", "xpnet-cupy", "torch-eager-cuda", at_least=1.0),
    Target("784-4096-4096-10@4096", "xpnet-cupy-fused-tf32", "floor-cupy-tf32", at_most=1.10),
)
