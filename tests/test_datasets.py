"""Datasets: IDX files written here byte by byte, bundled data, synthetic data, split + scale."""

import gzip
import struct
import sys

import numpy as np
import pytest

from xpnet import datasets
from xpnet.datasets import (load_dataset, load_mnist, make_classification, make_regression,
                            read_idx, standardize, train_test_split)

# IDX type code -> big-endian dtype, as the format's specification lists them.
IDX_CODES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def idx_bytes(a: np.ndarray, code: int) -> bytes:
    """An IDX file written independently of the reader: 00 00 TT NN, N big-endian uint32, data."""
    header = bytes([0, 0, code, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + a.astype(IDX_CODES[code]).tobytes()


def write(path, data: bytes, gz: bool = False):
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# --------------------------------------------------------------------------- IDX
def test_read_idx_worked_example(tmp_path):
    # 2 x 3 unsigned bytes: magic 00 00 08 02, dims 2 and 3, then 1..6 row by row.
    raw = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6])
    a = read_idx(write(tmp_path / "x-idx2-ubyte", raw))
    assert a.dtype == np.uint8 and a.shape == (2, 3)
    np.testing.assert_array_equal(a, [[1, 2, 3], [4, 5, 6]])


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("code", sorted(IDX_CODES))
def test_read_idx_round_trip(tmp_path, code, gz):
    rng = np.random.default_rng(code)
    dtype = np.dtype(IDX_CODES[code])
    if dtype.kind == "f":
        a = rng.standard_normal((3, 4, 5)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, size=(3, 4, 5), endpoint=True).astype(dtype)
    got = read_idx(write(tmp_path / "a.idx", idx_bytes(a, code), gz))
    assert got.shape == (3, 4, 5)
    assert got.dtype == dtype.newbyteorder("=")  # native order, ready for arithmetic
    np.testing.assert_array_equal(got, a)


def test_read_idx_one_dimension_and_empty(tmp_path):
    labels = np.array([7, 2, 1, 0], dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(write(tmp_path / "l", idx_bytes(labels, 0x08))),
                                  labels)
    empty = read_idx(write(tmp_path / "e", idx_bytes(np.zeros((0, 28, 28), np.uint8), 0x08)))
    assert empty.shape == (0, 28, 28)


GOOD = idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3), 0x08)


