"""Recovery from a dying submitter and from a Redis crash, against a real Redis and real workers.

Redis: 127.0.0.1:6379 db 6 (on $WORKBENCH_TEST_REDIS_SERVER), flushed per test. Split from
tests/test_queue.py (same fixtures) so the two files run in parallel under `pytest -n 2 --dist loadfile`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from rq import Queue

from tests.conftest import redis_test_url
from tests.specs import tiny_spec
from tests.test_queue import PROJECT_ROOT, Workers
from workers import client
from workers.store import JobStore

REDIS_URL = redis_test_url(6)


@pytest.fixture
def redis():
    from tests.conftest import real_redis

    yield from real_redis(REDIS_URL)


@pytest.fixture
def artifacts(tmp_path, monkeypatch):
    from core.artifacts import ArtifactStore

    root = tmp_path / "artifacts"
    monkeypatch.setenv("ARTIFACTS_DIR", str(root))
    return ArtifactStore(root)


@pytest.fixture
def workers(redis, artifacts, tmp_path):
    w = Workers(REDIS_URL, artifacts, tmp_path)
    yield w
    w.stop_all()


@pytest.mark.parametrize("died_after", ["records", "run_jobs"])
def test_a_submit_whose_submitter_died_is_finished_by_a_worker(redis, workers, artifacts, died_after):
    """A dashboard killed mid-submit leaves a study in `wb:submitting`; a worker finishes it.

    The two states a SIGKILL can leave (the run jobs go in one transaction, so there is no third):
    records written but no job, or run jobs enqueued but no fits and ranking. Both are built with
    the submit's own steps, stopped where the kill would stop them.
    """
    from core.study import plan_runs, prepare_study, save_prepared

    spec = tiny_spec(sizes=[40, 80])
    prepared = prepare_study(spec)
    sid = f"{spec.study_id()}-dead01"
    save_prepared(prepared, artifacts.prepared_dir(sid))
    records = [
        {
            "id": client.run_id(sid, i),
            "index": i,
            "arm": r.arm,
            "size": r.size,
            "seed": r.seed,
            "key": r.key,
            "status": "queued",
            "cached": False,
            "phase": "queued",
            "attempts": 0,
        }
        for i, r in enumerate(plan_runs(prepared))
    ]
    store = JobStore(redis)
    from core.spec import dump_spec

    store.create_study(
        sid,
        {
            "name": spec.name,
            "spec": dump_spec(spec),
            "status": "submitting",
            "backend": "local",
            "primary_metric": spec.primary_metric,
            "target_size": spec.target_size,
        },
        records,
        submitting=True,
    )
    if died_after == "run_jobs":
        client._enqueue(redis, store.study(sid), records, with_ranking=False)
        assert Queue("gpu", connection=redis).count == len(records)
    assert store.submitting() == [sid]
    # Its submitter still holds the lock: nothing is resumed behind a live submitter's back.
    assert store.take_submit_lock(sid, "submitter", 60)
    assert client.resume_submits(redis) == []
    redis.delete(f"wb:submit-lock:{sid}")  # the lock expires: the submitter is gone
    assert client.resume_submits(redis) == [sid]
    assert client.resume_submits(redis) == []  # once
    assert store.submitting() == [] and store.study(sid)["status"] == "queued"
    assert Queue("gpu", connection=redis).count == len(records), "each run job exactly once"
    workers.start("--burst")
    st = client.wait(redis, sid, timeout=600)
    assert st["study"]["status"] == "finished", workers.logs()
    assert st["counts"]["finished"] == len(records)
    assert len(list(artifacts.root.glob("runs/*/result.json"))) == len(records)
    assert (artifacts.study_dir(sid) / "metrics.json").is_file()


def test_the_reaper_thread_of_a_running_worker_resumes_submits(redis, workers, artifacts):
    """The same, end to end: a submitter subprocess killed with SIGKILL right after it wrote the study."""
    spec = tiny_spec(sizes=[40])
    store = JobStore(redis)
    code = (
        "import os, signal, sys\n"
        "from redis import Redis\n"
        "from tests.specs import tiny_spec\n"
        "from workers import client\n"
        "from workers.store import JobStore\n"
        "redis = Redis.from_url(sys.argv[1])\n"
        "create = JobStore.create_study\n"
        "def create_then_die(self, *a, **k):\n"  # the process dies the instant the records are written
        "    create(self, *a, **k)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "JobStore.create_study = create_then_die\n"
        "client.submit(redis, tiny_spec(sizes=[40]))\n"
    )
    env = {**os.environ, "ARTIFACTS_DIR": str(artifacts.root)}
    done = subprocess.run([sys.executable, "-c", code, REDIS_URL], cwd=PROJECT_ROOT, env=env, timeout=300)
    assert done.returncode == -signal.SIGKILL
    [sid] = store.submitting()
    assert store.study(sid)["status"] == "submitting" and Queue("gpu", connection=redis).count == 0
    redis.delete(f"wb:submit-lock:{sid}")  # skip the 60 s the lock would take to expire
    workers.start()
    st = client.wait(redis, sid, timeout=600)
    assert st["study"]["status"] == "finished", workers.logs()
    assert "finished the submit of study" in workers.logs()
    assert len(list(artifacts.root.glob("runs/*/result.json"))) == len(spec.sizes) * (len(spec.candidates) + 1)


def test_a_job_lost_from_its_queue_in_a_redis_crash_is_queued_again(redis, workers, artifacts):
    """A crash after a worker's pop (fsync every second) leaves a queued job in no queue; a deleted job
    is the same loss one step earlier. The orphan sweep puts both back, and the study finishes."""
    from workers.worker import requeue_orphans

    sid = client.submit(redis, tiny_spec(sizes=[40]))
    runs = JobStore(redis).study_runs(sid)
    popped = redis.lpop("rq:queue:gpu").decode()  # the pop that survived the crash
    redis.delete(f"rq:job:{client.run_job_id(runs[2]['id'])}")  # a job that did not
    redis.lrem("rq:queue:gpu", 0, client.run_job_id(runs[2]["id"]))
    assert Queue("gpu", connection=redis).count == 1
    assert requeue_orphans(redis, grace=60) == []  # too recent: a worker may be between pop and start
    redis.delete("wb:orphan-sweep")
    requeued = requeue_orphans(redis, grace=0)
    assert sorted(requeued) == sorted([popped.removeprefix("wb-run-"), runs[2]["id"]])
    assert Queue("gpu", connection=redis).count == 3
    redis.delete("wb:orphan-sweep")
    assert requeue_orphans(redis, grace=0) == []  # nothing twice
    workers.start("--burst")
    st = client.wait(redis, sid, timeout=600)
    assert st["study"]["status"] == "finished" and st["counts"]["finished"] == 3, workers.logs()
    assert len(list(artifacts.root.glob("runs/*/result.json"))) == 3
