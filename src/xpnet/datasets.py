"""Datasets that need no download, and the split + standardization that prepares them.

Every loader returns ``X`` of shape ``(n_samples, n_features)`` (scikit-learn layout; the
estimators transpose to examples-in-columns themselves) and ``y`` of shape ``(n_samples,)``:

* :func:`load_digits` (multiclass), :func:`load_breast_cancer` (binary),
  :func:`load_diabetes` (regression): the copies bundled inside scikit-learn (optional extra
  ``xpnet[sklearn]``), read from disk, never downloaded;
* :func:`read_idx` / :func:`load_mnist`: MNIST-format IDX files already on disk;
* :func:`make_classification` / :func:`make_regression`: synthetic data from a seeded
  ``numpy.random.Generator`` (no scikit-learn needed).

:func:`load_dataset` turns a name such as ``"digits"`` or ``"mnist:/data/mnist"`` into a
:class:`Dataset`: a held-out split, standardized with statistics of the training part only.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xpnet.tables import MISSING, infer_task, read_table

__all__ = [
    "DATASETS",
    "Dataset",
    "load_breast_cancer",
    "load_dataset",
    "load_diabetes",
    "load_digits",
    "fill_missing",
    "load_file",
    "load_shard",
    "load_mnist",
    "make_classification",
    "make_regression",
    "read_idx",
    "scaling",
    "standardize",
    "train_test_split",
]

#: Dataset names :func:`load_dataset` accepts, with their task; plus ``"mnist:DIR"``.
DATASETS = {
    "digits": "classification",
    "breast_cancer": "classification",
    "diabetes": "regression",
    "synthetic": "classification",
    "synthetic_regression": "regression",
}


# --------------------------------------------------------------------------- scikit-learn's files
def _sklearn_datasets():
    try:
        from sklearn import datasets
    except ImportError as exc:
        raise ImportError("the bundled datasets (digits, breast_cancer, diabetes) are read from "
                          "scikit-learn, which is not installed: pip install 'xpnet[sklearn]'"
                          f" ({exc})") from None
    return datasets


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """8x8 handwritten digits: X (1797, 64) float64 in [0, 16], y (1797,) int64 in 0..9."""
    X, y = _sklearn_datasets().load_digits(return_X_y=True)
    return np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64)


def load_breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    """Wisconsin breast cancer: X (569, 30) float64, y (569,) int64 in {0, 1} (1 = benign)."""
    X, y = _sklearn_datasets().load_breast_cancer(return_X_y=True)
    return np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64)


def load_diabetes() -> tuple[np.ndarray, np.ndarray]:
    """Diabetes progression: X (442, 10) float64 (raw, unscaled), y (442,) float64 in 25..346."""
    X, y = _sklearn_datasets().load_diabetes(return_X_y=True, scaled=False)
    return np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)


# --------------------------------------------------------------------------- IDX (MNIST format)
# Magic number: two zero bytes, a type code, the number of dimensions; then one big-endian
# uint32 per dimension; then the data, big-endian, C order.
_IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in an IDX file (plain or gzip, told apart by content), native byte order.

    Raises ``ValueError`` naming the file when the magic number, type code, dimensions or
    size do not match the format, and ``FileNotFoundError`` when there is no such file.
    """
    path = Path(os.path.expanduser(os.fspath(path)))
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: corrupt gzip data ({exc}); download the file again") from None
    if len(raw) < 4:
        raise ValueError(f"{path}: not an IDX file: {len(raw)} bytes, shorter than the 4-byte "
                         "magic number")
    zero, code, ndim = raw[:2], raw[2], raw[3]
    if zero != b"\x00\x00":
        raise ValueError(f"{path}: not an IDX file: magic number {raw[:4].hex()} should start "
                         "with two zero bytes (0000TTNN)")
    if code not in _IDX_TYPES:
        valid = ", ".join(f"0x{c:02X}" for c in _IDX_TYPES)
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02X}; expected one of {valid}")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions; expected at least 1")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, "
                         f"the file has {len(raw)}")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_TYPES[code]
    expected = header + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise ValueError(f"{path}: IDX file {what}: shape {shape} of {dtype.name} needs "
                         f"{expected} bytes, the file has {len(raw)}")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


