"""The client API: what the CLI and the dashboard call. Submit, read, cancel, retry, reindex.

Nothing here trains anything: `submit` validates and prepares the data (so a bad spec or bad data
is refused before anything is enqueued), writes records, and enqueues jobs. Workers do the rest.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Dependency, Job, JobStatus

from core.artifacts import ArtifactStore, read_json, write_text
from core.prescreen import prescreen_key
from core.spec import StudySpec, dump_spec
from workers import prescreen
from workers.backends import BackendError, get_backend
from workers.backends.base import DEFAULT_BACKEND, QUEUE_DEFAULT, QUEUE_GPU  # noqa: F401 (callers name queues here)
from workers.store import LIVE, TERMINAL, JobStore

RUN_RETRIES = 2  # automatic retries when a worker dies mid-run
DEFAULT_RUN_TIMEOUT = 6 * 3600
RESULT_TTL = 7 * 24 * 3600
SUBMIT_LOCK_TTL = 60  # a submitter silent this long is dead: a worker finishes its submit


class SubmitError(ValueError):
    """A study that cannot be submitted, with what to fix."""


@dataclass
class SubmitOptions:
    backend: str = DEFAULT_BACKEND
    submitted_by: str | None = None
    run_timeout: int = DEFAULT_RUN_TIMEOUT
    backend_options: dict = field(default_factory=dict)  # the backend's options by name, e.g. {"hf_flavor": "t4-small"}
    prescreen: bool = False  # also enqueue the embedding pre-screen (the dashboard and the CLI do)

    def validate(self) -> dict:
        """The backend's fields for the study record; SubmitError says what to fix."""
        try:
            fields = get_backend(self.backend).parse_options(self.backend_options)
        except BackendError as err:
            raise SubmitError(str(err)) from None
        if not (60 <= self.run_timeout <= 7 * 24 * 3600):
            raise SubmitError("run_timeout must be between 60 s and 7 days")
        return fields


def run_id(study_id: str, index: int) -> str:
    return f"{study_id}-r{index}"


def _run_record(study_id: str, index: int, run, result: dict | None, without_result: dict) -> dict:
    """A run's Redis record: finished from its cached result, else `without_result` (queued, or lost)."""
    record = {"id": run_id(study_id, index), "index": index, "key": run.key}
    record |= {"arm": run.arm, "size": run.size, "seed": run.seed}
    if result is not None:
        return record | {"status": "finished", "cached": True, "metrics": result["metrics"], "phase": "done"}
    return record | without_result


def run_job_id(run_id: str, attempt: int = 0) -> str:
    return f"wb-run-{run_id}" + (f"-r{attempt}" if attempt else "")


def submit(
    redis: Redis, spec: StudySpec, options: SubmitOptions | None = None, *, artifacts: ArtifactStore | None = None
) -> str:
    """Validate, prepare and enqueue a study; return its id. Nothing is enqueued on any error."""
    from core.study import plan_runs, prepare_study, save_prepared

    options = options or SubmitOptions()
    backend_fields = options.validate()
    artifacts = artifacts or ArtifactStore()
    prepared = prepare_study(spec)  # raises SpecError / SourceError / DataError with the fix
    study_id = f"{spec.study_id()}-{secrets.token_hex(3)}"
    screen_key = prescreen_key(prepared)
    save_prepared(prepared, artifacts.prepared_dir(study_id))
    write_text(artifacts.study_dir(study_id) / "spec.yaml", dump_spec(spec))
    runs = plan_runs(prepared)
    to_run = {"status": "queued", "cached": False, "phase": "queued", "attempts": 0}
    records = [_run_record(study_id, i, run, artifacts.get_result(run.key), to_run) for i, run in enumerate(runs)]
    store = JobStore(redis)
    store.take_submit_lock(study_id, "submitter", SUBMIT_LOCK_TTL)
    record = {
        "name": spec.name,
        "spec": dump_spec(spec),
        "status": "submitting",
        "backend": options.backend,
        "submitted_by": options.submitted_by or "",
        "primary_metric": spec.primary_metric,
        "target_size": spec.target_size,
        "run_timeout": options.run_timeout,
        "prescreen_key": screen_key,
        **backend_fields,
    }
    if _reuse_ranking(store, artifacts, study_id, record, records, prepared):
        if options.prescreen:
            prescreen.start(redis, spec, screen_key, artifacts=artifacts)
        return study_id
    store.create_study(study_id, record, records, submitting=True)
    try:
        _enqueue(redis, {**record, "id": study_id}, records)
    except Exception:
        store.delete_study(study_id)  # all or nothing: no half-enqueued study
        raise
    store.finish_submit(study_id)
    if options.prescreen:
        prescreen.start(redis, spec, screen_key, artifacts=artifacts)
    return study_id


