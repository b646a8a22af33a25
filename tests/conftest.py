"""Shared test fixtures and helpers for xpnet.

Fixtures
--------
backend : xpnet.Backend
    Parametrized over the backends named in ``BACKEND_NAMES`` (numpy, array_api_strict, torch,
    cupy), test ids ``[numpy]``, ``[array_api_strict]``, ``[torch]``, ``[cupy]``. A library that
    is not installed here SKIPS (with the dispatcher's reason); CuPy skips without a usable CUDA
    device. The cupy parameter also carries the ``gpu`` marker, so ``pytest -m gpu`` runs every
    backend-parametrized test on CuPy. The environment variable ``XPNET_TEST_BACKENDS``
    (comma list, e.g. ``numpy,torch``) picks a subset.
xp : the array namespace of ``backend`` (``backend.xp``).
dtype : ``"float32"`` / ``"float64"``, parametrized (ids ``[float32]``, ``[float64]``).

Helpers (``from conftest import ...``)
--------------------------------------
assert_close(actual, expected, rtol=None, atol=0.0)
    Checks namespace (backend), shape, dtype and device first, then values (NumPy's
    ``assert_allclose`` on host copies). ``expected`` must be an array of the *same* backend:
    move references with ``backend.asarray(np_array, dtype)``. So a stray NumPy call inside an
    equation fails on the torch or strict backend instead of passing silently.
assert_same_place(x, like) : namespace, dtype and device checks only.
usable(name) -> (bool, reason) : whether a backend runs here.
random_network(layer_dims, g, ...) : host float64 X, Y, W, b for a small network (NumPy).
blobs(n, d, k, seed, spread) : k Gaussian blobs, X (n, d) and labels y (n,), for the estimators.
to_backend(backend, tree, dtype) : dicts / arrays moved to a backend.
gd_run(backend, dtype, ...) : n steps of gradient descent from a seed on the same batches.

Markers: ``gpu`` tests skip automatically unless CuPy has a usable CUDA device or torch sees
CUDA. With ``XPNET_REQUIRE_GPU=1`` (ci/gpu on a GPU machine) a ``gpu`` test that skips, for
any reason, FAILS instead, so a broken CuPy or torch-CUDA install cannot pass by skipping;
only ``multi_gpu`` tests may skip there, and only with fewer than two devices. array-api-strict is pinned to standard 2024.12 by the dispatcher (asserted in
test_backend.py).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Mapping, Sequence

import numpy as np
import pytest

import xpnet

BACKEND_NAMES = ("numpy", "array_api_strict", "torch", "cupy")
ENV_VAR = "XPNET_TEST_BACKENDS"


def _requested_backends() -> tuple[str, ...]:
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return BACKEND_NAMES
    return tuple(n.strip() for n in raw.split(",") if n.strip())


REQUESTED_BACKENDS = _requested_backends()
SELECTED_BACKENDS = tuple(n for n in REQUESTED_BACKENDS if n in BACKEND_NAMES)


def pytest_configure(config: pytest.Config) -> None:
    bad = [n for n in REQUESTED_BACKENDS if n not in BACKEND_NAMES]
    if bad:
        raise pytest.UsageError(f"{ENV_VAR} names unknown backend(s) {', '.join(bad)}; "
                                f"expected a comma list of {', '.join(BACKEND_NAMES)}")


def usable(name: str) -> tuple[bool, str]:
    """(usable, reason) for a backend here, from the dispatcher's detection."""
    return xpnet.available_backends()[name]


@lru_cache(maxsize=None)
def gpu_usable() -> tuple[bool, str]:
    """Whether some CUDA device is usable: CuPy's, or torch's."""
    ok, reason = usable("cupy")
    if ok:
        return True, reason
    torch_ok, _ = usable("torch")
    if torch_ok:
        import torch

        if torch.cuda.is_available():
            return True, f"torch sees {torch.cuda.device_count()} CUDA device(s)"
    return False, f"no usable CUDA device ({reason}; torch sees no CUDA device)"


