"""Memory readings: peak and current host RSS, and device memory held by CuPy / PyTorch."""

from __future__ import annotations

import os
import resource
import sys

__all__ = ["CpuMeter", "device_bytes", "rss_bytes", "rss_peak_bytes"]


def rss_peak_bytes() -> int:
    """Peak resident set size of this process (``getrusage``; kilobytes on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def rss_bytes() -> int:
    """Current resident set size (``/proc/self/statm`` on Linux; the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return rss_peak_bytes()


def device_bytes(backend: str) -> dict[str, int]:
    """GPU memory: CuPy's pool (bytes in use, bytes held) or PyTorch's allocator (in use, peak)."""
    if backend == "cupy":
        import cupy

        pool = cupy.get_default_memory_pool()
        return {"used": int(pool.used_bytes()), "held": int(pool.total_bytes())}
    if backend == "torch":
        import torch

        return {"used": int(torch.cuda.memory_allocated()),
                "held": int(torch.cuda.max_memory_allocated())}
    return {}


class CpuMeter:
    """CPU time used by *other* processes while this one was timed (Linux ``/proc``), as a
    fraction of all cores: a busy neighbour on a shared machine shows up here, not as noise."""

    def __init__(self) -> None:
        self.ncpu = os.cpu_count() or 1
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[int, int, int] | None:
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:]]
            with open("/proc/self/stat") as f:
                own = f.read().rsplit(")", 1)[1].split()
            busy = sum(v) - v[3] - v[4]  # all but idle and iowait
            return sum(v), busy, int(own[11]) + int(own[12])  # utime + stime of this process
        except (OSError, ValueError, IndexError):
            return None

    def others(self) -> float | None:
        """Others' share of all cores since the meter started (0..1); None off Linux."""
        end = self._read()
        if end is None or self._start is None or end[0] == self._start[0]:
            return None
        total = end[0] - self._start[0]
        others = (end[1] - self._start[1]) - (end[2] - self._start[2])
        return max(0.0, others / total)