_MNIST_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
                "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def _find_idx(directory: Path, stem: str) -> Path:
    # Both spellings seen in the wild: "train-images-idx3-ubyte" and "train-images.idx3-ubyte".
    dotted = stem[::-1].replace("-", ".", 1)[::-1]
    for name in (stem, dotted):
        for suffix in ("", ".gz"):
            if (directory / (name + suffix)).is_file():
                return directory / (name + suffix)
    raise FileNotFoundError(f"{directory}: no {stem} (or {stem}.gz) found; an MNIST directory "
                            f"holds {', '.join(_MNIST_FILES.values())}, plain or gzipped")


def load_mnist(directory: str | os.PathLike) -> tuple[np.ndarray, np.ndarray,
                                                       np.ndarray, np.ndarray]:
    """MNIST (or Fashion-MNIST) from the four standard IDX files in ``directory``.

    Returns ``X_train, y_train, X_test, y_test``: X float32 of shape (n, rows*cols) scaled to
    [0, 1], y int64. Nothing is downloaded.
    """
    directory = Path(os.path.expanduser(os.fspath(directory)))
    if not directory.is_dir():
        raise FileNotFoundError(f"MNIST directory {str(directory)!r} does not exist; give the "
                                "folder holding the four IDX files (nothing is downloaded)")
    parts = {}
    for key, stem in _MNIST_FILES.items():
        path = _find_idx(directory, stem)
        parts[key] = (path, read_idx(path))
    out = []
    for split in ("train", "test"):
        (ipath, images), (lpath, labels) = parts[f"{split}_images"], parts[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1:
            raise ValueError(f"{ipath} must hold images (n, rows, cols) and {lpath} labels (n,); "
                             f"got shapes {images.shape} and {labels.shape}")
        if len(images) != len(labels):
            raise ValueError(f"{ipath} holds {len(images)} images but {lpath} holds "
                             f"{len(labels)} labels")
        X = images.reshape(len(images), -1).astype(np.float32)
        if images.dtype == np.uint8:
            X /= 255.0
        out += [X, labels.astype(np.int64)]
    if out[0].shape[1] != out[2].shape[1]:
        raise ValueError(f"train images have {out[0].shape[1]} pixels, test images "
                         f"{out[2].shape[1]}; the files are from different datasets")
    return out[0], out[1], out[2], out[3]


# --------------------------------------------------------------------------- synthetic data
def make_classification(n_samples: int = 1000, n_features: int = 20, *, n_classes: int = 2,
                        n_informative: int = 5, class_sep: float = 2.0,
                        random_state: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters: x = c[y] + e on ``n_informative`` features, e ~ N(0, 1); the other
    features are pure noise. Returns X (n_samples, n_features) float64, y int64 in 0..n_classes-1.
    """
    _check_counts(n_samples=n_samples, n_features=n_features, n_informative=n_informative)
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2; got {n_classes}")
    if n_informative > n_features:
        raise ValueError(f"n_informative ({n_informative}) must be <= n_features ({n_features})")
    rng = np.random.default_rng(random_state)
    centroids = rng.standard_normal((n_classes, n_informative)) * class_sep
    y = np.arange(n_samples) % n_classes
    rng.shuffle(y)
    X = rng.standard_normal((n_samples, n_features))
    X[:, :n_informative] += centroids[y]
    return X, y.astype(np.int64)


def make_regression(n_samples: int = 1000, n_features: int = 20, *, n_informative: int = 5,
                    noise: float = 0.1, random_state: int | None = 0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """y = X[:, :k] w + noise e with X, e ~ N(0, 1) and w ~ U(0, 10) on k = ``n_informative``
    features. Returns X (n_samples, n_features) float64 and y (n_samples,) float64.
    """
    _check_counts(n_samples=n_samples, n_features=n_features, n_informative=n_informative)
    if n_informative > n_features:
        raise ValueError(f"n_informative ({n_informative}) must be <= n_features ({n_features})")
    rng = np.random.default_rng(random_state)
    X = rng.standard_normal((n_samples, n_features))
    w = rng.uniform(0.0, 10.0, n_informative)
    y = X[:, :n_informative] @ w + noise * rng.standard_normal(n_samples)
    return X, y


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")


# --------------------------------------------------------------------------- split + scale
def train_test_split(X: np.ndarray, y: np.ndarray, *, test_size: float = 0.25,
                     random_state: int | None = 0, stratify: bool = False
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """X_train, X_test, y_train, y_test: a shuffled split drawn from a seeded Generator.

    ``stratify=True`` keeps each class's share of ``y`` in both parts (every class with at
    least two samples appears in both).
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {X.shape}")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} samples but y has {len(y)}")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be a fraction in (0, 1); got {test_size!r}")
    n = len(X)
    rng = np.random.default_rng(random_state)
    if stratify:
        test = []
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            k = min(len(idx) - 1, max(1, round(test_size * len(idx)))) if len(idx) > 1 else 0
            test.append(idx[:k])
        test_idx = np.sort(np.concatenate(test))
    else:
        k = round(test_size * n)
        test_idx = np.sort(rng.permutation(n)[:k])
    if len(test_idx) == 0 or len(test_idx) == n:
        raise ValueError(f"test_size={test_size} of {n} samples leaves one part empty")
    mask = np.zeros(n, dtype=bool)
    mask[test_idx] = True
    train_idx = rng.permutation(np.flatnonzero(~mask))
    test_idx = rng.permutation(test_idx)
    return X[train_idx], X[test_idx], y[train_idx], y[test_idx]


