"""Out of memory for real: a training batch larger than the memory left gives a clear error.

tests/test_estimators.py covers a network whose parameters cannot be allocated (2**40 units).
Here the data and parameters fit, but one batch's activations do not: a subprocess caps its own
address space (RLIMIT_AS) a little above what it uses, so NumPy really fails to allocate Z[1]
inside the first training step, and the error must name the batch size and the memory needed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS as on Linux")

N, N_FEATURES, HIDDEN = 5000, 50, 8192  # Z[1], A[1]: 8192 x 5000 float64 = 312.5 MiB each
HEADROOM = 200 * 2 ** 20

CHILD = textwrap.dedent(f"""
    import json, resource, sys, warnings
    import numpy as np
    import xpnet

    rng = np.random.default_rng(0)
    X = rng.standard_normal(({N}, {N_FEATURES}))
    y = rng.integers(0, 3, {N})
    est = xpnet.MLPClassifier(hidden_layer_sizes=({HIDDEN},), batch_size={N}, max_iter=2,
                              dtype="float64", backend="numpy", random_state=0)
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    limit = vm + {HEADROOM}  # room for the data and parameters, not for one batch's Z[1]
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    try:
        est.fit(X, y)
    except MemoryError as exc:
        error = {{"type": type(exc).__name__, "message": str(exc),
                  "device_error": isinstance(exc, xpnet.DeviceMemoryError)}}
    else:
        error = {{"type": None}}
    error["unfitted_after"] = not hasattr(est, "coefs_")  # a failed first fit leaves no model
    # the advice works, in the same process and under the same limit: a smaller batch
    warnings.simplefilter("ignore")  # ConvergenceWarning after one epoch
    est.set_params(batch_size=50, max_iter=1).fit(X[:500], y[:500])
    error["refit_n_iter"] = est.n_iter_
    print(json.dumps(error))
""")


def _bytes(amount: str, unit: str) -> float:
    return float(amount) * 1024 ** ["B", "KiB", "MiB", "GiB", "TiB"].index(unit)


def test_a_batch_too_large_for_the_memory_left_is_a_clear_error():
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["type"] == "DeviceMemoryError", result
    message = result["message"]
    assert message.startswith("out of memory on numpy while training epoch 1: "
                              f"batch_size={N} needs about "), message
    assert "Use a smaller batch_size" in message
    m = re.search(r"needs about ([\d.]+) (B|KiB|MiB|GiB|TiB)", message)
    one_activation = HIDDEN * N * 8
    assert _bytes(*m.groups()) >= one_activation > HEADROOM  # no understatement
    assert "(MemoryError: Unable to allocate 312. MiB" in message  # NumPy's cause stays visible
    assert result["device_error"]
    assert result["unfitted_after"]
    assert result["refit_n_iter"] == 1
