"""Load: 1,000 queued runs, 4 workers, the Jobs page polled the whole time.

Against a redis-server of its own (workers.redis_server.EmbeddedRedis, append-only file on) and 4
real `workbench worker` subprocesses (WORKBENCH_TORCH_THREADS=1). The study is 1,000 runs of
the built-in tiny model: 4 arms (baseline and 3 demo candidates) x 5 sizes (40-80) x 50 seeds.
Each run is the cheapest real run, so the queue and the store are what is measured, through
the same code path a real run takes:
- run_task, then execute_run: mixture, model load, TRL trainer;
- 1 optimizer step with batch 8 and 64 tokens;
- evaluation of a 6-row benchmark, then the result and manifest written to the artifacts store;
- every record, progress and liveness write to Redis.

Measured:
- jobs/s: 1,000 / (last run finished - first run started), and the mean seconds spent inside a
  run (execute_run's own timing). 1 - (sum of those) / (4 x wall) is the share of the workers'
  time spent outside the training code: queue, store, fork, imports.
- Jobs page latency: while the runs go, the Jobs page (?study=<id>) is rendered server-side
  through streamlit.testing.v1.AppTest every POLL_S seconds, in this process, on the same 2
  cores as the workers (as a dashboard beside its workers would be); p50/p95/max of at.run().
- Redis memory: INFO used_memory before the submit, after it (1,000 queued), its maximum over the
  run (sampled at each poll), after the last run and once the ranking is written. Also RQ's
  share, from MEMORY USAGE of the rq:* keys, and the records' share (wb:*).

Run: python -m bench.load   (about 5-15 minutes on this 2-core machine)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench._common import Timer, print_table, scratch_dir, setup_env, versions, write_result

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 4
POLL_S = 2.0
TIMEOUT = 3600


def mib(n: int) -> float:
    return round(n / 1024**2, 2)


def key_memory(redis, pattern: str) -> int:
    total = 0
    for k in redis.scan_iter(pattern, count=1000):
        total += redis.memory_usage(k, samples=0) or 0
    return total


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    home = setup_env()
    scratch = scratch_dir("load")
    import shutil

    for sub in ("redis", "artifacts", "logs"):
        shutil.rmtree(scratch / sub, ignore_errors=True)
    (scratch / "logs").mkdir(parents=True)

    from redis import Redis
    from streamlit.testing.v1 import AppTest

    from bench.faults import tiny
    from core.artifacts import ArtifactStore
    from workers import client
    from workers.redis_server import EmbeddedRedis
    from workers.store import JobStore

    server = EmbeddedRedis(scratch / "redis").start()
    artifacts = ArtifactStore(scratch / "artifacts")
    os.environ.update(REDIS_URL=server.url, ARTIFACTS_DIR=str(artifacts.root))
    env = {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_TORCH_THREADS": "1", "PYTHONPATH": str(ROOT)}
    redis = Redis.from_url(server.url)
    store = JobStore(redis)
    spec = tiny(
        name="load-1000",
        candidates=[{"catalog": f"demo/{c}", "name": c, "max_rows": 400} for c in ("helpful", "offdomain", "partial")],
        benchmark={"catalog": "demo/benchmark", "name": "benchmark", "max_rows": 6},
        sizes=[40, 50, 60, 70, 80],
        seeds=list(range(50)),
        training={"min_steps": 0, "max_steps": 1},
    )
    procs = []
    try:
        mem = {"before_submit": redis.info("memory")["used_memory"]}
        with Timer() as t_submit:
            sid = client.submit(redis, spec, client.SubmitOptions(submitted_by="bench"))
        n_runs = len(store.run_ids(sid))
        mem["after_submit"] = redis.info("memory")["used_memory"]
        mem["rq_keys_after_submit"] = key_memory(redis, "rq:*")
        mem["wb_keys_after_submit"] = key_memory(redis, "wb:*")
        print(f"submitted {n_runs} runs in {t_submit.seconds:.1f} s; Redis {mib(mem['after_submit'])} MiB", flush=True)

        for i in range(WORKERS):
            out = open(scratch / "logs" / f"worker-{i}.log", "w")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "workers.cli", "worker", "--name", f"load-{i}"],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        at = AppTest.from_file(str(ROOT / "app" / "screens" / "jobs.py"), default_timeout=120)
        at.query_params["study"] = sid
        latencies, peak, samples = [], mem["after_submit"], []
        deadline = time.monotonic() + TIMEOUT
        finished_at = None
        while time.monotonic() < deadline:
            with Timer() as t:
                at.run()
            if at.exception:
                raise RuntimeError([e.value for e in at.exception])
            runs = store.study_runs(sid)
            done = sum(r.get("status") in ("finished", "failed", "canceled") for r in runs)
            used = redis.info("memory")["used_memory"]
            peak = max(peak, used)
            if any(r.get("status") != "queued" for r in runs):
                latencies.append(t.seconds * 1000)
            samples.append(
                {
                    "t": round(time.monotonic(), 1),
                    "done": done,
                    "page_ms": round(t.seconds * 1000, 1),
                    "used_memory": used,
                }
            )
            if done == n_runs and finished_at is None:
                finished_at = time.monotonic()
                mem["after_last_run"] = used
            study = store.study(sid) or {}
            if finished_at and study.get("phase") == "done":
                break
            time.sleep(POLL_S)
        st = client.study_status(redis, sid)
        runs = st["runs"]
        starts = [float(r["started_at"]) for r in runs if r.get("started_at")]
        ends = [float(r["finished_at"]) for r in runs if r.get("finished_at")]
        mem["after_ranking"] = redis.info("memory")["used_memory"]
        mem["peak_sampled"] = peak
        mem["rq_keys_after_ranking"] = key_memory(redis, "rq:*")
        mem["wb_keys_after_ranking"] = key_memory(redis, "wb:*")
        wall = (max(ends) - min(starts)) if starts and ends else None
        in_run = [float(r["seconds"]) for r in runs if r.get("seconds") not in (None, "")]
        result = {
            "runs": n_runs,
            "workers": WORKERS,
            "status": st["study"].get("status"),
            "counts": st["counts"],
            "submit_s": round(t_submit.seconds, 2),
            "wall_first_start_to_last_finish_s": round(wall, 1) if wall else None,
            "runs_per_s": round(n_runs / wall, 2) if wall else None,
            "mean_seconds_inside_run": round(statistics.mean(in_run), 3) if in_run else None,
            "share_outside_training_code": round(1 - sum(in_run) / (WORKERS * wall), 3) if wall and in_run else None,
            "jobs_page_ms": {
                "polls": len(latencies),
                "p50": round(statistics.median(latencies), 1),
                "p95": round(percentile(latencies, 0.95), 1),
                "max": round(max(latencies), 1),
            }
            if latencies
            else None,
            "redis_memory_mib": {k: mib(v) for k, v in mem.items()},
            "redis_bytes_per_run": {
                "after_submit": round((mem["after_submit"] - mem["before_submit"]) / n_runs),
                "after_ranking": round((mem["after_ranking"] - mem["before_submit"]) / n_runs),
            },
            "result_files": len(list((artifacts.root / "runs").glob("*/result.json"))),
            "samples": samples,
            "versions": versions("rq", "redis", "streamlit"),
        }
    finally:
        from workers.cli import stop_processes

        stop_processes(procs, timeout=60)
        server.stop()
    print_table(
        [
            [
                result["runs"],
                result["workers"],
                result["runs_per_s"],
                result["mean_seconds_inside_run"],
                result["share_outside_training_code"],
                result["jobs_page_ms"]["p50"],
                result["jobs_page_ms"]["p95"],
                result["redis_memory_mib"]["after_submit"],
                result["redis_memory_mib"]["peak_sampled"],
                result["result_files"],
            ]
        ],
        [
            "runs",
            "workers",
            "runs/s",
            "s inside a run",
            "share outside",
            "Jobs p50 ms",
            "Jobs p95 ms",
            "Redis MiB queued",
            "Redis MiB peak",
            "result files",
        ],
    )
    write_result("load", result)


if __name__ == "__main__":
    main()
