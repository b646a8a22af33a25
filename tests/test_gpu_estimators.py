"""The estimators on a GPU (CuPy, torch on CUDA) against the same fit on NumPy.

Every path a user takes: sgd / momentum / Nesterov / adam, the adaptive schedule, early
stopping, validation_data, dropout, clip_norm, partial_fit, a regressor, multilabel,
divergence, checkpoint + resume (GPU to GPU bit for bit, GPU to CPU), model files and pickles
loaded onto the GPU, and out-of-memory becoming DeviceMemoryError. float32 and float64.

The places are ("cupy", 0) and ("torch", "cuda") (marker ``gpu``: ci/gpu fails when they skip
on a GPU machine) and ("torch", "cpu:0"), which runs the same tests on every machine so that
their logic is proven before a GPU sees them. The torch places name their device the way its
tensors do not ("cuda" for tensors on "cuda:0", "cpu:0" for tensors on "cpu"): a device must
equal itself however it was named. Agreement with NumPy after a few epochs:
float64 1e-9 relative, float32 1e-3 (the GPU's reductions and BLAS round differently; the
differences grow a little with each step, as in tests/test_agreement.py's 50 steps at 1e-10 /
1e-4).
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from conftest import blobs, usable

import xpnet
from xpnet import MLPClassifier, MLPRegressor

PLACES = [pytest.param(("torch", "cpu:0"), id="torch-cpu"),
          pytest.param(("cupy", 0), id="cupy", marks=pytest.mark.gpu),
          pytest.param(("torch", "cuda"), id="torch-cuda", marks=pytest.mark.gpu)]
RTOL = {"float64": 1e-9, "float32": 1e-3}
CONV = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(params=PLACES)
def place(request):
    name, device = request.param
    ok, reason = usable(name)
    if not ok:
        pytest.skip(f"{name} not usable: {reason}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            pytest.skip("torch sees no CUDA device")
    return name, device


def _fit(cls, place, dtype, X, y, fit_kw=None, **params):
    kw = dict(hidden_layer_sizes=(8, 6), batch_size=16, max_iter=4, random_state=0,
              dtype=dtype, learning_rate_init=0.05)
    kw.update(params)
    name, device = place
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        here = cls(**kw, backend=name, device=device).fit(X, y, **(fit_kw or {}))
        ref = cls(**kw, backend="numpy").fit(X, y, **(fit_kw or {}))
    return here, ref


def _agree(here, ref, dtype):
    rtol = RTOL[dtype]
    assert here.n_iter_ == ref.n_iter_
    for a, b in zip(here.coefs_ + here.intercepts_, ref.coefs_ + ref.intercepts_):
        assert isinstance(a, np.ndarray)  # fitted attributes are host arrays
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-2)
    np.testing.assert_allclose(here.loss_curve_, ref.loss_curve_, rtol=rtol)
    for curve in ("validation_scores_", "validation_loss_curve_"):
        a, b = getattr(here, curve, None), getattr(ref, curve, None)
        if b is not None:
            np.testing.assert_allclose(a, b, rtol=rtol)


def _data(n=96):
    X, y = blobs(n=n, d=5, k=3, seed=1)
    return (X - X.mean(0)) / X.std(0), y


SOLVERS = {"sgd": dict(solver="sgd", momentum=0.0),
           "momentum": dict(solver="sgd", momentum=0.9, nesterovs_momentum=False),
           "nesterov": dict(solver="sgd", momentum=0.9, nesterovs_momentum=True),
           "adam": dict(solver="adam", learning_rate_init=0.01)}


@CONV
@pytest.mark.parametrize("solver", list(SOLVERS))
def test_solvers_agree_with_numpy(place, dtype, solver):
    X, y = _data()
    here, ref = _fit(MLPClassifier, place, dtype, X, y, **SOLVERS[solver])
    _agree(here, ref, dtype)
    np.testing.assert_array_equal(here.predict(X), ref.predict(X))


@CONV
def test_tf32_trains_close_to_float32(place):
    """TF32 rounds the products' inputs to a 10-bit mantissa (2^-11 relative): a few epochs
    stay within 2e-2 of full float32 on NumPy; the process's setting is restored after."""
    X, y = _data()
    before = _tf32_state(place)
    here, ref = _fit(MLPClassifier, place, "float32", X, y, tf32=True)
    assert _tf32_state(place) == before
    np.testing.assert_allclose(here.loss_curve_, ref.loss_curve_, rtol=2e-2)
    assert np.mean(here.predict(X) == ref.predict(X)) >= 0.95


def _tf32_state(place):
    name, device = place
    if name == "cupy":
        from cupy._core import _routines_linalg as linalg

        return linalg.get_compute_type(np.float32)
    import torch

    return torch.backends.cuda.matmul.fp32_precision