@pytest.mark.parametrize("raw, message", [
    (b"", "shorter than the 4-byte magic number"),
    (b"\x00\x00", "shorter than the 4-byte magic number"),
    (b"\x01\x00" + GOOD[2:], "should start with two zero bytes"),
    (b"PK\x03\x04" + GOOD[4:], "should start with two zero bytes"),
    (GOOD[:2] + b"\x07" + GOOD[3:], "unknown IDX type code 0x07"),
    (GOOD[:3] + b"\x00" + GOOD[4:], "declares 0 dimensions"),
    (GOOD[:3] + b"\x09" + GOOD[4:], "truncated IDX header"),
    (GOOD[:-1], "IDX file truncated"),
    (GOOD + b"\x00", "has trailing bytes"),
    (GOOD[:3] + b"\x03" + GOOD[4:], "IDX file"),  # 3 dims read from a 2-dim file: sizes disagree
])
def test_read_idx_rejects_corrupt_files(tmp_path, raw, message):
    path = write(tmp_path / "bad-idx", raw)
    with pytest.raises(ValueError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_corrupt_gzip_and_missing_file(tmp_path):
    gz = gzip.compress(GOOD)
    path = write(tmp_path / "cut.gz", gz[: len(gz) // 2])
    with pytest.raises(ValueError, match="corrupt gzip data"):
        read_idx(path)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nothing-here")


def test_read_idx_size_check_uses_declared_dims(tmp_path):
    # A header claiming 60000 images of 28x28 over 12 bytes of data must not be read.
    raw = bytes([0, 0, 8, 3]) + struct.pack(">3I", 60000, 28, 28) + bytes(12)
    with pytest.raises(ValueError, match=r"shape \(60000, 28, 28\).*needs 47040016 bytes"):
        read_idx(write(tmp_path / "x", raw))


def mnist_dir(tmp_path, n_train=5, n_test=3, gz=(False, True, False, True), dotted=False):
    rng = np.random.default_rng(0)
    images = {s: rng.integers(0, 256, (n, 4, 3), dtype=np.uint8)
              for s, n in (("train", n_train), ("t10k", n_test))}
    labels = {s: rng.integers(0, 10, len(images[s]), dtype=np.uint8) for s in images}
    files = [("train-images-idx3-ubyte", images["train"]), ("train-labels-idx1-ubyte",
             labels["train"]), ("t10k-images-idx3-ubyte", images["t10k"]),
             ("t10k-labels-idx1-ubyte", labels["t10k"])]
    for (name, a), z in zip(files, gz):
        if dotted:
            name = name[::-1].replace("-", ".", 1)[::-1]
        write(tmp_path / (name + (".gz" if z else "")), idx_bytes(a, 0x08), z)
    return images, labels


@pytest.mark.parametrize("dotted", [False, True])
def test_load_mnist(tmp_path, dotted):
    images, labels = mnist_dir(tmp_path, dotted=dotted)
    X_train, y_train, X_test, y_test = load_mnist(tmp_path)
    assert X_train.shape == (5, 12) and X_test.shape == (3, 12)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    np.testing.assert_allclose(X_train, images["train"].reshape(5, 12) / 255.0, rtol=1e-7)
    np.testing.assert_allclose(X_test, images["t10k"].reshape(3, 12) / 255.0, rtol=1e-7)
    np.testing.assert_array_equal(y_train, labels["train"])
    np.testing.assert_array_equal(y_test, labels["t10k"])
    ds = load_dataset(f"mnist:{tmp_path}")
    assert ds.task == "classification" and ds.X_train.shape == (5, 12)
    np.testing.assert_array_equal(ds.y_test, labels["t10k"])


def test_load_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist(tmp_path / "absent")
    mnist_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="no t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(np.zeros(4, np.uint8), 0x08))
    with pytest.raises(ValueError, match="holds 3 images but .* holds 4 labels"):
        load_mnist(tmp_path)
    with pytest.raises(ValueError, match="needs the directory"):
        load_dataset("mnist:")


# --------------------------------------------------------------------------- bundled data
@pytest.mark.parametrize("loader, shape, kind, n_classes", [
    (datasets.load_digits, (1797, 64), "i", 10),
    (datasets.load_breast_cancer, (569, 30), "i", 2),
    (datasets.load_diabetes, (442, 10), "f", None),
])
def test_bundled_datasets(loader, shape, kind, n_classes):
    X, y = loader()
    assert X.shape == shape and X.dtype == np.float64 and y.shape == (shape[0],)
    assert y.dtype.kind == kind and np.isfinite(X).all()
    if n_classes:
        np.testing.assert_array_equal(np.unique(y), np.arange(n_classes))


def test_digits_pixels_are_raw_counts():
    X, _ = datasets.load_digits()
    assert X.min() == 0.0 and X.max() == 16.0 and np.all(X == np.round(X))


def test_missing_sklearn_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes `import sklearn` fail
    with pytest.raises(ImportError, match=r"pip install 'xpnet\[sklearn\]'"):
        datasets.load_digits()


# --------------------------------------------------------------------------- synthetic
def test_make_classification():
    X, y = make_classification(300, 8, n_classes=3, n_informative=2, class_sep=4.0,
                               random_state=1)
    assert X.shape == (300, 8) and y.shape == (300,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [100, 100, 100])
    X2, y2 = make_classification(300, 8, n_classes=3, n_informative=2, class_sep=4.0,
                                 random_state=1)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, make_classification(300, 8, n_classes=3, random_state=2)[0])
    # Informative features: class means far apart; noise features: every class mean near 0.
    means = np.array([X[y == c].mean(axis=0) for c in range(3)])
    assert np.abs(means[:, 2:]).max() < 0.4
    spread = np.linalg.norm(means[:, None, :2] - means[None, :, :2], axis=-1)
    assert spread[~np.eye(3, dtype=bool)].min() > 1.0


def test_make_regression_is_linear_plus_noise():
    X, y = make_regression(200, 6, n_informative=3, noise=0.0, random_state=3)
    assert X.shape == (200, 6) and y.shape == (200,)
    w, residual, *_ = np.linalg.lstsq(X, y, rcond=None)
    np.testing.assert_allclose(X @ w, y, atol=1e-9)
    np.testing.assert_allclose(w[3:], 0.0, atol=1e-9)  # only the informative features count
    assert np.all((w[:3] > 0) & (w[:3] < 10))
    _, y_noisy = make_regression(200, 6, n_informative=3, noise=0.5, random_state=3)
    np.testing.assert_allclose(np.std(y_noisy - y), 0.5, rtol=0.2)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_samples": 0}, "n_samples must be a positive integer"),
    ({"n_features": 2, "n_informative": 3}, "n_informative"),
    ({"n_classes": 1}, "n_classes must be >= 2"),
])
def test_make_classification_rejects_bad_counts(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_classification(**kwargs)


# --------------------------------------------------------------------------- split + scale
def test_train_test_split_partitions_the_rows():
    X = np.arange(40.0).reshape(20, 2)  # row i is (2i, 2i+1): rows identify themselves
    y = np.arange(20)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0)
    assert len(X_tr) == 15 and len(X_te) == 5
    np.testing.assert_array_equal(X_tr[:, 0], 2 * y_tr)  # rows and labels stay paired
    np.testing.assert_array_equal(X_te[:, 0], 2 * y_te)
    np.testing.assert_array_equal(np.sort(np.concatenate([y_tr, y_te])), y)
    again = train_test_split(X, y, test_size=0.25, random_state=0)
    np.testing.assert_array_equal(again[3], y_te)
    assert not np.array_equal(train_test_split(X, y, test_size=0.25, random_state=1)[3], y_te)


