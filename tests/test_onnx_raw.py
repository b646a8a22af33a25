"""ONNX files exported from models trained by the CLI take raw rows: ``xpnet train`` on a CSV,
``xpnet export``, then onnxruntime on the file's own rows (missing cells as NaN) answers as
``xpnet predict`` does on that file: the preprocessing runs inside the graph."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("ndonnx")


def xpnet(*args):
    done = subprocess.run([sys.executable, "-m", "xpnet", *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return done.stdout, done.stderr


def write(path, X, y, names):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*names, "target"])
        for row, t in zip(X, y):
            w.writerow(["" if np.isnan(v) else repr(float(v)) for v in row] + [t])


def raw_rows(path, n):
    """The first n columns of a CSV as float64, NaN for empty cells: raw rows."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))[1:]
    return np.array([[float(v) if v else np.nan for v in r[:n]] for r in rows])


def predicted(text):
    rows = list(csv.reader(text.splitlines()))
    return rows[0], rows[1:]


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(160, 4)) * [1.0, 50.0, 0.02, 5.0] + [13.0, 700.0, 0.3, -20.0]
    s = (X[:, 0] - 13.0) + (X[:, 1] - 700.0) / 50.0 - (X[:, 3] + 20.0) / 5.0
    return X, s


@pytest.mark.parametrize("missing", ["error", "median"])
def test_classifier_onnx_on_raw_rows_equals_predict(tmp_path, data, missing):
    X, s = data
    y = np.where(s > 0.7, "barolo", np.where(s < -0.7, "barbera", "grignolino"))
    if missing != "error":  # missing cells, filled in training and inside the graph
        X = X.copy()
        X[[5, 40, 77], [0, 3, 1]] = np.nan
    names = ["alcohol", "proline", "hue", "ash"]
    write(tmp_path / "w.csv", X, y, names)
    xpnet("train", "--data", tmp_path / "w.csv", "--target", "target", "--layers", "8",
          "--epochs", "80", "--learning-rate", "0.01", "--quiet", "--missing", missing,
          "--save", tmp_path / "w.xpnet")
    _, err = xpnet("export", tmp_path / "w.xpnet", "--onnx", tmp_path / "w.onnx")
    assert "input X: the raw rows, float64, columns alcohol, proline, hue, ash" in err
    header, rows = predicted(xpnet("predict", tmp_path / "w.xpnet", tmp_path / "w.csv",
                                   "--proba")[0])
    _, labels = predicted(xpnet("predict", tmp_path / "w.xpnet", tmp_path / "w.csv")[0])
    sess = session(tmp_path / "w.onnx")
    assert sess.get_inputs()[0].type == "tensor(double)"
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["xpnet.input"] == "raw" and meta["xpnet.label"] == "values"
    assert json.loads(meta["xpnet.feature_names"]) == names
    proba, label = sess.run(None, {"X": raw_rows(tmp_path / "w.csv", 4)})
    assert header == [f"proba_{c}" for c in json.loads(meta["xpnet.classes"])]
    # labels: the strings themselves, equal to xpnet predict's on every row
    np.testing.assert_array_equal(label, np.array([r[0] for r in labels]))
    # probabilities: float32 network, onnxruntime's kernels round a few ulps differently
    np.testing.assert_allclose(proba, np.array(rows, dtype=np.float64), rtol=1e-5, atol=1e-6)
    assert np.mean(label == y) > 0.85


def test_regressor_onnx_on_raw_rows_equals_predict(tmp_path, data):
    X, s = data
    write(tmp_path / "r.csv", X, 3.0 * s + 100.0, ["a", "b", "c", "d"])
    xpnet("train", "--data", tmp_path / "r.csv", "--target", "target", "--layers", "8",
          "--epochs", "60", "--learning-rate", "0.01", "--quiet", "--dtype", "float64",
          "--save", tmp_path / "r.xpnet")
    xpnet("export", tmp_path / "r.xpnet", "--onnx", tmp_path / "r.onnx")
    _, rows = predicted(xpnet("predict", tmp_path / "r.xpnet", tmp_path / "r.csv")[0])
    (y,) = session(tmp_path / "r.onnx").run(None, {"X": raw_rows(tmp_path / "r.csv", 4)})
    np.testing.assert_allclose(y, np.array(rows, dtype=np.float64).ravel(), rtol=1e-12,
                               atol=1e-12)


def test_the_graph_standardizes_raw_rows_and_the_bare_graph_does_not(tmp_path, data):
    """Without the preprocessing in the graph (the estimator's own to_onnx), raw rows give
    other answers: the trap the exported pipeline closes."""
    import xpnet as xp
    from xpnet.pipeline import load_pipeline

    X, s = data
    write(tmp_path / "w.csv", X, np.where(s > 0, "yes", "no"), ["a", "b", "c", "d"])
    xpnet("train", "--data", tmp_path / "w.csv", "--target", "target", "--layers", "8",
          "--epochs", "60", "--learning-rate", "0.01", "--quiet", "--save",
          tmp_path / "w.xpnet")
    pipe = load_pipeline(tmp_path / "w.xpnet")
    raw = raw_rows(tmp_path / "w.csv", 4)
    bare = xp.load(tmp_path / "w.xpnet").to_onnx()
    full = pipe.to_onnx()
    p_bare = ort.InferenceSession(bare.SerializeToString(), providers=["CPUExecutionProvider"]
                                  ).run(None, {"X": raw.astype(np.float32)})[0]
    p_full = ort.InferenceSession(full.SerializeToString(), providers=["CPUExecutionProvider"]
                                  ).run(None, {"X": raw})[0]
    np.testing.assert_allclose(p_full, pipe.predict_proba(raw), rtol=1e-5, atol=1e-6)
    assert np.abs(p_bare - p_full).max() > 0.1