def _reuse_ranking(store: JobStore, artifacts: ArtifactStore, study_id: str, record: dict, records, prepared) -> bool:
    """Every run cached and a ranking stored for exactly these inputs: the study is finished at submit.

    Not when `refine: auto` would refine the stored ranking (the queue's ranking job does that).
    """
    from core.fit_cache import ranking_key, reuse_ranking
    from core.results import StudyResult

    if not records or any(r["status"] != "finished" for r in records):
        return False
    key = ranking_key(record["spec"], [r["key"] for r in records], prepared.contamination, prepared.near_duplicates)
    stored = read_json(artifacts.ranking_dir(key) / "metrics.json")
    decision = (stored or {}).get("decision") or {}
    if stored is None or (prepared.spec.refine == "auto" and decision.get("inconclusive") and decision.get("proposal")):
        return False
    summary = reuse_ranking(artifacts, key, study_id)
    if summary is None:
        return False
    done = {"status": "finished", "phase": "done", "failed_runs": 0, "reused_ranking": summary["reused"]["from_study"]}
    done |= {"ranking": StudyResult.from_dict(summary).ranking_summary()}
    done |= {"results_dir": str(artifacts.study_dir(study_id))}
    store.create_study(study_id, record | done, records)
    return True


def resume_submits(redis: Redis) -> list[str]:
    """Finish the submits whose submitter died mid-way (a dashboard killed while enqueueing).

    A study stays in `wb:submitting` until its submitter has enqueued every job. Once the submit
    lock has expired (the submitter is gone), the first worker to take the lock enqueues what is
    missing: run jobs that do not exist (the run jobs go in one transaction, so all or none),
    and the fits and the ranking when the study has no ranking job yet. Returns the studies resumed.
    """
    store = JobStore(redis)
    resumed = []
    for sid in store.submitting():
        if not store.take_submit_lock(sid, "resume", SUBMIT_LOCK_TTL):
            continue  # its submitter (or another worker) holds it
        study = store.study(sid)
        if study is None:  # deleted meanwhile
            store.finish_submit(sid)
            continue
        records = store.study_runs(sid)
        existing = {r["id"] for r in records if Job.exists(run_job_id(r["id"]), connection=redis)}
        missing = {r["id"] for r in records if r.get("status") == "queued" and r["id"] not in existing}
        _enqueue(
            redis,
            study,
            records,
            enqueue=missing,
            depend_on=existing | missing,
            with_ranking=not study.get("rank_job_id"),
        )
        store.finish_submit(sid)
        resumed.append(sid)
    return resumed


def enqueue_run(redis: Redis, study: Mapping, run_id: str, *, attempt: int = 0, pipeline=None) -> Job:
    """Enqueue one run's job on its study's backend: the one way a run is queued (submit, resume, retry, requeue)."""
    backend = get_backend(study.get("backend"))
    return Queue(backend.queue, connection=redis).enqueue_call(
        backend.job_function,
        args=(study["id"], run_id),
        job_id=run_job_id(run_id, attempt),
        timeout=backend.job_timeout(int(study.get("run_timeout") or DEFAULT_RUN_TIMEOUT)),
        result_ttl=RESULT_TTL,
        failure_ttl=RESULT_TTL,
        retry=Retry(max=RUN_RETRIES, enqueue_at_front=True),
        pipeline=pipeline,
    )


