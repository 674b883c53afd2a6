"""RQ task functions: what a worker executes. Each one is a thin shell over core.

- `run_task`: one run (train + evaluate) on this worker — queue `gpu`.
- `fit_task`: a candidate's points and a preliminary solo fit, once its runs are done — `default`.
- `rank_task`: the study's joint fit, ranking and outputs, once the fits are done — `default`.
- `prescreen_task`: the embedding pre-screen of a study's data (and its near-duplicate check) — `default`.
- `hf_run_task` (workers/backends/hf_jobs.py): a run on Hugging Face Jobs, submitted and followed — `default`.

A run's record-keeping (cancel, cache, heartbeat, failure) is `workers.run_lifecycle`, shared by both.

Progress goes to the job store; results go to the artifacts store (first write wins, so a run
that two workers finished is stored once). Tokens are read from the worker's environment only.
"""

from __future__ import annotations

import gc
import logging
import time
from pathlib import Path

from rq import get_current_job

from core.artifacts import ArtifactStore
from workers.backends.base import RunCanceled
from workers.run_lifecycle import REDIS_AWAY, patiently, run_lifecycle
from workers.store import JobStore

log = logging.getLogger(__name__)

_PREPARED: dict[str, object] = {}
CANCEL_CHECK_SECONDS = 1.0


def _store() -> JobStore:
    job = get_current_job()
    if job is None:
        raise RuntimeError("task functions run inside an RQ worker")
    return JobStore(job.connection)


def prepared_for(study_id: str, artifacts: ArtifactStore):
    """The study's prepared data, loaded from the artifacts store once per process."""
    from core.study import load_prepared

    if study_id not in _PREPARED:
        _PREPARED[study_id] = load_prepared(artifacts.prepared_dir(study_id))
    return _PREPARED[study_id]


def _progress_reporter(store: JobStore, run_id: str):
    """Training progress to the store; raises RunCanceled (checked at most once a second) after a cancel."""
    last_check = [0.0]

    def progress(phase: str, step: int, total: int, loss: float | None) -> None:
        try:
            store.progress(run_id, phase, step, total, loss)
            now = time.monotonic()
            if now - last_check[0] >= CANCEL_CHECK_SECONDS:
                last_check[0] = now
                if (store.run(run_id) or {}).get("status") == "canceled":
                    raise RunCanceled(run_id)
        except REDIS_AWAY:
            pass  # Redis restarting: progress is best effort, training goes on (the next step reports again)

    return progress


def run_task(study_id: str, run_id: str) -> dict:
    """Train and evaluate one run of a study on this worker (the local backend's job)."""
    from core.study import RunSpec, execute_run

    with run_lifecycle(study_id, run_id, phase="loading") as run:
        if run.outcome is None:
            record = run.record
            spec = RunSpec(record["arm"], int(record["size"]), int(record["seed"]), record["key"])
            prepared = prepared_for(study_id, run.artifacts)
            gc.freeze()  # the study's data lives as long as this work horse: keep it out of every collection
            result = execute_run(prepared, spec, store=run.artifacts, progress=_progress_reporter(run.store, run_id))
            run.outcome = _finish(run.store, run_id, spec.key, result, len(prepared.benchmark.rows))
    return run.outcome


def _finish(store: JobStore, run_id: str, key: str, result: dict, rows: int) -> dict:
    """Mark a run finished from its stored result; the writes wait out a Redis restart rather than fail it."""
    # Canceled while evaluating: the user's word stands.
    if (patiently(store.run, run_id) or {}).get("status") == "canceled":
        return {"run_id": run_id, "status": "canceled", "key": key}
    patiently(
        store.set_run_status,
        run_id,
        "finished",
        metrics=result["metrics"],
        phase="done",
        step=rows,
        total=rows,
        cached=bool(result.get("cached")),
        steps=result.get("train", {}).get("steps"),
        seconds=result.get("timings", {}).get("total_seconds"),
    )
    patiently(store.log, run_id, "finished: " + ", ".join(f"{k}={v:.4f}" for k, v in result["metrics"].items()))
    return {"run_id": run_id, "key": key, "metrics": result["metrics"], "cached": bool(result.get("cached"))}


def fit_task(study_id: str, arm: str) -> dict:
    """A candidate's measured points and a solo fit, for the dashboard while other arms still run."""
    from core.artifacts import read_json, write_json
    from core.fit_cache import fit_key
    from core.scaling import fit_study
    from core.study import is_higher_better, measured_points

    store = _store()
    artifacts = ArtifactStore()
    study = store.study(study_id) or {}
    metric = study.get("primary_metric", "macro_f1")
    target = int(study.get("target_size") or 0) or None
    runs = [r for r in store.study_runs(study_id) if r.get("arm") == arm]
    results = [artifacts.get_result(r["key"]) for r in runs]
    results = [r for r in results if r]
    failed = sum(1 for r in runs if r.get("status") == "failed")
    summary = {"arm": arm, "finished": len(results), "failed": failed, "planned": len(runs)}
    complete = len(results) == len(runs)  # every run in: the fit is a function of their keys, kept by key
    key = fit_key(arm, [r["key"] for r in runs], metric, target)
    cached = read_json(artifacts.fit_path(key)) if complete else None
    if cached is not None:
        store.update_study(study_id, **{f"fit:{arm}": cached})
        return cached
    points = measured_points(results, metric)
    if target and points["size"].nunique() >= 2:
        fit = fit_study(
            points,
            metric=metric,
            higher_is_better=is_higher_better(metric),
            target_size=target,
            n_boot=0,
            shared="none",
        )
        f = fit.fits.get(arm)
        if f is not None and f.prediction is not None:
            summary["preliminary_prediction"] = f.prediction.value
    if complete:
        write_json(artifacts.fit_path(key), summary)
    store.update_study(study_id, **{f"fit:{arm}": summary})
    return summary


