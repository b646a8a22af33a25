"""Predictions over row blocks (xpnet.training.inference): the same results as one forward pass
over all of X, with memory bounded by one block's activations.

Chunked vs whole: each example's column goes through the same equations, but a matrix product
on a block of rows may round differently in the last bit from the whole-matrix product (the
BLAS picks kernels and summation splits by shape: seen with OpenBLAS and torch's CPU BLAS for
some block sizes), so blocks smaller than n are compared with rtol 1e-12 (float64) / 1e-6
(float32); labels and a single block (chunk_rows >= n) are compared bit for bit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

import xpnet
from xpnet import MLPClassifier, MLPRegressor
from xpnet.core.forward import forward
from xpnet.training.inference import chunk_rows_for, predict_in_chunks

from conftest import assert_close, assert_same_place

N = 23          # rows; blocks of 5 do not divide it
N_FEATURES = 3
TOL = {"float32": (1e-6, 1e-6), "float64": (1e-12, 1e-12)}  # (rtol, atol)


def _problem(kind: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, N_FEATURES))
    if kind == "binary":
        y = np.arange(N) % 2
    elif kind == "multiclass":
        y = np.arange(N) % 3
    elif kind == "multilabel":
        y = (rng.random((N, 3)) < 0.5).astype(np.int64)
        y[0] = 1
        y[1] = 0
    elif kind == "regression":
        y = rng.standard_normal(N)
    else:  # regression2: two outputs
        y = rng.standard_normal((N, 2))
    return X, y


def _fit(kind: str, backend: xpnet.Backend, dtype: str):
    X, y = _problem(kind)
    cls = MLPRegressor if kind.startswith("regression") else MLPClassifier
    est = cls(hidden_layer_sizes=(4, 3), max_iter=3, backend=backend.name, dtype=dtype,
              random_state=0, learning_rate_init=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    return est, X, y


def _how(backend):
    """forward's kernels= as predict_in_chunks passes it: the backend's own where it has them."""
    kernels = getattr(backend, "kernels", None)
    return {} if kernels is None else {"kernels": kernels}


def _whole_pass(est, X):
    """What predict / predict_proba returned before chunking: one forward over all of X^T,
    then the same post-processing (the old estimators/base.py and mlp.py code)."""
    net = est._net
    xp = net.backend.xp
    Xd = net.backend.asarray(np.ascontiguousarray(X, dtype=est._dtype))
    with np.errstate(over="ignore", invalid="ignore"):
        AL, _ = forward(Xd.T, net.W, net.b, net.g, xp=xp, **_how(net.backend))
    if isinstance(est, MLPRegressor):
        return {"predict": AL[0, :] if AL.shape[0] == 1 else xp.permute_dims(AL, (1, 0))}
    kind = est._target_kind
    if kind == "binary":
        p = AL[0, :]
        proba = xp.stack([1.0 - p, p], axis=1)
    else:
        proba = xp.permute_dims(AL, (1, 0))
    if kind == "multilabel":
        labels = xp.permute_dims(xp.astype(AL > 0.5, xp.int64), (1, 0))
    else:
        idx = xp.argmax(AL, axis=0) if kind == "multiclass" else xp.astype(AL[0, :] > 0.5,
                                                                              xp.int64)
        labels = xp.take(net.backend.asarray(est.classes_), idx, axis=0)
    return {"predict": labels, "predict_proba": proba}


def _host(a):
    return np.asarray(xpnet.to_numpy(a))


KINDS = ["binary", "multiclass", "multilabel", "regression", "regression2"]


@pytest.mark.parametrize("kind", KINDS)
def test_chunked_equals_whole_pass(backend, dtype, kind):
    est, X, y = _fit(kind, backend, dtype)
    ref = _whole_pass(est, X)
    rtol, atol = TOL[dtype]
    native_X = backend.asarray(np.asarray(X, dtype=dtype)) if backend.name != "numpy" else None
    labels = not kind.startswith("regression")  # predict: class labels / 0-1 indicator
    scores = {}
    for rows in (5, 1, N, N + 7, None):
        est._chunk_rows = rows
        exact = rows is None or rows >= N  # one block: the very same operations
        for method, expected in ref.items():
            got = getattr(est, method)(X)
            assert isinstance(got, np.ndarray)
            assert got.shape == tuple(expected.shape), (method, rows)
            want = _host(expected)
            if exact or method == "predict" and labels:
                np.testing.assert_array_equal(got, want, err_msg=f"{method} rows={rows}")
            else:
                np.testing.assert_allclose(got, want, rtol=rtol, atol=atol,
                                           err_msg=f"{method} rows={rows}")
            if native_X is not None:  # a backend array in: a backend array out, same values
                got_native = getattr(est, method)(native_X)
                assert_same_place(got_native, expected)
                if exact or method == "predict" and labels:
                    np.testing.assert_array_equal(_host(got_native), want)
                else:
                    assert_close(got_native, expected, rtol=rtol, atol=atol)
        if "predict_proba" in ref:
            with np.errstate(divide="ignore"):
                log_ref = np.log(_host(ref["predict_proba"]))
            log_got = est.predict_log_proba(X)
            if exact:
                np.testing.assert_array_equal(log_got, log_ref)
            else:
                np.testing.assert_allclose(log_got, log_ref, rtol=rtol, atol=10 * atol)
        scores[rows] = est.score(X, y)
    if not labels:
        for s in scores.values():
            assert s == pytest.approx(scores[None], rel=1e-4 if dtype == "float32" else 1e-10)
    else:  # accuracy from the same labels
        assert len(set(scores.values())) == 1, scores


def test_predict_in_chunks_blocks_and_output(backend):
    """ceil(n / rows) blocks, each a view of X's rows, results written in place, in order."""
    xp = backend.xp
    rng = np.random.default_rng(3)
    W = {1: backend.asarray(rng.standard_normal((4, 3))),
         2: backend.asarray(rng.standard_normal((2, 4)))}
    b = {1: backend.asarray(rng.standard_normal((4, 1))),
         2: backend.asarray(rng.standard_normal((2, 1)))}
    g = ["tanh", "softmax"]
    X = backend.asarray(rng.standard_normal((N, 3)))
    whole, _ = forward(X.T, W, b, g, xp=xp, **_how(backend))
    widths = []

    def finish(AL):
        widths.append(AL.shape[1])
        return xp.permute_dims(AL, (1, 0))

    out = predict_in_chunks(W, b, g, backend, X, finish, chunk_rows=5)
    assert widths == [5, 5, 5, 5, 3]
    assert_close(out, xp.permute_dims(whole, (1, 0)))
    idx = predict_in_chunks(W, b, g, backend, X, lambda AL: xp.argmax(AL, axis=0), chunk_rows=4)
    assert tuple(idx.shape) == (N,)
    np.testing.assert_array_equal(_host(idx), np.argmax(_host(whole), axis=0))
    widths.clear()
    one = predict_in_chunks(W, b, g, backend, X, finish, chunk_rows=10 * N)
    assert widths == [N]
    np.testing.assert_array_equal(_host(one), _host(whole).T)
    with pytest.raises(ValueError, match="chunk_rows"):
        predict_in_chunks(W, b, g, backend, X, finish, chunk_rows=0)


