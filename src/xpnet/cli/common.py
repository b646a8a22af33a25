"""What the ``xpnet`` commands share: errors, constants and the held-out metrics report."""

from __future__ import annotations

from typing import Any

import os
import sys

import numpy as np

__all__ = ["META_KEY", "PROG", "SPLIT_SEED", "TrainingFailed", "UsageError", "check_model",
           "check_output", "note", "on_host", "report", "user_errors"]

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


def check_model(path: str) -> None:
    """Refuse a MODEL argument that is not a file, before any work."""
    if not os.path.isfile(path):
        what = "is a folder" if os.path.isdir(path) else "no such file"
        raise UsageError(f"model {path}: {what}; expected a model file written by `xpnet "
                         f"train --save` or est.save()")


def check_output(path: str | None, option: str) -> None:
    """Refuse, before any work, an output path that cannot be written: its folder missing or
    not writable, or the path itself a folder."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{option} {path}: is a folder; expected a file path inside it")
    if not os.path.isdir(folder):
        raise UsageError(f"{option} {path}: the folder {folder} does not exist; create it "
                         f"first, or choose a path in an existing folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: the folder {folder} is not writable; choose "
                         f"another path")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise UsageError(f"{option} {path}: the file exists and is not writable; choose "
                         f"another path")


def on_host(model: str, backend: str | None) -> bool:
    """Whether the model in ``model`` answers on NumPy (``--backend``, else the backend it
    records, resolved here): then the CLI needs no estimator classes (no scikit-learn)."""
    from xpnet.backends import get_backend
    from xpnet.io import container

    if backend is None:
        params = container.load(model)[1].get("params")
        backend = params.get("backend", "auto") if isinstance(params, dict) else "auto"
    if backend == "auto":
        try:
            backend = get_backend("auto").name
        except Exception:  # the estimator's own loading reports it
            return False
    return backend == "numpy"


def note(command: str, text: str) -> None:
    """A one-line note on standard error: what was done to the user's data."""
    print(f"{PROG} {command}: note: {text}", file=sys.stderr)


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