def _enqueue(
    redis: Redis,
    study: Mapping,
    records: list[dict],
    *,
    enqueue: set[str] | None = None,
    depend_on: set[str] | None = None,
    with_ranking: bool = True,
) -> None:
    """Enqueue run jobs (default: every queued run) in one transaction, then each arm's fit (after
    the run jobs in `depend_on`, default the same) and the ranking (after the fits)."""
    study_id = study["id"]
    queued = {r["id"] for r in records if r["status"] == "queued"}
    enqueue = queued if enqueue is None else enqueue
    depend_on = queued if depend_on is None else depend_on
    default = Queue(QUEUE_DEFAULT, connection=redis)
    by_arm: dict[str, list[str]] = {}
    with redis.pipeline() as pipe:
        for rec in records:
            if rec["id"] in depend_on:
                by_arm.setdefault(rec["arm"], []).append(run_job_id(rec["id"]))
            if rec["id"] in enqueue:
                enqueue_run(redis, study, rec["id"], pipeline=pipe)
        pipe.execute()
    if not with_ranking:
        return
    fit_ids = []
    for arm in dict.fromkeys(r["arm"] for r in records):
        deps = by_arm.get(arm)
        fit = default.enqueue_call(
            "workers.tasks.fit_task",
            args=(study_id, arm),
            job_id=f"wb-fit-{study_id}-{arm}-{secrets.token_hex(2)}",
            depends_on=Dependency(jobs=deps, allow_failure=True) if deps else None,
            result_ttl=RESULT_TTL,
            failure_ttl=RESULT_TTL,
        )
        fit_ids.append(fit.id)
    rank = default.enqueue_call(
        "workers.tasks.rank_task",
        args=(study_id,),
        job_id=f"wb-rank-{study_id}-{secrets.token_hex(2)}",
        depends_on=Dependency(jobs=fit_ids, allow_failure=True),
        result_ttl=RESULT_TTL,
        failure_ttl=RESULT_TTL,
    )
    JobStore(redis).update_study(study_id, rank_job_id=rank.id)


# ---------------------------------------------------------------------------------------------
# Reading


def study_status(redis: Redis, study_id: str) -> dict:
    store = JobStore(redis)
    study = store.study(study_id)
    if study is None:
        raise KeyError(f"no study '{study_id}'; `workbench status` lists them")
    runs = reconcile(redis, study_id)
    counts = {s: 0 for s in ("queued", "running", "finished", "failed", "canceled")}
    for r in runs:
        counts[r.get("status", "queued")] = counts.get(r.get("status", "queued"), 0) + 1
    study.pop("spec", None)
    return {"study": study, "counts": counts, "runs": runs}


def queue_workers(redis: Redis) -> dict[str, int]:
    """How many live workers listen on each queue (RQ's worker registry)."""
    from rq import Worker

    counts: dict[str, int] = {}
    for worker in Worker.all(connection=redis):
        for name in worker.queue_names():
            counts[name] = counts.get(name, 0) + 1
    return counts


def reconcile(redis: Redis, study_id: str) -> list[dict]:
    """Runs as the store says, corrected where a worker died without saying so.

    A run marked running whose liveness key expired is either back in the queue (RQ retried it:
    shown queued) or failed for good (shown failed with the reason).
    """
    store = JobStore(redis)
    runs = store.study_runs(study_id)
    stale = [r for r in runs if r.get("status") == "running" and not store.is_alive(r["id"])]
    for r in stale:
        r.update(_settle_stale(redis, store, r))
    return runs


def reconcile_page(redis: Redis, study_id: str, **page) -> dict:
    """`JobStore.study_runs_page` with the same corrections as `reconcile` (the page is read again after one)."""
    store = JobStore(redis)
    out = store.study_runs_page(study_id, **page)
    if out["stale"]:
        for rec in store.runs(out["stale"]):
            _settle_stale(redis, store, rec)
        out = store.study_runs_page(study_id, **page)
    return out


