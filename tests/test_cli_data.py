"""Users' files on the command line, nothing silently wrong: ``python -m xpnet`` in a subprocess
on scikit-learn's wine data written as CSV files the way users write them (a pandas index, a
blank label, a missing value, semicolons), and models saved from Python."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

import xpnet
from xpnet.estimators.sklearn_base import ConvergenceWarning
from xpnet.pipeline import load_pipeline

datasets = pytest.importorskip("sklearn.datasets")

QUICK = ["--layers", "16", "--learning-rate", "0.01", "--epochs", "60", "--quiet"]
ACCURACY = re.compile(r"^test accuracy: (\S+) \((\d+) samples\)", re.MULTILINE)


def xpnet_cli(*args):
    """``python -m xpnet ARGS``: (status, stdout, stderr); never a traceback."""
    done = subprocess.run([sys.executable, "-m", "xpnet", *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout, done.stderr


def one_line_error(args, *fragments):
    code, out, err = xpnet_cli(*args)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("xpnet "), err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.fixture(scope="module")
def wine():
    w = datasets.load_wine()
    names = [n.replace("/", "_") for n in w.feature_names]
    labels = np.array(["barolo", "grignolino", "barbera"])[w.target]  # sorted by class
    return w.data, labels, names


def write(path, X, y, names, sep=",", index=None):
    """A CSV as users write them; ``index``: a first column holding the row numbers under this
    header (pandas' ``to_csv`` writes ``""``)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter=sep)
        w.writerow(([index] if index is not None else []) + names + ["cultivar"])
        for i, (row, t) in enumerate(zip(X, y)):
            cells = ["" if np.isnan(v) else repr(float(v)) for v in row] + [t]
            w.writerow(([i] if index is not None else []) + cells)


def test_a_blank_label_is_refused_naming_its_lines_or_dropped(tmp_path, wine):
    X, y, names = wine
    y = y.copy()
    y[[4, 17]] = ""
    write(tmp_path / "w.csv", X, y, names)
    one_line_error(["train", "--data", tmp_path / "w.csv", "--target", "cultivar", *QUICK],
                   "the target column 'cultivar' is empty on lines 6, 19 (2 rows)",
                   "--drop-unlabeled")
    code, out, err = xpnet_cli("train", "--data", tmp_path / "w.csv", "--target", "cultivar",
                               "--drop-unlabeled", *QUICK, "--save", tmp_path / "m.xpnet")
    assert code == 0, err
    assert "left out 2 rows without a label in 'cultivar' (lines 6, 19)" in err
    assert "132 train / 44 test samples, 13 features, 3 classes" in out
    assert sorted(xpnet.load(tmp_path / "m.xpnet").classes_) == ["barbera", "barolo",
                                                                 "grignolino"]


@pytest.mark.parametrize("header", ["", "Unnamed: 0"])
def test_a_saved_dataframe_index_is_left_out_with_a_note(tmp_path, wine, header):
    X, y, names = wine
    write(tmp_path / "w.csv", X, y, names, index=header)
    code, out, err = xpnet_cli("train", "--data", tmp_path / "w.csv", "--target", "cultivar",
                               *QUICK, "--save", tmp_path / "m.xpnet")
    assert code == 0, err
    assert f"left out column {header!r}: no name in the header" in err
    assert "13 features, 3 classes" in out
    assert load_pipeline(tmp_path / "m.xpnet").columns == names
    # predict on the same file picks the 13 columns by name, the index is ignored
    code, out, err = xpnet_cli("predict", tmp_path / "m.xpnet", tmp_path / "w.csv")
    assert code == 0 and np.mean(np.array(out.split()[1:]) == y) > 0.9


def test_a_named_row_number_column_is_refused_and_columns_can_be_chosen(tmp_path, wine):
    X, y, names = wine
    write(tmp_path / "w.csv", X, y, names, index="id")
    one_line_error(["train", "--data", tmp_path / "w.csv", "--target", "cultivar", *QUICK],
                   "column 'id' holds the row numbers 0..177 in order: an index, not a "
                   "feature", "--drop 'id'")
    code, out, err = xpnet_cli("train", "--data", tmp_path / "w.csv", "--target", "cultivar",
                               "--drop", "id,magnesium", *QUICK, "--save", tmp_path / "d.xpnet")
    assert code == 0 and "12 features" in out, err
    assert "magnesium" not in load_pipeline(tmp_path / "d.xpnet").columns
    chosen = ["proline", "alcohol", "flavanoids"]
    code, out, err = xpnet_cli("train", "--data", tmp_path / "w.csv", "--target", "cultivar",
                               "--features", ",".join(chosen), *QUICK, "--save",
                               tmp_path / "f.xpnet")
    assert code == 0 and "3 features" in out, err
    assert load_pipeline(tmp_path / "f.xpnet").columns == chosen  # in the order given
    one_line_error(["train", "--data", tmp_path / "w.csv", "--target", "cultivar",
                    "--features", "alcohol,nope", *QUICK], "--features names 'nope', not a "
                   "column; the columns are id, alcohol")
    one_line_error(["train", "--data", tmp_path / "w.csv", "--target", "cultivar", "--drop",
                    "cultivar", *QUICK], "--drop names the target column 'cultivar'")


def test_missing_values_are_named_then_dropped_or_filled(tmp_path, wine):
    X, y, names = wine
    X = X.copy()
    X[6, 0] = X[9, 2] = np.nan
    write(tmp_path / "w.csv", X, y, names)
    one_line_error(["train", "--data", tmp_path / "w.csv", "--target", "cultivar", *QUICK],
                   "2 missing values in the feature columns (column 'alcohol' on line 8; "
                   "column 'ash' on line 11)", "--missing drop", "--missing mean / median")
    code, out, err = xpnet_cli("train", "--data", tmp_path / "w.csv", "--target", "cultivar",
                               "--missing", "drop", *QUICK)
    assert code == 0 and "left out 2 rows with missing values" in err, err
    assert "132 train / 44 test samples" in out
    code, out, err = xpnet_cli("train", "--data", tmp_path / "w.csv", "--target", "cultivar",
                               "--missing", "median", *QUICK, "--save", tmp_path / "m.xpnet")
    assert code == 0 and "filled with the training part's median" in err, err
    p = load_pipeline(tmp_path / "m.xpnet").preprocessing
    assert p.missing == "median" and np.isfinite(p.fill).all()
    # evaluate reads the file again as train did (--missing recorded): the same test split
    trained = ACCURACY.search(out).groups()
    code, out2, err = xpnet_cli("evaluate", tmp_path / "m.xpnet")
    assert code == 0 and ACCURACY.search(out2).groups() == trained, err
    # predict fills the file's missing cells with the stored medians: the rows' answers are
    # those of the rows filled by hand
    code, out, err = xpnet_cli("predict", tmp_path / "m.xpnet", tmp_path / "w.csv")
    assert code == 0, err
    filled = np.where(np.isnan(X), p.fill, X)
    np.testing.assert_array_equal(out.split()[1:],
                                  load_pipeline(tmp_path / "m.xpnet").predict(filled))
    # a model trained without missing values refuses them, naming line and column
    write(tmp_path / "clean.csv", np.where(np.isnan(X), 1.0, X), y, names)
    assert xpnet_cli("train", "--data", tmp_path / "clean.csv", "--target", "cultivar",
                     *QUICK, "--save", tmp_path / "c.xpnet")[0] == 0
    one_line_error(["predict", tmp_path / "c.xpnet", tmp_path / "w.csv"],
                   "missing values (column 'alcohol' on line 8; column 'ash' on line 11)",
                   "retrain with --missing mean / median")


def test_the_delimiter_is_sniffed_or_given_with_a_hint(tmp_path, wine):
    X, y, names = wine
    write(tmp_path / "s.csv", X, y, names, sep=";")
    code, out, err = xpnet_cli("train", "--data", tmp_path / "s.csv", "--target", "cultivar",
                               *QUICK)
    assert code == 0, err
    assert "columns delimited by ';' (found in the header; set it with --sep)" in err
    assert "13 features, 3 classes" in out
    one_line_error(["train", "--data", tmp_path / "s.csv", "--target", "cultivar", "--sep",
                    ",", *QUICK], "no column 'cultivar'", "is the file delimited by ';'? "
                   "give --sep ';'")
    write(tmp_path / "t.tsv.csv", X, y, names, sep="\t")
    code, out, err = xpnet_cli("train", "--data", tmp_path / "t.tsv.csv", "--target",
                               "cultivar", "--sep", "tab", *QUICK)
    assert code == 0 and "13 features" in out, err


def test_models_saved_from_python_work_in_the_cli(tmp_path, wine):
    """Fitted on a NumPy array (no column names): predict takes a file of exactly its number
    of columns by position, with a note, and refuses others; --features names them;
    evaluate --data --target scores any model."""
    X, y, names = wine
    mean, std = X.mean(axis=0), X.std(axis=0)
    Xs = (X - mean) / std
    est = xpnet.MLPClassifier(hidden_layer_sizes=(16,), max_iter=60, learning_rate_init=0.01,
                              random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(Xs, y)
    est.save(tmp_path / "py.xpnet")
    write(tmp_path / "w.csv", Xs, y, names)  # standardized by the user, as for fit
    one_line_error(["predict", tmp_path / "py.xpnet", tmp_path / "w.csv"],
                   "14 columns, but the model records no column names and takes 13 features "
                   "by position", "--features")
    code, out, err = xpnet_cli("predict", tmp_path / "py.xpnet", tmp_path / "w.csv",
                               "--features", ",".join(names))
    assert code == 0, err
    np.testing.assert_array_equal(out.split()[1:], est.predict(Xs))
    with open(tmp_path / "rows.csv", "w", newline="") as f:
        csv.writer(f).writerows([names, *Xs.tolist()])
    code, out, err = xpnet_cli("predict", tmp_path / "py.xpnet", tmp_path / "rows.csv")
    assert code == 0 and "using the file's 13 columns by position" in err, err
    np.testing.assert_array_equal(out.split()[1:], est.predict(Xs))
    one_line_error(["evaluate", tmp_path / "py.xpnet"], "records no dataset",
                   "--data FILE --target COLUMN")
    code, out, err = xpnet_cli("evaluate", tmp_path / "py.xpnet", "--data", tmp_path / "w.csv",
                               "--target", "cultivar")
    assert code == 0, err
    assert "by position" in err and "(every row): 178 samples, 13 features, 3 classes" in out
    accuracy, n = ACCURACY.search(out).groups()
    assert int(n) == 178 and float(accuracy) == pytest.approx(est.score(Xs, y), abs=5e-5)


def test_evaluate_data_on_a_cli_model_scores_the_raw_rows(tmp_path, wine):
    X, y, names = wine
    write(tmp_path / "w.csv", X, y, names)
    assert xpnet_cli("train", "--data", tmp_path / "w.csv", "--target", "cultivar", *QUICK,
                     "--save", tmp_path / "m.xpnet")[0] == 0
    code, out, err = xpnet_cli("evaluate", tmp_path / "m.xpnet", "--data", tmp_path / "w.csv",
                               "--target", "cultivar")
    assert code == 0, err
    accuracy, n = ACCURACY.search(out).groups()
    want = np.mean(load_pipeline(tmp_path / "m.xpnet").predict(X) == y)
    assert int(n) == 178 and float(accuracy) == pytest.approx(want, abs=5e-5)
    one_line_error(["evaluate", tmp_path / "m.xpnet", "--data", tmp_path / "w.csv"],
                   "--data needs --target COLUMN")
