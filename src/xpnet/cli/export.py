"""``xpnet export``: a saved model's prediction path as an ONNX file."""

from __future__ import annotations

import argparse

from xpnet.cli.common import PROG, UsageError, user_errors

__all__ = ["run_export"]


def run_export(args: argparse.Namespace) -> int:
    import xpnet

    try:
        model = xpnet.load(args.model, backend="numpy")
        model.to_onnx(args.onnx)
    except user_errors() as exc:
        raise UsageError(exc) from None
    print(f"{PROG} export: {args.model} -> {args.onnx}")
    return 0
