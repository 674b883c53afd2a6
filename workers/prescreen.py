"""The pre-screen from the client's side: start it as a queued job (never in the web process) and read it.

One job per data fingerprint (core.prescreen.prescreen_key): asking again while it runs finds the
same job, and a finished pre-screen is read from the artifacts store without enqueueing anything.
"""

from __future__ import annotations

from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from core.artifacts import ArtifactStore
from core.spec import StudySpec, dump_spec
from workers.backends.base import QUEUE_DEFAULT

JOB_TIMEOUT = 3 * 3600
RESULT_TTL = 7 * 24 * 3600


def job_id(key: str) -> str:
    return f"wb-prescreen-{key}"


def start(redis: Redis, spec: StudySpec, key: str, *, artifacts: ArtifactStore | None = None, again: bool = False):
    """The pre-screen's state (see `status`), enqueueing it when it has neither a result nor a live job.

    `again` enqueues a new job after a failed one.
    """
    state = status(redis, key, artifacts=artifacts)
    if state["status"] in ("finished", "queued", "started") or (state["status"] == "failed" and not again):
        return state
    if state["status"] == "failed":
        Job.fetch(job_id(key), connection=redis).delete()
    Queue(QUEUE_DEFAULT, connection=redis).enqueue_call(
        "workers.tasks.prescreen_task",
        args=(dump_spec(spec), key),
        job_id=job_id(key),
        timeout=JOB_TIMEOUT,
        result_ttl=RESULT_TTL,
        failure_ttl=RESULT_TTL,
    )
    return status(redis, key, artifacts=artifacts)


def status(redis: Redis, key: str, *, artifacts: ArtifactStore | None = None) -> dict:
    """{"key", "status": finished|queued|started|failed|absent, "result"?, "progress"?, "error"?}."""
    result = (artifacts or ArtifactStore()).get_prescreen(key)
    if result is not None:
        return {"key": key, "status": "finished", "result": result}
    try:
        job = Job.fetch(job_id(key), connection=redis)
    except NoSuchJobError:
        return {"key": key, "status": "absent"}
    state = job.get_status(refresh=True)
    if state == JobStatus.FAILED:
        return {"key": key, "status": "failed", "error": _last_line(job)}
    if state == JobStatus.FINISHED:  # finished, but its file is gone (artifacts moved): run it again
        job.delete()
        return {"key": key, "status": "absent"}
    shown = "started" if state == JobStatus.STARTED else "queued"
    return {"key": key, "status": shown, "progress": job.get_meta(refresh=True).get("progress")}


def _last_line(job: Job) -> str:
    result = job.latest_result()
    text = (result.exc_string if result else None) or "the pre-screen job failed"
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text
