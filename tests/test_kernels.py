"""Every kernel a backend overrides, against the portable reference (xpnet.core.kernels.Kernels).

The overrides are found, not listed: ``vars(type(K))`` of each backend's kernels class, walked
up to (not including) the portable class. Each is called on the same host-seeded inputs as the
portable kernel, with and without the backend's workspace, and must agree to 1e-12 (float64)
or 1e-5 (float32) — so a new override is tested without anyone writing a test.
"""

from __future__ import annotations

import importlib
import inspect
from functools import partial

import numpy as np
import pytest
from conftest import SELECTED_BACKENDS, assert_close, usable

import xpnet
from xpnet.core.kernels import Kernels
from xpnet.core.optim import FAST_PATHS, PORTABLE_UPDATES, update_function
from xpnet.core.params import ParamBuffer

PORTABLE = Kernels()
ACTS = ("relu", "leaky_relu", "sigmoid", "tanh", "identity")
OUTS = ("softmax", "sigmoid", "identity", "exp")


def overridden(K) -> list[str]:
    """Names of the public kernel methods K's class (or K, a class) defines in place of the
    portable ones."""
    names = set()
    for cls in (K if isinstance(K, type) else type(K)).__mro__:
        if cls is Kernels:
            break
        names |= {n for n, v in vars(cls).items() if callable(v) and not n.startswith("_")}
    return sorted(n for n in names if hasattr(Kernels, n))


def test_the_torch_and_numpy_kernels_override_the_hot_path():
    assert {"linear", "linear_activation", "weight_grads", "back_propagate",
            "activation_backward", "output_loss_delta"} <= set(
                overridden(xpnet.get_backend("numpy").kernels))
    if xpnet.available_backends()["torch"][0]:
        K = xpnet.get_backend("torch").kernels
        assert {"accumulate", "linear", "clip_by_global_norm"} <= set(overridden(K))
        assert all(update_function(u, K, None) is not None for u in OPTIMIZER_UPDATES)
    assert update_function("sgd", xpnet.get_backend("numpy").kernels, None) is not None


def kernels_under_test(backend) -> list:
    """The backend's kernels, and on CuPy also the fused CUDA kernels (off by default until
    verified on a GPU, so checked here whatever the default is)."""
    found = [backend.kernels]
    if backend.name == "cupy":
        from xpnet.backends.cupy_kernels import CupyKernels

        found.append(CupyKernels())
    return found


def _host(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape)


def _cases(name: str):
    """(args as host arrays / values, kwargs) for kernel ``name``; None: not array work."""
    n_prev, n, m = 5, 4, 6
    W, A, b = _host(1, n, n_prev), _host(2, n_prev, m), _host(3, n, 1)
    dZ, dA, Z = _host(4, n, m), _host(5, n, m), _host(6, n, m)
    onehot = np.eye(n)[:, np.random.default_rng(7).integers(0, n, m)]
    if name == "linear":
        return [((W, A, b), {})]
    if name == "linear_activation":
        return [((W, A, b, g), {}) for g in (*ACTS, "softmax")]
    if name == "output_loss_delta":
        ys = {"softmax": onehot, "sigmoid": (_host(8, n, m) > 0) * 1.0, "identity": _host(9, n, m),
              "exp": np.floor(np.abs(_host(10, n, m)) * 2)}
        return [((Z, ys[g], g), {}) for g in OUTS]
    if name == "weighted_loss_delta":
        w = np.random.default_rng(19).uniform(0.1, 2.0, (1, m))
        ys = {"softmax": onehot, "sigmoid": (_host(8, n, m) > 0) * 1.0, "identity": _host(9, n, m)}
        return [((Z, ys[g], g, w / w.sum()), {}) for g in ys]
    if name == "output_delta":
        return [((np.abs(Z) / 3, onehot), {})]
    if name == "cost":
        return [((Z, onehot, "softmax"), {})]
    if name == "weight_grads":
        return [((dZ, A), {})]
    if name == "back_propagate":
        return [((W, _host(11, n, m)), {})]
    if name == "activation_backward":
        out = []
        for g in ACTS:
            G = xpnet.ACTIVATIONS[g](Z, xp=np)
            out.append(((dA, Z, G, g), {}))
        return out
    if name in ("apply_mask", "mask_gradient"):
        D = (np.random.default_rng(12).random((n, m)) < 0.7) / 0.7
        return [((dA, D), {})]
    if name == "dropout_mask":
        return [((0.7, (123, 4567), (n, m)), {}), ((0.25, (2**32 - 1, 0), (3, 50)), {})]
    if name == "take_rows":
        return [((_host(13, 9, 3), np.array([4, 0, 8, 1])), {"role": "X"})]
    if name == "sum_of_squares":
        return [(([_host(14, 30)],), {}), (([_host(15, 3, 2), _host(16, 4)],), {})]
    if name == "all_finite":
        bad = _host(17, 6)
        bad[3] = np.inf
        return [(([_host(18, 6)],), {}), (([bad],), {})]
    return None


