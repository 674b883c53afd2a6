"""The job system's own costs: queue latency and throughput, status reads, and overhead on a run.

Everything runs against a redis-server of its own (workers.redis_server.EmbeddedRedis on a free
loopback port, append-only file on, as `workbench up` starts it) and real worker processes:
`python -m workers.cli worker` subprocesses (the workbench worker: a plain RQ Worker that has
imported the ML stack before it forks a work horse per job, plus the reaper), with
WORKBENCH_TORCH_THREADS=1. Five measurements:

1. latency: one idle worker; 50 jobs enqueued one at a time, each after the previous one's result
   is back. The job is `time.time` (a no-op that returns when it ran): enqueue -> RQ's started_at
   (both from RQ's job hash, set in the client and in the work horse), enqueue -> the function ran,
   and enqueue -> result seen by the client (RQ's result stream, XREAD BLOCK). 5 warm-up jobs first.
   For reference, the same with plain `rq.Worker` subprocesses that import nothing heavy.
2. throughput: 1,000 `workers.tasks.noop_task` jobs enqueued in one pipeline (Queue.enqueue_many)
   onto one idle worker, then onto two; jobs/s = 1,000 / (last job's ended_at - enqueue start).
   CPU seconds of each worker (with its reaped work horses) and of redis-server over the window,
   and the whole machine's busy share (/proc/stat), say what bound the rate. For reference, 300
   jobs through plain `rq.Worker` subprocesses, and a fork probe: fork + exit + wait in a process
   that has imported what the worker preloads vs one that has not.
3. status read for 10,000 runs: a study with 10,000 finished run records (what run_task leaves:
   status, phase, metrics JSON, worker, timings); p50 of 20 reads of JobStore.study_runs (one
   EVALSHA whose script returns the records as one JSON string) and of workers.client.study_status
   (the study hash, study_runs and the stale-run check); against LRANGE + 10,000 HGETALLs one round
   trip each, with the same decoding, and, for reference, the EVALSHA alone without decoding and a
   pipelined JobStore.runs(ids) (p50 of 3 reads each: they take a second or more apiece here).
   Server-side times from INFO commandstats.
4. overhead on one demo run: catalog/demo_study_fast.yaml, arm helpful, size 250 (300 optimizer
   steps, 600 benchmark rows). Through the queue: a study record with one run record, and
   `workers.tasks.run_task` enqueued on the `gpu` queue of an idle worker; wall = enqueue -> result
   back. In-process: `core.study.execute_run` of the same run in a fresh subprocess that has
   imported what the worker preloads (workers.worker.preload) and set 1 torch thread; wall = the
   call. Fresh ARTIFACTS_DIRs (one per side) so nothing is cached; round r uses seed r on both
   sides (a different run key, the same work). overhead = (queue wall - in-process wall) / queue wall.
   The queue side's own split (execute_run's seconds inside the job, RQ timestamps) is given too.
5. re-submitting a finished study: tests/specs.py tiny_spec(sizes=[40]) (3 runs) submitted and run
   once by a burst worker; then submitted again and timed from submit to client.wait returning
   (ranking written) with a burst worker started after submit, as `workbench submit` +
   `workbench worker --burst` would; and once more with an idle worker already running.

The machine is shared (2 cores): latencies and rates move with other processes' load; the ratios
(two workers over one, unpipelined over one script) are measured back to back in one run.

Run: python -m bench.queue   (5-7 minutes on this shared 2-core machine, most of it the no-op jobs
and the demo runs; the worker logs and Redis files go to the scratch folder)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench._common import Timer, print_table, python, scratch_dir, setup_env, versions, write_result

ROOT = Path(__file__).resolve().parent.parent
LATENCY_JOBS = 50
LATENCY_WARMUP = 5
THROUGHPUT_JOBS = 1000
RQ_THROUGHPUT_JOBS = 300  # the plain rq.Worker reference rows
STATUS_RUNS = 10_000
STATUS_READS = 20  # study_runs and study_status
REFERENCE_READS = 3  # the raw EVALSHA and the pipelined read
UNPIPELINED_READS = 3
DEMO_ARM, DEMO_SIZE = "helpful", 250
DEMO_ROUNDS = 2
WORKER_START_TIMEOUT = 180

RQ_WORKER = (
    "import sys\n"
    "from redis import Redis\n"
    "from rq import Queue, Worker\n"
    "r = Redis.from_url(sys.argv[1])\n"
    "Worker([Queue('default', connection=r)], connection=r).work(logging_level='WARNING')\n"
)


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def _ms(values: list[float]) -> dict:
    return {
        "p50_ms": round(1000 * statistics.median(values), 2),
        "p95_ms": round(1000 * _pct(values, 0.95), 2),
        "min_ms": round(1000 * min(values), 2),
        "max_ms": round(1000 * max(values), 2),
    }


class Workers:
    """Worker subprocesses started here, each in its own process group (with its work horses)."""

    def __init__(self, url: str, logs: Path):
        self.url, self.logs = url, logs
        self.procs: list[subprocess.Popen] = []

    def start(self, artifacts: Path, *, kind: str = "workbench", burst: bool = False) -> subprocess.Popen:
        env = {**os.environ, "REDIS_URL": self.url, "ARTIFACTS_DIR": str(artifacts), "WORKBENCH_TORCH_THREADS": "1"}
        if kind == "workbench":
            cmd = [python(), "-m", "workers.cli", "worker"] + (["--burst"] if burst else [])
        else:
            cmd = [python(), "-c", RQ_WORKER, self.url]
        log = open(self.logs / f"worker-{len(self.procs)}-{kind}.log", "w")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # RQ's warm shutdown
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)
            except ProcessLookupError:
                pass

    def stop_all(self) -> None:
        for p in self.procs:
            self.stop(p)


def wait_idle(redis, n: int, timeout: float = WORKER_START_TIMEOUT) -> float:
    """Block until n workers are registered and idle; returns the seconds waited."""
    from rq import Worker

    start = time.monotonic()
    while time.monotonic() - start < timeout:
        ws = Worker.all(connection=redis)
        if len(ws) >= n and all(w.get_state() == "idle" for w in ws):
            return time.monotonic() - start
        time.sleep(0.1)
    raise TimeoutError(f"{n} worker(s) not idle after {timeout:.0f} s")


def wait_no_workers(redis, timeout: float = 30) -> None:
    from rq import Worker

    deadline = time.monotonic() + timeout
    while Worker.all(connection=redis) and time.monotonic() < deadline:
        time.sleep(0.1)


_TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process plus those of its reaped children (a worker's work horses)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / _TICK


def proc_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs since boot, from /proc/stat."""
    vals = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = vals[3] + vals[4]
    return sum(vals) - idle, sum(vals)


