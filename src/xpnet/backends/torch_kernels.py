"""PyTorch's kernels: the portable equations through torch's own fused operations, written
into buffers reused step after step.

Each method issues as few device operations as PyTorch itself would for the same work (on a
GPU each is a kernel launch, and a small network's step is bound by launches): the bias in
the matrix product (``addmm``), ``log_softmax`` for the cost and its own backward for dZ[L],
the activation derivatives as one operation each (``threshold_backward``, ``tanh_backward``),
gradients written by ``mm``/``sum`` straight into the flat gradient buffer, and (registered as
the optimizers' fast paths, :mod:`xpnet.core.optim`) the updates as one to seven whole-buffer
operations (``add_``, ``lerp_``, ``addcmul_``, ``addcdiv_``).

Given a workspace (:meth:`TorchKernels.workspace`, held by the training step for a fit), every
intermediate of the step — Z[l], A[l], dZ[l], dA[l], the log-probabilities, the permuted
epoch data and the update's scratch — goes into a tensor of that workspace with ``out=``: no
allocation per step, the same memory every step (what a captured CUDA graph replays). Without
one, the same operations allocate, as the functional API expects. The algebra is the portable
kernels'; only rounding may differ (``tests/test_kernels.py``: 1e-12 in float64, 1e-5 in
float32).
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

import torch

from xpnet.core.kernels import Kernels
from xpnet.core.losses import log_loss_bounds
from xpnet.core.optim.base import fast_path

__all__ = ["TorchKernels", "TorchWorkspace", "torch_adam", "torch_momentum", "torch_sgd"]

_aten = torch.ops.aten


class TorchWorkspace(dict):
    """Tensors reused from step to step, one per (role, shape, dtype, device)."""

    def out(self, key: Any, shape: tuple[int, ...], like: Any) -> Any:
        """The buffer ``key`` of ``shape``, with ``like``'s dtype and device."""
        k = (key, tuple(int(s) for s in shape), like.dtype, like.device)
        buf = self.get(k)
        if buf is None:
            buf = self[k] = torch.empty(k[1], dtype=like.dtype, device=like.device)
        return buf


def _buf(ws: Any, key: Any, shape: tuple[int, ...], like: Any) -> Any:
    """``ws``'s buffer, or None (torch then allocates, as without ``out=``)."""
    return None if ws is None else ws.out(key, shape, like)


