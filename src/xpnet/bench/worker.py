"""One candidate in its own process: ``python -m xpnet.bench.worker SPEC_JSON OUT_JSON``.

Builds the candidate, warms up, times ``repeats`` epochs (device synchronised before the clock
starts and before it stops), reads memory, records threads, and writes one JSON object.
``python -m xpnet.bench.worker --probe OUT_JSON`` describes the machine instead.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import sys
import time
import traceback
from typing import Any

__all__ = ["measure", "probe", "threads"]


def threads() -> dict[str, Any]:
    """Thread pools in this process (threadpoolctl), and PyTorch's intra-op threads if loaded."""
    out: dict[str, Any] = {}
    try:
        from threadpoolctl import threadpool_info

        out["pools"] = sorted({f"{p['internal_api']}={p['num_threads']}"
                               for p in threadpool_info()})
    except ImportError:
        out["pools"] = ["threadpoolctl not installed"]
    if "torch" in sys.modules:
        import torch

        out["torch"] = torch.get_num_threads()
    return out


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Time one candidate on one configuration as described by ``spec`` (see runner)."""
    from xpnet.bench.candidates import build
    from xpnet.bench.config import Candidate, Config
    from xpnet.bench.memory import CpuMeter, device_bytes, rss_bytes, rss_peak_bytes

    cand = Candidate(**spec["candidate"])
    cfg = Config(**{**spec["config"], "dims": tuple(spec["config"]["dims"])})
    run = build(cand, cfg, spec["lr"], spec.get("seed", 0))
    for _ in range(spec["warmup"]):
        run.epoch()
    run.sync()
    # Repeats during which other processes took more than `quiet` of the CPU are timed again
    # (at most `max_tries` epochs in all): a shared machine's neighbours are not our noise.
    quiet, max_tries = spec.get("quiet", 0.1), spec.get("max_tries", 4 * spec["repeats"])
    times, rss, dev, busy, discarded = [], [], [], [], []
    while len(times) < spec["repeats"] and len(times) + len(discarded) < max_tries:
        gc.collect()
        run.sync()
        meter = CpuMeter()
        t0 = time.perf_counter()
        run.epoch()
        run.sync()
        t = time.perf_counter() - t0
        others = meter.others()
        rss.append(rss_bytes())
        if run.device_backend:
            dev.append(device_bytes(run.device_backend)["used"])
        if others is not None and others > quiet:
            discarded.append(t)
            continue
        times.append(t)
        busy.append(others)
    quiet_ok = len(times) >= spec["repeats"]
    if not quiet_ok:  # never quiet enough: keep everything, and say so
        times, busy = times + discarded, busy + [None] * len(discarded)
    n = cfg.n_batches * cfg.batch
    out = {"candidate": cand.name, "config": cfg.name, "samples": n, "times_s": times,
           "samples_per_s": [n / t for t in times], "rss_bytes_per_epoch": rss,
           "others_cpu_share": busy,
           "discarded_busy_epochs": len(discarded), "quiet_limit": quiet, "quiet_ok": quiet_ok,
           "peak_rss_bytes": rss_peak_bytes(), "threads": threads(), **run.info()}
    if run.device_backend:
        out["device_bytes"] = device_bytes(run.device_backend)
        out["device_used_bytes_per_epoch"] = dev
    return out


def probe() -> dict[str, Any]:
    """The machine: CPU, cores, Python and library versions, usable backends, GPU names."""
    import numpy as np

    from xpnet import __version__
    from xpnet.backends import available_backends

    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpu": _cpu_model(), "cpus": os.cpu_count(),
                            "xpnet": __version__, "numpy": np.__version__}
    for mod in ("torch", "sklearn", "cupy", "array_api_compat", "array_api_strict"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:
            info[mod] = None
    import xpnet

    info["has_estimator"] = hasattr(xpnet, "MLPClassifier")
    info["backends"] = {k: {"usable": ok, "reason": why}
                        for k, (ok, why) in available_backends().items()}
    info["torch_cuda"] = False
    if info["torch"]:
        import torch

        info["torch_cuda"] = bool(torch.cuda.is_available())
        if info["torch_cuda"]:
            info["gpu"] = torch.cuda.get_device_name(0)
            info["torch_cuda_version"] = torch.version.cuda
    if info["backends"]["cupy"]["usable"]:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        info["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
        info["cuda_driver"] = cupy.cuda.runtime.driverGetVersion()
    info["threads"] = threads()
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _main(argv: list[str]) -> int:
    try:
        if argv[0] == "--probe":
            result = probe()
        else:
            result = measure(json.loads(argv[0]))
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    with open(argv[1], "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
