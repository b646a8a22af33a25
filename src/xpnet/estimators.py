"""MLPClassifier and MLPRegressor: scikit-learn's multi-layer perceptrons on any array backend.

Same parameter names and fitted attributes as ``sklearn.neural_network``, plus ``backend``,
``device``, ``dtype``, ``dropout``, per-layer ``activation`` and ``clip_norm``. X is
(n_samples, n_features) as in scikit-learn; the network works with examples in columns
(X^T), and W[l] is stored (n[l], n[l-1]) on the device, so ``coefs_[l-1] = W[l]^T`` (NumPy).

The loop is :class:`xpnet.training.Trainer`; model files are :mod:`xpnet.modelfile`.
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from typing import Any

import numpy as np

from . import modelfile
from ._sklearn import (BaseEstimator, ClassifierMixin, ConvergenceWarning, NotFittedError,
                       RegressorMixin)
from .activations import HIDDEN_ACTIVATIONS
from .backend import Backend, device_context, is_out_of_memory, to_numpy
from .forward import forward
from .init import default_init, initialize_parameters
from .inputs import (Target, check_X, check_y_length, classification_target, is_backend_array,
                     regression_target, resolve_backend)
from .optimizers import SCHEDULES, LearningRateSchedule, make_optimizer
from .training import (DeviceMemoryError, Network, Progress, Settings, Trainer, memory_estimate,
                       out_of_memory)

__all__ = ["MLPClassifier", "MLPRegressor", "load"]

_SOLVERS = ("sgd", "adam")
_ALIASES = {"logistic": "sigmoid"}  # scikit-learn's name for the sigmoid


def _number(name: str, value: Any, *, low: float = -math.inf, high: float = math.inf,
            low_open: bool = False, high_open: bool = False, integer: bool = False) -> Any:
    ok = not isinstance(value, (bool, str)) and isinstance(value, (int, float, np.number))
    if ok and integer:
        ok = float(value).is_integer()
    if ok:
        x = float(value)
        ok = (not math.isnan(x) and (x > low if low_open else x >= low)
              and (x < high if high_open else x <= high))
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        what = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {what} in {lo}{low:g}, {high:g}{hi}; got {value!r}")
    return int(value) if integer else float(value)


class _Config:
    """The checked hyperparameters of one fit (nothing here touches the estimator)."""

    def __init__(self, est: "_BaseMLP") -> None:
        hls = est.hidden_layer_sizes
        hidden = [hls] if isinstance(hls, (int, np.integer)) and not isinstance(hls, bool) \
            else list(hls) if isinstance(hls, (list, tuple, np.ndarray)) else None
        if hidden is None or any(isinstance(n, bool) or not isinstance(n, (int, np.integer))
                                 or n < 1 for n in hidden):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hls!r}: give positive "
                             f"integers, one per hidden layer, e.g. (100,) or (256, 128)")
        self.hidden = [int(n) for n in hidden]
        act = est.activation
        acts = [act] * len(self.hidden) if isinstance(act, str) else list(act) \
            if isinstance(act, (list, tuple)) else None
        if acts is None or len(acts) != len(self.hidden):
            raise ValueError(f"activation must be a name or a list of one name per hidden layer "
                             f"({len(self.hidden)}); got {act!r}")
        for i, a in enumerate(acts):
            if _ALIASES.get(a, a) not in HIDDEN_ACTIVATIONS:
                raise ValueError(f"unknown activation {a!r}"
                                 + (f" for hidden layer {i + 1}" if not isinstance(act, str)
                                    else "")
                                 + f"; expected one of {', '.join(HIDDEN_ACTIVATIONS)} "
                                   f"(or 'logistic' for sigmoid)")
        self.activations = [_ALIASES.get(a, a) for a in acts]
        if est.solver not in _SOLVERS:
            raise ValueError(f"unknown solver {est.solver!r}; expected one of "
                             f"{', '.join(_SOLVERS)} (xpnet has no 'lbfgs')")
        self.solver = est.solver
        if est.learning_rate not in SCHEDULES:
            raise ValueError(f"unknown learning_rate {est.learning_rate!r}; expected one of "
                             f"{', '.join(SCHEDULES)}")
        self.schedule = est.learning_rate
        self.alpha = _number("alpha", est.alpha, low=0.0, high_open=True)
        self.lr = _number("learning_rate_init", est.learning_rate_init, low=0.0, low_open=True,
                          high_open=True)
        self.power_t = _number("power_t", est.power_t, low=0.0, high_open=True)
        self.max_iter = _number("max_iter", est.max_iter, low=1, integer=True)
        self.tol = _number("tol", est.tol, low=0.0, high_open=True)
        self.momentum = _number("momentum", est.momentum, low=0.0, high=1.0)
        self.beta_1 = _number("beta_1", est.beta_1, low=0.0, high=1.0, high_open=True)
        self.beta_2 = _number("beta_2", est.beta_2, low=0.0, high=1.0, high_open=True)
        self.epsilon = _number("epsilon", est.epsilon, low=0.0, low_open=True, high_open=True)
        self.n_iter_no_change = _number("n_iter_no_change", est.n_iter_no_change, low=1,
                                        integer=True)
        self.validation_fraction = _number("validation_fraction", est.validation_fraction,
                                           low=0.0, high=1.0, low_open=True, high_open=True)
        bs = est.batch_size
        if not (isinstance(bs, str) and bs == "auto"):
            bs = _number("batch_size", bs, low=1, integer=True)
        self.batch_size = bs
        try:
            dt = np.dtype(est.dtype).name
        except TypeError:
            dt = str(est.dtype)
        if dt not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64'; got {est.dtype!r}")
        self.dtype = dt
        drop = est.dropout
        rates = [drop] * len(self.hidden) if not isinstance(drop, (list, tuple)) else list(drop)
        if len(rates) != len(self.hidden):
            raise ValueError(f"dropout must be one rate or one per hidden layer "
                             f"({len(self.hidden)}); got {drop!r}")
        self.dropout = [_number("dropout", r, low=0.0, high=1.0, high_open=True) for r in rates]
        if not any(self.dropout):
            self.dropout = None
        self.clip_norm = None if est.clip_norm is None else _number(
            "clip_norm", est.clip_norm, low=0.0, low_open=True, high_open=True)
        self.early_stopping = bool(est.early_stopping)
        self.shuffle = bool(est.shuffle)
        self.verbose = bool(est.verbose)
        rs = est.random_state
        if not (rs is None or isinstance(rs, (np.random.Generator, np.random.RandomState))
                or isinstance(rs, (int, np.integer)) and not isinstance(rs, bool) and rs >= 0):
            raise ValueError(f"random_state must be None, a non-negative int, a "
                             f"numpy.random.Generator or RandomState; got {rs!r}")

    def rng(self, random_state: Any) -> np.random.Generator:
        """The host generator every draw of a fit comes from."""
        if isinstance(random_state, np.random.Generator):
            return random_state
        if isinstance(random_state, np.random.RandomState):
            return np.random.default_rng(random_state.randint(0, 2 ** 31 - 1))
        return np.random.default_rng(random_state)


def _split(n: int, fraction: float, rng: np.random.Generator, labels: np.ndarray | None
           ) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row indices; n_val = ceil(fraction n), stratified by ``labels``."""
    n_val = math.ceil(fraction * n)
    if n_val < 2 or n - n_val < 1:
        raise ValueError(f"The validation set is too small: validation_fraction="
                         f"{fraction:g} of {n} samples gives {n_val} validation and "
                         f"{n - n_val} training samples. Increase validation_fraction or the "
                         f"size of your dataset (early stopping needs >= 2 validation samples)")
    perm = rng.permutation(n)
    if labels is None:
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])
    lab = labels[perm]
    classes, counts = np.unique(lab, return_counts=True)
    share = counts * n_val / n
    take = np.floor(share).astype(int)
    order = np.argsort(-(share - take), kind="stable")
    take[order[: n_val - take.sum()]] += 1
    val = np.concatenate([perm[lab == c][:k] for c, k in zip(classes, take)])
    mask = np.ones(n, dtype=bool)
    mask[val] = False
    return np.flatnonzero(mask), np.sort(val)


