"""Users' own data files: CSV (a header row), ``.npy`` (one 2-D array) and ``.npz`` (X, y).

    read_table("data.csv", target="species")  ->  Table(X, y, feature_names, target)

CSV: every column but the target must hold numbers (empty cells and non-numbers are refused,
naming the row and column); the target may hold numbers or strings (class labels). ``.npy``: a
2-D numeric array whose target is a column index (default: the last). ``.npz``: arrays named
``X`` and ``y`` (``target`` is not used). ``~`` in paths is expanded.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Table", "infer_task", "read_features", "read_table"]

FORMATS = (".csv", ".npy", ".npz")


@dataclass(frozen=True)
class Table:
    """X (n, d) float64, y (n,) numbers or strings (None: a file without targets)."""

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str]
    target: str | None


def _path(path: str | os.PathLike) -> Path:
    p = Path(os.path.expanduser(os.fspath(path)))
    if p.suffix.lower() not in FORMATS:
        raise ValueError(f"{os.fspath(path)!r}: expected a .csv, .npy or .npz file")
    if not p.is_file():
        raise FileNotFoundError(f"{os.fspath(path)!r}: no such file")
    return p


def _labels(values: list[str]) -> np.ndarray:
    """Targets as numbers when every one parses as a number, else as strings."""
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=str)


def _read_csv(p: Path) -> tuple[list[str], list[list[str]]]:
    with open(p, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise ValueError(f"{p}: a CSV file needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise ValueError(f"{p}, line {i}: {len(r)} values, but the header has "
                             f"{len(header)} columns")
    return header, rows[1:]


def _numbers(p: Path, header: list[str], rows: list[list[str]], columns: list[int]
             ) -> np.ndarray:
    X = np.empty((len(rows), len(columns)), dtype=np.float64)
    for i, r in enumerate(rows):
        for j, c in enumerate(columns):
            try:
                X[i, j] = float(r[c])
            except ValueError:
                raise ValueError(f"{p}, line {i + 2}, column {header[c]!r}: {r[c]!r} is not a "
                                 f"number; feature columns must hold numbers (encode "
                                 f"categories first)") from None
    if not np.isfinite(X).all():
        raise ValueError(f"{p}: the feature columns hold NaN or infinity")
    return X


def read_table(path: str | os.PathLike, target: str | None = None) -> Table:
    """The features and targets of a data file (see the module docstring)."""
    p = _path(path)
    suffix = p.suffix.lower()
    if suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            missing = [k for k in ("X", "y") if k not in z.files]
            if missing:
                raise ValueError(f"{p}: an .npz file needs arrays named X and y; it has "
                                 f"{', '.join(z.files) or 'none'}")
            X, y = np.asarray(z["X"]), np.asarray(z["y"])
        if X.ndim != 2 or len(y) != len(X):
            raise ValueError(f"{p}: X must be 2-D with one y per row; got X {X.shape}, "
                             f"y {y.shape}")
        return Table(X.astype(np.float64), y, [f"x{j}" for j in range(X.shape[1])], "y")
    if suffix == ".npy":
        A = np.load(p, allow_pickle=False)
        if A.ndim != 2 or A.shape[1] < 2 or A.dtype.kind not in "biuf":
            raise ValueError(f"{p}: an .npy file must hold a 2-D numeric array with the "
                             f"target in one column; got {A.dtype} {A.shape}")
        col = A.shape[1] - 1 if target is None else _column_index(target, A.shape[1], p)
        X = np.delete(A, col, axis=1).astype(np.float64)
        names = [f"x{j}" for j in range(A.shape[1]) if j != col]
        return Table(X, A[:, col], names, str(col))
    header, rows = _read_csv(p)
    if target is None:
        raise ValueError(f"{p}: name the target column with --target (one of: "
                         f"{', '.join(header)})")
    if target not in header:
        raise ValueError(f"{p}: no column {target!r}; the columns are {', '.join(header)}")
    t = header.index(target)
    features = [c for c in range(len(header)) if c != t]
    X = _numbers(p, header, rows, features)
    y = _labels([r[t].strip() for r in rows])
    return Table(X, y, [header[c] for c in features], target)


def read_features(path: str | os.PathLike, feature_names: list[str] | None,
                  n_features: int) -> np.ndarray:
    """X of a file to predict on: a CSV's columns picked by name (in the model's order; other
    columns, such as the target, are ignored), an .npy's array, or an .npz's X."""
    p = _path(path)
    suffix = p.suffix.lower()
    if suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            if "X" not in z.files:
                raise ValueError(f"{p}: an .npz file to predict on needs an array named X")
            X = np.asarray(z["X"], dtype=np.float64)
    elif suffix == ".npy":
        X = np.asarray(np.load(p, allow_pickle=False), dtype=np.float64)
        if X.ndim == 2 and X.shape[1] == n_features + 1:
            X = X[:, :-1]  # the training file's layout: the target in the last column
    else:
        header, rows = _read_csv(p)
        names = feature_names or header[:n_features]
        missing = [name for name in names if name not in header]
        if missing:
            raise ValueError(f"{p}: the model was trained on columns it lacks: "
                             f"{', '.join(missing)}")
        X = _numbers(p, header, rows, [header.index(name) for name in names])
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"{p}: {X.shape[1] if X.ndim == 2 else X.shape} features, but the "
                         f"model expects {n_features}")
    return X


def _column_index(target: str, n_columns: int, p: Path) -> int:
    try:
        col = int(target)
    except ValueError:
        raise ValueError(f"{p}: --target for an .npy file is a column index (0..."
                         f"{n_columns - 1}); got {target!r}") from None
    if not -n_columns <= col < n_columns:
        raise ValueError(f"{p}: column {col} does not exist ({n_columns} columns)")
    return col % n_columns


def infer_task(y: np.ndarray) -> str:
    """"classification" for string labels, or integers with at most 20 distinct values making
    up no more than half the rows; "regression" otherwise."""
    if y.dtype.kind in "USO" or y.dtype == bool:
        return "classification"
    values = np.unique(y)
    integral = np.all(np.asarray(y, dtype=np.float64) == np.round(np.asarray(y, np.float64)))
    if integral and len(values) <= 20 and len(values) <= max(2, len(y) // 2):
        return "classification"
    return "regression"
