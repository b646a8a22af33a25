"""Data-parallel throughput on the CPU: samples/s of MLPClassifier.fit with 1, 2, ... MPI ranks.

    python benchmarks/distributed.py [--ranks 1,2] [--repeats 3] [--config 784-256-256-10@512]

Each measurement is one ``mpiexec -n N`` job: every rank fits its shard (the same global batch
size and data, split in rows) for 1 + E epochs with ``distributed="mpi"``; the first epoch is
warm-up; samples/s = rows per epoch / median epoch time (from ``history_``). BLAS threads per
rank = cores / N, so every run uses the machine's cores once. The rank counts are interleaved
over the repeats; the spread (max - min) / median is printed next to each median.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

WORKER = r"""
import json, sys, time, warnings
import numpy as np
from mpi4py import MPI
import xpnet
cfg = json.loads(sys.argv[1])
comm = MPI.COMM_WORLD
dims = cfg["dims"]
rng = np.random.default_rng(0)
X = rng.standard_normal((cfg["n"], dims[0])).astype(np.float32)
y = rng.integers(0, dims[-1], cfg["n"])
rows = np.array_split(np.arange(cfg["n"]), comm.size)[comm.rank]
est = xpnet.MLPClassifier(dims[1:-1], solver="sgd", batch_size=cfg["batch"], max_iter=cfg["epochs"] + 1,
                          tol=0, n_iter_no_change=10**6, random_state=0, shuffle=True,
                          backend="numpy", distributed="mpi")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    est.fit(X[rows], y[rows])
if comm.rank == 0:
    times = [h["time"] for h in est.history_[1:]]
    print(json.dumps({"epoch_s": times}))
"""


def run(n_ranks: int, cfg: dict, cores: int) -> float:
    env = dict(os.environ)
    threads = str(max(1, cores // n_ranks))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = threads
    mpiexec = Path(sys.executable).parent / "mpiexec"
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(WORKER)
    try:
        done = subprocess.run([str(mpiexec), "-n", str(n_ranks), sys.executable, f.name,
                               json.dumps(cfg)], capture_output=True, text=True, env=env,
                              timeout=1800)
    finally:
        os.unlink(f.name)
    if done.returncode != 0:
        raise SystemExit(f"mpiexec -n {n_ranks} failed:\n{done.stderr[-2000:]}")
    times = json.loads(done.stdout.strip().splitlines()[-1])["epoch_s"]
    return cfg["n"] / statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ranks", default="1,2")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--config", default="784-256-256-10@512")
    p.add_argument("--n", type=int, default=16384, help="rows per epoch (all ranks)")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
    args = p.parse_args()
    dims_text, batch = args.config.split("@")
    cfg = dict(dims=[int(d) for d in dims_text.split("-")], batch=int(batch), n=args.n,
               epochs=args.epochs)
    cores = os.cpu_count() or 1
    ranks = [int(r) for r in args.ranks.split(",")]
    results: dict[int, list[float]] = {r: [] for r in ranks}
    for _ in range(args.repeats):
        for r in ranks:
            results[r].append(run(r, cfg, cores))
    base = statistics.median(results[ranks[0]])
    print(f"{args.config}, {args.n} rows per epoch, {cores} cores, "
          f"{args.repeats} interleaved repeats")
    print(f"{'ranks':>5} {'BLAS threads':>12} {'samples/s':>11} {'spread':>7} {'vs ' + str(ranks[0]):>6}")
    for r in ranks:
        med = statistics.median(results[r])
        spread = (max(results[r]) - min(results[r])) / med
        print(f"{r:>5} {max(1, cores // r):>12} {med:>11,.0f} {100 * spread:>6.0f}% "
              f"{med / base:>6.2f}")


if __name__ == "__main__":
    main()
