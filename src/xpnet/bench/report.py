"""Turning worker results into a table, ratios, target checks and a chart."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Sequence

from xpnet.bench.config import CANDIDATES, TARGETS

__all__ = ["PHYSICAL_MARGIN", "SPREAD_LIMIT", "check_targets", "format_table",
           "memory_growth", "merge_runs", "plot", "summarize_targets", "unreliable"]

_BY_NAME = {c.name: c for c in CANDIDATES}
MiB = 1 << 20
# Growth of resident memory over the timed epochs that counts as "memory grows": more than
# this many bytes from the first timed epoch to the last (allocator noise stays far below).
GROWTH_LIMIT = 4 * MiB
# A row is not a result when its repeats spread more than this ((max - min) / median) ...
SPREAD_LIMIT = 0.25
# ... or when it ran faster than physics allows: a training step faster than its matrix
# products alone, a fit faster than its bare step loop (by more than this margin)
PHYSICAL_MARGIN = 0.95


def unreliable(row: dict[str, Any], floor: dict[str, Any] | None = None,
               step: dict[str, Any] | None = None) -> list[str]:
    """Why a measured row cannot be reported as a result (empty: it can). ``floor``: the
    row of the same backend's matrix products; ``step``: a fit row's bare step loop."""
    why = []
    sps = row.get("samples_per_s") or []
    if len(sps) >= 2:
        spread = (max(sps) - min(sps)) / statistics.median(sps)
        if spread > SPREAD_LIMIT:
            why.append(f"repeats spread {100 * spread:.0f}% (> {100 * SPREAD_LIMIT:.0f}%)")
    for other, what in ((floor, "its matrix products alone"), (step, "the bare step loop")):
        if other and "error" not in other and other.get("samples_per_s"):
            ratio = _median_sps(other) / _median_sps(row)  # its time / the other's
            if ratio < PHYSICAL_MARGIN:
                why.append(f"ran in {ratio:.2f}x the time of {what}: impossible on a quiet "
                           f"machine")
    return why


def _median_sps(res: dict[str, Any]) -> float:
    return statistics.median(res["samples_per_s"])


def memory_growth(res: dict[str, Any]) -> dict[str, Any]:
    """Host RSS (and device bytes in use) from the first timed epoch to the last."""
    out: dict[str, Any] = {}
    for key, name in (("rss_bytes_per_epoch", "rss"), ("device_used_bytes_per_epoch", "device")):
        vals = res.get(key) or []
        if len(vals) >= 2:
            out[f"{name}_growth_bytes"] = vals[-1] - vals[0]
    out["steady"] = all(v <= GROWTH_LIMIT for k, v in out.items() if k.endswith("growth_bytes"))
    return out


def merge_runs(runs: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per (config, candidate): repeats of every run pooled; median, min, max, ratios."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    # a run whose epochs were never quiet is pooled only when no run of that row was quiet
    quiet = {(r["config"], r["candidate"]) for results in runs for r in results
             if r.get("quiet_ok", True) and "error" not in r}
    for results in runs:
        for res in results:
            if (res["config"], res["candidate"]) in quiet and not res.get("quiet_ok", True):
                continue
            key = (res["config"], res["candidate"])
            if "error" in res:
                rows.setdefault(key, {k: res[k] for k in ("config", "candidate", "error")})
                continue
            row = rows.get(key)
            if row is None or "error" in row:
                row = rows[key] = {**{k: v for k, v in res.items() if k not in ("run",)},
                                   "samples_per_s": [], "times_s": [], "others_cpu_share": []}
            for k in ("samples_per_s", "times_s", "others_cpu_share"):
                row[k] += res.get(k, [])
            row["discarded"] = row.get("discarded", 0) + res.get("discarded_busy_epochs", 0)
            row["peak_rss_bytes"] = max(row["peak_rss_bytes"], res["peak_rss_bytes"])
            row.setdefault("memory", memory_growth(res))
            if not memory_growth(res)["steady"]:
                row["memory"] = memory_growth(res)
    for row in rows.values():
        if "error" in row:
            continue
        sps = row["samples_per_s"]
        med = statistics.median(sps)
        batch = int(row["config"].rsplit("@", 1)[1])
        row["median_samples_per_s"] = med
        row["min_samples_per_s"], row["max_samples_per_s"] = min(sps), max(sps)
        row["spread"] = (max(sps) - min(sps)) / med
        row["step_ms"] = 1e3 * batch / med
        busy = [b for b in row["others_cpu_share"] if b is not None]
        row["others_cpu_max"] = max(busy) if busy else None
        row["discarded"] = row.get("discarded", 0)
    for (cfg, name), row in rows.items():
        cand = _BY_NAME.get(name)
        if cand is None or "error" in row or cand.kind in ("floor", "sklearn"):
            continue
        if cand.kind == "fit":  # fit's epoch against the bare step loop on the same backend
            step = rows.get((cfg, "xpnet-" + cand.backend))
            if step and "error" not in step:
                row["x_step"] = step["median_samples_per_s"] / row["median_samples_per_s"]
            row["unreliable"] = unreliable(row, step=step)
            continue
        floor = rows.get((cfg, cand.floor))
        if floor and "error" not in floor:
            row["x_floor"] = floor["median_samples_per_s"] / row["median_samples_per_s"]
        row["unreliable"] = unreliable(row, floor=floor if cand.kind == "step" else None)
        eager = rows.get((cfg, cand.eager))
        if eager and "error" not in eager and cand.kind != "eager":
            row["x_eager"] = row["median_samples_per_s"] / eager["median_samples_per_s"]
    return list(rows.values())


def check_targets(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets (config.TARGETS) on one run's results (ratios of medians measured in that run)."""
    ok_rows = {(r["config"], r["candidate"]): r for r in results if "error" not in r}
    sps = {key: _median_sps(r) for key, r in ok_rows.items()}
    out = []
    for t in TARGETS:
        a, b = sps.get((t.config, t.candidate)), sps.get((t.config, t.other))
        if a is None or b is None:
            continue
        if t.at_least is not None:
            ratio, ok = a / b, a / b >= t.at_least
        else:
            ratio, ok = b / a, b / a <= t.at_most
        why = []
        for name in (t.candidate, t.other):
            cand = _BY_NAME.get(name)
            floor = ok_rows.get((t.config, cand.floor)) if cand and cand.kind == "step" else None
            why += [f"{name}: {w}" for w in unreliable(ok_rows[(t.config, name)], floor=floor)]
        out.append({"target": t.text, "ratio": ratio, "met": ok, "unreliable": why,
                    "at_least": t.at_least, "at_most": t.at_most})
    return out


