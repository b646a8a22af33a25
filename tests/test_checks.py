"""Bad input to the functional API: a clear error naming the layer and the shapes."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import random_network, to_backend, usable

import xpnet
from xpnet import forward
from xpnet.functional import check_network, check_targets

G = ["relu", "tanh", "softmax"]
DIMS = [3, 4, 5, 2]


@pytest.fixture
def net(backend):
    X, Y, W, b = random_network(DIMS, G, m=6, seed=0)
    return (to_backend(backend, X), to_backend(backend, Y), to_backend(backend, W),
            to_backend(backend, b))


def test_good_network_gives_the_namespace(backend, net):
    X, _, W, b = net
    assert check_network(X, W, b, G) is backend.xp


def test_mismatched_shapes_between_layers(backend, net):
    X, _, W, b = net
    W[2] = to_backend(backend, np.ones((5, 3)))
    with pytest.raises(ValueError, match=r"layer 2: W\[2\] has shape \(5, 3\) but A\[1\] has 4 "
                                         r"rows, so W\[2\] must be \(n\[2\], 4\)"):
        forward(X, W, b, G)


def test_X_rows_do_not_match_W1(backend, net):
    X, _, W, b = net
    X = to_backend(backend, np.ones((7, 6)))
    with pytest.raises(ValueError,
                       match=r"layer 1: W\[1\] has shape \(4, 3\) but A\[0\] has 7 rows"):
        forward(X, W, b, G)


@pytest.mark.parametrize("shape", [(5,), (5, 2), (4, 1)])
def test_bias_shape(backend, net, shape):
    X, _, W, b = net
    b[2] = to_backend(backend, np.zeros(shape))
    expected = f"layer 2: b[2] has shape {shape}; expected (5, 1) to match W[2] (5, 4)"
    with pytest.raises(ValueError, match=re.escape(expected)):
        forward(X, W, b, G)


def test_X_must_be_2d(backend, net):
    _, _, W, b = net
    X = to_backend(backend, np.ones(3))
    with pytest.raises(ValueError, match=r"X must be 2-D with examples in columns, shape "
                                         r"\(n\[0\], m\); got shape \(3,\)"):
        forward(X, W, b, G)


@pytest.mark.parametrize("g, match", [
    (["relu", "softmax"], r"g must list one activation per layer: 3 for L = 3 layers"),
    (["relu", "relu", "relu", "softmax"], r"g must list one activation per layer: 3 for L = 3"),
    ("relu", r"g must list one activation per layer"),
])
def test_wrong_number_of_activations(net, g, match):
    X, _, W, b = net
    with pytest.raises(ValueError, match=match):
        forward(X, W, b, g)


@pytest.mark.parametrize("g, match", [
    (["relu", "swish", "softmax"],
     r"unknown hidden activation 'swish' for layer 2; expected one of relu, leaky_relu, "
     r"sigmoid, tanh, identity"),
    (["softmax", "relu", "softmax"], r"unknown hidden activation 'softmax' for layer 1"),
    (["relu", "relu", "relu"],
     r"unknown output activation 'relu' for layer 3; expected one of softmax, sigmoid, identity"),
    (["relu", None, "softmax"], r"unknown hidden activation None for layer 2"),
])
def test_unknown_activation(net, g, match):
    X, _, W, b = net
    with pytest.raises(ValueError, match=match):
        forward(X, W, b, g)


@pytest.mark.parametrize("int_dtype", ["int64", "int32"])
def test_non_float_X(backend, net, int_dtype):
    _, _, W, b = net
    X = backend.asarray(np.ones((3, 6), dtype=int_dtype))
    with pytest.raises(TypeError, match=rf"X must be float32 or float64; got {int_dtype}"):
        forward(X, W, b, G)


def test_mixed_dtypes(backend, net):
    X, _, W, b = net
    W[3] = to_backend(backend, xpnet.to_numpy(W[3]), "float32")
    with pytest.raises(TypeError, match=r"W\[3\] is float32 but X is float64; xpnet never "
                                        r"upcasts silently"):
        forward(X, W, b, G)
    X32 = to_backend(backend, xpnet.to_numpy(X), "float32")
    with pytest.raises(TypeError, match=r"W\[1\] is float64 but X is float32"):
        forward(X32, W, b, G)


def test_mixed_backends():
    if not usable("torch")[0]:
        pytest.skip("torch not installed")
    import torch

    X, _, W, b = random_network(DIMS, G, m=6)
    W = dict(W)
    W[2] = torch.as_tensor(W[2])
    with pytest.raises(TypeError, match=r"X, W and b must all be arrays of one backend; got "
                                        r"numpy\.ndarray, torch\.Tensor"):
        forward(X, W, b, G)


def test_non_arrays():
    X, _, W, b = random_network(DIMS, G, m=6)
    with pytest.raises(TypeError, match=r"X, W and b must all be arrays of one backend; got "
                                        r"builtins\.list"):
        forward(X.tolist(), W, b, G)


def test_mixed_devices():
    if not usable("array_api_strict")[0]:
        pytest.skip("array_api_strict not installed")
    X, _, W, b = random_network(DIMS, G, m=6)
    on1 = xpnet.get_backend("array_api_strict", "device1")
    cpu = xpnet.get_backend("array_api_strict")
    Wd, bd = to_backend(on1, W), to_backend(on1, b)
    bd[2] = to_backend(cpu, b[2])
    with pytest.raises(ValueError, match=r"b\[2\] is on device .*CPU_DEVICE.* but X is on "
                                         r".*device1"):
        forward(to_backend(on1, X), Wd, bd, G)


@pytest.mark.parametrize("keys", [(0, 1, 2), (1, 2, 4)])
def test_layers_keyed_1_to_L(net, keys):
    X, _, W, b = net
    W = dict(zip(keys, W.values()))
    with pytest.raises(ValueError, match=r"W and b must be keyed by layer l = 1..L; got W keys"):
        forward(X, W, b, G)


def test_empty_network(net):
    X = net[0]
    with pytest.raises(ValueError, match=r"W is empty"):
        forward(X, {}, {}, [])


def test_check_targets(backend, net):
    X, Y, W, b = net
    AL, _ = forward(X, W, b, G)
    check_targets(Y, AL)
    with pytest.raises(ValueError, match=r"Y has shape \(6, 2\) but A\[L\] has \(2, 6\)"):
        check_targets(to_backend(backend, xpnet.to_numpy(Y).T), AL)
    with pytest.raises(TypeError, match=r"Y is float32 but A\[L\] is float64"):
        check_targets(to_backend(backend, xpnet.to_numpy(Y), "float32"), AL)


def test_targets_on_another_backend_or_device():
    if not usable("array_api_strict")[0]:
        pytest.skip("array_api_strict not installed")
    AL = xpnet.get_backend("array_api_strict", "device1").asarray(np.zeros((2, 3)))
    with pytest.raises(TypeError, match=r"Y must be an array of the same backend as X, W and b; "
                                        r"got numpy\.ndarray"):
        check_targets(np.zeros((2, 3)), AL)
    Y = xpnet.get_backend("array_api_strict").asarray(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"Y is on device .*CPU_DEVICE.* but A\[L\] is on "
                                         r".*device1"):
        check_targets(Y, AL)
