"""The ``xpnet`` command line: ``train``, ``evaluate``, ``info`` and ``bench``.

    xpnet train [--dataset digits] [--layers 128,64] [--epochs 50] [--save M.xpnet] [--plot C.png]
    xpnet evaluate M.xpnet [--dataset NAME]
    xpnet info
    xpnet bench ...            (delegates to xpnet.bench.main)

Bad options print one line and exit with status 2, as argparse does; so do user errors found
later (an unusable backend, a missing MNIST folder, a model file that is not one).
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
import warnings
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import numpy as np

__all__ = ["build_parser", "main"]

PROG = "xpnet"
SPLIT_SEED = 0  # the held-out split is fixed, so runs with different --seed share one test set
META_KEY = "dataset"  # what `train --save` records in the model file for `evaluate`


class UsageError(Exception):
    """A user error found after parsing: reported as one line, exit status 2."""

    status = 2


class TrainingFailed(UsageError):
    """Training itself failed (diverged, out of memory): one line, exit status 1."""

    status = 1


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is reported in one line (with where to find help)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# --------------------------------------------------------------------------- option types
def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _layers(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected hidden layer sizes like 128,64; got {text!r}")
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"layer sizes must be positive integers; got {text!r}")
    return sizes


def _batch_size(text: str) -> int | str:
    return "auto" if text == "auto" else _positive(int)(text)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return value


def _test_size(text: str) -> float:
    value = _fraction(text)
    if value == 0.0:
        raise argparse.ArgumentTypeError("must be in (0, 1), got 0")
    return value


def _dataset(text: str) -> str:
    from .datasets import DATASETS

    if text.startswith("mnist:"):
        if not text[len("mnist:"):]:
            raise argparse.ArgumentTypeError("mnist needs a folder: mnist:DIR")
        return text
    key = text.replace("-", "_").lower()
    if key not in DATASETS:
        raise argparse.ArgumentTypeError(f"unknown dataset {text!r}; expected one of "
                                         f"{', '.join(DATASETS)} or mnist:DIR")
    return key


def _activation(text: str) -> str | list[str]:
    names = text.split(",")
    return names[0] if len(names) == 1 else names


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``xpnet`` (sub-commands train, evaluate, info, bench)."""
    from . import BACKENDS

    parser = _Parser(prog=PROG, description="Train and evaluate multi-layer "
                                     "perceptrons on NumPy, CuPy, PyTorch or array-api-strict.")
    sub = parser.add_subparsers(dest="command", metavar="{train,evaluate,info,bench}")
    sub.required = True

    backends = ["auto", *BACKENDS]
    train = sub.add_parser("train", help="train an MLP on a dataset and report test accuracy",
                           description="Train on a held-out split of a dataset (no download) "
                           "and print the test accuracy (R^2 for regression) and time.")
    train.add_argument("--dataset", type=_dataset, default="digits", metavar="NAME",
                       help="digits (default), breast_cancer, diabetes, synthetic, "
                            "synthetic_regression, or mnist:DIR (IDX files in DIR)")
    train.add_argument("--layers", type=_layers, default=(256, 128), metavar="N,N,...",
                       help="hidden layer sizes (default 256,128)")
    train.add_argument("--activation", type=_activation, default="relu", metavar="NAME[,NAME]",
                       help="hidden activation, or one per hidden layer (default relu)")
    train.add_argument("--solver", choices=["adam", "sgd"], default="adam")
    train.add_argument("--learning-rate", type=_positive(float), default=1e-3, metavar="LR",
                       help="initial learning rate (default 0.001)")
    train.add_argument("--epochs", type=_positive(int), default=100,
                       help="maximum number of epochs (default 100)")
    train.add_argument("--batch-size", type=_batch_size, default="auto", metavar="N",
                       help="minibatch size, or auto = min(200, n_samples) (default)")
    train.add_argument("--alpha", type=float, default=1e-4, help="L2 penalty (default 1e-4)")
    train.add_argument("--dropout", type=_fraction, default=0.2, metavar="RATE",
                       help="dropout rate on hidden layers (default 0.2; 0 = none)")
    train.add_argument("--early-stopping", action="store_true",
                       help="stop when the score on the validation split stops improving, "
                            "and keep the best weights")
    train.add_argument("--validation-fraction", type=_fraction, default=0.1, metavar="F",
                       help="share of the training part held out as validation data, scored "
                            "after every epoch (validation loss and score in the progress bar "
                            "and the plot; default 0.1; 0 = none)")
    train.add_argument("--backend", choices=backends, default="auto",
                       help="auto = cupy when a GPU is usable, else numpy")
    train.add_argument("--device", default=None, help="e.g. cuda:1 (default: the backend's)")
    train.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    train.add_argument("--seed", type=int, default=0,
                       help="random_state of the model (initial weights, shuffling, dropout)")
    train.add_argument("--test-size", type=_test_size, default=0.25, metavar="F",
                       help="held-out test share (default 0.25; ignored for mnist)")
    train.add_argument("--save", metavar="PATH", help="save the trained model here")
    train.add_argument("--plot", metavar="PNG", help="write the learning curves here "
                       "(training loss; validation loss and score unless "
                       "--validation-fraction 0)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    ev = sub.add_parser("evaluate", help="report a saved model's test metrics",
                        description="Load a model saved by `xpnet train --save` and report its "
                        "metrics on the held-out split of the dataset it was trained on (or "
                        "of --dataset).")
    ev.add_argument("model", metavar="MODEL", help="a model file")
    ev.add_argument("--dataset", type=_dataset, default=None, metavar="NAME",
                    help="default: the dataset recorded in the model file")
    ev.add_argument("--backend", choices=backends, default=None,
                    help="default: the backend recorded in the model file")
    ev.add_argument("--device", default=None)

    sub.add_parser("info", help="backends, devices and versions found here",
                   description="List the backends xpnet knows, whether each is usable here (and "
                   "why not), their devices, and the versions of the optional extras.")
    sub.add_parser("bench", add_help=False, help="training throughput benchmarks (see "
                   "`xpnet bench --help`)")
    return parser


