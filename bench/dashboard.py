"""The dashboard's own costs: server-side render time of Jobs and Results with 10k runs, and Run -> first run.

Everything runs against a redis-server of its own (workers.redis_server.EmbeddedRedis on a free
loopback port), with WORKBENCH_HOME and ARTIFACTS_DIR in the scratch folder. Two measurements:

1. render: the Jobs and Results pages through streamlit.testing.v1.AppTest.from_file, each with
   ?study= set to a study of 10,000 runs. Jobs: a live study of 10,000 run records made with
   JobStore.create_study (finished with metrics, queued, failed with an error, canceled, and 100
   running with a liveness key and progress, so the stale-run check finds nothing to correct).
   Results: a finished study of 10,000 runs (3 arms x 5 sizes x 667 seeds, synthetic metrics)
   whose metrics.json, scaling.json/png come from the real core.study.summarize_study and
   write_study_outputs (as tests/test_app_jobs_results.py makes its finished study), with its
   Redis records (study hash + 10,000 finished run records) from workers.client.reindex.
   Times: the first at.run() of a fresh AppTest (cold: Streamlit caches empty in this process),
   then the median of RERUNS further at.run() calls (steady state). AppTest times the script run
   only, server-side: no websocket, no serialisation to a browser, no browser rendering.
2. run to first start: one idle `python -m workers.cli worker` (WORKBENCH_TORCH_THREADS=1); the
   Setup page through AppTest: "Load demo study" (setup.demo_fast), then "Run" (setup.run). From
   the Run click to the first run record with status "running" (JobStore.study_runs polled every
   50 ms in a thread started at the click), and the submit part alone (the AppTest run that
   handles the click: build the spec, client.submit = prepare the data, records, enqueue, then
   the page). ROUNDS rounds, each study canceled (client.cancel, force) and the queues emptied
   after it; the first round also prepares the demo data from scratch.

Run: python -m bench.dashboard   (a couple of minutes; most of it making the 10k-run study and the worker start)
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from pathlib import Path

from bench._common import Timer, own_redis_and_artifacts, print_table, setup_env, versions, write_result

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "app" / "screens"
RUNS = 10_000
RERUNS = 10
ROUNDS = 3
GOAL_MS = 300
POLL_S = 0.05
TIMEOUT = 120


def _metric(arm: str, size: int, seed: int) -> dict:
    step = math.log2(size / 40)
    slope = {"baseline": 0.05, "helpful": 0.12, "offdomain": -0.02}[arm]
    f1 = 0.30 + slope * step + 0.00001 * seed
    return {"macro_f1": f1, "accuracy": f1 + 0.05, "loss": 2.0 - 1.5 * slope * step - 0.00001 * seed}


def make_finished_study(artifacts) -> tuple:
    """A finished 10k-run study in the artifacts store: real summarize_study + write_study_outputs."""
    from core.artifacts import write_text
    from core.spec import dump_spec
    from core.study import summarize_study, write_study_outputs
    from tests.specs import tiny_spec

    sizes = [40, 80, 160, 320, 640]
    seeds = list(range(math.ceil(RUNS / (3 * len(sizes)))))
    spec = tiny_spec(name="results 10k", sizes=sizes, seeds=seeds)
    study_id = spec.study_id()
    results = []
    for seed in seeds:
        for arm in ("baseline", "helpful", "offdomain"):
            for size in sizes:
                if len(results) == RUNS:
                    break
                results.append(
                    {
                        "key": f"bench-{arm}-{size}-{seed}",
                        "arm": arm,
                        "size": size,
                        "seed": seed,
                        "model": spec.model,
                        "task": spec.task,
                        "metrics": _metric(arm, size, seed),
                        "train": {"steps": 4, "train_loss": 3.0},
                        "timings": {"train_seconds": 1.0, "total_seconds": 2.0},
                        "mixture": {"parts": [], "candidate_repetition": None if arm == "baseline" else 0.2},
                        "d0_share": None if arm == "baseline" else spec.d0_share,
                    }
                )
    summary = summarize_study(spec, results)
    summary["study_id"] = study_id
    try:
        write_study_outputs(summary, artifacts.study_dir(study_id), spec)
        chart_max_rows_error = None
    except Exception as err:  # altair's 5,000-row limit on the scaling chart's points (found by this benchmark)
        import altair as alt

        chart_max_rows_error = f"{type(err).__name__}: {str(err).splitlines()[0]}"
        print(
            f"write_study_outputs failed on 10k runs ({chart_max_rows_error}); retrying with altair's max_rows off",
            flush=True,
        )
        summary = summarize_study(spec, results)
        summary["study_id"] = study_id
        alt.data_transformers.disable_max_rows()
        try:
            write_study_outputs(summary, artifacts.study_dir(study_id), spec)
        finally:
            alt.data_transformers.enable("default")
    write_text(artifacts.study_dir(study_id) / "spec.yaml", dump_spec(spec))
    return study_id, spec, results, chart_max_rows_error


def index_finished(redis, artifacts, study_id, spec, results) -> None:
    """The Redis records workers.client.reindex writes for a finished study (reindex itself needs the
    prepared data and plan_runs, which a synthetic 10k-run study does not have)."""
    from core.results import StudyResult
    from core.spec import dump_spec
    from workers import client
    from workers.store import JobStore

    metrics = client.results(study_id, artifacts)
    records = [
        {
            "id": client.run_id(study_id, i),
            "index": i,
            "arm": r["arm"],
            "size": r["size"],
            "seed": r["seed"],
            "key": r["key"],
            "status": "finished",
            "metrics": r["metrics"],
            "phase": "done",
            "cached": True,
        }
        for i, r in enumerate(results)
    ]
    record = {
        "name": spec.name,
        "spec": dump_spec(spec),
        "status": "finished",
        "phase": "done",
        "backend": "local",
        "primary_metric": spec.primary_metric,
        "target_size": spec.target_size,
        "reindexed": True,
        "ranking": StudyResult.from_dict(metrics).ranking_summary(),
        "results_dir": str(artifacts.study_dir(study_id)),
    }
    JobStore(redis).create_study(study_id, record, records)


def make_live_study(redis) -> str:
    """A live 10k-run study: 60 % finished, 25 % queued, 10 % failed, 4 % canceled, 100 running."""
    from workers.store import JobStore

    store = JobStore(redis)
    study_id = "bench-jobs-10k"
    now = time.time()
    arms = ("baseline", "helpful", "offdomain")
    runs = []
    for i in range(RUNS):
        rec = {
            "id": f"{study_id}-r{i}",
            "index": i,
            "arm": arms[i % 3],
            "size": 40 * 2 ** (i % 5),
            "seed": i // 15,
            "key": f"run-{study_id}-{i}",
            "attempts": 1,
            "worker": "bench-worker",
        }
        k = i % 100
        if i < 100:
            rec.update(status="running", phase="train", step=i, total=300, started_at=now - 60, loss=2.0)
        elif k < 60:
            rec.update(
                status="finished",
                phase="done",
                started_at=now - 600,
                finished_at=now - 500,
                metrics=_metric(rec["arm"], rec["size"], rec["seed"]),
            )
        elif k < 85:
            rec.update(status="queued", phase="queued", attempts=0)
        elif k < 95:
            rec.update(
                status="failed",
                phase="failed",
                error="CUDA out of memory (synthetic)",
                started_at=now - 600,
                finished_at=now - 590,
            )
        else:
            rec.update(status="canceled", phase="canceled", error="canceled by user")
        runs.append(rec)
    store.create_study(
        study_id,
        {
            "name": "jobs 10k",
            "status": "running",
            "phase": "running",
            "backend": "local",
            "submitted_by": "bench",
            "primary_metric": "macro_f1",
            "target_size": 10_000,
        },
        runs,
    )
    for r in runs[:100]:
        redis.set(f"wb:alive:{r['id']}", "1", ex=3600)  # the stale-run check finds them alive
    assert all(store.is_alive(r["id"]) for r in runs[:5])
    return study_id


WRITERS = 4
WRITES_PER_S = 50  # per writer: progress + loss event + liveness, far above a real run's rate
_WRITER = """
import random, sys, time
from redis import Redis
from workers.store import JobStore
store, ids, rate = JobStore(Redis.from_url(sys.argv[1])), sys.argv[2].split(","), float(sys.argv[3])
step = 0
while True:
    rid = random.choice(ids)
    step += 1
    store.progress(rid, "train", step % 300, 300, 2.0 - step % 300 / 300)
    store.touch_alive(rid)
    time.sleep(1 / rate)
