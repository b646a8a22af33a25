"""A model with its preprocessing: raw rows in, predictions out.

    pipe = load_pipeline("wine.xpnet")          # a file written by `xpnet train --save`
    pipe.predict(df)                             # a DataFrame: columns picked by name
    pipe.predict(X_raw)                          # an array: (N, d) in ``pipe.columns`` order
    pipe.to_onnx("wine.onnx")                    # the same steps inside the ONNX graph

``xpnet.load`` gives the bare estimator, which expects rows as the network saw them
(standardized); a :class:`Pipeline` applies the model file's
:class:`~xpnet.io.preprocessing.Preprocessing` first (none for models saved from Python: then
rows go in as they are).
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from xpnet.io import container
from xpnet.io.hostmodel import HostModel
from xpnet.io.preprocessing import KEY, Preprocessing, from_meta

__all__ = ["Pipeline", "load_pipeline"]


class Pipeline:
    """``estimator`` after ``preprocessing`` (None: rows go in as they are)."""

    def __init__(self, estimator: Any, preprocessing: Preprocessing | None = None) -> None:
        self.estimator = estimator
        self.preprocessing = preprocessing

    def __repr__(self) -> str:
        steps = "raw rows" if self.preprocessing is None else "fill, standardize" if \
            self.preprocessing.fill is not None else "standardize"
        return f"Pipeline({steps} -> {self.estimator.summary()})"

    @property
    def columns(self) -> list[str] | None:
        """The input columns by name, in order (None: the model knows no names)."""
        if self.preprocessing is not None and self.preprocessing.columns is not None:
            return list(self.preprocessing.columns)
        names = getattr(self.estimator, "feature_names_in_", None)
        return None if names is None else [str(c) for c in names]

    def transform(self, X: Any) -> np.ndarray:
        """The rows as the network takes them: (N, d) in the model's dtype."""
        n = int(self.estimator.n_features_in_)
        columns = self.columns
        if getattr(X, "columns", None) is not None and columns is not None:
            missing = [c for c in columns if c not in list(X.columns)]
            if missing:
                raise ValueError(f"the rows lack the model's column(s) {', '.join(missing)}")
            X = X[columns]
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != n:
            raise ValueError(f"expected rows of {n} features (N, {n}); got shape {X.shape}")
        p = self.preprocessing
        if np.isnan(X).any() and (p is None or p.fill is None):
            i, j = map(int, np.argwhere(np.isnan(X))[0])
            raise ValueError(f"row {i}, column {columns[j] if columns else j}: missing value "
                             f"(NaN), and this model fills none: fill them in first")
        if p is not None:
            X = p.apply(X)
        return X.astype(self.estimator.compute_dtype_)

    def predict(self, X: Any) -> Any:
        return self.estimator.predict(self.transform(X))

    def predict_proba(self, X: Any) -> Any:
        return self.estimator.predict_proba(self.transform(X))

    def score(self, X: Any, y: Any) -> float:
        return float(self.estimator.score(self.transform(X), y))

    def save(self, path: str | os.PathLike, extra: Mapping[str, Any] | None = None) -> None:
        """The estimator's model file with the preprocessing (and ``extra`` meta entries)."""
        path = os.path.expanduser(os.fspath(path))
        self.estimator.save(path)
        arrays, meta = container.load(path)
        meta = {k: v for k, v in meta.items() if k not in ("format", "format_version")}
        meta.update(extra or {})
        if self.preprocessing is not None:
            meta[KEY] = self.preprocessing.to_json()
        container.save(path, arrays, meta)

    def to_onnx(self, path: str | os.PathLike | None = None) -> Any:
        """The ONNX model of raw rows in, predictions out (:func:`xpnet.io.onnx.to_onnx`)."""
        from xpnet.io.onnx import to_onnx

        return to_onnx(self.estimator, path, self.preprocessing)


def load_pipeline(path: str | os.PathLike, backend: str | None = None,
                  device: Any = None, *, host: bool = False) -> Pipeline:
    """The model in ``path`` (:func:`xpnet.load`) with the preprocessing its file records;
    ``host``: its network on NumPy for answers only (:class:`xpnet.io.hostmodel.HostModel`:
    no estimator classes, no scikit-learn import)."""
    path = os.path.expanduser(os.fspath(path))
    if host:
        if backend not in (None, "numpy") or device not in (None, "cpu"):
            raise ValueError(f"host=True runs on NumPy; got backend={backend!r}, "
                             f"device={device!r}")
        est: Any = HostModel(path)
    else:
        from xpnet.estimators import load

        est = load(path, backend=backend, device=device)
    _, meta = container.load(path)
    return Pipeline(est, from_meta(meta, int(est.n_features_in_), f"model file {path!r}"))
