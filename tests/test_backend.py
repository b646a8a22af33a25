"""The dispatcher: names, detection, devices, moving arrays, namespaces."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BACKEND_NAMES, assert_close, usable

import xpnet
from xpnet import BackendError, backend_of, get_backend, to_numpy


def test_backends_listed():
    assert set(xpnet.BACKENDS) == set(BACKEND_NAMES)
    found = xpnet.available_backends()
    assert set(found) == set(BACKEND_NAMES)
    for name, (ok, reason) in found.items():
        assert isinstance(ok, bool) and isinstance(reason, str) and reason, name
    assert found["numpy"][0] is True


@pytest.mark.parametrize("name", ["cuppy", "tensorflow", "", "NUMPYY"])
def test_unknown_backend_lists_valid_ones(name):
    with pytest.raises(BackendError,
                       match=rf"unknown backend '{name}'; expected one of numpy, cupy, torch, "
                             r"array_api_strict, or 'auto'"):
        get_backend(name)


def test_non_string_backend_name():
    with pytest.raises(BackendError, match="unknown backend 3"):
        get_backend(3)


def test_backend_error_is_value_error():
    assert issubclass(BackendError, ValueError)


@pytest.mark.parametrize("alias, name", [("np", "numpy"), ("NumPy", "numpy"),
                                         ("strict", "array_api_strict"),
                                         ("array-api-strict", "array_api_strict"),
                                         ("pytorch", "torch")])
def test_aliases(alias, name):
    if not usable(name)[0]:
        pytest.skip(f"{name} not usable here")
    assert get_backend(alias).name == name


def test_auto_is_numpy_without_a_usable_gpu():
    expected = "cupy" if usable("cupy")[0] else "numpy"
    assert get_backend("auto").name == expected
    assert get_backend().name == expected


def test_cupy_not_installed_says_why_and_suggests_numpy_or_auto():
    ok, reason = usable("cupy")
    if ok:
        pytest.skip("CuPy is usable here")
    with pytest.raises(BackendError, match=r"backend 'cupy' is not usable here: .*"
                                           r"backend='numpy'.*backend='auto'") as info:
        get_backend("cupy")
    assert reason in str(info.value)


def test_cupy_installed_but_unusable_is_detected_without_crashing():
    """A real CuPy without a usable CUDA device (no GPU or no driver): 'not usable', with why."""
    try:
        import cupy  # noqa: F401
    except ImportError:
        pytest.skip("CuPy is not installed here")
    ok, reason = usable("cupy")
    if ok:
        pytest.skip("CuPy has a usable CUDA device here")
    assert reason.startswith("cupy is installed but")
    with pytest.raises(BackendError, match="cupy is installed but"):
        get_backend("cupy")
    assert get_backend("auto").name == "numpy"


def test_strict_pinned_to_2024_12():
    if not usable("array_api_strict")[0]:
        pytest.skip("array_api_strict not installed")
    import array_api_strict

    be = get_backend("array_api_strict")
    assert be.xp is array_api_strict
    assert array_api_strict.get_array_api_strict_flags()["api_version"] == "2024.12"
    # The version xpnet relies on: Python scalars in maximum / where (new in 2024.12).
    Z = be.asarray(np.array([[-1.0, 2.0]]))
    assert to_numpy(be.xp.maximum(Z, 0.0)).tolist() == [[0.0, 2.0]]


# --------------------------------------------------------------------------- devices
@pytest.mark.parametrize("device", [None, "cpu"])
def test_numpy_cpu_device(device):
    assert get_backend("numpy", device).device == "cpu"


@pytest.mark.parametrize("device", ["cuda", "cuda:0", 0])
def test_numpy_rejects_gpu_device(device):
    with pytest.raises(BackendError, match=r"backend 'numpy' runs on the CPU only; got "
                                           rf"device={device!r}"):
        get_backend("numpy", device)


@pytest.fixture
def torch_mod():
    if not usable("torch")[0]:
        pytest.skip("torch not installed")
    import torch

    return torch


def test_torch_devices(torch_mod):
    assert get_backend("torch").device == torch_mod.device("cpu")
    assert get_backend("torch", "cpu").device == torch_mod.device("cpu")
    with pytest.raises(BackendError, match="backend 'torch' cannot use device 'gpu7'"):
        get_backend("torch", "gpu7")


@pytest.mark.parametrize("device", ["cuda:0", "cuda", 0])
def test_torch_cuda_without_cuda_is_a_clear_error(torch_mod, device):
    if torch_mod.cuda.is_available():
        pytest.skip("torch sees a CUDA device here")
    with pytest.raises(BackendError, match=r"torch sees no CUDA device\. Use device='cpu'"):
        get_backend("torch", device)


def test_strict_devices():
    if not usable("array_api_strict")[0]:
        pytest.skip("array_api_strict not installed")
    import array_api_strict

    assert get_backend("array_api_strict").device == array_api_strict.Device("CPU_DEVICE")
    be = get_backend("array_api_strict", "device1")
    assert be.device == array_api_strict.Device("device1")
    device2 = array_api_strict.Device("device2")
    assert get_backend("strict", device2).device == device2
    with pytest.raises(BackendError, match="backend 'array_api_strict' cannot use device 'gpu'"):
        get_backend("array_api_strict", "gpu")


# --------------------------------------------------------------------------- device identity
def _spellings(name):
    """Every way a user may name the default device of backend ``name`` on the CPU."""
    if name == "torch":
        import torch

        return [None, "cpu", "cpu:0", torch.device("cpu"), torch.device("cpu", 0)]
    if name == "array_api_strict":
        import array_api_strict

        return [None, "CPU_DEVICE", array_api_strict.Device("CPU_DEVICE")]
    return [None, "cpu"]


@pytest.mark.parametrize("name", ["numpy", "torch", "array_api_strict"])
def test_a_device_equals_itself_however_it_was_named(name):
    """get_backend(name, spelling) is one Backend for every spelling of a device, equal to the
    backend of the arrays it makes (torch.device("cpu", 0) vs a tensor's device("cpu"))."""
    if not usable(name)[0]:
        pytest.skip(f"{name} not installed")
    from xpnet.backends import same_device

    found = [get_backend(name, d) for d in _spellings(name)]
    assert all(be is found[0] for be in found), found
    for be in found:
        x = be.asarray(np.ones(2, dtype=np.float32))
        assert backend_of(x) == be and hash(backend_of(x)) == hash(be)
        assert same_device(x, be) and same_device(be, x) and be.owns(x)
    assert str(found[0].device_spec) == str(get_backend(name, found[0].device_spec).device_spec)


def test_fake_devices_are_told_apart():
    """array-api-strict's fake devices: device1 is itself by name or object, never device2,
    nor the CPU; arrays on them say so through same_device."""
    if not usable("array_api_strict")[0]:
        pytest.skip("array_api_strict not installed")
    import array_api_strict

    from xpnet.backends import same_device

    one = get_backend("array_api_strict", "device1")
    assert one is get_backend("strict", array_api_strict.Device("device1"))
    two = get_backend("array_api_strict", "device2")
    x1, x2 = one.asarray(np.ones(2)), two.asarray(np.ones(2))
    assert same_device(x1, one) and not same_device(x1, two) and not same_device(x1, x2)
    assert not same_device(x1, get_backend("array_api_strict"))
    assert not one.on_host and not two.on_host and get_backend("array_api_strict").on_host


def test_same_device_tells_libraries_apart(torch_mod):
    from xpnet.backends import same_device

    assert not same_device(np.ones(2), torch_mod.ones(2))
    assert not same_device(get_backend("numpy"), get_backend("torch", "cpu"))
    assert get_backend("numpy").on_host and get_backend("torch", "cpu:0").on_host


def test_get_backend_accepts_a_backend():
    be = get_backend("numpy")
    assert get_backend(be) is be


# --------------------------------------------------------------------------- moving arrays
def test_asarray_round_trip(backend, dtype):
    host = np.arange(6, dtype=np.float64).reshape(2, 3) / 7.0
    x = backend.asarray(host, dtype)
    assert backend_of(x) == backend
    assert backend.owns(x)
    assert x.dtype == backend.dtype(dtype)
    assert tuple(x.shape) == (2, 3)
    back = to_numpy(x)
    assert isinstance(back, np.ndarray)
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, host.astype(dtype))
    # Moving a backend's own array again keeps it there and keeps its values.
    again = backend.asarray(x)
    assert_close(again, x, rtol=0.0)


