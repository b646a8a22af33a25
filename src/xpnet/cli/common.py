"""What the ``xpnet`` commands share: errors, constants and the held-out metrics report."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["META_KEY", "PROG", "SPLIT_SEED", "TrainingFailed", "UsageError", "report",
           "user_errors"]

PROG = "xpnet"
SPLIT_SEED = 0  # the held-out split is fixed, so runs with different --seed share one test set
META_KEY = "dataset"  # what `train --save` records in the model file for `evaluate`


class UsageError(Exception):
    """A user error found after parsing: reported as one line, exit status 2."""

    status = 2


class TrainingFailed(UsageError):
    """Training itself failed (diverged, out of memory): one line, exit status 1."""

    status = 1


def user_errors():
    """The exception types a user's input causes (reported in one line, not a traceback)."""
    from xpnet.errors import BackendError
    from xpnet.errors import ModelFileError

    return (BackendError, ModelFileError, ValueError, TypeError, ImportError, OSError)


def report(model: Any, ds: Any) -> dict[str, float]:
    """Print and return the held-out metrics: accuracy (+ log loss) or R^2 (+ RMSE, MAE)."""
    from xpnet.backends import to_numpy

    n = len(ds.X_test)
    if ds.task == "classification":
        accuracy = float(model.score(ds.X_test, ds.y_test))
        metrics = {"accuracy": accuracy}
        proba = np.asarray(to_numpy(model.predict_proba(ds.X_test)), dtype=np.float64)
        classes = list(np.asarray(to_numpy(model.classes_)))
        if set(np.unique(ds.y_test)) <= set(classes):
            col = np.searchsorted(classes, ds.y_test)
            p = np.clip(proba[np.arange(n), col], 1e-15, 1.0)
            metrics["log_loss"] = float(-np.mean(np.log(p)))
        print(f"test accuracy: {accuracy:.4f} ({n} samples)"
              + (f", log loss {metrics['log_loss']:.4f}" if "log_loss" in metrics else ""))
    else:
        r2 = float(model.score(ds.X_test, ds.y_test))
        err = np.asarray(to_numpy(model.predict(ds.X_test)), np.float64).ravel() - ds.y_test
        metrics = {"r2": r2, "rmse": float(np.sqrt(np.mean(err ** 2))),
                   "mae": float(np.mean(np.abs(err)))}
        print(f"test R^2: {r2:.4f} ({n} samples), RMSE {metrics['rmse']:.4g}, "
              f"MAE {metrics['mae']:.4g}")
    return metrics
