"""Device operations per training step: xpnet's torch backend vs hand-written PyTorch eager.

How. A ``TorchDispatchMode`` sees every ATen call that reaches PyTorch's dispatcher: below
autograd, so the backward's kernels are seen, and after composite ops (``linear``,
``reshape``, ``cross_entropy``, ...) have been decomposed into the kernels that really run.
Everything runs on the CPU (device="cpu"), dispatching what a CUDA run dispatches (eager's
dropout is made to take CUDA's fused path, see CudaDropout). Each call goes to one bin:

* free -- no kernel: views and metadata (``func.is_view``, i.e. the schema returns an alias
  of an input: view, t, transpose, permute, expand, slice, select, as_strided, unsqueeze,
  squeeze, alias, detach, lift_fresh, ...; in-place views, ``Tag.inplace_view``: t_, ...),
  ``_unsafe_view`` (reshape's no-copy half; reshape itself never arrives: it becomes
  ``view``, or ``clone`` + ``_unsafe_view``), bare allocations (``empty*``, ``new_empty*``,
  ``resize_``) and ``profiler::`` record_function markers (torch.optim's step).
* host -- PyTorch eager only: ops inside ``optimizer.step()`` whose tensors are all 0-d,
  i.e. Adam's step counter (``_foreach_add_`` on the steps, one ``.item()`` per parameter
  and bias correction), which torch.optim keeps on the CPU even when the parameters are on
  a GPU (capturable=False, fused=False): no launch there. Shown, not counted.
* ops -- everything else, the number reported: on a GPU about one kernel launch each (a
  ``_foreach_*`` op: one multi-tensor launch per chunk of tensors; ``_local_scalar_dense``
  = ``.item()``: a device->host copy and a sync). Plus host<->device copies, which on CPU
  tensors never reach the dispatcher: counted at the Python API as ``<h2d>`` (torch.as_tensor
  / torch.asarray of host data: NumPy arrays, Python scalars) and ``<d2h: .numpy()>``.

Per step. ``fit`` is counted whole (set-up, every epoch's shuffle and loss read) for 1 and 2
epochs of 64 batches of 128 (n = 8192). "ops/step" = (ops(2 epochs) - ops(1 epoch)) / 64:
one epoch's steps plus its per-epoch work; "fit ops / steps" = ops(2 epochs) / 128; "ratio"
= xpnet ops/step / eager ops/step. ``--histogram`` gives exactly one steady-state step: the
ops of a 1-epoch fit on 3 batches minus those on 2 batches (lazy first-step set-up cancels).

    python benchmarks/count_ops.py [--cases sgd,adam,...] [--histogram] [--markdown]
"""
from __future__ import annotations

import argparse
import contextlib
import warnings
from collections import Counter

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import xpnet

_FREE = {"_unsafe_view", "empty", "empty_like", "empty_strided", "new_empty",
         "new_empty_strided", "resize_"}


def is_free(func) -> bool:
    """True for views / metadata / bare allocations: ops that launch no kernel."""
    return (func.namespace == "profiler" or func.is_view or torch.Tag.inplace_view in func.tags
            or func.overloadpacket.__name__ in _FREE)


class OpCounter(TorchDispatchMode):
    """Counts ATen calls by name ("addmm.default") into ``ops``, ``free`` and ``host``."""

    def __init__(self):
        super().__init__()
        self.ops, self.free, self.host = Counter(), Counter(), Counter()
        self.in_optimizer = False  # set by the eager loop around opt.step()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = str(func).removeprefix("aten.")
        if is_free(func):
            self.free[name] += 1
        elif self.in_optimizer and all(t.dim() == 0 for t in tree_leaves((args, kwargs, out))
                                       if isinstance(t, torch.Tensor)):
            self.host[name] += 1
        else:
            self.ops[name] += 1
        return out

    @property
    def total(self) -> int:
        return sum(self.ops.values())


