"""CUDA graphs (xpnet.training.graphs), proved on the CPU with the capture emulated.

What a GPU capture records is what its function issues while captured; a replay launches
exactly that. So the graph path is right when (a) the function it captures issues, epoch after
epoch, the calls the eager loop issues, and (b) the driver captures once per (shapes,
options) and otherwise replays. With the capture emulated
(:func:`xpnet.backends.graphs.emulated`: ``capture`` keeps the function, ``replay`` calls it)
the real driver runs on torch's CPU: a ``TorchDispatchMode`` (``test_capture_contract``'s
Recorder) records every call of an eager fit and of a graph fit, which must be the same
except for what ``StepTable.refill`` issues (two copies into the captured table), and the
fitted models must be equal bit for bit. The decision (``graphs`` = "auto" / True / False)
and its errors are checked on every CPU backend.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import xpnet  # noqa: E402
from xpnet.backends import get_backend  # noqa: E402
from xpnet.backends.graphs import EmulatedCapture, emulated, graph_support  # noqa: E402
from xpnet.training import graphs  # noqa: E402
from xpnet.training.step_table import StepTable  # noqa: E402

from test_capture_contract import (ALLOCATIONS, CONFIGS, EPOCHS, Recorder,  # noqa: E402
                                   _data, configured, recording)


# --------------------------------------------------------------------------- the decision
@pytest.mark.parametrize("name", ["numpy", "torch", "array_api_strict"])
def test_auto_and_false_run_eagerly_with_a_reason(name):
    be = get_backend(name)
    assert graphs.decide(False, be) == (False, "graphs=False")
    on, why = graphs.decide("auto", be)
    assert not on and "until CUDA graphs are verified on a GPU" in why
    assert "CUDA graphs need" in why  # and why this backend could not capture anyway


@pytest.mark.parametrize("name, expected", [
    ("numpy", "numpy runs on the CPU"), ("array_api_strict", "array_api_strict runs on the CPU"),
    ("torch", "torch runs on cpu: CUDA graphs need a CUDA device")])
def test_graphs_true_where_capture_is_impossible_raises(name, expected):
    with pytest.raises(ValueError, match="graphs=True cannot capture this fit: " + expected):
        graphs.decide(True, get_backend(name))


def test_graphs_true_names_every_option_that_prevents_capture():
    be = get_backend("torch")
    with emulated():
        assert graphs.decide(True, be) == (True, graph_support(be)[1])
        for kw, what in ((dict(distributed=True), "data-parallel"),
                         (dict(data_kind="streamed"), "X is streamed from the host"),
                         (dict(data_kind="sparse"), "X is sparse from the host")):
            with pytest.raises(ValueError, match=what):
                graphs.decide(True, be, **kw)


@pytest.mark.parametrize("value", ["yes", 1, None, "true"])
def test_the_estimator_refuses_other_values(value):
    X, y = _data("classification")
    est = xpnet.MLPClassifier(hidden_layer_sizes=(3,), max_iter=1, backend="numpy",
                              graphs=value)
    with pytest.raises(ValueError, match=r"graphs must be 'auto', True or False"):
        est.fit(X, y)


def test_graphs_true_on_numpy_fails_before_the_estimator_changes():
    X, y = _data("classification")
    est = xpnet.MLPClassifier(hidden_layer_sizes=(3,), max_iter=1, backend="numpy",
                              graphs=True)
    with pytest.raises(ValueError, match="numpy runs on the CPU"):
        est.fit(X, y)
    assert not hasattr(est, "coefs_") and not hasattr(est, "n_iter_")


def test_verbose_says_whether_the_fit_captures(capsys):
    X, y = _data("classification")
    kw = dict(hidden_layer_sizes=(3,), max_iter=1, backend="torch", verbose=True,
              dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with emulated():
            xpnet.MLPClassifier(graphs=True, **kw).fit(X, y)
            xpnet.MLPClassifier(graphs="auto", **kw).fit(X, y)
        xpnet.MLPClassifier(graphs="auto", **kw).fit(X, y)  # torch on the CPU: nothing to say
    out = capsys.readouterr().out
    assert out.count("CUDA graphs: on (capture emulated") == 1
    assert out.count("CUDA graphs: off (graphs='auto' runs eagerly until") == 1
    assert out.count("CUDA graphs: ") == 2


# --------------------------------------------------------------------------- same calls
@contextlib.contextmanager
def _refills(rec: Recorder, spans: list[tuple[int, int]]):
    """Record the index range of the calls each ``StepTable.refill`` issues."""
    real = StepTable.refill

    def refill(self, other):
        a = len(rec.calls)
        try:
            return real(self, other)
        finally:
            spans.append((a, len(rec.calls)))

    StepTable.refill = refill
    try:
        yield
    finally:
        StepTable.refill = real


def _fit(name: str, graphs_on: bool):
    """CONFIGS[name] fitted for EPOCHS epochs under the recorder, eagerly or with the capture
    emulated: (estimator, per-epoch calls with the refills' taken out, refills per epoch,
    the driver's captures and replays)."""
    est, X, y, kw = configured(name, graphs=graphs_on)
    rec, uploads, refills, seen = Recorder(), [], [], {}
    real_release = graphs.release

    def release(net):  # the fit's end: note what the driver did before it is dropped
        d = graphs.driver_of(net)
        seen.update(captures=d.captures, replays=d.replays, kind=type(d.capture))
        real_release(net)

    graphs.release = release
    try:
        with warnings.catch_warnings(), (emulated() if graphs_on else contextlib.nullcontext()):
            warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
            with recording(rec, uploads) as marks, _refills(rec, refills):
                est.fit(X, y, **kw)
    finally:
        graphs.release = real_release
    bounds = list(zip(marks, marks[1:] + [len(rec.calls)]))
    epochs, per_epoch, allocations = [], [], []
    for a, z in bounds:
        inside = [r for r in refills if a <= r[0] < z]
        drop = {i for r in inside for i in range(*r)}
        # workspace and per-thread scratch buffers are made on first use, by whichever fit
        # of the thread comes first: allocations are compared apart (captured epochs: none)
        epochs.append([c for i, c in enumerate(rec.calls[a:z], a)
                       if i not in drop and not c[0].startswith(ALLOCATIONS)])
        allocations.append([c for c in rec.calls[a:z] if c[0].startswith(ALLOCATIONS)])
        per_epoch.append([rec.calls[i][0] for r in inside for i in range(*r)])
    seen["allocations"] = allocations
    return est, epochs, per_epoch, seen


def _same_model(a, b) -> None:
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert np.array_equal(p, q)
    assert a.loss_curve_ == b.loss_curve_ and a.n_iter_ == b.n_iter_
    for attr in ("validation_scores_", "validation_loss_curve_"):
        assert np.array_equal(np.asarray(getattr(a, attr, None), dtype=float),
                              np.asarray(getattr(b, attr, None), dtype=float), equal_nan=True)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_the_graph_path_issues_the_eager_calls_and_trains_the_same_model(name):
    """Every epoch of a graph fit issues the eager fit's calls, plus, from the second epoch
    (the captured one) on, the refill's two copies; the captured epochs allocate nothing; the
    driver captures once and replays the later epochs; the models are equal bit for bit."""
    eager, eager_epochs, none, _ = _fit(name, False)
    graph, graph_epochs, refills, seen = _fit(name, True)
    assert none == [[]] * EPOCHS
    assert len(graph_epochs) == len(eager_epochs) == EPOCHS
    for e, (g, r) in enumerate(zip(graph_epochs, eager_epochs)):
        assert g == r, f"epoch {e + 1}: first difference at call " \
            f"{next((i for i, (p, q) in enumerate(zip(g, r)) if p != q), min(len(g), len(r)))}"
    assert refills[0] == [] and all(r == ["aten.copy_.default"] * 2 for r in refills[1:]), \
        refills
    assert seen.pop("allocations")[1:] == [[]] * (EPOCHS - 1)  # nothing new once captured
    assert seen == dict(captures=1, replays=EPOCHS - 1, kind=EmulatedCapture)
    _same_model(eager, graph)


# --------------------------------------------------------------------------- re-capture
def _stream(graphs_on: bool, sizes, **kw):
    """partial_fit over chunks of ``sizes`` rows: (estimator, (captures, replays) after each
    call)."""
    rng = np.random.default_rng(3)
    est = xpnet.MLPClassifier(hidden_layer_sizes=(6,), batch_size=16, random_state=0,
                              backend="torch", dtype="float64", solver="adam",
                              graphs=graphs_on, **kw)
    counts = []
    with emulated() if graphs_on else contextlib.nullcontext():
        for n in sizes:
            X = rng.standard_normal((n, 4))
            y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 1)
            est.partial_fit(X, y, classes=[0, 1, 2])
            d = graphs.driver_of(est._net)
            counts.append(None if d is None else (d.captures, d.replays))
    return est, counts


