"""The cells of a user's CSV file: its delimiter, which columns are features, which cells are
missing, and the numbers in the rest. Every refusal names the line and the column, and says
what to do; :mod:`xpnet.tables` puts these together.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["DELIMITERS", "Cells", "index_columns", "is_missing", "numbers", "read_cells",
           "select"]

DELIMITERS = (",", ";", "\t", "|")
#: cells that mean "no value" (pandas' defaults, and the UCI files' "?"), compared lowercased
_MISSING = {"", "na", "n/a", "nan", "-nan", "null", "none", "?", "#n/a", "<na>", "-1.#ind",
            "1.#ind", "-1.#qnan", "1.#qnan", "#na", "#n/a n/a"}
_UNNAMED = re.compile(r"(Unnamed: \d+)?\Z")  # "" or pandas' name for a header-less column


def is_missing(cell: str) -> bool:
    return cell.strip().lower() in _MISSING


def _shown(sep: str) -> str:
    return {"\t": "'\\t' (tab)"}.get(sep, repr(sep))


@dataclass
class Cells:
    """A CSV file's header and its non-blank rows (``lines``: each row's line in the file)."""

    path: Path
    header: list[str]
    rows: list[list[str]]
    lines: list[int]
    sep: str
    notes: list[str] = field(default_factory=list)

    def hint(self) -> str:
        """Where the delimiter may be the trouble: what to try."""
        if len(self.header) == 1:
            for d in DELIMITERS:
                if d != self.sep and d in self.header[0]:
                    return (f" (the header is one column {self.header[0][:60]!r}: is the file "
                            f"delimited by {_shown(d)}? give --sep {_shown(d)})")
        return ""


def _sniff(line: str) -> str:
    """The delimiter of DELIMITERS that splits the header line into the most columns (a
    comma when none splits it)."""
    counts = {d: len(next(csv.reader([line], delimiter=d))) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    return best if counts[best] > 1 else ","


def read_cells(p: Path, sep: str | None = None) -> Cells:
    """The header and rows of CSV file ``p``, delimited by ``sep`` (None: sniffed from the
    header among comma, semicolon, tab and bar; a note says so when it is not a comma)."""
    if sep is not None and len(sep) != 1:
        raise ValueError(f"--sep must be one character; got {sep!r} (a tab: --sep $'\\t')")
    with open(p, newline="", encoding="utf-8-sig") as f:
        text = f.read()
    first = next((line for line in text.splitlines() if line.strip()), "")
    sniffed = sep is None
    sep = _sniff(first) if sep is None else sep
    reader = csv.reader(text.splitlines(keepends=True), delimiter=sep)
    rows, lines = [], []
    for r in reader:
        if any(cell.strip() for cell in r):
            rows.append(r)
            lines.append(reader.line_num)
    if len(rows) < 2:
        raise ValueError(f"{p}: a CSV file needs a header row and at least one data row")
    cells = Cells(p, [h.strip() for h in rows[0]], rows[1:], lines[1:], sep)
    if sniffed and sep != ",":
        cells.notes.append(f"{p.name}: columns delimited by {_shown(sep)} (found in the "
                           f"header; set it with --sep)")
    for r, line in zip(cells.rows, cells.lines):
        if len(r) != len(cells.header):
            raise ValueError(f"{p}, line {line}: {len(r)} values, but the header has "
                             f"{len(cells.header)} columns (read with delimiter "
                             f"{_shown(sep)}; give --sep if the file uses another)")
    seen = set()
    for name in cells.header:
        if name in seen and not _UNNAMED.match(name):
            raise ValueError(f"{p}: column {name!r} appears twice in the header; rename one")
        seen.add(name)
    return cells


def select(header: list[str], target: str | None, features: list[str] | None,
           drop: list[str] | None, where: str, hint: str = "") -> list[int]:
    """The feature columns (indices into ``header``): ``features`` in their order, or every
    column but the target and ``drop``."""
    listed = ", ".join(repr(h) if not h or h != h.strip() else h for h in header)

    def known(names: list[str], option: str) -> None:
        unknown = [n for n in names if n not in header]
        if unknown:
            raise ValueError(f"{where}: {option} names {', '.join(map(repr, unknown))}, not a "
                             f"column; the columns are {listed}{hint}")
        if target is not None and target in names:
            raise ValueError(f"{where}: {option} names the target column {target!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"{where}: {option} names a column twice")

    if features is not None:
        known(features, "--features")
        if drop:
            raise ValueError("give --features (the columns to use) or --drop (the columns to "
                             "leave out), not both")
        return [header.index(n) for n in features]
    known(drop or [], "--drop")
    return [j for j, h in enumerate(header) if h != target and h not in (drop or [])]


def numbers(cells: list[list[str]], columns: list[int], header: list[str],
            where: str, lines: list[int]) -> np.ndarray:
    """The cells of ``columns`` as float64 (n, d), NaN where a cell is missing; a cell that is
    not a number (or not finite) is refused, naming its line and column."""
    X = np.empty((len(cells), len(columns)), dtype=np.float64)
    for i, r in enumerate(cells):
        for j, c in enumerate(columns):
            cell = r[c]
            if is_missing(cell):
                X[i, j] = np.nan
                continue
            try:
                X[i, j] = float(cell)
            except ValueError:
                raise ValueError(f"{where}, line {lines[i]}, column {header[c]!r}: {cell!r} is "
                                 f"not a number; feature columns must hold numbers: encode "
                                 f"categories as numbers, or leave the column out with --drop "
                                 f"{header[c]!r}") from None
            if not np.isfinite(X[i, j]):
                raise ValueError(f"{where}, line {lines[i]}, column {header[c]!r}: {cell!r} is "
                                 f"not a finite number")
    return X


def index_columns(X: np.ndarray, names: list[str]) -> tuple[list[int], list[int]]:
    """(unnamed, numbering): the columns without a name (``""``, pandas' ``Unnamed: 0``), and
    named ones that hold the row numbers 0..n-1 or 1..n in order (at least 10 rows): an index
    saved with the data, not a feature (it can give the label away in a sorted file)."""
    unnamed = [j for j, n in enumerate(names) if _UNNAMED.match(n)]
    numbering = []
    n = len(X)
    if n >= 10:
        for j in range(X.shape[1]):
            col = X[:, j]
            if j not in unnamed and (np.array_equal(col, np.arange(n))
                                     or np.array_equal(col, np.arange(1, n + 1))):
                numbering.append(j)
    return unnamed, numbering