def standardize(X_train: np.ndarray, *others: np.ndarray, dtype: str = "float32"
                ) -> tuple[np.ndarray, ...]:
    """(X - mean) / std with mean and std of ``X_train`` only, applied to every array given.

    Features constant on the training set (std 0) are only centred. Returns the scaled arrays
    in the order given, as ``dtype``.
    """
    mean, std = scaling(X_train)
    return tuple(((np.asarray(X, dtype=np.float64) - mean) / std).astype(dtype)
                 for X in (X_train, *others))


def scaling(X_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of the training features (std 0 -> 1): what :func:`standardize` applies."""
    X_train = np.asarray(X_train, dtype=np.float64)
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std[std == 0.0] = 1.0
    return mean, std


@dataclass(frozen=True)
class Dataset:
    """A prepared dataset: held-out split, X standardized with training statistics (``mean``,
    ``std``: what to apply to new data; None where X was not standardized, MNIST)."""

    name: str
    task: str  # "classification" or "regression"
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    feature_names: list[str] | None = None
    target: str | None = None
    fill: np.ndarray | None = None  # what replaced missing values (the training part's)
    missing: str | None = None  # how ``fill`` was computed: "mean" or "median"
    notes: tuple[str, ...] = ()  # what was done to the file's columns and rows

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    def describe(self) -> str:
        kind = (f"{len(np.unique(self.y_train))} classes" if self.task == "classification"
                else "regression")
        return (f"{self.name}: {len(self.X_train)} train / {len(self.X_test)} test samples, "
                f"{self.n_features} features, {kind}")


def load_dataset(name: str, *, test_size: float = 0.25, random_state: int = 0,
                 dtype: str = "float32") -> Dataset:
    """A :class:`Dataset` by name: one of :data:`DATASETS`, or ``"mnist:DIR"``.

    The split is drawn from ``random_state`` (stratified for classification) and X is
    standardized with the training part's mean and std; MNIST keeps its own 60k/10k split
    and its pixels scaled to [0, 1].
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string; got {type(name).__name__}")
    if name.startswith("mnist:"):
        directory = name.partition(":")[2]
        if not directory:
            raise ValueError("dataset 'mnist:DIR' needs the directory of the IDX files, "
                             "e.g. mnist:/data/mnist")
        X_train, y_train, X_test, y_test = load_mnist(directory)
        return Dataset(name, "classification", X_train.astype(dtype), X_test.astype(dtype),
                       y_train, y_test)
    loaders = {"digits": load_digits, "breast_cancer": load_breast_cancer,
               "diabetes": load_diabetes,
               "synthetic": lambda: make_classification(n_classes=3, random_state=random_state),
               "synthetic_regression": lambda: make_regression(random_state=random_state)}
    key = name.replace("-", "_").lower()
    if key not in loaders:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}, "
                         "or mnist:DIR (a folder of MNIST-format IDX files)")
    X, y = loaders[key]()
    task = DATASETS[key]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=random_state,
        stratify=task == "classification")
    mean, std = scaling(X_train)
    X_train, X_test = standardize(X_train, X_test, dtype=dtype)
    if task == "regression":
        y_train, y_test = y_train.astype(dtype), y_test.astype(dtype)
    return Dataset(key, task, X_train, X_test, y_train, y_test, mean, std)


