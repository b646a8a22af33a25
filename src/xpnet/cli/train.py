"""``xpnet train``: fit an estimator on a dataset's training part, report, save and plot."""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from typing import Any

from xpnet.cli.common import (META_KEY, PROG, SPLIT_SEED, TrainingFailed, UsageError,
                              check_output, note, report, user_errors)

__all__ = ["run_train"]


def _validation_split(ds: Any, fraction: float) -> tuple[Any, Any, Any]:
    """(X_fit, y_fit, validation_data or None): ``fraction`` of the training part held out
    (seed SPLIT_SEED, stratified for classification); the test part is never touched."""
    if fraction == 0.0:
        return ds.X_train, ds.y_train, None
    from xpnet.datasets import train_test_split

    X_fit, X_val, y_fit, y_val = train_test_split(
        ds.X_train, ds.y_train, test_size=fraction, random_state=SPLIT_SEED,
        stratify=ds.task == "classification")
    return X_fit, y_fit, (X_val, y_val)


def load_data(args: argparse.Namespace) -> Any:
    """The Dataset of --data FILE (with --target, --task) or --dataset NAME (default digits)."""
    from xpnet.datasets import load_dataset, load_file

    if args.data is not None:
        return load_file(args.data, target=args.target, task=args.task,
                         test_size=args.test_size, random_state=SPLIT_SEED, dtype=args.dtype,
                         **reading(args))
    given = [o for o, v in (("--target", args.target), ("--task", args.task),
                            ("--sep", args.sep), ("--features", args.features),
                            ("--drop", args.drop), ("--drop-unlabeled", args.drop_unlabeled),
                            ("--missing", args.missing != "error")) if v]
    if given:
        raise UsageError(f"{', '.join(given)} describe{'s' if len(given) == 1 else ''} a "
                         f"--data file; the built-in datasets know theirs")
    return load_dataset(args.dataset or "digits", test_size=args.test_size,
                        random_state=SPLIT_SEED, dtype=args.dtype)


def reading(args: argparse.Namespace) -> dict[str, Any]:
    """How --data is read: the options of :func:`xpnet.datasets.load_file` (recorded in the
    model file, so that `evaluate` reads the file again the same way)."""
    return {"sep": args.sep, "features": args.features, "drop": args.drop,
            "missing": args.missing, "drop_unlabeled": args.drop_unlabeled}


