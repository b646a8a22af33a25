"""The training step, built once per fit call: S += m J_B, then one update, every buffer its own.

    S   := value_and_grad(X_B, Y_B)        (xpnet.core.objective: forward, loss, backward, L2)
    g   := clip(g)                          (xpnet.core.transforms)
    theta := update(theta, g, table[k])     (the optimizer's, xpnet.core.optim)
    total += S                              (the epoch's loss accumulator, on the device)

:class:`Step` owns what a step writes: the gradient buffer (the allreduce buffer when data
parallel), the kernels' workspace (every intermediate of the step lives there on NumPy and
torch, reused step after step), and the loss accumulator. Every per-step number comes from
the epoch's :class:`xpnet.training.step_table.StepTable`, so two epochs issue the same calls
(``tests/test_capture_contract.py``): the shape a CUDA graph can capture once and replay.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from xpnet.core.kernels import Kernels
from xpnet.core.params import ParamBuffer
from xpnet.core.step import train_step
from xpnet.training.distributed import EXTRA_SLOTS
from xpnet.training.network import Network
from xpnet.training.progress import Settings
from xpnet.training.step_table import StepTable

__all__ = ["Step", "step_kernels"]


def step_kernels(backend: Any, choice: str) -> Any:
    """The kernels a fit's step runs for ``kernels=choice``: "auto" the backend's own,
    "portable" the reference kernels, "fused" the backend's fused ones (CuPy's)."""
    if choice == "auto":
        return backend.kernels
    if choice == "portable":
        return Kernels()
    fused = backend.fused_kernels()
    if fused is None:
        raise ValueError(f"kernels='fused': {backend.name} has no fused kernels apart from its "
                         f"own (only cupy's fused CUDA kernels are chosen this way); use "
                         f"kernels='auto'")
    return fused


class Step:
    """One step of a fit on ``net`` with ``optimizer`` (see the module doc).

    ``plan``: data parallel (:class:`xpnet.training.distributed.Plan`): the gradients live in
    its one allreduce buffer (dW, db, then S and the stop flag) and ``plan.reduce`` sums them.
    ``kernels``: the step's kernels (default the network's; a CUDA-graph capture may need
    others, :mod:`xpnet.training.graphs`).
    """

    def __init__(self, net: Network, optimizer: Any, settings: Settings, plan: Any = None,
                 kernels: Any = None) -> None:
        self.net, self.optimizer, self.settings, self.plan = net, optimizer, settings, plan
        be = net.backend
        self.kernels = net.kernels if kernels is None else kernels  # a capture's, with graphs
        self.xp = be.xp
        self.keep = None if not settings.dropout else [1.0 - r for r in settings.dropout]
        self.ws = self.kernels.workspace()
        with be.device_context():
            if plan is None:
                self.grads = net.theta.zeros_like(xp=be.xp)
            else:
                self.grads = ParamBuffer.zeros(net.theta.shapes, xp=be.xp, dtype=net.W[1].dtype,
                                               device=be.device, flat=True, extra=EXTRA_SLOTS)
            self.total = be.xp.zeros((), dtype=net.W[1].dtype, device=be.device)

    def start_epoch(self) -> None:
        """total := 0 (one operation per epoch, into the same buffer)."""
        self.total[...] = 0.0

    def __call__(self, Xb: Any, Yb: Any, k: int, table: StepTable, weights: Any = None,
                 global_m: int | None = None) -> Any:
        """Step k of the epoch on the batch Xb (n[0], m), Yb (n[L], m); returns S = m J_B
        (the caller adds it to :attr:`total`, or checks it first when replaying)."""
        s, net = self.settings, self.net
        keys = partial(table.keys, k) if self.keep is not None and table.has_keys else None
        return train_step(Xb, Yb, net.theta, self.grads, net.g, self.optimizer, xp=self.xp,
                          kernels=self.kernels, scalars=table.optimizer_scalars(k), ws=self.ws,
                          l2=s.alpha, clip_norm=s.clip_norm,
                          keep=self.keep if keys is not None else None, keys=keys,
                          loss_scale=s.loss_scale, weights=weights, l2_scale=table.l2(k),
                          reduce=None if self.plan is None else self.plan.reduce,
                          global_m=global_m)