class TorchKernels(Kernels):
    """The portable kernels with torch's fused operations and ``out=`` buffers."""

    def __init__(self) -> None:
        self._scratch = threading.local()

    # ------------------------------------------------------------------ bookkeeping
    def workspace(self) -> TorchWorkspace:
        return TorchWorkspace()

    def scratch(self, key: str, like: Any) -> Any:
        """A scratch tensor of ``like``'s shape, dtype and device, kept per thread (the
        optimizers' and clipping's temporaries, shared by the fits of a thread)."""
        ws = getattr(self._scratch, "ws", None)
        if ws is None:
            ws = self._scratch.ws = TorchWorkspace()
        return ws.out(key, like.shape, like)

    def take_rows(self, X: Any, idx: Any, *, xp: Any, ws: Any, role: str) -> Any:
        return torch.index_select(X, 0, idx,
                                  out=_buf(ws, ("rows", role), (idx.shape[0], X.shape[1]), X))

    # ------------------------------------------------------------------ forward
    def linear(self, W: Any, A_prev: Any, b: Any, *, xp: Any, ws: Any, l: int) -> Any:
        return torch.addmm(b, W, A_prev, out=_buf(ws, ("Z", l), (W.shape[0], A_prev.shape[1]),
                                                  W))

    def linear_activation(self, W: Any, A_prev: Any, b: Any, g: str, *, xp: Any, ws: Any,
                          l: int) -> tuple[Any, Any]:
        Z = self.linear(W, A_prev, b, xp=xp, ws=ws, l=l)
        out = _buf(ws, ("A", l), Z.shape, Z)
        if g == "relu":  # relu is clamp_min(Z, 0) in ATen
            return Z, torch.clamp_min(Z, 0, out=out)
        if g == "tanh":
            return Z, torch.tanh(Z, out=out)
        if g == "softmax":
            A = torch.softmax(Z, dim=0) if out is None else _aten._softmax.out(Z, 0, False,
                                                                              out=out)
            return Z, A
        if g == "identity":
            return Z, Z
        return Z, super().linear_activation(W, A_prev, b, g, xp=xp, ws=ws, l=l)[1]

    def apply_mask(self, G: Any, D: Any, *, xp: Any, ws: Any, l: int) -> Any:
        return torch.mul(G, D, out=_buf(ws, ("masked", l), G.shape, G))

    def mask_gradient(self, dA: Any, D: Any, *, xp: Any, ws: Any, l: int) -> Any:
        return dA.mul_(D)  # dA is this step's (back_propagate's output)

    # ------------------------------------------------------------------ output layer
    def output_loss_delta(self, ZL: Any, Y: Any, g: str, *, xp: Any, ws: Any
                          ) -> tuple[Any, Any]:
        if g != "softmax":
            return super().output_loss_delta(ZL, Y, g, xp=xp, ws=ws)
        # S = -sum Y clip(log softmax(Z)) (p clipped to [eps, 1 - eps], scikit-learn's);
        # dZ[L] = (softmax(Z) - Y) / m, as log_softmax's own backward of the cost:
        # G - softmax(Z) sum_k G, G = -Y / m (= (P - Y) / m when each column of Y sums to 1,
        # which is where dZ[L] = A[L] - Y holds). S = m (G . clip(log P)): in the workspace,
        # G and the clipped log P are contiguous alike, so the sum is one dot product
        return self._softmax_loss_delta(ZL, Y, -1.0 / ZL.shape[1], xp=xp, ws=ws)

    def weighted_loss_delta(self, ZL: Any, Y: Any, g: str, s: Any, *, xp: Any, ws: Any
                            ) -> tuple[Any, Any]:
        if g != "softmax":
            return super().weighted_loss_delta(ZL, Y, g, s, xp=xp, ws=ws)
        # S = m sum_i s_i L(i), L(i) = -sum_k Y clip(log softmax(Z));  dZ[L] = (softmax(Z) - Y) s
        # as log_softmax's backward of G = -Y s (each column of Y sums to 1)
        return self._softmax_loss_delta(ZL, Y, s, xp=xp, ws=ws, negate=True)

    def _softmax_loss_delta(self, ZL: Any, Y: Any, c: Any, *, xp: Any, ws: Any,
                            negate: bool = False) -> tuple[Any, Any]:
        """(m G . clip(log softmax(Z)), log_softmax's backward of G), G = Y c (negated)."""
        shape, m = ZL.shape, ZL.shape[1]
        lo, hi = log_loss_bounds(ZL.dtype, xp=xp)
        if ws is None:
            logP = torch.log_softmax(ZL, dim=0)
            G = torch.mul(Y, c)
            if negate:
                G.neg_()
            S = torch.sum(G * logP.clamp(-hi, -lo)).mul_(m)
            return S, _aten._log_softmax_backward_data(G, logP, 0, ZL.dtype)
        logP = _aten._log_softmax.out(ZL, 0, False, out=ws.out("logP", shape, ZL))
        G = torch.mul(Y, c, out=ws.out("G", shape, ZL))
        if negate:
            G.neg_()
        clipped = torch.clamp(logP, -hi, -lo, out=ws.out("clipped", shape, ZL))
        S = torch.dot(G.view(-1), clipped.view(-1)).mul_(m)
        dZ = _aten._log_softmax_backward_data.out(G, logP, 0, ZL.dtype,
                                                  out=ws.out("dZL", shape, ZL))
        return S, dZ

    # ------------------------------------------------------------------ backward
    def weight_grads(self, dZ: Any, A_prev: Any, *, xp: Any, ws: Any, l: int,
                     out: tuple[Any, Any] = (None, None)) -> tuple[Any, Any]:
        dW_out, db_out = out  # torch's out=None allocates, as without it
        return (torch.mm(dZ, A_prev.T, out=dW_out),
                torch.sum(dZ, dim=1, keepdim=True, out=db_out))

    def back_propagate(self, W: Any, dZ: Any, *, xp: Any, ws: Any, l: int) -> Any:
        return torch.mm(W.T, dZ, out=_buf(ws, ("dA", l - 1), (W.shape[1], dZ.shape[1]), dZ))

    def activation_backward(self, dA: Any, Z: Any, A: Any, g: str, *, xp: Any, ws: Any,
                            l: int) -> Any:
        if g == "identity":
            return dA
        out = _buf(ws, ("dZ", l), dA.shape, dA)
        if g == "relu":  # A = relu(Z) > 0 exactly where Z > 0
            return (_aten.threshold_backward(dA, A, 0) if out is None
                    else _aten.threshold_backward.grad_input(dA, A, 0, grad_input=out))
        if g == "tanh":
            return (_aten.tanh_backward(dA, A) if out is None
                    else _aten.tanh_backward.grad_input(dA, A, grad_input=out))
        if g == "sigmoid":
            return (_aten.sigmoid_backward(dA, A) if out is None
                    else _aten.sigmoid_backward.grad_input(dA, A, grad_input=out))
        return super().activation_backward(dA, Z, A, g, xp=xp, ws=ws, l=l)

    # ------------------------------------------------------------------ whole buffers
    def sum_of_squares(self, arrays: Sequence[Any], *, xp: Any) -> Any:
        if len(arrays) == 1 and arrays[0].ndim == 1:
            return torch.dot(arrays[0], arrays[0])
        return super().sum_of_squares(arrays, xp=xp)

    def accumulate(self, total: Any, x: Any, scale: Any, *, xp: Any) -> Any:
        if isinstance(scale, torch.Tensor):  # a step-table scalar on the device
            return x * scale if total is None else torch.addcmul(total, x, scale)
        if total is None:
            return x if scale == 1.0 else x * scale
        return torch.add(total, x, alpha=scale)

    def clip_by_global_norm(self, grads: Sequence[Any], max_norm: float, *, xp: Any) -> Any:
        # the portable algebra (||g|| = c ||g / c||, c = max|g|) in torch operations with
        # Python constants only: no scalar becomes a host-made tensor (an upload per step)
        c = torch.amax(torch.stack([torch.amax(torch.abs(G, out=self.scratch("clip", G)))
                                    for G in grads]))
        c = torch.where(c > 0, c, 1.0)
        total = None
        for G in grads:
            H = torch.div(G, c, out=self.scratch("clip", G))
            s = torch.dot(H, H) if H.ndim == 1 else torch.sum(H * H)
            total = s if total is None else total + s
        norm = torch.sqrt(total).mul_(c)
        scale = torch.add(norm, 1e-6).reciprocal_().mul_(max_norm).clamp_(max=1.0)
        for G in grads:
            G.mul_(scale)
        return norm

    def axpy(self, ys: Sequence[Any], xs: Sequence[Any], a: Any, *, xp: Any) -> None:
        for y, x in zip(ys, xs):
            if isinstance(a, torch.Tensor):
                y.addcmul_(x, a)
            else:
                y.add_(x, alpha=a)