@CONV
@pytest.mark.parametrize("what", ["early_stopping+adaptive", "validation_data", "dropout",
                                  "clip_norm", "invscaling+l2"])
def test_training_options_agree_with_numpy(place, dtype, what):
    X, y = _data(120)
    params, fit_kw = {}, {}
    if what == "early_stopping+adaptive":
        params = dict(solver="sgd", learning_rate="adaptive", early_stopping=True,
                      validation_fraction=0.25, n_iter_no_change=2, tol=1e-2, max_iter=8)
    elif what == "validation_data":
        fit_kw = dict(validation_data=(X[90:], y[90:]))
        X, y = X[:90], y[:90]
    elif what == "dropout":
        params = dict(dropout=0.3)
    elif what == "clip_norm":
        params = dict(clip_norm=0.05, solver="sgd")
    else:
        params = dict(solver="sgd", learning_rate="invscaling", alpha=0.01,
                      learning_rate_init=0.2)
    here, ref = _fit(MLPClassifier, place, dtype, X, y, fit_kw, **params)
    _agree(here, ref, dtype)
    if what == "early_stopping+adaptive":
        assert here.best_validation_score_ == pytest.approx(ref.best_validation_score_,
                                                            rel=RTOL[dtype])


@CONV
def test_partial_fit_agrees_with_numpy(place, dtype):
    X, y = _data()
    name, device = place
    kw = dict(hidden_layer_sizes=(8,), random_state=0, dtype=dtype, batch_size=16)
    here = MLPClassifier(**kw, backend=name, device=device)
    ref = MLPClassifier(**kw, backend="numpy")
    for est in (here, ref):
        for k in range(3):
            est.partial_fit(X[32 * k: 32 * (k + 1)], y[32 * k: 32 * (k + 1)], classes=[0, 1, 2])
    _agree(here, ref, dtype)


@CONV
@pytest.mark.parametrize("outputs", [1, 2])
def test_regressor_agrees_with_numpy(place, dtype, outputs):
    X, _ = _data()
    Y = np.stack([X[:, 0] - 2 * X[:, 1], np.tanh(X[:, 2])], axis=1)[:, :outputs].squeeze()
    here, ref = _fit(MLPRegressor, place, dtype, X, Y, solver="adam",
                     learning_rate_init=0.01)
    _agree(here, ref, dtype)
    np.testing.assert_allclose(here.score(X, Y), ref.score(X, Y), rtol=RTOL[dtype])


@CONV
def test_multilabel_agrees_with_numpy(place, dtype):
    X, y = _data()
    Y = np.stack([y == 0, X[:, 0] > 0, y != 2], axis=1).astype(int)
    here, ref = _fit(MLPClassifier, place, dtype, X, Y)
    _agree(here, ref, dtype)
    np.testing.assert_array_equal(here.predict(X), ref.predict(X))


def test_divergence_keeps_finite_parameters(place, dtype):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    y = 1e4 * (X @ [1.0, 2.0, -1.0])
    name, device = place
    est = MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", momentum=0.0, dtype=dtype,
                       learning_rate_init=1.0, batch_size=8, max_iter=20, random_state=0,
                       backend=name, device=device)
    with pytest.raises(xpnet.DivergenceError, match="Training diverged at epoch 1"):
        est.fit(X, y)
    assert est.n_iter_ == 0
    assert all(np.isfinite(c).all() for c in est.coefs_ + est.intercepts_)
    assert np.isfinite(xpnet.to_numpy(est.predict(X))).all()