def test_a_partial_fit_stream_of_equal_batches_replays():
    """Call 1 warms up, call 2 captures and replays, later calls replay; a new row count
    starts over (warm-up, then one more capture); the model is the eager stream's."""
    sizes = [72, 72, 72, 72, 40, 40, 40]
    eager, _ = _stream(False, sizes)
    graph, counts = _stream(True, sizes)
    assert counts == [(0, 0), (1, 1), (1, 2), (1, 3), (1, 3), (2, 4), (2, 5)]
    _same_model(eager, graph)


def test_options_that_change_the_kernels_start_over_and_fit_releases_the_graph():
    """A changed constant the step bakes in (alpha here) is a new key: warm-up, then capture;
    fit() drops its graph at the end (partial_fit keeps it)."""
    est, counts = _stream(True, [72, 72])
    est.set_params(alpha=0.5)
    with emulated():
        X = np.random.default_rng(4).standard_normal((72, 4))
        y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 1)
        assert set(y) == {0, 1, 2}
        est.partial_fit(X, y)
        assert (graphs.driver_of(est._net).captures, graphs.driver_of(est._net).replays) \
            == (1, 1)  # the new key's warm-up: no capture yet
        est.partial_fit(X, y)
        assert graphs.driver_of(est._net).captures == 2
        est.set_params(max_iter=3, warm_start=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
    assert graphs.driver_of(est._net) is None


def test_shuffle_false_copies_the_inputs_and_trains_the_same_model():
    """Without shuffling the graph reads copies of X and Y of its own (never the caller's
    arrays, which change between partial_fit calls); the model is the eager one's."""
    eager, _ = _stream(False, [72, 72, 72], shuffle=False)
    graph, counts = _stream(True, [72, 72, 72], shuffle=False)
    assert counts[-1] == (1, 2)
    _same_model(eager, graph)


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_the_driver_runs_on_every_backend_with_the_capture_emulated(backend):
    """The same driver on NumPy and array-api-strict (no TorchWorkspace): bit for bit."""
    X, y = _data("classification")
    kw = dict(hidden_layer_sizes=(5,), batch_size=16, max_iter=3, random_state=0,
              backend=backend, dtype="float64", solver="adam", dropout=0.2, alpha=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eager = xpnet.MLPClassifier(graphs=False, **kw).fit(X, y)
        with emulated():
            graph = xpnet.MLPClassifier(graphs=True, **kw).fit(X, y)
    _same_model(eager, graph)


def test_divergence_under_graphs_keeps_the_eager_parameters():
    """A diverging epoch is replayed eagerly batch by batch (the driver is dropped with the
    fit): the same error and the same kept parameters as without graphs."""
    X, y = _data("regression")
    kw = dict(hidden_layer_sizes=(6,), batch_size=16, max_iter=5, random_state=0,
              backend="torch", dtype="float64", solver="sgd", learning_rate_init=5.0,
              momentum=0.0)
    found = []
    for on in (False, True):
        est = xpnet.MLPRegressor(graphs=on, **kw)
        with emulated() if on else contextlib.nullcontext():
            with pytest.raises(xpnet.DivergenceError) as err:
                est.fit(X, y * 1e3)
        found.append((str(err.value), est))
    assert found[0][0] == found[1][0]
    _same_model(found[0][1], found[1][1])
    assert graphs.driver_of(found[1][1]._net) is None
