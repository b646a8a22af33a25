"""Zero host synchronisations inside the batch loop.

Training runs on array-api-strict's fake non-CPU device ``device1`` (like CuPy's arrays, its
arrays refuse ``np.asarray``). Every way an array can reach the host is instrumented on the
real ``array_api_strict`` Array class (not mocked: the wrapped method still runs):
``__float__``, ``__int__``, ``__bool__``, ``__index__``, ``__complex__``, ``__array__``,
``__dlpack__``, ``tolist`` (where it exists) and ``to_device`` to the CPU device. A call on
an array that lives on ``device1`` is one read (a host sync); calls made from inside a counted
call (``to_device`` then ``__dlpack__`` ...) are part of that read, and calls on arrays already
on the CPU device cost no sync and are not counted.

A fit's reads are a constant (input checks, ``classes_``, the early-stopping split, the
results) plus ``k`` per epoch: the loop's one stacked read of the epoch (the loss, the
validation loss and score, a finiteness flag; ``xpnet/training/loop.py``, ``Trainer._epoch_read``).
So reads(E2) - reads(E1) == (E2 - E1) * k, with the same k when the batch size is halved
(twice the steps per epoch), and no read ever comes from inside ``Trainer._epoch``.
"""

from __future__ import annotations

import os
import threading
import traceback
from dataclasses import dataclass, field

import numpy as np
import pytest

import xpnet

array_api_strict = pytest.importorskip("array_api_strict")
from array_api_strict._array_object import Array  # noqa: E402  (the real class)

CONV = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
pytestmark = CONV

CPU = array_api_strict.Device("CPU_DEVICE")
DEVICE = array_api_strict.Device("device1")
K_PER_EPOCH = 1  # the epoch's one stacked read (np.from_dlpack of one stacked 1-D array)
READS = ("__float__", "__int__", "__bool__", "__index__", "__complex__", "__array__",
         "__dlpack__", "tolist")


@dataclass
class Reads:
    """The counted reads: one stack (innermost frame last) per read."""

    stacks: list[list[traceback.FrameSummary]] = field(default_factory=list)
    _depth: threading.local = field(default_factory=threading.local)

    @property
    def count(self) -> int:
        return len(self.stacks)

    def in_batch_loop(self) -> list[list[traceback.FrameSummary]]:
        """The reads made while ``Trainer._epoch`` (the batch loop) was running."""
        return [s for s in self.stacks
                if any(f.name == "_epoch" and f.filename.endswith("loop.py") for f in s)]

    def describe(self, stacks=None) -> str:
        stacks = self.stacks if stacks is None else stacks
        out = []
        for i, s in enumerate(stacks):
            frames = [f for f in s if "xpnet" in f.filename and "test_host_syncs" not in f.filename]
            where = " <- ".join(f"{f.filename.rsplit('src/', 1)[-1]}:{f.lineno} ({f.name})"
                                for f in reversed(frames[-6:]))
            out.append(f"read {i + 1} [{s[-1].name}]: {where}")
        return "\n".join(out)

    def _wrap(self, name, original, counts):
        def wrapper(x, *args, **kwargs):
            depth = getattr(self._depth, "n", 0)
            if depth == 0 and x.device != CPU and counts(*args, **kwargs):
                stack = traceback.extract_stack()[:-1]
                stack[-1:] = [traceback.FrameSummary(stack[-1].filename, stack[-1].lineno,
                                                     f"{stack[-1].name} -> Array.{name}")]
                self.stacks.append(stack)
            self._depth.n = depth + 1
            try:
                return original(x, *args, **kwargs)
            finally:
                self._depth.n = depth
        wrapper.__name__ = name
        return wrapper

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in READS:
            original = getattr(Array, name, None)
            if original is not None:
                monkeypatch.setattr(Array, name, self._wrap(name, original, lambda *a, **k: True))
        to_cpu = lambda device, *a, **k: device == CPU  # noqa: E731
        monkeypatch.setattr(Array, "to_device", self._wrap("to_device", Array.to_device, to_cpu))
        if hasattr(array_api_strict, "to_device"):  # a namespace-level spelling, if any
            f = array_api_strict.to_device
            self_first = self._wrap("to_device", lambda x, *a, **k: f(x, *a, **k), to_cpu)
            monkeypatch.setattr(array_api_strict, "to_device", self_first)


@pytest.fixture
def reads(monkeypatch):
    r = Reads()
    r.install(monkeypatch)
    return r


def _data(regression=False, n=24, d=3, classes=3):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)).astype(np.float32)
    if regression:
        return X, (X @ np.array([1.0, -2.0, 0.5], np.float32))[:, None] \
            + 0.1 * rng.standard_normal((n, 2)).astype(np.float32)
    return X, np.arange(n) % classes


CASES = {
    "sgd": dict(solver="sgd", momentum=0.0),
    "sgd_nesterov": dict(solver="sgd", momentum=0.9, nesterovs_momentum=True),
    "adam": dict(solver="adam"),
    "dropout": dict(solver="adam", dropout=0.3),
    "clip_norm": dict(solver="sgd", momentum=0.9, clip_norm=1.0),
    "alpha": dict(solver="adam", alpha=0.1),
    "early_stopping": dict(solver="adam", early_stopping=True, validation_fraction=0.25),
    "validation_data": dict(solver="adam"),
    "regressor": dict(solver="adam"),
    "device_inputs": dict(solver="sgd", momentum=0.9),  # X, y given as device1 arrays
    # callbacks see the epoch's host numbers; the best weights are a device copy;
    # progress_bar="batches" draws a bar over the batches, counting steps
    "callbacks": dict(solver="adam", progress_bar="batches"),
    "sample_weight": dict(solver="sgd", momentum=0.9, class_weight="balanced"),
}


