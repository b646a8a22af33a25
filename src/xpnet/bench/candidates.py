"""The candidates, each built inside its own worker process.

Every builder returns a :class:`Run`: ``epoch()`` makes one pass over the same data (one
training step per mini-batch, data already on the device), ``sync()`` waits for the device,
``info()`` says what was trained (the last loss, a sanity check that real work was done).
All candidates start from the same host-drawn parameters, use float32, plain SGD and one
learning rate, and see the same examples in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from xpnet.bench.config import Candidate, Config

__all__ = ["Run", "build", "make_data"]


@dataclass
class Run:
    epoch: Callable[[], Any]
    sync: Callable[[], None] = lambda: None
    info: Callable[[], dict] = field(default=lambda: {})
    device_backend: str = ""  # "cupy" / "torch" when device memory should be read


def make_data(dims: tuple[int, ...], n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X (n, n[0]) float32 ~ N(0, 1) and labels y (n,) in 0..n[L]-1 from a random linear teacher."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, dims[0]), dtype=np.float32)
    teacher = rng.standard_normal((dims[0], dims[-1])).astype(np.float32)
    return X, np.argmax(X @ teacher, axis=1)


def _batches(cfg: Config, X: np.ndarray, y: np.ndarray):
    m = cfg.batch
    return [(X[i:i + m], y[i:i + m]) for i in range(0, cfg.n_batches * m, m)]


def _activations(dims: tuple[int, ...]) -> list[str]:
    return ["relu"] * (len(dims) - 2) + ["softmax"]


def build(cand: Candidate, cfg: Config, lr: float, seed: int = 0) -> Run:
    """The :class:`Run` for one candidate on one configuration."""
    if cand.tf32 and cand.backend == "torch":  # CuPy reads CUPY_TF32=1, set by the runner
        import torch

        torch.backends.cuda.matmul.allow_tf32 = True
    X, y = make_data(cfg.dims, cfg.n_batches * cfg.batch, seed)
    builder = {"step": _xpnet_step, "floor": _floor, "eager": _torch_eager,
               "sklearn": _sklearn, "fit": _xpnet_fit}[cand.kind]
    return builder(cand, cfg, X, y, lr, seed)


# --------------------------------------------------------------------------- xpnet
def _xpnet_backend(cand: Candidate):
    from xpnet.backends import get_backend

    name = "numpy" if cand.backend == "numpy-portable" else cand.backend
    device = "cuda" if cand.gpu and name == "torch" else None
    return get_backend(name, device)


def _xpnet_step(cand, cfg, X, y, lr, seed):
    from xpnet.core.kernels import Kernels
    from xpnet.core.step import gradient_descent_step
    from xpnet.functional import initialize_parameters

    be = _xpnet_backend(cand)
    xp = be.xp
    K = (Kernels() if cand.backend == "numpy-portable"  # the reference kernels
         else be.fused_kernels() if cand.fused else be.kernels)
    ws = K.workspace()
    W, b = initialize_parameters(cfg.dims, rng=seed, dtype="float32", backend=be)
    g = _activations(cfg.dims)
    onehot = np.eye(cfg.dims[-1], dtype=np.float32)
    # examples in columns, as MLPClassifier.fit hands them over: A[0] = X[rows].T, a (n[0], m)
    # view of a C-ordered (m, n[0]) batch, and Y likewise (one-hot)
    data = [(be.asarray(Xb).T, be.asarray(onehot[yb]).T) for Xb, yb in _batches(cfg, X, y)]
    last = [None]

    def epoch():
        for Xb, Yb in data:
            last[0] = gradient_descent_step(Xb, Yb, W, b, g, lr, xp=xp, kernels=K, ws=ws)

    return Run(epoch, be.synchronize, lambda: {"loss": float(last[0])},
               be.name if cand.gpu else "")


def _floor(cand, cfg, X, y, lr, seed):
    """The step's matrix products alone, oriented as PyTorch, scikit-learn and xpnet's NumPy
    fast path compute them (examples in rows of C-ordered (m, n[l]) arrays):
    Z[l]^T = A[l-1]^T W[l]^T (l = 1..L), dW[l] = dZ[l] A[l-1]^T (l = 1..L),
    dA[l-1]^T = dZ[l]^T W[l] (l = 2..L); stand-ins of the right shapes for A[l] and dZ[l]."""
    from xpnet.functional import initialize_parameters

    be = _xpnet_backend(cand)
    W, _ = initialize_parameters(cfg.dims, rng=seed, dtype="float32", backend=be)
    L = len(cfg.dims) - 1
    data = [be.asarray(Xb) for Xb, _ in _batches(cfg, X, y)]
    At = {0: data[0]}  # realistic values, computed once, outside the timing
    for l in range(1, L + 1):
        At[l] = At[l - 1] @ W[l].T

    def epoch():
        for X0 in data:
            prev = X0
            for l in range(1, L + 1):
                prev @ W[l].T
                prev = At[l]
            for l in range(L, 0, -1):
                At[l].T @ (X0 if l == 1 else At[l - 1])
                if l > 1:
                    At[l] @ W[l]

    return Run(epoch, be.synchronize, dict, be.name if cand.gpu else "")


def _xpnet_fit(cand, cfg, X, y, lr, seed):
    """xpnet.MLPClassifier.fit, one epoch per call (shuffling and batching included)."""
    import warnings

    from xpnet.estimators import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=cfg.dims[1:-1], activation="relu", solver="sgd",
                        alpha=0.0, batch_size=cfg.batch, learning_rate="constant",
                        learning_rate_init=lr, momentum=0.0, nesterovs_momentum=False,
                        shuffle=True, random_state=seed, max_iter=1, tol=0.0,
                        warm_start=True, backend=cand.backend, dtype="float32",
                        kernels="fused" if cand.fused else "auto")

    def epoch():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # max_iter=1 warns that it did not converge
            clf.fit(X, y)

    def info():  # also the epoch as the training loop timed it, without fit's set-up
        return {"loss": float(clf.loss_curve_[-1]),
                "epoch_time_s": float(clf.history_[-1]["time"])}

    return Run(epoch, _xpnet_backend(cand).synchronize, info, cand.backend if cand.gpu else "")


# --------------------------------------------------------------------------- peers
def _torch_eager(cand, cfg, X, y, lr, seed):
    """nn.Sequential + autograd + optim.SGD, from the same initial parameters."""
    import torch

    from xpnet.functional import draw_parameters

    dev = torch.device("cuda" if cand.gpu else "cpu")
    W64, b64 = draw_parameters(cfg.dims, "he", seed)
    layers: list[torch.nn.Module] = []
    for l in range(1, len(cfg.dims)):
        lin = torch.nn.Linear(cfg.dims[l - 1], cfg.dims[l])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W64[l].astype(np.float32)))
            lin.bias.copy_(torch.from_numpy(b64[l][:, 0].astype(np.float32)))
        layers += [lin, torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1]).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    data = [(torch.from_numpy(Xb).to(dev), torch.from_numpy(yb).to(dev))
            for Xb, yb in _batches(cfg, X, y)]
    last = [None]

    def epoch():
        for Xb, yb in data:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(Xb), yb)
            loss.backward()
            opt.step()
            last[0] = loss

    def sync():
        if cand.gpu:
            torch.cuda.synchronize()

    return Run(epoch, sync, lambda: {"loss": float(last[0])}, "torch" if cand.gpu else "")


def _sklearn(cand, cfg, X, y, lr, seed):
    """MLPClassifier(solver="sgd").partial_fit over the epoch (no shuffling, no L2, no momentum)."""
    import warnings

    from sklearn.neural_network import MLPClassifier

    n = cfg.n_batches * cfg.batch
    clf = MLPClassifier(hidden_layer_sizes=cfg.dims[1:-1], activation="relu", solver="sgd",
                        alpha=0.0, batch_size=cfg.batch, learning_rate="constant",
                        learning_rate_init=lr, momentum=0.0, nesterovs_momentum=False,
                        shuffle=False, random_state=seed)
    Xn, yn = X[:n], y[:n]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit(Xn[:cfg.batch], yn[:cfg.batch], classes=np.arange(cfg.dims[-1]))
    from xpnet.functional import draw_parameters

    W64, b64 = draw_parameters(cfg.dims, "he", seed)  # the same start as every candidate
    for l in sorted(W64):  # in place: sklearn's optimizer holds these very arrays
        clf.coefs_[l - 1][...] = W64[l].T
        clf.intercepts_[l - 1][...] = b64[l][:, 0]

    def epoch():
        clf.partial_fit(Xn, yn)

    return Run(epoch, lambda: None, lambda: {"loss": float(clf.loss_)})
