"""A workbench worker: a plain RQ worker (so `rq info` and rq-dashboard see it) plus a reaper.

The worker forks a work horse per job, as RQ does. The heavy libraries are imported in the parent
before the first fork so each job starts in milliseconds, but CUDA is never initialized there:
a CUDA context does not survive fork, so only the work horse touches the GPU.

The reaper notices runs whose worker died without a word (SIGKILL, OOM, a lost machine): every
running run refreshes `wb:alive:<run>` every few seconds from its work horse; when the key has
expired and RQ still lists the job as started, the reaper hands the job back to RQ's own abandoned
job handling, which retries it (bounded) or marks it failed. That takes ~30 s instead of RQ's
default heartbeat expiry plus a 10-minute maintenance interval.
"""

from __future__ import annotations

import logging
import threading
import time

from redis import Redis
from rq import Queue, Worker
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from workers.client import QUEUE_DEFAULT, QUEUE_GPU, resume_submits
from workers.store import ALIVE_TTL, JobStore

log = logging.getLogger(__name__)
REAP_EVERY = min(5.0, ALIVE_TTL / 4)


def preload() -> None:
    """Import the ML stack once in the parent (no CUDA initialization)."""
    import datasets  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    import trl  # noqa: F401

    from core import evaluation, study, train  # noqa: F401


def reap_abandoned(redis: Redis, queue_names: list[str]) -> list[str]:
    """Requeue (or fail) started jobs whose run has gone silent. Returns the job ids handled."""
    store = JobStore(redis)
    handled = []
    for name in queue_names:
        registry = StartedJobRegistry(name, connection=redis)
        members = redis.zrange(registry.key, 0, -1)
        for member in members:
            member = member.decode() if isinstance(member, bytes) else member
            job_id = member.split(":", 1)[0]
            if not job_id.startswith("wb-run-"):
                continue
            try:
                job = Job.fetch(job_id, connection=redis)
            except Exception:
                continue
            if job.get_status() != JobStatus.STARTED or not job.args or len(job.args) < 2:
                continue
            run_id = job.args[1]
            started = job.started_at.timestamp() if job.started_at else time.time()
            if store.is_alive(run_id) or time.time() - started < ALIVE_TTL * 1.5:
                continue
            # Hand the job to RQ's abandoned-job path: mark its entry expired, then clean up.
            redis.zadd(registry.key, {member: 1})
            registry.cleanup(timestamp=2)
            store.log(run_id, "worker went silent (killed or lost); job handed back to the queue", kind="error")
            run = store.run(run_id) or {}
            if run.get("status") == "running":
                store.set_run_status(run_id, "queued", phase="requeued")
            handled.append(job_id)
            log.warning("reaped abandoned job %s (run %s)", job_id, run_id)
    return handled


class _Reaper(threading.Thread):
    def __init__(self, url: str, queue_names: list[str]):
        super().__init__(daemon=True, name="workbench-reaper")
        self.url, self.queue_names = url, queue_names
        self.stop = threading.Event()

    def run(self) -> None:
        redis = Redis.from_url(self.url)
        while not self.stop.wait(REAP_EVERY):
            try:
                reap_abandoned(redis, self.queue_names)
                for sid in resume_submits(redis):
                    log.warning("finished the submit of study %s (its submitter died mid-way)", sid)
            except Exception as err:  # never let the reaper kill the worker
                log.warning("reaper: %s", err)


def run_worker(url: str, queue_names: list[str] | None = None, *, burst: bool = False, name: str | None = None, preload_libs: bool = True) -> bool:
    """Run a worker until stopped (or, with burst, until the queues are empty)."""
    queue_names = queue_names or [QUEUE_GPU, QUEUE_DEFAULT]
    redis = Redis.from_url(url)
    from core.train import configure_threads

    configure_threads()
    if preload_libs:
        preload()
    queues = [Queue(n, connection=redis) for n in queue_names]
    worker = Worker(queues, connection=redis, name=name, worker_ttl=60, job_monitoring_interval=5, maintenance_interval=30)
    reaper = _Reaper(url, queue_names)
    reaper.start()
    try:
        return worker.work(burst=burst, logging_level="WARNING", with_scheduler=True)
    finally:
        reaper.stop.set()
