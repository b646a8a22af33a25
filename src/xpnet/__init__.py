"""xpnet: multi-layer perceptrons written once against the Python array API standard.

Forward propagation, backpropagation and the gradient-descent update follow the classic
derivation (examples in columns, A[l] of shape (n[l], m)) and run on NumPy, CuPy, PyTorch and
array-api-strict through one dispatcher (:mod:`xpnet.backends`).
"""

from xpnet.backends import (BACKENDS, Backend, available_backends, backend_of, devices,
                            get_backend, namespace, synchronize, to_numpy)
from xpnet.core.activations import ACTIVATIONS, DERIVATIVES, activation_backward
from xpnet.core.backward import linear_backward, output_delta
from xpnet.core.forward import Cache, linear_activation_forward, linear_forward
from xpnet.core.losses import COSTS, OUTPUT_COST, cost_derivative
from xpnet.core.update import update_parameters
from xpnet.errors import BackendError, DeviceMemoryError, DivergenceError, ModelFileError
from xpnet.functional import (backward, backward_from_dA, backward_unfused, compute_cost,
                              draw_parameters, forward, gradient_descent_step,
                              initialize_parameters)

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS", "BACKENDS", "COSTS", "DERIVATIVES", "OUTPUT_COST", "Backend", "BackendError",
    "Cache", "activation_backward", "available_backends", "backend_of", "backward",
    "backward_from_dA", "backward_unfused", "compute_cost", "cost_derivative", "devices",
    "draw_parameters", "forward", "get_backend", "gradient_descent_step", "initialize_parameters",
    "linear_activation_forward", "linear_backward", "linear_forward", "namespace", "output_delta", "synchronize", "to_numpy",
    "update_parameters", "__version__",
    "MLPClassifier", "MLPRegressor", "load", "DivergenceError", "DeviceMemoryError",
    "ModelFileError",
]

# The estimators import scikit-learn (when installed; ~0.7 s), so they load on first use.
_LAZY = {"MLPClassifier": "estimators", "MLPRegressor": "estimators", "load": "estimators"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'xpnet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