def test_asarray_keeps_dtype_without_one(backend):
    for dt in ("float32", "float64", "int64"):
        x = backend.asarray(np.zeros((2, 2), dtype=dt))
        assert x.dtype == backend.dtype(dt)


def test_asarray_from_python_lists(backend):
    x = backend.asarray([[1.0, 2.0], [3.0, 4.0]], "float32")
    assert backend_of(x) == backend and x.dtype == backend.dtype("float32")
    assert to_numpy(x).tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_asarray_between_backends(backend):
    """An array of any usable backend moves to any other, values and dtype intact."""
    host = np.array([[0.5, -1.25], [3.0, 1e-3]])
    for name in BACKEND_NAMES:
        if not usable(name)[0]:
            continue
        src = get_backend(name).asarray(host, "float64")
        dst = backend.asarray(src)
        assert backend_of(dst) == backend, name
        assert dst.dtype == backend.dtype("float64")
        np.testing.assert_array_equal(to_numpy(dst), host)


def test_backend_of(backend):
    x = backend.asarray(np.ones((1, 2)))
    found = backend_of(x)
    assert found.name == backend.name
    assert found.device == backend.device
    assert found.xp is backend.xp
    assert xpnet.namespace(x) is backend.xp


def test_backend_of_rejects_non_arrays():
    with pytest.raises(TypeError,
                       match=r"not an array of a backend xpnet supports .*builtins\.list"):
        backend_of([1.0, 2.0])


