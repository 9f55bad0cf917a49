"""Smoke test of the fair benchmark (benchmarks/fair.py, worker.py, report.py).

The harness runs in --quick mode on scikit-learn's digits, one thread, ours and scikit-learn
only; the test checks what the results file holds and that the report renders it.  It never
asserts a speed.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import fair  # noqa: E402
import report  # noqa: E402

TASKS = ("exact", "predict")


@pytest.fixture(scope="module")
def results_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "fair.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "fair.py"), "--quick", "--data", "digits", "--threads", "1",
         "--tasks", *TASKS, "--libraries", "ours", "sklearn", "--out", str(out)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_results_record_the_environment_and_data(results_file):
    r = json.loads(results_file.read_text())
    assert r["schema"] == fair.SCHEMA and r["failures"] == []
    env = r["environment"]
    assert env["cores"] >= 1 and env["cpu"] and env["versions"]["numpy"]
    assert any(p["internal_api"] == "openblas" for p in env["thread_pools"])
    assert r["data"]["source"] == "digits" and r["data"]["n_features"] == 64
    assert math.isfinite(r["f_star"]["value"])


def test_every_library_has_repetitions_and_a_summary(results_file):
    r = json.loads(results_file.read_text())
    assert set(r["tasks"]) == set(TASKS)
    for name in TASKS:
        task = r["tasks"][name]
        assert set(task["libraries"]) == {"ours", "sklearn"}
        for lib in task["libraries"].values():
            entry = lib["settings"]["1"]
            assert entry["status"] == "ok" and len(entry["runs"]) == 2
            assert entry["setup"]["threadpools"]
            for metric in fair.METRICS[name]:
                assert entry["summary"][metric]["n"] == 2
                assert lib["best"][metric]["threads"] == 1
        for metric in fair.METRICS[name]:
            speedup = task["speedup_of_ours"]["sklearn"][metric]
            assert set(speedup) == {"at_threads", "at_best"}
            assert speedup["at_best"]["low"] <= speedup["at_best"]["median"]


def test_exact_fits_reach_the_gap(results_file):
    r = json.loads(results_file.read_text())
    for lib in r["tasks"]["exact"]["libraries"].values():
        for run in lib["settings"]["1"]["runs"]:
            assert run["reached"] and run["gap"] <= r["config"]["gap"]


def test_report_renders_and_replaces_only_the_readme_block(results_file, tmp_path):
    table = results_file.with_suffix(".md").read_text()
    assert "**Exact fit**" in table and "**Prediction**" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.START}\nold table\n{report.END}\nrest\n")
    out = tmp_path / "table.md"
    code = report.main([str(results_file), "--out", str(out), "--readme", str(readme)])
    assert code == 0
    text = readme.read_text()
    assert text.startswith(f"intro\n{report.START}\n") and text.endswith(f"{report.END}\nrest\n")
    assert "old table" not in text and out.read_text().strip() in text


def test_readme_without_markers_is_refused():
    with pytest.raises(ValueError, match="perf-table:start"):
        report.replace_block("no markers here\n", "table")


def test_a_failing_worker_is_reported_not_fatal(tmp_path):
    run = fair.Run(fair.Config.quick_run(), data_dir=tmp_path, log_dir=tmp_path)  # no data
    entries = fair.run_group(run, "predict", ["ours"], 1)
    assert entries["ours"]["status"] == "failed" and entries["ours"]["runs"] == []
    assert entries["ours"]["error"].startswith("setup")
