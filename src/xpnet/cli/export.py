"""``xpnet export``: a saved model's prediction path, with its preprocessing, as an ONNX file."""

from __future__ import annotations

import argparse

from xpnet.cli.common import PROG, UsageError, check_model, check_output, note, user_errors

__all__ = ["run_export"]


def run_export(args: argparse.Namespace) -> int:
    check_model(args.model)
    check_output(args.onnx, "--onnx")  # before any work
    from xpnet.pipeline import load_pipeline

    try:
        pipe = load_pipeline(args.model, host=True)  # no estimator classes needed
        pipe.to_onnx(args.onnx)
    except user_errors() as exc:
        raise UsageError(exc) from None
    columns = pipe.columns
    named = f"columns {', '.join(columns)}" if columns else "columns by position"
    if pipe.preprocessing is not None:
        note("export", f"input X: the raw rows, float64, {named}; filled and standardized "
                       f"inside the graph")
    else:
        note("export", f"input X: rows as the model takes them, "
                       f"{pipe.estimator.compute_dtype_}, "
                       f"{named}")
    print(f"{PROG} export: {args.model} -> {args.onnx}")
    return 0