@CONV
def test_checkpoint_resume_bit_for_bit_on_the_device_and_onto_the_cpu(place, dtype, tmp_path):
    """6 epochs straight == 3 with a checkpoint + resume to 6 (same device, bit for bit); the
    same checkpoint resumed on NumPy continues within the cross-device tolerance."""
    X, y = _data()
    name, device = place
    kw = dict(hidden_layer_sizes=(8, 6), batch_size=16, random_state=0, dtype=dtype,
              dropout=0.2, solver="sgd", momentum=0.9, learning_rate_init=0.05)
    straight = MLPClassifier(**kw, max_iter=6, backend=name, device=device).fit(X, y)
    ckpt = tmp_path / "run.ckpt"
    MLPClassifier(**kw, max_iter=3, backend=name, device=device).fit(X, y, checkpoint=ckpt)
    cpu_ckpt = tmp_path / "cpu.ckpt"
    cpu_ckpt.write_bytes(ckpt.read_bytes())
    resumed = MLPClassifier(**kw, max_iter=6, backend=name, device=device)
    resumed.fit(X, y, checkpoint=ckpt, resume=True)
    for a, b in zip(resumed.coefs_ + resumed.intercepts_, straight.coefs_ + straight.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert resumed.loss_curve_ == straight.loss_curve_
    on_cpu = MLPClassifier(**kw, max_iter=6, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        on_cpu.fit(X, y, checkpoint=cpu_ckpt, resume=True)
    _agree(on_cpu, straight, dtype)


def test_model_file_and_pickle_load_onto_the_device(place, dtype, tmp_path):
    X, y = _data()
    name, device = place
    cpu = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0, dtype=dtype,
                        backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu.fit(X, y)
    cpu.save(tmp_path / "m.xpnet")
    back = xpnet.load(tmp_path / "m.xpnet", backend=name, device=device)
    be = xpnet.get_backend(name, device)
    assert back._net.backend == be
    Xd = be.asarray(X.astype(dtype))
    P = back.predict_proba(Xd)
    assert xpnet.backend_of(P) == be  # a device array in: a device array out
    np.testing.assert_allclose(xpnet.to_numpy(P), cpu.predict_proba(X), rtol=RTOL[dtype] * 1e-2)
    again = pickle.loads(pickle.dumps(back))  # unpickles onto the device it was on
    assert again._net.backend == be
    np.testing.assert_array_equal(xpnet.to_numpy(again.predict_proba(Xd)), xpnet.to_numpy(P))


def _pinned(staging) -> bool:
    """Whether the staging buffer is page-locked host memory (CUDA's own answer)."""
    if staging.backend.name == "torch":
        return bool(staging.tensor.is_pinned())
    import cupy

    return cupy.cuda.runtime.pointerGetAttributes(staging.host.ctypes.data).type == 1


def test_host_rows_go_up_through_one_pinned_buffer(place, dtype):
    """predict from host rows on a GPU: one page-locked staging buffer per model, made on the
    first call and reused; the predictions those of the same model on NumPy."""
    from xpnet.training import inference

    X, y = _data()
    here, ref = _fit(MLPClassifier, place, dtype, X, y)
    for _ in range(3):
        np.testing.assert_allclose(here.predict_proba(X), ref.predict_proba(X),
                                   rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-2)
    net = here._net
    if net.backend.on_host:  # torch on the CPU reads host rows in place: nothing staged
        assert net not in inference._STAGINGS
        return
    staging = inference.staging_for(net, net.backend)
    assert staging.allocations == 1 and _pinned(staging)


class _DeviceMemoryLimit:
    """Cap the device memory this process may take (CuPy's pool limit, torch's per-process
    fraction), so that a real device allocation fails on any GPU size; undone on exit."""

    def __init__(self, name: str, limit: int) -> None:
        self.name, self.limit = name, limit

    def __enter__(self):
        if self.name == "cupy":
            import cupy

            self.pool = cupy.get_default_memory_pool()
            self.pool.free_all_blocks()
            self.pool.set_limit(size=self.limit)
        else:
            import torch

            torch.cuda.empty_cache()
            total = torch.cuda.get_device_properties(0).total_memory
            torch.cuda.set_per_process_memory_fraction(self.limit / total)
        return self

    def __exit__(self, *exc):
        if self.name == "cupy":
            self.pool.set_limit(size=0)  # 0: no limit
        else:
            import torch

            torch.cuda.set_per_process_memory_fraction(1.0)
            torch.cuda.empty_cache()


def test_out_of_memory_is_device_memory_error_and_keeps_the_model(place):
    name, device = place
    if device == "cpu:0":
        pytest.skip("host memory: tests/test_estimators.py covers NumPy's MemoryError")
    X, y = _data()
    est = MLPClassifier(hidden_layer_sizes=(4096, 4096), batch_size=32, max_iter=1,
                        dtype="float64", backend=name, device=device)
    with _DeviceMemoryLimit(name, 64 * 2**20):  # W[2] alone is 128 MiB
        with pytest.raises(xpnet.DeviceMemoryError, match=r"out of memory on .*batch_size=32"):
            est.fit(X, y)
    assert not hasattr(est, "n_features_in_")
    small = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0, backend=name,
                          device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small.fit(X, y)  # the device is usable afterwards
    assert small.n_iter_ == 2


@pytest.mark.gpu
def test_cupyx_sparse_input_equals_dense():
    """A cupyx CSR matrix (built on the device from a CuPy array) is taken like SciPy's: the
    same model as the dense X."""
    ok, reason = usable("cupy")
    if not ok:
        pytest.skip(f"cupy not usable: {reason}")
    import cupy
    import cupyx.scipy.sparse as cusp

    X, y = _data()
    X[np.abs(X) < 0.8] = 0.0
    kw = dict(hidden_layer_sizes=(6,), max_iter=3, random_state=0, dtype="float64",
              backend="cupy", device=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = MLPClassifier(**kw).fit(cusp.csr_matrix(cupy.asarray(X)), y)
        b = MLPClassifier(**kw).fit(X, y)
    for p, q in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(p, q)
    P = a.predict_proba(cusp.csr_matrix(cupy.asarray(X)))
    np.testing.assert_allclose(P, b.predict_proba(X), rtol=1e-12)
