"""Fault suites: a study always finishes, with no lost and no duplicated result.

Everything runs against a redis-server of its own (workers.redis_server.EmbeddedRedis: loopback,
append-only file with fsync every second, as `workbench up` starts it) and real `workbench worker`
subprocesses with WORKBENCH_TORCH_THREADS=1 and WORKBENCH_ALIVE_TTL=6 (a dead worker's run is
requeued ~9-14 s after it went silent instead of ~30-35 s with the default 20: same code, shorter wait).
Killed workers are started again at once under a new name, as a supervisor
(compose's `restart: unless-stopped`) would.

1. worker kills: one study of 24 runs of the built-in tiny model (tests/specs.py tiny_spec, sizes
   40-320, seeds 0 and 1, 120 optimizer steps per run) on 2 workers. Ten times, a run that is
   training (step >= 1) and was not killed before gets its worker and work horse SIGKILLed. Per
   kill: seconds from the kill to the run back in the queue (its record requeued by the reaper).
2. Redis restart: a study of 200 runs (4 arms x 2 sizes x 25 seeds, 1 optimizer step, 20
   benchmark rows) submitted with no worker running; 2 s later redis-server is SIGKILLed (no
   shutdown, so only what the append-only file holds survives) and started again on its files.
   Queue length, record count and a digest of every `wb:*` and `rq:*` key compared before and
   after; then 4 workers run it.
3. Redis restart while busy: a study of 150 runs (3 arms x 2 sizes x 50 seeds, 30 steps) on 4
   workers; once 60 runs have finished, redis-server is SIGKILLed, stays down 3 s, and is started
   again on its files. Workers and running runs must ride it out.
4. submitter kills: the dashboard's client API (`workers.client.submit`, the call the Setup
   page's Run button makes) in a subprocess, SIGKILLed at a random moment of its submit: first a
   uniform delay over one measured submit's length, then "the instant the study appears in Redis"
   (the parent polls Redis every millisecond and kills on sight) to land inside the short window
   where records exist and jobs are being enqueued. The Redis state each kill left is classified
   (nothing, records only, run jobs only, everything but the final status, complete). Then 2
   workers start; a submit lock that expired (60 s) lets a worker finish each half-submitted study.

5. dashboard kills: the real dashboard (`workbench dashboard`) in headless Chromium: Setup ->
   Load demo study -> Validate & preview -> Run, and the Streamlit server's process group
   SIGKILLed 0.05 to 2.5 s after the click; each kill's Redis state classified as above; then 2
   workers run whatever studies exist (the fast demo: 15 runs each, sharing run keys).

After each suite, an audit: every study finished (status finished, metrics.json written), every
run finished, exactly one result.json per run key and one per planned run (no lost result; a
result is stored once, first write wins), nothing left in any RQ queue, failed or
started registry, and no study left in `wb:submitting`.

Run: python -m bench.faults [SUITE ...]   (all five: about 20-30 minutes on this 2-core machine)
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench._common import Timer, print_table, scratch_dir, setup_env, versions, write_result

ROOT = Path(__file__).resolve().parent.parent
ALIVE_TTL = 6
KILLS = 10
QUEUED = 200
RANDOM_SUBMIT_KILLS = 12
ON_SIGHT_SUBMIT_KILLS = 8
SEED = 20261122


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Fleet:
    """Worker subprocesses, each in its own session so one can be SIGKILLed with its work horse."""

    def __init__(self, env: dict, logs: Path):
        self.env, self.logs = env, logs
        self.procs: dict[str, subprocess.Popen] = {}
        self.started = 0

    def start(self, n: int = 1) -> list[str]:
        names = []
        for _ in range(n):
            name = f"w{self.started}"
            self.started += 1
            out = open(self.logs / f"{name}.log", "w")
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "workers.cli", "worker", "--name", name],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            names.append(name)
        return names

    def kill(self, name: str) -> None:
        import psutil

        proc = self.procs.pop(name)
        tree = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        from workers.cli import stop_processes

        stop_processes(list(self.procs.values()), timeout=30)
        self.procs.clear()


def tiny(**over):
    from tests.specs import TINY_TRAINING, tiny_spec

    training = dict(TINY_TRAINING, **over.pop("training", {}))
    return tiny_spec(training=training, **over)


def audit(redis, artifacts, study_ids: list[str]) -> dict:
    """The invariants every suite ends with."""
    from rq import Queue
    from rq.registry import FailedJobRegistry, StartedJobRegistry

    from workers.store import JobStore

    store = JobStore(redis)
    out = {
        "studies": len(study_ids),
        "finished_studies": 0,
        "planned_runs": 0,
        "finished_runs": 0,
        "distinct_keys": 0,
        "result_files_for_keys": 0,
        "missing_results": 0,
        "attempts_total": 0,
    }
    keys = set()
    for sid in study_ids:
        study = store.study(sid) or {}
        if (
            study.get("status") == "finished"
            and study.get("phase") == "done"
            and (artifacts.study_dir(sid) / "metrics.json").is_file()
        ):
            out["finished_studies"] += 1
        runs = store.study_runs(sid)
        out["planned_runs"] += len(runs)
        out["finished_runs"] += sum(r.get("status") == "finished" for r in runs)
        out["attempts_total"] += sum(int(r.get("attempts") or 0) for r in runs)
        keys.update(r["key"] for r in runs)
    out["distinct_keys"] = len(keys)
    for key in keys:
        found = list((artifacts.root / "runs").glob(f"{key}/result.json"))
        out["result_files_for_keys"] += len(found)
        out["missing_results"] += not found
        if found:
            assert json.loads(found[0].read_text())["key"] == key
    out["result_files_total"] = len(list((artifacts.root / "runs").glob("*/result.json")))
    out["queued_jobs_left"] = sum(Queue(q, connection=redis).count for q in ("gpu", "default"))
    out["failed_jobs"] = sum(FailedJobRegistry(q, connection=redis).count for q in ("gpu", "default"))
    out["started_jobs_left"] = sum(StartedJobRegistry(q, connection=redis).count for q in ("gpu", "default"))
    out["submitting_left"] = len(store.submitting())
    out["ok"] = (
        out["finished_studies"] == len(study_ids)
        and out["finished_runs"] == out["planned_runs"]
        and out["missing_results"] == 0
        and out["result_files_for_keys"] == len(keys)
        and out["queued_jobs_left"] == 0
        and out["failed_jobs"] == 0
        and out["submitting_left"] == 0
    )
    return out


def wait_all(redis, study_ids: list[str], timeout: float) -> float:
    from workers import client

    with Timer() as t:
        for sid in study_ids:
            client.wait(redis, sid, timeout=max(1.0, timeout - t_elapsed(t)), poll=0.5)
    return t.seconds


def t_elapsed(t: Timer) -> float:
    return time.perf_counter() - t.start


# ---------------------------------------------------------------------------------------------


def worker_kills(redis, artifacts, fleet: Fleet) -> dict:
    from workers import client
    from workers.store import JobStore

    store = JobStore(redis)
    spec = tiny(name="faults-kills", sizes=[40, 80, 160, 320], seeds=[0, 1], training={"min_steps": 120})
    with Timer() as wall:
        sid = client.submit(redis, spec)
        slots = fleet.start(2)
        killed: dict[str, dict] = {}
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            runs = {r["id"]: r for r in store.study_runs(sid)}
            now = time.perf_counter()
            for rid, k in killed.items():  # back in the queue: requeued by a reaper, or already picked up again
                r = runs[rid]
                if "requeued_s" not in k and (
                    r.get("phase") == "requeued" or int(r.get("attempts") or 0) > k["attempt"]
                ):
                    k["requeued_s"] = round(now - k["at"], 2)
            if len(killed) < KILLS:
                victims = [
                    r
                    for r in runs.values()
                    if r.get("status") == "running"
                    and r.get("phase") == "training"
                    and int(r.get("step") or 0) >= 1
                    and r["id"] not in killed
                    and r.get("worker") in fleet.procs
                ]
                if victims:
                    v = victims[0]
                    fleet.kill(v["worker"])
                    killed[v["id"]] = {
                        "at": time.perf_counter(),
                        "attempt": int(v.get("attempts") or 1),
                        "step": int(v["step"]),
                        "total": int(v.get("total") or 0),
                        "worker": v["worker"],
                    }
                    log(f"kill {len(killed)}: {v['worker']} in run {v['id']} at step {v['step']}/{v.get('total')}")
                    slots += fleet.start(1)
            elif all("requeued_s" in k for k in killed.values()):
                break
            time.sleep(0.1)
        waited = wait_all(redis, [sid], timeout=1800)
    requeue = [k["requeued_s"] for k in killed.values() if "requeued_s" in k]
    result = {
        "study_runs": len(store.study_runs(sid)),
        "kills": len(killed),
        "requeued": len(requeue),
        "kill_to_requeue_s": {
            "p50": statistics.median(requeue),
            "max": max(requeue),
            "min": min(requeue),
            "all": requeue,
        }
        if requeue
        else None,
        "wall_s": round(wall.seconds, 1),
        "after_last_kill_s": round(waited, 1),
        "audit": audit(redis, artifacts, [sid]),
    }
    result["ranking"] = [r["candidate"] for r in client.results(sid, artifacts)["ranking"]]
    return result


def redis_restart(server, redis, artifacts, fleet: Fleet) -> dict:
    from rq import Queue

    from workers import client

    spec = tiny(
        name="faults-redis",
        candidates=[
            {"catalog": "demo/helpful", "name": "helpful", "max_rows": 400},
            {"catalog": "demo/offdomain", "name": "offdomain", "max_rows": 400},
            {"catalog": "demo/partial", "name": "partial", "max_rows": 400},
        ],
        benchmark={"catalog": "demo/benchmark", "name": "benchmark", "max_rows": 20},
        sizes=[40, 80],
        seeds=list(range(25)),
        training={"min_steps": 0, "max_steps": 1},
    )
    sid = client.submit(redis, spec)
    queued = Queue("gpu", connection=redis).count
    before = digest(redis)
    time.sleep(2.0)  # appendfsync everysec: what a crash 2 s after the submit keeps
    with Timer() as down:
        server.proc.kill()
        server.proc.wait()
        server.start()
    redis.connection_pool.disconnect()
    after = digest(redis)
    queued_after = Queue("gpu", connection=redis).count
    log(
        f"redis SIGKILLed and restarted in {down.seconds:.2f} s: {queued} -> {queued_after} queued, digest "
        f"equal: {before == after}"
    )
    fleet.start(4)
    waited = wait_all(redis, [sid], timeout=1800)
    return {
        "runs": queued,
        "queued_before": queued,
        "queued_after_restart": queued_after,
        "keys_before": before["keys"],
        "keys_after": after["keys"],
        "digest_equal": before == after,
        "restart_s": round(down.seconds, 2),
        "run_after_restart_s": round(waited, 1),
        "audit": audit(redis, artifacts, [sid]),
    }


def redis_restart_busy(server, redis, artifacts, fleet: Fleet) -> dict:
    """Redis SIGKILLed while 4 workers are training, down for 3 s, then started again on its files."""
    from workers import client
    from workers.store import JobStore

    store = JobStore(redis)
    spec = tiny(
        name="faults-redis-busy",
        benchmark={"catalog": "demo/benchmark", "name": "benchmark", "max_rows": 20},
        sizes=[40, 80],
        seeds=list(range(100, 125)),
        training={"min_steps": 0, "max_steps": 30},
    )
    sid = client.submit(redis, spec)
    fleet.start(4)
    while sum(r.get("status") == "finished" for r in store.study_runs(sid)) < 60:
        time.sleep(0.2)
    running = sum(r.get("status") == "running" for r in store.study_runs(sid))
    server.proc.kill()
    server.proc.wait()
    time.sleep(3.0)
    server.start()
    redis.connection_pool.disconnect()
    log(f"redis SIGKILLed with {running} runs running, back after 3 s")
    waited = wait_all(redis, [sid], timeout=1800)
    runs = store.study_runs(sid)
    return {
        "runs": len(runs),
        "running_at_kill": running,
        "down_s": 3.0,
        "run_after_restart_s": round(waited, 1),
        "runs_retried": sum(int(r.get("attempts") or 0) > 1 for r in runs),
        "audit": audit(redis, artifacts, [sid]),
    }


def digest(redis) -> dict:
    """A digest of every wb:* and rq:* key's content (type-aware and order-canonical: a hash or a
    set may come back from the append-only file in another internal order), so "kept" means every
    field of every key."""
    h = hashlib.sha256()
    keys = sorted(k for pattern in ("wb:*", "rq:*") for k in redis.scan_iter(pattern, count=1000))
    for k in keys:
        kind = redis.type(k)
        if kind == b"string":
            value = [redis.get(k)]
        elif kind == b"hash":
            value = sorted(redis.hgetall(k).items())
        elif kind == b"list":
            value = redis.lrange(k, 0, -1)
        elif kind == b"set":
            value = sorted(redis.smembers(k))
        elif kind == b"zset":
            value = redis.zrange(k, 0, -1, withscores=True)
        else:  # streams (RQ's results): entries with their ids
            value = redis.xrange(k) if kind == b"stream" else [kind]
        h.update(repr((k, kind, value)).encode())
    return {"keys": len(keys), "sha256": h.hexdigest()}


SUBMITTER = """
import sys, time
from redis import Redis
from bench.faults import tiny
from workers import client
spec = tiny(name="faults-submit", seeds=[0, 1])
redis = Redis.from_url(sys.argv[1])
print("go", flush=True)
t = time.perf_counter()
sid = client.submit(redis, spec, client.SubmitOptions(submitted_by="faults"))
print("done", sid, round(time.perf_counter() - t, 4), flush=True)
"""


def classify(redis, before: set[str]) -> tuple[str, str | None]:
    from rq.job import Job

    from workers import client
    from workers.store import JobStore

    store = JobStore(redis)
    new = [s for s in store.study_ids() if s not in before]
    if not new:
        return "nothing in Redis", None
    sid = new[0]
    study = store.study(sid) or {}
    if sid not in store.submitting():
        return "complete", sid
    if study.get("rank_job_id"):
        return "all jobs, not marked queued", sid
    if any(Job.exists(client.run_job_id(r), connection=redis) for r in store.run_ids(sid)):
        return "run jobs, no fits or ranking", sid
    return "records only", sid


def submit_kills(redis, artifacts, fleet: Fleet, env: dict, url: str) -> dict:
    from workers.store import JobStore

    store = JobStore(redis)
    rng = random.Random(SEED)

    def submitter():
        return subprocess.Popen(
            [sys.executable, "-c", SUBMITTER, url], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )

    calib = submitter()
    assert calib.stdout.readline().strip() == "go"
    line = calib.stdout.readline().split()
    calib.wait()
    submit_s = float(line[2])
    studies = [line[1]]
    log(f"one submit takes {submit_s:.3f} s")
    outcomes: dict[str, int] = {}
    trials = []
    for i in range(RANDOM_SUBMIT_KILLS + ON_SIGHT_SUBMIT_KILLS):
        before = set(store.study_ids())
        proc = submitter()
        assert proc.stdout.readline().strip() == "go"
        if i < RANDOM_SUBMIT_KILLS:
            mode, delay = "random", rng.uniform(0, submit_s)
            time.sleep(delay)
        else:
            mode, delay, t0 = "on sight", None, time.perf_counter()
            while not (set(store.study_ids()) - before) and proc.poll() is None:
                time.sleep(0.001)
            delay = time.perf_counter() - t0
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kind, sid = classify(redis, before)
        outcomes[kind] = outcomes.get(kind, 0) + 1
        trials.append({"mode": mode, "delay_s": round(delay, 4), "state": kind})
        if sid:
            studies.append(sid)
        log(f"submit kill {i + 1} ({mode}, {delay:.3f} s): {kind}")
    half = [s for s in store.submitting()]
    fleet.start(2)
    with Timer() as t:
        while store.submitting():
            time.sleep(0.5)
            if t_elapsed(t) > 300:
                break
    resumed_s = t_elapsed(t)
    waited = wait_all(redis, studies, timeout=1800)
    orphans = (
        [p.name for p in (artifacts.root / "prepared").iterdir() if p.name not in set(store.study_ids())]
        if (artifacts.root / "prepared").is_dir()
        else []
    )
    return {
        "submit_s": submit_s,
        "kills": len(trials),
        "states": outcomes,
        "trials": trials,
        "half_submitted": len(half),
        "resumed_within_s": round(resumed_s, 1),
        "run_after_s": round(waited, 1),
        "prepared_folders_without_study": len(orphans),
        "audit": audit(redis, artifacts, studies),
    }


DASHBOARD_KILL_DELAYS = (0.05, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5)


def dashboard_kills(redis, artifacts, fleet: Fleet, env: dict) -> dict:
    """The real dashboard, driven in Chromium: Setup -> Load demo study -> Validate -> Run, and the
    Streamlit server SIGKILLed (its whole process group) a set delay after the Run click."""
    import socket
    import urllib.request

    from playwright.sync_api import sync_playwright

    from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, _settle
    from workers.store import JobStore

    store = JobStore(redis)
    trials, studies, outcomes = [], [], {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for delay in DASHBOARD_KILL_DELAYS:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            out = open(fleet.logs / f"dashboard-{port}.log", "w")
            proc = subprocess.Popen(
                [sys.executable, "-m", "workers.cli", "dashboard", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            url = f"http://127.0.0.1:{port}"
            for _ in range(240):
                try:
                    if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                        break
                except OSError:
                    time.sleep(0.5)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(url + "/")
            page.get_by_role("button", name="Load demo study").first.click()
            _settle(page)
            page.get_by_role("button", name="Validate & preview").first.click()
            _settle(page)
            page.get_by_text("The study is valid").first.wait_for()
            before = set(store.study_ids())
            page.get_by_role("button", name="Run", exact=True).first.click()
            time.sleep(delay)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            page.close()
            kind, sid = classify(redis, before)
            outcomes[kind] = outcomes.get(kind, 0) + 1
            trials.append({"delay_s": delay, "state": kind})
            if sid:
                studies.append(sid)
            log(f"dashboard killed {delay:.2f} s after Run: {kind}")
        browser.close()
    fleet.start(2)
    with Timer() as t:
        while store.submitting() and t_elapsed(t) < 300:
            time.sleep(0.5)
    resumed_s = t_elapsed(t)
    waited = wait_all(redis, studies, timeout=2400)
    return {
        "kills": len(trials),
        "states": outcomes,
        "trials": trials,
        "resumed_within_s": round(resumed_s, 1),
        "run_after_s": round(waited, 1),
        "audit": audit(redis, artifacts, studies),
    }


def main() -> None:
    from redis import Redis

    from core.artifacts import ArtifactStore
    from workers.redis_server import EmbeddedRedis

    home = setup_env()
    scratch = scratch_dir("faults")
    results = {"versions": versions("rq", "redis"), "alive_ttl_s": ALIVE_TTL}
    suites = sys.argv[1:] or ["worker_kills", "redis_restart", "redis_restart_busy", "submit_kills", "dashboard_kills"]
    for suite in suites:
        folder = scratch / suite
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        (folder / "logs").mkdir(parents=True)
        server = EmbeddedRedis(folder / "redis").start()
        artifacts = ArtifactStore(folder / "artifacts")
        env = {
            **os.environ,
            "REDIS_URL": server.url,
            "ARTIFACTS_DIR": str(artifacts.root),
            "WORKBENCH_HOME": str(home),
            "WORKBENCH_TORCH_THREADS": "1",
            "WORKBENCH_ALIVE_TTL": str(ALIVE_TTL),
            "PYTHONPATH": str(ROOT),
        }
        os.environ["ARTIFACTS_DIR"] = str(artifacts.root)
        redis = Redis.from_url(server.url)
        fleet = Fleet(env, folder / "logs")
        log(f"suite {suite}: Redis {server.url}, files in {folder}")
        try:
            if suite == "worker_kills":
                results[suite] = worker_kills(redis, artifacts, fleet)
            elif suite == "redis_restart":
                results[suite] = redis_restart(server, redis, artifacts, fleet)
            elif suite == "redis_restart_busy":
                results[suite] = redis_restart_busy(server, redis, artifacts, fleet)
            elif suite == "dashboard_kills":
                results[suite] = dashboard_kills(redis, artifacts, fleet, env)
            else:
                results[suite] = submit_kills(redis, artifacts, fleet, env, server.url)
        finally:
            fleet.stop_all()
            server.stop()
        log(f"{suite}: {json.dumps(results[suite]['audit'])}")

    print()
    rows = []
    if set(suites) != {"worker_kills", "redis_restart", "redis_restart_busy", "submit_kills", "dashboard_kills"}:
        write_result("faults-" + "-".join(suites), results, command="python -m bench.faults " + " ".join(suites))
        sys.exit(0 if all(results[s]["audit"]["ok"] for s in suites) else 1)
    k = results["worker_kills"]
    rows.append(
        [
            "10 worker SIGKILLs mid-run",
            f"{k['kills']} kills, {k['requeued']} requeued, kill->requeue p50 {k['kill_to_requeue_s']['p50']} "
            f"s max {k['kill_to_requeue_s']['max']} s",
            k["audit"]["ok"],
            k["audit"]["finished_runs"],
            k["audit"]["result_files_for_keys"],
        ]
    )
    r = results["redis_restart"]
    rows.append(
        [
            "Redis SIGKILL + restart, 200 queued",
            f"{r['queued_before']} -> {r['queued_after_restart']} queued, digest equal {r['digest_equal']}",
            r["audit"]["ok"],
            r["audit"]["finished_runs"],
            r["audit"]["result_files_for_keys"],
        ]
    )
    b = results["redis_restart_busy"]
    rows.append(
        [
            "Redis SIGKILL while training, 3 s down",
            f"{b['running_at_kill']} running at the kill, {b['runs_retried']} runs retried",
            b["audit"]["ok"],
            b["audit"]["finished_runs"],
            b["audit"]["result_files_for_keys"],
        ]
    )
    s = results["submit_kills"]
    rows.append(
        [
            "submitter SIGKILLs",
            f"{s['kills']} kills: " + ", ".join(f"{v} {k}" for k, v in s["states"].items()),
            s["audit"]["ok"],
            s["audit"]["finished_runs"],
            s["audit"]["result_files_for_keys"],
        ]
    )
    d = results["dashboard_kills"]
    rows.append(
        [
            "dashboard SIGKILLed after Run",
            f"{d['kills']} kills: " + ", ".join(f"{v} {k}" for k, v in d["states"].items()),
            d["audit"]["ok"],
            d["audit"]["finished_runs"],
            d["audit"]["result_files_for_keys"],
        ]
    )
    print_table(rows, ["suite", "faults", "all finished, none lost or duplicated", "runs finished", "result files"])
    write_result("faults", results)
    if not all(results[s]["audit"]["ok"] for s in suites):
        sys.exit(1)


if __name__ == "__main__":
    main()
