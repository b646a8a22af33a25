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