def load_shard(path: str | os.PathLike, rank: int | None = None, size: int | None = None
               ) -> np.ndarray:
    """Rank ``rank`` of ``size``'s rows of a ``.npy`` file, memory-mapped: rows
    np.array_split(range(n), size)[rank] (contiguous, sizes differing by one at most), read
    from disk only as they are used, so no rank reads the whole file. ``rank``/``size``
    default to MPI's COMM_WORLD (mpi4py), or 0 of 1 without it. Use the same call for X and
    y files: their shards line up."""
    if (rank is None) != (size is None):
        raise ValueError("give both rank and size, or neither (MPI's COMM_WORLD)")
    if rank is None:
        try:
            from mpi4py import MPI

            rank, size = MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()
        except ImportError:
            rank, size = 0, 1
    if not (isinstance(size, int) and size >= 1 and isinstance(rank, int) and 0 <= rank < size):
        raise ValueError(f"rank must be in [0, size) and size >= 1; got rank={rank!r}, "
                         f"size={size!r}")
    A = np.load(os.path.expanduser(os.fspath(path)), mmap_mode="r", allow_pickle=False)
    if A.ndim == 0:
        raise ValueError(f"{path}: a 0-d array has no rows to share")
    n = A.shape[0]
    start = rank * (n // size) + min(rank, n % size)
    stop = start + n // size + (1 if rank < n % size else 0)
    return A[start:stop]


def load_file(path: str | os.PathLike, *, target: str | None = None, task: str | None = None,
              test_size: float = 0.25, random_state: int = 0, dtype: str = "float32",
              sep: str | None = None, features: list[str] | None = None,
              drop: list[str] | None = None, missing: str = "error",
              drop_unlabeled: bool = False) -> Dataset:
    """A :class:`Dataset` from a user's CSV / .npy / .npz file (:func:`xpnet.tables.read_table`,
    which takes ``sep``, ``features``, ``drop``, ``missing`` and ``drop_unlabeled``): ``task``
    "classification" or "regression" (None: inferred from the targets), a held-out split from
    ``random_state`` (stratified for classification), missing values filled with the training
    part's mean or median (``missing``), and X standardized with the training part's mean and
    std."""
    table = read_table(path, target, sep=sep, features=features, drop=drop, missing=missing,
                       drop_unlabeled=drop_unlabeled)
    if task is None:
        task = infer_task(table.y)
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression'; got {task!r}")
    y = table.y
    if task == "regression":
        if y.dtype.kind not in "biuf":
            raise ValueError(f"{path}: regression needs numeric targets; column "
                             f"{table.target!r} holds labels (use --task classification)")
        y = y.astype(np.float64)
    elif y.dtype.kind == "f" and np.all(y == np.round(y)):
        y = y.astype(np.int64)  # labels 0.0, 1.0, ... read from text: the integers they are
    X_train, X_test, y_train, y_test = train_test_split(
        table.X, y, test_size=test_size, random_state=random_state,
        stratify=task == "classification")
    fill = None
    if missing in MISSING:
        X_train, X_test, fill = fill_missing(X_train, X_test, how=missing,
                                             names=table.feature_names)
    mean, std = scaling(X_train)
    X_train, X_test = standardize(X_train, X_test, dtype=dtype)
    if task == "regression":
        y_train, y_test = y_train.astype(dtype), y_test.astype(dtype)
    name = os.path.basename(os.fspath(path))
    return Dataset(name, task, X_train, X_test, y_train, y_test, mean, std,
                   table.feature_names, table.target, fill, missing if fill is not None
                   else None, table.notes)


def fill_missing(X_train: np.ndarray, *others: np.ndarray, how: str = "mean",
                 names: list[str] | None = None) -> tuple[np.ndarray, ...]:
    """(*filled arrays, fill): NaN replaced by the mean or median (``how``) of each column's
    values in ``X_train`` only, in every array given; ``fill`` is the (d,) values used."""
    X_train = np.asarray(X_train, dtype=np.float64)
    empty = np.isnan(X_train).all(axis=0)
    if empty.any():
        cols = [names[j] if names else str(j) for j in np.flatnonzero(empty)]
        raise ValueError(f"column(s) {', '.join(map(repr, cols))} hold no values in the "
                         f"training part: nothing to fill them with; leave them out (--drop)")
    fill = (np.nanmean if how == "mean" else np.nanmedian)(X_train, axis=0)
    filled = tuple(np.where(np.isnan(X), fill, X) for X in (X_train, *others))
    return (*filled, fill)
