"""A model file's network on the host (NumPy), for answers only: ``predict``, ``predict_proba``
and ONNX export without the estimator classes, so the command line answers without importing
scikit-learn (their base classes), which costs seconds at start-up.

The answers are the estimators' own: the file is read and checked by
:func:`xpnet.io.modelfile.read`, and the rows go through
:func:`xpnet.training.inference.predict_in_chunks` with the NumPy backend's kernels and the
same finishing steps (:func:`~xpnet.training.inference.probabilities`,
:func:`~xpnet.training.inference.class_index`) as ``MLPClassifier`` / ``MLPRegressor``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from xpnet.backends import get_backend
from xpnet.io.metadata import classes_from_json
from xpnet.io.modelfile import read
from xpnet.training.inference import (class_index, label_classes, predict_in_chunks,
                                      probabilities, regression_values)
from xpnet.training.network import Network

__all__ = ["HostModel"]


class HostModel:
    """The fitted network of a model file on NumPy: what predicting and exporting need of an
    estimator (its attributes keep the estimators' names)."""

    def __init__(self, path: str | os.PathLike) -> None:
        arrays, meta = read(path)
        L = len(meta["layer_dims"]) - 1
        self.estimator_name = meta["estimator"]
        self._dtype, self._target_kind = meta["dtype"], meta["target_kind"]
        be = get_backend("numpy")
        self._net = Network({l: be.asarray(arrays[f"W[{l}]"]) for l in range(1, L + 1)},
                            {l: be.asarray(arrays[f"b[{l}]"]) for l in range(1, L + 1)},
                            list(meta["activations"]), be)
        self.n_features_in_ = int(meta["n_features_in"])
        names = meta.get("feature_names_in")
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        if self._target_kind != "continuous":
            self.classes_ = classes_from_json(meta["classes"])
        self.params = dict(meta["params"])

    def __repr__(self) -> str:
        dims = "-".join(map(str, self._net.dims))
        return f"{self.estimator_name}({dims}, {'/'.join(self._net.g)}, host copy)"

    def _check_fitted(self) -> None:
        """A model file holds a fitted network."""

    @property
    def compute_dtype_(self) -> str:
        """The dtype the network computes in (the estimator's ``compute_dtype_``)."""
        return self._dtype

    def summary(self) -> str:
        """The architecture in one line (the estimator's ``summary``)."""
        return repr(self)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {**self.params, "dtype": self._dtype}

    def _finish(self, X: Any, finish: Any) -> np.ndarray:
        X = np.asarray(X, dtype=self._dtype)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected rows of {self.n_features_in_} features; got shape "
                             f"{X.shape}")
        net = self._net
        with np.errstate(over="ignore", invalid="ignore"):
            return predict_in_chunks(net.W, net.b, net.g, net.backend, X, finish)

    def predict_proba(self, X: Any) -> np.ndarray:
        kind = self._target_kind
        return self._finish(X, lambda AL: probabilities(AL, kind, xp=self._net.backend.xp))

    def predict(self, X: Any) -> np.ndarray:
        kind = self._target_kind
        xp = self._net.backend.xp
        if kind == "continuous":
            outputs = int(self._net.W[self._net.L].shape[0])
            return self._finish(X, lambda AL: regression_values(AL, outputs, xp=xp))
        index = self._finish(X, lambda AL: class_index(AL, kind, xp=xp))
        return index if kind == "multilabel" else label_classes(self.classes_)[index]
