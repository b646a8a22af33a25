"""The command line end to end: `python -m xpnet` in a subprocess, and `main(argv)` in-process."""

import csv
import math
import re
import subprocess
import sys

import numpy as np
import pytest

from xpnet import available_backends, load
from xpnet.io import container as serialization
from xpnet.cli import main

ACCURACY = re.compile(r"^test accuracy: (\S+) \((\d+) samples\)", re.MULTILINE)
R2 = re.compile(r"^test R\^2: (\S+) \((\d+) samples\)", re.MULTILINE)


def xpnet(*args, timeout=300):
    """Run ``python -m xpnet ARGS`` in a fresh process: (exit status, stdout, stderr)."""
    done = subprocess.run([sys.executable, "-m", "xpnet", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


def number(pattern, text):
    match = pattern.search(text)
    assert match, f"no {pattern.pattern!r} in output:\n{text}"
    return float(match.group(1)), int(match.group(2))


def test_train_save_plot_then_evaluate(tmp_path):
    model, png = tmp_path / "digits.xpnet", tmp_path / "curves.png"
    code, out, err = xpnet("train", "--epochs", 8, "--seed", 1, "--save", model, "--plot", png)
    assert code == 0, err
    accuracy, n_test = number(ACCURACY, out)
    assert n_test == 450  # a quarter of digits' 1797 samples, stratified
    assert math.isfinite(accuracy) and 0.8 < accuracy <= 1.0  # chance is 0.1
    assert re.search(r"^time: \d+\.\d+ s for \d+ epochs", out, re.MULTILINE)
    assert "epoch" in err.lower() or "it/s" in err or "%" in err  # the tqdm bar, on stderr
    assert "val_loss=" in err and "val_score=" in err  # validation metrics by default
    assert "Traceback" not in err
    assert model.stat().st_size > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    _, meta = serialization.load(model)
    assert meta["dataset"]["name"] == "digits"
    # validation_data: 10% of the 1347 training samples (stratified), scored every epoch
    assert "validation 136 of the 1347 training samples" in out
    trained = load(model)
    assert trained.t_ == (1347 - 136) * trained.n_iter_  # trained on the rest only
    assert len(trained.validation_scores_) == trained.n_iter_ == 8
    last = re.search(r"^validation accuracy: (\S+) \(136 samples, last epoch 8\), loss (\S+)$",
                     out, re.MULTILINE)
    assert last, out
    assert float(last.group(1)) == pytest.approx(trained.validation_scores_[-1], abs=5e-5)
    assert float(last.group(2)) == pytest.approx(trained.validation_loss_curve_[-1], abs=5e-5)

    # The same model on the same held-out split gives the same accuracy, to the digit printed.
    code, out2, err2 = xpnet("evaluate", model)
    assert code == 0, err2
    assert number(ACCURACY, out2) == (accuracy, n_test)


def test_evaluate_in_process_and_on_another_backend(tmp_path, capsys):
    model = tmp_path / "bc.xpnet"
    assert main(["train", "--dataset", "breast_cancer", "--epochs", "5", "--layers", "16",
                 "--learning-rate", "0.01", "--quiet", "--save", str(model)]) == 0
    trained = number(ACCURACY, capsys.readouterr().out)
    assert trained[1] == 142 and 0.8 < trained[0] <= 1.0
    assert main(["evaluate", str(model)]) == 0
    out = capsys.readouterr().out
    assert number(ACCURACY, out) == trained
    assert re.search(r"log loss (\d+\.\d+)", out)
    if available_backends()["torch"][0]:
        assert main(["evaluate", str(model), "--backend", "torch"]) == 0
        accuracy, _ = number(ACCURACY, capsys.readouterr().out)
        assert accuracy == pytest.approx(trained[0], abs=1 / 142 + 1e-9)  # one sample at most


def test_plot_draws_the_validation_curves_by_default(tmp_path, monkeypatch, capsys):
    from xpnet import plotting

    figures = []
    original = plotting.plot_learning_curves
    monkeypatch.setattr(plotting, "plot_learning_curves",
                        lambda *a, **k: figures.append(original(*a, **k)) or figures[-1])
    for fraction, expected in (("0.1", {"training loss", "validation loss",
                                        "validation score"}),
                               ("0", {"training loss"})):
        png = tmp_path / f"curves{fraction}.png"
        assert main(["train", "--dataset", "breast_cancer", "--epochs", "3", "--layers", "8",
                     "--quiet", "--validation-fraction", fraction, "--plot", str(png)]) == 0
        out = capsys.readouterr().out
        labels = {line.get_label() for ax in figures[-1].axes for line in ax.get_lines()}
        assert labels == expected and png.exists()
        assert ("validation accuracy:" in out) == (fraction != "0")
        assert ("no validation data" in out) == (fraction == "0")


def test_early_stopping_watches_the_validation_loss_with_patience(tmp_path, capsys):
    """--early-stopping: EarlyStopping(monitor="val_loss", patience=--patience) on the held-out
    validation split; the weights of the epoch with the lowest validation loss are kept."""
    model = tmp_path / "es.xpnet"
    assert main(["train", "--dataset", "breast_cancer", "--epochs", "200", "--layers", "16",
                 "--learning-rate", "0.01", "--early-stopping", "--patience", "5", "--quiet",
                 "--save", str(model)]) == 0
    out = capsys.readouterr().out
    est = load(model)
    assert est.n_iter_ < 200
    curve = est.validation_loss_curve_
    best = 0  # the rule: an improvement counts when it beats the best by more than --tol
    for i, v in enumerate(curve):
        if v < curve[best] - 1e-4:
            best = i
    assert est.n_iter_ == best + 1 + 5  # five epochs without improvement after the best
    assert (f"stopped early: no validation loss improvement for 5 epochs; weights of epoch "
            f"{best + 1} kept") in out
    assert f"(86 samples, best epoch {best + 1}), loss {curve[best]:.4f}" in out  # 20%
    assert main(["train", "--early-stopping", "--validation-fraction", "0"]) == 2
    err = capsys.readouterr().err
    assert "--early-stopping needs validation data" in err and err.count("\n") == 1


def test_train_regression_reports_r2(capsys):
    assert main(["train", "--dataset", "diabetes", "--epochs", "3", "--quiet",
                 "--learning-rate", "0.01"]) == 0
    out = capsys.readouterr().out
    r2, n_test = number(R2, out)
    assert n_test == 110 and math.isfinite(r2) and r2 <= 1.0
    assert re.search(r"RMSE \d", out)


@pytest.mark.slow
def test_default_train_reaches_the_advertised_accuracy():
    # What `bash ci/train` runs: every default, real digits data.
    code, out, err = xpnet("train", "--quiet")
    assert code == 0, err
    accuracy, _ = number(ACCURACY, out)
    assert accuracy >= 0.97


def test_info_lists_every_backend_and_why(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for name, (usable, reason) in available_backends().items():
        line = next(l for l in out.splitlines() if l.split()[:1] == [name])
        assert ("usable" if usable else "unusable") == line.split()[1]
        assert reason in line
    assert re.search(r"^  numpy .*devices: cpu$", out, re.MULTILINE)
    assert re.search(r"^  backend 'auto' means: (numpy|cupy)$", out, re.MULTILINE)
    code, out2, err2 = xpnet("info")
    assert code == 0 and "Traceback" not in err2 and out2.splitlines()[1:] == out.splitlines()[1:]


@pytest.mark.parametrize("argv, message", [
    ([], "the following arguments are required"),
    (["fly"], "invalid choice: 'fly'"),
    (["train", "--layers", "128,x"], "expected hidden layer sizes like 128,64"),
    (["train", "--layers", "0"], "layer sizes must be positive"),
    (["train", "--epochs", "0"], "--epochs: must be > 0"),
    (["train", "--learning-rate", "-1"], "--learning-rate: must be > 0"),
    (["train", "--learning-rate", "nan"], "--learning-rate: must be > 0"),
    (["train", "--batch-size", "ten"], "expected a positive int"),
    (["train", "--dropout", "1"], "--dropout: must be in [0, 1)"),
    (["train", "--dataset", "iris"], "unknown dataset 'iris'"),
    (["train", "--dataset", "mnist:"], "mnist needs a folder"),
    (["train", "--solver", "lbfgs"], "invalid choice: 'lbfgs'"),
    (["train", "--backend", "cuppy"], "invalid choice: 'cuppy'"),
    (["train", "--dtype", "float16"], "invalid choice: 'float16'"),
    (["train", "--test-size", "0"], "must be in (0, 1)"),
    (["train", "--validation-fraction", "1"], "--validation-fraction: must be in [0, 1)"),
    (["evaluate"], "the following arguments are required: MODEL"),
])
def test_bad_options_exit_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and message in err


@pytest.mark.parametrize("argv, message", [
    (["train", "--dataset", "mnist:/no/such/dir"], "does not exist"),
    (["train", "--activation", "swish", "--epochs", "1"], "swish"),
    (["train", "--device", "cuda:0", "--backend", "numpy"], "runs on the CPU only"),
    (["evaluate", "/no/such/model.xpnet"], "no such file"),
])
def test_user_errors_found_later_exit_2_without_traceback(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"xpnet {argv[0]}: error:") and message in err
    assert err.count("\n") == 1


def test_evaluate_rejects_a_file_that_is_not_a_model(tmp_path, capsys):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello")
    assert main(["evaluate", str(bogus)]) == 2
    assert "not a readable zip archive" in capsys.readouterr().err


def test_evaluate_on_a_dataset_with_other_features(tmp_path, capsys):
    model = tmp_path / "m.xpnet"
    assert main(["train", "--epochs", "1", "--layers", "8", "--quiet", "--save",
                 str(model)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(model), "--dataset", "breast_cancer"]) == 2
    assert "expects 64 features but breast_cancer has 30" in capsys.readouterr().err


def test_bad_option_in_a_subprocess_is_not_a_traceback():
    code, out, err = xpnet("train", "--epochs", "-3")
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.strip() == ("xpnet train: error: argument --epochs: must be > 0, got '-3' "
                           "(see 'xpnet train --help')")


def test_bench_without_its_entry_point_says_so(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "xpnet.bench", None)  # as if xpnet.bench were absent
    assert main(["bench", "--help"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xpnet bench: error:") and "xpnet.bench.main" in err


def test_bench_delegates_its_arguments():
    bench = pytest.importorskip("xpnet.bench")
    if not hasattr(bench, "main"):
        pytest.skip("xpnet.bench.main is not written yet")
    code, out, err = xpnet("bench", "--help", timeout=60)
    assert code == 0 and "usage" in out.lower() and "Traceback" not in err


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(cmd in out for cmd in ("train", "evaluate", "info", "bench"))


def test_diverging_training_exits_1_with_one_line(capsys):
    # Plain SGD with a learning rate of 1e8 overflows within the first epoch.
    assert main(["train", "--solver", "sgd", "--learning-rate", "1e8", "--epochs", "3",
                 "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("xpnet train: error: training failed: DivergenceError")
    assert err.count("\n") == 1


def test_info_into_a_pipe_closed_early_prints_no_traceback():
    # `xpnet info | head -1`: the reader leaves after one line; no BrokenPipeError traceback.
    proc = subprocess.Popen([sys.executable, "-m", "xpnet", "info"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, bufsize=0)
    first = proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    proc.wait(timeout=60)
    assert first.startswith(b"xpnet")
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


# --------------------------------------------------------------------------- users' own files
def _write_csv(path, n=150, seed=0, string_labels=True):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)) * [1.0, 10.0, 0.1] + [0.0, 50.0, 1.0]
    y = (X[:, 0] + (X[:, 1] - 50.0) / 10.0 > 0).astype(int)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "label", "b", "c"])
        for row, t in zip(X, y):
            w.writerow([row[0], ["no", "yes"][t] if string_labels else t, row[1], row[2]])
    return X, y


def test_train_predict_evaluate_on_a_user_csv(tmp_path, capsys):
    data, model, out_csv = tmp_path / "mine.csv", tmp_path / "m.xpnet", tmp_path / "pred.csv"
    X, y = _write_csv(data)
    assert main(["train", "--data", str(data), "--target", "label", "--layers", "8",
                 "--epochs", "60", "--learning-rate", "0.01", "--quiet", "--save",
                 str(model)]) == 0
    out = capsys.readouterr().out
    assert "mine.csv: 112 train / 38 test samples, 3 features, 2 classes" in out
    accuracy, n_test = number(ACCURACY, out)
    assert n_test == 38 and accuracy >= 0.85
    # predict: the columns by name (the label column is ignored), scaled as in training
    assert main(["predict", str(model), str(data), "--output", str(out_csv)]) == 0
    with open(out_csv, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["label"] and len(rows) == 151
    predicted = np.array([r[0] for r in rows[1:]])
    assert set(predicted) <= {"no", "yes"}
    assert np.mean(predicted == np.array(["no", "yes"])[y]) >= 0.85
    assert main(["predict", str(model), str(data), "--proba"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "proba_no,proba_yes"
    P = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-6)
    assert ((P[:, 1] > 0.5) == (predicted == "yes")).all()
    # evaluate re-reads the file and reproduces the held-out split
    assert main(["evaluate", str(model)]) == 0
    assert number(ACCURACY, capsys.readouterr().out) == (accuracy, n_test)


def test_regression_on_npz_and_npy_with_task_inferred(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 4))
    t = X @ [1.0, -2.0, 0.5, 0.0] + 0.1 * rng.standard_normal(200)
    np.savez(tmp_path / "d.npz", X=X, y=t)
    np.save(tmp_path / "d.npy", np.column_stack([X, t]))
    for name in ("d.npz", "d.npy"):
        assert main(["train", "--data", str(tmp_path / name), "--layers", "16", "--epochs",
                     "150", "--learning-rate", "0.01", "--quiet", "--save",
                     str(tmp_path / "r.xpnet")]) == 0
        out = capsys.readouterr().out
        r2, _ = number(R2, out)
        assert "regression" in out and r2 > 0.9
        assert main(["predict", str(tmp_path / "r.xpnet"), str(tmp_path / name)]) == 0
        values = [float(v) for v in capsys.readouterr().out.split()[1:]]
        assert len(values) == 200 and np.corrcoef(values, t)[0, 1] > 0.95


def test_user_data_errors_are_one_line(tmp_path, capsys):
    data = tmp_path / "mine.csv"
    _write_csv(data)
    cases = [(["--data", str(data)], "name the target column with --target"),
             (["--data", str(data), "--target", "nope"], "no column 'nope'"),
             (["--data", str(tmp_path / "missing.csv"), "--target", "label"], "no such file"),
             (["--data", str(data), "--target", "label", "--task", "regression"],
              "regression needs numeric targets"),
             (["--target", "label"], "--target describes a --data file"),
             (["--data", str(data), "--dataset", "digits"], "not allowed with argument")]
    for argv, message in cases:
        assert main(["train", "--quiet", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,x,0\n2,3,1\n")
    assert main(["train", "--data", str(bad), "--target", "label", "--quiet"]) == 2
    assert "line 2, column 'b': 'x' is not a number" in capsys.readouterr().err


def test_tilde_is_expanded(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    _write_csv(tmp_path / "mine.csv")
    assert main(["train", "--data", "~/mine.csv", "--target", "label", "--epochs", "2",
                 "--quiet", "--save", "~/m.xpnet"]) == 0
    assert (tmp_path / "m.xpnet").exists()
    assert main(["predict", "~/m.xpnet", "~/mine.csv", "--output", "~/p.csv"]) == 0
    assert (tmp_path / "p.csv").exists()
    from xpnet.datasets import load_mnist

    with pytest.raises(FileNotFoundError, match="'~/nowhere'|nowhere"):
        load_mnist("~/nowhere")


def test_useless_runs_warn_and_fail_below(capsys):
    assert main(["train", "--dataset", "breast_cancer", "--epochs", "3", "--layers", "8",
                 "--learning-rate", "100", "--solver", "sgd", "--quiet"]) in (0, 1)
    captured = capsys.readouterr()
    if "training failed" not in captured.err:  # a diverged run exits 1 with its own message
        assert "no better than always predicting the most frequent class" in captured.err
    assert main(["train", "--dataset", "breast_cancer", "--epochs", "5", "--layers", "8",
                 "--quiet", "--fail-below", "0.999"]) == 1
    assert "is below --fail-below 0.999" in capsys.readouterr().err
    assert main(["train", "--dataset", "breast_cancer", "--epochs", "5", "--layers", "8",
                 "--quiet", "--fail-below", "0.5"]) == 0


def test_version_and_estimator_options(tmp_path, capsys):
    code, out, _ = xpnet("--version")
    assert code == 0 and re.fullmatch(r"xpnet \d+\.\d+\.\d+\S*\n", out)
    model, ckpt = tmp_path / "m.xpnet", tmp_path / "c.ckpt"
    assert main(["train", "--dataset", "breast_cancer", "--epochs", "4", "--layers", "8",
                 "--solver", "sgd", "--momentum", "0.5", "--clip-norm", "1.5", "--tol",
                 "1e-3", "--patience", "7", "--checkpoint", str(ckpt), "--quiet", "--save",
                 str(model)]) == 0
    params = load(model).get_params()
    assert (params["momentum"], params["clip_norm"], params["tol"],
            params["n_iter_no_change"]) == (0.5, 1.5, 1e-3, 7)
    assert ckpt.exists()
    assert main(["train", "--dataset", "breast_cancer", "--epochs", "6", "--layers", "8",
                 "--solver", "sgd", "--momentum", "0.5", "--clip-norm", "1.5", "--tol",
                 "1e-3", "--patience", "7", "--checkpoint", str(ckpt), "--resume", "--quiet"]) == 0
    assert "for 6 epochs" in capsys.readouterr().out or load(ckpt).n_iter_ == 6
    assert main(["train", "--resume", "--quiet"]) == 2
    assert "--resume continues from a checkpoint" in capsys.readouterr().err


def test_tilde_in_the_python_api(tmp_path, monkeypatch):
    """est.save, xpnet.load, fit(checkpoint=...) and the CSV logger expand ~ too."""
    from xpnet import MLPClassifier
    from xpnet.callbacks import CSVLogger

    monkeypatch.setenv("HOME", str(tmp_path))
    X, y = np.random.default_rng(0).standard_normal((40, 3)), np.arange(40) % 2
    with pytest.warns(Warning):
        est = MLPClassifier((4,), max_iter=2).fit(X, y, checkpoint="~/c.ckpt",
                                                  callbacks=[CSVLogger("~/log.csv")])
    est.save("~/m.xpnet")
    assert load("~/m.xpnet").n_iter_ == 2
    assert {p.name for p in tmp_path.iterdir()} >= {"c.ckpt", "log.csv", "m.xpnet"}
