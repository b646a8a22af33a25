"""The command line end to end: `python -m xpnet` in a subprocess, and `main(argv)` in-process."""

import math
import re
import subprocess
import sys

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


def test_early_stopping_watches_the_validation_split(tmp_path, capsys):
    model = tmp_path / "es.xpnet"
    assert main(["train", "--dataset", "breast_cancer", "--epochs", "200", "--layers", "16",
                 "--learning-rate", "0.01", "--early-stopping", "--quiet", "--save",
                 str(model)]) == 0
    out = capsys.readouterr().out
    est = load(model)
    assert est.early_stopping and est.n_iter_ < 200
    assert "stopped early: no validation score improvement" in out
    best = est.validation_scores_.index(est.best_validation_score_)
    assert f"(43 samples, best epoch {best + 1})" in out  # 10% of 427, stratified
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
    (["evaluate", "/no/such/model.xpnet"], "No such file"),
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