def _fit_reads(reads: Reads, case: str, max_iter: int, batch_size: int) -> int:
    kw = dict(CASES[case])
    est_cls = xpnet.MLPRegressor if case == "regressor" else xpnet.MLPClassifier
    est = est_cls(hidden_layer_sizes=(5,), batch_size=batch_size, max_iter=max_iter, tol=0.0,
                  n_iter_no_change=10_000, random_state=0, learning_rate_init=1e-3,
                  backend="array_api_strict", device="device1", **kw)
    X, y = _data(regression=case == "regressor")
    fit_kw = {}
    if case == "validation_data":
        Xv, yv = _data()
        fit_kw["validation_data"] = (Xv[:9], yv[:9])
    if case == "callbacks":
        from xpnet.callbacks import CSVLogger, EarlyStopping

        Xv, yv = _data()
        fit_kw["validation_data"] = (Xv[:9], yv[:9])
        fit_kw["callbacks"] = [EarlyStopping(monitor="val_loss", patience=10_000),
                               CSVLogger(os.devnull)]
    if case == "sample_weight":
        fit_kw["sample_weight"] = np.linspace(0.5, 2.0, len(X))
    if case == "device_inputs":
        X, y = (array_api_strict.asarray(X, device=DEVICE),
                array_api_strict.asarray(y, device=DEVICE))
    before = reads.count
    est.fit(X, y, **fit_kw)
    assert est.n_iter_ == max_iter, "must run every epoch"
    assert len(est.loss_curve_) == max_iter
    if case in ("early_stopping", "validation_data"):
        assert len(est.validation_scores_) == max_iter
    return reads.count - before


@pytest.mark.parametrize("case", list(CASES))
def test_one_read_per_epoch_none_per_step(reads, case):
    E1, E2, bs = 2, 4, 4
    counts = {}
    for batch_size in (bs, bs // 2):  # 6 then 12 steps per epoch (early stopping: 5 and 9)
        r1 = _fit_reads(reads, case, E1, batch_size)
        r2 = _fit_reads(reads, case, E2, batch_size)
        counts[batch_size] = (r1, r2)
        inside = reads.in_batch_loop()
        assert not inside, f"host reads inside the batch loop:\n{reads.describe(inside)}"
        assert r2 - r1 == (E2 - E1) * K_PER_EPOCH, (
            f"batch_size={batch_size}: {r1} reads in {E1} epochs, {r2} in {E2}; expected "
            f"{K_PER_EPOCH} per epoch. All reads:\n{reads.describe()}")
    # halving the batch size doubles the steps but changes no count, not even the constant
    assert counts[bs] == counts[bs // 2], f"{counts}\n{reads.describe()}"


def test_the_epoch_read_is_the_stacked_loss(reads):
    """Where the per-epoch read happens: the loop's to_numpy of the stacked values."""
    _fit_reads(reads, "validation_data", 1, 4)
    before = len(reads.stacks)
    _fit_reads(reads, "validation_data", 3, 4)
    epoch_reads = [s for s in reads.stacks[before:]
                   if any(f.name == "_epoch_read" and f.filename.endswith("loop.py") for f in s)]
    assert len(epoch_reads) == 3 * K_PER_EPOCH, reads.describe(reads.stacks[before:])
    for s in epoch_reads:
        frame = next(f for f in reversed(s) if f.filename.endswith("loop.py"))
        assert "# the one read" in (frame.line or ""), reads.describe([s])


def test_the_counter_sees_reads(reads):
    """The instrument itself: each kind of host conversion is one read on device1, none on
    the CPU device, and a read nested inside another counts once."""
    x = array_api_strict.asarray([1.5, 2.0], device=DEVICE)
    float(x[0]); bool(x[1] > 0); int(array_api_strict.asarray(3, device=DEVICE))  # noqa: E702
    np.from_dlpack(x)
    on_cpu = x.to_device(CPU)
    assert reads.count == 5
    float(on_cpu[0]); np.from_dlpack(on_cpu)  # noqa: E702
    assert reads.count == 5
    with pytest.raises(RuntimeError):  # refused, but attempted: still counted
        np.asarray(x)
    assert reads.count >= 6
    assert xpnet.backends.to_numpy(x).tolist() == [1.5, 2.0]


def test_device1_needs_no_implicit_conversion(monkeypatch):
    """Like CuPy, a device's array must be moved to the host explicitly: with DLPack export
    refused off the CPU device too (as array-api-strict is making it, upstream PR 233; today
    only np.asarray refuses), fitting, predicting and the fitted attributes still work."""
    dlpack = Array.__dlpack__

    def refusing(x, *args, **kwargs):
        if x.device != CPU:
            raise BufferError(f"no DLPack export from {x.device}")
        return dlpack(x, *args, **kwargs)

    monkeypatch.setattr(Array, "__dlpack__", refusing)
    X, y = _data()
    Xd = array_api_strict.asarray(X, device=DEVICE)
    with pytest.raises(BufferError):
        np.from_dlpack(Xd)
    est = xpnet.MLPClassifier(hidden_layer_sizes=(5,), batch_size=4, max_iter=2, random_state=0,
                              early_stopping=True, validation_fraction=0.25,
                              backend="array_api_strict", device="device1")
    est.fit(Xd, array_api_strict.asarray(y, device=DEVICE))
    assert est.classes_.tolist() == [0, 1, 2] and len(est.loss_curve_) == 2
    assert est.coefs_[0].shape == (3, 5) and est.predict(X).shape == (24,)
    assert 0.0 <= est.score(X, y) <= 1.0