# --------------------------------------------------------------------------- commands
def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``xpnet`` command line with ``argv`` (default ``sys.argv[1:]``); the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        return _bench(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a bad option (2, message printed)
        return int(exc.code or 0)
    command = {"train": _train, "evaluate": _evaluate, "info": _info}[args.command]
    try:
        return command(args)
    except UsageError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130


def _user_errors():
    """The exception types a user's input causes (reported in one line, not a traceback)."""
    from . import BackendError
    from .serialization import ModelFileError

    return (BackendError, ModelFileError, ValueError, TypeError, ImportError, OSError)


def _validation_split(ds: Any, fraction: float) -> tuple[Any, Any, Any]:
    """(X_fit, y_fit, validation_data or None): ``fraction`` of the training part held out
    (seed SPLIT_SEED, stratified for classification); the test part is never touched."""
    if fraction == 0.0:
        return ds.X_train, ds.y_train, None
    from .datasets import train_test_split

    X_fit, X_val, y_fit, y_val = train_test_split(
        ds.X_train, ds.y_train, test_size=fraction, random_state=SPLIT_SEED,
        stratify=ds.task == "classification")
    return X_fit, y_fit, (X_val, y_val)


def _train(args: argparse.Namespace) -> int:
    from . import get_backend
    from .datasets import load_dataset

    try:
        if args.early_stopping and args.validation_fraction == 0.0:
            raise UsageError("--early-stopping needs validation data: give "
                             "--validation-fraction > 0 (default 0.1)")
        backend = get_backend(args.backend, args.device)
        ds = load_dataset(args.dataset, test_size=args.test_size, random_state=SPLIT_SEED,
                          dtype=args.dtype)
        X_fit, y_fit, validation = _validation_split(ds, args.validation_fraction)
        if args.plot:
            from .plotting import require_matplotlib  # fail before training, not after

            require_matplotlib()
        model = _make_estimator(args, ds.task, backend.name)
    except _user_errors() as exc:
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
    from ._sklearn import ConvergenceWarning

    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # --epochs is the user's choice: reaching it is reported below, not warned about.
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            model.fit(X_fit, y_fit, validation_data=validation)
    except _user_errors() as exc:
        raise UsageError(exc) from None
    except (FloatingPointError, MemoryError) as exc:  # xpnet's DivergenceError, DeviceMemoryError
        raise TrainingFailed(f"training failed: {type(exc).__name__}: {exc}") from None
    seconds = time.perf_counter() - start

    print(f"model: {model!r}")
    _report(model, ds)
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
        except _user_errors() as exc:
            raise UsageError(f"cannot save the model to {args.save!r}: {exc}") from None
        print(f"saved model: {args.save}")
    if args.plot:
        from .plotting import plot_learning_curves

        try:
            plot_learning_curves(model, args.plot, title=(
                f"{ds.name}: hidden {layers} {activation}, {args.solver}, learning rate "
                f"{args.learning_rate:g}, dropout {args.dropout:g}, {args.dtype}"))
        except _user_errors() as exc:
            raise UsageError(f"cannot write the plot to {args.plot!r}: {exc}") from None
        print(f"saved plot: {args.plot}")
    return 0


def _make_estimator(args: argparse.Namespace, task: str, backend: str) -> Any:
    from . import MLPClassifier, MLPRegressor

    cls = MLPClassifier if task == "classification" else MLPRegressor
    return cls(hidden_layer_sizes=args.layers, activation=args.activation, solver=args.solver,
               learning_rate_init=args.learning_rate, max_iter=args.epochs,
               batch_size=args.batch_size, alpha=args.alpha, dropout=args.dropout,
               early_stopping=args.early_stopping, random_state=args.seed,
               verbose=not args.quiet, backend=backend, device=args.device, dtype=args.dtype)


def _report(model: Any, ds: Any) -> dict[str, float]:
    """Print and return the held-out metrics: accuracy (+ log loss) or R^2 (+ RMSE, MAE)."""
    from . import to_numpy

    n = len(ds.X_test)
    if ds.task == "classification":
        accuracy = float(model.score(ds.X_test, ds.y_test))
        metrics = {"accuracy": accuracy}
        proba = np.asarray(to_numpy(model.predict_proba(ds.X_test)), dtype=np.float64)
        classes = list(np.asarray(to_numpy(model.classes_)))
        if set(np.unique(ds.y_test)) <= set(classes):
            col = np.searchsorted(classes, ds.y_test)
            p = np.clip(proba[np.arange(n), col], 1e-15, 1.0)
            metrics["log_loss"] = float(-np.mean(np.log(p)))
        print(f"test accuracy: {accuracy:.4f} ({n} samples)"
              + (f", log loss {metrics['log_loss']:.4f}" if "log_loss" in metrics else ""))
    else:
        r2 = float(model.score(ds.X_test, ds.y_test))
        err = np.asarray(to_numpy(model.predict(ds.X_test)), np.float64).ravel() - ds.y_test
        metrics = {"r2": r2, "rmse": float(np.sqrt(np.mean(err ** 2))),
                   "mae": float(np.mean(np.abs(err)))}
        print(f"test R^2: {r2:.4f} ({n} samples), RMSE {metrics['rmse']:.4g}, "
              f"MAE {metrics['mae']:.4g}")
    return metrics


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
    from . import serialization

    model.save(path)
    arrays, meta = serialization.load(path)
    meta = {k: v for k, v in meta.items() if k not in ("format", "format_version")}
    meta[META_KEY] = dataset
    serialization.save(path, arrays, meta)


def _evaluate(args: argparse.Namespace) -> int:
    import xpnet

    from . import serialization
    from .datasets import load_dataset

    try:
        _, meta = serialization.load(args.model)
        recorded = meta.get(META_KEY) or {}
        name = args.dataset or recorded.get("name")
        if name is None:
            raise UsageError(f"{args.model} records no dataset (it was not saved by `xpnet "
                             "train`); give one with --dataset")
        model = xpnet.load(args.model, backend=args.backend, device=args.device)
        dtype = str(getattr(model, "dtype", "float32"))
        ds = load_dataset(name, test_size=recorded.get("test_size", 0.25),
                          random_state=recorded.get("split_seed", SPLIT_SEED),
                          dtype=dtype if dtype in ("float32", "float64") else "float32")
    except _user_errors() as exc:
        raise UsageError(exc) from None
    n_in = getattr(model, "n_features_in_", ds.n_features)
    if n_in != ds.n_features:
        raise UsageError(f"the model expects {n_in} features but {ds.name} has "
                         f"{ds.n_features}; evaluate it on the dataset it was trained on")
    is_classifier = hasattr(model, "classes_")
    if is_classifier != (ds.task == "classification"):
        raise UsageError(f"a {type(model).__name__} cannot be evaluated on {ds.name}, a "
                         f"{ds.task} dataset")
    print(f"{PROG} evaluate: {args.model}")
    print(f"model: {model!r}")
    print(f"dataset: {ds.describe()} (test part)")
    start = time.perf_counter()
    _report(model, ds)
    print(f"time: {time.perf_counter() - start:.2f} s")
    return 0


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _info(args: argparse.Namespace) -> int:
    from . import __version__, available_backends, get_backend
    from .backend import devices

    print(f"xpnet {__version__} (Python {platform.python_version()}, {platform.system()} "
          f"{platform.machine()})")
    print("backends:")
    found = available_backends()
    width = max(map(len, found))
    for name, (usable, reason) in found.items():
        if usable:
            listed = ", ".join(devices(name, describe=True)) or "none"
            print(f"  {name:<{width}}  usable    {reason}; devices: {listed}")
        else:
            print(f"  {name:<{width}}  unusable  {reason}")
    print(f"  backend 'auto' means: {get_backend('auto').name}")
    print("packages:")
    for dist, role in (("numpy", "required"), ("array-api-compat", "required"),
                       ("scikit-learn", "datasets, extra [sklearn]"),
                       ("tqdm", "progress bars, extra [progress]"),
                       ("matplotlib", "--plot, extra [plot]"), ("torch", "backend, extra [torch]"),
                       ("cupy-cuda12x", "backend, extra [cuda12]"),
                       ("cupy-cuda13x", "backend, extra [cuda13]"),
                       ("array-api-strict", "backend (testing)")):
        version = _version(dist)
        if version is not None or role == "required" or not dist.startswith("cupy"):
            print(f"  {dist:<17} {version or 'not installed':<16} {role}")
    return 0


def _bench(argv: list[str]) -> int:
    """``xpnet bench ...``: hand the arguments to the benchmark entry point ``xpnet.bench.main``."""
    try:
        from .bench import main as bench_main
    except ModuleNotFoundError as exc:
        if exc.name not in ("xpnet.bench", f"{__package__}.bench"):
            print(f"{PROG} bench: error: the benchmarks need {exc.name!r}, which is not "
                  "installed: pip install 'xpnet[bench]'", file=sys.stderr)
        else:
            print(f"{PROG} bench: error: the benchmark entry point xpnet.bench.main is not part "
                  "of this install of xpnet", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"{PROG} bench: error: the benchmark entry point xpnet.bench.main is not "
              f"available in this install of xpnet ({exc})", file=sys.stderr)
        return 2
    code = bench_main(argv)
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