class _BaseMLP(BaseEstimator):
    """What MLPClassifier and MLPRegressor share: parameters, fitting, the loop, persistence."""

    _kind_of_estimator = ""

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: Any = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: Any = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: Any = None, tol: float = 1e-4, verbose: bool = False,
                 warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: int = 10, backend: str = "auto",
                 device: Any = None, dtype: str = "float32", dropout: Any = 0.0,
                 clip_norm: float | None = None) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.backend = backend
        self.device = device
        self.dtype = dtype
        self.dropout = dropout
        self.clip_norm = clip_norm

    # ------------------------------------------------------------------ what users see
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
        for l, v in zip(range(1, net.L + 1), vals):
            if is_W:
                net.W[l] = net.backend.asarray(np.ascontiguousarray(v.T))
            else:
                net.b[l] = net.backend.asarray(v.reshape(-1, 1))
        if hasattr(self, "_optimizer"):  # its state was for the old arrays' values only
            del self._optimizer

    @property
    def n_layers_(self) -> int:
        self._check_fitted()
        return self._net.L + 1

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
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
        defaults = type(self)().get_params()
        for key, value in self.get_params(deep=False).items():
            if key in ("hidden_layer_sizes", "activation", "backend"):
                continue
            try:
                same = bool(value == defaults[key]) and type(value) is type(defaults[key])
            except Exception:
                same = False
            if not same:
                parts.append(f"{key}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    # ------------------------------------------------------------------ fitting
    def _target(self, y: Any, n: int, be: Backend, cfg: _Config, first: bool,
                incremental: bool, classes: Any) -> Target:  # pragma: no cover
        raise NotImplementedError

    def fit(self, X: Any, y: Any, *, validation_data: tuple[Any, Any] | None = None,
            checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 1,
            resume: bool = False) -> "_BaseMLP":
        """Train on X (n_samples, n_features) and y for up to ``max_iter`` epochs.

        ``validation_data=(X_val, y_val)`` (Keras' keyword): scored after every epoch, filling
        ``validation_loss_curve_``, ``validation_scores_`` and ``history_`` (and the progress
        bar) with or without early stopping. It is checked like X, y (same features; known
        labels) and moved to the backend once. With ``early_stopping=True`` it *replaces* the
        internal ``validation_fraction`` split: all of X, y is trained on and the validation
        score on ``validation_data`` decides when to stop and which weights to keep.

        ``checkpoint``: a path written atomically every ``checkpoint_every`` epochs and at the
        last one (parameters, optimizer, RNG, epoch counter, history). ``resume=True``
        continues from that file, bit for bit as the uninterrupted run would have (a missing
        file starts a new run); pass the same data, ``validation_data`` included (the
        checkpoint records a fingerprint of it and refuses other validation data).
        """
        return self._fit(X, y, incremental=False, validation_data=validation_data,
                         checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                         resume=resume)

    def _fit(self, X: Any, y: Any, *, incremental: bool, classes: Any = None,
             validation_data: Any = None, checkpoint: Any = None, checkpoint_every: int = 1,
             resume: bool = False) -> "_BaseMLP":
        # 1. everything is checked before the estimator changes
        cfg = _Config(self)
        if incremental and cfg.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True: set "
                             "early_stopping=False, or use fit")
        every = _number("checkpoint_every", checkpoint_every, low=1, integer=True)
        if resume and checkpoint is None:
            raise ValueError("resume=True needs checkpoint=PATH (the file to continue from)")
        ckpt = None
        if resume and os.path.exists(checkpoint):
            ckpt = modelfile.read(checkpoint, training=True)
        fitted = hasattr(self, "_net")
        first = ckpt is None and (not fitted or (not self.warm_start and not incremental))
        if incremental and fitted and not first:
            be = self._net.backend
            if is_backend_array(X):
                be = resolve_backend(be, None, X)
        else:
            be = resolve_backend(self.backend, self.device, X)
        with device_context(be):
            return self._fit_on(be, cfg, X, y, first=first, ckpt=ckpt, incremental=incremental,
                                classes=classes, validation_data=validation_data,
                                checkpoint=checkpoint, every=every)

    def _validation(self, data: Any, be: Backend, cfg: _Config, target: Target,
                    n_features: int) -> tuple[Any, Any]:
        """``validation_data`` checked like X, y and moved to ``be``: (X_val, Y_val), rows
        are examples, Y_val encoded as the training Y (same classes, same columns)."""
        name = type(self).__name__
        if isinstance(data, (str, bytes)) or not isinstance(data, (tuple, list)) \
                or len(data) != 2:
            got = f"a {type(data).__name__}" + (f" of length {len(data)}" if isinstance(
                data, (tuple, list)) else "")
            raise ValueError(f"validation_data must be a pair (X_val, y_val); got {got}. "
                             f"Pass validation_data=(X_val, y_val) (sample weights are not "
                             f"supported)")
        X_val, y_val = data
        n_outputs = int(target.Y.shape[1])
        try:
            Xv = check_X(X_val, be, cfg.dtype, estimator=name, name="validation_data X")
            if int(Xv.shape[1]) != n_features:
                raise ValueError(f"validation_data X has {int(Xv.shape[1])} features but X has "
                                 f"{n_features}; pass validation data with the same columns "
                                 f"as X")
            m = int(Xv.shape[0])
            try:
                if target.kind == "continuous":
                    Yv = regression_target(y_val, m, be, cfg.dtype, n_outputs=n_outputs)
                else:
                    width = n_outputs if target.kind == "multilabel" else None
                    Yv = classification_target(y_val, m, be, cfg.dtype, classes=target.classes,
                                               multilabel_width=width, estimator=name)
            except (ValueError, TypeError) as exc:
                raise type(exc)(f"validation_data: {exc}") from None
        except Exception as exc:
            if is_out_of_memory(exc):
                shape = tuple(getattr(X_val, "shape", np.shape(X_val)))
                bs = cfg.batch_size if cfg.batch_size != "auto" else 200
                itemsize = 4 if cfg.dtype == "float32" else 8
                raise out_of_memory(exc, f"moving validation_data X {shape} there", be, bs,
                                    int(np.prod(shape)) * itemsize) from exc
            raise
        if Yv.kind != target.kind or int(Yv.Y.shape[1]) != n_outputs:
            raise ValueError(f"validation_data: y is {Yv.kind} with {int(Yv.Y.shape[1])} "
                             f"column(s) but the training y is {target.kind} with {n_outputs}; "
                             f"pass validation targets of the same form as y")
        if target.kind == "continuous" and m < 2:
            raise ValueError("validation_data has 1 sample; the validation score of a "
                             "regressor (R^2) needs at least 2")
        return Xv, Yv.Y

    def _fit_on(self, be: Backend, cfg: _Config, X: Any, y: Any, *, first: bool, ckpt: Any,
                incremental: bool, classes: Any, validation_data: Any, checkpoint: Any,
                every: int) -> "_BaseMLP":
        name = type(self).__name__
        try:
            Xd = check_X(X, be, cfg.dtype, estimator=name,
                         n_features=None if first or ckpt else self.n_features_in_)
            target = self._target(y, int(Xd.shape[0]), be, cfg, first or ckpt is not None,
                                  incremental, classes)
        except Exception as exc:
            if is_out_of_memory(exc):
                shape = tuple(getattr(X, "shape", np.shape(X)))
                n, d = (shape + (1, 1))[:2]
                bs = cfg.batch_size if cfg.batch_size != "auto" else min(200, n)
                itemsize = 4 if cfg.dtype == "float32" else 8
                needed = n * d * itemsize + memory_estimate([d, *cfg.hidden, 1], bs, itemsize,
                                                            cfg.solver)
                raise out_of_memory(exc, f"moving the training data X {shape} there", be, bs,
                                    needed) from exc
            raise
        n, n_features = int(Xd.shape[0]), int(Xd.shape[1])
        n_outputs = int(target.Y.shape[1])
        dims = [n_features, *cfg.hidden, n_outputs]
        g = [*cfg.activations, target.out_activation]
        if not first and ckpt is None and (self._net.dims != dims or self._net.g != g):
            raise ValueError(f"the fitted network is {'-'.join(map(str, self._net.dims))} "
                             f"({', '.join(self._net.g)}) but the parameters now ask for "
                             f"{'-'.join(map(str, dims))} ({', '.join(g)}); set "
                             f"warm_start=False to train a new network")
        val = None if validation_data is None else self._validation(
            validation_data, be, cfg, target, n_features)
        fingerprint = None  # of validation_data, for checkpoints (one read per fit)
        if val is not None and checkpoint is not None:
            fingerprint = _fingerprint(*val)
        if ckpt is not None:
            modelfile.check_resumable(ckpt, type(self).__name__, dims, g, cfg.dtype, n,
                                      cfg.solver, checkpoint, validation=fingerprint)
        # 2. the state of this fit: fresh, continued, or resumed from a checkpoint
        if ckpt is not None:
            state = modelfile.restore_training(ckpt, be)
            net, optimizer, schedule, progress, rng = (state["net"], state["optimizer"],
                                                       state["schedule"], state["progress"],
                                                       state["rng"])
            train_idx, val_idx, best = state["train_idx"], state["val_idx"], state["best"]
        else:
            rng = cfg.rng(self.random_state) if (first or not incremental) else self._rng
            if first:
                try:
                    inits = [default_init(a) for a in g]
                    W, b = initialize_parameters(dims, init=inits, rng=rng, dtype=cfg.dtype,
                                                 backend=be)
                except Exception as exc:
                    if is_out_of_memory(exc):
                        bs = cfg.batch_size if cfg.batch_size != "auto" else min(200, n)
                        raise out_of_memory(exc, "allocating the parameters", be, bs,
                                            memory_estimate(dims, bs, 4 if cfg.dtype ==
                                                            "float32" else 8, cfg.solver)
                                            ) from exc
                    raise
                net = Network(W, b, g, be)
            else:
                net = self._net
                if net.backend != be:
                    net = Network(*_moved(net, be, cfg.dtype), g, be)
            optimizer = None
            if incremental and not first and hasattr(self, "_optimizer") and net is self._net:
                optimizer = self._optimizer
            if optimizer is None:
                optimizer = self._new_optimizer(cfg, net)
            schedule = LearningRateSchedule(cfg.schedule, power_t=cfg.power_t, tol=cfg.tol,
                                            n_iter_no_change=cfg.n_iter_no_change,
                                            early_stopping=cfg.early_stopping)
            if not first and hasattr(self, "_schedule"):
                old = self._schedule
                schedule.best_loss = old.best_loss
                schedule.best_validation_score = old.best_validation_score
                schedule.no_improvement_count = old.no_improvement_count
            progress = Progress() if first else self._progress
            progress.n_iter = 0  # scikit-learn counts the epochs of each call
            train_idx = val_idx = None
            best = None
            if cfg.early_stopping and val is None:
                labels = None  # class indices (not one-hot rows) come to the host
                if target.kind == "multiclass":
                    labels = to_numpy(be.xp.argmax(target.Y, axis=1))
                elif target.kind == "binary":
                    labels = to_numpy(target.Y[:, 0])
                train_idx, val_idx = _split(n, cfg.validation_fraction, rng, labels)
        Y = target.Y
        if val is not None:  # validation_data: all of X, y is for training
            X_train, Y_train, (X_val, Y_val) = Xd, Y, val
        elif val_idx is not None:
            xp = be.xp
            ti, vi = be.asarray(train_idx), be.asarray(val_idx)
            X_train, Y_train = xp.take(Xd, ti, axis=0), xp.take(Y, ti, axis=0)
            X_val, Y_val = xp.take(Xd, vi, axis=0), xp.take(Y, vi, axis=0)
        else:
            X_train, Y_train, X_val, Y_val = Xd, Y, None, None
        if X_val is not None and progress.val_scores is None:
            # one entry per epoch, as loss_curve_: NaN for earlier epochs without validation
            progress.val_scores = [math.nan] * len(progress.loss_curve)
            progress.val_loss_curve = [math.nan] * len(progress.loss_curve)
        n_train = int(X_train.shape[0])
        if cfg.batch_size == "auto":
            batch_size = min(200, n_train)
        else:
            batch_size = cfg.batch_size
            if batch_size > n_train:
                warnings.warn(f"Got `batch_size` less than 1 or larger than sample size. It is "
                              f"going to be clipped: batch_size={batch_size} > {n_train} "
                              f"training samples; using {n_train}", UserWarning, stacklevel=3)
                batch_size = n_train
        # 3. from here on the estimator changes (kept to restore if memory runs out at once)
        before = self.__dict__.copy()
        self._net, self._optimizer, self._schedule, self._progress = (net, optimizer, schedule,
                                                                      progress)
        self._rng, self._dtype, self._target_kind = rng, cfg.dtype, target.kind
        self.n_features_in_, self.n_outputs_ = n_features, n_outputs
        self.out_activation_ = "logistic" if target.out_activation == "sigmoid" \
            else target.out_activation
        if target.classes is not None:
            self.classes_ = target.classes
        self._split = (train_idx, val_idx)
        settings = Settings(max_iter=cfg.max_iter, batch_size=batch_size, shuffle=cfg.shuffle,
                            alpha=cfg.alpha, dropout=cfg.dropout, clip_norm=cfg.clip_norm,
                            incremental=incremental, verbose=cfg.verbose, kind=target.kind,
                            name=name)

        def on_epoch_end(trainer: Trainer, last: bool) -> None:
            if checkpoint is not None and (progress.n_iter % every == 0 or last):
                modelfile.write(self, checkpoint, trainer=trainer, validation=fingerprint)

        trainer = Trainer(net, optimizer, schedule, progress, rng, settings, X_train, Y_train,
                          X_val, Y_val, best=best, on_epoch_end=on_epoch_end)
        try:
            if ckpt is not None and ckpt[1]["training"].get("stop") == "converged":
                reason = "converged"  # the checkpointed run had stopped: nothing left to do
            else:
                reason = trainer.run()
        except DeviceMemoryError:
            if progress.n_iter == 0:  # no epoch of this call finished: undo the whole call
                self.__dict__.clear()  # (the trainer already restored the parameters)
                self.__dict__.update(before)
                raise
            self._publish()
            raise
        except BaseException:
            self._publish()
            raise
        self._publish()
        if cfg.early_stopping and trainer.best is not None:
            net.assign(*trainer.best)  # scikit-learn restores the best weights, even when
        if reason == "max_iter" and not incremental:  # interrupted
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({cfg.max_iter}) reached "
                          f"and the optimization hasn't converged yet. Raise max_iter, or "
                          f"learning_rate_init, or loosen tol.", ConvergenceWarning, stacklevel=3)
        return self

    def _new_optimizer(self, cfg: _Config, net: Network) -> Any:
        if cfg.solver == "sgd":
            return make_optimizer("sgd", net.params(), learning_rate=cfg.lr,
                                  momentum=cfg.momentum, nesterov=bool(self.nesterovs_momentum))
        return make_optimizer("adam", net.params(), learning_rate=cfg.lr, beta_1=cfg.beta_1,
                              beta_2=cfg.beta_2, epsilon=cfg.epsilon)

    def _publish(self) -> None:
        """scikit-learn's fitted attributes from the loop's bookkeeping."""
        p, s = self._progress, self._schedule
        self.n_iter_, self.t_, self.loss_ = p.n_iter, p.t, p.loss
        self.loss_curve_ = list(p.loss_curve)
        self.validation_loss_curve_ = None if p.val_loss_curve is None else list(p.val_loss_curve)
        self.validation_scores_ = None if p.val_scores is None else list(p.val_scores)
        self.history_ = [dict(h) for h in p.history]
        self.best_loss_ = None if s.early_stopping else s.best_loss
        self.best_validation_score_ = s.best_validation_score if s.early_stopping else None

    # ------------------------------------------------------------------ predicting
    def _forward(self, X: Any) -> tuple[Any, bool]:
        """A[L] (n[L], m) for X on the model's backend, and whether X was a backend array."""
        self._check_fitted()
        net = self._net
        Xd = check_X(X, net.backend, self._dtype, n_features=self.n_features_in_,
                     estimator=type(self).__name__)
        with device_context(net.backend), np.errstate(over="ignore", invalid="ignore"):
            AL, _ = forward(Xd.T, net.W, net.b, net.g, xp=net.backend.xp)
        return AL, is_backend_array(X)

    @staticmethod
    def _out(A: Any, native: bool) -> Any:
        return A if native else np.ascontiguousarray(to_numpy(A))

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to ``path`` (atomically; parameters, architecture, optimizer
        state, classes and history; no pickle). Read it back with :func:`xpnet.load`."""
        self._check_fitted()
        modelfile.write(self, path)

    def __getstate__(self) -> dict[str, Any]:
        """Device arrays become NumPy, so a model trained on a GPU unpickles anywhere."""
        state = self.__dict__.copy()
        if "_net" in state:
            state["_net"] = modelfile.host_network(state["_net"])
        if "_optimizer" in state:
            state["_optimizer"] = modelfile.host_optimizer(state["_optimizer"])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "_net" in state and isinstance(state["_net"], dict):
            net = modelfile.device_network(state["_net"], warn_fallback=True)
            state["_net"] = net
            if isinstance(state.get("_optimizer"), dict):
                state["_optimizer"] = modelfile.device_optimizer(state["_optimizer"], net)
        self.__dict__.update(state)


def _fingerprint(X: Any, Y: Any) -> dict[str, Any]:
    """{"samples": m, "sha256": ...} of validation data as trained on (X and encoded Y in the
    model's dtype): what a checkpoint records, so a resumed fit gets the same data again."""
    h = hashlib.sha256()
    for A in (X, Y):
        a = np.ascontiguousarray(to_numpy(A))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return {"samples": int(X.shape[0]), "sha256": h.hexdigest()}


def _moved(net: Network, be: Backend, dtype: str) -> tuple[dict, dict]:
    W = {l: be.asarray(to_numpy(w), dtype=dtype) for l, w in net.W.items()}
    b = {l: be.asarray(to_numpy(v), dtype=dtype) for l, v in net.b.items()}
    return W, b


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier: softmax + cross-entropy (multiclass), sigmoid +
    binary cross-entropy (binary: one output unit; multilabel: one per label).

    Parameters are scikit-learn's ``MLPClassifier``'s (``solver`` "sgd" or "adam") plus
    ``backend`` ("auto", "numpy", "cupy", "torch", "array_api_strict"), ``device``,
    ``dtype`` ("float32" or "float64"), ``dropout`` (a rate, or one per hidden layer),
    ``activation`` (a name or one per hidden layer) and ``clip_norm``.
    """

    def _target(self, y: Any, n: int, be: Backend, cfg: _Config, first: bool,
                incremental: bool, classes: Any) -> Target:
        name = type(self).__name__
        if first and not incremental:
            return classification_target(y, n, be, cfg.dtype, estimator=name)
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
        target = classification_target(y, n, be, cfg.dtype, classes=known,
                                       multilabel_width=width, estimator=name)
        if self.warm_start and not incremental and width is None:
            seen = np.unique(to_numpy(y) if is_backend_array(y) else np.asarray(y))
            if not np.array_equal(np.sort(seen), known):
                raise ValueError(f"warm_start can only be used where `y` has the same classes as "
                                 f"in the previous call to fit. Previously got "
                                 f"{known.tolist()!r}, `y` has {seen.tolist()!r}")
        return target

    def partial_fit(self, X: Any, y: Any, classes: Any = None, *,
                    validation_data: tuple[Any, Any] | None = None) -> "MLPClassifier":
        """One epoch over X, y (``classes``: all labels, required on the first call);
        ``validation_data=(X_val, y_val)`` is scored after it (see :meth:`fit`)."""
        return self._fit(X, y, incremental=True, classes=classes,
                         validation_data=validation_data)

    def predict(self, X: Any) -> Any:
        """The class labels (n_samples,), or a 0/1 indicator (n_samples, n_labels) for a
        multilabel model; a backend array stays on its device (numeric labels)."""
        AL, native = self._forward(X)
        xp = self._net.backend.xp
        kind = self._target_kind
        if kind == "multilabel":
            P = xp.astype(AL > 0.5, xp.int64)
            return self._out(xp.permute_dims(P, (1, 0)), native)
        idx = xp.argmax(AL, axis=0) if kind == "multiclass" else xp.astype(AL[0, :] > 0.5,
                                                                              xp.int64)
        if native and self.classes_.dtype.kind in "biuf":
            return xp.take(self._net.backend.asarray(self.classes_), idx, axis=0)
        return self.classes_[to_numpy(idx)]

    def predict_proba(self, X: Any) -> Any:
        """Probabilities (n_samples, n_classes) in the order of ``classes_``."""
        AL, native = self._forward(X)
        xp = self._net.backend.xp
        if self._target_kind == "binary":
            p = AL[0, :]
            P = xp.stack([1.0 - p, p], axis=1)
        else:
            P = xp.permute_dims(AL, (1, 0))
        return self._out(P, native)

    def predict_log_proba(self, X: Any) -> Any:
        """log(predict_proba(X))."""
        P = self.predict_proba(X)
        if isinstance(P, np.ndarray):
            with np.errstate(divide="ignore"):
                return np.log(P)
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


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor: identity output + squared error, 1-D or 2-D y.

    Parameters: as :class:`MLPClassifier`.
    """

    def _target(self, y: Any, n: int, be: Backend, cfg: _Config, first: bool,
                incremental: bool, classes: Any) -> Target:
        return regression_target(y, n, be, cfg.dtype,
                                 n_outputs=None if first else self.n_outputs_)

    def partial_fit(self, X: Any, y: Any, *,
                    validation_data: tuple[Any, Any] | None = None) -> "MLPRegressor":
        """One epoch over X, y; ``validation_data=(X_val, y_val)`` is scored after it (see
        :meth:`fit`)."""
        return self._fit(X, y, incremental=True, validation_data=validation_data)

    def predict(self, X: Any) -> Any:
        """Predictions (n_samples,) or (n_samples, n_outputs)."""
        AL, native = self._forward(X)
        xp = self._net.backend.xp
        P = AL[0, :] if AL.shape[0] == 1 else xp.permute_dims(AL, (1, 0))
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


def load(path: str | os.PathLike, backend: str | None = None, device: Any = None) -> _BaseMLP:
    """A fitted MLPClassifier / MLPRegressor from a model file, on ``backend`` / ``device``
    (default: the estimator's own ``backend`` setting, resolved here; NumPy when that one is
    not usable on this machine). Never unpickles."""
    return modelfile.load_estimator(path, {"MLPClassifier": MLPClassifier,
                                           "MLPRegressor": MLPRegressor}, backend, device)
