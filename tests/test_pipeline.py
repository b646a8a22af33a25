"""Models carry their preprocessing (:mod:`xpnet.io.preprocessing`, :mod:`xpnet.pipeline`):
what ``xpnet train`` learned from the file (columns, fill values, standardization) is in the
model file, applied to raw rows by :class:`~xpnet.pipeline.Pipeline` and by the host copy the
CLI answers with (:class:`~xpnet.io.hostmodel.HostModel`), which answers as the estimator
does; files of earlier versions (a ``dataset`` record with mean and std) still work."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest

import xpnet
from xpnet.cli import main
from xpnet.errors import ModelFileError
from xpnet.estimators.sklearn_base import ConvergenceWarning
from xpnet.io import container
from xpnet.io.hostmodel import HostModel
from xpnet.io.preprocessing import Preprocessing, from_meta
from xpnet.pipeline import Pipeline, load_pipeline


def wine_like(path, n=120, seed=0, blank=()):
    """A CSV of 3 features on very different scales (so standardization matters), string
    labels; cells in ``blank`` (row, column) left empty. Returns X (NaN where blank), y."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1.0, 100.0, 0.01] + [13.0, 700.0, 0.3]
    s = (X[:, 0] - 13.0) + (X[:, 1] - 700.0) / 100.0
    y = np.where(s > 0.5, "barolo", np.where(s < -0.5, "barbera", "grignolino"))
    X = X.copy()
    for i, j in blank:
        X[i, j] = np.nan
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["alcohol", "proline", "hue", "cultivar"])
        for row, t in zip(X, y):
            w.writerow(["" if np.isnan(v) else repr(float(v)) for v in row] + [t])
    return X, y


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model trained by the CLI on a file with two missing cells, filled by the mean."""
    d = tmp_path_factory.mktemp("pipeline")
    X, y = wine_like(d / "w.csv", blank=[(3, 0), (10, 1)])
    assert main(["train", "--data", str(d / "w.csv"), "--target", "cultivar", "--layers", "8",
                 "--epochs", "60", "--learning-rate", "0.01", "--quiet", "--missing", "mean",
                 "--save", str(d / "w.xpnet")]) == 0
    return d, X, y


def test_the_model_file_records_the_preprocessing(trained):
    d, X, _ = trained
    pipe = load_pipeline(d / "w.xpnet")
    p = pipe.preprocessing
    assert p.columns == pipe.columns == ["alcohol", "proline", "hue"]
    assert p.missing == "mean" and p.fill.shape == (3,)
    # the statistics of the training part (3/4 of the rows): near the whole file's
    np.testing.assert_allclose(p.fill, np.nanmean(X, axis=0), rtol=0.02)
    np.testing.assert_allclose(p.mean, p.fill, rtol=1e-9)  # filling by the mean keeps it
    np.testing.assert_allclose(p.std, np.nanstd(X, axis=0), rtol=0.15)
    assert repr(pipe).startswith("Pipeline(fill, standardize -> MLPClassifier(3-8-3")
    # the dataset record keeps what earlier versions' predict read: the same statistics
    record = container.load(d / "w.xpnet")[1]["dataset"]
    assert record["mean"] == p.mean.tolist() and record["std"] == p.std.tolist()
    assert record["feature_names"] == p.columns


def test_pipeline_predicts_raw_rows_as_the_estimator_predicts_prepared_ones(trained):
    d, X, y = trained
    pipe = load_pipeline(d / "w.xpnet")
    p = pipe.preprocessing
    filled = np.where(np.isnan(X), p.fill, X)
    prepared = ((filled - p.mean) / p.std).astype(np.float32)  # by hand
    np.testing.assert_array_equal(pipe.predict(X), pipe.estimator.predict(prepared))
    np.testing.assert_array_equal(pipe.predict_proba(X), pipe.estimator.predict_proba(prepared))
    assert np.mean(pipe.predict(X) == y) > 0.85
    # raw rows through the bare estimator: the trap the pipeline closes
    assert np.mean(pipe.estimator.predict(np.nan_to_num(X)) == y) < 0.7


def test_pipeline_picks_dataframe_columns_by_name(trained):
    pd = pytest.importorskip("pandas")
    d, X, _ = trained
    pipe = load_pipeline(d / "w.xpnet")
    df = pd.DataFrame(X[:, ::-1], columns=["hue", "proline", "alcohol"])  # another order
    df["other"] = 1.0
    np.testing.assert_array_equal(pipe.predict(df), pipe.predict(X))
    with pytest.raises(ValueError, match="lack the model's column"):
        pipe.predict(df.drop(columns="hue"))


def test_host_model_answers_as_the_estimator(trained):
    d, X, _ = trained
    host, est = load_pipeline(d / "w.xpnet", host=True), load_pipeline(d / "w.xpnet")
    assert isinstance(host.estimator, HostModel)
    np.testing.assert_array_equal(host.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(host.predict(X), est.predict(X))
    rng = np.random.default_rng(0)
    Xr = rng.normal(size=(50, 4))
    for est2 in (xpnet.MLPRegressor(hidden_layer_sizes=(5,), max_iter=5, random_state=0),
                 xpnet.MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0,
                                     dtype="float64")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            yr = Xr[:, 0] if isinstance(est2, xpnet.MLPRegressor) else Xr[:, 0] > 0
            est2.fit(Xr, yr)
        est2.save(d / "plain.xpnet")
        h = HostModel(d / "plain.xpnet")
        np.testing.assert_array_equal(h.predict(Xr), est2.predict(Xr))
        assert h.predict(Xr).dtype == est2.predict(Xr).dtype


def test_host_model_of_a_one_class_classifier_answers_its_class(tmp_path):
    """A classifier fitted on one class (scikit-learn's) predicts that class, from a host copy
    too: the label step is the estimator's (training.inference.label_classes)."""
    Xr = np.random.default_rng(0).normal(size=(30, 4))
    est = xpnet.MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(Xr, np.full(30, "only"))
    est.save(tmp_path / "one.xpnet")
    got = HostModel(tmp_path / "one.xpnet").predict(Xr)
    np.testing.assert_array_equal(got, est.predict(Xr))
    assert set(got) == {"only"}


def test_a_model_without_fill_values_refuses_missing_rows(tmp_path):
    wine_like(tmp_path / "w.csv")
    assert main(["train", "--data", str(tmp_path / "w.csv"), "--target", "cultivar",
                 "--layers", "4", "--epochs", "2", "--quiet", "--save",
                 str(tmp_path / "m.xpnet")]) == 0
    pipe = load_pipeline(tmp_path / "m.xpnet")
    assert pipe.preprocessing.fill is None
    X = np.ones((2, 3))
    X[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"row 1, column hue: missing value"):
        pipe.predict(X)


def test_files_of_earlier_versions_still_work(tmp_path, capsys):
    """A model saved by `xpnet train` before this change: its dataset record held mean, std and
    feature_names; predict applies them as before, and the pipeline reads them."""
    X, y = wine_like(tmp_path / "w.csv")
    mean, std = X.mean(axis=0), X.std(axis=0)
    est = xpnet.MLPClassifier(hidden_layer_sizes=(8,), max_iter=80, learning_rate_init=0.01,
                              random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(((X - mean) / std).astype(np.float32), y)
    path = tmp_path / "old.xpnet"
    est.save(path)
    arrays, meta = container.load(path)
    meta = {k: v for k, v in meta.items() if k not in ("format", "format_version")}
    meta["dataset"] = {"name": "w.csv", "test_size": 0.25, "split_seed": 0,
                       "task": "classification", "source": str(tmp_path / "w.csv"),
                       "target": "cultivar", "feature_names": ["alcohol", "proline", "hue"],
                       "mean": mean.tolist(), "std": std.tolist()}
    container.save(path, arrays, meta)
    pipe = load_pipeline(path)
    assert pipe.columns == ["alcohol", "proline", "hue"]
    np.testing.assert_array_equal(pipe.preprocessing.mean, mean)
    assert main(["predict", str(path), str(tmp_path / "w.csv")]) == 0
    labels = capsys.readouterr().out.split()[1:]
    np.testing.assert_array_equal(labels, est.predict(((X - mean) / std).astype(np.float32)))
    assert main(["evaluate", str(path)]) == 0  # its held-out split, read again
    assert "test accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("field,value,message", [
    ("mean", [0.0, 1.0], "preprocessing.mean is .*expected a list of 3 finite numbers"),
    ("std", [1.0, 0.0, 1.0], "preprocessing.std is .*> 0"),
    ("columns", ["a", "a", "b"], "3 distinct column names"),
    ("missing", "mode", "expected null, 'mean' or 'median'"),
    ("fill", None, "fill and preprocessing.missing disagree"),
    ("extra", 1, "preprocessing.extra is unknown"),
])
def test_a_wrong_preprocessing_entry_is_refused(field, value, message):
    good = Preprocessing(["a", "b", "c"], np.zeros(3), np.ones(3), np.zeros(3), "mean")
    data = {**good.to_json(), field: value}
    with pytest.raises(ModelFileError, match=message):
        from_meta({"preprocessing": data}, 3, "model file 'm'")
    assert from_meta({"preprocessing": good.to_json()}, 3, "m").columns == ["a", "b", "c"]
    assert from_meta({}, 3, "m") is None  # a model saved from Python: rows as they are


def test_pipeline_save_and_python_api_without_preprocessing(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    est = xpnet.MLPRegressor(hidden_layer_sizes=(3,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, X[:, 0])
    p = Preprocessing(["u", "v"], np.array([1.0, 2.0]), np.array([2.0, 4.0]))
    Pipeline(est, p).save(tmp_path / "m.xpnet", {"note": "kept"})
    back = load_pipeline(tmp_path / "m.xpnet")
    assert container.load(tmp_path / "m.xpnet")[1]["note"] == "kept"
    np.testing.assert_allclose(back.predict(X), est.predict((X - [1.0, 2.0]) / [2.0, 4.0]),
                               rtol=1e-6)
    bare = Pipeline(est)
    assert bare.columns is None
    np.testing.assert_array_equal(bare.predict(X), est.predict(X))
    with pytest.raises(ValueError, match=r"expected rows of 2 features"):
        bare.predict(X[:, :1])
