"""One run's life inside a worker, for every backend: `with run_lifecycle(...) as run:`.

On entry: reads the run and study records; a run the user canceled, or whose key already has a
result (another study ran it), ends at once with `run.outcome` set, so the body does nothing.
Otherwise the run is marked running (worker, attempt, phase) and a heartbeat keeps it alive while
the body works and sets `run.outcome`. On the way out: `RunCanceled` ends the run as canceled,
`RunFailed` fails it for good (no retry), any other error fails it and is raised again, so RQ retries
the job (bounded). A user's cancel always stands over an error that follows it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import get_current_job

from core.artifacts import ArtifactStore
from workers.backends.base import RunCanceled, RunFailed
from workers.store import ALIVE_TTL, JobStore

REDIS_AWAY = (RedisConnectionError, RedisTimeoutError)
REDIS_WAIT_SECONDS = 120.0


def patiently(fn, *args, **kwargs):
    """A Redis write that waits out a Redis restart (up to REDIS_WAIT_SECONDS) instead of failing."""
    deadline = time.monotonic() + REDIS_WAIT_SECONDS
    delay = 0.25
    while True:
        try:
            return fn(*args, **kwargs)
        except REDIS_AWAY:
            if time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


class Heartbeat:
    """Keeps `wb:alive:<run>` fresh from a thread, so a dead work horse is noticed in seconds."""

    def __init__(self, store: JobStore, run_id: str):
        self.store, self.run_id = store, run_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(ALIVE_TTL / 4):
            try:
                self.store.touch_alive(self.run_id)
            except Exception:  # Redis briefly away: the next beat tries again
                pass

    def __enter__(self):
        self.store.touch_alive(self.run_id)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=2)
        self.store.clear_alive(self.run_id)


@dataclass
class Run:
    """What the body of a run sees; it sets `outcome` (the task's return value) when it is done."""

    study_id: str
    run_id: str
    store: JobStore
    artifacts: ArtifactStore
    study: dict
    record: dict
    outcome: dict | None = None
    secret: str | None = None  # a token the body holds: never in a stored error or a raised traceback

    def canceled_by_user(self) -> bool:
        return (self.store.run(self.run_id) or {}).get("status") == "canceled"

    def redact(self, text: str) -> str:
        return text.replace(self.secret, "***") if self.secret and text else text


def _open(study_id: str, run_id: str) -> Run:
    job = get_current_job()
    if job is None:
        raise RuntimeError("task functions run inside an RQ worker")
    store = JobStore(job.connection)
    record = store.run(run_id)
    if record is None:
        raise RuntimeError(f"run {run_id} has no record in Redis (flushed?); run `workbench reindex` and retry")
    study = store.study(study_id)
    if study is None:
        raise RuntimeError(f"study {study_id} has no record in Redis")
    run = Run(study_id, run_id, store, ArtifactStore(), study, record)
    if record.get("status") == "canceled":
        run.outcome = {"run_id": run_id, "status": "canceled"}
        return run
    cached = run.artifacts.get_result(record["key"])
    if cached is not None:
        store.set_run_status(run_id, "finished", metrics=cached["metrics"], cached=True, phase="done", error="")
        run.outcome = {"run_id": run_id, "key": record["key"], "metrics": cached["metrics"], "cached": True}
    return run


def _start(run: Run, phase: str, note: str, fields: dict) -> None:
    job = get_current_job()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    attempt = int(run.record.get("attempts") or 0) + 1
    run.store.set_run_status(
        run.run_id,
        "running",
        worker=job.worker_name or worker,
        pid=os.getpid(),
        host=socket.gethostname(),
        job_id=job.id,
        attempts=attempt,
        phase=phase,
        error="",
        step=0,
        total=0,
        **fields,
    )
    run.store.log(run.run_id, f"started on {worker} (attempt {attempt})" + (f": {note}" if note else ""))
    if run.study.get("status") in ("submitting", "queued"):
        run.store.update_study(run.study_id, status="running", phase="running")


def _fail(run: Run, message: str) -> None:
    patiently(run.store.set_run_status, run.run_id, "failed", error=message, phase="failed")
    patiently(run.store.log, run.run_id, f"failed: {message}", kind="error")


@contextmanager
def run_lifecycle(study_id: str, run_id: str, *, phase: str, note: str = "", **fields) -> Iterator[Run]:
    """Record, cancel check, result cache, heartbeat and failure around one run (see the module doc).

    `phase` is the run's first phase, `note` ends its "started" log line, `fields` go on its record.
    """
    run = _open(study_id, run_id)
    if run.outcome is not None:
        yield run
        return
    _start(run, phase, note, fields)
    try:
        with Heartbeat(run.store, run_id):
            yield run
    except RunCanceled:
        patiently(run.store.log, run_id, "stopped: canceled by user")
        run.outcome = {"run_id": run_id, "status": "canceled"}
    except RunFailed as err:
        message = run.redact(str(err))
        _fail(run, message)
        run.outcome = {"run_id": run_id, "status": "failed", "error": message}
    except Exception as err:
        message = run.redact(f"{type(err).__name__}: {err}")
        if patiently(run.canceled_by_user):  # the user's word stands
            run.store.log(run_id, f"stopped after cancel: {message}")
            run.outcome = {"run_id": run_id, "status": "canceled"}
            return
        _fail(run, message)
        if run.secret is None:
            raise
        raise RuntimeError(message) from None  # the token may be in the traceback's frames: carry the message only
