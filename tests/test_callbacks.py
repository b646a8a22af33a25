"""fit(..., callbacks=[...]): per-epoch hooks that see the history and may stop training;
EarlyStopping and CSVLogger built on them; the progress bar closing cleanly on every stop.
(That callbacks add no host read is in tests/test_host_syncs.py, case "callbacks".)"""

from __future__ import annotations

import csv
import re
import warnings

import numpy as np
import pytest
from conftest import blobs

from xpnet import MLPClassifier, MLPRegressor
from xpnet.callbacks import Callback, CSVLogger, EarlyStopping


def _data(n=120, seed=0):
    X, y = blobs(n=n, d=4, k=3, seed=seed, spread=1.0)
    return X[:90], y[:90], (X[90:], y[90:])


def _est(**kw):
    params = dict(hidden_layer_sizes=(16,), max_iter=60, random_state=0, dtype="float64",
                  learning_rate_init=0.05, tol=0.0, n_iter_no_change=1000)
    params.update(kw)
    return MLPClassifier(**params)


def _fit(est, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(*args, **kw)


def test_early_stopping_on_val_loss_keeps_the_best_epochs_weights():
    X, y, val = _data()
    stopper = EarlyStopping(monitor="val_loss", patience=4)
    est = _fit(_est(), X, y, validation_data=val, callbacks=[stopper])
    curve = est.validation_loss_curve_
    best = int(np.argmin(curve)) + 1
    assert stopper.best_epoch == best and stopper.best == curve[best - 1]
    assert est.n_iter_ == best + 4 < 60 and stopper.stopped_epoch == est.n_iter_
    # the kept weights are those after epoch `best`: the same run stopped there
    again = _fit(_est(max_iter=best), X, y, validation_data=val)
    for a, b in zip(est.coefs_ + est.intercepts_, again.coefs_ + again.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert "did not improve for 4 epochs" in stopper.message


@pytest.mark.parametrize("monitor,sign", [("val_score", 1), ("loss", -1)])
def test_early_stopping_other_metrics(monitor, sign):
    X, y, val = _data(seed=1)
    stopper = EarlyStopping(monitor=monitor, patience=3, restore_best_weights=False)
    est = _fit(_est(), X, y, validation_data=val, callbacks=[stopper])
    values = np.array([h["val_score" if monitor == "val_score" else "loss"]
                       for h in est.history_])
    assert stopper.best == (values.max() if sign > 0 else values.min())
    if est.n_iter_ < 60:
        assert est.n_iter_ == stopper.best_epoch + 3


def test_a_callback_sees_each_epoch_and_may_stop():
    X, y, _ = _data()
    seen = []

    class StopAtThree(Callback):
        def on_train_begin(self, est):
            seen.append("begin")

        def on_epoch_end(self, est, logs):
            seen.append(logs["epoch"])
            assert set(logs) >= {"epoch", "loss", "val_loss", "val_score", "time",
                                 "learning_rate"}
            assert logs["loss"] == est._progress.loss_curve[-1]
            return logs["epoch"] == 3

        def on_train_end(self, est, reason):
            seen.append(reason)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning: a callback stopped it
        est = _est().fit(X, y, callbacks=StopAtThree())
    assert seen == ["begin", 1, 2, 3, "callback"] and est.n_iter_ == 3
    seen.clear()
    est.partial_fit(X, y, callbacks=[StopAtThree()])
    assert seen == ["begin", 4, "epoch"]


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    X, y, val = _data()
    path = tmp_path / "log.csv"
    est = _fit(_est(max_iter=5), X, y, validation_data=val, callbacks=[CSVLogger(path)])
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5]
    assert [float(r["loss"]) for r in rows] == est.loss_curve_
    assert [float(r["val_score"]) for r in rows] == est.validation_scores_
    _fit(_est(max_iter=2), X, y, callbacks=[CSVLogger(path, append=True)])
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7 and rows[-1]["val_loss"] == ""  # no validation data the 2nd time


def test_bad_callbacks_are_refused():
    X, y, _ = _data()
    with pytest.raises(TypeError, match="lacks on_train_begin, on_train_end"):
        _est().fit(X, y, callbacks=[type("Half", (), {"on_epoch_end": lambda *a: None})()])
    with pytest.raises(ValueError, match="monitor must be one of"):
        EarlyStopping(monitor="accuracy")
    with pytest.raises(ValueError, match="patience must be an integer >= 1"):
        EarlyStopping(patience=0)


def test_progress_bar_ends_full_and_the_reason_comes_after_it(capfd):
    X, y, _ = _data()
    est = MLPRegressor(hidden_layer_sizes=(4,), max_iter=50, tol=1e9, n_iter_no_change=2,
                       random_state=0, progress_bar=True)
    est.fit(X, y.astype(float))
    out, err = capfd.readouterr()
    assert est.n_iter_ == 4
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert re.search(r"100%.*\b4/4\b", last), last  # the bar ends full, not at 8%
    assert "Training loss did not improve more than tol" in out  # printed after the bar
    assert "Training loss" not in err


def test_per_batch_progress(capfd):
    X, y, _ = _data()
    _fit(_est(max_iter=2, batch_size=10, progress_bar="batches"), X, y)
    err = capfd.readouterr().err
    assert re.search(r"batches: +\d+%.*\d/9 \[", err), err  # a bar over the 9 batches


def test_tensorboard_logger_writes_the_scalars(tmp_path):
    """The event file, read back record by record (TFRecord framing, tensorboardX's protos)."""
    pytest.importorskip("tensorboardX")
    import struct

    from tensorboardX.proto import event_pb2

    from xpnet.callbacks import TensorBoardLogger

    X, y, val = _data()
    est = _fit(_est(max_iter=3), X, y, validation_data=val,
               callbacks=[TensorBoardLogger(tmp_path / "tb")])
    (path,) = (tmp_path / "tb").iterdir()
    data, i, found = path.read_bytes(), 0, {}
    while i < len(data):
        n = struct.unpack("<Q", data[i:i + 8])[0]
        event = event_pb2.Event()
        event.ParseFromString(data[i + 12:i + 12 + n])
        i += 12 + n + 4
        for v in event.summary.value:
            found.setdefault(v.tag, []).append((event.step, v.simple_value))
    assert [s for s, _ in found["loss"]] == [1, 2, 3]
    np.testing.assert_allclose([v for _, v in found["loss"]], est.loss_curve_, rtol=1e-6)
    np.testing.assert_allclose([v for _, v in found["val_score"]], est.validation_scores_,
                               rtol=1e-6)
    assert set(found) == {"loss", "val_loss", "val_score", "learning_rate"}
