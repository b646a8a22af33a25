"""MLPClassifier and MLPRegressor: scikit-learn's multi-layer perceptrons on any array backend.

Same parameter names and fitted attributes as ``sklearn.neural_network``, plus ``backend``,
``device``, ``dtype``, ``dropout``, per-layer ``activation``, ``clip_norm`` and ``tf32``. X is
(n_samples, n_features) as in scikit-learn; the network works with examples in columns
(X^T), and W[l] is stored (n[l], n[l-1]) on the device, so ``coefs_[l-1] = W[l]^T`` (NumPy).

What both share is :class:`xpnet.base.BaseMLP` (fitting: :mod:`xpnet.fitting`; checked
hyperparameters: :mod:`xpnet.hyperparams`); the loop is :class:`xpnet.training.Trainer`; model
files are :mod:`xpnet.modelfile`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from xpnet.io import modelfile
from xpnet.estimators.sklearn_base import ClassifierMixin, RegressorMixin
from xpnet.backends import Backend, to_numpy
from xpnet.estimators.base import BaseMLP, stochastic_only
from xpnet.estimators.params import Config
from xpnet.training.inference import (class_index, label_classes, probabilities,
                                      regression_values)
from xpnet.estimators.inputs import (Target, check_y_length, classification_target, is_backend_array,
                     regression_target)

__all__ = ["MLPClassifier", "MLPRegressor", "load"]

_LOSSES = ("squared_error", "poisson")


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier: softmax + cross-entropy (multiclass), sigmoid +
    binary cross-entropy (binary: one output unit; multilabel: one per label).

    Parameters are scikit-learn's ``MLPClassifier``'s (``solver`` "sgd", "adam" or "lbfgs";
    ``dtype`` None: X's, float32 stays float32, anything else float64) plus
    ``backend`` ("auto", "numpy", "cupy", "torch", "array_api_strict"), ``device``,
    ``dtype`` ("float32" or "float64" wins over X's), ``dropout`` (a rate, or one per hidden
    layer), ``progress_bar`` (True: a tqdm bar over the epochs; "batches": also over each
    epoch's batches),
    ``activation`` (a name or one per hidden layer), ``clip_norm``, ``tf32`` (float32
    matrix products on TF32 tensor cores of a CUDA GPU: several times faster for wide layers,
    products rounded to a 10-bit mantissa; no effect on the CPU or in float64), ``init``
    ("glorot": scikit-learn's; "he") and ``class_weight`` (None, "balanced" or {label:
    weight}: each row's weight in the loss is multiplied by its class's). ``graphs`` (CUDA
    graphs, :mod:`xpnet.training.graphs`): True captures each epoch's full batches once and
    replays them (torch on CUDA; CuPy with nvmath-python), bit for bit the eager results,
    and raises where it cannot; False runs eagerly; "auto" (the default) runs eagerly until
    CUDA graphs are verified on a GPU. ``verbose`` says which and why. ``kernels``: which
    kernels the training step runs, "auto" (the backend's own), "portable" (the reference
    kernels of :mod:`xpnet.core.kernels`) or "fused" (CuPy's fused CUDA kernels, off by
    default until verified on a GPU; refused on the other backends).
    """

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: Any = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: Any = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: Any = None, tol: float = 1e-4, verbose: bool = False,
                 warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: Any = 10, max_fun: int = 15000,
                 backend: str = "auto", device: Any = None, dtype: str | None = None,
                 dropout: Any = 0.0, clip_norm: float | None = None, tf32: bool = False,
                 init: str = "glorot", distributed: Any = None, class_weight: Any = None,
                 progress_bar: Any = False, graphs: Any = "auto",
                 kernels: str = "auto") -> None:
        self._store(locals())

    def _target(self, y: Any, n: int, be: Backend, cfg: Config, first: bool,
                incremental: bool, classes: Any) -> Target:
        name = type(self).__name__
        if first and not incremental:  # classes: every rank's labels, in data-parallel fits
            return classification_target(
                y, n, be, cfg.dtype, estimator=name,
                classes=None if classes is None else np.unique(np.asarray(classes)))
        known = getattr(self, "classes_", None) if not first else None
        width = self.n_outputs_ if known is not None and self._target_kind == "multilabel" \
            else None
        if classes is not None:
            given = np.unique(np.asarray(classes))
            if known is not None and not np.array_equal(given, known):
                raise ValueError(f"`classes={given.tolist()!r}` is not the same as on the last "
                                 f"call to partial_fit, was: {np.asarray(known).tolist()!r}")
            known = known if known is not None else given
        if known is None:
            if incremental and np.ndim(to_numpy(y) if is_backend_array(y) else y) == 2:
                return classification_target(y, n, be, cfg.dtype, estimator=name)
            if incremental:
                raise ValueError("classes must be passed on the first call to partial_fit: "
                                 "the list of all labels, e.g. classes=np.unique(y_all)")
            return classification_target(y, n, be, cfg.dtype, estimator=name)
        if known.shape[0] < 2 and width is None:
            raise ValueError(f"{name} needs at least 2 classes; classes={known.tolist()!r}")
        if self.warm_start and not incremental and width is None:
            seen = np.unique(to_numpy(y) if is_backend_array(y) else np.asarray(y))
            if seen.shape != known.shape or not np.array_equal(np.sort(seen), known):
                raise ValueError(f"warm_start can only be used where `y` has the same classes as "
                                 f"in the previous call to fit. Previously got {known}, `y` has "
                                 f"{seen}. Set warm_start=False to train a new model on these "
                                 f"classes")  # scikit-learn's words, then what to do
        return classification_target(y, n, be, cfg.dtype, classes=known,
                                     multilabel_width=width, estimator=name)

    @stochastic_only
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None, *,
                    validation_data: tuple[Any, Any] | None = None,
                    callbacks: Any = None) -> "MLPClassifier":
        """One epoch over X, y (``classes``: all labels, required on the first call; the
        arguments in scikit-learn's order); ``validation_data=(X_val, y_val)`` is scored
        after it (see :meth:`fit`)."""
        return self._fit(X, y, incremental=True, classes=classes,
                         validation_data=validation_data, sample_weight=sample_weight,
                         callbacks=callbacks)

    def predict(self, X: Any) -> Any:
        """The class labels (n_samples,), or a 0/1 indicator (n_samples, n_labels) for a
        multilabel model; a backend array stays on its device (numeric labels)."""
        self._check_fitted()
        xp = self._net.backend.xp
        kind = self._target_kind

        def index(AL: Any) -> Any:
            return class_index(AL, kind, xp=xp)

        if kind == "multilabel":
            P, native = self._predict(X, index)
            return self._out(P, native)
        # one class (scikit-learn's): its output unit is trained to 0; the label is that class
        classes = label_classes(self.classes_)
        if is_backend_array(X) and classes.dtype.kind in "biuf":
            C = self._net.backend.asarray(classes)
            labels, _ = self._predict(X, lambda AL: xp.take(C, index(AL), axis=0))
            return labels
        idx, _ = self._predict(X, index)
        return classes[to_numpy(idx)]

    def predict_proba(self, X: Any) -> Any:
        """Probabilities (n_samples, n_classes) in the order of ``classes_``."""
        self._check_fitted()
        xp, kind = self._net.backend.xp, self._target_kind
        P, native = self._predict(X, lambda AL: probabilities(AL, kind, xp=xp))
        return self._out(P, native)

    def predict_log_proba(self, X: Any) -> Any:
        """log(predict_proba(X))."""
        P = self.predict_proba(X)
        if isinstance(P, np.ndarray):  # P is ours (a fresh array): log in place if writable
            with np.errstate(divide="ignore"):
                return np.log(P, out=P if P.flags.writeable else None)
        return self._net.backend.xp.log(P)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy of predict(X) against y (subset accuracy for multilabel)."""
        self._check_fitted()
        y_pred = to_numpy(self.predict(X))
        y_true = np.asarray(to_numpy(y) if is_backend_array(y) else y)
        check_y_length(y_true, y_pred.shape[0])
        if self._target_kind == "multilabel":
            if y_true.shape != y_pred.shape:
                raise ValueError(f"y must be a 0/1 indicator of shape {y_pred.shape}; got "
                                 f"{y_true.shape}")
            hit = np.all(y_true == y_pred, axis=1)
        else:
            if y_true.ndim == 2 and y_true.shape[1] == 1:
                y_true = y_true.reshape(-1)
            unseen = np.setdiff1d(np.unique(y_true), self.classes_)
            if unseen.size:
                raise ValueError(f"y contains labels never seen at fit: {unseen.tolist()!r}; "
                                 f"the model knows the classes {self.classes_.tolist()!r}")
            hit = y_true == y_pred
        return _weighted_mean(hit.astype(np.float64), sample_weight)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor, 1-D or 2-D y: ``loss="squared_error"`` (identity
    output; the loss reported is the mean over the outputs, as scikit-learn's) or
    ``"poisson"`` (exp output and half the Poisson deviance, for counts and rates y >= 0).

    Parameters: ``loss`` first, then as :class:`MLPClassifier` (scikit-learn's order).
    """

    def __init__(self, loss: str = "squared_error", hidden_layer_sizes: Any = (100,),
                 activation: Any = "relu", *, solver: str = "adam", alpha: float = 0.0001,
                 batch_size: Any = "auto", learning_rate: str = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5, max_iter: int = 200,
                 shuffle: bool = True, random_state: Any = None, tol: float = 1e-4,
                 verbose: bool = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: Any = 10, max_fun: int = 15000,
                 backend: str = "auto", device: Any = None, dtype: str | None = None,
                 dropout: Any = 0.0, clip_norm: float | None = None, tf32: bool = False,
                 init: str = "glorot", distributed: Any = None,
                 progress_bar: Any = False, graphs: Any = "auto",
                 kernels: str = "auto") -> None:
        self._store(locals())

    def _target(self, y: Any, n: int, be: Backend, cfg: Config, first: bool,
                incremental: bool, classes: Any) -> Target:
        if self.loss not in _LOSSES:
            hint = (" (hidden_layer_sizes is MLPRegressor's second parameter, as in "
                    "scikit-learn: pass hidden_layer_sizes=...)"
                    if not isinstance(self.loss, str) else "")
            raise ValueError(f"loss must be one of {', '.join(map(repr, _LOSSES))}; got "
                             f"{self.loss!r}{hint}")
        return regression_target(y, n, be, cfg.dtype, loss=self.loss,
                                 n_outputs=None if first else self.n_outputs_)

    @stochastic_only
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, *,
                    validation_data: tuple[Any, Any] | None = None,
                    callbacks: Any = None) -> "MLPRegressor":
        """One epoch over X, y; ``validation_data=(X_val, y_val)`` is scored after it (see
        :meth:`fit`)."""
        return self._fit(X, y, incremental=True, validation_data=validation_data,
                         sample_weight=sample_weight, callbacks=callbacks)

    def predict(self, X: Any) -> Any:
        """Predictions (n_samples,) or (n_samples, n_outputs)."""
        self._check_fitted()
        xp = self._net.backend.xp
        outputs = int(self._net.W[self._net.L].shape[0])
        P, native = self._predict(X, lambda AL: regression_values(AL, outputs, xp=xp))
        return self._out(P, native)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R^2 of predict(X) against y, averaged over outputs (scikit-learn's r2_score)."""
        self._check_fitted()
        y_pred = np.asarray(to_numpy(self.predict(X)), dtype=np.float64)
        y_true = np.asarray(to_numpy(y) if is_backend_array(y) else y, dtype=np.float64)
        check_y_length(y_true, y_pred.shape[0])
        y_true = y_true.reshape(y_pred.shape) if y_true.size == y_pred.size else y_true
        if y_true.shape != y_pred.shape:
            raise ValueError(f"y has shape {y_true.shape}; expected {y_pred.shape}")
        if not np.isfinite(y_true).all():
            raise ValueError("Input y contains NaN or infinity; score needs finite targets")
        if y_pred.shape[0] < 2:
            return float("nan")
        w = np.ones(y_true.shape[0]) if sample_weight is None else np.asarray(
            sample_weight, dtype=np.float64)
        yt = y_true.reshape(y_true.shape[0], -1)
        yp = y_pred.reshape(y_pred.shape[0], -1)
        res = (w[:, None] * (yt - yp) ** 2).sum(axis=0)
        mean = np.average(yt, axis=0, weights=w)
        tot = (w[:, None] * (yt - mean) ** 2).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(tot == 0, np.where(res == 0, 1.0, 0.0), 1.0 - res / tot)
        return float(np.mean(r2))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _weighted_mean(values: np.ndarray, sample_weight: Any) -> float:
    if sample_weight is None:
        return float(values.mean())
    w = np.asarray(to_numpy(sample_weight) if is_backend_array(sample_weight)
                   else sample_weight, dtype=np.float64)
    if w.shape != values.shape:
        raise ValueError(f"sample_weight has shape {w.shape}; expected {values.shape}")
    return float(np.average(values, weights=w))


def load(path: str | os.PathLike, backend: str | None = None, device: Any = None) -> BaseMLP:
    """A fitted MLPClassifier / MLPRegressor from a model file, on ``backend`` / ``device``
    (default: the estimator's own ``backend`` setting, resolved here; NumPy when that one is
    not usable on this machine). Never unpickles."""
    path = os.path.expanduser(os.fspath(path))
    return modelfile.load_estimator(path, {"MLPClassifier": MLPClassifier,
                                           "MLPRegressor": MLPRegressor}, backend, device)
