"""The job system against a real Redis and real worker processes: no mocks.

Redis: the server at 127.0.0.1:6379, db 9 (flushed per test), and an embedded server where
durability is tested. Workers: `workbench worker` subprocesses, killed for real where a test says.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import ConnectionPool, Redis
from redis.connection import Connection as RedisConnection
from rq import Queue

from core.artifacts import ArtifactStore
from core.normalize import DataError
from core.sources import SourceError
from core.spec import load_spec
from tests.conftest import redis_test_url, seed_cached_runs
from tests.specs import tiny_spec
from workers import client
from workers.client import SubmitError, SubmitOptions
from workers.redis_server import EmbeddedRedis
from workers.store import JobStore

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = redis_test_url(9)


@pytest.fixture
def redis_url():
    conn = Redis.from_url(REDIS_URL)
    conn.flushdb()
    yield REDIS_URL
    conn.flushdb()


@pytest.fixture
def redis(redis_url):
    return Redis.from_url(redis_url)


@pytest.fixture
def artifacts(tmp_path, monkeypatch):
    root = tmp_path / "artifacts"
    monkeypatch.setenv("ARTIFACTS_DIR", str(root))
    return ArtifactStore(root)


class Workers:
    """Worker subprocesses, each in its own process group so a test can kill it and its horse."""

    def __init__(self, url: str, artifacts: ArtifactStore, log_dir: Path):
        self.url, self.artifacts, self.log_dir = url, artifacts, log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self, *extra: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "REDIS_URL": self.url,
            "ARTIFACTS_DIR": str(self.artifacts.root),
            "WORKBENCH_WORKER_LOG_LEVEL": "INFO",
        }
        log = open(self.log_dir / f"worker-{len(self.procs)}.log", "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "worker", *extra],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
        """Kill the worker and its work horse (RQ puts the horse in a process group of its own)."""
        import psutil

        tree = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        for pid in tree:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                self.kill(p)

    def logs(self) -> str:
        return "\n".join(f.read_text() for f in sorted(self.log_dir.glob("worker-*.log")))


@pytest.fixture
def workers(redis_url, artifacts, tmp_path, request):
    w = Workers(redis_url, artifacts, tmp_path)
    yield w
    alive = [p.pid for p in w.procs if p.poll() is None]
    w.stop_all()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:  # what the workers said, for a failure seen only on CI
        print(f"workers still running at the failure: {alive}\n{w.logs()[-6000:]}")
        store = JobStore(Redis.from_url(redis_url))
        for study in store.studies():
            for run in store.study_runs(study["id"]):
                events = [e.get("message") for e in store.events(run["id"])]
                print(run["id"], run.get("status"), run.get("phase"), events)


def _wait_for(cond, timeout: float, what: str, poll: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _wb_keys(redis: Redis) -> list[bytes]:
    return list(redis.scan_iter("wb:*")) + list(redis.scan_iter("rq:job:*"))


# ---------------------------------------------------------------------------------------------


def test_demo_study_fast_through_a_real_worker(redis, workers, artifacts, tmp_path, demo_fast_trained):
    # 13 of the 15 runs come cached from the session's one demo run; the worker trains the other 2
    left_out = seed_cached_runs(demo_fast_trained, artifacts.root, leave_out=2)
    spec = load_spec(PROJECT_ROOT / "catalog" / "demo_study_fast.yaml")
    study_id = client.submit(redis, spec, SubmitOptions(submitted_by="tester"))
    assert JobStore(redis).study(study_id)["submitted_by"] == "tester"
    queued = [r for r in JobStore(redis).study_runs(study_id) if r["status"] == "queued"]
    assert sorted(r["key"] for r in queued) == sorted(r["key"] for r in left_out)
    workers.start()
    st = client.wait(redis, study_id, timeout=600)
    assert st["study"]["status"] == "finished", workers.logs()[-3000:]
    assert st["counts"]["finished"] == 15
    metrics = client.results(study_id, artifacts)
    order = [r["candidate"] for r in metrics["ranking"]]
    assert order[0] == "helpful", order
    base = metrics["baseline"]["predicted"]
    by = {r["candidate"]: r for r in metrics["ranking"]}
    assert by["offdomain"]["predicted"] < base and by["noisy"]["predicted"] < base
    # the CLI writes the same metrics.json as `workbench run`
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "workers.cli", "results", study_id, "--out", str(out)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "REDIS_URL": REDIS_URL},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "metrics.json").read_text())["ranking"] == metrics["ranking"]
    # progress was recorded while training: loss points in the event log
    trained = {r["key"] for r in left_out}
    run = next(r for r in JobStore(redis).study_runs(study_id) if r["key"] in trained and r["arm"] == "helpful")
    events = JobStore(redis).events(run["id"])
    assert any(e["kind"] == "loss" for e in events) and any("finished" in e.get("message", "") for e in events)

    # re-submitting the finished study: every run is cached and so is its ranking: finished at
    # submit, with no job at all (the workers are stopped to prove it)
    workers.stop_all()
    jobs_before = set(redis.scan_iter("rq:job:*"))
    again = client.submit(redis, spec)
    assert set(redis.scan_iter("rq:job:*")) == jobs_before
    recs = JobStore(redis).study_runs(again)
    assert all(r["status"] == "finished" and r["cached"] in (1, "1", True) for r in recs)
    st = client.wait(redis, again, timeout=5, poll=0.05)
    assert st["study"]["status"] == "finished" and st["study"]["reused_ranking"] == study_id
    reused = client.results(again, artifacts)
    assert reused["ranking"] == metrics["ranking"] and reused["study_id"] == again
    assert reused["reused"]["from_study"] == study_id and all(r["cached"] for r in reused["runs"])
    assert all(Path(p).is_file() and again in p for p in reused["files"]["scaling_chart"])


def test_bad_specs_and_data_enqueue_nothing(redis, artifacts, tmp_path):
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("text,label\nhello,billing\nbye,weather\n")
    with pytest.raises(DataError, match="weather"):
        client.submit(redis, tiny_spec(candidates=[{"path": str(bad_csv), "name": "bad"}]))
    with pytest.raises(SourceError, match="missing.jsonl"):
        client.submit(redis, tiny_spec(candidates=[{"path": str(tmp_path / "missing.jsonl"), "name": "m"}]))
    with pytest.raises(SubmitError, match="backend"):
        client.submit(redis, tiny_spec(), SubmitOptions(backend="cloud"))
    with pytest.raises(SubmitError, match="run_timeout"):
        client.submit(redis, tiny_spec(), SubmitOptions(run_timeout=1))
    assert _wb_keys(redis) == []
    assert Queue("gpu", connection=redis).count == 0 and Queue("default", connection=redis).count == 0


def test_cancel_queued_run_and_study_still_ranks(redis, workers, artifacts):
    study_id = client.submit(redis, tiny_spec(sizes=[40, 80]))
    store = JobStore(redis)
    victim = store.study_runs(study_id)[3]  # a helpful run
    assert client.cancel(redis, victim["id"]) == [victim["id"]]
    with pytest.raises(ValueError, match="only queued or running"):
        client.cancel(redis, victim["id"])
    workers.start("--burst")
    st = client.wait(redis, study_id, timeout=300)
    runs = {r["id"]: r for r in st["runs"]}
    assert runs[victim["id"]]["status"] == "canceled"
    assert st["counts"]["finished"] == 5
    assert artifacts.get_result(victim["key"]) is None
    assert client.results(study_id, artifacts)["ranking"]

    # retry the canceled run: it runs and the ranking is written again with it
    client.retry(redis, victim["id"])
    workers.start("--burst")
    _wait_for(lambda: (store.run(victim["id"]) or {}).get("status") == "finished", 300, "the retried run")
    assert artifacts.get_result(victim["key"]) is not None
    with pytest.raises(ValueError, match="only failed or canceled"):
        client.retry(redis, victim["id"])


def test_cancel_running_run_stops_within_seconds(redis, workers, artifacts):
    long = dict(tiny_spec().training.model_dump(), min_steps=20000)
    study_id = client.submit(
        redis,
        tiny_spec(
            sizes=[40], candidates=[{"catalog": "demo/helpful", "name": "helpful", "max_rows": 100}], training=long
        ),
    )
    store = JobStore(redis)
    workers.start()
    run = _wait_for(
        lambda: next(
            (r for r in store.study_runs(study_id) if r.get("status") == "running" and int(r.get("step") or 0) > 0),
            None,
        ),
        180,
        "a run to train",
    )
    t0 = time.monotonic()
    client.cancel(redis, run["id"])
    _wait_for(
        lambda: (
            not store.is_alive(run["id"])
            and any(
                "canceled" in e.get("message", "") and "stopped" in e.get("message", "")
                for e in store.events(run["id"])
            )
        ),
        30,
        "the run to stop",
    )
    stopped_after = time.monotonic() - t0
    assert stopped_after < 10, stopped_after
    assert store.run(run["id"])["status"] == "canceled"
    assert artifacts.get_result(run["key"]) is None
    client.cancel(redis, study_id)  # the rest of the study
    st = client.wait(redis, study_id, timeout=120)
    assert st["study"]["status"] == "canceled"
    assert st["counts"]["running"] == 0 and st["counts"]["queued"] == 0


def test_failed_run_retried_automatically_then_by_hand(redis, workers, artifacts):
    study_id = client.submit(
        redis, tiny_spec(sizes=[40], candidates=[{"catalog": "demo/helpful", "name": "helpful", "max_rows": 100}])
    )
    prepared = artifacts.prepared_dir(study_id) / "prepared.json"
    hidden = prepared.with_suffix(".hidden")
    prepared.rename(hidden)  # every attempt fails: the data is gone
    workers.start("--burst")
    st = client.wait(redis, study_id, timeout=180)
    failed = [r for r in st["runs"] if r["status"] == "failed"]
    assert len(failed) == 2 and all("prepared" in r["error"] for r in failed)
    assert all(int(r["attempts"]) == 1 + client.RUN_RETRIES for r in failed)  # bounded automatic retries
    hidden.rename(prepared)
    for r in failed:
        client.retry(redis, r["id"])
    workers.start("--burst")
    _wait_for(lambda: all(r["status"] == "finished" for r in JobStore(redis).study_runs(study_id)), 240, "retried runs")


def test_sigkill_worker_mid_run_is_requeued_and_nothing_is_lost_or_duplicated(redis, workers, artifacts):
    long = dict(tiny_spec().training.model_dump(), min_steps=300)
    study_id = client.submit(redis, tiny_spec(sizes=[40], training=long))
    store = JobStore(redis)
    first = workers.start()
    victim = _wait_for(
        lambda: next(
            (r for r in store.study_runs(study_id) if r.get("status") == "running" and int(r.get("step") or 0) > 0),
            None,
        ),
        180,
        "a run to train",
    )
    workers.kill(first)  # the worker and its work horse, no chance to say goodbye
    t_kill = time.monotonic()
    workers.start()
    _wait_for(
        lambda: (
            (store.run(victim["id"]) or {}).get("phase") == "requeued"
            or int((store.run(victim["id"]) or {}).get("attempts") or 0) >= 2
        ),
        120,
        "the killed run to be detected and requeued",
    )
    requeued_after = time.monotonic() - t_kill
    _wait_for(
        lambda: int((store.run(victim["id"]) or {}).get("attempts") or 0) >= 2, 240, "the killed run to start again"
    )
    st = client.wait(redis, study_id, timeout=600)
    assert st["study"]["status"] == "finished", workers.logs()[-3000:]
    assert st["counts"]["finished"] == 3
    keys = [r["key"] for r in st["runs"]]
    for key in keys:  # one result per run, none lost
        assert (artifacts.run_dir(key) / "result.json").is_file()
    assert sorted(p.parent.name for p in (artifacts.root / "runs").glob("*/result.json")) == sorted(keys)
    assert requeued_after < 90, requeued_after


def test_embedded_redis_keeps_queued_jobs_across_a_restart(tmp_path, artifacts, monkeypatch):
    folder = tmp_path / "redis"
    server = EmbeddedRedis(folder).start()
    try:
        conn = Redis.from_url(server.url)
        study_id = client.submit(conn, tiny_spec(sizes=[40]))
        queued = Queue("gpu", connection=conn).count
        assert queued == 3
    finally:
        server.stop()
    server = EmbeddedRedis(folder, port=server.port).start()
    try:
        conn = Redis.from_url(server.url)
        assert Queue("gpu", connection=conn).count == queued
        assert JobStore(conn).study(study_id)["status"] == "queued"
        env = {**os.environ, "REDIS_URL": server.url, "ARTIFACTS_DIR": str(artifacts.root)}
        subprocess.run(
            [sys.executable, "-m", "workers.cli", "worker", "--burst"],
            cwd=PROJECT_ROOT,
            env=env,
            timeout=300,
            check=True,
            capture_output=True,
        )
        assert client.study_status(conn, study_id)["counts"]["finished"] == 3
    finally:
        server.stop()


def test_reindex_rebuilds_records_from_artifacts_after_a_flush(redis, workers, artifacts):
    study_id = client.submit(redis, tiny_spec(sizes=[40]))
    workers.start("--burst")
    client.wait(redis, study_id, timeout=300)
    before = client.study_status(redis, study_id)
    redis.flushdb()
    assert client.reindex(redis, artifacts) == [study_id]
    after = client.study_status(redis, study_id)
    assert after["study"]["status"] == "finished"
    assert [(r["arm"], r["size"], r["status"], r["metrics"]) for r in after["runs"]] == [
        (r["arm"], r["size"], r["status"], r["metrics"]) for r in before["runs"]
    ]
    assert after["study"]["ranking"] == before["study"]["ranking"]
    assert client.reindex(redis, artifacts) == []  # idempotent


def test_refine_runs_the_top_two_at_twice_the_largest_size_ranks_again_and_survives_a_reindex(
    redis, workers, artifacts
):
    study_id = client.submit(redis, tiny_spec(sizes=[40]))
    with pytest.raises(client.RefineError, match="refine a finished study"):
        client.refine(redis, study_id)  # still queued
    workers.start("--burst")
    client.wait(redis, study_id, timeout=300)
    first = json.loads((artifacts.study_dir(study_id) / "metrics.json").read_text())
    top_two = [r["candidate"] for r in sorted(first["ranking"], key=lambda r: r["rank"])][:2]
    assert first["decision"]["proposal"] == dict(
        first["decision"]["proposal"], size=80, arms=top_two, seeds=[0], runs=2
    )
    if not first["decision"]["inconclusive"]:
        with pytest.raises(client.RefineError, match="is settled; refine it anyway with force"):
            client.refine(redis, study_id)
    ids = client.refine(redis, study_id, force=True)
    assert len(ids) == 2 and client.study_status(redis, study_id)["study"]["phase"] == "running"
    workers.start("--burst")
    st = client.wait(redis, study_id, timeout=300)
    assert st["study"]["status"] == "finished" and st["counts"]["finished"] == 5
    after = json.loads((artifacts.study_dir(study_id) / "metrics.json").read_text())
    assert sorted(r["candidate"] for r in after["runs"] if r["size"] == 80) == sorted(top_two)
    assert after["decision"]["proposal"]["size"] == 160  # the next step is twice the new largest size
    with pytest.raises(client.RefineError, match="already has the proposed runs"):
        _refine_again(redis, artifacts, study_id)
    redis.flushdb()  # the refinement is in the artifacts store too: a reindex brings its runs back
    assert client.reindex(redis, artifacts) == [study_id]
    runs = JobStore(redis).study_runs(study_id)
    assert sorted((r["arm"], int(r["size"])) for r in runs if r["status"] == "finished") == sorted(
        [("baseline", 40), ("helpful", 40), ("offdomain", 40)] + [(a, 80) for a in top_two]
    )


def test_refine_from_the_cli_says_what_is_wrong(redis, redis_url, artifacts, monkeypatch, capsys):
    from workers.cli import main

    monkeypatch.setenv("REDIS_URL", redis_url)
    assert main(["refine", "st-nope"]) == 1
    assert "error: no study 'st-nope'; `workbench status` lists them" in capsys.readouterr().err
    study_id = client.submit(redis, tiny_spec(sizes=[40]))
    assert main(["refine", study_id, "--force"]) == 1
    assert f"error: study {study_id} is queued: refine a finished study (wait for it)" in capsys.readouterr().err


def _refine_again(redis, artifacts, study_id):
    """A second refine with the old proposal (as a second click on a stale page would send)."""
    metrics_file = artifacts.study_dir(study_id) / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics["decision"]["proposal"]["size"] = 80
    metrics_file.write_text(json.dumps(metrics))
    return client.refine(redis, study_id, force=True)


def test_a_result_written_twice_is_stored_once(artifacts):
    first = {"key": "run-x", "metrics": {"macro_f1": 0.5}}
    assert artifacts.put_result("run-x", first) is True
    assert artifacts.put_result("run-x", {"key": "run-x", "metrics": {"macro_f1": 0.7}}) is False
    assert artifacts.get_result("run-x") == first
    assert len(list(artifacts.run_dir("run-x").iterdir())) == 1


class _CountingConnection(RedisConnection):
    """A redis-py connection that counts what it sends: one write per round trip."""

    sent = 0

    def send_packed_command(self, command, check_health=True):
        _CountingConnection.sent += 1
        return super().send_packed_command(command, check_health)


def test_status_of_many_runs_reads_in_one_round_trip(redis_url):
    counting = Redis(connection_pool=ConnectionPool.from_url(redis_url, connection_class=_CountingConnection))
    store = JobStore(counting)
    runs = [
        {"id": f"st-big-r{i}", "index": i, "arm": "a", "size": 10, "seed": 0, "key": f"k{i}", "status": "queued"}
        for i in range(10_000)
    ]
    store.create_study("st-big", {"name": "big", "status": "queued"}, runs)
    store.study_runs("st-big")  # loads the script once
    _CountingConnection.sent = 0
    got = store.study_runs("st-big")
    assert len(got) == 10_000 and got[1234]["id"] == "st-big-r1234" and got[1234]["status"] == "queued"
    assert _CountingConnection.sent == 1  # one EVALSHA, not 10k HGETALLs


def test_refine_auto_adds_the_proposed_runs_itself_within_its_budget(redis, workers, artifacts):
    """`refine: auto` with room for one refinement (2 runs): one size is never settled, so it refines once."""
    study_id = client.submit(redis, tiny_spec(sizes=[40], refine="auto", refine_budget=3))
    workers.start("--burst")
    _wait_for(
        lambda: (
            (st := client.study_status(redis, study_id))["counts"]["finished"] == 5
            and st["study"].get("phase") == "done"
        ),
        300,
        "the study and its automatic refinement",
    )
    st = client.study_status(redis, study_id)
    refined = [r for r in st["runs"] if int(r["size"]) == 80]
    assert len({r["arm"] for r in refined}) == 2 and st["study"]["refined_runs"] == 2
    after = json.loads((artifacts.study_dir(study_id) / "metrics.json").read_text())
    # A second refinement (2 more runs) would pass the budget of 3: said, not done.
    assert ("refine_note" in st["study"]) == after["decision"]["inconclusive"]
    if after["decision"]["inconclusive"]:
        assert "would pass refine_budget 3 (2 used)" in st["study"]["refine_note"]
