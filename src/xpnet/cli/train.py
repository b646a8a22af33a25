"""``xpnet train``: fit an estimator on a dataset's training part, report, save and plot."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import Any

from xpnet.cli.common import META_KEY, PROG, SPLIT_SEED, TrainingFailed, UsageError, report, user_errors

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


def run_train(args: argparse.Namespace) -> int:
    from xpnet.backends import get_backend
    from xpnet.datasets import load_dataset

    try:
        if args.early_stopping and args.validation_fraction == 0.0:
            raise UsageError("--early-stopping needs validation data: give "
                             "--validation-fraction > 0 (default 0.1)")
        backend = get_backend(args.backend, args.device)
        ds = load_dataset(args.dataset, test_size=args.test_size, random_state=SPLIT_SEED,
                          dtype=args.dtype)
        X_fit, y_fit, validation = _validation_split(ds, args.validation_fraction)
        if args.plot:
            from xpnet.plotting import require_matplotlib  # fail before training, not after

            require_matplotlib()
        model = _make_estimator(args, ds.task, backend.name)
    except user_errors() as exc:
        raise UsageError(exc) from None

    print(f"{PROG} train: {ds.describe()}")
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

    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # --epochs is the user's choice: reaching it is reported below, not warned about.
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            model.fit(X_fit, y_fit, validation_data=validation)
    except user_errors() as exc:
        raise UsageError(exc) from None
    except (FloatingPointError, MemoryError) as exc:  # xpnet's DivergenceError, DeviceMemoryError
        raise TrainingFailed(f"training failed: {type(exc).__name__}: {exc}") from None
    seconds = time.perf_counter() - start

    print(f"model: {model!r}")
    report(model, ds)
    _report_validation(model, ds.task, validation)
    epochs = int(getattr(model, "n_iter_", args.epochs))
    watched = "validation score" if args.early_stopping else "training loss"
    stop = ("all --epochs" if epochs >= args.epochs
            else f"stopped early: no {watched} improvement for n_iter_no_change epochs")
    print(f"time: {seconds:.2f} s for {epochs} epochs ({stop}; {seconds / max(epochs, 1):.3f} "
          f"s/epoch, {len(X_fit) * epochs / max(seconds, 1e-9):,.0f} samples/s)")
    if args.save:
        try:
            _save(model, args.save, {"name": ds.name, "test_size": args.test_size,
                                     "split_seed": SPLIT_SEED, "task": ds.task})
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
    return 0


def _make_estimator(args: argparse.Namespace, task: str, backend: str) -> Any:
    from xpnet.estimators import MLPClassifier, MLPRegressor

    cls = MLPClassifier if task == "classification" else MLPRegressor
    return cls(hidden_layer_sizes=args.layers, activation=args.activation, solver=args.solver,
               learning_rate_init=args.learning_rate, max_iter=args.epochs,
               batch_size=args.batch_size, alpha=args.alpha, dropout=args.dropout,
               early_stopping=args.early_stopping, random_state=args.seed,
               verbose=not args.quiet, backend=backend, device=args.device, dtype=args.dtype,
               tf32=args.tf32)


def _report_validation(model: Any, task: str, validation: Any) -> None:
    """The validation loss and score of the kept weights: the last epoch's, or with early
    stopping the best epoch's."""
    scores = getattr(model, "validation_scores_", None)
    if validation is None or not scores:
        return
    best = getattr(model, "best_validation_score_", None)
    i = scores.index(best) if best is not None and best in scores else len(scores) - 1
    which = "best" if best is not None else "last"
    name = "accuracy" if task == "classification" else "R^2"
    print(f"validation {name}: {scores[i]:.4f} ({len(validation[0])} samples, {which} epoch "
          f"{i + 1}), loss {model.validation_loss_curve_[i]:.4f}")


def _save(model: Any, path: str, dataset: dict) -> None:
    """``model.save(path)``, then record the dataset in the file's meta for ``evaluate``."""
    from xpnet.io import container as serialization

    model.save(path)
    arrays, meta = serialization.load(path)
    meta = {k: v for k, v in meta.items() if k not in ("format", "format_version")}
    meta[META_KEY] = dataset
    serialization.save(path, arrays, meta)
