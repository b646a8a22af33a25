"""Smoke test of the benchmark machinery (xpnet.bench): one tiny configuration, real worker
processes, and a JSON report with every field filled. Speed itself is never asserted."""

from __future__ import annotations

import json

import pytest

from xpnet.bench import main
from xpnet.bench.config import TARGETS, parse_config
from xpnet.bench.report import check_targets, memory_growth


def test_tiny_run_writes_a_complete_report(tmp_path, capsys):
    out = tmp_path / "res"
    args = ["--config", "12-8-3@4", "--n-batches", "3", "--repeats", "2", "--quiet", "1",
            "--candidates", "xpnet-numpy,xpnet-strict,floor-numpy,sklearn,fit-numpy",
            "--out", str(out)]
    assert main(args) == 0
    table = capsys.readouterr().out
    report = json.loads((out / "bench.json").read_text())
    assert (out / "bench.png").stat().st_size > 0
    assert report["machine"]["cpus"] >= 1 and report["machine"]["numpy"]
    rows = {r["candidate"]: r for r in report["results"]}
    assert {"xpnet-numpy", "xpnet-strict", "floor-numpy"} <= set(rows)
    for name, r in rows.items():
        assert "error" not in r, (name, r.get("error"))
        assert r["config"] == "12-8-3@4" and r["samples"] == 12
        assert len(r["samples_per_s"]) == 2 and all(s > 0 for s in r["samples_per_s"])
        assert r["min_samples_per_s"] <= r["median_samples_per_s"] <= r["max_samples_per_s"]
        assert r["step_ms"] > 0 and r["peak_rss_bytes"] > 0 and r["threads"]["pools"]
        assert len(r["rss_bytes_per_epoch"]) >= 2 and "steady" in r["memory"]
        assert name in table
    assert rows["xpnet-numpy"]["x_floor"] > 0
    assert rows["xpnet-numpy"]["loss"] > 0  # it trained: a finite, positive cross-entropy
    if "fit-numpy" in rows:
        assert rows["fit-numpy"]["x_step"] > 0 and rows["fit-numpy"]["epoch_time_s"] > 0


def test_bad_configuration_and_candidate_names_say_what_is_expected(capsys):
    with pytest.raises(ValueError, match="like 784-256-256-10@128"):
        parse_config("784x256@")
    assert main(["--config", "12-8", "--out", "unused"]) == 2
    assert "784-256-256-10@128" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no candidate matches 'nope'"):
        main(["--candidates", "nope", "--out", "unused"])


def test_targets_are_ratios_of_medians():
    # two runs' worth of medians: 300 vs 200 samples/s is 1.5x; 100 vs 80 is time 1.25x
    t = TARGETS[0]
    res = [{"config": t.config, "candidate": t.candidate, "samples_per_s": [290, 300, 310]},
           {"config": t.config, "candidate": t.other, "samples_per_s": [200, 100, 250]}]
    (check,) = check_targets(res)
    assert check["ratio"] == pytest.approx(1.5) and check["met"] is (1.5 >= t.at_least)
    growth = memory_growth({"rss_bytes_per_epoch": [100, 5000, 100 + (64 << 20)]})
    assert growth["rss_growth_bytes"] == 64 << 20 and not growth["steady"]


def test_unreliable_runs_are_flagged_not_reported():
    """A wide spread, or a step faster than its matrix products alone, is not a result."""
    from xpnet.bench.report import format_table, merge_runs, summarize_targets

    t = TARGETS[0]  # xpnet-numpy vs torch-eager at 784-256-256-10@128
    steady = {"config": t.config, "candidate": t.other, "samples_per_s": [100, 101, 99]}
    wild = {"config": t.config, "candidate": t.candidate, "samples_per_s": [50, 150, 400]}
    (check,) = check_targets([wild, steady])
    assert check["unreliable"] and "spread" in check["unreliable"][0]
    (summary,) = summarize_targets([[check]])
    assert summary["met"] is None and summary["runs"] == 0
    # physically impossible: the step took 0.5x the time of its matrix products alone
    floor = {"config": t.config, "candidate": "floor-numpy", "samples_per_s": [100, 100]}
    fast = {"config": t.config, "candidate": t.candidate, "samples_per_s": [200, 201]}
    check = next(c for c in check_targets([fast, steady, floor]) if c["target"] == t.text)
    assert any("impossible" in w for w in check["unreliable"])
    good = {"config": t.config, "candidate": t.candidate, "samples_per_s": [80, 81]}
    ok = next(c for c in check_targets([good, steady, floor]) if c["target"] == t.text)
    assert ok["unreliable"] == []
    summary = summarize_targets([[check], [ok]])[0]  # the unreliable run is left out
    assert summary["runs"] == 1 and summary["dropped_runs"] == 1
    assert summary["median"] == pytest.approx(80.5 / 100)
    base = {"samples": 128, "peak_rss_bytes": 1, "times_s": [1.0], "others_cpu_share": [],
            "threads": {"pools": []}}
    rows = merge_runs([[{**base, **fast}, {**base, **floor}, {**base, **steady}]])
    table = format_table(rows, summarize_targets([[check]]))
    assert "UNRELIABLE rows" in table and "not measured reliably" in table
