"""A fit's bookkeeping (the curves scikit-learn reports, the loop's fixed settings, the typed
state a fit continues from) and what the loop says when the device runs out of memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xpnet.backends import Backend
from xpnet.errors import DeviceMemoryError

__all__ = ["Progress", "Settings", "TrainingState", "memory_estimate", "out_of_memory"]


@dataclass
class Progress:
    """What the estimator reports after fitting (scikit-learn's names without the ``_``)."""

    n_iter: int = 0                   # epochs run in this fit (partial_fit: in total)
    t: int = 0                        # samples seen, scikit-learn's t_ (invscaling's clock)
    loss: float | None = None         # the last epoch's training loss
    loss_curve: list[float] = field(default_factory=list)
    val_loss_curve: list[float] | None = None
    val_scores: list[float] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Settings:
    """The loop's fixed settings for one call of fit / partial_fit."""

    max_iter: int
    batch_size: int
    shuffle: bool = True
    alpha: float = 0.0
    dropout: list[float] | None = None   # per hidden layer; None: no dropout
    clip_norm: float | None = None
    incremental: bool = False            # partial_fit: one epoch, no ConvergenceWarning
    verbose: bool = False                # scikit-learn's lines on stdout, each epoch
    bars: int = 0                        # progress_bar: 1 a bar over epochs; 2 and batches
    kind: str = "multiclass"             # binary, multiclass, multilabel, continuous
    loss_scale: float = 1.0              # c in J = c * data loss + L2 (1/n[L]: squared error
                                         # as a mean over the outputs, scikit-learn's)
    name: str = "MLP"                    # for messages
    graphs: Any = "auto"                 # CUDA graphs: "auto", True, False (training/graphs.py)
    kernels: str = "auto"                # the step's kernels: "auto", "portable", "fused"


def memory_estimate(dims: list[int], batch_size: int, itemsize: int, solver: str) -> int:
    """Bytes a training step needs on the device beyond the data: W, b, their gradients and
    optimizer state, and per layer Z[l], A[l], dZ[l] (and a dropout mask) for one batch."""
    params = sum(dims[l] * dims[l - 1] + dims[l] for l in range(1, len(dims)))
    state = {"adam": 2, "sgd": 1}.get(solver, 2)
    activations = 4 * batch_size * sum(dims)
    return (params * (2 + state) + activations) * itemsize


def _human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    return f"{nbytes:.1f} TiB"  # pragma: no cover


def out_of_memory(exc: BaseException, what: str, backend: Backend, batch_size: int,
                  needed: int) -> DeviceMemoryError:
    """The clear error for a backend's out-of-memory exception."""
    return DeviceMemoryError(
        f"out of memory on {backend} while {what}: batch_size={batch_size} needs about "
        f"{_human(needed)} for the data, parameters, optimizer state and one batch's "
        f"activations. Use a smaller batch_size or smaller layers, dtype='float32', or a "
        f"device with more memory. ({type(exc).__name__}: {str(exc)[:200]})")


@dataclass
class TrainingState:
    """Everything one fit continues from: fresh (the estimator builds it), continued (the
    fitted estimator's), or resumed (:func:`xpnet.io.modelfile.restore_training` reads it
    from a checkpoint; :func:`xpnet.io.modelfile.write` writes it).

    ``best``: early stopping's best (W, b) so far; ``train_idx``/``val_idx``: the internal
    validation split's rows (None without one); ``order``: the rows' order after the last
    shuffle (scikit-learn's sample_idx; None: 0..n-1).
    """

    net: Any
    optimizer: Any
    schedule: Any
    progress: Progress
    rng: Any
    best: tuple[dict, dict] | None = None
    train_idx: Any = None
    val_idx: Any = None
    order: Any = None
