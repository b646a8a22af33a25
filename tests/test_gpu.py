"""GPU tests (marker ``gpu``; ``pytest -m gpu`` runs them, ci/gpu does so on a CUDA machine).

CuPy vs NumPy agreement from the same seed (50 steps, float64 1e-10 relative, float32 1e-4),
outputs staying on the CuPy device, device selection, and torch CUDA joining the agreement.
Without a usable CUDA device every test here skips (conftest's ``gpu`` auto-skip).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close, gd_run, random_network, to_backend, usable
from test_agreement import CONFIGS, RTOL, STEPS, relative_disagreement

import xpnet
from xpnet import BackendError, backward, compute_cost, forward, gradient_descent_step

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cupy():
    ok, reason = usable("cupy")
    if not ok:
        pytest.skip(f"CuPy not usable: {reason}")
    import cupy

    return cupy


@pytest.fixture(scope="module")
def torch_cuda():
    if not usable("torch")[0]:
        pytest.skip("torch not installed")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    return torch


def _agreement(be, dtype, config):
    dims, g = CONFIGS[config]
    W0, b0, W, b, costs = gd_run(be, dtype, dims, g, STEPS)
    rW0, rb0, rW, rb, rcosts = gd_run(xpnet.get_backend("numpy"), dtype, dims, g, STEPS)
    for l in rW0:
        np.testing.assert_array_equal(W0[l], rW0[l])
        np.testing.assert_array_equal(b0[l], rb0[l])
    dis = max(relative_disagreement(W, rW), relative_disagreement(b, rb))
    assert dis < RTOL[dtype], f"{be} vs numpy after {STEPS} steps: {dis:.3g}"
    np.testing.assert_allclose(costs, rcosts, rtol=RTOL[dtype])
    return dis


@pytest.mark.parametrize("config", list(CONFIGS))
def test_cupy_agrees_with_numpy(cupy, dtype, config):
    _agreement(xpnet.get_backend("cupy"), dtype, config)


@pytest.mark.parametrize("device", ["cuda:0", 0, "cuda"])
def test_torch_cuda_agrees_with_numpy(torch_cuda, dtype, device):
    be = xpnet.get_backend("torch", device)
    assert be.device.type == "cuda"
    _agreement(be, dtype, "relu-softmax")


def test_cupy_device_selection(cupy):
    assert xpnet.get_backend("cupy", "cuda:0").device == 0
    assert xpnet.get_backend("cupy", 0).device == 0
    assert xpnet.get_backend("cupy", "cuda").device == 0
    assert xpnet.get_backend("cupy", cupy.cuda.Device(0)).device == 0
    assert xpnet.get_backend("auto").name == "cupy"
    n = cupy.cuda.runtime.getDeviceCount()
    with pytest.raises(BackendError, match=rf"CUDA device {n} does not exist: {n} device\(s\)"):
        xpnet.get_backend("cupy", n)
    with pytest.raises(BackendError, match=r"backend 'cupy' expects device as an index"):
        xpnet.get_backend("cupy", "cpu")


def test_cupy_device_equals_itself_however_named(cupy):
    from xpnet.backends import same_device

    found = [xpnet.get_backend("cupy", d)
             for d in (None, 0, np.int64(0), "cuda", "cuda:0", cupy.cuda.Device(0))]
    assert all(be is found[0] for be in found)
    x = cupy.ones(2)
    assert xpnet.backend_of(x) is found[0] and same_device(x, found[0])


def test_torch_cuda_device_equals_itself_however_named(torch_cuda):
    """"cuda" is the current device, cuda:0: a model placed on "cuda" takes tensors on cuda:0."""
    from xpnet.backends import same_device

    found = [xpnet.get_backend("torch", d)
             for d in ("cuda", "cuda:0", 0, np.int64(0), torch_cuda.device("cuda"),
                       torch_cuda.device("cuda", 0))]
    assert all(be is found[0] for be in found)
    x = torch_cuda.ones(2, device="cuda")
    assert xpnet.backend_of(x) is found[0] and same_device(x, found[0])
    assert found[0].device_spec == "cuda:0" and not found[0].on_host


def test_cupy_outputs_stay_on_the_device(cupy, dtype):
    be = xpnet.get_backend("cupy", 0)
    g = ["relu", "tanh", "softmax"]
    X, Y, W, b = random_network([3, 4, 4, 2], g, m=5)
    Xb, Yb, Wb, bb = (to_backend(be, t, dtype) for t in (X, Y, W, b))
    D = {1: to_backend(be, np.full((4, 5), 2.0), dtype)}
    AL, cache = forward(Xb, Wb, bb, g, D=D)  # with a dropout mask: every output on the device
    J = compute_cost(cache.Z[3], Yb, g[-1], xp=be.xp)
    dW, db = backward(Yb, Wb, cache, g, D=D, xp=be.xp)
    # the step has no dropout: its J is the cost of the same forward pass without D
    J_plain = compute_cost(forward(Xb, Wb, bb, g)[1].Z[3], Yb, g[-1], xp=be.xp)
    J2 = gradient_descent_step(Xb, Yb, Wb, bb, g, 0.1)
    for arr in (AL, J, J_plain, J2, *cache.Z.values(), *cache.A.values(), *dW.values(),
                *db.values(), *Wb.values(), *bb.values()):
        assert isinstance(arr, cupy.ndarray)
        assert arr.device.id == 0
        assert arr.dtype == np.dtype(dtype)
    assert_close(J2, J_plain, rtol=0.0)


def test_cupy_worked_values_match_numpy(cupy):
    """One forward/backward on CuPy equals NumPy's to 1e-12 (float64)."""
    be, npb = xpnet.get_backend("cupy"), xpnet.get_backend("numpy")
    g = ["leaky_relu", "sigmoid", "identity"]
    X, Y, W, b = random_network([3, 5, 4, 2], g, m=6, seed=4)
    out = {}
    for bk in (be, npb):
        Xb, Yb, Wb, bb = (to_backend(bk, t) for t in (X, Y, W, b))
        _, cache = forward(Xb, Wb, bb, g)
        dW, db = backward(Yb, Wb, cache, g, xp=bk.xp)
        out[bk.name] = [xpnet.to_numpy(a) for a in (*cache.A.values(), *dW.values(), *db.values())]
    for a, r in zip(out["cupy"], out["numpy"]):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-15)


def test_cupy_round_trip_and_synchronize(cupy, dtype):
    be = xpnet.get_backend("cupy")
    host = np.arange(6.0).reshape(2, 3) / 3
    x = be.asarray(host, dtype)
    assert isinstance(x, cupy.ndarray) and xpnet.backend_of(x) == be
    be.synchronize()
    xpnet.synchronize(x)
    xpnet.synchronize()
    np.testing.assert_array_equal(xpnet.to_numpy(x), host.astype(dtype))


@pytest.mark.multi_gpu
def test_cupy_second_device(cupy):
    """Arrays on device 1 stay there through a whole step (only with two or more GPUs)."""
    be = xpnet.get_backend("cupy", "cuda:1")
    g = ["relu", "softmax"]
    X, Y, W, b = random_network([3, 4, 2], g, m=5)
    Xb, Yb, Wb, bb = (to_backend(be, t) for t in (X, Y, W, b))
    J = gradient_descent_step(Xb, Yb, Wb, bb, g, 0.1)
    for arr in (J, *Wb.values(), *bb.values()):
        assert arr.device.id == 1