def _settle_stale(redis: Redis, store: JobStore, r: dict) -> dict:
    """A running run whose worker went silent: queued again if RQ retried it, else failed. The fields changed."""
    job_id = r.get("job_id") or run_job_id(r["id"])
    try:
        status = Job.fetch(job_id, connection=redis).get_status()
    except NoSuchJobError:
        status = None
    if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
        store.set_run_status(r["id"], "queued", phase="requeued")
        return {"status": "queued", "phase": "requeued"}
    if status in (JobStatus.FAILED, JobStatus.STOPPED, None):
        why = "the worker died or was stopped mid-run and no retries are left"
        store.set_run_status(r["id"], "failed", error=r.get("error") or why, phase="failed")
        return {"status": "failed", "error": r.get("error") or why}
    return {}


def results(study_id: str, artifacts: ArtifactStore | None = None) -> dict | None:
    artifacts = artifacts or ArtifactStore()
    return read_json(artifacts.study_dir(study_id) / "metrics.json")


def wait(redis: Redis, study_id: str, timeout: float | None = None, poll: float = 1.0, on_tick=None) -> dict:
    """Block until the study's ranking is written (or it failed/was canceled)."""
    deadline = time.monotonic() + timeout if timeout else None
    while True:
        st = study_status(redis, study_id)
        if on_tick:
            on_tick(st)
        if st["study"].get("status") in ("finished", "failed", "canceled") and st["study"].get("phase") == "done":
            return st
        if deadline and time.monotonic() > deadline:
            raise TimeoutError(f"study {study_id} not done after {timeout:.0f} s: {st['counts']}")
        time.sleep(poll)


# ---------------------------------------------------------------------------------------------
# Cancel and retry


def cancel(redis: Redis, target: str, *, force: bool = False) -> list[str]:
    """Cancel a study (all its live runs) or one run. Returns the run ids canceled.

    A queued run is marked canceled and its job finishes at once when a worker picks it up; a
    running local run stops at its next progress report (seconds); an HF Job is canceled
    remotely by the task that follows it. `force` also stops the work horse (for a hung run).
    """
    store = JobStore(redis)
    if store.study(target) is not None:
        store.update_study(target, status="canceled")
        ids = [r["id"] for r in store.study_runs(target) if r.get("status") in LIVE]
    else:
        run = store.run(target)
        if run is None:
            raise KeyError(f"no study or run '{target}'; `workbench status` lists them")
        if run.get("status") not in LIVE:
            raise ValueError(f"run {target} is {run.get('status')}; only queued or running runs can be canceled")
        ids = [target]
    for rid in ids:
        store.set_run_status(rid, "canceled", phase="canceled", error="canceled by user")
        store.log(rid, "canceled by user")
        if force:
            run = store.run(rid) or {}
            backend = get_backend((store.study(run.get("study_id", "")) or {}).get("backend"))
            backend.stop(redis, run.get("job_id") or run_job_id(rid))
    return ids


def retry(redis: Redis, run_id: str) -> str:
    """Queue a failed or canceled run again (and a fresh ranking after it). Returns the new job id."""
    store = JobStore(redis)
    run = store.run(run_id)
    if run is None:
        raise KeyError(f"no run '{run_id}'")
    if run.get("status") not in ("failed", "canceled"):
        raise ValueError(f"run {run_id} is {run.get('status')}; only failed or canceled runs can be retried")
    study_id = run["study_id"]
    study = store.study(study_id) or {}
    attempt = int(run.get("attempts") or 0) + 1
    store.set_run_status(run_id, "queued", phase="queued", error="")
    store.log(run_id, "retry requested")
    if study.get("status") == "canceled":
        store.update_study(study_id, status="running")
    job = enqueue_run(redis, {**study, "id": study_id}, run_id, attempt=attempt)
    store.update_run(run_id, job_id=job.id)
    rank = Queue(QUEUE_DEFAULT, connection=redis).enqueue_call(
        "workers.tasks.rank_task",
        args=(study_id,),
        job_id=f"wb-rank-{study_id}-{secrets.token_hex(2)}",
        depends_on=Dependency(jobs=[job.id], allow_failure=True),
        result_ttl=RESULT_TTL,
        failure_ttl=RESULT_TTL,
    )
    store.update_study(study_id, rank_job_id=rank.id, phase="running", status="running")
    return job.id


