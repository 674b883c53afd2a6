"""Inside a Hugging Face Job: `workbench remote-run` trains a batch of runs and commits their results once.

The worker writes the batch (`experiments/<study>/batches/<batch>.json`: run id, arm, size, seed and
key of each run) to the results repo before it submits the Job. The Job downloads the prepared data
once, then trains the runs in order. Before each run it looks for a cancel marker
(`experiments/<study>/batches/<batch>/canceled/<run>`, written by the worker when the user cancels
that run) and skips the run if there is one. A run that raises is recorded as `error.json` and the
batch goes on. The results, manifests and errors go to the repo in one commit at the end, also when
the batch stops early, so a finished run is never lost.

Log lines about one run carry its id, `[workbench] [<run>] ...` and `[workbench] progress [<run>]
<phase> <step>/<total> loss=...`, so the worker following a run keeps only its own lines.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

PROGRESS_PREFIX = "[workbench] progress "


def experiment_path(study_id: str, run_id: str | None = None, name: str = "prepared.json") -> str:
    return f"experiments/{study_id}/{run_id}/{name}" if run_id else f"experiments/{study_id}/{name}"


def batch_path(study_id: str, batch_id: str) -> str:
    return f"experiments/{study_id}/batches/{batch_id}.json"


def cancel_marker(study_id: str, batch_id: str, run_id: str) -> str:
    return f"experiments/{study_id}/batches/{batch_id}/canceled/{run_id}"


def remote_batch(repo: str, study_id: str, batch_id: str, endpoint: str | None, out=print) -> dict:
    """Train the batch's runs; {run id: "finished" | "failed" | "skipped"}. What the Job executes."""
    from huggingface_hub import HfApi, get_token, hf_hub_download

    from core.study import load_prepared

    token = get_token()
    if not token:
        raise RuntimeError("no HF_TOKEN in the Job's environment (the workbench passes it as a secret)")
    api = HfApi(endpoint=endpoint, token=token)
    work = Path(tempfile.mkdtemp(prefix="workbench-remote-"))
    ops: list = []
    outcome: dict[str, str] = {}
    try:
        out(f"[workbench] downloading {experiment_path(study_id)} and batch {batch_id} from {repo}")

        def download(path: str) -> Path:
            return Path(
                hf_hub_download(repo, path, repo_type="dataset", token=token, local_dir=work / "in", endpoint=endpoint)
            )

        prepared = load_prepared(download(experiment_path(study_id)).parent)
        runs = json.loads(download(batch_path(study_id, batch_id)).read_text(encoding="utf-8"))
        for item in runs:
            rid = item["run_id"]
            if api.file_exists(repo, cancel_marker(study_id, batch_id, rid), repo_type="dataset", token=token):
                out(f"[workbench] [{rid}] skipped: canceled by the user")
                outcome[rid] = "skipped"
                continue
            outcome[rid] = _one_run(prepared, item, study_id, work, ops, out)
    finally:
        if ops:
            out(f"[workbench] uploading {len(ops)} file(s) of batch {batch_id} to {repo}")
            api.create_commit(
                repo,
                operations=ops,
                commit_message=f"results of batch {batch_id} of study {study_id}",
                repo_type="dataset",
                token=token,
            )
        shutil.rmtree(work, ignore_errors=True)
    return outcome


def _one_run(prepared, item: dict, study_id: str, work: Path, ops: list, out) -> str:
    """Train one run of the batch; its files join `ops`. "finished", or "failed" with error.json."""
    from huggingface_hub import CommitOperationAdd

    from core.artifacts import ArtifactStore
    from core.study import RunSpec, execute_run, run_key

    rid, key = item["run_id"], item["key"]
    run = RunSpec(item["arm"], int(item["size"]), int(item["seed"]), key)
    expected = run_key(prepared, run.arm, run.size, run.seed)
    if expected != key:
        out(f"[workbench] [{rid}] warning: this image computes key {expected}, the worker sent {key}; kept {key}")
    out(f"[workbench] [{rid}] running {run.label} ({prepared.spec.model}, key {key})")
    last = {"phase": None, "at": 0.0}

    def progress(phase: str, step: int, total: int, loss: float | None) -> None:
        now = time.monotonic()
        if phase != last["phase"] or now - last["at"] >= 2.0 or (total and step >= total):
            last.update(phase=phase, at=now)
            tail = f" loss={loss:.4f}" if loss is not None else ""
            out(f"{PROGRESS_PREFIX}[{rid}] {phase} {step}/{total}{tail}")

    store = ArtifactStore(work / "artifacts")
    try:
        result = execute_run(prepared, run, store=store, progress=progress, keep_weights=False)
    except Exception as err:  # noqa: BLE001 - one run's failure is its own; the batch goes on
        message = f"{type(err).__name__}: {err}"
        out(f"[workbench] [{rid}] failed: {message}")
        error_file = work / "errors" / f"{rid}.json"
        error_file.parent.mkdir(parents=True, exist_ok=True)
        error_file.write_text(json.dumps({"error": message}))
        ops.append(CommitOperationAdd(experiment_path(study_id, rid, "error.json"), str(error_file)))
        return "failed"
    for name in ("result.json", "manifest.json"):
        if (store.run_dir(key) / name).is_file():
            ops.append(CommitOperationAdd(experiment_path(study_id, rid, name), str(store.run_dir(key) / name)))
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in result["metrics"].items() if isinstance(v, (int, float)))
    out(f"[workbench] [{rid}] done: {metrics}")
    return "finished"