@contextlib.contextmanager
def transfers(counter: OpCounter):
    """Count the host<->device copies the dispatcher does not show on CPU tensors: creating a
    tensor from host data (torch.as_tensor / asarray, outside the dispatcher) and reading one
    (``.cpu()`` is a no-op on CPU, ``.numpy()`` is not an op). On a GPU each is a copy."""
    as_tensor, asarray, numpy = torch.as_tensor, torch.asarray, torch.Tensor.numpy

    def h2d(f):
        def wrapped(data, *a, **k):
            if not isinstance(data, torch.Tensor):
                counter.ops["<h2d>"] += 1
            return f(data, *a, **k)
        return wrapped

    def d2h(self, *a, **k):
        counter.ops["<d2h: .numpy()>"] += 1
        return numpy(self, *a, **k)

    torch.as_tensor, torch.asarray, torch.Tensor.numpy = h2d(as_tensor), h2d(asarray), d2h
    try:
        yield counter
    finally:
        torch.as_tensor, torch.asarray, torch.Tensor.numpy = as_tensor, asarray, numpy


def count_ops(fn, *args, **kwargs) -> OpCounter:
    """The ops ``fn(*args, **kwargs)`` dispatches (``.total``, ``.ops``, ``.free``, ``.host``)."""
    counter = OpCounter()
    with counter, transfers(counter), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
        fn(*args, **kwargs)
    return counter


def count_fit_ops(estimator_factory, X, y, **fit_kw) -> OpCounter:
    """The ops of the whole ``estimator_factory().fit(X, y)`` (construction not counted)."""
    return count_ops(estimator_factory().fit, X, y, **fit_kw)


class CudaDropout(torch.nn.Dropout):
    """nn.Dropout as CUDA runs it: one fused native_dropout (+ native_dropout_backward). On
    CPU nn.Dropout decomposes into bernoulli_, div_, mul (+ mul): 2 more ops per layer."""

    def forward(self, x):
        return torch.native_dropout(x, self.p, self.training)[0]


def eager_fit(X, y, *, hidden=(256, 256), epochs=2, batch_size=128, solver="sgd", lr=1e-3,
              alpha=0.0, momentum=0.0, nesterov=False, dropout=0.0, seed=0,
              counter: OpCounter | None = None) -> list[float]:
    """The idiomatic PyTorch loop xpnet is compared with; returns the epoch losses. Per epoch:
    one randperm + index_select of X and y; per step: a contiguous batch slice (a view),
    zero_grad(set_to_none=True), forward, loss, backward, opt.step() and the loss summed on
    the device (``total += loss.detach() * m``), read once per epoch.

    xpnet's L2 adds (alpha / m) W to dW (scikit-learn), so torch's weight_decay is alpha / m
    (exact here: every batch has m = batch_size). One parameter group, as users write it, so
    the biases are decayed too (xpnet does not decay them): sparing them would take a second
    group, and torch.optim runs its _foreach_* ops once per group (twice the launches).
    """
    counter = OpCounter() if counter is None else counter  # a counter not entered: no-op
    torch.manual_seed(seed)
    dims = [X.shape[1], *hidden, int(y.max()) + 1]
    layers: list[torch.nn.Module] = []
    for i in range(len(dims) - 1):
        layers.append(torch.nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers += [torch.nn.ReLU()] + ([CudaDropout(dropout)] if dropout else [])
    model = torch.nn.Sequential(*layers)
    wd = alpha / batch_size
    if solver == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd, foreach=True)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, nesterov=nesterov,
                              weight_decay=wd, foreach=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    gen = torch.Generator().manual_seed(seed)
    n, losses = Xt.shape[0], []
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        Xe, ye = Xt.index_select(0, perm), yt.index_select(0, perm)  # once per epoch
        total = torch.zeros(())
        for start in range(0, n, batch_size):
            xb, yb = Xe[start:start + batch_size], ye[start:start + batch_size]  # views
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            counter.in_optimizer = True  # see OpCounter: Adam's 0-d step counter is host-side
            opt.step()
            counter.in_optimizer = False
            total += loss.detach() * xb.shape[0]
        losses.append(total.item() / n)  # the epoch's one read
    return losses


def count_eager_ops(X, y, **kw) -> OpCounter:
    """The ops of the whole ``eager_fit(X, y, **kw)`` (model and optimizer set-up included)."""
    counter = OpCounter()
    with counter, transfers(counter):
        eager_fit(X, y, counter=counter, **kw)
    return counter