# ---------------------------------------------------------------------------------------------
# Refine: more runs where the decision is too close to call (core.decision)

REFINEMENTS_FILE = "refinements.json"  # in the study's folder: the runs refinements added, for reindex


class RefineError(ValueError):
    """A study that cannot be refined now, with what to do instead."""


def refine(redis: Redis, study_id: str, *, force: bool = False, artifacts: ArtifactStore | None = None) -> list[str]:
    """Enqueue the study's proposed refinement as more runs of the same study; returns the new run ids.

    The proposal (metrics.json's `decision`) is the contenders at twice the largest size. Fits,
    ranking and pages update when the runs finish. Without `force`, a settled decision is refused.
    """
    from core.study import RunSpec, load_prepared, refinement_problem, run_key

    artifacts = artifacts or ArtifactStore()
    store = JobStore(redis)
    study = store.study(study_id)
    if study is None:
        raise KeyError(f"no study '{study_id}'; `workbench status` lists them")
    if study.get("phase") != "done" or study.get("status") != "finished":
        raise RefineError(f"study {study_id} is {study.get('status')}: refine a finished study (wait for it)")
    decision = (read_json(artifacts.study_dir(study_id) / "metrics.json") or {}).get("decision")
    if not decision or not decision.get("proposal"):
        raise RefineError(f"study {study_id} has no refinement to propose (it already measured the target size)")
    if not decision.get("inconclusive") and not force:
        raise RefineError(f"the decision of study {study_id} is settled; refine it anyway with force (--force)")
    p = decision["proposal"]
    prepared = load_prepared(artifacts.prepared_dir(study_id))
    problems = [m for m in (refinement_problem(prepared, arm, p["size"]) for arm in p["arms"]) if m]
    if problems:
        raise RefineError("cannot refine: " + "; ".join(problems))
    existing = store.study_runs(study_id)
    have = {(r["arm"], int(r["size"]), int(r["seed"])) for r in existing}
    added = [
        {"arm": a, "size": p["size"], "seed": s} for a in p["arms"] for s in p["seeds"] if (a, p["size"], s) not in have
    ]
    if not added:
        raise RefineError(f"study {study_id} already has the proposed runs at {p['size']:,} rows")
    to_run = {"status": "queued", "cached": False, "phase": "queued", "attempts": 0}
    records = []
    for i, r in enumerate(added, start=len(existing)):
        run = RunSpec(r["arm"], r["size"], r["seed"], run_key(prepared, r["arm"], r["size"], r["seed"]))
        records.append(_run_record(study_id, i, run, artifacts.get_result(run.key), to_run))
    folder = artifacts.study_dir(study_id)
    write_text(folder / REFINEMENTS_FILE, json.dumps((read_json(folder / REFINEMENTS_FILE) or []) + added))
    store.add_runs(study_id, records)
    refined = int(study.get("refined_runs") or 0) + len(records)
    store.update_study(study_id, status="queued", phase="running", refined_at_size=p["size"], refined_runs=refined)
    _enqueue(redis, {**study, "id": study_id}, records)
    return [r["id"] for r in records]


# ---------------------------------------------------------------------------------------------
# Rebuild Redis from the artifacts store