def run_train(args: argparse.Namespace) -> int:
    from xpnet.backends import get_backend

    for path, option in ((args.save, "--save"), (args.plot, "--plot"),
                         (args.checkpoint, "--checkpoint")):
        check_output(path, option)  # before any work
    try:
        if args.validation_fraction is None:
            args.validation_fraction = 0.2 if args.early_stopping else 0.1
        if args.early_stopping and args.validation_fraction == 0.0:
            raise UsageError("--early-stopping needs validation data: give "
                             "--validation-fraction > 0 (default 0.2 with it)")
        if args.resume and args.checkpoint is None:
            raise UsageError("--resume continues from a checkpoint: give --checkpoint PATH")
        backend = get_backend(args.backend, args.device)
        ds = load_data(args)
        X_fit, y_fit, validation = _validation_split(ds, args.validation_fraction)
        rank = 0
        if args.distributed:  # this rank's rows of the training and validation parts
            X_fit, y_fit, validation, rank = _shard(X_fit, y_fit, validation)
            if rank != 0:
                args.quiet = True
        if args.plot:
            from xpnet.plotting import require_matplotlib  # fail before training, not after

            require_matplotlib()
        model = _make_estimator(args, ds.task, backend.name)
    except user_errors() as exc:
        raise UsageError(exc) from None

    if rank != 0:  # data parallel: the other ranks train, rank 0 speaks
        _fit_quietly(model, X_fit, y_fit, validation, args)
        return 0
    for text in ds.notes:
        note("train", text)
    print(f"{PROG} train: {ds.describe()}")
    if args.distributed:
        print("data parallel over MPI: rank 0's share of the rows shown below (every rank "
              "ends with the same model)")
    layers = ",".join(map(str, args.layers))
    activation = args.activation if isinstance(args.activation, str) else ",".join(args.activation)
    held_out = ("no validation data" if validation is None else
                f"validation {len(validation[0])} of the {len(ds.X_train)} training samples")
    print(f"training: hidden layers {layers} {activation}, dropout {args.dropout:g}, "
          f"solver {args.solver}, learning rate {args.learning_rate:g}, up to {args.epochs} "
          f"epochs, batch {args.batch_size}, backend {backend}, {args.dtype}, seed {args.seed}, "
          f"{held_out}")
    sys.stdout.flush()
    from xpnet.estimators.sklearn_base import ConvergenceWarning

    from xpnet.callbacks import EarlyStopping

    stopper = None
    if args.early_stopping:  # the validation loss, with patience: not a few samples' accuracy
        stopper = EarlyStopping(monitor="val_loss", patience=args.patience,
                                min_delta=max(args.tol, 0.0))
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # --epochs is the user's choice: reaching it is reported below, not warned about.
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            model.fit(X_fit, y_fit, validation_data=validation, checkpoint=args.checkpoint,
                      resume=args.resume, callbacks=[stopper] if stopper else None)
    except (FloatingPointError, MemoryError) as exc:  # xpnet's DivergenceError, DeviceMemoryError
        raise TrainingFailed(f"training failed: {type(exc).__name__}: {exc}") from None
    except user_errors() as exc:  # (after: DivergenceError is a ValueError too)
        raise UsageError(exc) from None
    seconds = time.perf_counter() - start

    print(f"model: {model.summary()}")
    metrics = report(model, ds)
    _report_validation(model, ds.task, validation, stopper)
    epochs = int(getattr(model, "n_iter_", args.epochs))
    if stopper is not None and stopper.stopped_epoch is not None:
        stop = (f"stopped early: no validation loss improvement for {args.patience} epochs; "
                f"weights of epoch {stopper.best_epoch} kept")
    elif epochs >= args.epochs:
        stop = "all --epochs"
    else:
        stop = f"stopped early: no training loss improvement for {args.patience} epochs"
    print(f"time: {seconds:.2f} s for {epochs} epochs ({stop}; {seconds / max(epochs, 1):.3f} "
          f"s/epoch, {len(X_fit) * epochs / max(seconds, 1e-9):,.0f} samples/s)")
    if args.save:
        recorded = {"name": ds.name, "test_size": args.test_size, "split_seed": SPLIT_SEED,
                    "task": ds.task}
        if args.data is not None:
            recorded.update(source=os.path.abspath(args.data), target=ds.target,
                            read=reading(args), feature_names=ds.feature_names)
        if ds.mean is not None:  # as earlier versions wrote it: their predict standardizes too
            recorded.update(mean=[float(v) for v in ds.mean], std=[float(v) for v in ds.std])
        try:
            _save(model, args.save, recorded, ds)
        except user_errors() as exc:
            raise UsageError(f"cannot save the model to {args.save!r}: {exc}") from None
        print(f"saved model: {args.save}")
    if args.plot:
        from xpnet.plotting import plot_learning_curves

        try:
            plot_learning_curves(model, args.plot, title=(
                f"{ds.name}: hidden {layers} {activation}, {args.solver}, learning rate "
                f"{args.learning_rate:g}, dropout {args.dropout:g}, {args.dtype}"))
        except user_errors() as exc:
            raise UsageError(f"cannot write the plot to {args.plot!r}: {exc}") from None
        print(f"saved plot: {args.plot}")
    return _verdict(metrics, ds, args.fail_below)


