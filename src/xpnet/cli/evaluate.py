"""``xpnet evaluate``: a saved model's metrics on the held-out part of its dataset, or on every
row of a labelled file (``--data FILE --target COLUMN``, for any model)."""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace
from typing import Any

import numpy as np

from xpnet.cli.common import (META_KEY, PROG, SPLIT_SEED, UsageError, check_model, note,
                              report, user_errors)

__all__ = ["run_evaluate"]


def run_evaluate(args: argparse.Namespace) -> int:
    from xpnet.io import container
    from xpnet.pipeline import load_pipeline

    check_model(args.model)
    if args.data is None and (args.target or args.sep or args.features):
        raise UsageError("--target, --sep and --features describe a --data file: give "
                         "--data FILE too")
    if args.data is not None and args.target is None:
        raise UsageError("--data needs --target COLUMN: the labels to score against")
    try:
        _, meta = container.load(args.model)
        recorded = meta.get(META_KEY) or {}
        if args.data is None and args.dataset is None and recorded.get("name") is None:
            raise UsageError(f"{args.model} records no dataset (it was not saved by `xpnet "
                             "train`); give a labelled file with --data FILE --target COLUMN, "
                             "or a dataset with --dataset NAME")
        pipe = load_pipeline(args.model, backend=args.backend, device=args.device)
        ds = (_file(pipe, args) if args.data is not None else
              _recorded(pipe, recorded, args.dataset))
    except user_errors() as exc:
        raise UsageError(exc) from None
    model = pipe.estimator
    if ds.n_features != model.n_features_in_:
        raise UsageError(f"the model expects {model.n_features_in_} features but {ds.name} "
                         f"has {ds.n_features}; evaluate it on the dataset it was trained on")
    is_classifier = hasattr(model, "classes_")
    if is_classifier != (ds.task == "classification"):
        raise UsageError(f"a {type(model).__name__} cannot be evaluated on {ds.name}, a "
                         f"{ds.task} dataset")
    print(f"{PROG} evaluate: {args.model}")
    print(f"model: {model!r}")
    print(f"dataset: {ds.describe()}")
    start = time.perf_counter()
    report(model, ds)
    print(f"time: {time.perf_counter() - start:.2f} s")
    return 0


def _recorded(pipe: Any, recorded: dict, dataset: str | None) -> Any:
    """The held-out part of the dataset recorded in the model file (or of ``dataset``),
    split and prepared as `xpnet train` did."""
    from xpnet.datasets import load_dataset, load_file

    dtype = pipe.estimator.compute_dtype_
    split = dict(test_size=recorded.get("test_size", 0.25),
                 random_state=recorded.get("split_seed", SPLIT_SEED), dtype=dtype)
    if dataset is None and recorded.get("source"):  # trained on the user's file
        ds = load_file(recorded["source"], target=recorded.get("target"),
                       task=recorded.get("task"), **split, **(recorded.get("read") or {}))
    else:
        ds = load_dataset(dataset or recorded["name"], **split)
    return _Part(ds.name, "test part", ds.task, ds.X_test, ds.y_test)


def _file(pipe: Any, args: argparse.Namespace) -> Any:
    """Every row of --data, its features picked and prepared as the model's training data
    were (by position, with a note, for a model that records no column names)."""
    from xpnet.tables import read_table

    model = pipe.estimator
    columns = args.features or pipe.columns
    fills = pipe.preprocessing is not None and pipe.preprocessing.fill is not None
    table = read_table(args.data, args.target, sep=args.sep, features=columns,
                       missing=pipe.preprocessing.missing if fills else "error")
    for text in table.notes:
        note("evaluate", text)
    if columns is None:
        note("evaluate", f"the model records no column names: using the file's columns "
                         f"{', '.join(table.feature_names)} by position as its features")
    if table.X.shape[1] != model.n_features_in_:
        raise UsageError(f"{args.data}: {table.X.shape[1]} feature columns (all but "
                         f"{args.target!r}), but the model takes {model.n_features_in_}: "
                         f"name its columns with --features")
    y = table.y
    if hasattr(model, "classes_"):
        classes = np.asarray(model.classes_)
        y = _labels(y, classes)
        unseen = sorted(set(np.unique(y).tolist()) - set(classes.tolist()), key=str)
        if len(unseen) == len(np.unique(y)):
            raise UsageError(f"{args.data}: no label of column {args.target!r} "
                             f"({', '.join(map(str, unseen[:5]))}) is one of the model's "
                             f"classes ({', '.join(map(str, classes[:5]))}): is it the right "
                             f"--target?")
        if unseen:
            note("evaluate", f"labels the model never saw, always counted wrong: "
                             f"{', '.join(map(str, unseen[:5]))}")
    task = "classification" if hasattr(model, "classes_") else "regression"
    if task == "regression" and y.dtype.kind not in "biuf":
        raise UsageError(f"{args.data}: column {args.target!r} holds labels, but the model "
                         f"is a regressor")
    return _Part(str(args.data), "every row", task, pipe.transform(table.X), y)


def _labels(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The file's labels in the classes' type (integers read as 1.0 are 1)."""
    if classes.dtype.kind in "iu" and y.dtype.kind == "f" and np.all(y == np.round(y)):
        return y.astype(classes.dtype)
    if classes.dtype.kind in "UO" and y.dtype.kind != "U":
        return np.array([f"{v:g}" if isinstance(v, float) else str(v) for v in y.tolist()])
    return y


class _Part(SimpleNamespace):
    """The rows to score: what :func:`xpnet.cli.common.report` reads."""

    def __init__(self, name: str, part: str, task: str, X: Any, y: Any) -> None:
        super().__init__(name=name, part=part, task=task, X_test=X, y_test=np.asarray(y))

    @property
    def n_features(self) -> int:
        return int(self.X_test.shape[1])

    def describe(self) -> str:
        kind = (f"{len(np.unique(self.y_test))} classes" if self.task == "classification"
                else "regression")
        return (f"{self.name} ({self.part}): {len(self.X_test)} samples, {self.n_features} "
                f"features, {kind}")