def _move(backend, dtype, value):
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "iu":
            return backend.asarray(value)
        return backend.asarray(value.astype(dtype))
    if isinstance(value, list):
        return [_move(backend, dtype, v) for v in value]
    return value


def _call(K, name, backend, dtype, args, kwargs, ws):
    xp = backend.xp
    moved = [_move(backend, dtype, a) for a in args]
    fn = getattr(K, name)
    params = inspect.signature(fn).parameters
    kw = dict(kwargs, xp=xp)
    if name == "dropout_mask":
        moved.append(backend.dtype(dtype))
        kw["device"] = backend.device
    if "ws" in params:
        kw["ws"] = ws
    if "l" in params:
        kw["l"] = 1
    return fn(*moved, **kw)


def _compare(got, want, dtype, what):
    if isinstance(got, tuple):
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _compare(g, w, dtype, f"{what}[{i}]")
        return
    rtol = 1e-12 if dtype == "float64" else 1e-5
    atol = 1e-13 if dtype == "float64" else 1e-6
    if str(getattr(got, "dtype", "")).endswith("bool"):
        assert bool(got) == bool(want), what
        return
    assert_close(got, want, rtol=rtol, atol=atol, err_msg=what)


@pytest.mark.parametrize("workspace", [False, True], ids=["fresh", "workspace"])
def test_every_overridden_array_kernel_matches_the_portable_one(backend, dtype, workspace):
    for K in kernels_under_test(backend):
        names = overridden(K)
        checked = 0
        for name in names:
            cases = _cases(name)
            if cases is None:
                continue
            for args, kwargs in cases:
                ws = K.workspace() if workspace else None
                got = _call(K, name, backend, dtype, args, kwargs, ws)
                want = _call(PORTABLE, name, backend, dtype, args, kwargs, None)
                _compare(got, want, dtype,
                         f"{type(K).__name__}.{name}{tuple(map(str, args[3:4]))}")
                checked += 1
        if names:
            assert checked > 0


UPDATES = ("sgd", "momentum-nesterov", "momentum", "adam", "axpy", "clip_by_global_norm",
           "accumulate")
OPTIMIZER_UPDATES = ("sgd", "momentum", "adam")  # registered fast paths (xpnet.core.optim)
# Each backend's kernel classes, by module (imported only to list their overrides; CuPy's
# import without a GPU). test_the_kernel_classes_are_the_backends_own keeps this list honest.
KERNEL_CLASSES = {"numpy": ("xpnet.backends.numpy_kernels", "NumpyKernels"),
                  "torch": ("xpnet.backends.torch_kernels", "TorchKernels"),
                  "cupy": ("xpnet.backends.cupy_kernels", "CupyKernels"),
                  "array_api_strict": None}


def _kernel_class(name):
    """The kernels class of backend ``name`` (None: the portable one; or its library is not
    installed here, when it has no tests to run)."""
    where = KERNEL_CLASSES[name]
    if where is None:
        return None
    try:
        return getattr(importlib.import_module(where[0]), where[1])
    except ImportError:
        return None


def _has_fast_path(cls, base) -> bool:
    """Whether kernels of class ``cls`` run their own ``base``: a registered optimizer fast
    path, or an overridden whole-buffer kernel."""
    if base in OPTIMIZER_UPDATES:
        return any((base, c) in FAST_PATHS for c in cls.__mro__ if c is not Kernels)
    return base in overridden(cls)