REQUIRE_GPU = os.environ.get("XPNET_REQUIRE_GPU", "") == "1"


@lru_cache(maxsize=None)
def cuda_device_count() -> int:
    """CUDA devices CuPy (else torch) sees; 0 when neither is usable."""
    if usable("cupy")[0]:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount())
    if usable("torch")[0]:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    return 0


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu") is not None:
        ok, reason = gpu_usable()
        if not ok:
            pytest.skip(f"gpu test: {reason}")
    if item.get_closest_marker("multi_gpu") is not None and cuda_device_count() < 2:
        pytest.skip(f"needs two CUDA devices; {cuda_device_count()} here")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """XPNET_REQUIRE_GPU=1: a skipped ``gpu`` test is a failure (not a multi_gpu one)."""
    outcome = yield
    report = outcome.get_result()
    if not (REQUIRE_GPU and report.skipped and item.get_closest_marker("gpu") is not None):
        return
    if item.get_closest_marker("multi_gpu") is not None and cuda_device_count() < 2:
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
    report.outcome = "failed"
    report.longrepr = (f"XPNET_REQUIRE_GPU=1: this gpu test skipped on a machine that must run "
                       f"it: {reason}")


def _backend_params() -> list[Any]:
    return [pytest.param(name, id=name, marks=[pytest.mark.gpu] if name == "cupy" else [])
            for name in SELECTED_BACKENDS]


@pytest.fixture(params=_backend_params())
def backend(request: pytest.FixtureRequest) -> xpnet.Backend:
    """An ``xpnet.Backend`` (default device); skips when the library is not usable here."""
    ok, reason = usable(request.param)
    if not ok:
        pytest.skip(f"backend {request.param} not usable: {reason}")
    return xpnet.get_backend(request.param)


@pytest.fixture
def xp(backend: xpnet.Backend) -> Any:
    """The array namespace of the ``backend`` fixture."""
    return backend.xp