def test_stratified_split_keeps_class_shares():
    y = np.repeat([0, 1, 2], [60, 30, 10])
    X = np.arange(100.0)[:, None]
    _, _, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=0, stratify=True)
    np.testing.assert_array_equal(np.bincount(y_te), [12, 6, 2])
    np.testing.assert_array_equal(np.bincount(y_tr), [48, 24, 8])


@pytest.mark.parametrize("X, y, kw, message", [
    (np.zeros(5), np.zeros(5), {}, "X must be 2-D"),
    (np.zeros((5, 2)), np.zeros(4), {}, "X has 5 samples but y has 4"),
    (np.zeros((5, 2)), np.zeros(5), {"test_size": 1.0}, "test_size must be a fraction"),
    (np.zeros((2, 2)), np.zeros(2), {"test_size": 0.1}, "leaves one part empty"),
])
def test_train_test_split_errors(X, y, kw, message):
    with pytest.raises(ValueError, match=message):
        train_test_split(X, y, **kw)


def test_standardize_uses_training_statistics_only():
    X_train = np.array([[1.0, 5.0], [3.0, 5.0]])  # mean (2, 5), std (1, 0)
    X_test = np.array([[4.0, 7.0]])
    Z_train, Z_test = standardize(X_train, X_test, dtype="float64")
    np.testing.assert_array_equal(Z_train, [[-1.0, 0.0], [1.0, 0.0]])
    # (4 - 2) / 1 = 2; the constant feature is only centred: 7 - 5 = 2.
    np.testing.assert_array_equal(Z_test, [[2.0, 2.0]])
    (Z32,) = standardize(X_train)
    assert Z32.dtype == np.float32


@pytest.mark.parametrize("name, task, n_features", [
    ("digits", "classification", 64), ("breast_cancer", "classification", 30),
    ("diabetes", "regression", 10), ("synthetic", "classification", 20),
    ("synthetic_regression", "regression", 20),
])
def test_load_dataset(name, task, n_features):
    ds = load_dataset(name, test_size=0.25, random_state=0, dtype="float64")
    assert ds.name == name and ds.task == task and ds.n_features == n_features
    n = len(ds.X_train) + len(ds.X_test)
    assert len(ds.X_test) == pytest.approx(0.25 * n, abs=len(np.unique(ds.y_train)))
    assert ds.X_train.dtype == np.float64 and ds.X_train.shape[1] == ds.X_test.shape[1]
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-12)
    std = ds.X_train.std(axis=0)
    np.testing.assert_allclose(std[std > 0], 1.0, rtol=1e-12)
    if task == "classification":
        np.testing.assert_array_equal(np.unique(ds.y_test), np.unique(ds.y_train))
    assert name in ds.describe()


def test_load_dataset_is_reproducible_and_float32_by_default():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.X_train.dtype == np.float32
    np.testing.assert_array_equal(a.X_test, b.X_test)
    np.testing.assert_array_equal(a.y_test, b.y_test)


def test_load_dataset_unknown_name():
    with pytest.raises(ValueError, match="unknown dataset 'iris'; expected one of digits"):
        load_dataset("iris")
