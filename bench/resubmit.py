"""Re-submitting a finished study: cold, warm, without a worker, and from the Setup page.

Everything runs against a redis-server of its own (workers.redis_server.EmbeddedRedis) and a fresh
artifacts folder; the study is catalog/demo_study_fast.yaml (15 runs). Times are wall clock from
`client.submit` to `client.wait` returning (ranking written, polled every 20 ms):
1. cold: nothing cached, one idle `workbench worker` (WORKBENCH_TORCH_THREADS=1) trains every run;
2. warm: the same spec again, ROUNDS times, the worker idle: every run and the ranking are cached;
3. the same with the stored fits and rankings deleted first: what a resubmit cost before rankings
   were cached (the worker recomputes the fits and the ranking);
4. warm with no worker running at all;
5. the Setup page through streamlit's AppTest (server-side script runs, no browser): "Load demo
   study", then "Validate & preview" and "Run", each click's script run timed; ROUNDS rounds, each
   a new page session in this process (as the dashboard serves sessions).
Submits in rounds 2-5 run in this process, so its in-memory source cache (core/source_cache.py)
is warm after the first: that is the dashboard's situation, one long-lived process.

Run: python -m bench.resubmit   (about 6 minutes, most of it the cold study)
"""

from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path

from bench._common import Timer, own_redis_and_artifacts, print_table, setup_env, versions, write_result

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "catalog" / "demo_study_fast.yaml"
PAGES = ROOT / "app" / "screens"
ROUNDS = 3
POLL_S = 0.02
GOAL_S = 1.0


def _study_jobs(redis, study_id: str) -> int:
    """RQ jobs of the study (runs, fits, ranking), not their side keys (rq:job:<id>:dependents)."""
    return sum(1 for k in redis.scan_iter(match=f"rq:job:wb-*{study_id}*") if b":" not in k[len(b"rq:job:") :])


def once(redis, spec, artifacts) -> dict:
    from workers import client

    t0 = time.perf_counter()
    with Timer() as t_submit:
        sid = client.submit(redis, spec, artifacts=artifacts)
    st = client.wait(redis, sid, timeout=3600, poll=POLL_S)
    return {
        "study_id": sid,
        "status": st["study"].get("status"),
        "submit_s": round(t_submit.seconds, 3),
        "submit_to_ranking_s": round(time.perf_counter() - t0, 3),
        "jobs": _study_jobs(redis, sid),
        "reused_ranking_from": st["study"].get("reused_ranking") or None,
        "runs_cached": sum(1 for r in st["runs"] if str(r.get("cached")) in ("1", "True")),
        "runs": len(st["runs"]),
    }


def setup_page(redis) -> list[dict]:
    """Load demo, Validate & preview, Run on the Setup page; each click's AppTest run timed."""
    from streamlit.testing.v1 import AppTest

    from workers.store import JobStore

    rounds = []
    for _ in range(ROUNDS):
        at = AppTest.from_file(str(PAGES / "setup.py"), default_timeout=600)
        at.run()
        at.button(key="setup.demo_fast").click().run()
        with Timer() as t_validate:
            at.button(key="setup.validate").click().run()
        assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
        with Timer() as t_run:
            at.button(key="setup.run").click().run()
        assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
        sid = at.session_state["setup.submitted"]
        study = JobStore(redis).study(sid) or {}
        rounds.append(
            {
                "study_id": sid,
                "validate_ms": round(t_validate.seconds * 1000, 1),
                "run_ms": round(t_run.seconds * 1000, 1),
                "status_after_run": study.get("status"),
                "jobs": _study_jobs(redis, sid),
            }
        )
        print(f"setup page: {rounds[-1]}", flush=True)
    return rounds


def main() -> dict:
    setup_env()
    server, redis, artifacts_dir, logs = own_redis_and_artifacts("resubmit")

    from bench.queue import Workers, wait_idle, wait_no_workers
    from core.artifacts import ArtifactStore
    from core.spec import load_spec

    artifacts = ArtifactStore(artifacts_dir)
    spec = load_spec(SPEC)
    workers = Workers(server.url, logs)
    try:
        worker = workers.start(artifacts_dir)
        wait_idle(redis, 1)
        cold = once(redis, spec, artifacts)
        print(f"cold: {cold}", flush=True)
        warm = [once(redis, spec, artifacts) for _ in range(ROUNDS)]
        for sub in ("rankings", "fits"):
            shutil.rmtree(artifacts_dir / sub, ignore_errors=True)
        recomputed = once(redis, spec, artifacts)
        print(f"warm: {warm}\nrecomputed: {recomputed}", flush=True)
        workers.stop(worker)
        wait_no_workers(redis)
        no_worker = [once(redis, spec, artifacts) for _ in range(ROUNDS)]
        page = setup_page(redis)
    finally:
        workers.stop_all()
        server.stop()
    return report(cold, warm, recomputed, no_worker, page)


def report(cold, warm, recomputed, no_worker, page) -> dict:
    med = lambda rows, k: round(statistics.median(r[k] for r in rows), 3)  # noqa: E731
    cases = {
        "cold (nothing cached, idle worker)": [cold],
        "warm, idle worker": warm,
        "warm, fits and ranking recomputed (their cache emptied), idle worker": [recomputed],
        "warm, no worker": no_worker,
    }
    print_table(
        [
            [name, len(rows), med(rows, "submit_s"), med(rows, "submit_to_ranking_s"), rows[0]["jobs"]]
            for name, rows in cases.items()
        ],
        ["case", "rounds", "submit s (median)", "submit to ranking s (median)", "jobs"],
    )
    warm_s = med(warm, "submit_to_ranking_s")
    print(f"\nwarm resubmit {warm_s} s (goal <= {GOAL_S} s: {'met' if warm_s <= GOAL_S else 'NOT met'})")
    result = {
        "what": "re-submitting the fast demo study: cold, warm (every run and the ranking cached), without a worker, "
        "and the Setup page's Validate and Run",
        "params": {"spec": str(SPEC.relative_to(ROOT)), "rounds": ROUNDS, "poll_s": POLL_S, "torch_threads": 1},
        "cold": cold,
        "warm": warm,
        "recomputed": recomputed,
        "no_worker": no_worker,
        "setup_page": page,
        "warm_median_s": warm_s,
        "no_worker_median_s": med(no_worker, "submit_to_ranking_s"),
        "setup_validate_ms_median": med(page, "validate_ms"),
        "setup_run_ms_median": med(page, "run_ms"),
        "goal_s": GOAL_S,
        "goal_met": warm_s <= GOAL_S,
        "versions": versions("rq", "redis", "streamlit"),
    }
    write_result("resubmit", result)
    return result


if __name__ == "__main__":
    main()
