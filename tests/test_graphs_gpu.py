"""CUDA graphs on a GPU (marker ``gpu``; ``ci/gpu-issue17`` runs these): what the CPU cannot show.

* A captured fit is the eager fit with the same kernels, bit for bit: torch on CUDA against
  ``graphs=False`` (the same kernels); CuPy against the emulated capture (the graph kernels,
  products through nvmath-python, issued eagerly), and against ``graphs=False`` (CuPy's own
  products) to the GPU tests' tolerance (float64 1e-9, float32 1e-3).
* The driver captures once per fit and replays every later epoch; a partial_fit stream of
  equal batches replays across calls.
* Launches issued by the host per full-batch step, counted by CUPTI: at most one.
* nvmath-python's cuBLAS: :class:`xpnet.backends.cupy_blas.Blas` against ``cupy.matmul`` on
  every layout, and under stream capture.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest
from conftest import usable

import xpnet
from xpnet.backends.graphs import emulated
from xpnet.training import graphs

pytestmark = pytest.mark.gpu

PLACES = [pytest.param(("torch", "cuda"), id="torch-cuda"), pytest.param(("cupy", 0), id="cupy")]
RTOL = {"float64": 1e-9, "float32": 1e-3}
CONFIGS = {
    "sgd": dict(solver="sgd", momentum=0.0),
    "nesterov": dict(solver="sgd", momentum=0.9, learning_rate="invscaling"),
    "adam": dict(solver="adam"),
    "dropout": dict(solver="adam", dropout=0.2),
    "clipping": dict(solver="sgd", clip_norm=0.5, momentum=0.5),
    "l2+sample_weight": dict(solver="adam", alpha=0.01, fit=dict(sample_weight=True)),
    "validation": dict(solver="adam", early_stopping=True, n_iter_no_change=50),
    "regressor+everything": dict(solver="adam", alpha=0.1, dropout=0.2, clip_norm=1.0,
                                 kind="regression"),
}


@pytest.fixture(params=PLACES)
def place(request):
    name, device = request.param
    ok, reason = usable(name)
    if not ok:
        pytest.skip(f"{name} not usable: {reason}")
    if name == "torch":
        import torch

        if not torch.cuda.is_available():
            pytest.skip("torch sees no CUDA device")
    return name, device


@pytest.fixture
def counts(monkeypatch):
    """What each fit's driver did, noted when the fit drops it."""
    seen = []
    real = graphs.release

    def release(net):
        d = graphs.driver_of(net)
        seen.append((d.captures, d.replays, type(d.capture).__name__))
        real(net)

    monkeypatch.setattr(graphs, "release", release)
    return seen


def _data(kind, n=136):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 8))
    if kind == "regression":
        return X, X @ rng.standard_normal((8, 2))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)


def _fit(place, dtype, config, mode):
    """CONFIGS[config] fitted on ``place`` with graphs ``mode``: False, True or "emulated"."""
    cfg = dict(CONFIGS[config])
    fit_kw = cfg.pop("fit", {})
    kind = cfg.pop("kind", "classification")
    X, y = _data(kind)
    cls = xpnet.MLPRegressor if kind == "regression" else xpnet.MLPClassifier
    est = cls(hidden_layer_sizes=(16, 12), batch_size=16, max_iter=4, random_state=0,
              backend=place[0], device=place[1], dtype=dtype, learning_rate_init=0.01,
              graphs=mode is not False, **cfg)
    kw = {}
    if fit_kw.get("sample_weight"):
        kw["sample_weight"] = np.random.default_rng(1).uniform(0.1, 2.0, len(X))
    with warnings.catch_warnings(), (emulated() if mode == "emulated"
                                     else contextlib.nullcontext()):
        warnings.simplefilter("ignore")
        return est.fit(X, y, **kw)


def _params(est):
    return est.coefs_ + est.intercepts_


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_a_captured_fit_is_the_eager_fit(place, dtype, config, counts):
    graph = _fit(place, dtype, config, True)
    assert counts[-1] == (1, graph.n_iter_ - 1,
                          "TorchCapture" if place[0] == "torch" else "CupyCapture")
    twin = _fit(place, dtype, config, "emulated")  # the same kernels, issued eagerly
    for p, q in zip(_params(graph), _params(twin)):
        assert np.array_equal(p, q)
    assert graph.loss_curve_ == twin.loss_curve_
    eager = _fit(place, dtype, config, False)
    for p, q in zip(_params(graph), _params(eager)):
        if place[0] == "torch":  # graphs=False runs the very same kernels
            assert np.array_equal(p, q)
        else:  # CuPy's own products against nvmath-python's cuBLAS calls
            np.testing.assert_allclose(p, q, rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-2)


