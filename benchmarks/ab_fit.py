"""NumPy fit time per epoch, this tree against another (e.g. the last release), interleaved.

    python benchmarks/ab_fit.py OTHER_SRC [--rounds 7] [--configs sgd,adam,...]
    python benchmarks/ab_fit.py --one CONFIG      (a worker: prints one time, in seconds)

Each candidate runs in its own process (OpenBLAS on one thread), in rounds that alternate
this tree's ``src`` with ``OTHER_SRC`` (e.g. ``git worktree add /tmp/base REV`` then
``/tmp/base/src``); each process reports the best of 3 timed 3-epoch fits of
784-256-256-10 at batch 128 on 8192 rows (float32) after a warm-up fit. The table gives the
median ms per epoch of each tree and the median [min, max] of the per-round ratios
this / other: compare ratios, not absolute times, on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

CONFIGS = {
    "sgd": dict(solver="sgd", learning_rate_init=0.01, momentum=0.0),
    "adam": dict(solver="adam"),
    "adam-dropout-l2": dict(solver="adam", dropout=0.2, alpha=1e-3),
    "nesterov-clip": dict(solver="sgd", momentum=0.9, clip_norm=1.0, learning_rate_init=0.01),
}


def one(config: str) -> float:
    """Seconds per epoch of CONFIGS[config] (best of 3 fits of 3 epochs)."""
    import numpy as np

    import xpnet

    rng = np.random.default_rng(0)
    X = rng.standard_normal((8192, 784)).astype(np.float32)
    y = (X @ rng.standard_normal((784, 10))).argmax(1)
    kw = dict(hidden_layer_sizes=(256, 256), batch_size=128, dtype="float32", backend="numpy",
              random_state=0, tol=0.0, n_iter_no_change=10**6, **CONFIGS[config])
    warnings.simplefilter("ignore")
    xpnet.MLPClassifier(max_iter=1, **kw).fit(X, y)  # warm-up
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        xpnet.MLPClassifier(max_iter=3, **kw).fit(X, y)
        times.append((time.perf_counter() - t0) / 3)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("other", nargs="?", help="the other tree's src folder")
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--configs", default=",".join(CONFIGS))
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return
    if not args.other:
        p.error("give the other tree's src folder (e.g. a worktree of the last release)")
    trees = {"this": str(Path(__file__).resolve().parents[1] / "src"), "other": args.other}
    seen = {c: {"this": [], "other": [], "ratio": []} for c in args.configs.split(",")}
    for _ in range(args.rounds):
        for config, row in seen.items():
            got = {}
            for name, src in trees.items():
                env = dict(os.environ, PYTHONPATH=src, OPENBLAS_NUM_THREADS="1")
                out = subprocess.run([sys.executable, __file__, "--one", config], env=env,
                                     capture_output=True, text=True, check=True)
                got[name] = float(out.stdout.strip().splitlines()[-1])
                row[name].append(got[name])
            row["ratio"].append(got["this"] / got["other"])
    print("| configuration | ms/epoch other -> this | this / other, median [min, max] |")
    print("|---|---|---|")
    for config, row in seen.items():
        r = row["ratio"]
        print(f"| {config} | {1e3 * statistics.median(row['other']):.0f} -> "
              f"{1e3 * statistics.median(row['this']):.0f} | {statistics.median(r):.3f} "
              f"[{min(r):.3f}, {max(r):.3f}] |")


if __name__ == "__main__":
    main()