class CpuWindow:
    """CPU seconds that some processes (and the whole machine) used between start and stop."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids

    def __enter__(self):
        self.before = {k: proc_cpu_seconds(p) for k, p in self.pids.items()}
        self.self_before = sum(os.times()[:2])
        self.machine_before = machine_ticks()
        return self

    def __exit__(self, *exc):
        self.used = {k: proc_cpu_seconds(p) - self.before[k] for k, p in self.pids.items()}
        self.used["bench process"] = sum(os.times()[:2]) - self.self_before
        busy, total = machine_ticks()
        self.machine_busy_share = (busy - self.machine_before[0]) / max(1, total - self.machine_before[1])
        return False


def wait_result(job, timeout: float):
    """The job's result as soon as it is written (RQ's result stream, XREAD BLOCK in 2 s slices:
    redis-py 8's default socket timeout is 5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        res = job.latest_result(timeout=2)
        if res is not None:
            return res
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job.id}: no result after {timeout:.0f} s")


# ------------------------------------------------------------------------------------------------
# 1. latency


def bench_latency(redis) -> dict:
    from rq import Queue

    q = Queue("default", connection=redis)
    rq_pickup, fn_ran, round_trip = [], [], []
    for i in range(LATENCY_WARMUP + LATENCY_JOBS):
        t0 = time.time()
        job = q.enqueue_call("time.time", result_ttl=600)
        res = wait_result(job, 30)
        t_back = time.time()
        if res is None or res.type != res.Type.SUCCESSFUL:
            raise RuntimeError(f"latency job {job.id} did not succeed: {res and res.exc_string}")
        job.refresh()
        if i < LATENCY_WARMUP:
            continue
        rq_pickup.append(job.started_at.timestamp() - job.enqueued_at.timestamp())
        fn_ran.append(float(res.return_value) - t0)
        round_trip.append(t_back - t0)
    return {
        "jobs": LATENCY_JOBS,
        "enqueue_to_rq_started_at": _ms(rq_pickup),
        "enqueue_to_function_ran": _ms(fn_ran),
        "enqueue_to_result_seen": _ms(round_trip),
    }


