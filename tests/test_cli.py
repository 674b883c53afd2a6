"""The `workbench` command as a user runs it: a real subprocess, real training, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _workbench(*args: str, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_demo_fast_ranks_helpful_first_and_bad_candidates_below_baseline(demo_fast_trained):
    # `workbench demo --fast --out DIR`, run once for the whole test run (conftest's demo_fast_trained)
    out = demo_fast_trained["out"]
    assert "Ranking by predicted macro_f1" in demo_fast_trained["stdout"]
    m = json.loads((out / "metrics.json").read_text())
    ranking = {r["candidate"]: r for r in m["ranking"]}
    order = [r["candidate"] for r in m["ranking"]]
    assert order[0] == "helpful", order
    assert ranking["helpful"]["rank_at_largest_size"] == 1
    baseline = m["baseline"]["predicted"]
    for bad in ("offdomain", "noisy"):
        assert ranking[bad]["predicted"] < baseline, (bad, ranking[bad]["predicted"], baseline)
        assert ranking[bad]["predicted"] < ranking["helpful"]["predicted"]
        assert ranking[bad]["gain_over_baseline"] < 0
    assert ranking["helpful"]["gain_over_baseline"] > 0
    helpful = sorted((r["size"], r["metrics"]["macro_f1"]) for r in m["runs"] if r["candidate"] == "helpful")
    assert helpful[-1][1] > helpful[0][1], helpful  # the helpful curve rises
    assert len(m["runs"]) == 15
    assert (out / "scaling.png").is_file() and (out / "ranking.png").is_file()


def test_run_rejects_a_bad_spec_with_the_fields_to_fix(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\nmodel: builtin:tiny-lm\ntask: translation\nsizes: [0]\ntarget_size: 10\n")
    proc = _workbench("run", str(spec), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "task:" in proc.stderr and "sizes:" in proc.stderr and "d0:" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_run_reports_a_missing_data_file(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: x\nmodel: builtin:tiny-lm\ntask: classification\n"
        "d0: {path: missing.csv}\nbenchmark_holdout: 10\ncandidates: [{catalog: demo/helpful}]\n"
        "sizes: [10]\ntarget_size: 100\n"
    )
    proc = _workbench("run", str(spec), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "missing.csv" in proc.stderr
