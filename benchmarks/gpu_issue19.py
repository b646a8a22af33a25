"""Issue 19's measurements on a GPU (run by ci/gpu-issue19; about 2 minutes on an H200).

1. predict_proba of 1,000,000 x 784 float32 rows through (1024, 1024) -> 10, on CuPy and on
   torch CUDA: from host NumPy (staged; target <= 0.25 s) and from device arrays (target
   <= 0.05 s); min and median of 3 warm calls; the staging buffer must be made once.
2. The functional gradient_descent_step at 784-256-256-10@128 with CuPy's portable and fused
   kernels in one process: ms per step, and host microseconds per call of each kernel method
   (no sync inside: what the Python side costs; a method another calls, such as ``linear``
   inside the portable ``linear_activation``, counts in both), to name what the fused row
   pays per call; and one product's host cost through cupy.matmul, ndarray.dot and @.

Prints tables and writes issue19.json into $OUT (default bench-results); exit status 1 when a
predict target or the staging reuse fails.
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import sys
import time
import warnings

import numpy as np

import xpnet
from xpnet.training.inference import staging_for

ROWS, FEATURES = 1_000_000, 784


def _timed(fn, sync, repeats=3):
    out = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        out.append(time.perf_counter() - t0)
    return min(out), statistics.median(out)


def predict_timings(X: np.ndarray) -> list[dict]:
    rows = []
    for name, device in (("cupy", 0), ("torch", "cuda")):
        be = xpnet.get_backend(name, device)
        clf = xpnet.MLPClassifier((1024, 1024), max_iter=1, random_state=0, backend=name,
                                  device=device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(X[:4096], np.arange(4096) % 10)
        clf.predict_proba(X[:200_000])  # kernels compiled, staging buffer made
        host = _timed(lambda: clf.predict_proba(X), be.synchronize)
        staging = staging_for(clf._net, be)
        Xd = be.asarray(X)
        clf.predict_proba(Xd[:200_000])
        dev = _timed(lambda: clf.predict_proba(Xd), be.synchronize)
        rows.append({"backend": f"{name}:{be.device_spec}", "host_min_s": host[0],
                     "host_median_s": host[1], "device_min_s": dev[0],
                     "device_median_s": dev[1], "staging_allocations": staging.allocations,
                     "ok": host[0] <= 0.25 and dev[0] <= 0.05 and staging.allocations == 1})
        del Xd, clf
        be.synchronize()
    return rows


class _MethodTimer:
    """Wraps every public kernel method of ``K``: host seconds per call, by name."""

    def __init__(self, K) -> None:
        self.calls: dict[str, list[float]] = {}
        for attr in dir(K):
            fn = getattr(K, attr)
            if attr.startswith("_") or not callable(fn) or attr in ("workspace",
                                                                     "shared_workspace"):
                continue
            setattr(K, attr, self._wrap(attr, fn))

    def _wrap(self, name, fn):
        @functools.wraps(fn)
        def timed(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.calls.setdefault(name, []).append(time.perf_counter() - t0)
        return timed


def step_probe() -> dict:
    import cupy

    from xpnet.backends.cupy_kernels import CupyKernels
    from xpnet.core.kernels import Kernels
    from xpnet.core.step import gradient_descent_step

    be = xpnet.get_backend("cupy", 0)
    dims, m, steps = (784, 256, 256, 10), 128, 128
    rng = np.random.default_rng(0)
    Xs = [be.asarray(rng.standard_normal((m, dims[0]), dtype=np.float32)).T for _ in range(8)]
    Ys = [be.asarray(np.eye(10, dtype=np.float32)[rng.integers(0, 10, m)]).T for _ in range(8)]
    g = ["relu", "relu", "softmax"]
    result = {"cupy": cupy.__version__}
    for label, K in (("portable", Kernels()), ("fused", CupyKernels())):
        W, b = xpnet.initialize_parameters(list(dims), rng=0, dtype="float32", backend=be)

        def epoch():
            for t in range(steps):
                gradient_descent_step(Xs[t % 8], Ys[t % 8], W, b, g, 0.01, xp=be.xp,
                                      kernels=K)
        epoch()
        times = [_timed(epoch, be.synchronize, 1)[0] for _ in range(5)]
        timer = _MethodTimer(K)
        epoch()
        be.synchronize()
        result[label] = {"ms_per_step": 1e3 * statistics.median(times) / steps,
                         "host_us_per_call": {k: 1e6 * statistics.median(v)
                                              for k, v in sorted(timer.calls.items())},
                         "calls_per_step": {k: len(v) / steps
                                            for k, v in sorted(timer.calls.items())}}
    a = cupy.ones((256, 128), dtype=cupy.float32)
    c = cupy.ones((128, 784), dtype=cupy.float32)
    products = {"cupy.matmul": lambda: cupy.matmul(a, c), "ndarray.dot": lambda: a.dot(c),
                "@": lambda: a @ c}
    for label, fn in products.items():
        be.synchronize()
        t0 = time.perf_counter()
        for _ in range(1000):
            fn()
        result.setdefault("product_host_us", {})[label] = (time.perf_counter() - t0) * 1e3
        be.synchronize()
    return result


def main() -> int:
    out_dir = os.environ.get("OUT", "bench-results")
    os.makedirs(out_dir, exist_ok=True)
    X = np.random.default_rng(0).standard_normal((ROWS, FEATURES), dtype=np.float32)
    report = {"predict": predict_timings(X)}
    del X
    report["step"] = step_probe()
    with open(os.path.join(out_dir, "issue19.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(f"\npredict_proba {ROWS:,} x {FEATURES} on (1024, 1024): targets host <= 0.25 s, "
          f"device <= 0.05 s")
    for r in report["predict"]:
        print(f"  {r['backend']:<9} host {r['host_min_s']:.3f} s (median "
              f"{r['host_median_s']:.3f})  device {r['device_min_s']:.4f} s (median "
              f"{r['device_median_s']:.4f})  staging buffers made: "
              f"{r['staging_allocations']}  {'ok' if r['ok'] else 'MISSED'}")
    s = report["step"]
    print(f"\nfunctional step 784-256-256-10@128, CuPy {s['cupy']}: portable "
          f"{s['portable']['ms_per_step']:.3f} ms, fused {s['fused']['ms_per_step']:.3f} ms")
    print(f"  {'kernel method':<22} {'portable us/call':>17} {'fused us/call':>14} "
          f"{'calls/step':>11}")
    names = set(s["portable"]["host_us_per_call"]) | set(s["fused"]["host_us_per_call"])
    for name in sorted(names):
        p = s["portable"]["host_us_per_call"].get(name)
        q = s["fused"]["host_us_per_call"].get(name)
        n = s["fused"]["calls_per_step"].get(name, s["portable"]["calls_per_step"].get(name))
        print(f"  {name:<22} {'' if p is None else f'{p:.1f}':>17} "
              f"{'' if q is None else f'{q:.1f}':>14} {n:>11.1f}")
    print("  one 256x128 @ 128x784 product, host us/call: " + ", ".join(
        f"{k} {v:.1f}" for k, v in s["product_host_us"].items()))
    return 0 if all(r["ok"] for r in report["predict"]) else 1


if __name__ == "__main__":
    sys.exit(main())