# ------------------------------------------------------------------------------------------------
# 2. throughput


def bench_throughput(redis, n_jobs: int, pids: dict[str, int]) -> dict:
    from rq import Queue
    from rq.job import Job
    from rq.registry import FailedJobRegistry, FinishedJobRegistry

    q = Queue("default", connection=redis)
    finished, failed = FinishedJobRegistry(queue=q), FailedJobRegistry(queue=q)
    before = finished.count
    datas = [Queue.prepare_data("workers.tasks.noop_task", args=(str(i),), result_ttl=600) for i in range(n_jobs)]
    with CpuWindow(pids) as cpu:
        t0 = time.time()
        jobs = q.enqueue_many(datas)
        t_enqueued = time.time()
        deadline = time.monotonic() + 600
        while finished.count - before < n_jobs:
            if failed.count:
                raise RuntimeError(f"{failed.count} no-op jobs failed")
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {finished.count - before}/{n_jobs} no-op jobs finished")
            time.sleep(0.05)
    fetched = Job.fetch_many([j.id for j in jobs], connection=redis)
    last_end = max(j.ended_at.timestamp() for j in fetched)
    first_start = min(j.started_at.timestamp() for j in fetched)
    workers = {j.worker_name for j in fetched}
    seconds = last_end - t0
    return {
        "jobs": n_jobs,
        "enqueue_seconds": round(t_enqueued - t0, 3),
        "seconds": round(seconds, 3),
        "jobs_per_s": round(n_jobs / seconds, 1),
        "first_started_after_s": round(first_start - t0, 3),
        "workers_that_ran_jobs": len(workers),
        "cpu_ms_per_job": {k: round(1000 * v / n_jobs, 2) for k, v in cpu.used.items()},
        # How many cores' worth of CPU the workers (with their horses) got over the window.
        "worker_cores_used": round(sum(v for k, v in cpu.used.items() if k.startswith("worker")) / seconds, 2),
        "machine_busy_share": round(cpu.machine_busy_share, 3),
    }


# ------------------------------------------------------------------------------------------------
# 3. status read


def _hiredis() -> bool:
    try:
        from redis.utils import HIREDIS_AVAILABLE
    except ImportError:
        return False
    return bool(HIREDIS_AVAILABLE)