def test_chunk_rows_for_budget():
    rows = chunk_rows_for([256, 128, 10], 4, 64 * 2**20)
    assert rows == 64 * 2**20 // (3 * 4 * (256 + 128 + 10))
    assert chunk_rows_for([256, 128, 10], 8, 1) == 1  # at least one row


_MEMORY_SCRIPT = r"""
import json, tracemalloc, warnings
import numpy as np
from xpnet import MLPClassifier
from xpnet.core.forward import forward

rng = np.random.default_rng(0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    clf = MLPClassifier((256, 128), max_iter=1, backend="numpy", random_state=0).fit(
        rng.standard_normal((300, 64), dtype=np.float32), np.arange(300) % 10)
X = rng.standard_normal((200_000, 64), dtype=np.float32)
clf.predict_proba(X[:10])  # imports and first-call allocations out of the way
tracemalloc.start()
base = tracemalloc.get_traced_memory()[0]
P = clf.predict_proba(X)
chunked = tracemalloc.get_traced_memory()[1] - base - P.nbytes
del P
tracemalloc.reset_peak()
base = tracemalloc.get_traced_memory()[0]
net = clf._net
how = {"kernels": net.backend.kernels} if hasattr(net.backend, "kernels") else {}
AL, cache = forward(X.T, net.W, net.b, net.g, xp=net.backend.xp, **how)
whole = tracemalloc.get_traced_memory()[1] - base - AL.nbytes
print(json.dumps({"chunked": chunked, "whole": whole}))
"""


