"""Test setup: everything offline, and each test session in its own workbench home.

The built-in model is cached in one folder for the whole session (building it is deterministic),
while artifacts go to a fresh folder per test that asks for `store`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The fake Hub serves LFS uploads, not Xet: the client's Xet path (hf_xet installed) is untested here.
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="workbench-test-home-"))
os.environ["WORKBENCH_HOME"] = str(_SESSION_HOME)
os.environ.pop("ARTIFACTS_DIR", None)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _torch_threads_as_a_worker():
    """In-process training gets the threads a worker gets (core.train.configure_threads). Left at
    torch's default (every core) beside the suite's other processes, threads oversubscribe and a
    study in a test runs several times slower than alone."""
    from core.train import configure_threads

    configure_threads()


@pytest.fixture
def store(tmp_path):
    from core.artifacts import ArtifactStore

    return ArtifactStore(tmp_path / "artifacts")


@pytest.fixture(scope="session")
def tiny_lm_path():
    from core.tiny_model import ensure_tiny_lm

    return ensure_tiny_lm()


@pytest.fixture(scope="session")
def demo_folder():
    from core.demo import ensure_demo_data

    return ensure_demo_data()


@pytest.fixture(scope="session")
def demo_fast_trained(tmp_path_factory):
    """`workbench demo --fast` run once per test run, shared by the xdist workers (a file lock).

    {"artifacts": its artifacts folder (15 run results), "out": its output folder, "stdout": what it
    printed}. End-to-end tests seed their own artifacts from it (`seed_cached_runs`) and train only a
    few runs themselves, so the demo's 15 runs are trained once, not once per test.
    """
    import subprocess
    import sys

    from filelock import FileLock

    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    base = tmp_path_factory.getbasetemp()
    root = base.parent / f"demo-fast-{run_id}" if run_id else base / "demo-fast"
    done = root / "stdout.txt"
    with FileLock(str(root) + ".lock"):
        if not done.is_file():
            root.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "ARTIFACTS_DIR": str(root / "artifacts")}
            proc = subprocess.run(
                [sys.executable, "-m", "workers.cli", "demo", "--fast", "--out", str(root / "out")],
                cwd=PROJECT_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=1200,
            )
            assert proc.returncode == 0, proc.stderr[-3000:]
            done.write_text(proc.stdout)
    return {"artifacts": root / "artifacts", "out": root / "out", "stdout": done.read_text()}


def seed_cached_runs(trained: dict, artifacts_root, leave_out: int) -> list[dict]:
    """Copy the demo's run results into `artifacts_root` but for the `leave_out` smallest helpful and
    noisy runs, which the test's worker then trains. Returns the runs left out (arm, size, seed, key)."""
    import json
    import shutil

    runs = json.loads((trained["out"] / "metrics.json").read_text())["runs"]
    trainable = sorted((r for r in runs if r["arm"] in ("helpful", "noisy")), key=lambda r: (r["size"], r["arm"]))
    left = trainable[:leave_out]
    skip = {r["key"] for r in left}
    for r in runs:
        if r["key"] in skip:
            continue
        src, dst = Path(trained["artifacts"]) / "runs" / r["key"], Path(artifacts_root) / "runs" / r["key"]
        dst.mkdir(parents=True, exist_ok=True)
        for name in ("result.json", "manifest.json"):
            if (src / name).is_file():
                shutil.copy2(src / name, dst / name)
    return [{k: r[k] for k in ("arm", "size", "seed", "key")} for r in left]


def redis_test_url(db: int) -> str:
    """The suite's Redis database `db` on $WORKBENCH_TEST_REDIS_SERVER (default 127.0.0.1:6379).

    Each test file owns one database; another server lets two checkouts run the suite at once.
    """
    server = os.environ.get("WORKBENCH_TEST_REDIS_SERVER", "redis://127.0.0.1:6379").rstrip("/")
    return f"{server}/{db}"


def real_redis(url: str):
    """A real Redis database for one test, flushed before and after; fails (never skips) without one."""
    from redis import Redis

    conn = Redis.from_url(url)
    try:
        conn.ping()
    except Exception as err:
        pytest.fail(f"no Redis at {url}: {err}; start one (see README) — these tests need a real server")
    conn.flushdb()
    yield conn
    conn.flushdb()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item (`item.rep_call`), so fixtures can tell a failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
