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
from xpnet.training.host_random import HostRandom
from xpnet.training.streaming import host_rows, is_sparse
from xpnet.training.progress import out_of_memory

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


def holdout_split(n: int, fraction: float, rng: HostRandom, labels: np.ndarray | None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row indices, as scikit-learn's ``train_test_split(...,
    test_size=fraction, random_state=rng, stratify=labels)`` draws them from the same stream
    (its MLP stratifies binary targets only): n_val = ceil(fraction n), indices in the drawn
    order (not sorted), so that the epochs after it shuffle the same rows."""
    n_val = math.ceil(fraction * n)
    n_train = n - n_val
    if labels is None:  # ShuffleSplit
        _check_sizes(n, n_val, n_train, fraction)
        perm = rng.permutation(n)
        return perm[n_val:], perm[:n_val]
    # StratifiedShuffleSplit (scikit-learn's errors: the classes are its binarized y's, named
    # as strings, 'True' for the positive class)
    classes, y_idx, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        few = [str(bool(c)) for c in classes[counts < 2]]
        raise ValueError(f"The least populated classes in y have only 1 member, which is too "
                         f"few. The minimum number of groups for any class cannot be less than "
                         f"2. Classes with too few members are: {few} ('True': the positive "
                         f"class, classes_[1]). Early stopping's validation split is "
                         f"stratified: give each class at least 2 samples, or set "
                         f"early_stopping=False")
    if n_train < len(classes):
        raise ValueError(f"The train_size = {n_train} should be greater or equal to the number "
                         f"of classes = {len(classes)}; change validation_fraction")
    if n_val < len(classes):
        raise ValueError(f"The test_size = {n_val} should be greater or equal to the number of "
                         f"classes = {len(classes)}; change validation_fraction")
    _check_sizes(n, n_val, n_train, fraction)
    by_class = np.split(np.argsort(y_idx, kind="stable"), np.cumsum(counts)[:-1])
    n_i = _approximate_mode(counts, n_train, rng)
    t_i = _approximate_mode(counts - n_i, n_val, rng)
    train: list[int] = []
    val: list[int] = []
    for i, rows in enumerate(by_class):
        drawn = rows.take(rng.permutation(int(counts[i])), mode="clip")
        train.extend(drawn[: n_i[i]])
        val.extend(drawn[n_i[i]: n_i[i] + t_i[i]])
    return rng.permutation(np.asarray(train, dtype=np.intp)), \
        rng.permutation(np.asarray(val, dtype=np.intp))


def _check_sizes(n: int, n_val: int, n_train: int, fraction: float) -> None:
    """At least 2 validation rows and 1 training row (scikit-learn's error)."""
    if n_val < 2 or n_train < 1:
        raise ValueError(f"The validation set is too small: validation_fraction="
                         f"{fraction:g} of {n} samples gives {n_val} validation and "
                         f"{n_train} training samples. Increase validation_fraction or the "
                         f"size of your dataset (early stopping needs >= 2 validation samples)")


def _approximate_mode(counts: np.ndarray, n_draws: int, rng: HostRandom) -> np.ndarray:
    """How many of ``n_draws`` to take from each class: floor of the proportional share, then
    one more for the largest remainders, ties broken at random (scikit-learn's
    ``_approximate_mode``, draw for draw)."""
    continuous = counts / counts.sum() * n_draws
    floored = np.floor(continuous)
    need = int(n_draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add = min(len(inds), need)
            floored[rng.choice(inds, size=add, replace=False)] += 1
            need -= add
            if need == 0:
                break
    return floored.astype(int)


def train_and_validation(be: Backend, X: Any, Y: Any, val: tuple[Any, Any] | None,
                          train_idx: np.ndarray | None, val_idx: np.ndarray | None
                          ) -> tuple[Any, Any, Any, Any]:
    """(X_train, Y_train, X_val, Y_val): all of X, Y and ``val`` (validation_data), or the
    rows ``train_idx`` / ``val_idx`` of the split, or all of X, Y and no validation. A host
    X (streamed training data) is split on the host."""
    if val is not None:  # validation_data: all of X, y is for training
        X_train, Y_train, (X_val, Y_val) = X, Y, val
    elif val_idx is not None:
        xp = be.xp
        ti, vi = be.asarray(train_idx), be.asarray(val_idx)
        Y_train, Y_val = xp.take(Y, ti, axis=0), xp.take(Y, vi, axis=0)
        if is_sparse(X) or (isinstance(X, np.ndarray) and be.name != "numpy"):
            X_train, X_val = host_rows(X, train_idx), host_rows(X, val_idx)  # streamed X
        else:
            X_train, X_val = xp.take(X, ti, axis=0), xp.take(X, vi, axis=0)
    else:
        X_train, Y_train, X_val, Y_val = X, Y, None, None
    return X_train, Y_train, X_val, Y_val


def validation_fingerprint(X: Any, Y: Any) -> dict[str, Any]:
    """{"samples": m, "sha256": ...} of validation data as trained on (X and encoded Y in the
    model's dtype): what a checkpoint records, so a resumed fit gets the same data again."""
    h = hashlib.sha256()
    for A in (X, Y):
        if is_sparse(A):  # its stored values and structure, never the dense matrix
            h.update(f"{A.dtype.str}{tuple(A.shape)}{A.format}".encode())
            for part in (A.data, A.indices, A.indptr):
                h.update(np.ascontiguousarray(part).tobytes())
            continue
        a = np.ascontiguousarray(to_numpy(A))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return {"samples": int(X.shape[0]), "sha256": h.hexdigest()}