def reindex(redis: Redis, artifacts: ArtifactStore | None = None) -> list[str]:
    """Recreate study and run records from the artifacts store (after Redis lost its data)."""
    import yaml

    from core.results import StudyResult
    from core.spec import parse_spec
    from core.study import load_prepared, plan_runs

    artifacts = artifacts or ArtifactStore()
    store = JobStore(redis)
    rebuilt = []
    for study_id in artifacts.study_ids():
        if store.study(study_id) is not None:
            continue
        spec_file = artifacts.study_dir(study_id) / "spec.yaml"
        if not spec_file.is_file():
            continue
        spec = parse_spec(yaml.safe_load(spec_file.read_text()), stored=True)
        try:
            refinements = read_json(artifacts.study_dir(study_id) / REFINEMENTS_FILE) or []
            prepared = load_prepared(artifacts.prepared_dir(study_id))
            runs = plan_runs(prepared, refinements)
        except FileNotFoundError:
            continue
        lost = {"status": "failed", "phase": "lost", "error": "lost with Redis before it finished; retry it"}
        records = [_run_record(study_id, i, run, artifacts.get_result(run.key), lost) for i, run in enumerate(runs)]
        metrics = read_json(artifacts.study_dir(study_id) / "metrics.json")
        record = {
            "name": spec.name,
            "spec": dump_spec(spec),
            "status": "finished" if metrics else "failed",
            "phase": "done",
            "backend": DEFAULT_BACKEND,
            "primary_metric": spec.primary_metric,
            "target_size": spec.target_size,
            "prescreen_key": prescreen_key(prepared),
            "reindexed": True,
        }
        if metrics:
            record["ranking"] = StudyResult.from_dict(metrics).ranking_summary()
            record["results_dir"] = str(artifacts.study_dir(study_id))
        store.create_study(study_id, record, records)
        rebuilt.append(study_id)
    return rebuilt


def terminal(status: str | None) -> bool:
    return status in TERMINAL


# ---------------------------------------------------------------------------------------------
# Before submitting: what the dashboard's Setup page shows


def preview(spec: StudySpec, *, sample: int = 5, artifacts: ArtifactStore | None = None) -> dict:
    """Validate and load a study's data without enqueueing anything.

    Returns the data summary (rows, labels, contamination removed), a few normalized rows of each
    source, the number of runs, how many are already cached, and a time estimate from the runs
    this store has finished before (median per run), or None when there is no history.
    """
    from statistics import median

    from core.study import plan_runs, prepare_study

    artifacts = artifacts or ArtifactStore()
    # Near-duplicates need every candidate row embedded: the queued pre-screen and Run check them, not this page.
    prepared = prepare_study(spec, semantic=False)
    runs = plan_runs(prepared)
    cached = sum(1 for r in runs if artifacts.get_result(r.key) is not None)
    history = []
    for key in artifacts.result_keys()[-200:]:
        res = artifacts.get_result(key) or {}
        if res.get("model") == spec.model and (res.get("timings") or {}).get("total_seconds"):
            history.append(res["timings"]["total_seconds"])
    per_run = median(history) if history else None
    samples = {"d0": prepared.d0.rows[:sample], "benchmark": prepared.benchmark.rows[:sample]}
    samples.update({name: data.rows[:sample] for name, data in prepared.candidates.items()})
    return {
        "summary": prepared.summary(),
        "prescreen_key": prescreen_key(prepared),
        "samples": samples,
        "runs": len(runs),
        "cached": cached,
        "per_run_seconds": per_run,
        "estimate_seconds": None if per_run is None else per_run * (len(runs) - cached),
    }


# ---------------------------------------------------------------------------------------------
# Model probe (the Setup page's "Check model")


def check_model(model: str, *, endpoint: str | None = None, timeout: float = 10.0) -> dict:
    """Can a run load `model`? Returns {"ok": bool, "kind": str, "message": str}; never raises.

    kind: "builtin", "local" (a folder), "hub" (public, or gated with access), "gated" (no access),
    "missing", "invalid" (not an id), "unreachable" (offline, no network, Hub error). The probe
    uses this process's token (HF_TOKEN or a saved login); local workers use their own, HF Jobs
    get HF_TOKEN as a secret. The token is never part of the message.
    """
    model = (model or "").strip()
    if not model:
        return _probe(
            False, "invalid", "Give a model: a Hub id (owner/name), a local folder, builtin:tiny-lm or builtin:minilm"
        )
    return _check_here(model) or _check_on_hub(model, endpoint=endpoint, timeout=timeout)


