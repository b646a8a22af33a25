"""How an estimator fits: its inputs checked, the training state built (fresh, continued or
restored from a checkpoint), then :class:`xpnet.training.Trainer` run on it.

:class:`FittingMixin` is the part of :class:`xpnet.base.BaseMLP` that does this; the estimators
add ``_target`` (how y becomes Y) and ``partial_fit``.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any

import numpy as np

from xpnet.io import modelfile
from xpnet.estimators.sklearn_base import ConvergenceWarning
from xpnet.backends import Backend, device_context, get_backend, is_out_of_memory, to_numpy
from xpnet.estimators.params import Config, check_number
from xpnet.training.distributed import Plan, local_rank, make_comm, rank_stream_seed, session
from xpnet.training.host_random import HostRandom, check_random_state
from xpnet.functional import initialize_parameters
from xpnet.estimators.feature_names import check_feature_names, feature_names
from xpnet.estimators.weights import check_sample_weight, class_weight_factors
from xpnet.estimators.inputs import (Target, check_X, input_dtype, is_backend_array,
                                     resolve_backend)
from xpnet.core.optim import LearningRateSchedule
from xpnet.training.streaming import SPARSE_CHUNK_BYTES, chunk_rows, is_sparse, should_stream
from xpnet.errors import NON_FINITE, DeviceMemoryError, DivergenceError
from xpnet.training.lbfgs import convergence_message, minimize_lbfgs
from xpnet.training import graphs
from xpnet.training.data import DataSource
from xpnet.training.loop import Trainer
from xpnet.training.step import step_kernels
from xpnet.training.network import Network
from xpnet.training.progress import (Progress, Settings, TrainingState, memory_estimate,
                                     out_of_memory)
from xpnet.estimators.holdout import holdout_split, validation_fingerprint, train_and_validation, validation_set

__all__ = ["FittingMixin"]  # for xpnet.base


class FittingMixin:
    """fit, and the steps of one fit (a mixin of :class:`xpnet.base.BaseMLP`)."""

    def _target(self, y: Any, n: int, be: Backend, cfg: Config, first: bool,
                incremental: bool, classes: Any) -> Target:  # pragma: no cover
        raise NotImplementedError

    def fit(self, X: Any, y: Any, sample_weight: Any = None, *,
            validation_data: tuple[Any, Any] | None = None,
            checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 1,
            resume: bool = False, callbacks: Any = None) -> "FittingMixin":
        """Train on X (n_samples, n_features) and y for up to ``max_iter`` epochs.

        ``sample_weight`` (n_samples,): each row's weight in the loss, as scikit-learn's
        (a batch's loss is the weighted mean of its rows'; the L2 term is divided by the
        batch's total weight); the early-stopping split takes its rows' weights along.

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

        ``callbacks``: :class:`xpnet.callbacks.Callback` objects (``on_train_begin``,
        ``on_epoch_end(estimator, logs)`` returning True to stop, ``on_train_end``), e.g.
        ``EarlyStopping(monitor="val_loss", patience=10)`` or ``CSVLogger(path)``.
        """
        return self._fit(X, y, incremental=False, validation_data=validation_data,
                         checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                         resume=resume, sample_weight=sample_weight, callbacks=callbacks)

    def _fit(self, X: Any, y: Any, *, incremental: bool, classes: Any = None,
             validation_data: Any = None, checkpoint: Any = None, checkpoint_every: int = 1,
             resume: bool = False, sample_weight: Any = None,
             callbacks: Any = None) -> "FittingMixin":
        # 1. everything is checked before the estimator changes
        cfg = Config(self)
        callbacks = _checked_callbacks(callbacks)
        comm = make_comm(getattr(self, "distributed", None))
        if incremental and cfg.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True: set "
                             "early_stopping=False, or use fit")
        if not cfg.stochastic:
            _check_lbfgs(cfg, validation_data=validation_data, checkpoint=checkpoint,
                         callbacks=callbacks, comm=comm)
        every = check_number("checkpoint_every", checkpoint_every, low=1, integer=True)
        if resume and checkpoint is None:
            raise ValueError("resume=True needs checkpoint=PATH (the file to continue from)")
        ckpt = None
        if checkpoint is not None:
            checkpoint = os.path.expanduser(os.fspath(checkpoint))
        if resume and os.path.exists(checkpoint):
            ckpt = modelfile.read(checkpoint, training=True)
        fitted = hasattr(self, "_net")
        first = ckpt is None and (not fitted or (not self.warm_start and not incremental))
        if cfg.dtype is None:  # scikit-learn's: X's float dtype (float32 stays), else float64
            cfg.dtype = (ckpt[1]["dtype"] if ckpt is not None else input_dtype(X) if first
                         else self._dtype)
        if incremental and fitted and not first:
            be = self._net.backend
            if is_backend_array(X):
                be = resolve_backend(be, None, X)
        else:
            be = resolve_backend(self.backend, self.device, X)
            if comm is not None and self.device is None:
                be = _device_of_local_rank(be, comm)
        with session(comm), device_context(be), be.matmul_precision(cfg.tf32):
            return self._fit_on(be, cfg, X, y, first=first, ckpt=ckpt, incremental=incremental,
                                classes=classes, validation_data=validation_data,
                                checkpoint=checkpoint, every=every, sample_weight=sample_weight,
                                callbacks=callbacks, comm=comm)

    def _fit_on(self, be: Backend, cfg: Config, X: Any, y: Any, *, first: bool, ckpt: Any,
                incremental: bool, classes: Any, validation_data: Any, checkpoint: Any,
                every: int, sample_weight: Any = None,
                callbacks: list[Any] | None = None, comm: Any = None) -> "FittingMixin":
        """One fit on ``be``: its inputs checked (1), its state built or restored (2), run (3).
        ``comm``: data parallel, this rank's shard (:mod:`xpnet.training.distributed`)."""
        name = type(self).__name__
        if comm is not None:
            if not be.supports_views:
                raise ValueError(f"distributed training needs a backend whose flat buffers "
                                 f"have views (numpy, torch, cupy); got {be.name}")
            if first and not incremental and classes is None:
                classes = _all_labels(comm, y)  # classes_: the labels seen on any rank
        # 1. (continued) X, y and validation_data checked and moved to the backend
        Xd, target, dims, g, val, fingerprint = self._checked_inputs(
            be, cfg, X, y, first=first, ckpt=ckpt, incremental=incremental, classes=classes,
            validation_data=validation_data, checkpoint=checkpoint, **dict(zip(
                ("rank", "size"), _rank_and_size(comm))))
        sw = self._row_weights(sample_weight, target, int(Xd.shape[0]), incremental)
        n, n_features = int(Xd.shape[0]), int(Xd.shape[1])
        n_outputs = int(target.Y.shape[1])
        if comm is not None:
            _same_on_every_rank(comm, (n_features, n_outputs, target.kind),
                                "X's features, y's outputs and kind")
        # 2. the state of this fit: fresh, continued, or resumed from a checkpoint
        if ckpt is not None:
            state = modelfile.restore_training(ckpt, be, *_rank_and_size(comm))
        else:
            rng = None
            if comm is not None and comm.rank > 0:  # each rank shuffles from its own stream
                rng = rank_random(self.random_state, comm.rank)
            state = self._new_state(be, cfg, target, dims, g, n=n, first=first,
                                    incremental=incremental,
                                    split=val is None and cfg.stochastic, rng=rng)
            if comm is not None and first:  # every rank starts from rank 0's parameters
                start = comm.bcast([to_numpy(a) for a in state.net.theta.arrays]
                                   if comm.rank == 0 else None, "the initial parameters")
                L = state.net.L
                state.net.assign({l: be.asarray(start[l - 1]) for l in range(1, L + 1)},
                                 {l: be.asarray(start[L + l - 1]) for l in range(1, L + 1)})
        net, optimizer, schedule, progress, rng = (state.net, state.optimizer, state.schedule,
                                                   state.progress, state.rng)
        train_idx, val_idx = state.train_idx, state.val_idx
        X_train, Y_train, X_val, Y_val = train_and_validation(be, Xd, target.Y, val,
                                                               train_idx, val_idx)
        Xd = None  # the split's rows are their own arrays: X is not kept on the device twice
        sw_train, sw_val = sw, None
        if sw is not None and val is None and val_idx is not None:  # the split's rows' weights
            sw_train, sw_val = sw[train_idx], sw[val_idx]
        if X_val is not None and progress.val_scores is None:
            # one entry per epoch, as loss_curve_: NaN for earlier epochs without validation
            progress.val_scores = [math.nan] * len(progress.loss_curve)
            progress.val_loss_curve = [math.nan] * len(progress.loss_curve)
        plan = None
        if comm is not None:  # the global batch: batch_size rows over all ranks' shards
            n_all = sum(comm.allgather(int(X_train.shape[0]), "the training rows"))
            plan = Plan(comm, int(X_train.shape[0]), _batch_size(cfg, n_all), be)
            if isinstance(X_train, np.ndarray) and be.name != "numpy":
                X_train = be.asarray(X_train)  # each rank's shard on its device
        batch_size = _batch_size(cfg, int(X_train.shape[0])) if plan is None else \
            sum(plan.shares)
        stream_rows = None
        if plan is None and (is_sparse(X_train)
                             or (isinstance(X_train, np.ndarray) and be.name != "numpy")):
            # X stays on the host: a chunk of whole batches goes up at a time (made dense)
            budget = SPARSE_CHUNK_BYTES if is_sparse(X_train) else (be.free_memory() or 0) // 4
            stream_rows = self._stream_rows or chunk_rows(
                int(X_train.shape[1]) * cfg.itemsize, batch_size, budget)
        graphs.decide(cfg.graphs, be, data_kind=DataSource(X_train, be, stream_rows).kind,
                      distributed=comm is not None)  # graphs=True that cannot capture: raises
        step_kernels(be, cfg.kernels)  # kernels="fused" where there are none: raises
        # 3. from here on the estimator changes (kept to restore if memory runs out at once)
        before = self.__dict__.copy()
        self._net, self._optimizer, self._schedule, self._progress = (net, optimizer, schedule,
                                                                      progress)
        self._dtype, self._target_kind = cfg.dtype, target.kind
        self.n_features_in_, self.n_outputs_ = n_features, n_outputs
        if first or ckpt is not None:
            check_feature_names(self, X, reset=True)
        self.out_activation_ = "logistic" if target.out_activation == "sigmoid" \
            else target.out_activation
        if target.classes is not None:
            self.classes_ = target.classes
        self._split = (train_idx, val_idx)
        if not cfg.stochastic:
            self._fit_lbfgs(be, cfg, net, X_train, Y_train, sw_train, target, before)
            return self
        settings = Settings(max_iter=cfg.max_iter, batch_size=batch_size, shuffle=cfg.shuffle,
                            alpha=cfg.alpha, dropout=cfg.dropout, clip_norm=cfg.clip_norm,
                            incremental=incremental, verbose=cfg.verbose, bars=cfg.bars,
                            kind=target.kind,
                            loss_scale=(1.0 / n_outputs if target.out_activation == "identity"
                                        else 1.0),
                            name=name, graphs=cfg.graphs, kernels=cfg.kernels)

        def on_epoch_end(trainer: Trainer, last: bool) -> None:
            if checkpoint is None or not (progress.n_iter % every == 0 or last):
                return
            ranks = None
            if comm is not None:  # every rank's own state; rank 0 writes the file
                mine = modelfile.rank_state(trainer, self._split, fingerprint)
                ranks = comm.allgather(mine, "the ranks' checkpoint state")[1:]
                if comm.rank != 0:
                    return
            modelfile.write(self, checkpoint, trainer=trainer, validation=fingerprint,
                            ranks=ranks)

        trainer = Trainer(state, settings, X_train, Y_train, X_val, Y_val,
                          on_epoch_end=on_epoch_end, stream_rows=stream_rows,
                          sample_weight=sw_train, val_weight=sw_val,
                          callbacks=callbacks or (), owner=self, plan=plan)
        self._run(trainer, net, progress, before, cfg, ckpt=ckpt, incremental=incremental)
        return self

    def _row_weights(self, sample_weight: Any, target: Target, n: int, incremental: bool
                     ) -> np.ndarray | None:
        """Each row's weight: ``sample_weight`` times its class's ``class_weight`` (a
        classifier's), host float64 (n,); None when neither is given."""
        sw = check_sample_weight(sample_weight, n)
        cw = getattr(self, "class_weight", None)
        if cw is None:
            return sw
        if target.kind == "multilabel":
            raise ValueError("class_weight is not supported for multilabel y (one weight per "
                             "label set is ambiguous); pass sample_weight instead")
        Y = np.asarray(to_numpy(target.Y))  # (n, n_outputs): small next to X
        idx = Y[:, 0] > 0.5 if target.kind == "binary" else np.argmax(Y, axis=1)
        classes = target.classes if target.classes is not None else self.classes_
        factors = class_weight_factors(cw, np.asarray(idx, dtype=np.intp), np.asarray(classes),
                                       incremental=incremental)
        return factors if sw is None else sw * factors

    def _streams(self, be: Backend, X: np.ndarray) -> bool:
        """Whether the host array X is streamed to ``be`` in chunks instead of moved whole:
        when it would take more than half the device's free memory (``_stream_rows`` set:
        always, at that many rows per chunk)."""
        if be.name == "numpy":
            return False
        return self._stream_rows is not None or should_stream(X.nbytes, be.free_memory())

    def _checked_inputs(self, be: Backend, cfg: Config, X: Any, y: Any, *, first: bool,
                        ckpt: Any, incremental: bool, classes: Any, validation_data: Any,
                        checkpoint: Any, rank: int = 0, size: int = 1
                        ) -> tuple[Any, Target, list[int], list[str], Any, Any]:
        """(X, target, dims, g, validation (X_val, Y_val) or None, its fingerprint or None):
        X and y checked and moved to ``be``, the network they ask for checked against the
        fitted one or the checkpoint. Nothing changes here."""
        name = type(self).__name__
        if first or ckpt is not None:
            feature_names(X)  # mixed-type column names raise here, before anything changes
        else:
            check_feature_names(self, X, reset=False)
        try:
            Xd = check_X(X, be, cfg.dtype, estimator=name, upload=False,
                         n_features=None if first or ckpt else self.n_features_in_)
            if isinstance(Xd, np.ndarray) and not self._streams(be, Xd):
                Xd = be.asarray(Xd)  # all of X on the device, once
            target = self._target(y, int(Xd.shape[0]), be, cfg, first or ckpt is not None,
                                  incremental, classes)
        except Exception as exc:
            if is_out_of_memory(exc):
                shape = tuple(getattr(X, "shape", np.shape(X)))
                n, d = (shape + (1, 1))[:2]
                bs = cfg.batch_for(n)
                needed = n * d * cfg.itemsize + memory_estimate([d, *cfg.hidden, 1], bs,
                                                                cfg.itemsize, cfg.solver)
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
        val = None if validation_data is None else validation_set(
            validation_data, be, cfg, target, n_features, name)
        fingerprint = None  # of validation_data, for checkpoints (one read per fit)
        if val is not None and checkpoint is not None:
            fingerprint = validation_fingerprint(*val)
        if ckpt is not None:
            modelfile.check_resumable(ckpt, type(self).__name__, dims, g, cfg.dtype, n,
                                      cfg.solver, checkpoint, validation=fingerprint,
                                      rank=rank, size=size)
        return Xd, target, dims, g, val, fingerprint

    def _new_state(self, be: Backend, cfg: Config, target: Target, dims: list[int],
                   g: list[str], *, n: int, first: bool, incremental: bool, split: bool,
                   rng: HostRandom | None = None) -> TrainingState:
        """A fresh or continued fit's state (what ``modelfile.restore_training`` gives a resumed
        one); with
        early stopping and ``split``, the internal validation split of the n rows."""
        # a new stream per call, as scikit-learn's check_random_state in every fit/partial_fit
        rng = check_random_state(self.random_state) if rng is None else rng
        net = self._network(be, cfg, dims, g, rng, n=n, first=first)
        optimizer = None
        if incremental and not first and hasattr(self, "_optimizer") and net is self._net:
            optimizer = self._optimizer
        if optimizer is None and cfg.stochastic:
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
        if cfg.early_stopping and split:
            labels = None  # scikit-learn stratifies binary targets only (its n_outputs_ == 1)
            if target.kind == "binary":
                labels = to_numpy(target.Y[:, 0])
            train_idx, val_idx = holdout_split(n, cfg.validation_fraction, rng, labels)
        return TrainingState(net, optimizer, schedule, progress, rng, train_idx=train_idx,
                             val_idx=val_idx)

    def _network(self, be: Backend, cfg: Config, dims: list[int], g: list[str],
                 rng: HostRandom, *, n: int, first: bool) -> Network:
        """W[l], b[l] drawn from ``rng`` (first fit), else the fitted network, moved to ``be``."""
        if first:
            try:
                inits = cfg.inits(g)
                W, b = initialize_parameters(dims, init=inits, rng=rng, dtype=cfg.dtype,
                                             backend=be)
            except Exception as exc:
                if is_out_of_memory(exc):
                    bs = cfg.batch_for(n)
                    raise out_of_memory(exc, "allocating the parameters", be, bs,
                                        memory_estimate(dims, bs, cfg.itemsize, cfg.solver)
                                        ) from exc
                raise
            return Network(W, b, g, be)
        net = self._net
        if net.backend != be:
            net = Network(*_moved(net, be, cfg.dtype), g, be)
        return net

    def _run(self, trainer: Trainer, net: Network, progress: Progress, before: dict[str, Any],
             cfg: Config, *, ckpt: Any, incremental: bool) -> None:
        """trainer.run(), then scikit-learn's fitted attributes; out of memory before the
        first epoch of this call ends restores the estimator to ``before``."""
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
        if reason == "diverged":       # interrupted or diverged
            warnings.warn(f"Training diverged in epoch {progress.n_iter} (loss "
                          f"{progress.loss}); with early_stopping the validation score is nan "
                          f"there and training stopped, keeping the best weights (validation "
                          f"score {self.best_validation_score_:g}). Lower learning_rate_init or "
                          f"standardize the features.", ConvergenceWarning, stacklevel=4)
        if reason == "max_iter" and not incremental:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({cfg.max_iter}) reached "
                          f"and the optimization hasn't converged yet. Raise max_iter, or "
                          f"learning_rate_init, or loosen tol.", ConvergenceWarning, stacklevel=4)

    def _fit_lbfgs(self, be: Backend, cfg: Config, net: Network, X: Any, Y: Any,
                   sw: np.ndarray | None, target: Target, before: dict[str, Any]) -> None:
        """solver="lbfgs" (:mod:`xpnet.training.lbfgs`): all rows at once, on the device;
        scikit-learn's n_iter_, loss_ and ConvergenceWarning. The estimator is as it was
        before this call if the data do not fit on the device."""
        if is_sparse(X) or (isinstance(X, np.ndarray) and be.name != "numpy"):
            try:  # L-BFGS evaluates J over all rows: X goes to the device whole (dense)
                X = be.dense_rows(X)
            except Exception as exc:
                if is_out_of_memory(exc):
                    self.__dict__.clear()
                    self.__dict__.update(before)
                    raise out_of_memory(exc, f"moving all of X {tuple(X.shape)} there for "
                                        f"solver='lbfgs' (it needs every row at once)", be,
                                        int(X.shape[0]), int(np.prod(X.shape)) * cfg.itemsize
                                        ) from exc
                raise
        progress = self._progress
        start = net.copy()

        def on_iteration(k: int, loss: float) -> None:
            progress.loss_curve.append(loss)
            if cfg.verbose:
                print("Iteration %d, loss = %.8f" % (k, loss), flush=True)

        res = minimize_lbfgs(net, X, Y, alpha=cfg.alpha,
                             loss_scale=(1.0 / int(Y.shape[1]) if target.out_activation ==
                                         "identity" else 1.0),
                             max_iter=cfg.max_iter, max_fun=cfg.max_fun, tol=cfg.tol,
                             sample_weight=sw, on_iteration=on_iteration)
        progress.n_iter = min(res.nit, cfg.max_iter)
        progress.loss = res.loss
        self._publish()
        # scikit-learn keeps these for the stochastic solvers only
        self.best_loss_ = self.best_validation_score_ = self.validation_scores_ = None
        self._no_improvement_count = 0
        if not bool(to_numpy(net.all_finite())):
            net.assign(*start)
            raise DivergenceError(
                f"{NON_FINITE} L-BFGS ended at non-finite parameters after {res.nit} "
                f"iteration(s) (loss {res.loss}); the model keeps the parameters it started "
                f"from. Standardize the features.", progress.n_iter, None)
        message = convergence_message(res, cfg.max_iter)
        if message is not None:
            warnings.warn(message, ConvergenceWarning, stacklevel=5)

    def _new_optimizer(self, cfg: Config, net: Network) -> Any:
        if cfg.solver == "sgd":
            return net.optimizer("sgd", learning_rate=cfg.lr,
                                  momentum=cfg.momentum, nesterov=bool(self.nesterovs_momentum))
        return net.optimizer("adam", learning_rate=cfg.lr, beta_1=cfg.beta_1,
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
        self._no_improvement_count = s.no_improvement_count


def _device_of_local_rank(be: Backend, comm: Any) -> Backend:
    """Data parallel on GPUs: rank r takes GPU (its rank on the node) mod (GPUs there)."""
    gpus = [d for d in type(be).devices() if str(d).startswith("cuda")]
    if not gpus or str(getattr(be.device, "type", "cuda")) == "cpu":
        return be
    return get_backend(be.name, f"cuda:{local_rank(comm) % len(gpus)}")


def _rank_and_size(comm: Any) -> tuple[int, int]:
    return (0, 1) if comm is None else (comm.rank, comm.size)


def rank_random(random_state: Any, rank: int) -> HostRandom:
    """Rank r's (r >= 1) shuffle stream: RandomState(SeedSequence([random_state, r]))."""
    if not (random_state is None or isinstance(random_state, (int, np.integer))):
        raise ValueError("data-parallel training derives each rank's stream from an int "
                         "random_state (or None); got a generator object")
    return HostRandom(np.random.RandomState(rank_stream_seed(random_state, rank)))


def _all_labels(comm: Any, y: Any) -> np.ndarray | None:
    """The sorted union of every rank's labels (None for an indicator y: its columns are the
    classes, and must agree)."""
    yh = np.asarray(to_numpy(y) if is_backend_array(y) else y)
    if yh.ndim == 2 and yh.shape[1] != 1:
        return None
    seen = comm.allgather(np.unique(yh.ravel()), "the labels")
    return np.unique(np.concatenate(seen))


def _same_on_every_rank(comm: Any, value: Any, what: str) -> None:
    values = comm.allgather(value, what)
    if any(v != values[0] for v in values):
        raise ValueError(f"data-parallel ranks disagree on {what}: {values}; every rank's "
                         f"shard must have the same columns and targets of the same form")


def _check_lbfgs(cfg: Config, *, validation_data: Any, checkpoint: Any, callbacks: Any,
                 comm: Any) -> None:
    """What solver="lbfgs" (one optimisation over all rows, no epochs) cannot do: refused
    before anything changes. (early_stopping, shuffle and batch_size are ignored, as
    scikit-learn ignores them for lbfgs.)"""
    refused = [name for name, used in (
        ("validation_data", validation_data is not None), ("checkpoint", checkpoint is not None),
        ("callbacks", bool(callbacks)), ("distributed", comm is not None),
        ("dropout", cfg.dropout is not None), ("clip_norm", cfg.clip_norm is not None)) if used]
    if refused:
        raise ValueError(f"solver='lbfgs' does not support {', '.join(refused)}: it runs one "
                         f"optimisation over all rows, without epochs or mini-batches. Use "
                         f"solver='adam' or 'sgd' for these, or leave them out")


def _checked_callbacks(callbacks: Any) -> list[Any]:
    """The callbacks as a list; each needs on_train_begin, on_epoch_end and on_train_end
    (subclass :class:`xpnet.callbacks.Callback` to get the ones you do not write)."""
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        callbacks = [callbacks]
    for cb in callbacks:
        missing = [name for name in ("on_train_begin", "on_epoch_end", "on_train_end")
                   if not callable(getattr(cb, name, None))]
        if missing:
            raise TypeError(f"callback {cb!r} lacks {', '.join(missing)}; subclass "
                            f"xpnet.callbacks.Callback and override the hooks you need")
    return list(callbacks)


def _batch_size(cfg: Config, n_train: int) -> int:
    """The batch size: "auto" is min(200, n_train); a larger one is clipped, with a warning."""
    if cfg.batch_size == "auto":
        return min(200, n_train)
    batch_size = cfg.batch_size
    if batch_size > n_train:
        warnings.warn(f"Got `batch_size` less than 1 or larger than sample size. It is "
                      f"going to be clipped: batch_size={batch_size} > {n_train} "
                      f"training samples; using {n_train}", UserWarning, stacklevel=4)
        batch_size = n_train
    return batch_size


def _moved(net: Network, be: Backend, dtype: str) -> tuple[dict, dict]:
    W = {l: be.asarray(to_numpy(w), dtype=dtype) for l, w in net.W.items()}
    b = {l: be.asarray(to_numpy(v), dtype=dtype) for l, v in net.b.items()}
    return W, b