# ---------------------------------------------------------------------- optimizer fast paths
# lr / lr_t: a Python float (the functional API) or a 0-d tensor (the training loop's step
# table): one whole-buffer operation per term either way (addcmul_ with a 0-d tensor).
@fast_path("sgd", TorchKernels)
def torch_sgd(params: Sequence[Any], grads: Sequence[Any], lr: Any, *, xp: Any,
              kernels: Any = None) -> None:
    """p := p - lr g."""
    for p, g in zip(params, grads):
        if isinstance(lr, torch.Tensor):
            p.addcmul_(g, lr, value=-1)
        else:
            p.add_(g, alpha=-lr)


@fast_path("momentum", TorchKernels)
def torch_momentum(params: Sequence[Any], grads: Sequence[Any], velocities: Sequence[Any],
                   lr: Any, mu: float, nesterov: bool, *, xp: Any, kernels: Any = None
                   ) -> None:
    """v := mu v - lr g;  p := p + v  (Nesterov: p := p + mu v - lr g)."""
    tensor = isinstance(lr, torch.Tensor)
    for p, g, v in zip(params, grads, velocities):
        v.mul_(mu)
        v.addcmul_(g, lr, value=-1) if tensor else v.sub_(g, alpha=lr)   # v := mu v - lr g
        if nesterov:
            p.add_(v, alpha=mu)
            p.addcmul_(g, lr, value=-1) if tensor else p.sub_(g, alpha=lr)  # p + mu v - lr g
        else:
            p.add_(v)


@fast_path("adam", TorchKernels)
def torch_adam(params: Sequence[Any], grads: Sequence[Any], ms: Sequence[Any],
               vs: Sequence[Any], lr_t: Any, beta_1: float, beta_2: float, epsilon: float, *,
               xp: Any, kernels: Any = None) -> None:
    """m := b1 m + (1-b1) g;  v := b2 v + (1-b2) g^2;  p := p - lr_t m / (sqrt(v) + eps)."""
    scratch = kernels.scratch if isinstance(kernels, TorchKernels) else None
    for p, g, m, v in zip(params, grads, ms, vs):
        m.lerp_(g, 1.0 - beta_1)                           # m := b1 m + (1-b1) g
        v.mul_(beta_2).addcmul_(g, g, value=1.0 - beta_2)  # v := b2 v + (1-b2) g^2
        d = torch.sqrt(v, out=None if scratch is None else scratch("adam_d", v)).add_(epsilon)
        if isinstance(lr_t, torch.Tensor):                 # (lr_t m) / d, scikit-learn's order
            u = torch.mul(m, lr_t, out=None if scratch is None else scratch("adam_u", m))
            p.addcdiv_(u, d, value=-1)
        else:
            p.addcdiv_(m, d, value=-lr_t)                  # p := p - lr_t m / (sqrt(v) + eps)