def test_predict_memory_is_bounded():
    """predict_proba on 200,000 x 64 float32 through (256, 128): the peak of NumPy's
    allocations (tracemalloc, beyond X and the output) stays under 128 MiB in blocks, where the
    one-pass forward of the same X needs ~600 MiB."""
    bound = 128 * 2**20
    run = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["chunked"] < bound, got
    assert got["whole"] > 3 * bound, got  # the bound means something: one pass exceeds it


# --------------------------------------------------------------------------- staged host rows
# Host rows for a device go up a block at a time through the model's staging buffer. The
# places: array-api-strict's fake device1 (a device, on every machine), torch on the CPU with a
# staging buffer of its own (the portable one), and the two CUDA backends (pinned memory, a copy
# stream). A staged block and the same block sliced from X on the device are the same values
# in the same layout: equal bit for bit on the CPU; on CUDA the device slot's address differs
# from X's, which may change cuBLAS's kernel, so the chunk-vs-whole tolerance TOL applies.
STAGED = [pytest.param(("array_api_strict", "device1"), id="strict-device1"),
          pytest.param(("torch", "cpu"), id="torch-cpu"),
          pytest.param(("cupy", 0), id="cupy", marks=pytest.mark.gpu),
          pytest.param(("torch", "cuda"), id="torch-cuda", marks=pytest.mark.gpu)]


