"""``xpnet bench`` / ``python -m xpnet.bench``: run every candidate in its own process, then
print the table, check the targets, and write JSON and a PNG chart."""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from xpnet.bench.config import (CANDIDATES, CPU_CONFIGS, GPU_CONFIGS, QUICK_CONFIGS, Candidate,
                                Config, parse_config)
from xpnet.bench.report import check_targets, format_table, merge_runs, plot, summarize_targets

__all__ = ["main", "run_worker"]

WORKER = "xpnet.bench.worker"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xpnet bench",
        description="Training-step throughput (samples/s) of xpnet on every usable backend, "
                    "against PyTorch eager, scikit-learn and the matrix-product floor. Each "
                    "candidate runs in its own process.")
    p.add_argument("--quick", action="store_true",
                   help="short run for CI: 784-256-256-10 at batch 128 and 32, 3 repeats")
    p.add_argument("--config", action="append", metavar="DIMS@BATCH",
                   help="a configuration such as 784-256-256-10@128 (repeatable); default: "
                        "the standard set (+ the GPU set when a GPU is usable)")
    p.add_argument("--n-batches", type=int, help="batches per epoch (default: ~16k examples)")
    p.add_argument("--candidates", default="*",
                   help="comma-separated names or globs, e.g. 'xpnet-*,torch-eager' (default: all usable)")
    p.add_argument("--repeats", type=int, help="timed epochs per candidate (default 7; --quick 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs first (default 1)")
    p.add_argument("--runs", type=int, default=1,
                   help="repeat the whole set N times, interleaved; targets get median and spread")
    p.add_argument("--quiet", type=float, default=0.1,
                   help="time an epoch again when other processes took more than this share "
                        "of the CPU during it (default 0.1; 1 keeps every epoch)")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate for every candidate")
    p.add_argument("--threads", type=int, help="set OMP/OpenBLAS/MKL threads in every worker")
    p.add_argument("--no-gpu", action="store_true", help="skip GPU candidates even if usable")
    p.add_argument("--out", default="bench-results", help="folder for bench.json and bench.png")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG chart")
    p.add_argument("--timeout", type=float, default=900, help="seconds per worker (default 900)")
    p.add_argument("-v", "--verbose", action="store_true", help="print each result as it comes")
    return p


def run_worker(payload: str | None, env: dict[str, str] | None = None,
               timeout: float = 900) -> dict[str, Any]:
    """Run one worker process (``payload`` = spec JSON, or None to probe the machine)."""
    with tempfile.TemporaryDirectory(prefix="xpnet-bench-") as tmp:
        out = os.path.join(tmp, "result.json")
        cmd = [sys.executable, "-m", WORKER, "--probe" if payload is None else payload, out]
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
        if not os.path.exists(out):
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
            return {"error": f"worker exited with {proc.returncode}: {' | '.join(tail)}"}
        with open(out) as f:
            return json.load(f)


def _usable(cand: Candidate, machine: dict[str, Any], no_gpu: bool) -> tuple[bool, str]:
    backends = machine["backends"]
    if cand.gpu:
        if no_gpu:
            return False, "--no-gpu"
        if cand.backend == "cupy" and not backends["cupy"]["usable"]:
            return False, backends["cupy"]["reason"]
        if cand.backend == "torch" and not machine.get("torch_cuda"):
            return False, "torch sees no CUDA device"
        return True, ""
    if cand.backend in ("torch", "array_api_strict") and not backends[cand.backend]["usable"]:
        return False, backends[cand.backend]["reason"]
    if cand.backend == "sklearn" and not machine.get("sklearn"):
        return False, "scikit-learn is not installed"
    if cand.kind == "fit" and not machine.get("has_estimator"):
        return False, "xpnet.MLPClassifier is not available"
    return True, ""


def _applies(cand: Candidate, cfg: Config, first: Config) -> bool:
    if cfg.gpu_only and not cand.gpu:
        return False
    if cand.tf32 and cfg.width < 1024:  # TF32 matters only where products dominate
        return False
    if cand.sanity:
        return cfg == first
    return True


