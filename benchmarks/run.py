"""Run the xpnet benchmarks from a checkout: ``python benchmarks/run.py [--quick] ...``.

A thin wrapper around :func:`xpnet.bench.main` (also ``xpnet bench`` and
``python -m xpnet.bench``) that imports xpnet from this checkout's ``src/`` and writes to
``benchmarks/out/`` (git-ignored) unless ``--out`` is given. See benchmarks/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from xpnet.bench import main  # noqa: E402

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not any(a == "--out" or a.startswith("--out=") for a in argv):
        argv += ["--out", str(HERE / "out")]
    raise SystemExit(main(argv))