"""


def page_reads(redis, study_id: str, n: int) -> dict:
    """JobStore.study_runs_page (first page, no filter) and the full JobStore.study_runs, alternating."""
    from workers.store import JobStore

    store = JobStore(redis)
    times: dict[str, list[float]] = {"page": [], "all": []}
    for _ in range(n):
        for name, read in (
            ("page", lambda: store.study_runs_page(study_id)),
            ("all", lambda: store.study_runs(study_id)),
        ):
            with Timer() as t:
                read()
            times[name].append(t.seconds * 1000)
    return {k: {"p50_ms": round(statistics.median(v), 1), "p95_ms": round(_p95(v), 1)} for k, v in times.items()}


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def under_writes(redis, url: str, study_id: str) -> dict:
    """The Jobs page's steady reruns and the page read while WRITERS processes write progress."""
    import subprocess

    from bench._common import python

    ids = ",".join(f"{study_id}-r{i}" for i in range(100))
    procs = [
        subprocess.Popen([python(), "-c", _WRITER, url, ids, str(WRITES_PER_S)], cwd=ROOT, start_new_session=True)
        for _ in range(WRITERS)
    ]
    try:
        time.sleep(3.0)  # the writers import and reach their rate
        before = sum(v["calls"] for v in redis.info("commandstats").values())
        with Timer() as t:
            page = time_page(PAGES / "jobs.py", study_id, reruns=2 * RERUNS)
            reads = page_reads(redis, study_id, 20)
        after = sum(v["calls"] for v in redis.info("commandstats").values())
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)
    page["steady_p95_ms"] = round(_p95(page["reruns_ms"]), 1)
    return {
        "writers": WRITERS,
        "writes_per_s_each": WRITES_PER_S,
        "jobs_page": page,
        "reads": reads,
        "redis_commands_per_s": round((after - before) / t.seconds),
    }