def test_namespace_rejects_mixed_libraries(torch_mod):
    with pytest.raises(TypeError):
        xpnet.namespace(np.ones(2), torch_mod.ones(2))


def test_strict_to_numpy_from_another_device():
    if not usable("array_api_strict")[0]:
        pytest.skip("array_api_strict not installed")
    be = get_backend("array_api_strict", "device1")
    x = be.asarray(np.array([1.0, 2.0]))
    assert str(x.device) == str(be.device)
    np.testing.assert_array_equal(to_numpy(x), [1.0, 2.0])
    moved = get_backend("array_api_strict").asarray(x)
    assert moved.device == get_backend("array_api_strict").device


def test_synchronize_runs(backend):
    x = backend.asarray(np.ones(3))
    backend.synchronize()
    xpnet.synchronize(x)
    xpnet.synchronize(backend)
    xpnet.synchronize()


def test_str(backend):
    text = str(backend)
    assert text.startswith(backend.name)


# --------------------------------------------------------------------------- devices()
def test_devices_numpy_is_the_cpu_and_unknown_or_unusable_have_none():
    from xpnet.backends import devices

    assert devices("numpy") == devices("np") == ["cpu"]
    assert devices("cuppy") == devices("") == devices(3) == devices(None) == []
    for name, (ok, _) in xpnet.available_backends().items():
        if not ok:
            assert devices(name) == [] and devices(name, describe=True) == []
    assert devices("auto") == devices(get_backend("auto").name)


def test_devices_torch_lists_the_cpu_and_every_cuda_device(torch_mod):
    from xpnet.backends import devices

    n = torch_mod.cuda.device_count() if torch_mod.cuda.is_available() else 0
    assert devices("torch") == ["cpu"] + [f"cuda:{i}" for i in range(n)]
    described = devices("pytorch", describe=True)
    assert described[0] == "cpu" and len(described) == n + 1
    for i in range(n):
        assert described[i + 1] == f"cuda:{i} ({torch_mod.cuda.get_device_name(i)})"


def test_devices_strict_lists_its_real_and_fake_devices():
    if not usable("array_api_strict")[0]:
        pytest.skip("array_api_strict not installed")
    import array_api_strict
    from xpnet.backends import devices

    found = devices("array_api_strict")
    info = array_api_strict.__array_namespace_info__()
    assert len(found) == len(info.devices()) and found[0] == "CPU_DEVICE"
    assert {"device1", "device2"} <= set(found)
    assert devices("strict", describe=True) == found  # no GPU names to add


def test_every_listed_device_is_accepted_by_get_backend(backend):
    """What devices() lists is what get_backend(name, device) takes (the CLI prints it)."""
    from xpnet.backends import devices

    found = devices(backend.name)
    assert found
    for device in found:
        be = get_backend(backend.name, device)
        assert be.name == backend.name
        x = be.asarray(np.ones(2, dtype=np.float32))  # strict has float32-only devices
        assert backend_of(x) == be


def test_devices_cupy_without_a_gpu_is_empty():
    from xpnet.backends import devices

    if usable("cupy")[0]:
        pytest.skip("CuPy has a usable CUDA device here")
    assert devices("cupy") == devices("cp", describe=True) == []


@pytest.mark.gpu
def test_devices_cupy_lists_each_cuda_device_with_its_name():
    if not usable("cupy")[0]:
        pytest.skip("CuPy is not usable here")
    import cupy
    from xpnet.backends import devices

    n = cupy.cuda.runtime.getDeviceCount()
    assert n >= 1 and devices("cupy") == [f"cuda:{i}" for i in range(n)]
    described = devices("cupy", describe=True)
    assert all(d.startswith(f"cuda:{i} (") and d.endswith(")") and len(d) > len(f"cuda:{i} ()")
               for i, d in enumerate(described))
    assert devices("auto") == devices("cupy")