def rank_task(study_id: str) -> dict:
    """The study's joint fit and ranking from every finished run; writes metrics.json and charts."""
    import yaml

    from core.fit_cache import ranking_key, store_ranking
    from core.results import StudyResult
    from core.spec import parse_spec
    from core.study import summarize_study, write_study_outputs

    store = _store()
    artifacts = ArtifactStore()
    study = store.study(study_id)
    if study is None:
        raise RuntimeError(f"study {study_id} has no record in Redis")
    spec = parse_spec(yaml.safe_load(study["spec"]), stored=True)
    runs = store.study_runs(study_id)
    results, failed = [], []
    for r in runs:
        res = artifacts.get_result(r["key"])
        if res is not None:
            results.append(dict(res, cached=bool(r.get("cached"))))
        else:
            failed.append(
                {
                    "arm": r["arm"],
                    "size": r["size"],
                    "seed": r["seed"],
                    "key": r["key"],
                    "status": r.get("status"),
                    "error": r.get("error", ""),
                }
            )
    prepared_file = artifacts.prepared_dir(study_id) / "prepared.json"
    contamination, near_duplicates = {}, None
    if prepared_file.is_file():
        prepared = prepared_for(study_id, artifacts)
        contamination, near_duplicates = prepared.contamination, prepared.near_duplicates
    if not results:
        status = "canceled" if study.get("status") == "canceled" else "failed"
        store.update_study(study_id, status=status, error="no run finished: nothing to fit", phase="done")
        return {"study_id": study_id, "status": status}
    summary = summarize_study(
        spec, results, contamination=contamination, near_duplicates=near_duplicates, failed=failed
    )
    summary["study_id"] = study_id
    out = write_study_outputs(summary, artifacts.study_dir(study_id), spec)
    canceled = study.get("status") == "canceled"
    if not failed and not canceled:
        key = ranking_key(study["spec"], [r["key"] for r in runs], contamination, near_duplicates)
        store_ranking(artifacts, key, artifacts.study_dir(study_id))
    store.update_study(
        study_id,
        status="canceled" if canceled else "finished",
        phase="done",
        failed_runs=len(failed),
        ranking=StudyResult.from_dict(out).ranking_summary(),
        results_dir=str(artifacts.study_dir(study_id)),
    )
    if spec.refine == "auto" and not canceled:
        _refine_within_budget(store, study_id, spec, out.get("decision") or {})
    return {"study_id": study_id, "ranking": [r["candidate"] for r in out["ranking"]]}


def _refine_within_budget(store: JobStore, study_id: str, spec, decision: dict) -> None:
    """`refine: auto`: an inconclusive study adds its proposed runs itself while they fit in `refine_budget`."""
    from workers.client import RefineError, refine

    p = decision.get("proposal")
    if not decision.get("inconclusive") or not p:
        return
    used = int((store.study(study_id) or {}).get("refined_runs") or 0)
    if used + p["runs"] > spec.refine_budget:
        store.update_study(
            study_id,
            refine_note=f"inconclusive; the next refinement ({p['runs']} runs) would pass "
            f"refine_budget {spec.refine_budget} ({used} used): refine by hand to go on",
        )
        return
    try:
        ids = refine(store.redis, study_id)
    except RefineError as err:
        store.update_study(study_id, refine_note=f"automatic refinement stopped: {err}")
        return
    log.info("study %s: inconclusive, refined automatically with %d runs at %d rows", study_id, len(ids), p["size"])


def prescreen_task(spec_yaml: str, key: str) -> dict:
    """Prepare the study's data (embedding it for the near-duplicate check) and pre-screen the candidates.

    Progress is in the job's meta ({"phase", "done", "total"}); the result goes to the artifacts
    store under `key`, where Setup and Results read it.
    """
    import yaml

    from core.prescreen import screen
    from core.spec import parse_spec
    from core.study import prepare_study

    job = get_current_job()

    def progress(phase: str, done: int, total: int, _loss=None) -> None:
        if job is not None:
            job.meta["progress"] = {"phase": phase, "done": done, "total": total}
            job.save_meta()

    progress("loading the data", 0, 0)
    spec = parse_spec(yaml.safe_load(spec_yaml), stored=True)
    prepared = prepare_study(spec)
    progress("embedding", 0, len(prepared.candidates) + 2)
    result = screen(prepared, progress=progress) | {"key": key, "data": prepared.summary()}
    ArtifactStore().put_prescreen(key, result)
    return {"key": key, "ranking": result["ranking"], "seconds": result["seconds"]}


def noop_task(payload: str = "") -> str:
    """A job that does nothing: for benchmarks of the queue itself."""
    return payload


def artifacts_root() -> Path:
    return ArtifactStore().root