def time_page(path: Path, study_id: str, reruns: int = RERUNS) -> dict:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(path), default_timeout=TIMEOUT)
    at.query_params["study"] = study_id
    with Timer() as t:
        at.run()
    if at.exception:
        raise RuntimeError(f"{path.name}: {[e.value for e in at.exception]}")
    first = t.seconds * 1000
    times = []
    for _ in range(reruns):
        with Timer() as t:
            at.run()
        times.append(t.seconds * 1000)
    if at.exception:
        raise RuntimeError(f"{path.name}: {[e.value for e in at.exception]}")
    return {
        "first_ms": round(first, 1),
        "steady_median_ms": round(statistics.median(times), 1),
        "steady_min_ms": round(min(times), 1),
        "steady_max_ms": round(max(times), 1),
        "reruns_ms": [round(x, 1) for x in times],
        "goal_met_steady": statistics.median(times) <= GOAL_MS,
    }


def run_to_start(redis, url: str, artifacts_dir: Path, logs: Path) -> dict:

    from rq import Queue
    from streamlit.testing.v1 import AppTest

    from bench.queue import Workers, wait_idle, wait_no_workers
    from workers import client
    from workers.store import JobStore

    workers = Workers(url, logs)
    proc = workers.start(artifacts_dir)
    rounds = []
    try:
        waited = wait_idle(redis, 1)
        print(f"worker idle after {waited:.1f} s", flush=True)
        store = JobStore(redis)
        for n in range(ROUNDS):
            before = set(store.study_ids())
            at = AppTest.from_file(str(PAGES / "setup.py"), default_timeout=TIMEOUT)
            at.run()
            at.button(key="setup.demo_fast").click().run()
            assert not at.exception, at.exception
            found: dict = {}

            def poll(t0: float, before: set, found: dict) -> None:
                deadline = t0 + TIMEOUT
                while time.perf_counter() < deadline:
                    new = [s for s in store.study_ids() if s not in before]
                    if new:
                        found.setdefault("study", new[0])
                        if any(r.get("status") == "running" for r in store.study_runs(new[0])):
                            found["running_s"] = time.perf_counter() - t0
                            return
                    time.sleep(POLL_S)

            t0 = time.perf_counter()
            th = threading.Thread(target=poll, args=(t0, before, found), daemon=True)
            th.start()
            at.button(key="setup.run").click().run()
            submit_s = time.perf_counter() - t0
            assert not at.exception, at.exception
            assert not at.error, [e.value for e in at.error]
            th.join(TIMEOUT)
            if "running_s" not in found:
                raise TimeoutError(f"round {n}: no run started within {TIMEOUT} s")
            sid = found["study"]
            client.cancel(redis, sid, force=True)
            for q in (client.QUEUE_GPU, client.QUEUE_DEFAULT):
                Queue(q, connection=redis).empty()
            time.sleep(1.0)
            wait_idle(redis, 1)
            rounds.append(
                {
                    "study": sid,
                    "submit_ms": round(submit_s * 1000, 1),
                    "run_to_first_running_ms": round(found["running_s"] * 1000, 1),
                    "after_submit_ms": round((found["running_s"] - submit_s) * 1000, 1),
                }
            )
            print(f"round {n}: {rounds[-1]}", flush=True)
    finally:
        workers.stop(proc)
        wait_no_workers(redis)
    med = lambda k: round(statistics.median(r[k] for r in rounds), 1)  # noqa: E731
    return {
        "worker_idle_after_s": round(waited, 1),
        "rounds": rounds,
        "submit_ms_median": med("submit_ms"),
        "run_to_first_running_ms_median": med("run_to_first_running_ms"),
        "after_submit_ms_median": med("after_submit_ms"),
    }