def test_a_partial_fit_stream_replays(place):
    rng = np.random.default_rng(3)
    est = xpnet.MLPClassifier(hidden_layer_sizes=(32,), batch_size=16, random_state=0,
                              backend=place[0], device=place[1], graphs=True)
    seen = []
    for _ in range(4):
        X = rng.standard_normal((64, 8))
        est.partial_fit(X, (X[:, 0] > 0).astype(int), classes=[0, 1])
        d = graphs.driver_of(est._net)
        seen.append((d.captures, d.replays))
    assert seen == [(0, 0), (1, 1), (1, 2), (1, 3)]


def test_at_most_one_launch_per_full_batch_step(place):
    """64 full batches per epoch: the host issues one graph launch and the epoch's own few
    operations (table copies, gathers, the read), fewer than one per step."""
    from xpnet.backends import get_backend
    from xpnet.bench.launches import profile_launches

    be = get_backend(*place)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((64 * 32, 16)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    est = xpnet.MLPClassifier(hidden_layer_sizes=(32, 32), batch_size=32, random_state=0,
                              backend=place[0], device=place[1], graphs=True)
    for _ in range(2):  # warm-up, then capture
        est.partial_fit(X, y, classes=[0, 1])
    got = profile_launches(lambda: est.partial_fit(X, y), be.synchronize)
    assert got["graphs"] == 1, got
    assert got["launches"] / 64 <= 1.0, got


# --------------------------------------------------------------------------- nvmath cuBLAS
def _cupy_or_skip():
    ok, reason = usable("cupy")
    if not ok:
        pytest.skip(f"cupy not usable: {reason}")
    import cupy

    return cupy


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("a_t", [False, True])
@pytest.mark.parametrize("b_t", [False, True])
def test_blas_matmul_is_cupys_product(dtype, a_t, b_t):
    cp = _cupy_or_skip()
    from xpnet.backends.cupy_blas import Blas

    rng = np.random.default_rng(5)
    M, K, N = 67, 129, 33
    A = cp.asarray(rng.standard_normal((K, M) if a_t else (M, K)).astype(dtype))
    B = cp.asarray(rng.standard_normal((N, K) if b_t else (K, N)).astype(dtype))
    A, B = (A.T if a_t else A), (B.T if b_t else B)
    out = cp.full((M, N), cp.nan, dtype=dtype)  # poisoned: every element must be written
    Blas(0).matmul(A, B, out)
    want = cp.asnumpy(A).astype(np.float64) @ cp.asnumpy(B).astype(np.float64)
    got = cp.asnumpy(out)
    assert np.isfinite(got).all()
    err = np.linalg.norm(got - want) / np.linalg.norm(want)
    assert err < (1e-6 if dtype == "float32" else 1e-14), err


def test_blas_matmul_is_captured_and_replayed():
    """Blas.matmul and an elementwise kernel inside a CuPy stream capture: each replay
    computes the product of what the inputs hold then."""
    cp = _cupy_or_skip()
    from xpnet.backends.cupy_graph import CupyCapture, CupyGraphKernels

    rng = np.random.default_rng(6)
    K = CupyGraphKernels(0)
    W = cp.asarray(rng.standard_normal((24, 40)).astype(np.float32))
    X = cp.asarray(rng.standard_normal((40, 16)).astype(np.float32))
    b = cp.asarray(rng.standard_normal((24, 1)).astype(np.float32))
    ws = K.workspace()
    cap = CupyCapture(0)

    def fn():
        K.linear_activation(W, X, b, "relu", xp=None, ws=ws, l=1)

    cap.warm(fn)
    graph = cap.capture(fn)
    for _ in range(3):
        X[...] = cp.asarray(rng.standard_normal((40, 16)).astype(np.float32))
        graph.replay()
        A = [v for k, v in ws.items() if k[0] == ("A", 1)][0]
        want = np.maximum(cp.asnumpy(W).astype(np.float64) @ cp.asnumpy(X) + cp.asnumpy(b), 0)
        np.testing.assert_allclose(cp.asnumpy(A), want, rtol=1e-4, atol=1e-5)