def _select(pattern: str) -> list[Candidate]:
    globs = [g.strip() for g in pattern.split(",") if g.strip()]
    chosen = [c for c in CANDIDATES if any(fnmatch.fnmatchcase(c.name, g) for g in globs)]
    if not chosen:
        names = ", ".join(c.name for c in CANDIDATES)
        raise SystemExit(f"xpnet bench: no candidate matches {pattern!r}; expected names "
                         f"or globs over: {names}")
    return chosen


def _worker_env(cand: Candidate, threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])  # so the worker imports this very xpnet
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    if threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    env.pop("CUPY_TF32", None)
    if cand.tf32 and cand.backend == "cupy":
        env["CUPY_TF32"] = "1"
    return env


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xpnet bench``; returns the exit status (0 even when a target is missed)."""
    args = _parser().parse_args(argv)
    quick = args.quick
    repeats = args.repeats or (3 if quick else 7)
    machine = run_worker(None, _worker_env(CANDIDATES[0], args.threads), args.timeout)
    if "error" in machine:
        print(f"xpnet bench: could not describe the machine: {machine['error']}", file=sys.stderr)
        return 1
    gpu = not args.no_gpu and (machine["backends"]["cupy"]["usable"] or machine.get("torch_cuda"))
    try:
        if args.config:
            configs = [parse_config(c, args.n_batches) for c in args.config]
        else:
            base = QUICK_CONFIGS if quick else (GPU_CONFIGS if gpu else CPU_CONFIGS)
            configs = [dataclasses.replace(c, n_batches=args.n_batches or c.n_batches) for c in base]
    except ValueError as exc:
        print(f"xpnet bench: {exc}", file=sys.stderr)
        return 2
    skipped: dict[str, str] = {}
    candidates = []
    for cand in _select(args.candidates):
        ok, why = _usable(cand, machine, args.no_gpu)
        (candidates.append(cand) if ok else skipped.setdefault(cand.name, why))
    print(f"xpnet bench: {len(configs)} configuration(s) x {len(candidates)} candidate(s), "
          f"{repeats} repeats, {args.runs} run(s); {machine['cpu']}, {machine['cpus']} CPUs"
          + (f", GPU {machine.get('gpu')}" if gpu else ""), flush=True)
    runs: list[list[dict[str, Any]]] = []
    started = time.time()
    for r in range(args.runs):
        results = []
        for cfg in configs:
            for cand in candidates:
                if not _applies(cand, cfg, configs[0]):
                    continue
                run_cfg = dataclasses.replace(cfg, n_batches=min(cfg.n_batches, 4)) if cand.sanity else cfg
                spec = {"candidate": dataclasses.asdict(cand), "config": dataclasses.asdict(run_cfg),
                        "lr": args.lr, "warmup": args.warmup, "quiet": args.quiet,
                        "repeats": min(repeats, 3) if cand.sanity else repeats}
                res = run_worker(json.dumps(spec), _worker_env(cand, args.threads), args.timeout)
                res.setdefault("candidate", cand.name)
                res.setdefault("config", cfg.name)
                res["run"] = r
                results.append(res)
                if args.verbose or "error" in res:
                    _echo(res)
        runs.append(results)
    merged = merge_runs(runs)
    targets = summarize_targets([check_targets(res) for res in runs])
    print()
    print(format_table(merged, targets, skipped))
    report = {"machine": machine, "command": ["xpnet", "bench", *(argv or sys.argv[1:])],
              "settings": {"repeats": repeats, "warmup": args.warmup, "runs": args.runs,
                           "lr": args.lr, "quiet": args.quiet, "dtype": "float32", "optimizer": "plain SGD",
                           "threads": args.threads, "configs": [c.name for c in configs]},
              "seconds": round(time.time() - started, 1), "skipped": skipped,
              "results": merged, "raw": runs, "targets": targets}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(report, indent=1))
    written = [str(out / "bench.json")]
    if not args.no_plot:
        png = plot(merged, out / "bench.png")
        if png:
            written.append(png)
    print(f"\nwrote {', '.join(written)}")
    return 0


def _echo(res: dict[str, Any]) -> None:
    if "error" in res:
        print(f"  {res['config']:>22} {res['candidate']:<24} ERROR {res['error']}", flush=True)
    else:
        sps = sorted(res["samples_per_s"])[len(res["samples_per_s"]) // 2]
        print(f"  {res['config']:>22} {res['candidate']:<24} {sps:12,.0f} samples/s", flush=True)
