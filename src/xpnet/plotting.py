"""Learning curves to a PNG: training loss, validation loss and validation score per epoch.

matplotlib is an optional extra (``pip install 'xpnet[plot]'``). Figures are made with
``matplotlib.figure.Figure`` on the Agg canvas, never through ``pyplot``: no GUI backend, no
global figure state, safe on a headless machine and in threads.
"""

from __future__ import annotations

import math
import os
from typing import Any

__all__ = ["learning_curves", "plot_learning_curves", "require_matplotlib"]


def require_matplotlib() -> Any:
    """The ``matplotlib.figure.Figure`` class; ``ImportError`` saying what to install if missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib, which is not installed: "
                          f"pip install 'xpnet[plot]' ({exc})") from None
    return Figure


def _value(x: Any) -> float:
    return math.nan if x is None else float(x)


def learning_curves(source: Any) -> dict[str, list[float]]:
    """``{"epoch", "loss", "val_loss", "val_score"}`` lists from a history or a fitted estimator.

    ``source`` is an estimator's ``history_`` (a list of dicts with keys epoch, loss, val_loss,
    val_score), or an estimator holding one; missing values become NaN.
    """
    history = getattr(source, "history_", source)
    if history is source and hasattr(source, "loss_curve_"):  # an estimator without history_
        history = [{"epoch": i + 1, "loss": loss} for i, loss in enumerate(source.loss_curve_)]
    if isinstance(history, (str, bytes)) or not hasattr(history, "__iter__"):
        raise TypeError("expected a fitted estimator or its history_ (a list of dicts with "
                        f"epoch, loss, val_loss, val_score); got {type(source).__name__}")
    history = list(history)
    if not history:
        raise ValueError("the history is empty: fit the estimator for at least one epoch first")
    if not all(isinstance(row, dict) and "loss" in row for row in history):
        raise TypeError("every history entry must be a dict with at least a 'loss' key; got "
                        f"{history[0]!r:.80}")
    return {"epoch": [float(row.get("epoch", i + 1)) for i, row in enumerate(history)],
            "loss": [_value(row["loss"]) for row in history],
            "val_loss": [_value(row.get("val_loss")) for row in history],
            "val_score": [_value(row.get("val_score")) for row in history]}


def plot_learning_curves(source: Any, path: str | os.PathLike | None = None, *,
                         title: str | None = None) -> Any:
    """Draw the learning curves of ``source`` (see :func:`learning_curves`); write a PNG to
    ``path`` if given. Returns the ``matplotlib.figure.Figure``.

    Left axes: training loss and validation loss against the epoch; right axes: the validation
    score (accuracy for a classifier, R^2 for a regressor). Curves with no values are left out.
    """
    Figure = require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    curves = learning_curves(source)
    epoch = curves["epoch"]
    fig = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(fig)
    loss_ax, score_ax = fig.subplots(1, 2)
    loss_ax.plot(epoch, curves["loss"], label="training loss")
    if not all(math.isnan(v) for v in curves["val_loss"]):
        loss_ax.plot(epoch, curves["val_loss"], label="validation loss")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    loss_ax.legend()
    if not all(math.isnan(v) for v in curves["val_score"]):
        score_ax.plot(epoch, curves["val_score"], label="validation score", color="C2")
        score_ax.legend()
    else:
        score_ax.text(0.5, 0.5, "no validation data", ha="center", va="center",
                      transform=score_ax.transAxes)
    score_ax.set(xlabel="epoch", ylabel="score", title="validation score")
    for ax in (loss_ax, score_ax):
        ax.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title)
    if path is not None:
        fig.savefig(os.path.expanduser(os.fspath(path)), format="png", dpi=100)
    return fig