# --------------------------------------------------------------------------- the cases
CASES = {  # name: (solver, alpha, momentum, nesterov, dropout)
    "sgd": ("sgd", 0.0, 0.0, False, 0.0),
    "sgd-nesterov": ("sgd", 0.0, 0.9, True, 0.0),
    "adam": ("adam", 0.0, 0.0, False, 0.0),
    "sgd-l2": ("sgd", 1e-4, 0.0, False, 0.0),
    "sgd-nesterov-l2": ("sgd", 1e-4, 0.9, True, 0.0),
    "adam-l2": ("adam", 1e-4, 0.0, False, 0.0),
    "sgd-dropout": ("sgd", 0.0, 0.0, False, 0.2),
    "adam-dropout": ("adam", 0.0, 0.0, False, 0.2),
}
HIDDEN, BATCH, LR = (256, 256), 128, 1e-3


def xpnet_counter(case: str, X, y, epochs: int) -> OpCounter:
    solver, alpha, momentum, nesterov, dropout = CASES[case]
    return count_fit_ops(lambda: xpnet.MLPClassifier(
        hidden_layer_sizes=HIDDEN, backend="torch", device="cpu", dtype="float32",
        batch_size=BATCH, max_iter=epochs, shuffle=True, random_state=0, tol=0.0,
        n_iter_no_change=10**6, solver=solver, alpha=alpha, momentum=momentum,
        nesterovs_momentum=nesterov, dropout=dropout, learning_rate_init=LR), X, y)


def eager_counter(case: str, X, y, epochs: int) -> OpCounter:
    solver, alpha, momentum, nesterov, dropout = CASES[case]
    return count_eager_ops(X, y, hidden=HIDDEN, epochs=epochs, batch_size=BATCH, solver=solver,
                           lr=LR, alpha=alpha, momentum=momentum, nesterov=nesterov,
                           dropout=dropout)


def data(n_batches: int, seed: int = 0):
    """Synthetic X (n, 784) float32 ~ N(0, 1) and y in 0..9 (every class present)."""
    n = BATCH * n_batches
    return np.random.default_rng(seed).standard_normal((n, 784), np.float32), np.arange(n) % 10


def per_step(counter_fn, case: str, n_batches: int = 64) -> dict[str, float]:
    X, y = data(n_batches)
    one, two = counter_fn(case, X, y, 1).total, counter_fn(case, X, y, 2).total
    return {"fit1": one, "fit2": two, "fit": two / 2 / n_batches, "step": (two - one) / n_batches}


def step_histogram(counter_fn, case: str) -> tuple[Counter, Counter]:
    """(device ops, host ops) of one steady-state step: 3-batch epoch minus 2-batch epoch."""
    big, small = counter_fn(case, *data(3), 1), counter_fn(case, *data(2), 1)
    return big.ops - small.ops, big.host - small.host


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES), help="comma list of: " + ",".join(CASES))
    ap.add_argument("--histogram", action="store_true", help="ops of one steady-state step")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    cases = [c.strip() for c in a.cases.split(",") if c.strip()]
    if unknown := [c for c in cases if c not in CASES]:
        ap.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    if a.histogram:
        for case in cases:
            for label, fn in (("xpnet", xpnet_counter), ("torch-eager", eager_counter)):
                ops, host = step_histogram(fn, case)
                print(f"\n## {label} {case}: {sum(ops.values())} ops in one step")
                for name, k in sorted(ops.items(), key=lambda kv: (-kv[1], kv[0])):
                    print(f"  {name}: {k}")
                if host:
                    print("  host-side (not counted): "
                          + ", ".join(f"{n}: {k}" for n, k in sorted(host.items())))
        return
    rows = [(c, per_step(xpnet_counter, c), per_step(eager_counter, c)) for c in cases]
    if a.markdown:
        print("| case | xpnet ops/step | PyTorch eager ops/step | ratio "
              "| xpnet fit ops / steps | eager fit ops / steps |\n| --- |" + " ---: |" * 5)
        for c, x, e in rows:
            print(f"| {c} | {x['step']:.2f} | {e['step']:.2f} | {x['step'] / e['step']:.2f} "
                  f"| {x['fit']:.2f} | {e['fit']:.2f} |")
        return
    for c, x, e in rows:
        for label, r in (("xpnet", x), ("torch-eager", e)):
            print(f"{c:16s} {label:12s} fit(1 epoch)={r['fit1']:6d}  fit(2 epochs)={r['fit2']:6d}"
                  f"  fit ops/steps={r['fit']:7.2f}  ops/step={r['step']:7.2f}")


if __name__ == "__main__":
    main()