def main() -> None:
    setup_env()
    server, redis, artifacts_dir, logs = own_redis_and_artifacts("dashboard")

    from core.artifacts import ArtifactStore

    try:
        artifacts = ArtifactStore(artifacts_dir)
        with Timer() as t:
            rid, spec, results, chart_error = make_finished_study(artifacts)
            index_finished(redis, artifacts, rid, spec, results)
        print(f"finished 10k-run study {rid} in {t.seconds:.1f} s", flush=True)
        jid = make_live_study(redis)
        metrics_mib = (artifacts.study_dir(rid) / "metrics.json").stat().st_size / 1024**2
        render = {"jobs": time_page(PAGES / "jobs.py", jid), "results": time_page(PAGES / "results.py", rid)}
        print_table(
            [
                [
                    k,
                    v["first_ms"],
                    v["steady_median_ms"],
                    v["steady_min_ms"],
                    v["steady_max_ms"],
                    "yes" if v["goal_met_steady"] else "NO",
                ]
                for k, v in render.items()
            ],
            ["page (10k runs)", "first ms", "steady p50 ms", "min ms", "max ms", f"<= {GOAL_MS} ms"],
        )
        reads = page_reads(redis, jid, 20)
        writes = under_writes(redis, server.url, jid)
        print(f"status reads, 10k runs: {reads}\nwhile {WRITERS} writers write: {writes}", flush=True)
        redis.flushdb()
        start = run_to_start(redis, server.url, artifacts_dir, logs)
        print_table(
            [
                [n, r["submit_ms"], r["after_submit_ms"], r["run_to_first_running_ms"]]
                for n, r in enumerate(start["rounds"])
            ]
            + [
                [
                    "median",
                    start["submit_ms_median"],
                    start["after_submit_ms_median"],
                    start["run_to_first_running_ms_median"],
                ]
            ],
            ["round", "submit (Run click AppTest run) ms", "then to running ms", "Run -> first running ms"],
        )
    finally:
        server.stop()
    write_result(
        "dashboard",
        {
            "params": {
                "runs": RUNS,
                "reruns": RERUNS,
                "rounds": ROUNDS,
                "poll_ms": POLL_S * 1000,
                "goal_ms": GOAL_MS,
                "results_metrics_json_mib": round(metrics_mib, 1),
            },
            "write_study_outputs_10k_error": chart_error,
            "render": render,
            "goal_met": all(v["goal_met_steady"] for v in render.values()),
            "status_reads": reads,
            "under_writes": writes,
            "run_to_start": start,
            "versions": versions("streamlit", "redis", "rq"),
        },
    )


if __name__ == "__main__":
    main()
