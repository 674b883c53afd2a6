"""Opt-in smoke test against the real Hugging Face Jobs service: it costs money, so it runs only when asked.

    WORKBENCH_LIVE_HF=1 HF_TOKEN=hf_... .venv/bin/python -m pytest tests/test_live_hf.py -s

A study of the built-in tiny model with one candidate at 40 rows (two runs: the baseline and the
candidate) on `cpu-basic`, the default image (the Job installs the worker's wheel), a real worker,
and the token's own results repo (RESULTS_REPO to choose another). It prints the wall time and the
cost at the Hub's listed price, and writes them to test-output/live_hf.json. Xet uploads are used
here as in production (the rest of the suite disables them for its fake Hub).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.artifacts import ArtifactStore
from core.spec import parse_spec
from tests.conftest import real_redis, redis_test_url
from workers import client
from workers.client import SubmitOptions

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LIVE = os.environ.get("WORKBENCH_LIVE_HF") == "1" and bool(os.environ.get("HF_TOKEN"))
pytestmark = pytest.mark.skipif(
    not LIVE,
    reason="live HF Jobs smoke test not asked for: set WORKBENCH_LIVE_HF=1 and HF_TOKEN to run two tiny runs on "
    "cpu-basic (a few cents; docs/OPERATIONS.md)",
)
FLAVOR = "cpu-basic"


@pytest.fixture
def redis():
    yield from real_redis(redis_test_url(15))


def test_two_tiny_runs_on_the_real_service(redis, tmp_path):
    from workers.backends import hf_jobs

    spec = parse_spec(
        {
            "name": "live smoke",
            "model": "builtin:tiny-lm",
            "task": "classification",
            "d0": {"catalog": "demo/d0", "name": "d0"},
            "benchmark": {"catalog": "demo/benchmark", "name": "benchmark", "max_rows": 40},
            "candidates": [{"catalog": "demo/helpful", "name": "helpful", "max_rows": 200}],
            "sizes": [40],
            "target_size": 400,
            "bootstrap": 20,
            "training": {"method": "full", "min_steps": 4, "max_seq_length": 64},
        }
    )
    artifacts = ArtifactStore(tmp_path / "artifacts")
    opts = SubmitOptions(backend="hf_jobs", backend_options={"hf_flavor": FLAVOR, "hf_timeout": "30m"})
    started = time.monotonic()
    study_id = client.submit(redis, spec, opts, artifacts=artifacts)
    env = {
        k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_XET")
    }
    env.update(REDIS_URL=redis_test_url(15), ARTIFACTS_DIR=str(artifacts.root), WORKBENCH_HF_POLL="5")
    worker = subprocess.run(
        [sys.executable, "-m", "workers.cli", "worker", "--burst", "--queues", "default"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    wall_s = time.monotonic() - started
    runs = client.study_status(redis, study_id)["runs"]
    assert all(r["status"] == "finished" for r in runs), (runs, worker.stdout[-3000:], worker.stderr[-3000:])
    price_per_hour = hf_jobs.hardware()["prices"].get(FLAVOR)
    report = {
        "study_id": study_id,
        "flavor": FLAVOR,
        "runs": len(runs),
        "wall_seconds": round(wall_s, 1),
        "jobs": [r.get("backend_url") for r in runs],
        "price_usd_per_hour": price_per_hour,
        # Runs follow one another on one worker, so the wall time bounds the billed Job minutes.
        "cost_usd_at_most": round(wall_s / 3600 * price_per_hour, 4) if price_per_hour else None,
    }
    out = PROJECT_ROOT / "test-output" / "live_hf.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nlive HF Jobs smoke test: {json.dumps(report)}")
