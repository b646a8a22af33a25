"""The Backend classes behind the dispatcher: one per library, found without importing any."""

from __future__ import annotations

import contextlib
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import usable

from xpnet.backends import (BACKENDS, Backend, BackendError, available_backends, backend_of,
                            device_context, get_backend, is_out_of_memory, to_numpy)
from xpnet.backends.array_api_strict import StrictBackend
from xpnet.backends.cupy import CupyBackend
from xpnet.backends.numpy import NumpyBackend
from xpnet.backends.torch import TorchBackend

CLASSES = {"numpy": NumpyBackend, "cupy": CupyBackend, "torch": TorchBackend,
           "array_api_strict": StrictBackend}


def test_one_class_per_backend_named_as_the_registry():
    assert tuple(CLASSES) == BACKENDS
    for name, cls in CLASSES.items():
        assert issubclass(cls, Backend) and cls.name == name
        assert cls.probe() == available_backends()[name]
        ok, reason = cls.probe()
        assert isinstance(ok, bool) and isinstance(reason, str) and reason


def test_get_backend_and_backend_of_give_the_subclass(backend):
    assert isinstance(backend, CLASSES[backend.name])
    x = backend.asarray(np.ones(3))
    assert type(backend_of(x)) is type(backend)
    assert CLASSES[backend.name].is_array(x)
    assert [n for n, cls in CLASSES.items() if cls.is_array(x)] == [backend.name]


# --------------------------------------------------------------------------- is_array
_NO_IMPORT = textwrap.dedent("""
    import sys

    BLOCKED = ("cupy", "torch", "array_api_strict")
    tried = []

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                tried.append(name)
                raise ImportError(f"blocked: {name}")
            return None

    import numpy as np
    import xpnet.backends as B
    from xpnet.backends.array_api_strict import StrictBackend
    from xpnet.backends.cupy import CupyBackend
    from xpnet.backends.torch import TorchBackend

    sys.meta_path.insert(0, Blocker())
    before = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    Fake = type("ndarray", (), {"__module__": "cupy"})
    things = [np.ones(2), np.float32(1), [1.0], 3, None, "cupy", Fake()]
    for cls in (CupyBackend, TorchBackend, StrictBackend):
        assert not any(cls.is_array(x) for x in things[:-1]), cls
        assert not cls.is_out_of_memory(ValueError("x")), cls
    for x in things[:2]:
        assert B.backend_of(x).name == "numpy" and B.to_numpy(x) is not None
    B.is_out_of_memory(RuntimeError("out of memory"))
    B.synchronize()
    after = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(before, after, tried)
    assert before == after == [] and tried == [], (before, after, tried)
""")


