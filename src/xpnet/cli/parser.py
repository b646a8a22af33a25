"""The argument parser of ``xpnet``: sub-commands train, evaluate, info and bench."""

from __future__ import annotations

import argparse

from xpnet.cli.common import PROG
from xpnet.cli.options import parse_activation, parse_batch_size, parse_dataset, parse_fraction, parse_layers, parse_positive, parse_test_size

__all__ = ["build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is reported in one line (with where to find help)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``xpnet`` (sub-commands train, evaluate, info, bench)."""
    from xpnet.backends import BACKENDS

    parser = _Parser(prog=PROG, description="Train and evaluate multi-layer "
                                     "perceptrons on NumPy, CuPy, PyTorch or array-api-strict.")
    sub = parser.add_subparsers(dest="command", metavar="{train,evaluate,info,bench}")
    sub.required = True

    backends = ["auto", *BACKENDS]
    train = sub.add_parser("train", help="train an MLP on a dataset and report test accuracy",
                           description="Train on a held-out split of a dataset (no download) "
                           "and print the test accuracy (R^2 for regression) and time.")
    train.add_argument("--dataset", type=parse_dataset, default="digits", metavar="NAME",
                       help="digits (default), breast_cancer, diabetes, synthetic, "
                            "synthetic_regression, or mnist:DIR (IDX files in DIR)")
    train.add_argument("--layers", type=parse_layers, default=(256, 128), metavar="N,N,...",
                       help="hidden layer sizes (default 256,128)")
    train.add_argument("--activation", type=parse_activation, default="relu", metavar="NAME[,NAME]",
                       help="hidden activation, or one per hidden layer (default relu)")
    train.add_argument("--solver", choices=["adam", "sgd"], default="adam")
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
                       help="stop when the score on the validation split stops improving, "
                            "and keep the best weights")
    train.add_argument("--validation-fraction", type=parse_fraction, default=0.1, metavar="F",
                       help="share of the training part held out as validation data, scored "
                            "after every epoch (validation loss and score in the progress bar "
                            "and the plot; default 0.1; 0 = none)")
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
    ev.add_argument("--dataset", type=parse_dataset, default=None, metavar="NAME",
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
