"""The base of MLPClassifier and MLPRegressor: scikit-learn's parameters and fitted attributes
(``coefs_[l-1] = W[l]^T``, ``intercepts_[l-1] = b[l]``, NumPy), the repr, the forward pass
for predictions (over blocks of rows: :mod:`xpnet.training.inference`), and persistence
(``save``, pickling through host copies).

Fitting is :class:`xpnet.fitting.FittingMixin`; model files are :mod:`xpnet.modelfile`.
"""

from __future__ import annotations

import functools
import os
import types
from typing import Any, Callable

import numpy as np

from xpnet.io import modelfile
from xpnet.estimators.params import STOCHASTIC
from xpnet.estimators.sklearn_base import HAVE_SKLEARN, BaseEstimator, NotFittedError
from xpnet.backends import device_context, to_numpy
from xpnet.estimators.fitting import FittingMixin
from xpnet.training.inference import predict_in_chunks, predict_staged, staging_for
from xpnet.training.streaming import is_sparse
from xpnet.estimators.feature_names import check_feature_names
from xpnet.estimators.inputs import check_host_X, check_X, is_backend_array, not_finite

__all__ = ["BaseMLP", "stochastic_only"]  # for xpnet.estimators


class stochastic_only:  # noqa: N801 (a decorator, named as scikit-learn's available_if)
    """A method that exists only for the stochastic solvers (sgd, adam), as scikit-learn's
    ``partial_fit``: with ``solver="lbfgs"``, ``hasattr(est, "partial_fit")`` is False."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        functools.update_wrapper(self, fn)

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self.fn
        if obj.solver not in STOCHASTIC:
            raise AttributeError(f"{self.fn.__name__} is only available for stochastic "
                                 f"optimizers. {obj.solver} is not stochastic: use "
                                 f"solver='sgd' or 'adam' to train in increments")
        return types.MethodType(self.fn, obj)


class BaseMLP(FittingMixin, BaseEstimator):
    """What MLPClassifier and MLPRegressor share: parameters, fitted attributes, fitting (from
    :class:`xpnet.fitting.FittingMixin`), predicting, persistence."""

    _kind_of_estimator = ""
    # rows per block of the prediction pass; None: sized to the activation budget of
    # predict_in_chunks (set on an instance to force a block size, e.g. in tests)
    _chunk_rows: int | None = None
    # rows per chunk of training data streamed from the host (None: stream only when X is too
    # big for the device; set on an instance to force streaming, e.g. in tests)
    _stream_rows: int | None = None

    def _store(self, params: dict[str, Any]) -> None:
        """Each ``__init__`` argument as the attribute of its name (scikit-learn: no logic in
        ``__init__``; checked at fit by :mod:`xpnet.estimators.params`)."""
        for name, value in params.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    # ------------------------------------------------------------------ what users see
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # SciPy CSR / CSC, made dense a chunk at a time
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "_net")

    def _check_fitted(self) -> None:
        if not hasattr(self, "_net"):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet. Call "
                                 f"'fit' with appropriate arguments before using this estimator.")

    @property
    def coefs_(self) -> list[np.ndarray]:
        """W[l]^T for l = 1..L, NumPy copies (n[l-1], n[l]) (scikit-learn's layout)."""
        self._check_fitted()
        return [np.ascontiguousarray(to_numpy(self._net.W[l]).T) for l in range(1, self._net.L + 1)]

    @coefs_.setter
    def coefs_(self, coefs: list[Any]) -> None:
        self._set_layers("coefs_", coefs, lambda l: (self._net.W[l].shape[1],
                                                     self._net.W[l].shape[0]), True)

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """b[l] for l = 1..L as 1-D NumPy copies (n[l],) (scikit-learn's layout)."""
        self._check_fitted()
        return [to_numpy(self._net.b[l]).reshape(-1).copy() for l in range(1, self._net.L + 1)]

    @intercepts_.setter
    def intercepts_(self, intercepts: list[Any]) -> None:
        self._set_layers("intercepts_", intercepts, lambda l: (self._net.b[l].shape[0],), False)

    def _set_layers(self, name: str, values: list[Any], shape: Any, is_W: bool) -> None:
        self._check_fitted()
        net = self._net
        vals = [np.asarray(to_numpy(v), dtype=self._dtype) for v in values]
        if len(vals) != net.L or any(v.shape != tuple(shape(l)) for l, v in
                                     zip(range(1, net.L + 1), vals)):
            raise ValueError(f"{name} must be {net.L} arrays of shapes "
                             f"{[tuple(shape(l)) for l in range(1, net.L + 1)]}")
        for l, v in zip(range(1, net.L + 1), vals):  # written into the parameter buffer
            if is_W:
                net.W[l][...] = net.backend.asarray(np.ascontiguousarray(v.T))
            else:
                net.b[l][...] = net.backend.asarray(v.reshape(-1, 1))
        if hasattr(self, "_optimizer"):  # its state was for the old arrays' values only
            del self._optimizer

    @property
    def n_layers_(self) -> int:
        self._check_fitted()
        return self._net.L + 1

    @property
    def compute_dtype_(self) -> str:
        """The dtype the fitted network computes in, "float32" or "float64" (``dtype``, or
        with ``dtype=None`` the training X's, as scikit-learn's)."""
        self._check_fitted()
        return self._dtype

    def summary(self) -> str:
        """The architecture in one line: ``MLPClassifier(784-256-10, relu, softmax,
        backend=cupy, ...)`` (``?`` for sizes not known before fit; then the parameters that
        differ from the defaults). ``repr`` is scikit-learn's: those parameters only."""
        fitted = hasattr(self, "_net")
        if fitted:
            dims = "-".join(str(n) for n in self._net.dims)
            hidden = self._net.g[:-1]
            backend = self._net.backend.name
        else:
            try:
                hl = list(self.hidden_layer_sizes) if not isinstance(
                    self.hidden_layer_sizes, (int, np.integer)) else [self.hidden_layer_sizes]
            except TypeError:
                hl = [self.hidden_layer_sizes]
            dims = "-".join(["?", *map(str, hl), "?"])
            hidden = [self.activation] if isinstance(self.activation, str) \
                else list(self.activation)
            backend = self.backend
        hidden = [str(a) for a in hidden]
        parts = [dims]
        if hidden:
            parts.append(hidden[0] if len(set(hidden)) == 1 else "/".join(hidden))
        if fitted:
            parts.append(self._net.g[-1])
        parts.append(f"backend={backend}")
        parts += [f"{key}={value!r}" for key, value in self._changed_params().items()
                  if key not in ("hidden_layer_sizes", "activation", "backend")]
        return f"{type(self).__name__}({', '.join(parts)})"

    def _changed_params(self) -> dict[str, Any]:
        """The parameters whose values differ from the defaults (scikit-learn's repr's)."""
        defaults = type(self)().get_params(deep=False)
        changed = {}
        for key, value in self.get_params(deep=False).items():
            try:
                same = bool(value == defaults[key]) and type(value) is type(defaults[key])
            except Exception:
                same = False
            if not same:
                changed[key] = value
        return changed

    if not HAVE_SKLEARN:  # scikit-learn's BaseEstimator gives the same, pretty-printed
        def __repr__(self) -> str:
            args = ", ".join(f"{k}={v!r}" for k, v in self._changed_params().items())
            return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ predicting
    def _predict(self, X: Any, finish: Callable[[Any], Any],
                 chunk_rows: int | None = None) -> tuple[Any, bool]:
        """finish(A[L]) for X, computed over blocks of rows (one block's activations at a time,
        :func:`xpnet.training.inference.predict_in_chunks`): an (n_samples, ...) array on the
        model's backend, and whether X was a backend array.

        ``finish`` maps an A[L] block (n[L], rows) to that block's rows of the result, on the
        device; ``chunk_rows`` None: ``self._chunk_rows``, or (None too) blocks sized to a fixed
        activation budget.
        """
        self._check_fitted()
        net = self._net
        check_feature_names(self, X, reset=False)
        if not net.backend.on_host:  # host rows for a device: staged, checked there
            A = check_host_X(X, n_features=self.n_features_in_, estimator=type(self).__name__)
            if A is not None:
                return self._predict_staged(A, finish, chunk_rows), False
        Xd = check_X(X, net.backend, self._dtype, n_features=self.n_features_in_,
                     estimator=type(self).__name__)
        upload = None
        if is_sparse(Xd):  # rows made dense and uploaded one block at a time
            upload = net.backend.dense_rows
        with device_context(net.backend), net.backend.matmul_precision(self.tf32 is True), \
                np.errstate(over="ignore", invalid="ignore"):
            out = predict_in_chunks(net.W, net.b, net.g, net.backend, Xd, finish,
                                    chunk_rows=self._chunk_rows if chunk_rows is None
                                    else chunk_rows, upload=upload)
        return out, is_backend_array(X)

    def _predict_staged(self, A: np.ndarray, finish: Callable[[Any], Any],
                        chunk_rows: int | None) -> Any:
        """finish(A[L]) for dense host rows ``A`` on a device, through the model's staging
        buffer (:func:`xpnet.training.inference.predict_staged`); NaN or infinity in ``A`` (or a
        value too large for the model's dtype) raises as :func:`check_X` does."""
        net = self._net
        with device_context(net.backend), net.backend.matmul_precision(self.tf32 is True):
            out, has_nan, has_inf = predict_staged(
                net.W, net.b, net.g, net.backend, A, finish, dtype=self._dtype,
                staging=staging_for(net, net.backend),
                chunk_rows=self._chunk_rows if chunk_rows is None else chunk_rows)
            if bool(has_nan) or bool(has_inf):
                raise not_finite("X", bool(has_nan), self._dtype)
        return out

    @staticmethod
    def _out(A: Any, native: bool) -> Any:
        return A if native else np.ascontiguousarray(to_numpy(A))

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to ``path`` (atomically; parameters, architecture, optimizer
        state, classes and history; no pickle). Read it back with :func:`xpnet.load`."""
        self._check_fitted()
        modelfile.write(self, os.path.expanduser(os.fspath(path)))

    def to_onnx(self, path: str | os.PathLike | None = None) -> Any:
        """The prediction path as an ONNX model (``onnx.ModelProto``; written to ``path`` too
        when given): xpnet's forward equations run on ndonnx arrays. Input "X"; outputs
        "proba" and "label" (classifiers) or "y" (regressors): :mod:`xpnet.io.onnx`. Needs
        ``pip install 'xpnet[onnx]'``."""
        from xpnet.io.onnx import to_onnx

        return to_onnx(self, path)

    def __getstate__(self) -> dict[str, Any]:
        """Device arrays become NumPy, so a model trained on a GPU unpickles anywhere."""
        state = self.__dict__.copy()
        if "_net" in state:
            state["_net"] = modelfile.host_network(state["_net"])
        if state.get("_optimizer") is not None:  # None: lbfgs keeps no optimizer state
            state["_optimizer"] = modelfile.host_optimizer(state["_optimizer"])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "_net" in state and isinstance(state["_net"], dict):
            net = modelfile.device_network(state["_net"], warn_fallback=True)
            state["_net"] = net
            if isinstance(state.get("_optimizer"), dict):
                state["_optimizer"] = modelfile.device_optimizer(state["_optimizer"], net)
        self.__dict__.update(state)
