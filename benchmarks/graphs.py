"""CUDA graphs (issue 17) on a GPU: ms per step, launches per step, GPU-busy, the whole fit.

    python benchmarks/graphs.py [--out DIR] [--quick] [--no-sklearn]

Rows (float32; xpnet's "ms per step" is a fit's epoch time / steps, min over the epochs after
the capture; every candidate fits the same synthetic data from the same seed):

* 784-256-256-10 @128: SGD, Adam, SGD + dropout 0.2, SGD + clip_norm 1.0, for xpnet torch
  CUDA and CuPy (fused kernels, kernels="fused"), each eager (graphs=False) and
  captured (graphs=True); a hand-written PyTorch step, eager and as a CUDA graph (the
  reference to beat: its static batch refreshed by copy_ each step, Adam(capturable=True)).
* launches per step and GPU-busy for one epoch (CUPTI through torch.profiler:
  :mod:`xpnet.bench.launches`).
* The whole fit: 60,000 x 784 -> (1024, 1024) -> 10, Adam, batch 256: s per epoch and
  GPU-busy, against one epoch of scikit-learn's MLPClassifier on this machine's CPUs.
* 784-4096-4096-10 @4096 with TF32: xpnet (graphs) against the hand-written PyTorch graph.

Targets (issue 17): SGD <= 0.15 ms, Adam <= 0.25 ms per step at 784-256-256-10@128 on both
backends, dropout / clip <= 1.2x; <= 1 launch per full-batch step; the whole fit <= 76 ms per
epoch (>= 100x scikit-learn's 7.64 s) with the GPU busy >= 70%; 4096 TF32 <= 1.05x PyTorch's
graph. Writes graphs.json and graphs.md to --out; prints the table last.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import warnings


import numpy as np  # noqa: E402

SMALL = (784, 256, 256, 10)
CONFIGS = {"SGD": dict(solver="sgd", momentum=0.0), "Adam": dict(solver="adam"),
           "SGD+dropout": dict(solver="sgd", momentum=0.0, dropout=0.2),
           "SGD+clip": dict(solver="sgd", momentum=0.0, clip_norm=1.0)}


def data(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    return X, np.argmax(X @ rng.standard_normal((d, k)).astype(np.float32), axis=1)


def places():
    import xpnet

    found = []
    try:
        import torch

        if torch.cuda.is_available():
            found.append(("torch", "cuda"))
    except ImportError:
        pass
    if xpnet.available_backends()["cupy"][0]:
        found.append(("cupy", 0))
    return found


def xpnet_fit(place, dims, batch, steps, epochs, graphs_on, tf32=False, **params):
    """(ms per step: min epoch time after the capture / steps, estimator, device X, y)."""
    import xpnet
    from xpnet.backends import get_backend

    be = get_backend(*place)
    X, y = data(batch * steps, dims[0], dims[-1])
    Xd = be.asarray(X)
    est = xpnet.MLPClassifier(hidden_layer_sizes=dims[1:-1], batch_size=batch, max_iter=epochs,
                              random_state=0, backend=place[0], device=place[1], tol=0.0,
                              n_iter_no_change=10 ** 6, learning_rate_init=1e-3, tf32=tf32,
                              graphs=graphs_on, kernels=_kernels(place), **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(Xd, y)
    times = [h["time"] for h in est.history_][2:]  # epoch 1 warms up, epoch 2 captures
    return 1e3 * min(times) / steps, est, Xd, y


def _kernels(place) -> str:
    """CuPy's fused kernels (the eager rows' best), each backend's own elsewhere."""
    return "fused" if place[0] == "cupy" else "auto"


def profile_epoch(place, dims, batch, steps, graphs_on, **params):
    """launches per step, GPU-busy fraction, epoch seconds for one partial_fit epoch after the
    capture."""
    import xpnet
    from xpnet.backends import get_backend
    from xpnet.bench.launches import profile_launches

    be = get_backend(*place)
    X, y = data(batch * steps, dims[0], dims[-1])
    Xd = be.asarray(X)
    est = xpnet.MLPClassifier(hidden_layer_sizes=dims[1:-1], batch_size=batch, random_state=0,
                              backend=place[0], device=place[1], graphs=graphs_on,
                              kernels=_kernels(place), **params)
    classes = list(range(dims[-1]))
    for _ in range(2):
        est.partial_fit(Xd, y, classes=classes)
    got = profile_launches(lambda: est.partial_fit(Xd, y), be.synchronize)
    return {"launches_per_step": got["launches"] / steps, "graph_launches": got["graphs"],
            "kernels_per_step": got["kernels"] / steps,
            "busy": got["busy_s"] / got["wall_s"], "epoch_s": got["wall_s"]}


