"""The ``xpnet`` command line: ``train``, ``predict``, ``evaluate``, ``export``, ``info`` and
``bench``.

    xpnet train [--dataset digits | --data FILE --target COLUMN] [--layers 128,64] [--epochs 50]
                [--sep C] [--features A,B | --drop A,B] [--missing error|drop|mean|median]
                [--drop-unlabeled] [--save M.xpnet] [--plot C.png]
    xpnet predict M.xpnet FILE [--output OUT.csv] [--proba] [--features A,B] [--sep C]
    xpnet evaluate M.xpnet [--dataset NAME | --data FILE --target COLUMN]
    xpnet export M.xpnet --onnx M.onnx     (raw rows in: the model's preprocessing in the graph)
    xpnet info
    xpnet bench ...            (delegates to xpnet.bench.main)
    xpnet --version

Bad options print one line and exit with status 2, as argparse does; so do user errors found
later (an unusable backend, a missing MNIST folder, a model file that is not one, a blank label,
a missing value); output paths are checked before any work.

The package: ``main`` (here) parses with ``parser.build_parser`` (option types in ``options``)
and imports only the module of the command given: ``train``, ``predict``, ``evaluate``,
``export``, ``info``; ``common`` holds what they share (errors, path checks, constants, the
held-out metrics report).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from xpnet.cli.common import PROG, UsageError
from xpnet.cli.parser import build_parser

__all__ = ["build_parser", "main"]


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
    # only the command's own module is imported: start-up stays short
    module = importlib.import_module(f"{__name__}.{args.command}")
    command = getattr(module, f"run_{args.command}")
    try:
        return command(args)
    except UsageError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `xpnet info | head`: the reader left; say nothing more
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _bench(argv: list[str]) -> int:
    """``xpnet bench ...``: hand the arguments to the benchmark entry point ``xpnet.bench.main``."""
    try:
        from xpnet.bench import main as bench_main
    except ModuleNotFoundError as exc:
        if exc.name not in ("xpnet.bench", f"{__package__.rpartition('.')[0]}.bench"):
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
