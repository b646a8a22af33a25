"""``xpnet predict``: a saved model's predictions for the raw rows of a CSV / .npy / .npz file."""

from __future__ import annotations

import argparse
import csv
import sys
from typing import Any

import numpy as np

from xpnet.cli.common import (META_KEY, PROG, UsageError, check_model, check_output, note,
                              on_host, user_errors)

__all__ = ["run_predict"]


def run_predict(args: argparse.Namespace) -> int:
    check_model(args.model)
    check_output(args.output, "--output")  # before any work
    from xpnet.backends import to_numpy
    from xpnet.io import container
    from xpnet.pipeline import load_pipeline
    from xpnet.tables import read_rows

    try:
        pipe = load_pipeline(args.model, backend=args.backend,
                             host=on_host(args.model, args.backend))
        model = pipe.estimator
        if args.proba and not hasattr(model, "classes_"):
            raise UsageError(f"--proba needs a classifier; {args.model} holds a "
                             f"{type(model).__name__}")
        fill = pipe.preprocessing is not None and pipe.preprocessing.fill is not None
        X, notes = read_rows(args.data, args.features or pipe.columns,
                             int(model.n_features_in_), sep=args.sep, fill=fill)
        for text in notes:
            note("predict", text)
        X = pipe.transform(X)
        if args.proba:
            values = np.asarray(to_numpy(model.predict_proba(X)))
            header = [f"proba_{c}" for c in to_numpy(model.classes_)]
        else:
            values = np.asarray(to_numpy(model.predict(X)))
            target = (container.load(args.model)[1].get(META_KEY) or {}).get("target")
            header = _header(model, values, target)
    except user_errors() as exc:
        raise UsageError(exc) from None
    rows = values.reshape(len(values), -1)
    try:
        out = open(args.output, "w", newline="") if args.output else sys.stdout
    except OSError as exc:
        raise UsageError(f"--output {args.output}: cannot write it ({exc.strerror})") from None
    try:
        writer = csv.writer(out)
        writer.writerow(header)
        for row in rows:
            writer.writerow([_cell(v) for v in row])
    finally:
        if args.output:
            out.close()
    if args.output:
        print(f"{PROG} predict: {len(rows)} rows -> {args.output}", file=sys.stderr)
    return 0


def _header(model: Any, values: np.ndarray, target: str | None) -> list[str]:
    if values.ndim == 1:
        return [target or "prediction"]
    if hasattr(model, "classes_"):  # multilabel: one 0/1 column per label
        return [str(c) for c in np.asarray(model.classes_)]
    return [f"{target or 'prediction'}_{k}" for k in range(values.shape[1])]


def _cell(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return str(v.item() if hasattr(v, "item") else v)
