"""``xpnet predict``: a saved model's predictions for the rows of a CSV / .npy / .npz file."""

from __future__ import annotations

import argparse
import csv
import sys
from typing import Any

import numpy as np

from xpnet.cli.common import META_KEY, PROG, UsageError, user_errors

__all__ = ["run_predict"]


def run_predict(args: argparse.Namespace) -> int:
    import xpnet
    from xpnet.backends import to_numpy
    from xpnet.io import container
    from xpnet.tables import read_features

    try:
        _, meta = container.load(args.model)
        recorded = meta.get(META_KEY) or {}
        model = xpnet.load(args.model, backend=args.backend)
        names = recorded.get("feature_names")
        if names is None and getattr(model, "feature_names_in_", None) is not None:
            names = [str(c) for c in model.feature_names_in_]
        X = read_features(args.data, names, int(model.n_features_in_))
        if recorded.get("mean") is not None:  # the training data's standardization
            X = (X - np.asarray(recorded["mean"])) / np.asarray(recorded["std"])
        X = X.astype(model.get_params()["dtype"])
        classifier = hasattr(model, "classes_")
        if args.proba and not classifier:
            raise UsageError(f"--proba needs a classifier; {args.model} holds a "
                             f"{type(model).__name__}")
        if args.proba:
            values = np.asarray(to_numpy(model.predict_proba(X)))
            header = [f"proba_{c}" for c in to_numpy(model.classes_)]
        else:
            values = np.asarray(to_numpy(model.predict(X)))
            header = _header(model, values, recorded.get("target"))
    except user_errors() as exc:
        raise UsageError(exc) from None
    rows = values.reshape(len(values), -1)
    out = open(args.output, "w", newline="") if args.output else sys.stdout
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