def bench_status(redis) -> dict:
    from core.spec import dump_spec
    from tests.specs import tiny_spec
    from workers import client
    from workers.store import PREFIX, JobStore, _decode

    store = JobStore(redis)
    sid = "bench-status-10k"
    now = time.time()
    records = [
        {
            "id": f"{sid}-r{i}",
            "index": i,
            "arm": f"candidate-{i % 40}",
            "size": 1000 * (1 + (i // 40) % 5),
            "seed": i // 200,
            "key": f"run-{i:024x}",
            "status": "finished",
            "cached": False,
            "phase": "done",
            "attempts": 1,
            "worker": "gpu-host-3:41234",
            "pid": 41234,
            "host": "gpu-host-3",
            "job_id": f"wb-run-{sid}-r{i}",
            "step": 600,
            "total": 600,
            "loss": 0.4123,
            "steps": 300,
            "seconds": 21.37,
            "started_at": now - 60,
            "finished_at": now,
            "error": "",
            "metrics": {"macro_f1": 0.61234, "accuracy": 0.65432, "loss": 1.23456},
        }
        for i in range(STATUS_RUNS)
    ]
    with Timer() as t_create:
        store.create_study(
            sid,
            {
                "name": "status read benchmark",
                "spec": dump_spec(tiny_spec()),
                "status": "running",
                "phase": "running",
                "primary_metric": "macro_f1",
                "target_size": 200000,
                "backend": "local",
            },
            records,
        )
    ids = store.run_ids(sid)
    run_prefix = PREFIX + "run:"

    def timed(fn, n: int) -> list[float]:
        out = []
        for _ in range(n):
            with Timer() as t:
                got = fn()
            out.append(t.seconds)
            # The raw script reply is one JSON string (bytes); the other reads give 10k records.
            assert isinstance(got, bytes) or len(got) == STATUS_RUNS, len(got)
        return out

    def unpipelined() -> list[dict]:
        out = []
        for rid in store.run_ids(sid):
            h = redis.hgetall(run_prefix + rid)
            if h:
                out.append(_decode(h))
        return out

    script_raw = lambda: store._study_runs_script(keys=[PREFIX + f"study:{sid}:runs"], args=[run_prefix])  # noqa: E731
    store.study_runs(sid)  # registers the script (EVAL once, then EVALSHA)
    reply = script_raw()
    reply_bytes = len(reply) if isinstance(reply, (bytes, str)) else None
    variants = {
        "study_runs": (
            "JobStore.study_runs: one EVALSHA, reply parsed and decoded",
            lambda: store.study_runs(sid),
            STATUS_READS,
        ),
        "study_runs_raw": ("(part of it) the EVALSHA alone: script + reply transfer", script_raw, REFERENCE_READS),
        "study_status": (
            "client.study_status: study hash + study_runs + stale check",
            lambda: client.study_status(redis, sid)["runs"],
            STATUS_READS,
        ),
        "pipelined": (
            "(ref) LRANGE + JobStore.runs(ids): one pipeline of 10k HGETALL",
            lambda: store.runs(store.run_ids(sid)),
            REFERENCE_READS,
        ),
        "unpipelined": ("(ref) LRANGE + 10k HGETALL, one round trip each", unpipelined, UNPIPELINED_READS),
    }
    times = {k: [] for k in variants}
    redis.config_resetstat()  # server-side time per command, from INFO commandstats below
    # Alternate (a shared machine); a variant read fewer times is spread evenly over the rounds.
    rounds = {k: {round(j * STATUS_READS / n) for j in range(n)} for k, (_, _, n) in variants.items()}
    for i in range(STATUS_READS):
        for key, (_, fn, _) in variants.items():
            if i in rounds[key]:
                times[key] += timed(fn, 1)
    # Decoding cost, paired by round (the raw EVALSHA and the decoded read run back to back).
    decode_ms = [
        1000 * (times["study_runs"][i] - times["study_runs_raw"][j])
        for j, i in enumerate(sorted(rounds["study_runs_raw"]))
    ]
    p50 = {k: statistics.median(v) for k, v in times.items()}
    stats = redis.info("commandstats")
    server_ms = {
        "evalsha_per_call_ms": round(stats.get("cmdstat_evalsha", {}).get("usec_per_call", 0) / 1000, 2),
        "hgetall_per_call_us": round(stats.get("cmdstat_hgetall", {}).get("usec_per_call", 0), 2),
    }
    size = redis.memory_usage(run_prefix + ids[0]) or 0
    fields = redis.hlen(run_prefix + ids[0])
    store.delete_study(sid)
    return {
        "runs": STATUS_RUNS,
        "create_study_seconds": round(t_create.seconds, 3),
        "run_record_bytes_in_redis": size,
        "run_record_fields": fields,
        "script_reply_bytes": reply_bytes,
        "variants": {
            k: {
                "label": label,
                "reads": len(times[k]),
                "p50_ms": round(1000 * p50[k], 1),
                "all_ms": [round(1000 * x, 1) for x in times[k]],
            }
            for k, (label, _, _) in variants.items()
        },
        "decode_ms_paired_median": round(statistics.median(decode_ms), 1),
        "server_side": server_ms,
        "redis_py_parser": "hiredis" if _hiredis() else "python",
        "ratio_unpipelined_over_study_runs": round(p50["unpipelined"] / p50["study_runs"], 2),
        "ratio_unpipelined_over_study_status": round(p50["unpipelined"] / p50["study_status"], 2),
        "ratio_pipelined_over_study_runs": round(p50["pipelined"] / p50["study_runs"], 2),
    }


# ------------------------------------------------------------------------------------------------
# 4. overhead on one demo run


def _execute_run_in_process(args: dict) -> None:
    """Subprocess entry: what a work horse has (the worker's preloads, 1 thread), minus the queue."""
    setup_env()
    from workers.cli import _quiet_libraries
    from workers.worker import preload

    _quiet_libraries()  # as `workbench worker` (and `workbench run`) do: no progress bars, no warnings
    preload()
    import torch

    from core.artifacts import ArtifactStore
    from core.study import RunSpec, execute_run, load_prepared

    torch.set_num_threads(1)
    prepared = load_prepared(args["prepared_dir"])
    run = RunSpec(args["arm"], args["size"], args["seed"], args["key"])
    with Timer() as t:
        result = execute_run(prepared, run, store=ArtifactStore(args["artifacts"]))
    assert not result.get("cached"), "the in-process run must not be served from a cache"
    print(
        "RESULT "
        + json.dumps(
            {
                "seconds": t.seconds,
                "execute_run_total_seconds": result["timings"]["total_seconds"],
                "timings": result["timings"],
                "metrics": result["metrics"],
            }
        ),
        flush=True,
    )


FORK_PROBE_FORKS = 100


def _fork_probe(kind: str) -> None:
    """Subprocess entry: ms per fork + child runs a little Python and exits + wait, in a process that
    has imported what the workbench worker preloads (kind 'preload') or only rq and redis ('bare')."""
    import rq  # noqa: F401

    if kind == "preload":
        setup_env()
        from workers.worker import preload

        preload()
    times = []
    for _ in range(FORK_PROBE_FORKS):
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            sum(range(1000))
            os._exit(0)
        os.waitpid(pid, 0)
        times.append(time.perf_counter() - t0)
    print(
        "RESULT "
        + json.dumps({"p50_ms": round(1000 * statistics.median(times), 2), "rss_mib": proc_rss_mib(os.getpid())})
    )


def bench_fork() -> dict:
    out = {}
    for kind in ("preload", "bare"):
        proc = subprocess.run(
            [python(), "-m", "bench.queue", "--fork-probe", kind], cwd=ROOT, capture_output=True, text=True
        )
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            raise RuntimeError(f"fork probe failed:\n{proc.stderr[-2000:]}")
        out[kind] = json.loads(line[len("RESULT ") :])
    return {"forks": FORK_PROBE_FORKS, **out}


def bench_demo_run(redis, workers: Workers, work: Path) -> dict:
    from rq import Queue

    from core.artifacts import ArtifactStore
    from core.spec import dump_spec, load_spec
    from core.study import prepare_study, run_key, save_prepared
    from workers.client import run_id, run_job_id
    from workers.store import JobStore

    spec = load_spec(ROOT / "catalog" / "demo_study_fast.yaml")
    prepared = prepare_study(spec)
    queue_root, inproc_root = work / "artifacts-queue", work / "artifacts-inprocess"
    sid = "bench-demo-run"
    queue_store = ArtifactStore(queue_root)
    save_prepared(prepared, queue_store.prepared_dir(sid))
    records = []
    for r in range(DEMO_ROUNDS):
        records.append(
            {
                "id": run_id(sid, r),
                "index": r,
                "arm": DEMO_ARM,
                "size": DEMO_SIZE,
                "seed": r,
                "key": run_key(prepared, DEMO_ARM, DEMO_SIZE, r),
                "status": "queued",
                "cached": False,
                "phase": "queued",
                "attempts": 0,
            }
        )
    JobStore(redis).create_study(
        sid,
        {
            "name": spec.name,
            "spec": dump_spec(spec),
            "status": "queued",
            "backend": "local",
            "primary_metric": spec.primary_metric,
            "target_size": spec.target_size,
        },
        records,
    )
    worker = workers.start(queue_root)
    wait_idle(redis, 1)
    gpu = Queue("gpu", connection=redis)
    pings = []
    for _ in range(500):  # one loopback round trip, to price the commands a run issues
        with Timer() as t:
            redis.ping()
        pings.append(t.seconds)
    rounds = []
    for r, rec in enumerate(records):
        # In-process first in even rounds, queue first in odd ones.
        order = ("inprocess", "queue") if r % 2 == 0 else ("queue", "inprocess")
        row = {"seed": r, "key": rec["key"]}
        for side in order:
            if side == "inprocess":
                args = {
                    "prepared_dir": str(queue_store.prepared_dir(sid)),
                    "arm": DEMO_ARM,
                    "size": DEMO_SIZE,
                    "seed": r,
                    "key": rec["key"],
                    "artifacts": str(inproc_root),
                }
                proc = subprocess.run(
                    [python(), "-m", "bench.queue", "--execute-run", json.dumps(args)],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    env={**os.environ, "ARTIFACTS_DIR": str(inproc_root)},
                )
                line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
                if proc.returncode != 0 or line is None:
                    raise RuntimeError(f"in-process run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
                got = json.loads(line[len("RESULT ") :])
                row["inprocess"] = {
                    "seconds": round(got["seconds"], 3),
                    "timings": got["timings"],
                    "metrics": got["metrics"],
                }
            else:
                redis.config_resetstat()
                t0 = time.time()
                job = gpu.enqueue_call(
                    "workers.tasks.run_task",
                    args=(sid, rec["id"]),
                    job_id=run_job_id(rec["id"]),
                    timeout=3600,
                    result_ttl=600,
                )
                res = wait_result(job, 900)
                t_back = time.time()
                if res is None or res.type != res.Type.SUCCESSFUL:
                    raise RuntimeError(f"queued run failed: {res and res.exc_string}")
                if res.return_value.get("cached"):
                    raise RuntimeError("the queued run was served from a cache")
                stats = redis.info("commandstats")
                job.refresh()
                stored = queue_store.get_result(rec["key"])
                row["queue"] = {
                    "seconds": round(t_back - t0, 3),
                    "enqueue_to_started_s": round(job.started_at.timestamp() - t0, 3),
                    "started_to_ended_s": round(job.ended_at.timestamp() - job.started_at.timestamp(), 3),
                    "execute_run_total_seconds": stored["timings"]["total_seconds"],
                    # Every command the server ran meanwhile: the run's progress, heartbeats and
                    # cancel checks, RQ's job bookkeeping, and the idle worker's own polling.
                    "redis_commands": sum(v["calls"] for v in stats.values()),
                    "redis_server_ms": round(sum(v["usec"] for v in stats.values()) / 1000, 1),
                    "timings": stored["timings"],
                    "metrics": stored["metrics"],
                }
        q, i = row["queue"]["seconds"], row["inprocess"]["seconds"]
        row["overhead_share"] = round((q - i) / q, 4)
        row["outside_execute_run_share"] = round((q - row["queue"]["execute_run_total_seconds"]) / q, 4)
        row["same_metrics"] = row["queue"]["metrics"] == row["inprocess"]["metrics"]
        rounds.append(row)
    workers.stop(worker)
    wait_no_workers(redis)
    q_best = min(x["queue"]["seconds"] for x in rounds)
    i_best = min(x["inprocess"]["seconds"] for x in rounds)
    return {
        "study": "catalog/demo_study_fast.yaml",
        "arm": DEMO_ARM,
        "size": DEMO_SIZE,
        "rounds": rounds,
        "redis_ping_p50_ms": round(1000 * statistics.median(pings), 3),
        "queue_best_s": q_best,
        "inprocess_best_s": i_best,
        "overhead_share_best": round((q_best - i_best) / q_best, 4),
        "overhead_share_median": round(statistics.median(x["overhead_share"] for x in rounds), 4),
        "outside_execute_run_share_median": round(statistics.median(x["outside_execute_run_share"] for x in rounds), 4),
    }


# ------------------------------------------------------------------------------------------------
# 5. re-submitting a finished study


def bench_resubmit(redis, workers: Workers, work: Path) -> dict:
    from rq.job import Job

    from core.artifacts import ArtifactStore
    from tests.specs import tiny_spec
    from workers import client
    from workers.store import JobStore

    root = work / "artifacts-resubmit"
    artifacts = ArtifactStore(root)
    spec = tiny_spec(sizes=[40])
    store = JobStore(redis)

    def study_jobs(sid: str) -> list[dict]:
        """The study's jobs (runs, fits, ranking: ids wb-*-<sid>-*) with when they started and ended."""
        out = []
        for key in redis.scan_iter(match=f"rq:job:wb-*{sid}*"):
            job_id = key.decode()[len("rq:job:") :]
            if ":" in job_id:
                continue
            job = Job.fetch(job_id, connection=redis)
            if job.started_at and job.ended_at:
                out.append(
                    {
                        "task": job.func_name.rsplit(".", 1)[-1],
                        "started": job.started_at.timestamp(),
                        "seconds": round(job.ended_at.timestamp() - job.started_at.timestamp(), 3),
                    }
                )
        return sorted(out, key=lambda j: j["started"])

    def once(mode: str) -> dict:
        t0 = time.time()
        with Timer() as t_submit:
            sid = client.submit(redis, spec, artifacts=artifacts)
        worker = workers.start(root, burst=True) if mode == "burst" else None
        st = client.wait(redis, sid, timeout=600, poll=0.05)
        t_done = time.time()
        if worker is not None:
            worker.wait(timeout=120)
        runs = store.study_runs(sid)
        # `cached` is stored as 1/0: 0 means this study's worker trained the run.
        trained = sum(1 for r in runs if str(r.get("cached")) in ("0", "False"))
        jobs = study_jobs(sid)
        by_task: dict[str, float] = {}
        for j in jobs:
            by_task[j["task"]] = round(by_task.get(j["task"], 0.0) + j["seconds"], 3)
        return {
            "study_id": sid,
            "status": st["study"].get("status"),
            "runs": len(runs),
            "runs_trained": trained,
            "seconds": round(t_done - t0, 3),
            "submit_seconds": round(t_submit.seconds, 3),
            "first_job_started_after_s": round(jobs[0]["started"] - t0, 3) if jobs else None,
            "jobs_run": len(jobs),
            "job_seconds_by_task": by_task,
        }

    first = once("burst")
    results_before = sorted(p.name for p in (root / "runs").glob("*")) if (root / "runs").is_dir() else None
    again = once("burst")
    idle = workers.start(root)
    wait_idle(redis, 1)
    again_idle = once("idle")
    workers.stop(idle)
    wait_no_workers(redis)
    results_after = sorted(p.name for p in (root / "runs").glob("*")) if (root / "runs").is_dir() else None
    return {
        "spec": "tests/specs.py tiny_spec(sizes=[40])",
        "first_submit": first,
        "resubmit_burst_worker": again,
        "resubmit_idle_worker": again_idle,
        "run_folders_unchanged": results_before == results_after,
    }


# ------------------------------------------------------------------------------------------------


def main() -> dict:
    setup_env()
    from redis import Redis

    from workers.redis_server import EmbeddedRedis

    work = scratch_dir("queue")
    for child in work.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    logs = work / "logs"
    logs.mkdir()
    server = EmbeddedRedis(folder=work / "redis").start()
    redis = Redis.from_url(server.url)
    workers = Workers(server.url, logs)
    took = {}
    try:
        with Timer() as t:
            first = workers.start(work / "artifacts-noop")
            startup = wait_idle(redis, 1)
            time.sleep(1.0)  # the worker's first scheduler and maintenance passes
            rss = {"workbench_worker": proc_rss_mib(first.pid)}
            latency = bench_latency(redis)
            tp1 = bench_throughput(redis, THROUGHPUT_JOBS, {"worker 1": first.pid, "redis-server": server.proc.pid})
            second = workers.start(work / "artifacts-noop")
            wait_idle(redis, 2)
            time.sleep(1.0)
            tp2 = bench_throughput(
                redis, THROUGHPUT_JOBS, {"worker 1": first.pid, "worker 2": second.pid, "redis-server": server.proc.pid}
            )
            workers.stop(second)
            workers.stop(first)
            wait_no_workers(redis)
        took["workbench_workers"] = t.seconds
        with Timer() as t:
            rq_runs = {}
            one = workers.start(work / "artifacts-noop", kind="rq")
            wait_idle(redis, 1)
            rss["plain_rq_worker"] = proc_rss_mib(one.pid)
            rq_latency = bench_latency(redis)
            rq_runs["1"] = bench_throughput(
                redis, RQ_THROUGHPUT_JOBS, {"worker 1": one.pid, "redis-server": server.proc.pid}
            )
            two = workers.start(work / "artifacts-noop", kind="rq")
            wait_idle(redis, 2)
            rq_runs["2"] = bench_throughput(
                redis, RQ_THROUGHPUT_JOBS, {"worker 1": one.pid, "worker 2": two.pid, "redis-server": server.proc.pid}
            )
            workers.stop(two)
            workers.stop(one)
            wait_no_workers(redis)
        took["rq_workers"] = t.seconds
        with Timer() as t:
            fork = bench_fork()
        took["fork_probe"] = t.seconds
        with Timer() as t:
            status = bench_status(redis)
        took["status"] = t.seconds
        with Timer() as t:
            demo = bench_demo_run(redis, workers, work)
        took["demo_run"] = t.seconds
        with Timer() as t:
            resubmit = bench_resubmit(redis, workers, work)
        took["resubmit"] = t.seconds
    finally:
        workers.stop_all()
        server.stop()

    throughput = {
        "workbench_worker": {"1": tp1, "2": tp2, "ratio_two_over_one": round(tp2["jobs_per_s"] / tp1["jobs_per_s"], 2)},
        "plain_rq_worker": {
            **rq_runs,
            "ratio_two_over_one": round(rq_runs["2"]["jobs_per_s"] / rq_runs["1"]["jobs_per_s"], 2),
        },
    }
    print(f"own redis-server on port {server.port}; workbench worker ready {startup:.1f} s after start")
    print("\n1. enqueue -> start latency, one idle worker, one job at a time")
    print_table(
        [
            [name, which.replace("_", " "), x["p50_ms"], x["p95_ms"], x["max_ms"]]
            for name, lat in (("workbench worker", latency), ("plain rq worker", rq_latency))
            for which, x in lat.items()
            if which != "jobs"
        ],
        ["worker", "interval", "p50 ms", "p95 ms", "max ms"],
    )
    print(f"\n2. {THROUGHPUT_JOBS} no-op jobs")
    print_table(
        [
            [name, n, x["seconds"], x["jobs_per_s"], x["workers_that_ran_jobs"]]
            for name, d in throughput.items()
            for n, x in d.items()
            if n in ("1", "2")
        ],
        ["worker", "workers", "seconds", "jobs/s", "workers that ran jobs"],
    )
    for name, d in throughput.items():
        for n in ("1", "2"):
            print(
                f"  {name} x{n}: CPU ms per job {d[n]['cpu_ms_per_job']}, machine busy "
                f"{100 * d[n]['machine_busy_share']:.0f} %"
            )
    print(
        f"two / one: workbench worker {throughput['workbench_worker']['ratio_two_over_one']}x, "
        f"plain rq worker {throughput['plain_rq_worker']['ratio_two_over_one']}x"
    )
    print(
        f"fork + exit + wait, p50 of {fork['forks']}: with the worker's preloads {fork['preload']['p50_ms']} ms "
        f"(RSS {fork['preload']['rss_mib']} MiB), bare {fork['bare']['p50_ms']} ms (RSS {fork['bare']['rss_mib']} MiB)"
    )
    print(f"\n3. status read, {STATUS_RUNS:,} runs (study created in {status['create_study_seconds']:.2f} s)")
    print_table(
        [[v["label"], v["reads"], v["p50_ms"]] for v in status["variants"].values()], ["read", "reads", "p50 ms"]
    )
    print(f"unpipelined / study_runs: {status['ratio_unpipelined_over_study_runs']}x")
    print(f"\n4. one demo run ({DEMO_ARM}, size {DEMO_SIZE}): queue vs in-process")
    print_table(
        [
            [
                x["seed"],
                x["queue"]["seconds"],
                x["queue"]["execute_run_total_seconds"],
                x["inprocess"]["seconds"],
                f"{100 * x['overhead_share']:.1f} %",
                f"{100 * x['outside_execute_run_share']:.1f} %",
            ]
            for x in demo["rounds"]
        ],
        ["seed", "queue wall s", "execute_run in job s", "in-process s", "overhead", "outside execute_run"],
    )
    print("\n5. re-submitting a finished study")
    print_table(
        [
            [k, x["runs"], x["runs_trained"], x["jobs_run"], x["submit_seconds"], x["seconds"]]
            for k, x in resubmit.items()
            if isinstance(x, dict)
        ],
        ["case", "runs", "runs trained", "jobs run", "submit s", "submit -> ranking s"],
    )
    result = {
        "what": "job system: enqueue->start latency, no-op jobs/s with 1 and 2 workers, 10k-run status reads, "
        "queue overhead on one demo run, re-submitting a finished study",
        "params": {
            "redis": "own redis-server (workers.redis_server.EmbeddedRedis, appendonly everysec) on a free "
            "loopback port",
            "workers": "`python -m workers.cli worker` subprocesses (WORKBENCH_TORCH_THREADS=1); plain rq.Worker "
            "subprocesses for the reference rows",
            "latency_jobs": LATENCY_JOBS,
            "latency_warmup": LATENCY_WARMUP,
            "throughput_jobs": THROUGHPUT_JOBS,
            "rq_throughput_jobs": RQ_THROUGHPUT_JOBS,
            "status_runs": STATUS_RUNS,
            "status_reads": STATUS_READS,
            "reference_reads": REFERENCE_READS,
            "unpipelined_reads": UNPIPELINED_READS,
            "demo_rounds": DEMO_ROUNDS,
        },
        "worker_startup_s": round(startup, 2),
        "worker_rss_mib": rss,
        "latency": {"workbench_worker": latency, "plain_rq_worker": rq_latency},
        "throughput": throughput,
        "fork_probe": fork,
        "status_read": status,
        "demo_run": demo,
        "resubmit": resubmit,
        "phase_seconds": {k: round(v, 1) for k, v in took.items()},
        "versions": versions("redis", "rq", "torch"),
    }
    write_result("queue", result)
    return result


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--execute-run":
        _execute_run_in_process(json.loads(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "--fork-probe":
        _fork_probe(sys.argv[2])
    else:
        main()
