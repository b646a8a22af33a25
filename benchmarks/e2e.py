"""End to end: one whole ``fit`` of a 784-1024-1024-10 classifier on 60,000 rows, xpnet on a
backend against scikit-learn's MLPClassifier on the CPU, each in its own process.

    python benchmarks/e2e.py --backends cupy,torch-cuda,numpy [--mnist DIR] [--epochs 10]

Data: MNIST from DIR (xpnet.datasets.load_mnist, nothing downloaded) or, without --mnist, a
synthetic 10-class set of the same shape (Gaussian clusters on 64 of the 784 features). Both
estimators get the same parameters (adam, batch 256, ``epochs`` epochs, tol 0, random_state 0)
and float32 data; scikit-learn runs in float32 too (its dtype follows X). Reported: fit seconds
(warm: each worker fits once on 2,048 rows first, untimed), test accuracy, and the speed-up
against scikit-learn. The target: >= 30x scikit-learn on a GPU, accuracy within 0.5
points.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

WORKER = r"""
import json, sys, time, warnings
import numpy as np
cfg = json.loads(sys.argv[1])
from xpnet.datasets import load_mnist, make_classification
if cfg["mnist"]:
    Xtr, ytr, Xte, yte = load_mnist(cfg["mnist"])
else:
    X, y = make_classification(cfg["rows"] + 10000, 784, n_classes=10, n_informative=64,
                               class_sep=0.6, random_state=0)
    X = X.astype(np.float32)
    Xtr, ytr, Xte, yte = X[:cfg["rows"]], y[:cfg["rows"]], X[cfg["rows"]:], y[cfg["rows"]:]
Xtr, ytr = Xtr[:cfg["rows"]].astype(np.float32), ytr[:cfg["rows"]]
kw = dict(hidden_layer_sizes=(1024, 1024), solver="adam", batch_size=256, tol=0.0,
          n_iter_no_change=10**6, random_state=0)
def make(epochs):
    if cfg["backend"] == "sklearn":
        from sklearn.neural_network import MLPClassifier
        return MLPClassifier(max_iter=epochs, **kw)
    import xpnet
    name, _, device = cfg["backend"].partition("-")  # "torch-cuda": torch on the GPU
    return xpnet.MLPClassifier(max_iter=epochs, backend=name, device=device or None, **kw)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    make(1).fit(Xtr[:2048], ytr[:2048])  # warm-up: imports, kernels, memory pools
    est = make(cfg["epochs"])
    t = time.perf_counter()
    est.fit(Xtr, ytr)
    acc = float(np.mean(np.asarray(est.predict(Xte)) == yte))  # predict reads back: synced
    seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "accuracy": acc}))
"""


def run(backend: str, args: argparse.Namespace) -> dict:
    cfg = dict(backend=backend, mnist=args.mnist, rows=args.rows, epochs=args.epochs)
    done = subprocess.run([sys.executable, "-c", WORKER, json.dumps(cfg)],
                          capture_output=True, text=True, timeout=args.timeout)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="numpy", help="xpnet backends, comma-separated")
    p.add_argument("--mnist", default=None, metavar="DIR")
    p.add_argument("--rows", type=int, default=60000)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--timeout", type=int, default=3600)
    p.add_argument("--no-sklearn", action="store_true")
    args = p.parse_args()
    results = {b: run(b, args) for b in args.backends.split(",")}
    if not args.no_sklearn:
        results["sklearn (CPU)"] = run("sklearn", args)
    ref = results.get("sklearn (CPU)", {})
    print(f"784-1024-1024-10, {args.rows} rows, {args.epochs} epochs, adam, batch 256, "
          f"{'MNIST' if args.mnist else 'synthetic'} data")
    print(f"{'candidate':<16} {'fit s':>8} {'accuracy':>9} {'x sklearn':>9}")
    for name, r in results.items():
        if "error" in r:
            print(f"{name:<16} ERROR {r['error'][:100]}")
            continue
        speed = f"{ref['seconds'] / r['seconds']:.1f}" if "seconds" in ref else ""
        print(f"{name:<16} {r['seconds']:>8.2f} {r['accuracy']:>9.4f} {speed:>9}")


if __name__ == "__main__":
    main()
