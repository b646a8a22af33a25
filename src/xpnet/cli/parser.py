"""The argument parser of ``xpnet``: sub-commands train, predict, evaluate, info and bench."""

from __future__ import annotations

import argparse

from xpnet.cli.common import PROG
from xpnet.core.registry import STOCHASTIC
from xpnet.cli.options import (parse_activation, parse_batch_size, parse_columns,
                               parse_dataset, parse_fraction, parse_layers, parse_path,
                               parse_positive, parse_sep, parse_test_size)

__all__ = ["build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is reported in one line (with where to find help)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``xpnet`` (sub-commands train, predict, evaluate, export, info,
    bench)."""
    from xpnet import __version__
    from xpnet.backends import BACKENDS

    parser = _Parser(prog=PROG, description="Train and evaluate multi-layer "
                                     "perceptrons on NumPy, CuPy, PyTorch or array-api-strict.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command",
                                metavar="{train,predict,evaluate,export,info,bench}")
    sub.required = True

    backends = ["auto", *BACKENDS]
    train = sub.add_parser("train", help="train an MLP on a dataset or your file, report "
                           "test accuracy", description="Train on a held-out split of a "
                           "dataset (no download) or of your own CSV / .npy / .npz file, and "
                           "print the test accuracy (R^2 for regression) and time.")
    source = train.add_mutually_exclusive_group()
    source.add_argument("--dataset", type=parse_dataset, default=None, metavar="NAME",
                        help="digits (default), breast_cancer, diabetes, synthetic, "
                             "synthetic_regression, or mnist:DIR (IDX files in DIR)")
    source.add_argument("--data", type=parse_path, default=None, metavar="FILE",
                        help="your data: a CSV file with a header row (name the label column "
                             "with --target), an .npy array (target: a column index, default "
                             "the last) or an .npz file with arrays X and y")
    train.add_argument("--target", default=None, metavar="COLUMN",
                       help="the label / value column of --data")
    _columns(train, drop=True)
    train.add_argument("--missing", choices=["error", "drop", "mean", "median"],
                       default="error",
                       help="missing feature values (empty, NA, NaN, ?): error (default: "
                            "refused, naming them), drop (leave those rows out), mean / "
                            "median (fill with the training part's; kept in the model, which "
                            "then fills them in new rows too)")
    train.add_argument("--drop-unlabeled", action="store_true",
                       help="leave out rows whose --target cell is empty (default: refused)")
    train.add_argument("--task", choices=["classification", "regression"], default=None,
                       help="default: inferred from the targets (strings or few distinct "
                            "integers: classification)")
    train.add_argument("--layers", type=parse_layers, default=(256, 128), metavar="N,N,...",
                       help="hidden layer sizes (default 256,128)")
    train.add_argument("--activation", type=parse_activation, default="relu", metavar="NAME[,NAME]",
                       help="hidden activation, or one per hidden layer (default relu)")
    train.add_argument("--solver", choices=sorted(STOCHASTIC), default="adam")
    train.add_argument("--learning-rate", type=parse_positive(float), default=1e-3, metavar="LR",
                       help="initial learning rate (default 0.001)")
    train.add_argument("--epochs", type=parse_positive(int), default=100,
                       help="maximum number of epochs (default 100)")
    train.add_argument("--batch-size", type=parse_batch_size, default="auto", metavar="N",
                       help="minibatch size, or auto = min(200, n_samples) (default)")
    train.add_argument("--alpha", type=float, default=1e-4, help="L2 penalty (default 1e-4)")
    train.add_argument("--dropout", type=parse_fraction, default=0.2, metavar="RATE",
                       help="dropout rate on hidden layers (default 0.2; 0 = none)")
    train.add_argument("--early-stopping", action="store_true",
                       help="stop when the validation loss has not improved for --patience "
                            "epochs, and keep the weights of the best epoch")
    train.add_argument("--patience", type=parse_positive(int), default=10, metavar="N",
                       help="epochs without improvement before --early-stopping stops, and "
                            "the n_iter_no_change of the training-loss rule (default 10)")
    train.add_argument("--tol", type=float, default=1e-4,
                       help="improvement that counts (default 1e-4, scikit-learn's)")
    train.add_argument("--momentum", type=parse_fraction, default=0.9,
                       help="SGD momentum (default 0.9; 0 = plain gradient descent)")
    train.add_argument("--clip-norm", type=parse_positive(float), default=None, metavar="C",
                       help="clip the gradients to this global L2 norm (off by default)")
    train.add_argument("--checkpoint", type=parse_path, default=None, metavar="PATH",
                       help="write a checkpoint here after every epoch")
    train.add_argument("--resume", action="store_true",
                       help="continue from --checkpoint (same data and options)")
    train.add_argument("--distributed", choices=["mpi"], default=None,
                       help="data-parallel training under `mpiexec -n N xpnet train ...`: "
                            "each rank trains on its share of the training rows (one "
                            "gradient allreduce per step); rank 0 reports and saves")
    train.add_argument("--fail-below", type=float, default=None, metavar="SCORE",
                       help="exit with status 1 when the test score (accuracy or R^2) is "
                            "below SCORE")
    train.add_argument("--validation-fraction", type=parse_fraction, default=None, metavar="F",
                       help="share of the training part held out as validation data, scored "
                            "after every epoch (validation loss and score in the progress bar "
                            "and the plot; default 0.1, with --early-stopping 0.2: a loss "
                            "to stop on needs enough samples to be a signal; 0 = none)")
    train.add_argument("--backend", choices=backends, default="auto",
                       help="auto = cupy when a GPU is usable, else numpy")
    train.add_argument("--device", default=None, help="e.g. cuda:1 (default: the backend's)")
    train.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    train.add_argument("--tf32", action="store_true",
                       help="float32 matrix products on TF32 tensor cores (CUDA GPUs: faster "
                            "for wide layers, products rounded to a 10-bit mantissa)")
    train.add_argument("--seed", type=int, default=0,
                       help="random_state of the model (initial weights, shuffling, dropout)")
    train.add_argument("--test-size", type=parse_test_size, default=0.25, metavar="F",
                       help="held-out test share (default 0.25; ignored for mnist)")
    train.add_argument("--save", type=parse_path, metavar="PATH",
                       help="save the trained model here")
    train.add_argument("--plot", type=parse_path, metavar="PNG",
                       help="write the learning curves here "
                       "(training loss; validation loss and score unless "
                       "--validation-fraction 0)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    pr = sub.add_parser("predict", help="predict with a saved model on a file",
                        description="Predict with a saved model on the raw rows of a CSV / .npy / "
                        ".npz file: the columns the model was trained on, by name (others are "
                        "ignored), prepared as its training data were (missing values filled, "
                        "standardized). A model that records no column names takes a file of "
                        "exactly its number of columns, by position (a note says so).")
    pr.add_argument("model", type=parse_path, metavar="MODEL", help="a model file")
    pr.add_argument("data", type=parse_path, metavar="FILE", help="the rows to predict")
    pr.add_argument("--output", type=parse_path, default=None, metavar="OUT.csv",
                    help="write the predictions here (default: standard output)")
    _columns(pr)
    pr.add_argument("--proba", action="store_true",
                    help="class probabilities, one column per class (classifiers)")
    pr.add_argument("--backend", choices=backends, default=None,
                    help="default: the backend recorded in the model file")

    ex = sub.add_parser("export", help="export a saved model to ONNX",
                        description="Write the prediction path of a saved model as an ONNX "
                        "model (needs xpnet[onnx]).")
    ex.add_argument("model", type=parse_path, metavar="MODEL", help="a model file")
    ex.add_argument("--onnx", type=parse_path, required=True, metavar="OUT.onnx")

    ev = sub.add_parser("evaluate", help="report a saved model's test metrics",
                        description="Load a model and report its metrics: on the held-out split of "
                        "the dataset `xpnet train --save` recorded in it (or of --dataset), or on "
                        "every row of --data FILE --target COLUMN.")
    ev.add_argument("model", type=parse_path, metavar="MODEL", help="a model file")
    data = ev.add_mutually_exclusive_group()
    data.add_argument("--dataset", type=parse_dataset, default=None, metavar="NAME",
                      help="default: the dataset recorded in the model file")
    data.add_argument("--data", type=parse_path, default=None, metavar="FILE",
                      help="a labelled file to score the model on, every row of it (with "
                           "--target): works for any model, also one saved from Python")
    ev.add_argument("--target", default=None, metavar="COLUMN",
                    help="the label / value column of --data")
    _columns(ev)
    ev.add_argument("--backend", choices=backends, default=None,
                    help="default: the backend recorded in the model file")
    ev.add_argument("--device", default=None)

    sub.add_parser("info", help="backends, devices and versions found here",
                   description="List the backends xpnet knows, whether each is usable here (and "
                   "why not), their devices, and the versions of the optional extras.")
    sub.add_parser("bench", add_help=False, help="training throughput benchmarks (see "
                   "`xpnet bench --help`)")
    return parser


def _columns(command: argparse.ArgumentParser, drop: bool = False) -> None:
    """--sep, --features (and --drop): how a CSV is split, and which columns are features."""
    command.add_argument("--sep", type=parse_sep, default=None, metavar="CHAR",
                         help="the CSV delimiter (default: found in the header among , ; tab |)")
    command.add_argument("--features", type=parse_columns, default=None, metavar="A,B,...",
                         help="the feature columns, in this order (default: every column but "
                              "the target" + (" and --drop)" if drop else
                                              "; for predict, the model's own)"))
    if drop:
        command.add_argument("--drop", type=parse_columns, default=None, metavar="A,B,...",
                             help="columns to leave out (an id, a second target, ...)")