def torch_reference(dims, batch, steps, solver, graph, tf32=False, reps=3):
    """The hand-written PyTorch step (nn.Sequential + CrossEntropyLoss + optim), ms per step
    (median of ``reps`` passes over ``steps`` batches), eager or as one CUDA graph per step."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = tf32
    dev = torch.device("cuda")
    X, y = data(batch * steps, dims[0], dims[-1])
    Xd, yd = torch.as_tensor(X, device=dev), torch.as_tensor(y, device=dev)
    layers = []
    for a, b in zip(dims[:-2], dims[1:-1]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers, torch.nn.Linear(dims[-2], dims[-1])).to(dev)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = (torch.optim.SGD(model.parameters(), lr=1e-3) if solver == "SGD"
           else torch.optim.Adam(model.parameters(), lr=1e-3, capturable=graph))
    sx, sy = Xd[:batch].clone(), yd[:batch].clone()

    def step():
        opt.zero_grad(set_to_none=not graph)
        loss_fn(model(sx), sy).backward()
        opt.step()

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(s)
    run = step
    if graph:
        g = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=False)
        with torch.cuda.graph(g):
            step()
        run = g.replay
    times = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for k in range(steps):
            sx.copy_(Xd[k * batch:(k + 1) * batch])
            sy.copy_(yd[k * batch:(k + 1) * batch])
            run()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) / steps)
    torch.backends.cuda.matmul.allow_tf32 = False
    return 1e3 * float(np.median(times))


def sklearn_epoch(n, dims, batch):
    from sklearn.neural_network import MLPClassifier

    X, y = data(n, dims[0], dims[-1])
    est = MLPClassifier(hidden_layer_sizes=dims[1:-1], solver="adam", batch_size=batch,
                        max_iter=1, random_state=0)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    return time.perf_counter() - t0


def attempt(rows, what, fn):
    """Run one measurement; an error becomes a row, never the end of the run."""
    try:
        value = fn()
    except Exception as exc:
        traceback.print_exc()
        value = f"ERROR {type(exc).__name__}: {str(exc)[:120]}"
    rows.append((what, value))
    print(f"{what:<58} {value if isinstance(value, str) else f'{value:.4g}'}", flush=True)
    return value


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.environ.get("OUT", "bench-results"))
    p.add_argument("--quick", action="store_true", help="fewer steps and no 4096 row")
    p.add_argument("--no-sklearn", action="store_true")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    found = places()
    if not found:
        print("no CUDA device usable by torch or CuPy: nothing to measure")
        return 1
    rows: list[tuple[str, object]] = []
    steps = 60 if a.quick else 200
    for place in found:
        tag = place[0] + ("-cuda" if place[0] == "torch" else "")
        for name, params in CONFIGS.items():
            for on in (False, True):
                attempt(rows, f"{tag} {'graphs' if on else 'eager '} {name} ms/step",
                        lambda: xpnet_fit(place, SMALL, 128, steps, 5, on, **params)[0])
        for on in (False, True):
            prof = attempt(rows, f"{tag} {'graphs' if on else 'eager '} SGD profile",
                           lambda: profile_epoch(place, SMALL, 128, steps, on, solver="sgd",
                                                 momentum=0.0))
            if isinstance(prof, dict):
                for k, v in prof.items():
                    rows.append((f"{tag} {'graphs' if on else 'eager '} SGD {k}", v))
    if any(pl[0] == "torch" for pl in found):
        for solver in ("SGD", "Adam"):
            for graph in (False, True):
                attempt(rows, f"pytorch hand-written {'graph' if graph else 'eager'} {solver} "
                        "ms/step", lambda: torch_reference(SMALL, 128, steps, solver, graph))
    big, n_fit = (784, 1024, 1024, 10), 60_000
    for place in found:
        tag = place[0] + ("-cuda" if place[0] == "torch" else "")
        for on in (False, True):
            attempt(rows, f"{tag} {'graphs' if on else 'eager '} whole fit s/epoch",
                    lambda: xpnet_fit(place, big, 256, n_fit // 256, 4, on,
                                      solver="adam")[0] * (n_fit // 256) / 1e3)
        prof = attempt(rows, f"{tag} graphs whole fit profile",
                       lambda: profile_epoch(place, big, 256, n_fit // 256, True,
                                             solver="adam"))
        if isinstance(prof, dict):
            rows.append((f"{tag} graphs whole fit GPU busy", prof["busy"]))
    if not a.no_sklearn:
        attempt(rows, "scikit-learn whole fit s/epoch (CPU)",
                lambda: sklearn_epoch(n_fit, big, 256))
    if not a.quick:
        wide = (784, 4096, 4096, 10)
        for place in found:
            tag = place[0] + ("-cuda" if place[0] == "torch" else "")
            attempt(rows, f"{tag} graphs 4096 TF32 SGD ms/step",
                    lambda: xpnet_fit(place, wide, 4096, 10, 4, True, tf32=True,
                                      solver="sgd", momentum=0.0)[0])
        if any(pl[0] == "torch" for pl in found):
            attempt(rows, "pytorch hand-written graph 4096 TF32 SGD ms/step",
                    lambda: torch_reference(wide, 4096, 10, "SGD", True, tf32=True))
    with open(os.path.join(a.out, "graphs.json"), "w") as f:
        json.dump({"rows": [[w, v] for w, v in rows]}, f, indent=1, default=str)
    table = ["| measurement | value |", "|---|---|"] + [
        f"| {w} | {v if isinstance(v, str) else f'{v:.4g}' if isinstance(v, float) else v} |"
        for w, v in rows if not isinstance(v, dict)]
    with open(os.path.join(a.out, "graphs.md"), "w") as f:
        f.write("\n".join(table) + "\n")
    print("\n".join(table))
    return 1 if any(isinstance(v, str) and v.startswith("ERROR") for _, v in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
