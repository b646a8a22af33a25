"""What a model trained on a user's file learned about its columns, kept in the model file.

    Preprocessing(columns, mean, std, fill)     X_raw (N, d)  ->  X = (fill(X_raw) - mean) / std

* ``columns``: the feature columns of the training file, in the order the network reads them
  (raw rows are picked by these names);
* ``fill``: per column, what replaces a missing value (NaN): the training part's mean or
  median (``missing``: "mean" / "median"), or None when the model was trained without missing
  values (then a missing value is an error);
* ``mean``, ``std``: the training part's statistics (std 0 -> 1): standardization.

:meth:`Preprocessing.apply` is the one implementation: written against the array API, it runs
on NumPy for ``xpnet predict`` and :class:`xpnet.pipeline.Pipeline`, and on ndonnx arrays to
put the very same steps inside an exported ONNX graph. Class labels need no entry here: the
estimator's ``classes_`` already are the training file's labels.

In the model file's meta the entry ``"preprocessing"`` holds it (:meth:`to_json`);
:func:`from_meta` reads it, checking every field, and also reads files of earlier versions,
whose ``"dataset"`` record held only ``mean``, ``std`` and ``feature_names`` (``xpnet train``
still writes those there too, so that earlier versions' ``predict`` standardizes new files).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from xpnet.errors import ModelFileError
from xpnet.tables import MISSING

__all__ = ["KEY", "Preprocessing", "from_meta"]

KEY = "preprocessing"  # the model file's meta entry


@dataclass(frozen=True)
class Preprocessing:
    """The columns, fill values and standardization of a model's training file."""

    columns: list[str] | None  # None: files of earlier versions trained on unnamed arrays
    mean: np.ndarray  # (d,) float64
    std: np.ndarray  # (d,) float64, > 0
    fill: np.ndarray | None = None  # (d,) float64
    missing: str | None = None  # "mean" / "median": how ``fill`` was computed

    @property
    def n_features(self) -> int:
        return len(self.mean)

    def apply(self, X: Any, *, xp: Any = np) -> Any:
        """(fill(X) - mean) / std for raw rows X (N, d) of namespace ``xp`` (float64)."""
        if self.fill is not None:
            X = xp.where(xp.isnan(X), xp.asarray(self.fill), X)
        return (X - xp.asarray(self.mean)) / xp.asarray(self.std)

    def to_json(self) -> dict[str, Any]:
        """The meta entry (plain JSON)."""
        return {"columns": self.columns, "mean": self.mean.tolist(), "std": self.std.tolist(),
                "fill": None if self.fill is None else self.fill.tolist(),
                "missing": self.missing}


def from_meta(meta: Mapping[str, Any], n_features: int, where: str) -> Preprocessing | None:
    """The Preprocessing recorded in a model file's meta (None: the model takes its inputs as
    they are); every field checked against ``n_features``, else ModelFileError."""
    data = meta.get(KEY)
    field = KEY
    if data is None:  # earlier versions: xpnet train's dataset record
        record = meta.get("dataset")
        if not isinstance(record, Mapping) or record.get("mean") is None:
            return None
        data = {"columns": record.get("feature_names"), "mean": record["mean"],
                "std": record.get("std"), "fill": None, "missing": None}
        field = "dataset"
    if not isinstance(data, Mapping):
        raise ModelFileError(f"{where}: {field} is {data!r:.60}; expected an object")
    unknown = set(data) - {"columns", "mean", "std", "fill", "missing"}
    if unknown:
        raise ModelFileError(f"{where}: {field}.{sorted(unknown)[0]} is unknown: not a field "
                             f"of an xpnet model file")

    def numbers(key: str, positive: bool = False) -> np.ndarray:
        v = data.get(key)
        ok = (isinstance(v, list) and len(v) == n_features
              and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                      and math.isfinite(x) and (x > 0 or not positive) for x in v))
        if not ok:
            raise ModelFileError(f"{where}: {field}.{key} is {v!r:.60}; expected a list of "
                                 f"{n_features} finite numbers{' > 0' if positive else ''} "
                                 f"(one per feature)")
        return np.asarray(v, dtype=np.float64)

    columns = data.get("columns")
    if columns is not None and not (isinstance(columns, list) and len(columns) == n_features
                                    and all(isinstance(c, str) for c in columns)
                                    and len(set(columns)) == n_features):
        raise ModelFileError(f"{where}: {field}.columns is {columns!r:.60}; expected null or "
                             f"{n_features} distinct column names")
    missing = data.get("missing")
    if missing is not None and missing not in MISSING:
        raise ModelFileError(f"{where}: {field}.missing is {missing!r:.60}; expected null, "
                             f"'mean' or 'median'")
    if (missing is None) != (data.get("fill") is None):
        raise ModelFileError(f"{where}: {field}.fill and {field}.missing disagree: expected "
                             f"both null or both given")
    fill = None if missing is None else numbers("fill")
    return Preprocessing(columns, numbers("mean"), numbers("std", positive=True), fill, missing)