def _fast_paths(backend, base):
    """[(what, update)] under test for ``base`` on this backend: the optimizers' registered
    fast paths, or the kernels that override a whole-buffer kernel."""
    if base in OPTIMIZER_UPDATES:
        return [(type(K).__name__, partial(fn, kernels=K)) for K in kernels_under_test(backend)
                if (fn := update_function(base, K, None)) is not None]
    return [(type(K).__name__, getattr(K, base)) for K in kernels_under_test(backend)
            if base in overridden(K)]


def _update_cases():
    """(backend, update, flat, scalar) for each update a backend's kernels run their own way:
    the pairs that exist, so no case is there only to skip (ci/gpu fails a skipped gpu test).
    ``scalar``: the per-step number as a Python float (the functional API) or a 0-d device
    array (the step table's); clipping's max_norm is a constant of the fit, host only."""
    cases = []
    for name in SELECTED_BACKENDS:
        cls = _kernel_class(name)
        for update in UPDATES:
            base = update.split("-")[0]
            if cls is None or not _has_fast_path(cls, base):
                continue
            for flat in (True, False):  # every backend with overrides has views
                for scalar in ("host",) if base == "clip_by_global_norm" else ("host", "device"):
                    cases.append(pytest.param(
                        name, update, flat, scalar,
                        id=f"{name}-{update}-{'flat' if flat else 'arrays'}-{scalar}",
                        marks=[pytest.mark.gpu] if name == "cupy" else []))
    return cases


def test_the_kernel_classes_are_the_backends_own(backend):
    """KERNEL_CLASSES names the class whose overrides the backend runs (CuPy: when switched
    on; its portable default has none)."""
    cls = _kernel_class(backend.name)
    if cls is None:
        assert type(backend.kernels) is Kernels
        return
    assert type(backend.kernels) in (cls, Kernels) if backend.name == "cupy" else (
        type(backend.kernels) is cls)
    assert any(type(K) is cls for K in kernels_under_test(backend))
    assert backend.supports_views  # _update_cases runs flat buffers for them


@pytest.mark.parametrize("name, update, flat, scalar", _update_cases())
def test_every_overridden_update_matches_the_portable_one(name, update, flat, scalar, dtype):
    """The optimizers' fast paths and the whole-buffer kernels (in place) on flat buffers and
    on separate arrays, against the portable update."""
    ok, reason = usable(name)
    if not ok:
        pytest.skip(f"backend {name} not usable: {reason}")
    backend = xpnet.get_backend(name)
    base = update.split("-")[0]
    found = _fast_paths(backend, base)
    assert found, f"no kernels of {backend} run their own {base}"
    for what, fn in found:
        _check_update(fn, backend, dtype, update, base, flat, scalar)


def _check_update(fast, backend, dtype, name, base, flat, scalar):
    xp = backend.xp
    shapes = [(3, 4), (2, 3), (3, 1), (2, 1)]

    def buffers(seed):
        buf = ParamBuffer.zeros(shapes, xp=xp, dtype=backend.dtype(dtype), device=backend.device,
                                flat=flat)
        buf.assign([backend.asarray((_host(seed + i, *s) * 0.5).astype(dtype))
                    for i, s in enumerate(shapes)])
        return buf

    def number(x):
        return x if scalar == "host" else backend.asarray(np.asarray(x, dtype=dtype))

    portable = PORTABLE_UPDATES.get(base) or getattr(PORTABLE, base)
    results = []
    for fn in (fast, portable):
        P, G, S1, S2 = buffers(20), buffers(30), buffers(40), buffers(50)
        S2.assign([xp.abs(a) for a in S2.arrays])  # Adam's v >= 0
        seg = lambda B: B.segments  # noqa: E731
        out = None
        for _ in range(3):
            if base == "sgd":
                fn(seg(P), seg(G), number(0.1), xp=xp)
            elif base == "momentum":
                fn(seg(P), seg(G), seg(S1), number(0.1), 0.9, name.endswith("nesterov"), xp=xp)
            elif base == "adam":
                fn(seg(P), seg(G), seg(S1), seg(S2), number(0.01), 0.9, 0.999, 1e-8, xp=xp)
            elif base == "axpy":
                fn(seg(G), seg(P), number(0.3), xp=xp)
            elif base == "clip_by_global_norm":
                out = fn(seg(G), 0.5, xp=xp)
            elif base == "accumulate":
                out = fn(out, xp.sum(P.arrays[0]), number(0.5), xp=xp)
        results.append((P, G, S1, S2, out))
    (P, G, S1, S2, out), (Pr, Gr, S1r, S2r, outr) = results
    for a, b in zip(P.arrays + G.arrays + S1.arrays + S2.arrays,
                    Pr.arrays + Gr.arrays + S1r.arrays + S2r.arrays):
        _compare(a, b, dtype, name)
    if out is not None:
        _compare(out, outr, dtype, name)


