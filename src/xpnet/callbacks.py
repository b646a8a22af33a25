"""``fit(..., callbacks=[...])``: see :mod:`xpnet.training.callbacks`."""

from xpnet.training.callbacks import Callback, CSVLogger, EarlyStopping, TensorBoardLogger

__all__ = ["CSVLogger", "Callback", "EarlyStopping", "TensorBoardLogger"]