@pytest.fixture(params=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> str:
    return request.param


# --------------------------------------------------------------------------- assertions
def _dtype_name(x: Any) -> str:
    return str(x.dtype).rsplit(".", 1)[-1]


def assert_same_place(actual: Any, expected: Any) -> None:
    """Same backend (namespace), dtype and device."""
    ba, be = xpnet.backend_of(actual), xpnet.backend_of(expected)
    assert ba.name == be.name, f"namespace: got a {ba.name} array, expected {be.name}"
    assert actual.dtype == expected.dtype, (
        f"dtype: got {_dtype_name(actual)}, expected {_dtype_name(expected)}")
    assert ba.device == be.device, f"device: got {ba.device}, expected {be.device}"


def assert_close(actual: Any, expected: Any, rtol: float | None = None,
                 atol: float = 0.0, err_msg: str = "") -> None:
    """Namespace, shape, dtype and device of ``actual`` equal ``expected``'s; then values:
    ``|actual - expected| <= atol + rtol |expected|`` elementwise.

    ``rtol`` defaults to 1e-12 for float64 and 1e-5 for float32.
    """
    assert_same_place(actual, expected)
    assert tuple(actual.shape) == tuple(expected.shape), (
        f"shape: got {tuple(actual.shape)}, expected {tuple(expected.shape)}")
    if rtol is None:
        rtol = 1e-5 if _dtype_name(expected) == "float32" else 1e-12
    np.testing.assert_allclose(xpnet.to_numpy(actual), xpnet.to_numpy(expected), rtol=rtol,
                               atol=atol, err_msg=err_msg)


# --------------------------------------------------------------------------- problems
def random_network(layer_dims: Sequence[int], g: Sequence[str], m: int = 5, seed: int = 0,
                   bias_scale: float = 0.5, multilabel: bool = False
                   ) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Host float64 X (n[0], m), Y (n[L], m) matching g[-1], W[l], b[l] (random b, not zero).

    Y: one-hot columns for softmax; 0/1 for sigmoid (several ones per column when
    ``multilabel``); standard normal for identity; Poisson(1.5) counts for exp.
    """
    rng = np.random.default_rng(seed)
    L = len(layer_dims) - 1
    X = rng.standard_normal((layer_dims[0], m))
    W = {l: rng.standard_normal((layer_dims[l], layer_dims[l - 1])) / np.sqrt(layer_dims[l - 1])
         for l in range(1, L + 1)}
    b = {l: bias_scale * rng.standard_normal((layer_dims[l], 1)) for l in range(1, L + 1)}
    nL = layer_dims[-1]
    if g[-1] == "softmax":
        Y = np.eye(nL)[:, rng.integers(0, nL, size=m)]
    elif g[-1] == "sigmoid":
        if multilabel:
            Y = (rng.random((nL, m)) < 0.5).astype(np.float64)
            Y[:, 0] = 1.0  # at least one column with every label on
        else:
            Y = (rng.random((1 if nL == 1 else nL, m)) < 0.5).astype(np.float64)
    elif g[-1] == "exp":  # Poisson counts
        Y = rng.poisson(1.5, size=(nL, m)).astype(np.float64)
    else:
        Y = rng.standard_normal((nL, m))
    return X, Y, W, b


def blobs(n: int = 60, d: int = 4, k: int = 3, seed: int = 0, spread: float = 3.0
          ) -> tuple[np.ndarray, np.ndarray]:
    """X (n, d), y (n,): labels 0..k-1 in turn, each row its class centre (N(0, spread^2) per
    coordinate) plus N(0, 1) noise; scikit-learn's layout (rows are examples)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, d)) * spread
    y = np.arange(n) % k
    return centers[y] + rng.standard_normal((n, d)), y


def to_backend(backend: xpnet.Backend, tree: Any, dtype: str = "float64") -> Any:
    """An array, or a dict of arrays, copied to ``backend`` in ``dtype``."""
    if isinstance(tree, Mapping):
        return {k: to_backend(backend, v, dtype) for k, v in tree.items()}
    return backend.asarray(np.array(tree, dtype=dtype, copy=True))


def gd_run(backend: xpnet.Backend, dtype: str, layer_dims: Sequence[int], g: Sequence[str],
           steps: int = 50, m: int = 8, alpha: float = 0.1, seed: int = 0
           ) -> tuple[dict[int, Any], dict[int, Any], dict[int, Any], dict[int, Any], list[float]]:
    """``steps`` gradient-descent steps on ``backend`` from ``seed``; the batches are drawn on
    the host from ``seed + 1`` and are identical on every backend.

    Returns (W0, b0, W, b, costs): initial and final parameters as NumPy copies, and J per step.
    """
    W, b = xpnet.initialize_parameters(layer_dims, rng=seed, dtype=dtype, backend=backend)
    W0 = {l: xpnet.to_numpy(w).copy() for l, w in W.items()}
    b0 = {l: xpnet.to_numpy(v).copy() for l, v in b.items()}
    rng = np.random.default_rng(seed + 1)
    n0, nL = layer_dims[0], layer_dims[-1]
    n_batches = 5
    X_host = [rng.standard_normal((n0, m)) for _ in range(n_batches)]
    if g[-1] == "softmax":
        Y_host = [np.eye(nL)[:, rng.integers(0, nL, size=m)] for _ in range(n_batches)]
    elif g[-1] == "sigmoid":
        Y_host = [(rng.random((nL, m)) < 0.5).astype(np.float64) for _ in range(n_batches)]
    else:
        Y_host = [rng.standard_normal((nL, m)) for _ in range(n_batches)]
    X = [to_backend(backend, x, dtype) for x in X_host]
    Y = [to_backend(backend, y, dtype) for y in Y_host]
    costs = []
    for t in range(steps):
        J = xpnet.gradient_descent_step(X[t % n_batches], Y[t % n_batches], W, b, g, alpha)
        costs.append(float(J))
    Wn = {l: xpnet.to_numpy(w).copy() for l, w in W.items()}
    bn = {l: xpnet.to_numpy(v).copy() for l, v in b.items()}
    return W0, b0, Wn, bn, costs