@pytest.mark.parametrize("layout", ["C", "transposed"])
def test_weight_grads_write_into_the_given_outputs(backend, dtype, layout):
    """dW, db land in ``out`` (a flat buffer's C-ordered view, or a transposed view) and are
    the portable kernel's values; the returned arrays are those outputs."""
    if not backend.supports_views:
        pytest.skip("no views on this backend: outputs are fresh arrays")
    xp = backend.xp
    dZ = backend.asarray(_host(4, 4, 6).astype(dtype))
    A = backend.asarray(_host(2, 5, 6).astype(dtype))
    want_dW, want_db = PORTABLE.weight_grads(dZ, A, xp=xp, ws=None, l=1)
    for K in kernels_under_test(backend):
        dW = xp.zeros((4, 5), dtype=dZ.dtype) if layout == "C" else \
            xp.permute_dims(xp.zeros((5, 4), dtype=dZ.dtype), (1, 0))
        db = xp.zeros((4, 1), dtype=dZ.dtype)
        got_dW, got_db = K.weight_grads(dZ, A, xp=xp, ws=K.workspace(), l=1, out=(dW, db))
        assert got_dW is dW and got_db is db, type(K).__name__
        _compare(dW, want_dW, dtype, f"{type(K).__name__}.weight_grads dW ({layout})")
        _compare(db, want_db, dtype, f"{type(K).__name__}.weight_grads db")


def test_kernels_parameter_chooses_the_steps_kernels():
    """kernels="portable" trains with the reference kernels, to the backend's own results
    (float64, 1e-10); "fused" is refused where the backend has none, before the estimator
    changes, naming what to use."""
    import warnings

    from xpnet.training.step import step_kernels

    be = xpnet.get_backend("numpy")
    assert step_kernels(be, "auto") is be.kernels
    assert type(step_kernels(be, "portable")) is Kernels
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    fitted = {}
    for choice in ("auto", "portable"):
        est = xpnet.MLPClassifier(hidden_layer_sizes=(7,), max_iter=5, batch_size=16,
                                  random_state=0, backend="numpy", dtype="float64",
                                  alpha=0.01, kernels=choice)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted[choice] = est.fit(X, y)
    for a, b in zip(fitted["auto"].coefs_, fitted["portable"].coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    est = xpnet.MLPClassifier(hidden_layer_sizes=(7,), max_iter=5, backend="numpy",
                              kernels="fused")
    with pytest.raises(ValueError, match="kernels='fused': numpy has no fused kernels"):
        est.fit(X, y)
    assert not hasattr(est, "coefs_")
    with pytest.raises(ValueError, match="unknown kernels 'fast'; expected one of auto"):
        xpnet.MLPClassifier(kernels="fast").fit(X, y)


def test_the_chosen_kernels_run_the_whole_step_update_included():
    """kernels="portable" on torch: no torch fast path anywhere in the step — neither the
    layer kernels (addmm) nor the optimizer's registered update (addcmul_); "auto" runs both."""
    import warnings

    if not xpnet.available_backends()["torch"][0]:
        pytest.skip("torch is not installed")
    from test_capture_contract import Recorder, recording

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    seen = {}
    for choice in ("auto", "portable"):
        est = xpnet.MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, batch_size=16,
                                  solver="sgd", momentum=0.0, random_state=0, backend="torch",
                                  dtype="float64", kernels=choice)
        rec = Recorder()
        with warnings.catch_warnings(), recording(rec, []):
            warnings.simplefilter("ignore")
            est.fit(X, y)
        seen[choice] = {c[0] for c in rec.calls}
    assert {"aten.addmm.out", "aten.addcmul_.default"} <= seen["auto"]
    assert not {"aten.addmm.out", "aten.addmm.default", "aten.addcmul_.default"} & seen["portable"]
