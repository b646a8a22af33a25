"""Sample weights and class weights: one weight w_i per training row, scikit-learn's semantics.

    J_B = sum_{i in B} w_i L(i) / sum_{i in B} w_i + (alpha / 2 sum_{i in B} w_i) sum_l ||W[l]||^2

``sample_weight`` is given to ``fit`` / ``partial_fit``; ``class_weight`` (MLPClassifier:
``"balanced"`` or {label: weight}) multiplies each row's weight by its class's weight, as
scikit-learn's linear models and trees do. Integer weights equal repeated rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xpnet.backends import to_numpy

__all__ = ["check_sample_weight", "class_weight_factors"]


def check_sample_weight(sample_weight: Any, n: int) -> np.ndarray | None:
    """None, a number (every row) or n non-negative finite numbers -> host float64 (n,)."""
    if sample_weight is None:
        return None
    w = to_numpy(sample_weight) if hasattr(sample_weight, "__array_namespace__") \
        else np.asarray(sample_weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must be numbers; got dtype {w.dtype}")
    w = w.astype(np.float64)
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight.shape == {w.shape}, expected ({n},): one weight per "
                         f"row of X")
    if not np.isfinite(w).all():
        raise ValueError("sample_weight contains NaN or infinity; every row needs a finite "
                         "weight")
    if (w < 0).any():
        raise ValueError(f"sample_weight has {int((w < 0).sum())} negative value(s); weights "
                         f"must be >= 0 (0 leaves a row out)")
    if w.sum() <= 0:
        raise ValueError("sample_weight is all zero: no row would count; give some rows a "
                         "positive weight")
    return w


def class_weight_factors(class_weight: Any, class_index: np.ndarray, classes: np.ndarray, *,
                         incremental: bool) -> np.ndarray:
    """The weight of each row's class: ``class_weight[classes[class_index[i]]]``; "balanced":
    n / (n_classes * count(class)) over these rows (scikit-learn's compute_class_weight)."""
    n_classes = len(classes)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be None, 'balanced' or a dict {{label: "
                             f"weight}}; got {class_weight!r}")
        if incremental:
            raise ValueError("class_weight='balanced' is not supported for partial_fit: the "
                             "class frequencies of all the data are needed; pass "
                             "class_weight={label: weight} computed from all of y")
        counts = np.bincount(class_index, minlength=n_classes).astype(np.float64)
        per_class = np.where(counts > 0, len(class_index) / (n_classes * np.maximum(counts, 1)),
                             1.0)
        return per_class[class_index]
    if not isinstance(class_weight, dict):
        raise ValueError(f"class_weight must be None, 'balanced' or a dict {{label: weight}}; "
                         f"got a {type(class_weight).__name__}")
    per_class = np.ones(n_classes)
    known = {c.item() if hasattr(c, "item") else c: k for k, c in enumerate(classes)}
    unknown = [label for label in class_weight if label not in known]
    if unknown:
        raise ValueError(f"class_weight has labels {unknown!r} that are not classes of y "
                         f"({list(known)!r})")
    for label, weight in class_weight.items():
        weight = float(weight)
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(f"class_weight[{label!r}] = {weight}; weights must be finite "
                             f"and >= 0")
        per_class[known[label]] = weight
    return per_class[class_index]
