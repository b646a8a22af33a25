"""benchmarks/count_ops.py: the dispatcher-level op counter (views free, kernels counted)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks"))
import count_ops  # noqa: E402


def test_views_are_free_and_kernels_count():
    x = torch.arange(12.0).reshape(3, 4)
    views = count_ops.count_ops(lambda: (x.t(), x[1:], x.unsqueeze(0), x.reshape(12)[:2]))
    assert views.total == 0 and sum(views.free.values()) >= 4
    one = count_ops.count_ops(lambda: x + 1)
    assert one.total == 1 and dict(one.ops) == {"add.Tensor": 1}
    copy = count_ops.count_ops(lambda: x.t().reshape(12))  # not viewable: clone + _unsafe_view
    assert dict(copy.ops) == {"clone.default": 1}
    drop = count_ops.count_ops(lambda: count_ops.CudaDropout(0.5)(x))  # CUDA's fused path
    assert dict(drop.ops) == {"native_dropout.default": 1}


def test_host_device_copies_are_counted():
    as_tensor = torch.as_tensor
    host, t = np.zeros(3), torch.ones(2)
    assert dict(count_ops.count_ops(lambda: torch.as_tensor(host)).ops) == {"<h2d>": 1}
    assert count_ops.count_ops(lambda: torch.as_tensor(t)).total == 0
    assert dict(count_ops.count_ops(lambda: t.numpy()).ops) == {"<d2h: .numpy()>": 1}
    assert torch.as_tensor is as_tensor  # the hooks are removed afterwards


def _tiny(n):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 20), np.float32), np.arange(n) % 3


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_eager_counts_a_tiny_net(solver):
    kw = dict(hidden=(16,), epochs=1, batch_size=4, solver=solver)
    two, three = (count_ops.count_eager_ops(*_tiny(4 * k), **kw) for k in (2, 3))
    for c in (two, three):
        assert c.total > 0 and all(isinstance(k, int) and k > 0 for k in c.ops.values())
        assert c.ops["_local_scalar_dense.default"] == 1  # the epoch's one loss read
        assert c.free["t.default"] > 0                    # Linear's weight.t(): seen, free
    step = three.ops - two.ops                            # one steady-state step
    assert step["addmm.default"] == 2 and step["relu.default"] == 1
    assert not any(name.startswith(("t.", "view.", "slice.", "detach.")) for name in step)
    if solver == "adam":  # the step counter torch keeps on the host: shown, not counted
        assert (three.host - two.host)["_local_scalar_dense.default"] == 8  # 4 params x 2
    else:
        assert step["_foreach_add_.List"] == 1 and not three.host
