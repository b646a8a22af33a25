"""Every user error of the command line is one line on standard error and exit status 2, never a
traceback, and output paths are refused before any work (each case is ``python -m xpnet`` in
a subprocess); the commands that only answer import neither scikit-learn nor torch."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest


def xpnet_cli(*args, code=None):
    done = subprocess.run([sys.executable, *(code or ["-m", "xpnet"]), *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("errors")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    with open(d / "c.csv", "w") as f:
        f.write("a,b,c,label\n" + "".join(f"{r[0]},{r[1]},{r[2]},{'yes' if r[0] > 0 else 'no'}\n"
                                          for r in X))
    with open(d / "r.csv", "w") as f:
        f.write("a,b,c,y\n" + "".join(f"{r[0]},{r[1]},{r[2]},{r.sum() * 3.7}\n" for r in X))
    (d / "short.csv").write_text("a,b,c,label\n1,2,3,yes\n4,5\n")
    (d / "word.csv").write_text("a,b,c,label\n1,x,3,yes\n4,5,6,no\n")
    (d / "onecol.csv").write_text("a\n1\n2\n")
    (d / "not_a_model.xpnet").write_text("hello")
    (d / "folder").mkdir()
    for name, target in (("c", "label"), ("r", "y")):
        code, _, err = xpnet_cli("train", "--data", d / f"{name}.csv", "--target", target,
                                 "--layers", "4", "--epochs", "2", "--quiet", "--backend",
                                 "numpy", "--save", d / f"{name}.xpnet")
        assert code == 0, err
    return d


CASES = {
    # output paths: refused before training or predicting (nothing on stdout)
    "train --save in a missing folder": (
        "train --data {d}/c.csv --target label --epochs 500 --save {d}/nodir/m.xpnet",
        "--save {d}/nodir/m.xpnet: the folder {d}/nodir does not exist"),
    "train --plot in a missing folder": (
        "train --data {d}/c.csv --target label --plot {d}/nodir/c.png", "the folder"),
    "train --checkpoint in a missing folder": (
        "train --data {d}/c.csv --target label --checkpoint {d}/nodir/ck", "the folder"),
    "train --save onto a folder": (
        "train --data {d}/c.csv --target label --save {d}/folder", "is a folder"),
    "predict --output in a missing folder": (
        "predict {d}/c.xpnet {d}/c.csv --output {d}/nodir/p.csv",
        "--output {d}/nodir/p.csv: the folder {d}/nodir does not exist; create it first"),
    "predict --output onto a folder": (
        "predict {d}/c.xpnet {d}/c.csv --output {d}/folder", "is a folder"),
    "export --onnx in a missing folder": (
        "export {d}/c.xpnet --onnx {d}/nodir/m.onnx", "the folder"),
    # files
    "train on a missing file": ("train --data {d}/none.csv --target label", "no such file"),
    "train without --target": ("train --data {d}/c.csv", "name the target column"),
    "train on a short row": ("train --data {d}/short.csv --target label",
                             "line 3: 2 values, but the header has 4 columns"),
    "train on a word": ("train --data {d}/word.csv --target label",
                        "line 2, column 'b': 'x' is not a number"),
    "train --features unknown": ("train --data {d}/c.csv --target label --features a,zz",
                                 "--features names 'zz', not a column"),
    "train --features and --drop": (
        "train --data {d}/c.csv --target label --features a,b --drop c",
        "give --features (the columns to use) or --drop"),
    "train --sep of two characters": ("train --data {d}/c.csv --target label --sep ab",
                                      "argument --sep: expected one character"),
    "train --missing on a built-in dataset": ("train --missing mean",
                                              "--missing describes a --data file"),
    "train --missing unknown": ("train --data {d}/c.csv --target label --missing zero",
                                "invalid choice: 'zero'"),
    "predict a missing model": ("predict {d}/none.xpnet {d}/c.csv",
                                "model {d}/none.xpnet: no such file"),
    "predict with a file that is not a model": ("predict {d}/not_a_model.xpnet {d}/c.csv",
                                                "not_a_model.xpnet"),
    "predict on a file lacking columns": ("predict {d}/c.xpnet {d}/onecol.csv",
                                          "the model was trained on columns the file lacks"),
    "predict --proba with a regressor": ("predict {d}/r.xpnet {d}/r.csv --proba",
                                         "--proba needs a classifier"),
    "predict --features of another count": ("predict {d}/c.xpnet {d}/c.csv --features a",
                                            "1 feature columns named (a)"),
    "evaluate --data without --target": ("evaluate {d}/c.xpnet --data {d}/c.csv",
                                         "--data needs --target COLUMN"),
    "evaluate --target without --data": ("evaluate {d}/c.xpnet --target label",
                                         "give --data FILE too"),
    "evaluate --data with the wrong target": (
        "evaluate {d}/c.xpnet --data {d}/c.csv --target nope", "no column 'nope'"),
    "evaluate on labels that are not the classes": (
        "evaluate {d}/c.xpnet --data {d}/r.csv --target y", "is one of the model's classes"),
    "evaluate a regressor on labels": ("evaluate {d}/r.xpnet --data {d}/c.csv --target label",
                                       "holds labels, but the model is a regressor"),
    "export a missing model": ("export {d}/none.xpnet --onnx {d}/m.onnx", "no such file"),
    "evaluate a folder": ("evaluate {d}/folder", "model {d}/folder: is a folder"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_user_error_is_one_line_and_status_2(files, case):
    argv, message = (s.format(d=files) for s in CASES[case])
    start = time.perf_counter()
    code, out, err = xpnet_cli(*argv.split())
    assert "Traceback" not in err, err
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("xpnet "), err
    assert message in err, err
    if "folder" in case:  # refused before any work: nothing trained, nothing printed
        assert out == ""
        assert time.perf_counter() - start < 60
    assert not (files / "nodir").exists()


QUIET = ["-c", "import sys; from xpnet.cli import main; code = main(sys.argv[1:]); "
               "print(sorted(m for m in ('sklearn', 'torch', 'scipy', 'pandas') "
               "if m in sys.modules)); sys.exit(code)"]


@pytest.mark.parametrize("argv", ["--help", "--version", "predict {d}/c.xpnet {d}/c.csv",
                                  "export {d}/c.xpnet --onnx {d}/c.onnx"])
def test_answering_commands_import_neither_scikit_learn_nor_torch(files, argv):
    if argv.startswith("export"):
        pytest.importorskip("ndonnx")
    code, out, err = xpnet_cli(*argv.format(d=files).split(), code=QUIET)
    assert code == 0, err
    assert out.strip().splitlines()[-1] == "[]", out


def test_help_and_version_load_only_the_parser():
    code = ["-c", "import sys; from xpnet.cli import main; main(sys.argv[1:]) ; "
                  "print(sorted(m for m in sys.modules if m.startswith(('sklearn', 'torch', "
                  "'xpnet.estimators', 'xpnet.cli.train', 'xpnet.cli.info'))))"]
    for flag in ("--help", "--version"):
        status, out, err = xpnet_cli(flag, code=code)
        assert status == 0, err
        assert out.strip().splitlines()[-1] == "[]", out
