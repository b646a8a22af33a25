"""The validation set of a fit: ``validation_data`` checked and moved to the backend, or a
(stratified) split of X, y for early stopping; and the fingerprint a checkpoint keeps of it.

Rows are examples here (scikit-learn's layout), as in :mod:`xpnet.inputs`.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from xpnet.backends import Backend, is_out_of_memory, to_numpy
from xpnet.estimators.params import Config
from xpnet.estimators.inputs import Target, check_X, classification_target, regression_target
from xpnet.training.loop import out_of_memory

__all__ = ["holdout_split", "train_and_validation", "validation_fingerprint", "validation_set"]


def validation_set(data: Any, be: Backend, cfg: Config, target: Target, n_features: int,
                name: str) -> tuple[Any, Any]:
    """``validation_data`` checked like X, y and moved to ``be``: (X_val, Y_val), rows
    are examples, Y_val encoded as the training Y (same classes, same columns); ``name``:
    the estimator's class name, for the errors."""
    if isinstance(data, (str, bytes)) or not isinstance(data, (tuple, list)) \
            or len(data) != 2:
        got = f"a {type(data).__name__}" + (f" of length {len(data)}" if isinstance(
            data, (tuple, list)) else "")
        raise ValueError(f"validation_data must be a pair (X_val, y_val); got {got}. "
                         f"Pass validation_data=(X_val, y_val) (sample weights are not "
                         f"supported)")
    X_val, y_val = data
    n_outputs = int(target.Y.shape[1])
    try:
        Xv = check_X(X_val, be, cfg.dtype, estimator=name, name="validation_data X")
        if int(Xv.shape[1]) != n_features:
            raise ValueError(f"validation_data X has {int(Xv.shape[1])} features but X has "
                             f"{n_features}; pass validation data with the same columns "
                             f"as X")
        m = int(Xv.shape[0])
        try:
            if target.kind == "continuous":
                Yv = regression_target(y_val, m, be, cfg.dtype, n_outputs=n_outputs)
            else:
                width = n_outputs if target.kind == "multilabel" else None
                Yv = classification_target(y_val, m, be, cfg.dtype, classes=target.classes,
                                           multilabel_width=width, estimator=name)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"validation_data: {exc}") from None
    except Exception as exc:
        if is_out_of_memory(exc):
            shape = tuple(getattr(X_val, "shape", np.shape(X_val)))
            raise out_of_memory(exc, f"moving validation_data X {shape} there", be,
                                cfg.batch_for(200), int(np.prod(shape)) * cfg.itemsize) from exc
        raise
    if Yv.kind != target.kind or int(Yv.Y.shape[1]) != n_outputs:
        raise ValueError(f"validation_data: y is {Yv.kind} with {int(Yv.Y.shape[1])} "
                         f"column(s) but the training y is {target.kind} with {n_outputs}; "
                         f"pass validation targets of the same form as y")
    if target.kind == "continuous" and m < 2:
        raise ValueError("validation_data has 1 sample; the validation score of a "
                         "regressor (R^2) needs at least 2")
    return Xv, Yv.Y


def holdout_split(n: int, fraction: float, rng: np.random.Generator, labels: np.ndarray | None
           ) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row indices; n_val = ceil(fraction n), stratified by ``labels``."""
    n_val = math.ceil(fraction * n)
    if n_val < 2 or n - n_val < 1:
        raise ValueError(f"The validation set is too small: validation_fraction="
                         f"{fraction:g} of {n} samples gives {n_val} validation and "
                         f"{n - n_val} training samples. Increase validation_fraction or the "
                         f"size of your dataset (early stopping needs >= 2 validation samples)")
    perm = rng.permutation(n)
    if labels is None:
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])
    lab = labels[perm]
    classes, counts = np.unique(lab, return_counts=True)
    share = counts * n_val / n
    take = np.floor(share).astype(int)
    order = np.argsort(-(share - take), kind="stable")
    take[order[: n_val - take.sum()]] += 1
    val = np.concatenate([perm[lab == c][:k] for c, k in zip(classes, take)])
    mask = np.ones(n, dtype=bool)
    mask[val] = False
    return np.flatnonzero(mask), np.sort(val)


def train_and_validation(be: Backend, X: Any, Y: Any, val: tuple[Any, Any] | None,
                          train_idx: np.ndarray | None, val_idx: np.ndarray | None
                          ) -> tuple[Any, Any, Any, Any]:
    """(X_train, Y_train, X_val, Y_val): all of X, Y and ``val`` (validation_data), or the
    rows ``train_idx`` / ``val_idx`` of the split, or all of X, Y and no validation."""
    if val is not None:  # validation_data: all of X, y is for training
        X_train, Y_train, (X_val, Y_val) = X, Y, val
    elif val_idx is not None:
        xp = be.xp
        ti, vi = be.asarray(train_idx), be.asarray(val_idx)
        X_train, Y_train = xp.take(X, ti, axis=0), xp.take(Y, ti, axis=0)
        X_val, Y_val = xp.take(X, vi, axis=0), xp.take(Y, vi, axis=0)
    else:
        X_train, Y_train, X_val, Y_val = X, Y, None, None
    return X_train, Y_train, X_val, Y_val


def validation_fingerprint(X: Any, Y: Any) -> dict[str, Any]:
    """{"samples": m, "sha256": ...} of validation data as trained on (X and encoded Y in the
    model's dtype): what a checkpoint records, so a resumed fit gets the same data again."""
    h = hashlib.sha256()
    for A in (X, Y):
        a = np.ascontiguousarray(to_numpy(A))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return {"samples": int(X.shape[0]), "sha256": h.hexdigest()}