def _probe(ok: bool, kind: str, message: str) -> dict:
    return {"ok": ok, "kind": kind, "message": message}


def _check_here(model: str) -> dict | None:
    """The answer for the built-in model or a local folder; None for a Hub id."""
    from pathlib import Path

    from core import models

    if models.is_builtin(model):
        problem = models.builtin_problem(model)
        if problem:
            return _probe(False, "invalid", problem[0].upper() + problem[1:])
        return _probe(True, "builtin", f"{model}: {models.BUILTINS[model]}; offline, no Hub access needed")
    folder = Path(model).expanduser()
    if not (model.startswith(("/", "./", "../", "~")) or folder.is_dir()):
        return None
    if (folder / "config.json").is_file():
        try:
            kind = models.kind_of(models.local_config(model) or {}, model)
        except models.ModelError as err:
            return _probe(False, "invalid", str(err))
        what = "an encoder (classification only)" if kind == models.ENCODER else "a causal LM"
        return _probe(True, "local", f"Local model folder '{model}', {what} (workers must see the same path)")
    return _probe(
        False,
        "missing",
        f"'{model}' is not a model folder here (no config.json); give a Hub id or a folder saved with save_pretrained",
    )


def _check_on_hub(model: str, *, endpoint: str | None, timeout: float) -> dict:
    import os

    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint or (os.environ.get("HF_ENDPOINT") or "").rstrip("/") or None)
    try:
        info = api.model_info(model, timeout=timeout)
        if getattr(info, "gated", None):
            api.auth_check(model)  # a gated model's card is public; its files are not
    except Exception as err:  # each Hub or network error becomes an answer; no traceback for the user
        return _hub_error_answer(model, err)
    gated = " (gated; this token has access)" if getattr(info, "gated", None) else ""
    return _probe(True, "hub", f"'{model}' is on the Hub and readable{gated}")


def _hub_error_answer(model: str, err: Exception) -> dict:
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    unreachable = (
        "Cannot reach the Hugging Face Hub from here ({why}), so '{model}' was not checked; "
        "the built-in models builtin:tiny-lm and builtin:minilm work offline, or check again when the network is back"
    )
    if isinstance(err, GatedRepoError):
        return _probe(
            False,
            "gated",
            f"'{model}' is gated and the token here has no access: request access on its Hub page, then set "
            "HF_TOKEN (for local workers, in their environment) to a token of the account that has it",
        )
    if isinstance(err, RepositoryNotFoundError):
        return _probe(
            False,
            "missing",
            f"'{model}' was not found on the Hub (or it is private to an account this token cannot read): "
            "check the id (owner/name)",
        )
    if isinstance(err, HFValidationError):
        return _probe(
            False,
            "invalid",
            f"'{model}' is not a valid Hub model id; write owner/name (e.g. Qwen/Qwen2.5-0.5B) or builtin:tiny-lm",
        )
    if isinstance(err, OfflineModeIsEnabled):
        return _probe(False, "unreachable", unreachable.format(why="offline mode is on: HF_HUB_OFFLINE=1", model=model))
    if isinstance(err, HfHubHTTPError):
        status = err.response.status_code if getattr(err, "response", None) is not None else None
        if status in (401, 403):
            message = (
                f"The Hub refused access to '{model}' (HTTP {status}): set HF_TOKEN to a valid token that can read it"
            )
            return _probe(False, "gated", message)
        return _probe(
            False, "unreachable", unreachable.format(why=f"the Hub answered HTTP {status or 'error'}", model=model)
        )
    return _probe(False, "unreachable", unreachable.format(why=f"network error: {type(err).__name__}", model=model))