def _verdict(metrics: dict[str, float], ds: Any, fail_below: float | None) -> int:
    """Warn when the model is no better than a constant guess; status 1 below --fail-below."""
    import numpy as np

    if ds.task == "classification":
        score, name = metrics["accuracy"], "accuracy"
        _, counts = np.unique(ds.y_train, return_counts=True)
        labels, test_counts = np.unique(ds.y_test, return_counts=True)
        majority = np.unique(ds.y_train)[np.argmax(counts)]
        baseline = float(np.mean(ds.y_test == majority))
        if score <= baseline:
            print(f"{PROG} train: warning: test accuracy {score:.4f} is no better than always "
                  f"predicting the most frequent class ({baseline:.4f}): the model learned "
                  f"nothing useful. Try a smaller --learning-rate, more --epochs or another "
                  f"--solver", file=sys.stderr)
    else:
        score, name = metrics["r2"], "R^2"
        if score <= 0.0:
            print(f"{PROG} train: warning: test R^2 {score:.4f} <= 0, no better than always "
                  f"predicting the mean: the model learned nothing useful. Try a smaller "
                  f"--learning-rate or more --epochs", file=sys.stderr)
    if fail_below is not None and score < fail_below:
        print(f"{PROG} train: test {name} {score:.4f} is below --fail-below {fail_below:g}",
              file=sys.stderr)
        return 1
    return 0


def _shard(X: Any, y: Any, validation: Any) -> tuple[Any, Any, Any, int]:
    """(X, y, validation) rows of this MPI rank: np.array_split of each, in rank order."""
    import numpy as np

    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise UsageError(f"--distributed mpi needs mpi4py and an MPI library: pip install "
                         f"mpi4py mpich ({exc})") from None
    rank, size = MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()

    def part(*arrays: Any) -> tuple[Any, ...]:
        rows = np.array_split(np.arange(len(arrays[0])), size)[rank]
        return tuple(a[rows] for a in arrays)

    X, y = part(X, y)
    if validation is not None:
        validation = part(*validation)
    return X, y, validation, rank


def _fit_quietly(model: Any, X: Any, y: Any, validation: Any, args: argparse.Namespace) -> None:
    from xpnet.callbacks import EarlyStopping
    from xpnet.estimators.sklearn_base import ConvergenceWarning

    stopper = EarlyStopping(monitor="val_loss", patience=args.patience,
                            min_delta=max(args.tol, 0.0)) if args.early_stopping else None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        model.fit(X, y, validation_data=validation, checkpoint=args.checkpoint,
                  resume=args.resume, callbacks=[stopper] if stopper else None)


def _make_estimator(args: argparse.Namespace, task: str, backend: str) -> Any:
    from xpnet.estimators import MLPClassifier, MLPRegressor

    cls = MLPClassifier if task == "classification" else MLPRegressor
    return cls(hidden_layer_sizes=args.layers, activation=args.activation, solver=args.solver,
               learning_rate_init=args.learning_rate, max_iter=args.epochs,
               batch_size=args.batch_size, alpha=args.alpha, dropout=args.dropout,
               random_state=args.seed, tol=args.tol,
               # --early-stopping watches the validation loss instead of the training loss
               n_iter_no_change=args.epochs + 1 if args.early_stopping else args.patience,
               momentum=args.momentum, clip_norm=args.clip_norm,
               progress_bar=not args.quiet, backend=backend, device=args.device,
               dtype=args.dtype,
               tf32=args.tf32, distributed=args.distributed)


def _report_validation(model: Any, task: str, validation: Any, stopper: Any = None) -> None:
    """The validation loss and score of the kept weights: the last epoch's, or with early
    stopping the best epoch's."""
    scores = getattr(model, "validation_scores_", None)
    if validation is None or not scores:
        return
    i, which = len(scores) - 1, "last"
    if stopper is not None and stopper.best_epoch is not None:
        i, which = stopper.best_epoch - 1, "best"
    name = "accuracy" if task == "classification" else "R^2"
    print(f"validation {name}: {scores[i]:.4f} ({len(validation[0])} samples, {which} epoch "
          f"{i + 1}), loss {model.validation_loss_curve_[i]:.4f}")


def _save(model: Any, path: str, dataset: dict, ds: Any) -> None:
    """The model with what it learned from the data (columns, fill values, standardization:
    :class:`xpnet.io.preprocessing.Preprocessing`) and the dataset record for ``evaluate``."""
    from xpnet.io.preprocessing import Preprocessing
    from xpnet.pipeline import Pipeline

    preprocessing = None
    if ds.mean is not None:  # what `xpnet predict` and the ONNX graph apply to raw rows
        preprocessing = Preprocessing(ds.feature_names, ds.mean, ds.std, ds.fill, ds.missing)
    Pipeline(model, preprocessing).save(path, {META_KEY: dataset})
