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

import gc
import logging
import os
import threading
import time

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, Worker
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from workers.backends.base import QUEUE_DEFAULT, QUEUE_GPU
from workers.client import resume_submits
from workers.store import ALIVE_TTL, JobStore

log = logging.getLogger(__name__)
REAP_EVERY = min(5.0, ALIVE_TTL / 4)
LOG_LEVEL = os.environ.get("WORKBENCH_WORKER_LOG_LEVEL", "WARNING").upper()  # INFO shows each job's path


# Architectures of common small causal LMs and encoders: each is a lazily imported module of its own.
PRELOAD_ARCHITECTURES = (
    "llama",
    "qwen2",
    "qwen3",
    "mistral",
    "gemma",
    "gemma2",
    "gemma3",
    "phi3",
    "gpt2",
    "bert",
    "roberta",
)


def preload() -> None:
    """Import in the parent everything a run imports, so each work horse starts warm (no CUDA).

    transformers, TRL and peft load their classes lazily on first attribute access, so importing
    the packages is not enough: without touching the names a run uses, every work horse imports
    ~1,500 modules again (3-12 s per run on a small CPU box, measured). The shipped metric modules
    are loaded here too (load_metric caches them per process).
    """
    import importlib

    import accelerate  # noqa: F401
    import datasets  # noqa: F401
    import torch  # noqa: F401
    import transformers
    import trl
    from transformers import (  # noqa: F401
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        set_seed,
    )
    from transformers.trainer_callback import PrinterCallback, ProgressCallback  # noqa: F401
    from trl import SFTConfig, SFTTrainer  # noqa: F401

    for arch in PRELOAD_ARCHITECTURES:
        for part in ("configuration", "modeling", "tokenization"):
            try:
                importlib.import_module(f"transformers.models.{arch}.{part}_{arch}")
            except ImportError:
                pass
    try:
        from peft import LoraConfig, get_peft_model  # noqa: F401
    except ImportError:
        pass
    from core import encoder, evaluation, study, train  # noqa: F401
    from core.metrics import MODULES_DIR, load_metric

    for folder in sorted(MODULES_DIR.iterdir()):
        if (folder / f"{folder.name}.py").is_file():
            load_metric(folder.name)
    _ = (transformers.__version__, trl.__version__)


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


ORPHAN_GRACE = 30.0  # seconds a queued run's job may sit outside every queue before it is requeued


def requeue_orphans(redis: Redis, grace: float = ORPHAN_GRACE) -> list[str]:
    """Put back in its queue every queued run whose job is in no queue (a Redis crash lost it).

    Redis's append-only file is fsynced every second, so a crash can keep a worker's pop of a job
    from the queue and lose what followed (the job marked started): the job then sits in no list
    and no worker will ever see it. Runs whose record says queued, unchanged for `grace` seconds,
    whose job is missing, or queued but absent from its queue, are enqueued again (at the front).
    One worker sweeps at a time (a lock that expires with the grace period). Returns the run ids.
    """
    from rq.exceptions import NoSuchJobError

    from workers import client

    if not redis.set("wb:orphan-sweep", "1", nx=True, ex=max(1, int(grace))):
        return []
    store = JobStore(redis)
    now = time.time()
    listed: dict[str, set[str]] = {}
    handled = []
    for study in store.studies():
        if study.get("phase") == "done" or study.get("status") in ("submitting", "finished", "failed", "canceled"):
            continue
        for run in store.study_runs(study["id"]):
            if run.get("status") != "queued" or now - float(run.get("updated_at") or now) < grace:
                continue
            job_id = run.get("job_id") or client.run_job_id(run["id"])
            try:
                job = Job.fetch(job_id, connection=redis)
            except NoSuchJobError:
                job = None
            if job is not None:
                if job.get_status() != JobStatus.QUEUED or (
                    job.enqueued_at and now - job.enqueued_at.timestamp() < grace
                ):
                    continue
                if job.origin not in listed:
                    listed[job.origin] = {i.decode() for i in redis.lrange(f"rq:queue:{job.origin}", 0, -1)}
                if job_id in listed[job.origin]:
                    continue
                Queue(job.origin, connection=redis).enqueue_job(job, at_front=True)
            else:
                client.enqueue_run(redis, study, run["id"])
            store.log(run["id"], "its job was in no queue (lost in a Redis crash); queued again", kind="error")
            store.update_run(run["id"], phase="requeued")
            handled.append(run["id"])
            log.warning("requeued orphaned run %s (job %s)", run["id"], job_id)
    return handled


class _Reaper(threading.Thread):
    def __init__(self, url: str, queue_names: list[str]):
        super().__init__(daemon=True, name="workbench-reaper")
        self.url, self.queue_names = url, queue_names
        self.stop = threading.Event()

    def run(self) -> None:
        redis = Redis.from_url(self.url)
        last_sweep = time.monotonic()
        while not self.stop.wait(REAP_EVERY):
            try:
                reap_abandoned(redis, self.queue_names)
                for sid in resume_submits(redis):
                    log.warning("finished the submit of study %s (its submitter died mid-way)", sid)
                if time.monotonic() - last_sweep >= ORPHAN_GRACE:
                    last_sweep = time.monotonic()
                    requeue_orphans(redis)
            except Exception as err:  # never let the reaper kill the worker
                log.warning("reaper: %s", err)


def run_worker(
    url: str,
    queue_names: list[str] | None = None,
    *,
    burst: bool = False,
    name: str | None = None,
    preload_libs: bool = True,
) -> bool:
    """Run a worker until stopped (or, with burst, until the queues are empty)."""
    queue_names = queue_names or [QUEUE_GPU, QUEUE_DEFAULT]
    redis = Redis.from_url(url)
    from core.train import configure_threads

    configure_threads()
    # The reaper first: a restarted worker requeues its dead predecessor's runs while it still imports.
    reaper = _Reaper(url, queue_names)
    reaper.start()
    if preload_libs:
        preload()
    # As pre-fork servers do: what the parent holds now (the ML stack) leaves the garbage
    # collector's view, so a work horse's collections (accelerate runs one after every training)
    # skip it: no copy-on-write of the parent's heap, and ms instead of a second per run.
    gc.collect()
    gc.freeze()
    queues = [Queue(n, connection=redis) for n in queue_names]
    try:
        while True:
            worker = Worker(
                queues, connection=redis, name=name, worker_ttl=60, job_monitoring_interval=5, maintenance_interval=30
            )
            try:
                return worker.work(burst=burst, logging_level=LOG_LEVEL, with_scheduler=True)
            except (RedisConnectionError, RedisTimeoutError) as err:
                # RQ rides out Redis outages while it waits for work, not while it starts a job:
                # wait for Redis, drop the old registration, and work again under the same name.
                log.warning("lost Redis (%s); waiting for it to come back", err)
                _wait_for_redis(redis)
                try:
                    worker.register_death()
                except Exception:  # its registration may be gone already
                    pass
    finally:
        reaper.stop.set()


def _wait_for_redis(redis: Redis, max_wait: float = 30.0) -> None:
    delay = 0.5
    while True:
        try:
            redis.ping()
            return
        except (RedisConnectionError, RedisTimeoutError):
            time.sleep(delay)
            delay = min(delay * 2, max_wait)
