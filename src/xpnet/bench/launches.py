"""What a piece of GPU work costs in launches and busy time, seen through CUPTI.

``torch.profiler`` records every kernel of the process through CUPTI (CuPy's too) and every
CUDA runtime / driver call the host makes. :func:`profile_launches` runs ``fn`` under it and
counts, from the Chrome trace:

    launches   host calls that put work on a stream: cudaLaunchKernel / cuLaunchKernel (and
               their Ex forms), cudaGraphLaunch, cudaMemcpyAsync, cudaMemsetAsync
    graphs     of those, graph launches (cudaGraphLaunch / cuGraphLaunch)
    kernels    kernels, copies and memsets that ran on the GPU (inside graphs included)
    busy_s     the sum of their durations;  wall_s: fn's wall time (synchronised)
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any, Callable

__all__ = ["profile_launches"]

_LAUNCH = ("LaunchKernel", "GraphLaunch", "MemcpyAsync", "MemsetAsync", "Memcpy2DAsync")
_GPU = ("kernel", "gpu_memcpy", "gpu_memset")


def profile_launches(fn: Callable[[], Any], sync: Callable[[], None]) -> dict[str, float]:
    """Counts for one call of ``fn`` (``sync`` waits for the device), see the module doc."""
    from torch.profiler import ProfilerActivity, profile

    sync()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        fn()
        sync()
        wall = time.perf_counter() - t0
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f).get("traceEvents", [])
    finally:
        os.unlink(path)
    launches = graphs = kernels = 0
    busy_us = 0.0
    for e in events:
        cat, name = str(e.get("cat", "")).lower(), str(e.get("name", ""))
        if cat in ("cuda_runtime", "cuda_driver") and any(k in name for k in _LAUNCH):
            launches += 1
            graphs += "GraphLaunch" in name
        elif cat in _GPU:
            kernels += 1
            busy_us += float(e.get("dur", 0.0))
    return {"launches": launches, "graphs": graphs, "kernels": kernels,
            "busy_s": busy_us * 1e-6, "wall_s": wall}
