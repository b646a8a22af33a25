"""The exceptions xpnet raises on purpose; every layer imports them from here."""

from __future__ import annotations

__all__ = ["NON_FINITE", "BackendError", "DeviceMemoryError", "DistributedError",
           "DivergenceError", "ModelFileError"]

#: scikit-learn's words for a fit that ends at non-finite parameters (its ValueError's)
NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large "
              "values and need to be preprocessed.")


class BackendError(ValueError):
    """A backend or device that does not exist, is not installed, or cannot run here."""


class DivergenceError(FloatingPointError, ValueError):
    """Training produced a non-finite loss or parameter; the model keeps the last finite ones.

    A ValueError too, whose message starts with scikit-learn's (:data:`NON_FINITE`): code
    written for scikit-learn's MLP catches it as it catches scikit-learn's."""

    def __init__(self, message: str, epoch: int, batch: int | None) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch


class DeviceMemoryError(MemoryError):
    """The device (or host) ran out of memory for the data or a training step."""


class ModelFileError(ValueError):
    """A model file is truncated, corrupt, of another format or version, or inconsistent."""


class DistributedError(RuntimeError):
    """Data-parallel training cannot go on: another rank failed, died or stopped answering."""
