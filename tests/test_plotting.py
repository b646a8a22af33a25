"""Learning-curve plots: the PNG is written and the lines drawn are exactly the history."""

import math
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from xpnet.plotting import learning_curves, plot_learning_curves  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def history(n=6, validation=True):
    return [{"epoch": e, "loss": 2.0 / e, "time": 0.01,
             "val_loss": 2.5 / e if validation else None,
             "val_score": 1.0 - 0.5 / e if validation else None} for e in range(1, n + 1)]


def assert_png(path, width=1000, height=400):
    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == PNG_SIGNATURE
    # The IHDR chunk follows the signature: length, "IHDR", width, height (big-endian).
    assert data[12:16] == b"IHDR"
    assert int.from_bytes(data[16:20], "big") == width
    assert int.from_bytes(data[20:24], "big") == height
    from matplotlib.image import imread

    image = imread(path)
    assert image.shape[:2] == (height, width) and np.ptp(image) > 0  # decodes, not blank


def lines(ax):
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
            for line in ax.get_lines()}


def test_plot_learning_curves_writes_the_history(tmp_path):
    h = history()
    path = tmp_path / "curves.png"
    fig = plot_learning_curves(h, path, title="digits")
    assert_png(path)
    loss_ax, score_ax = fig.axes
    epochs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    drawn = lines(loss_ax)
    assert drawn["training loss"] == (epochs, [row["loss"] for row in h])
    assert drawn["validation loss"] == (epochs, [row["val_loss"] for row in h])
    assert lines(score_ax) == {"validation score": (epochs, [row["val_score"] for row in h])}
    assert fig.get_suptitle() == "digits"


def test_without_validation_only_the_training_loss_is_drawn(tmp_path):
    fig = plot_learning_curves(history(4, validation=False), tmp_path / "c.png")
    loss_ax, score_ax = fig.axes
    assert list(lines(loss_ax)) == ["training loss"]
    assert lines(score_ax) == {}
    assert [t.get_text() for t in score_ax.texts] == ["no validation data"]


def test_no_path_returns_the_figure_without_writing(tmp_path):
    fig = plot_learning_curves(history(3))
    assert len(fig.axes) == 2 and list(tmp_path.iterdir()) == []


def test_learning_curves_from_an_object_with_history_or_loss_curve():
    class Fitted:
        history_ = history(3)

    assert learning_curves(Fitted())["loss"] == [2.0, 1.0, 2.0 / 3]

    class OnlyLossCurve:
        loss_curve_ = [0.9, 0.5]

    curves = learning_curves(OnlyLossCurve())
    assert curves["epoch"] == [1.0, 2.0] and curves["loss"] == [0.9, 0.5]
    assert all(math.isnan(v) for v in curves["val_loss"] + curves["val_score"])


def test_partial_validation_values_become_gaps():
    h = history(3)
    h[0]["val_loss"] = None
    assert math.isnan(learning_curves(h)["val_loss"][0])
    assert learning_curves(h)["val_loss"][1:] == [1.25, 2.5 / 3]


@pytest.mark.parametrize("source, error, message", [
    ([], ValueError, "history is empty"),
    (42, TypeError, "expected a fitted estimator or its history_"),
    ("loss", TypeError, "expected a fitted estimator"),
    ([{"epoch": 1}], TypeError, "'loss' key"),
])
def test_bad_sources(source, error, message):
    with pytest.raises(error, match=message):
        learning_curves(source)


def test_missing_matplotlib_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install 'xpnet\[plot\]'"):
        plot_learning_curves(history(2), tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


def test_plot_of_a_fitted_estimator_draws_its_curves(tmp_path):
    import xpnet
    from xpnet.estimators.sklearn_base import ConvergenceWarning
    from xpnet.datasets import make_classification

    X, y = make_classification(120, 5, n_classes=3, random_state=0)
    est = xpnet.MLPClassifier((8,), max_iter=6, early_stopping=True, n_iter_no_change=50,
                              random_state=0, learning_rate_init=0.01)
    with pytest.warns(ConvergenceWarning):  # 6 epochs: it stops at max_iter
        est.fit(X, y)
    fig = plot_learning_curves(est, tmp_path / "est.png")
    assert_png(tmp_path / "est.png")
    loss_ax, score_ax = fig.axes
    epochs = [float(e) for e in range(1, 7)]
    drawn = lines(loss_ax)
    assert drawn["training loss"] == (epochs, [float(v) for v in est.loss_curve_])
    assert drawn["validation loss"] == (epochs, [float(v) for v in est.validation_loss_curve_])
    assert lines(score_ax)["validation score"] == (epochs,
                                                    [float(v) for v in est.validation_scores_])
