"""Users' own data files: CSV (a header row), ``.npy`` (one 2-D array) and ``.npz`` (X, y).

    read_table("data.csv", target="species")  ->  Table(X, y, feature_names, target, notes)
    read_rows("new.csv", columns, n_features)  ->  (X, notes)       rows to predict on

CSV (:mod:`xpnet.columns`): the delimiter is sniffed from the header (or given: ``sep``); the
features are ``features`` or every column but the target and ``drop``; columns without a name
(a saved DataFrame index) are left out with a note, named ones holding the row numbers are
refused; feature cells must hold numbers. Missing cells (empty, NA, NaN, ?) are refused,
naming their lines and columns, unless ``missing`` is "drop" (rows left out) or "mean" /
"median" (kept as NaN, for :class:`xpnet.io.preprocessing.Preprocessing` to fill); empty
labels are refused unless ``drop_unlabeled``. The target may hold numbers or strings (class
labels). ``.npy``: a 2-D numeric array whose target is a column index (default: the last).
``.npz``: arrays named ``X`` and ``y`` (``target`` is not used). ``~`` in paths is expanded.
``notes`` say what was done (a sniffed delimiter, columns or rows left out).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xpnet.columns import index_columns, is_missing, numbers, read_cells, select

__all__ = ["MISSING", "Table", "infer_task", "read_rows", "read_table"]

FORMATS = (".csv", ".npy", ".npz")
MISSING = ("mean", "median")  # the --missing policies that fill (the others: error, drop)


@dataclass(frozen=True)
class Table:
    """X (n, d) float64, y (n,) numbers or strings (None: a file without targets)."""

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str]
    target: str | None
    notes: tuple[str, ...] = ()  # what was done to the file's columns and rows


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


def _lines(lines: list[int] | np.ndarray, word: str = "line") -> str:
    shown = ", ".join(map(str, lines[:8]))
    return f"{word}{'s' if len(lines) > 1 else ''} {shown}" + (
        f" and {len(lines) - 8} more" if len(lines) > 8 else "")


def _missing_cells(X: np.ndarray, names: list[str], lines: Any, word: str = "line") -> str:
    """The missing cells of X, by column, with their lines (or rows)."""
    parts, lines = [], np.asarray(lines)
    for j in np.flatnonzero(np.isnan(X).any(axis=0)):
        at = _lines(lines[np.isnan(X[:, j])].tolist(), word)
        parts.append(f"column {names[j]!r} on {at}")
    return "; ".join(parts[:4]) + ("; ..." if len(parts) > 4 else "")


def _unlabeled(y: list[str], target: str, lines: np.ndarray, where: str,
               drop: bool, notes: list[str]) -> np.ndarray:
    """The rows with a label (a mask); empty labels are refused unless ``drop``."""
    empty = np.array([is_missing(v) for v in y], dtype=bool)
    if empty.any():
        at = _lines(lines[empty].tolist())
        if not drop:
            raise ValueError(f"{where}: the target column {target!r} is empty on {at} "
                             f"({int(empty.sum())} rows): fill in their labels, or give "
                             f"--drop-unlabeled to leave those rows out")
        notes.append(f"left out {int(empty.sum())} rows without a label in {target!r} ({at})")
    return ~empty


def _missing(X: np.ndarray, names: list[str], lines: np.ndarray, word: str, where: str,
             missing: str, notes: list[str]) -> np.ndarray:
    """Rows to keep, by the --missing policy: error (refuse), drop, or mean / median (kept
    as NaN, filled after the split)."""
    holes = np.isnan(X)
    if not holes.any():
        return np.ones(len(X), dtype=bool)
    count, rows = int(holes.sum()), holes.any(axis=1)
    cells = _missing_cells(X, names, lines, word)
    if missing == "error":
        raise ValueError(f"{where}: {count} missing value{'s' if count > 1 else ''} in the "
                         f"feature columns ({cells}): fill them in, or give --missing drop "
                         f"(leave those rows out) or --missing mean / median (fill them with "
                         f"the training part's, kept in the model)")
    if missing == "drop":
        notes.append(f"left out {int(rows.sum())} rows with missing values ({cells})")
        return ~rows
    if missing not in MISSING:
        raise ValueError(f"missing={missing!r}; expected error, drop, mean or median")
    notes.append(f"{count} missing values ({cells}) filled with the training part's {missing}")
    return np.ones(len(X), dtype=bool)


def _features(X: np.ndarray, names: list[str], lines: np.ndarray, where: str,
              chosen: bool, notes: list[str]) -> tuple[np.ndarray, list[str]]:
    """Drops unnamed index columns (with a note); refuses named ones holding the row numbers,
    unless the user chose the columns (``chosen``)."""
    if chosen:
        return X, names
    unnamed, numbering = index_columns(X, names)
    if numbering:
        j = numbering[0]
        raise ValueError(f"{where}: column {names[j]!r} holds the row numbers "
                         f"{int(X[0, j])}..{int(X[-1, j])} in order: an index, not a feature "
                         f"(in a file sorted by label it gives the label away); leave it out "
                         f"with --drop {names[j]!r}, or name the columns to use with --features")
    if unnamed:
        notes.append(f"left out column{'s' if len(unnamed) > 1 else ''} "
                     f"{', '.join(repr(names[j]) for j in unnamed)}: no name in the header (a "
                     f"saved DataFrame index, not a feature); name the columns to use with "
                     f"--features")
        keep = [j for j in range(len(names)) if j not in unnamed]
        X, names = X[:, keep], [names[j] for j in keep]
    if not names:
        raise ValueError(f"{where}: no feature columns left")
    return X, names


def read_table(path: str | os.PathLike, target: str | None = None, *, sep: str | None = None,
               features: list[str] | None = None, drop: list[str] | None = None,
               missing: str = "error", drop_unlabeled: bool = False) -> Table:
    """The features and targets of a data file (see the module docstring)."""
    p = _path(path)
    suffix = p.suffix.lower()
    notes: list[str] = []
    if suffix in (".npz", ".npy"):
        X, y, names, target = _read_array(p, target)
        lines, word = np.arange(len(X)), "row"  # rows counted from 0, as NumPy does
        columns = select(names, None, features, drop, str(p))
        X, names = X[:, columns], [names[j] for j in columns]
    else:
        cells = read_cells(p, sep)
        notes += cells.notes
        header, word = cells.header, "line"
        if target is None:
            raise ValueError(f"{p}: name the target column with --target (one of: "
                             f"{', '.join(header)}){cells.hint()}")
        if target not in header:
            raise ValueError(f"{p}: no column {target!r}; the columns are "
                             f"{', '.join(header)}{cells.hint()}")
        columns = select(header, target, features, drop, str(p), cells.hint())
        lines = np.asarray(cells.lines)
        t = header.index(target)
        keep = _unlabeled([r[t] for r in cells.rows], target, lines, str(p), drop_unlabeled,
                          notes)
        rows = [r for r, k in zip(cells.rows, keep) if k]
        lines = lines[keep]
        names = [header[c] for c in columns]
        X = numbers(rows, columns, header, str(p), lines.tolist())
        y = _labels([r[t].strip() for r in rows])
        X, names = _features(X, names, lines, str(p), features is not None, notes)
    keep = _missing(X, names, lines, word, str(p), missing, notes)
    X, y = X[keep], y[keep]
    if len(X) == 0:
        raise ValueError(f"{p}: no rows left to train on")
    return Table(X, y, names, target, tuple(notes))


def _read_array(p: Path, target: str | None) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """X (float64, NaN = missing), y, names x0.., target of an .npz or .npy file."""
    if p.suffix.lower() == ".npz":
        with np.load(p, allow_pickle=False) as z:
            absent = [k for k in ("X", "y") if k not in z.files]
            if absent:
                raise ValueError(f"{p}: an .npz file needs arrays named X and y; it has "
                                 f"{', '.join(z.files) or 'none'}")
            X, y = np.asarray(z["X"]), np.asarray(z["y"])
        if X.ndim != 2 or len(y) != len(X):
            raise ValueError(f"{p}: X must be 2-D with one y per row; got X {X.shape}, "
                             f"y {y.shape}")
        return X.astype(np.float64), y, [f"x{j}" for j in range(X.shape[1])], "y"
    A = np.load(p, allow_pickle=False)
    if A.ndim != 2 or A.shape[1] < 2 or A.dtype.kind not in "biuf":
        raise ValueError(f"{p}: an .npy file must hold a 2-D numeric array with the "
                         f"target in one column; got {A.dtype} {A.shape}")
    col = A.shape[1] - 1 if target is None else _column_index(target, A.shape[1], p)
    X = np.delete(A, col, axis=1).astype(np.float64)
    if np.isinf(X).any():
        raise ValueError(f"{p}: the feature columns hold infinity")
    return X, A[:, col], [f"x{j}" for j in range(A.shape[1]) if j != col], str(col)


def read_rows(path: str | os.PathLike, columns: list[str] | None, n_features: int, *,
              sep: str | None = None, fill: bool = False) -> tuple[np.ndarray, list[str]]:
    """(X, notes): the rows of a file to predict on, (N, n_features) float64. A CSV's columns
    are picked by name (``columns``, in that order; others, such as the target, are
    ignored) or, for a model that knows no names, taken by position when the file has
    exactly ``n_features`` columns (a note says which); an .npy's array (the training file's
    layout, target last, is accepted); an .npz's X. Missing values (NaN) are refused unless
    the model ``fill``-s them."""
    p = _path(path)
    suffix, notes = p.suffix.lower(), []
    if suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            if "X" not in z.files:
                raise ValueError(f"{p}: an .npz file to predict on needs an array named X")
            X = np.asarray(z["X"], dtype=np.float64)
    elif suffix == ".npy":
        X = np.asarray(np.load(p, allow_pickle=False), dtype=np.float64)
        if X.ndim == 2 and X.shape[1] == n_features + 1:
            X = X[:, :-1]  # the training file's layout: the target in the last column
            notes.append(f"{p.name}: {n_features + 1} columns; using the first {n_features} "
                         f"(the last is taken for the target, as in training)")
    else:
        cells = read_cells(p, sep)
        notes += cells.notes
        header = cells.header
        if columns is None:
            if len(header) != n_features:
                raise ValueError(f"{p}: {len(header)} columns, but the model records no "
                                 f"column names and takes {n_features} features by position: "
                                 f"give a file of exactly its {n_features} feature columns in "
                                 f"training order, or name them with --features")
            notes.append(f"the model records no column names: using the file's {n_features} "
                         f"columns by position as its features: {', '.join(header)}")
            columns = header
        if len(columns) != n_features:
            raise ValueError(f"{p}: {len(columns)} feature columns named ({', '.join(columns)}), "
                             f"but the model takes {n_features}")
        absent = [name for name in columns if name not in header]
        if absent:
            raise ValueError(f"{p}: the model was trained on columns the file lacks: "
                             f"{', '.join(absent)}; its columns are {', '.join(header)}"
                             f"{cells.hint()}")
        X = numbers(cells.rows, [header.index(name) for name in columns], header, str(p),
                    cells.lines)
        if np.isnan(X).any() and not fill:
            raise ValueError(f"{p}: missing values ({_missing_cells(X, columns, cells.lines)}), "
                             f"and the model was trained without any, so it fills none: fill "
                             f"them in, or retrain with --missing mean / median")
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"{p}: {X.shape[1] if X.ndim == 2 else X.shape} features, but the "
                         f"model expects {n_features}")
    if suffix != ".csv" and np.isnan(X).any() and not fill:
        cells = _missing_cells(X, columns or [f"x{j}" for j in range(n_features)],
                               np.arange(len(X)), "row")
        raise ValueError(f"{p}: missing values (NaN: {cells}), and the model was trained "
                         f"without any, so it fills none: fill them in first")
    return X, notes


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