@pytest.fixture(params=STAGED)
def staged(request):
    name, device = request.param
    ok, reason = xpnet.available_backends()[name]
    if not ok:
        pytest.skip(f"{name} not usable: {reason}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            pytest.skip("torch sees no CUDA device")
    return xpnet.get_backend(name, device)


class _Recorded:
    """A staging buffer's sessions, with the (slot, rows) of every block they send."""

    def __init__(self, staging):
        self.staging, self.sent = staging, []
        make = staging._session

        def session(host):
            s = make(host)
            send = s.send

            def recorded(slot, rows):
                self.sent.append((slot, rows))
                return send(slot, rows)

            s.send = recorded
            return s

        staging._session = session


def _network(backend, dtype, dims=(N_FEATURES, 4, 3, 2), seed=0):
    W, b = xpnet.initialize_parameters(list(dims), rng=seed, dtype=dtype, backend=backend)
    return W, b, ["relu", "tanh", "softmax"]


def _exact(backend):
    return backend.name == "array_api_strict" or backend.device_spec == "cpu"


@pytest.mark.parametrize("rows", [5, 1, N, N + 7, None])
def test_staged_rows_equal_the_blocks_of_X_on_the_device(staged, dtype, rows):
    """Float64 host rows into a ``dtype`` model: cast as they are staged, the same A[L] as the
    blocks of X cast and moved whole; blocks of ``rows`` rows, slots taken in turn."""
    from xpnet.training.inference import predict_staged

    be, xp = staged, staged.xp
    W, b, g = _network(be, dtype)
    X = np.random.default_rng(1).standard_normal((N, N_FEATURES))
    finish = lambda AL: xp.permute_dims(AL, (1, 0))  # noqa: E731
    staging = be.staging()
    spy = _Recorded(staging)
    with xpnet.backends.device_context(be):
        out, has_nan, has_inf = predict_staged(W, b, g, be, X, finish, staging=staging,
                                               dtype=dtype, chunk_rows=rows)
        want = predict_in_chunks(W, b, g, be, be.asarray(X.astype(dtype)), finish,
                                 chunk_rows=rows)
    assert not bool(has_nan) and not bool(has_inf)
    step = min(rows or N, N)
    assert spy.sent == [(k % 2, min(step, N - i)) for k, i in enumerate(range(0, N, step))]
    if _exact(be):
        assert_same_place(out, want)
        np.testing.assert_array_equal(_host(out), _host(want))
    else:
        assert_close(out, want, *TOL[dtype])


def test_the_staging_buffer_is_made_once_and_reused(staged):
    """One buffer for every call that fits in it; a bigger call grows it once (doubling)."""
    from xpnet.training.inference import predict_staged

    be, xp = staged, staged.xp
    W, b, g = _network(be, "float32")
    rng = np.random.default_rng(2)
    staging = be.staging()
    finish = lambda AL: xp.argmax(AL, axis=0)  # noqa: E731
    seen = []
    with xpnet.backends.device_context(be):
        for n, rows in ((N, 5), (10, 5), (N, None), (3, None), (40, None), (N, 7)):
            X = rng.standard_normal((n, N_FEATURES)).astype(np.float32)
            out, _, _ = predict_staged(W, b, g, be, X, finish, staging=staging,
                                       dtype="float32", chunk_rows=rows)
            assert tuple(out.shape) == (n,)
            seen.append((staging.allocations, staging.host.shape))
    assert seen[:4] == [(1, (2, 5, N_FEATURES)), (1, (2, 5, N_FEATURES)),
                        (2, (2, N, N_FEATURES)), (2, (2, N, N_FEATURES))]
    assert seen[4:] == [(3, (2, 46, N_FEATURES)), (3, (2, 46, N_FEATURES))]


def test_staged_rows_are_checked_on_the_device(staged):
    """NaN, infinity, and a float64 too large for float32, found in the staged blocks."""
    from xpnet.training.inference import predict_staged

    be, xp = staged, staged.xp
    W, b, g = _network(be, "float32")
    finish = lambda AL: AL[0, :]  # noqa: E731
    for value, nan, inf in ((np.nan, True, False), (np.inf, False, True),
                            (1e300, False, True), (0.5, False, False)):
        X = np.random.default_rng(3).standard_normal((N, N_FEATURES))
        X[N - 2, 1] = value  # in the last block
        with xpnet.backends.device_context(be):
            _, has_nan, has_inf = predict_staged(W, b, g, be, X, finish, staging=be.staging(),
                                                 dtype="float32", chunk_rows=5)
        assert (bool(has_nan), bool(has_inf)) == (nan, inf), value


def test_estimators_stage_host_rows_for_a_device(tmp_path):
    """On array-api-strict's device1, predict from host rows (a list, float64, a memory map)
    goes through the model's one staging buffer and equals the model on the CPU device;
    device rows stay on the device; NaN / infinity raise as check_X does."""
    from xpnet.training.inference import staging_for

    if not xpnet.available_backends()["array_api_strict"][0]:
        pytest.skip("array_api_strict not installed")
    X, y = _problem("multiclass")
    kw = dict(hidden_layer_sizes=(4, 3), max_iter=3, random_state=0, learning_rate_init=0.05,
              backend="array_api_strict", dtype="float32")  # a GPU model's dtype: the staging
    with warnings.catch_warnings():                         # cast can overflow (1e300)
        warnings.simplefilter("ignore")
        dev = MLPClassifier(**kw, device="device1").fit(X, y)
        cpu = MLPClassifier(**kw).fit(X, y)
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    for rows in (X, X.tolist(), mapped):
        np.testing.assert_array_equal(dev.predict_proba(rows), cpu.predict_proba(X))
        np.testing.assert_array_equal(dev.predict(rows), cpu.predict(X))
    net = dev._net
    assert staging_for(net, net.backend).allocations == 1
    Xd = net.backend.asarray(X.astype(dev._dtype))  # rows of the model's dtype
    P = dev.predict_proba(Xd)
    assert xpnet.backend_of(P) == net.backend
    np.testing.assert_array_equal(_host(P), cpu.predict_proba(X))
    for value, what in ((np.nan, "NaN"), (np.inf, "infinity"), (1e300, "infinity")):
        bad = X.copy()
        bad[5, 0] = value
        with pytest.raises(ValueError, match=f"Input X contains {what}"):
            dev.predict(bad)
    with pytest.raises(ValueError, match="X has 2 features, but MLPClassifier is expecting 3"):
        dev.predict(X[:, :2])
