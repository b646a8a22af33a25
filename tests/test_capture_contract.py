"""The capture contract, proved on the CPU: consecutive epochs issue the same device calls.

A CUDA graph replays the kernels it captured with the arguments it captured. So an epoch can
be captured once and replayed (``../shared/DESIGN.md``, "The capture contract") only if,
from one epoch to the next, it issues the same operations with the same non-tensor
arguments (no learning rate, Adam step, dropout key or weight scale passed as a Python
number), reads nothing back and uploads nothing inside the batch loop.

How. Training runs on the torch backend (CPU). A ``TorchDispatchMode`` sees every ATen call
that reaches PyTorch's dispatcher; each call is recorded as (op, its arguments with every
tensor replaced by its shape and dtype) while ``Trainer._epoch`` or ``Trainer._epoch_read``
runs (the epoch's device work: its uploads and gathers, the batch loop, the one read).
Host-to-device copies do not reach the dispatcher on CPU tensors, so ``torch.as_tensor`` /
``torch.asarray`` are counted at the Python API, as ``benchmarks/count_ops.py`` does, and
flagged when they happen inside a step (``Step.__call__``). The real classes run; the
wrappers only record.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils._pytree import tree_leaves  # noqa: E402

import xpnet  # noqa: E402
from xpnet.training.loop import Trainer  # noqa: E402
from xpnet.training.step import Step  # noqa: E402

EPOCHS = 3
ALLOCATIONS = ("aten.empty", "aten.new_empty")  # a workspace buffer made on first use


def _same(a: list, b: list, what: str) -> None:
    first = next((i for i, (p, q) in enumerate(zip(a, b)) if p != q), None)
    assert len(a) == len(b) and first is None, (
        f"{what}: differs at call {first if first is not None else min(len(a), len(b))}: "
        f"{a[first] if first is not None else len(a)} vs "
        f"{b[first] if first is not None else len(b)}")


def _arg(a):
    """A call's argument as recorded: tensors by shape and dtype, the rest as they are."""
    if isinstance(a, torch.Tensor):
        return ("tensor", tuple(a.shape), str(a.dtype))
    if isinstance(a, (list, tuple)):
        return type(a)(_arg(x) for x in a)
    if isinstance(a, dict):
        return tuple(sorted((k, _arg(v)) for k, v in a.items()))
    return a


class Recorder(TorchDispatchMode):
    """Records (op, args, kwargs) of every dispatched call while ``on`` is set."""

    def __init__(self):
        super().__init__()
        self.on = False
        self.in_step = False
        self.calls: list[tuple] = []
        self.step_reads: list[str] = []
        self.step_allocations: list[tuple] = []  # (call, op, shape): new arrays in a step

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.on:
            name = str(func)
            self.calls.append((name, _arg(args), _arg(kwargs or {})))
            if self.in_step and "_local_scalar_dense" in name:
                self.step_reads.append(name)
            if self.in_step:
                given = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs))
                         if isinstance(t, torch.Tensor)}
                for t in tree_leaves(out):
                    if isinstance(t, torch.Tensor) and t.numel() > 1 \
                            and t.untyped_storage().data_ptr() not in given:
                        self.step_allocations.append((len(self.calls), name, tuple(t.shape)))
        return out


@contextlib.contextmanager
def recording(rec: Recorder, uploads: list[tuple[int, bool]]):
    """Instrument the real Trainer and torch's host->device entry points (restored after)."""
    epoch, read, step = Trainer._epoch, Trainer._epoch_read, Step.__call__
    as_tensor, asarray = torch.as_tensor, torch.asarray
    marks: list[int] = []

    def on(method, mark=False):
        def wrapped(self, *a, **k):
            rec.on = True
            if mark:
                marks.append(len(rec.calls))
            try:
                return method(self, *a, **k)
            finally:
                rec.on = False
        return wrapped

    def in_step(self, *a, **k):
        rec.in_step = True
        try:
            return step(self, *a, **k)
        finally:
            rec.in_step = False

    def h2d(f):
        def wrapped(data, *a, **k):
            if rec.on and not isinstance(data, torch.Tensor):
                uploads.append((len(marks), rec.in_step))
            return f(data, *a, **k)
        return wrapped

    Trainer._epoch, Trainer._epoch_read = on(epoch, mark=True), on(read)
    Step.__call__ = in_step
    torch.as_tensor, torch.asarray = h2d(as_tensor), h2d(asarray)
    try:
        with rec:
            yield marks
    finally:
        Trainer._epoch, Trainer._epoch_read, Step.__call__ = epoch, read, step
        torch.as_tensor, torch.asarray = as_tensor, asarray


def _data(kind: str):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((72, 4))
    if kind == "regression":
        return X, X @ rng.standard_normal((4, 2))
    if kind == "binary":
        return X, (X[:, 0] - X[:, 3] > 0).astype(int)
    return X, (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)  # 3 classes


