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
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="workbench-test-home-"))
os.environ["WORKBENCH_HOME"] = str(_SESSION_HOME)
os.environ.pop("ARTIFACTS_DIR", None)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