def test_is_array_never_imports_a_library():
    """In a fresh interpreter with CuPy, torch and array-api-strict unloaded (and any import
    of them blocked and recorded): no is_array, backend_of, to_numpy, is_out_of_memory or
    synchronize() call loads one."""
    done = subprocess.run([sys.executable, "-c", _NO_IMPORT], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "[] [] []"


def test_is_array_of_a_fake_library_type_is_false_while_the_library_is_unloaded():
    if "cupy" in sys.modules:
        pytest.skip("CuPy is loaded here")
    fake = type("ndarray", (), {"__module__": "cupy"})()
    assert not CupyBackend.is_array(fake)
    assert "cupy" not in sys.modules


# --------------------------------------------------------------------------- views
def _writes_through(be: Backend) -> bool:
    """Whether an in-place update of a reshaped slice of a flat 1-D array changes the array."""
    xp = be.xp
    flat = be.asarray(np.zeros(12), "float64")
    view = xp.reshape(flat[2:8], (2, 3))
    view[...] = 1.0
    view *= 3.0
    got = to_numpy(flat)
    return bool(np.array_equal(got[2:8], np.full(6, 3.0)) and not got[:2].any()
                and not got[8:].any())


def test_supports_views_flags():
    assert NumpyBackend.supports_views is True
    assert CupyBackend.supports_views is True
    assert TorchBackend.supports_views is True
    assert StrictBackend.supports_views is False


def test_supports_views_is_what_happens(backend):
    """Where the flag says views, in-place writes through a reshaped slice really land in the
    flat array (numpy, torch, cupy); strict makes no such promise and says so."""
    if backend.supports_views:
        assert _writes_through(backend)
    else:
        assert backend.name == "array_api_strict"


def test_numpy_and_torch_views_write_through():
    assert _writes_through(get_backend("numpy"))
    if usable("torch")[0]:
        assert _writes_through(get_backend("torch"))


# --------------------------------------------------------------------------- identity
def test_equal_and_hash_by_name_and_device():
    a, b = get_backend("numpy"), get_backend("numpy")
    assert a == b and hash(a) == hash(b)
    assert get_backend("np", "cpu") == a
    assert {a: 1}[b] == 1
    assert a != "numpy" and a != None  # noqa: E711
    assert repr(a) == "Backend(name='numpy', device='cpu')"
    assert str(a) == "numpy"
    with pytest.raises(AttributeError):
        a.device = "gpu"  # immutable, as the frozen dataclass was
    assert pickle.loads(pickle.dumps(a)) == a


def test_equality_across_backends_and_devices():
    if not usable("torch")[0]:
        pytest.skip("torch not installed")
    import torch

    t = get_backend("torch")
    assert t == get_backend("torch", "cpu") == get_backend("pytorch", torch.device("cpu"))
    assert hash(t) == hash(get_backend("torch", "cpu"))
    assert t != get_backend("numpy")
    assert len({t, get_backend("torch", "cpu"), get_backend("numpy")}) == 2
    assert str(t) == "torch, device=cpu"
    if usable("array_api_strict")[0]:
        s0, s1 = get_backend("strict"), get_backend("strict", "device1")
        assert s0 != s1 and s1 == get_backend("array_api_strict", "device1")
        assert hash(s1) == hash(get_backend("array_api_strict", "device1"))


def test_owns_checks_library_and_device(backend):
    x = backend.asarray(np.ones(2))
    assert backend.owns(x)
    assert not backend.owns([1.0, 2.0])
    if backend.name != "numpy":
        assert not backend.owns(np.ones(2))
        assert not get_backend("numpy").owns(x)
    if backend.name == "array_api_strict":
        assert not get_backend("strict", "device1").owns(x)


# --------------------------------------------------------------------------- moving arrays
def test_asarray_to_numpy_round_trip_is_bit_for_bit(backend, dtype):
    specials = [0.0, -0.0, 1.0 / 3.0, np.pi, np.inf, -np.inf, np.nan, 1e-40, -1e-310, 6.5e4]
    host = np.array(specials, dtype=np.float64).astype(dtype)
    bits = np.uint32 if dtype == "float32" else np.uint64
    x = backend.asarray(host)
    for back in (to_numpy(x), type(backend).to_numpy(x), backend.to_numpy(x)):
        assert isinstance(back, np.ndarray) and back.dtype == host.dtype
        np.testing.assert_array_equal(np.asarray(back).view(bits), host.view(bits))
    again = to_numpy(backend.asarray(host.tolist(), dtype))
    np.testing.assert_array_equal(again.view(bits), host.view(bits))


def test_dtype_names(backend):
    assert backend.dtype("float32") == backend.xp.float32
    assert backend.dtype(np.float64) == backend.xp.float64


# --------------------------------------------------------------------------- errors, OOM
def test_unknown_name_lists_every_valid_name():
    with pytest.raises(BackendError) as info:
        get_backend("jax")
    text = str(info.value)
    assert text.startswith("unknown backend 'jax'; expected one of ")
    for name in BACKENDS:
        assert name in text
    assert "'auto'" in text


def test_out_of_memory_by_class():
    assert NumpyBackend.is_out_of_memory(MemoryError())
    assert not NumpyBackend.is_out_of_memory(ValueError("out of memory"))
    assert not CupyBackend.is_out_of_memory(RuntimeError("x"))
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert not is_out_of_memory(KeyError("memory"))
    if usable("torch")[0]:
        import torch

        assert TorchBackend.is_out_of_memory(torch.cuda.OutOfMemoryError("boom"))
        cpu_oom = "[enforce fail at alloc_cpu.cpp] DefaultCPUAllocator: can't allocate memory"
        assert TorchBackend.is_out_of_memory(RuntimeError(cpu_oom))
        assert is_out_of_memory(torch.cuda.OutOfMemoryError("boom"))


def test_device_context_is_null_off_cupy(backend):
    ctx = device_context(backend)
    if backend.name != "cupy":
        assert isinstance(ctx, contextlib.nullcontext)
    with ctx:
        backend.asarray(np.ones(1))


def test_parse_device_and_devices_per_class():
    assert NumpyBackend.parse_device(None) == NumpyBackend.parse_device("cpu") == "cpu"
    with pytest.raises(BackendError, match="backend 'numpy' runs on the CPU only"):
        NumpyBackend.parse_device("cuda:0")
    assert NumpyBackend.devices() == ["cpu"]
    for name, cls in CLASSES.items():
        found = cls.devices(describe=True)
        assert isinstance(found, list)
        if not cls.probe()[0]:
            assert found == []


# --------------------------------------------------------------------------- kernels
def test_kernels_are_made_once_per_instance():
    made = []

    class Counting(NumpyBackend):
        def make_kernels(self):
            made.append(1)
            return object()

    be = Counting("cpu")
    first = be.kernels
    assert be.kernels is first and made == [1]
    assert Counting("cpu").kernels is not first and made == [1, 1]