CONFIGS = {
    "sgd": dict(solver="sgd"),
    "momentum": dict(solver="sgd", momentum=0.9, nesterovs_momentum=False),
    "nesterov+invscaling": dict(solver="sgd", momentum=0.9, learning_rate="invscaling"),
    "adaptive": dict(solver="sgd", learning_rate="adaptive", n_iter_no_change=1, tol=10.0),
    "adam": dict(solver="adam"),
    "dropout": dict(solver="adam", dropout=0.3),
    "clipping": dict(solver="sgd", clip_norm=0.5, momentum=0.5),
    "l2": dict(solver="adam", alpha=0.1),
    "sample_weight": dict(solver="sgd", alpha=0.01, fit=dict(sample_weight=True)),
    "class_weight": dict(solver="adam", alpha=0.01, class_weight="balanced"),
    "early_stopping": dict(solver="adam", early_stopping=True, n_iter_no_change=50),
    "binary+tanh": dict(solver="sgd", activation="tanh", kind="binary", early_stopping=True,
                        n_iter_no_change=50),
    "validation_data": dict(solver="sgd", dropout=0.2, fit=dict(validation_data=True)),
    "regressor+everything": dict(solver="adam", alpha=0.1, dropout=0.2, clip_norm=1.0,
                                 kind="regression", fit=dict(sample_weight=True)),
}


def configured(name: str, **params):
    """(estimator, X, y, fit keywords) of CONFIGS[name] on torch, float64, EPOCHS epochs of
    72 rows in batches of 16 (``params``: more estimator parameters)."""
    cfg = dict(CONFIGS[name])
    fit_kw = cfg.pop("fit", {})
    kind = cfg.pop("kind", "classification")
    X, y = _data(kind)
    cls = xpnet.MLPRegressor if kind == "regression" else xpnet.MLPClassifier
    est = cls(hidden_layer_sizes=(6, 5), batch_size=16, max_iter=EPOCHS, random_state=0,
              backend="torch", dtype="float64", **cfg, **params)
    kw = {}
    if fit_kw.get("sample_weight"):
        kw["sample_weight"] = np.random.default_rng(1).uniform(0.1, 2.0, len(X))
    if fit_kw.get("validation_data"):
        kw["validation_data"] = (X[:20], y[:20])
    return est, X, y, kw


def _fit(name: str):
    """Fit CONFIGS[name] for EPOCHS epochs under the recorder: (estimator, recorder, uploads,
    epoch marks)."""
    est, X, y, kw = configured(name)
    rec, uploads = Recorder(), []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
        with recording(rec, uploads) as marks:
            est.fit(X, y, **kw)
    return est, rec, uploads, marks


@pytest.mark.parametrize("name", list(CONFIGS))
def test_consecutive_epochs_issue_identical_calls(name):
    """Every epoch of a fit issues the same device calls with the same non-tensor arguments,
    with no host read and no upload inside a step (72 rows, batches of 16: 4 full steps and
    a partial one per epoch)."""
    est, rec, uploads, marks = _fit(name)
    assert est.n_iter_ == EPOCHS and len(marks) == EPOCHS
    epochs = [rec.calls[a:z] for a, z in zip(marks, marks[1:] + [len(rec.calls)])]
    # epoch 1 is the warm-up: it also allocates the step's buffers (what a capture needs done
    # before it starts); without those allocations it is the same stream as every later epoch
    warm = [c for c in epochs[0] if not c[0].startswith(ALLOCATIONS)]
    for e in range(1, EPOCHS):
        _same(warm, epochs[e], f"epoch {e + 1} against epoch 1 without its allocations")
        assert not any(c[0].startswith(ALLOCATIONS) for c in epochs[e]), \
            f"epoch {e + 1} allocates: {[c for c in epochs[e] if c[0].startswith(ALLOCATIONS)]}"
    assert rec.step_reads == [], f"host reads inside a step: {rec.step_reads}"
    assert [u for u in uploads if u[1]] == [], "uploads inside a step"
    per_epoch = [sum(1 for e, _ in uploads if e == k) for k in range(1, EPOCHS + 1)]
    assert per_epoch[0] == per_epoch[1] == per_epoch[2] <= 2, per_epoch
    # the epoch's one read: a single .item()-free copy of the stacked epoch numbers
    assert not any("_local_scalar_dense" in c[0] for c in rec.calls)


# the step's own kernels write into its workspace; what still makes new arrays per step:
# the portable dropout generator and masks, and the portable output layers of a regressor
# (identity) and of binary and multilabel targets (sigmoid), which torch does not override
ALLOCATE = {"dropout", "validation_data", "regressor+everything", "binary+tanh"}


@pytest.mark.parametrize("name", sorted(set(CONFIGS) - ALLOCATE))
def test_a_step_writes_into_its_own_buffers(name):
    """After the warm-up epoch, no operation inside a step returns a new array (more than one
    element, storage not among its inputs'): every intermediate lives in the step's
    workspace, so a captured step replays into the same memory."""
    _, rec, _, marks = _fit(name)
    later = [a for a in rec.step_allocations if a[0] >= marks[1]]  # after the warm-up epoch
    assert later == [], f"{len(later)} new arrays in {(EPOCHS - 1) * 5} steps: {later[:6]}"


def test_the_recorder_sees_a_python_scalar_that_changes():
    """The comparison can fail: a Python learning rate that changes between epochs (the
    update before the step table) shows up as a differing non-tensor argument."""
    p, g = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    rec = Recorder()
    streams = []
    with rec:
        for lr in (0.1, 0.05):
            rec.on, rec.calls = True, []
            p.add_(g, alpha=-lr)
            streams.append(rec.calls)
    assert streams[0] != streams[1]
    assert [c[0] for c in streams[0]] == [c[0] for c in streams[1]]