def summarize_targets(per_run: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each target's ratio over runs: median, min, max; met when the median meets it."""
    by_text: dict[str, list[dict[str, Any]]] = {}
    for checks in per_run:
        for c in checks:
            by_text.setdefault(c["target"], []).append(c)
    out = []
    for text, cs in by_text.items():
        good = [c for c in cs if not c.get("unreliable")]  # runs that are results
        ratios = [c["ratio"] for c in (good or cs)]
        med = statistics.median(ratios)
        t = cs[0]
        met = med >= t["at_least"] if t["at_least"] is not None else med <= t["at_most"]
        why = sorted({w for c in cs for w in c.get("unreliable", [])})
        out.append({"target": text, "median": med, "min": min(ratios), "max": max(ratios),
                    "runs": len(good), "met": met if good else None, "ratios": ratios,
                    "unreliable": why if not good else [],
                    "dropped_runs": len(cs) - len(good)})
    return out


def _threads(row: dict[str, Any]) -> str:
    th = row.get("threads", {})
    pools = ",".join(p.replace("openblas", "blas").replace("openmp", "omp")
                     for p in th.get("pools", []))
    return pools + (f",torch={th['torch']}" if "torch" in th else "")


def format_table(rows: Sequence[dict[str, Any]], targets: Sequence[dict[str, Any]],
                 skipped: dict[str, str] | None = None) -> str:
    """The terminal table, then the targets, then the skipped candidates."""
    head = (f"{'config':<22} {'candidate':<23} {'samples/s':>11} {'spread':>7} {'ms/step':>8} "
            f"{'xfloor':>6} {'xeager':>6} {'xstep':>5} {'RSS MiB':>7} {'GPU MiB':>7} {'mem':>5} {'busy':>5} {'redo':>4}  threads")
    lines = [head, "-" * len(head)]
    last_cfg = None
    for r in rows:
        cfg = r["config"] if r["config"] != last_cfg else ""
        last_cfg = r["config"]
        if "error" in r:
            lines.append(f"{cfg:<22} {r['candidate']:<23} ERROR: {r['error'][:80]}")
            continue
        dev = r.get("device_bytes", {}).get("held")
        mem = r.get("memory", {})
        mark = "!" if r.get("unreliable") else " "
        lines.append(
            f"{cfg:<22} {r['candidate']:<22}{mark} {r['median_samples_per_s']:>11,.0f} "
            f"{100 * r['spread']:>6.1f}% {r['step_ms']:>8.3f} "
            f"{_fmt(r.get('x_floor'))} {_fmt(r.get('x_eager'))} {_fmt(r.get('x_step'), 5)} "
            f"{r['peak_rss_bytes'] / MiB:>7.0f} {'' if dev is None else f'{dev / MiB:.0f}':>7} "
            f"{'ok' if mem.get('steady', True) else 'GROWS':>5} {_pct(r.get('others_cpu_max'))} {r.get('discarded', 0):>4}  "
            f"{_threads(r)}")
    lines.append("")
    lines.append("xfloor: step time / matrix products alone (same backend); xeager: samples/s / "
                 "PyTorch eager (same device); xstep: fit's time per sample / the bare step "
                 "loop's; spread: (max - min) / median over repeats; "
                 "mem: RSS (and GPU bytes in use) steady from epoch to epoch; busy: the most CPU "
                 "other processes took during a kept epoch (share of all cores; redo: epochs "
                 "timed again because others took more than --quiet of the CPU)")
    if targets:
        lines.append("")
        lines.append("targets, ratio of medians measured in one run; over runs: "
                     "median [min, max]")
        for t in targets:
            if t.get("met") is None:  # no run of it was a result
                lines.append(f"  ???? {t['target']:<58} not measured reliably: "
                             f"{'; '.join(t['unreliable'])}")
                continue
            dropped = (f", {t['dropped_runs']} unreliable run(s) left out"
                       if t.get("dropped_runs") else "")
            lines.append(f"  {'MET ' if t['met'] else 'MISS'} {t['target']:<58} "
                         f"{t['median']:.2f} [{t['min']:.2f}, {t['max']:.2f}] "
                         f"({t['runs']} run(s){dropped})")
    bad = [r for r in rows if r.get("unreliable")]
    if bad:
        lines.append("")
        lines.append("UNRELIABLE rows (shown above, not results: rerun on a quieter machine, "
                     "or with --runs 3):")
        for r in bad:
            lines.append(f"  {r['config']} {r['candidate']}: {'; '.join(r['unreliable'])}")
    for name, why in (skipped or {}).items():
        lines.append(f"  skipped {name}: {why}")
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return f"{100 * x:>4.0f}%" if x is not None else f"{'':>5}"


def _fmt(x: float | None, width: int = 6) -> str:
    return f"{x:>{width}.2f}" if x is not None else " " * width


def plot(rows: Sequence[dict[str, Any]], path: str | Path) -> str | None:
    """A PNG of median samples/s (min..max as error bars), one panel per configuration."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart (pip install matplotlib)")
        return None
    ok = [r for r in rows if "error" not in r]
    configs = list(dict.fromkeys(r["config"] for r in ok))
    if not configs:
        return None
    colors = {"step": "tab:blue", "eager": "tab:orange", "sklearn": "tab:green",
              "floor": "tab:gray", "fit": "tab:purple"}
    fig, axes = plt.subplots(len(configs), 1, figsize=(8, 1.2 + 0.32 * len(ok)), squeeze=False)
    for ax, cfg in zip(axes[:, 0], configs):
        rs = [r for r in ok if r["config"] == cfg]
        med = [r["median_samples_per_s"] for r in rs]
        err = [[m - r["min_samples_per_s"] for m, r in zip(med, rs)],
               [r["max_samples_per_s"] - m for m, r in zip(med, rs)]]
        kinds = [_BY_NAME[r["candidate"]].kind if r["candidate"] in _BY_NAME else "step" for r in rs]
        ax.barh(range(len(rs)), med, xerr=err, color=[colors[k] for k in kinds], capsize=2)
        ax.set_yticks(range(len(rs)), [r["candidate"] for r in rs], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{cfg}  (float32, SGD)", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    axes[-1, 0].set_xlabel("samples / s (median; bars: min..max over repeats)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
