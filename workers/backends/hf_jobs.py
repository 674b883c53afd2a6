"""The Hugging Face Jobs backend: a run trains in a Job container; this worker submits and follows it.

`hf_run_task(study_id, run_id)` runs on the `default` queue and holds no GPU. It does for a remote run
what `run_task` does for a local one, with the same record-keeping (`workers.run_lifecycle`). By
default one Job trains all of a candidate's runs (a batch, `hf_batch: candidate`): the first of
their tasks submits it and points the others' records at it; each task then follows the Job for its
own run (its log lines, its progress, its result). workers/backends/hf_remote.py is the Job's side.

1. reads the study and run records; a canceled run ends at once, a run whose key already has a
   result is marked finished from it;
2. takes the token from this worker's environment only (HF_TOKEN, via `huggingface_hub.get_token`).
   The token goes to the Job as a *secret* (encrypted by the Hub) and nowhere else: not in Redis,
   not in the Job's `env`, its command, the logs or the artifacts;
3. makes sure the results repo exists (a private dataset repo: RESULTS_REPO, default
   `<user>/workbench-results`) and holds the study's prepared data
   (`experiments/<study>/prepared.json`), so the container can run any source, local files included;
4. probes the model before paying for a container (missing or gated: the run fails with the fix);
5. submits the Job (`workbench remote-run ...` in the image, with a flavor and always a timeout)
   and follows it: the Job's stage becomes the run's phase, its log lines go to the run's events
   (progress lines become progress), a user's cancel skips the run in the Job (and cancels the Job
   when no run of it is left);
6. on COMPLETED downloads `experiments/<study>/<run>/result.json` and `manifest.json` from the
   results repo into the artifacts store (first write wins) and marks the run finished; ERROR or
   DELETED fail the run with the Job's message and its last log lines; CANCELED cancels it.

A retried task (the worker died while following) finds the Job id in the run record and follows the
same Job again instead of paying for a second one.

The image: `workbench remote-run` must be runnable in it. The default image is uv's Python image,
into which the Job installs the wheel of the worker's own code and the pinned requirements, both
uploaded to the results repo by the worker (workers/backends/job_bootstrap.py). A team can instead
push its own image (`docker build --target jobs`, docs/OPERATIONS.md) and give it as the study's
`hf_image`, or set WORKBENCH_PIP_SPEC on the worker (pip requirement words) for the Job to install.

HF_ENDPOINT points the client (and the Job, which is given the same endpoint) at another Hub; the
tests use a local fake Hub that way.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from huggingface_hub import JobHardware

from workers.backends import hub_errors, job_bootstrap
from workers.backends.base import QUEUE_DEFAULT, Backend, Option, RunFailed, register
from workers.backends.hf_remote import batch_path, cancel_marker, experiment_path

if TYPE_CHECKING:  # imported where used: the registry loads this module for `workbench --help` too
    from core.artifacts import ArtifactStore
    from workers.store import JobStore

log = logging.getLogger(__name__)

# uv's Python image: the Job installs the worker's own wheel and pins into it (workers/backends/job_bootstrap.py).
DEFAULT_IMAGE = "ghcr.io/astral-sh/uv:python3.11-bookworm"
DEFAULT_FLAVOR = "t4-small"
DEFAULT_TIMEOUT = "2h"  # the server's default is 30 min: always send one
DEFAULT_POLL_SECONDS = 10.0
RESULTS_REPO_NAME = "workbench-results"
LOG_LINES_PER_POLL = 200  # new log lines kept per poll (the event log itself is bounded too)
ERROR_TAIL_LINES = 15
LOG_ANCHOR_LINES = 3
MAX_POLL_ERRORS = 30  # consecutive failed polls (Hub unreachable) before the task gives up
# How the Hub words a Job stopped by its timeout (told apart from a user's cancel by this message).
_TIMEOUT_RE = re.compile(r"time ?out|timed out", re.IGNORECASE)
_PROGRESS_RE = re.compile(
    r"^\[workbench\] progress (?:\[(?P<run>[^\]]+)\] )?(?P<phase>[a-z_]+) (?P<step>\d+)/(?P<total>\d+)"
    r"(?: loss=(?P<loss>\S+))?\s*$"
)
_RUN_TAG_RE = re.compile(r"^\[workbench\] (?:progress )?\[(?P<run>[^\]]+)\] ")  # a line about one run of a batch

HARDWARE_TTL_S = 3600  # how long a read of the Hub's hardware list is kept
HARDWARE_RETRY_S = 300  # after a failed read, the client's built-in list is used this long
_hardware: dict = {"at": -1e9, "names": (), "prices": {}, "live": False}


def hardware() -> dict:
    """The Jobs flavors: {"names", "prices" (USD per hour by name), "live" (read from the Hub)}.

    Read with `list_jobs_hardware()` (kept HARDWARE_TTL_S); when the Hub cannot be asked (offline,
    unreachable), the client's own `JobHardware` list, without prices, for HARDWARE_RETRY_S.
    """
    from huggingface_hub import HfApi, constants

    now = time.monotonic()
    if now - _hardware["at"] < (HARDWARE_TTL_S if _hardware["live"] else HARDWARE_RETRY_S):
        return _hardware
    names, prices, live = tuple(h.value for h in JobHardware), {}, False
    if not constants.is_offline_mode():
        try:
            listed = HfApi(endpoint=_endpoint()).list_jobs_hardware()
            names = tuple(h.name for h in listed)
            prices = {h.name: round(h.unit_cost_usd * 60, 4) for h in listed if h.unit_label == "minute"}
            live = True
        except Exception as err:  # noqa: BLE001 - any failure: the built-in list, said in the log
            log.warning("the Hub's Jobs hardware list could not be read (%s); using the client's list", err)
    _hardware.update(at=now, names=names, prices=prices, live=live)
    return _hardware


def flavors() -> tuple[str, ...]:
    return hardware()["names"]


FOLLOW_MARGIN = 600  # seconds the follower may outlive the run's own timeout (submission, collecting the result)


class HFJobsBackend(Backend):
    def job_timeout(self, run_timeout: int) -> int:
        return run_timeout + FOLLOW_MARGIN


HF_JOBS = register(
    HFJobsBackend(
        name="hf_jobs",
        label="Hugging Face Jobs",
        help="one Hugging Face Job per run (needs HF_TOKEN on the workers)",
        queue=QUEUE_DEFAULT,
        job_function="workers.backends.hf_jobs.hf_run_task",
        cancel_note="At its next poll the worker following its Job has the Job skip the run, and cancels the Job "
        "on the Hub when none of its runs is left.",
        link_label="HF Job",
        options=(
            Option(
                "hf_flavor",
                "Flavor",
                "The Job's hardware (the Hub's current list; hf.co/pricing for prices).",
                DEFAULT_FLAVOR,
                choices=flavors,
                flag="--flavor",
            ),
            Option(
                "hf_timeout",
                "Timeout",
                "Per Job, e.g. 30m, 2h, 1d.",
                DEFAULT_TIMEOUT,
                pattern=r"\d+(\.\d+)?\s*[smhd]|\d+",
                hint="give a duration like 30m, 2h or 1d",
                flag="--hf-timeout",
            ),
            Option(
                "hf_batch",
                "One Job per",
                "candidate: one Job trains all of a candidate's runs (one container start and install); "
                "run: one Job per run (they run at once on as many workers).",
                "candidate",
                choices=("candidate", "run"),
                flag="--hf-batch",
            ),
            Option(
                "hf_image",
                "Image",
                "Container image with the workbench installed (default: a stock PyTorch image).",
                flag="--image",
                form=False,
            ),
            Option(
                "hf_namespace",
                "Namespace",
                "The user or organization the Jobs run under (default: the token's user).",
                flag="--namespace",
                form=False,
            ),
        ),
    )
)


# ------------------------------------------------------------------------------------------------
# Small helpers


def poll_seconds() -> float:
    try:
        return max(0.05, float(os.environ.get("WORKBENCH_HF_POLL") or DEFAULT_POLL_SECONDS))
    except ValueError:
        return DEFAULT_POLL_SECONDS


def _endpoint() -> str | None:
    """HF_ENDPOINT read now (not at import), so a worker follows its own environment."""
    value = os.environ.get("HF_ENDPOINT")
    return value.rstrip("/") if value else None


def remote_command(repo: str, study_id: str, batch_id: str) -> list[str]:
    """The Job's command: a list, the batch's ids as separate items (its runs are in the results repo)."""
    args = ["--repo", repo, "--study", study_id, "--batch", batch_id]
    return ["sh", "-c", job_bootstrap.SCRIPT, "workbench", *args]


def _redact(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token and text else text


def _stage(job) -> str:
    stage = job.status.stage
    return str(getattr(stage, "value", stage))


def _is_local_model(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~")) or Path(model).expanduser().exists()


class _Follower:
    """The run's side of one Job: store updates, log lines, progress, the user's cancel."""

    def __init__(self, store: JobStore, run_id: str, token: str):
        self.store, self.run_id, self.token = store, run_id, token
        self.seen = 0
        self.anchor: list[str] = []  # the last lines taken, to find them again in a partial replay
        self.tail: list[str] = []
        self.log_failures = 0

    def canceled_by_user(self) -> bool:
        return (self.store.run(self.run_id) or {}).get("status") == "canceled"

    def unseen(self, lines: list[str]) -> list[str]:
        """The lines of this fetch not taken before. A fetch normally replays the whole log, but it may
        replay only its latest lines, or start over (a retried container): the last lines taken are
        looked for, and what follows them is new."""
        anchor, k = self.anchor, len(self.anchor)
        if k == 0 or (self.seen <= len(lines) and lines[self.seen - k : self.seen] == anchor):
            new = lines[self.seen :]
        else:
            ends = [j for j in range(len(lines), k - 1, -1) if lines[j - k : j] == anchor]
            new = lines[ends[0] :] if ends else lines
            if not ends:
                self.store.log(self.run_id, "the Job's log was replayed from a later point: some lines may be missing")
        self.seen = len(lines)
        self.anchor = (anchor + new)[-LOG_ANCHOR_LINES:]
        return new

    def take_logs_safely(self, api, job_id: str, namespace: str) -> None:
        """`take_logs`, where a failure is said in the run's log (at the 1st, 10th, 100th...) and nothing more."""
        try:
            self.take_logs(api, job_id, namespace)
        except Exception as err:
            if not (hub_errors.is_transient(err) or hub_errors.status_of(err) is not None):
                raise
            self.log_failures += 1
            if self.log_failures in (1, 10, 100, 1000):
                self.store.log(
                    self.run_id,
                    f"the Job's logs could not be read ({hub_errors.status_of(err) or type(err).__name__}, "
                    f"{self.log_failures} time(s)); its status is still followed",
                )

    def take_logs(self, api, job_id: str, namespace: str) -> None:
        """Append the Job's new log lines to the run's events; progress lines become progress."""
        lines = [
            _redact(str(line).rstrip("\n"), self.token)
            for line in api.fetch_job_logs(job_id=job_id, namespace=namespace, follow=False)
        ]
        new = self.unseen(lines)
        if not new:
            return
        own = [ln for ln in new if not ((t := _RUN_TAG_RE.match(ln.strip())) and t["run"] != self.run_id)]
        self.tail = (self.tail + own)[-ERROR_TAIL_LINES:]
        skipped = max(0, len(new) - LOG_LINES_PER_POLL)
        if skipped:
            self.store.log(self.run_id, f"... {skipped} log line(s) skipped")
        for line in new[-LOG_LINES_PER_POLL:]:
            tag = _RUN_TAG_RE.match(line.strip())
            if tag and tag["run"] != self.run_id:
                continue  # another run of the batch
            m = _PROGRESS_RE.match(line.strip())
            if m:
                loss = m["loss"]
                try:
                    loss_value = float(loss) if loss not in (None, "", "nan", "None") else None
                except ValueError:
                    loss_value = None
                self.store.progress(self.run_id, m["phase"], int(m["step"]), int(m["total"]), loss_value)
            elif line.strip():
                self.store.log(self.run_id, line[:2000])


# ------------------------------------------------------------------------------------------------
# The task


def hf_run_task(study_id: str, run_id: str) -> dict:
    """Run one run of a study on Hugging Face Jobs and follow it to the end (RQ task, `default` queue)."""
    from workers.run_lifecycle import run_lifecycle

    note = "submitting to Hugging Face Jobs"
    with run_lifecycle(study_id, run_id, phase="submitting", note=note, backend=HF_JOBS.name) as run:
        if run.outcome is None:
            run.secret = _token()
            run.outcome = _run_remote(run.store, run.artifacts, study_id, run.study, run_id, run.record, run.secret)
    return run.outcome


def _token() -> str:
    from huggingface_hub import constants, get_token

    if constants.is_offline_mode():
        raise RunFailed(
            "HF_HUB_OFFLINE is set in this worker's environment, so it cannot reach the Hub: "
            "unset it for the workers that serve HF Jobs studies"
        )
    token = get_token()
    if not token:
        raise RunFailed(
            "no Hugging Face token: set HF_TOKEN in the worker's environment (it is passed to the Job as a secret)"
        )
    return token


def _spec_of(study: dict):
    import yaml

    from core.spec import parse_spec

    return parse_spec(yaml.safe_load(study["spec"]), stored=True)


def _run_remote(
    store: JobStore, artifacts: ArtifactStore, study_id: str, study: dict, run_id: str, record: dict, token: str
) -> dict:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=_endpoint(), token=token)
    note = functools.partial(store.log, run_id)
    user = study.get("hf_user")
    if not user:  # whoami is heavily rate-limited: once per study, kept in its record
        user = hub_errors.call(lambda: api.whoami(token=token)["name"], "checking the token (whoami)", on_wait=note)
        store.update_study(study_id, hf_user=user)
    repo = os.environ.get("RESULTS_REPO") or f"{user}/{RESULTS_REPO_NAME}"
    follower = _Follower(store, run_id, token)
    # One task at a time per candidate finds the Job its run is in, or submits one for every run of the
    # candidate still waiting (a batch): two workers never both pay for a Job.
    lock = store.redis.lock(_batch_lock(study, study_id, record), timeout=1800, blocking_timeout=1800)
    with lock:
        record = store.run(run_id) or record  # a batch mate may have put this run in its Job meanwhile
        job = _job_to_follow(api, store, study, study_id, run_id, record, repo, user, token, note)
        if job is None:
            if follower.canceled_by_user():
                store.log(run_id, "canceled by user before submission")
                return {"run_id": run_id, "status": "canceled"}
            job = _submit_batch(api, store, artifacts, study, study_id, run_id, record, repo, user, token, note)
    record = store.run(run_id) or record
    repo = record.get("backend_repo") or repo
    namespace = job.owner.name
    return _follow(api, store, artifacts, follower, study, study_id, run_id, record, repo, job.id, namespace, token)


def _batch_lock(study: dict, study_id: str, record: dict) -> str:
    per = record["arm"] if study.get("hf_batch", "candidate") == "candidate" else record["id"]
    return f"wb:hf-batch:{study_id}:{per}"


def _job_to_follow(api, store, study, study_id, run_id, record, repo, user, token, note):
    """The Job this run is in (its record's, else one labelled with it), unless that Job completed
    without this run (it was canceled then retried, or it failed and is retried): then None."""
    job = _reattach(api, record, token, note) or _existing_job(api, study, study_id, run_id, user, token, note)
    if job is None:
        return None
    repo = record.get("backend_repo") or repo
    if _stage(job) == "COMPLETED" and not _has_outcome(api, repo, study_id, run_id, record, job.id, token):
        return None
    store.update_run(run_id, backend_job_id=job.id, backend_namespace=job.owner.name, backend_url=job.url)
    store.log(run_id, f"following HF Job {job.id} (submitted earlier)")
    return job


def _has_outcome(api, repo: str, study_id: str, run_id: str, record: dict, job_id: str, token: str) -> bool:
    """A completed Job holds this run's result, or a failure not yet reported to it."""

    def exists(name: str) -> bool:
        path = experiment_path(study_id, run_id, name)
        return hub_errors.call(lambda: api.file_exists(repo, path, repo_type="dataset", token=token), "reading results")

    if exists("result.json"):
        return True
    return record.get("backend_failed_in") != job_id and exists("error.json")


def _reattach(api, record: dict, token: str, note):
    """The Job an earlier attempt of this run submitted, if it still runs or completed; None if it is gone.

    Only "not found" means gone: a rate limit or an unreachable Hub is waited out, and if the Hub never
    answers the task fails (RQ retries it later) rather than paying for a second Job.
    """
    from huggingface_hub.errors import JobNotFoundError

    job_id, namespace = record.get("backend_job_id"), record.get("backend_namespace")
    if not job_id or not namespace or record.get("backend") != HF_JOBS.name or record.get("backend_canceled") == job_id:
        return None
    what = f"checking HF Job {job_id} of an earlier attempt"
    try:
        job = hub_errors.call(
            lambda: api.inspect_job(job_id=job_id, namespace=namespace, token=token), what, on_wait=note
        )
    except JobNotFoundError:
        return None
    except Exception as err:
        if hub_errors.is_transient(err):
            raise RuntimeError(f"{what}: the Hub did not answer ({err}); no second Job is submitted") from None
        raise
    return job if _stage(job) in ("SCHEDULING", "RUNNING", "COMPLETED") else None


def _existing_job(api, study: dict, study_id: str, run_id: str, user: str, token: str, note):
    """A live or completed Job labelled with this run (found with list_jobs), or None."""
    namespace = study.get("hf_namespace") or user
    labels = {"workbench-study": study_id, "workbench-run": run_id}
    jobs = hub_errors.call(
        lambda: list(api.list_jobs(labels=labels, namespace=namespace, token=token)),
        "looking for this run's Job",
        on_wait=note,
    )
    alive = [j for j in jobs if _stage(j) in ("SCHEDULING", "RUNNING", "COMPLETED")]
    return alive[0] if alive else None


def _probe_model(api, model: str, token: str, gated_error, missing_error) -> None:
    """Fail before any container starts when the Job could not load the model."""
    if model.startswith("builtin:"):
        return
    if _is_local_model(model):
        raise RunFailed(
            f"model '{model}' is a local folder, which a Job cannot read: push it to the Hub and use its id"
        )
    try:
        info = api.model_info(model, token=token)
        if getattr(info, "gated", None):
            api.auth_check(model, token=token)  # a gated model's card is public; its files are not
    except gated_error:
        raise RunFailed(
            f"model '{model}' is gated and this token has no access: request access on the model page "
            f"and use a token that has it"
        ) from None
    except missing_error:
        raise RunFailed(
            f"model '{model}' was not found on the Hub (or is private to another account): check the model id"
        ) from None


def _ensure_results_repo(api, repo: str, study_id: str, artifacts: ArtifactStore, token: str, note) -> None:
    """The private dataset repo exists and holds the study's prepared data (uploaded once)."""
    from huggingface_hub import CommitOperationAdd

    hub_errors.call(
        lambda: api.create_repo(repo, repo_type="dataset", private=True, exist_ok=True, token=token),
        f"creating the results repo {repo}",
        on_wait=note,
    )
    path_in_repo = experiment_path(study_id)
    exists = hub_errors.call(
        lambda: api.file_exists(repo, path_in_repo, repo_type="dataset", token=token), "reading the results repo"
    )
    if exists:
        return
    local = artifacts.prepared_dir(study_id) / "prepared.json"
    if not local.is_file():
        raise RunFailed(f"no prepared data for study {study_id} in {artifacts.root}: submit the study again")
    hub_errors.call(
        lambda: api.create_commit(
            repo,
            operations=[CommitOperationAdd(path_in_repo=path_in_repo, path_or_fileobj=str(local))],
            commit_message=f"prepared data of study {study_id}",
            repo_type="dataset",
            token=token,
        ),
        f"uploading the prepared data to {repo}",
        on_wait=note,
    )


def _bootstrap_env(api, study: dict, repo: str, artifacts: ArtifactStore, token: str, note) -> dict[str, str]:
    """Where the Job finds the workbench's wheel and pins in the results repo (built and uploaded once
    per version of the code); {} when the study's own image or WORKBENCH_PIP_SPEC provides the workbench
    and no wheel can be built here."""
    from huggingface_hub import CommitOperationAdd

    try:
        bundle = job_bootstrap.build_bundle(artifacts.root / "bootstrap")
    except job_bootstrap.BootstrapError as err:
        if study.get("hf_image") or os.environ.get("WORKBENCH_PIP_SPEC"):
            return {}
        raise RunFailed(str(err)) from None
    uploaded = hub_errors.call(
        lambda: api.file_exists(repo, bundle.wheel_in_repo, repo_type="dataset", token=token),
        "reading the results repo",
        on_wait=note,
    )
    if not uploaded:
        ops = [
            CommitOperationAdd(path_in_repo=bundle.requirements_in_repo, path_or_fileobj=str(bundle.requirements)),
            CommitOperationAdd(path_in_repo=bundle.wheel_in_repo, path_or_fileobj=str(bundle.wheel)),
        ]
        hub_errors.call(
            lambda: api.create_commit(
                repo, operations=ops, commit_message="workbench wheel for Jobs", repo_type="dataset", token=token
            ),
            f"uploading the workbench wheel to {repo}",
            on_wait=note,
        )
    return {
        "WORKBENCH_BOOTSTRAP_REPO": repo,
        "WORKBENCH_BOOTSTRAP_WHEEL": bundle.wheel_in_repo,
        "WORKBENCH_BOOTSTRAP_REQUIREMENTS": bundle.requirements_in_repo,
    }


def _job_env() -> dict[str, str]:
    """The Job's plain environment: nothing secret goes here (the Hub does not encrypt `env`)."""
    env = {"PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    if _endpoint():
        env["HF_ENDPOINT"] = _endpoint()
    if os.environ.get("WORKBENCH_PIP_SPEC"):
        env["WORKBENCH_PIP_SPEC"] = os.environ["WORKBENCH_PIP_SPEC"]
    return env


def _batch_mates(store: JobStore, study: dict, study_id: str, record: dict) -> list[dict]:
    """The runs one Job trains with this one: its candidate's other runs still waiting for a Job
    (queued, in no Job or in the same finished one), in size then seed order; just this run in "run" mode."""
    if study.get("hf_batch", "candidate") != "candidate":
        return [record]
    free = (None, "", record.get("backend_job_id"))  # in no Job, or in the finished one this run leaves

    def waiting(r: dict) -> bool:
        return r["id"] == record["id"] or (r.get("status") == "queued" and r.get("backend_job_id") in free)

    mates = [r for r in store.study_runs(study_id) if r["arm"] == record["arm"] and waiting(r)]
    return sorted(mates, key=lambda r: (int(r["size"]), int(r["seed"]), r["id"]))


def _submit_batch(api, store, artifacts, study, study_id, run_id, record, repo, user, token, note):
    """Check the model and the repo, write the batch to the repo, submit its Job, point every run at it."""
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    _probe_model(api, _spec_of(study).model, token, GatedRepoError, RepositoryNotFoundError)
    _ensure_results_repo(api, repo, study_id, artifacts, token, note)
    bootstrap = _bootstrap_env(api, study, repo, artifacts, token, note)
    mates = _batch_mates(store, study, study_id, record)
    batch_id = "b" + uuid.uuid4().hex[:12]
    runs = [{k: r[k] for k in ("arm", "size", "seed", "key")} | {"run_id": r["id"]} for r in mates]
    listing = json.dumps(runs, indent=1).encode()
    hub_errors.call(
        lambda: api.create_commit(
            repo,
            operations=[CommitOperationAdd(path_in_repo=batch_path(study_id, batch_id), path_or_fileobj=listing)],
            commit_message=f"batch {batch_id} of study {study_id}",
            repo_type="dataset",
            token=token,
        ),
        f"writing batch {batch_id} to {repo}",
        on_wait=note,
    )
    job = _submit(api, store, study, study_id, run_id, repo, user, token, bootstrap, batch_id)
    ids = [r["id"] for r in mates]
    fields = dict(
        backend=HF_JOBS.name,
        backend_job_id=job.id,
        backend_url=job.url,
        backend_namespace=job.owner.name,
        backend_repo=repo,
        backend_flavor=study.get("hf_flavor") or DEFAULT_FLAVOR,
        backend_batch=batch_id,
        backend_batch_runs=json.dumps(ids),
    )
    for rid in ids:
        store.update_run(rid, **fields)
        if rid != run_id:
            store.log(rid, f"in HF Job {job.id} with the other runs of {record['arm']} (batch {batch_id}): {job.url}")
    store.update_run(run_id, phase="scheduling")
    return job


def _submit(api, store: JobStore, study: dict, study_id: str, run_id: str, repo, user, token, bootstrap, batch_id):
    image = study.get("hf_image") or DEFAULT_IMAGE
    flavor = study.get("hf_flavor") or DEFAULT_FLAVOR
    timeout = study.get("hf_timeout") or DEFAULT_TIMEOUT
    job = _run_job_once(
        api,
        store,
        study,
        study_id,
        run_id,
        user,
        token,
        dict(
            image=image,
            command=remote_command(repo, study_id, batch_id),
            env={**_job_env(), **bootstrap},
            secrets={"HF_TOKEN": token},
            flavor=flavor,
            timeout=timeout,
            labels={"workbench-study": study_id, "workbench-run": run_id, "workbench-batch": batch_id},
            namespace=study.get("hf_namespace") or user,  # the user's own namespace by default (saves a whoami)
            token=token,
        ),
    )
    store.log(run_id, f"submitted HF Job {job.id} ({flavor}, timeout {timeout}, image {image}): {job.url}")
    return job


def _run_job_once(api, store, study, study_id, run_id, user, token, job_args: dict):
    """`api.run_job`, through rate limits; after a server or transport error, the Job may exist all the same:
    it is looked up by its labels before another try, so one run never pays for two Jobs."""
    note = functools.partial(store.log, run_id)
    for attempt in range(len(hub_errors.BACKOFF_S)):
        try:
            return api.run_job(**job_args)
        except Exception as err:
            hub_errors.refuse_auth(err, "submitting the HF Job")
            if hub_errors.status_of(err) == 400:
                raise RunFailed(
                    f"the Hub refused the Job ({getattr(err, 'server_message', None) or err}): check the flavor "
                    "and timeout options of the study"
                ) from None
            if not hub_errors.is_transient(err) or attempt == len(hub_errors.BACKOFF_S) - 1:
                raise
            waited = hub_errors.wait_for(err, attempt)
            note(
                f"submitting the HF Job: the Hub answered {hub_errors.status_of(err) or type(err).__name__}; "
                f"retrying after {waited:.0f} s"
            )
            if hub_errors.status_of(err) != 429:
                found = _existing_job(api, study, study_id, run_id, user, token, note)
                if found is not None:
                    return found
    raise AssertionError("unreachable")


def _follow(
    api, store, artifacts, follower: _Follower, study, study_id, run_id, record, repo, job_id, namespace, token
) -> dict:
    from huggingface_hub.errors import JobNotFoundError

    deadline = time.monotonic() + int(study.get("run_timeout") or 6 * 3600)
    last_stage, errors = None, 0
    batch = _Batch(api, store, study_id, record, repo, job_id, namespace, token)
    while True:
        if follower.canceled_by_user():
            batch.cancel(run_id)
            return {"run_id": run_id, "status": "canceled", "backend_job_id": job_id}
        batch.skip_canceled_mates()
        if time.monotonic() > deadline:
            _cancel_remote(api, job_id, namespace, token)
            store.update_run(run_id, backend_canceled=job_id)
            raise RunFailed(
                f"HF Job {job_id} ran past the study's run_timeout ({study.get('run_timeout')} s) and was canceled"
            )
        try:
            job = api.inspect_job(job_id=job_id, namespace=namespace, token=token)
            stage, message = _stage(job), job.status.message
            errors = 0
        except JobNotFoundError:
            stage, message = "DELETED", "the Job no longer exists on the Hub"
        except Exception as err:  # the Hub briefly away or rate limiting: wait and poll again
            hub_errors.refuse_auth(err, f"following HF Job {job_id}")
            if not hub_errors.is_transient(err):
                raise
            limited = hub_errors.status_of(err) == 429
            errors += 0 if limited else 1  # a rate limit is not lost contact
            if errors >= MAX_POLL_ERRORS:
                raise RuntimeError(f"lost contact with HF Job {job_id} after {errors} failed polls: {err}") from None
            time.sleep(max(poll_seconds(), min(hub_errors.MAX_WAIT_S, hub_errors.retry_after(err) or 0)))
            continue
        follower.take_logs_safely(api, job_id, namespace)  # a logs failure never decides the run
        if stage != last_stage:
            last_stage = stage
            if stage in ("SCHEDULING", "RUNNING"):
                store.update_run(run_id, phase=stage.lower())
            store.log(run_id, f"HF Job {job_id}: {stage}" + (f" ({message})" if message else ""))
        if stage == "COMPLETED":
            if follower.canceled_by_user():  # the user's word stands, even if the Job got there first
                return {"run_id": run_id, "status": "canceled", "backend_job_id": job_id}
            return _collect(api, store, artifacts, study_id, run_id, record, repo, job_id, token)
        if stage in ("ERROR", "CANCELED") and message and _TIMEOUT_RE.search(message):
            limit = study.get("hf_timeout") or DEFAULT_TIMEOUT
            raise RunFailed(
                f"HF Job {job_id} reached its timeout ({limit}) and was stopped ({_redact(message, token)}): "
                "raise the study's timeout option or pick a faster flavor"
            )
        if stage in ("ERROR", "DELETED"):
            tail = " | ".join(line.strip() for line in follower.tail if line.strip())[-1500:]
            why = _redact(message or "no message", token)
            raise RunFailed(f"HF Job {job_id} ended in {stage}: {why}" + (f"; last log lines: {tail}" if tail else ""))
        if stage == "CANCELED":
            store.set_run_status(run_id, "canceled", phase="canceled", error=f"HF Job {job_id} was canceled on the Hub")
            store.log(run_id, f"HF Job {job_id} was canceled on the Hub")
            return {"run_id": run_id, "status": "canceled", "backend_job_id": job_id}
        time.sleep(poll_seconds())


class _Batch:
    """The runs of one Job. A canceled run is skipped inside the Job (a marker in the results repo);
    the Job itself is canceled only when every one of its runs is."""

    def __init__(self, api, store: JobStore, study_id: str, record: dict, repo: str, job_id, namespace, token):
        self.api, self.store, self.study_id, self.repo = api, store, study_id, repo
        self.job_id, self.namespace, self.token = job_id, namespace, token
        self.batch_id = record.get("backend_batch")
        self.runs = json.loads(record.get("backend_batch_runs") or "[]") or [record["id"]]
        self.marked: set[str] = set()

    def cancel(self, run_id: str) -> None:
        """This run was canceled by the user: skip it in the Job, or cancel the Job if it was the last one."""
        self._mark(run_id)
        if self._all_canceled():
            self._cancel_job(f"stopped: canceled by user; HF Job {self.job_id} canceled", run_id)
        else:
            self.store.log(run_id, f"stopped: canceled by user; HF Job {self.job_id} skips it and trains the others")

    def skip_canceled_mates(self) -> None:
        if len(self.runs) < 2:
            return
        records = self._records()
        for rid, rec in records.items():
            if rec.get("status") == "canceled" and rid not in self.marked:
                self._mark(rid)
        if self._all_canceled(records):
            self._cancel_job(f"every run of HF Job {self.job_id} was canceled: the Job is canceled", self.runs[0])

    def _all_canceled(self, records: dict | None = None) -> bool:
        records = records or self._records()
        return all((records.get(rid) or {}).get("status") == "canceled" for rid in self.runs)

    def _records(self) -> dict[str, dict]:
        """The batch's run records (a batch holds a candidate's runs: a few, not the study's thousands)."""
        return {rid: self.store.run(rid) or {} for rid in self.runs}

    def _mark(self, run_id: str) -> None:
        if not self.batch_id or run_id in self.marked or len(self.runs) < 2:
            return
        from huggingface_hub import CommitOperationAdd

        path = cancel_marker(self.study_id, self.batch_id, run_id)
        hub_errors.call(
            lambda: self.api.create_commit(
                self.repo,
                operations=[CommitOperationAdd(path_in_repo=path, path_or_fileobj=b"canceled by the user\n")],
                commit_message=f"cancel {run_id} in batch {self.batch_id}",
                repo_type="dataset",
                token=self.token,
            ),
            f"telling HF Job {self.job_id} to skip {run_id}",
        )
        self.marked.add(run_id)

    def _cancel_job(self, message: str, run_id: str) -> None:
        _cancel_remote(self.api, self.job_id, self.namespace, self.token)
        for rid in self.runs:  # a retry submits afresh, never follows this Job
            self.store.update_run(rid, backend_canceled=self.job_id)
        self.store.log(run_id, message)


def _cancel_remote(api, job_id: str, namespace: str, token: str) -> None:
    try:
        api.cancel_job(job_id=job_id, namespace=namespace, token=token)
    except Exception as err:  # already finished or gone: nothing left to stop
        log.warning("cancel of HF Job %s: %s", job_id, err)


def _raise_batch_error(api, store, study_id: str, run_id: str, repo: str, job_id: str, token: str, work: Path):
    """RunFailed with the error the Job recorded for this run, if it recorded one."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        path = hf_hub_download(
            repo,
            experiment_path(study_id, run_id, "error.json"),
            repo_type="dataset",
            token=token,
            local_dir=work,
            endpoint=_endpoint(),
        )
    except EntryNotFoundError:
        return
    error = json.loads(Path(path).read_text(encoding="utf-8")).get("error", "unknown error")
    store.update_run(run_id, backend_failed_in=job_id)  # a retry trains it again, in a new Job
    raise RunFailed(f"the run failed inside HF Job {job_id}: {_redact(error, token)}")


def _collect(
    api,
    store: JobStore,
    artifacts: ArtifactStore,
    study_id: str,
    run_id: str,
    record: dict,
    repo: str,
    job_id: str,
    token: str,
) -> dict:
    """Bring a completed Job's result and manifest into the artifacts store; mark the run finished."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    key = record["key"]
    work = Path(tempfile.mkdtemp(prefix="workbench-hf-"))
    try:
        files = {}
        for name in ("result.json", "manifest.json"):
            try:
                path = hf_hub_download(
                    repo,
                    experiment_path(study_id, run_id, name),
                    repo_type="dataset",
                    token=token,
                    local_dir=work,
                    endpoint=_endpoint(),
                )
            except EntryNotFoundError:
                if name == "manifest.json":
                    continue
                _raise_batch_error(api, store, study_id, run_id, repo, job_id, token, work)
                raise RunFailed(
                    f"HF Job {job_id} completed but wrote no {experiment_path(study_id, run_id, name)} to {repo}"
                ) from None
            files[name] = json.loads(Path(path).read_text(encoding="utf-8"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = files["result.json"]
    if result.get("key") != key:
        raise RunFailed(
            f"HF Job {job_id} wrote a result for key {result.get('key')!r}, not {key!r}: the image runs "
            "another workbench version"
        )
    result = dict(result, backend=HF_JOBS.name, backend_job_id=job_id)
    if "manifest.json" in files:
        artifacts.put_manifest(key, files["manifest.json"])
    artifacts.put_result(key, result)
    stored = artifacts.get_result(key) or result
    if (store.run(run_id) or {}).get("status") == "canceled":
        return {"run_id": run_id, "status": "canceled", "key": key}
    rows = (stored.get("eval") or {}).get("rows")
    store.set_run_status(
        run_id,
        "finished",
        metrics=stored["metrics"],
        phase="done",
        cached=False,
        step=rows,
        total=rows,
        steps=(stored.get("train") or {}).get("steps"),
        seconds=(stored.get("timings") or {}).get("total_seconds"),
    )
    store.log(
        run_id,
        "finished: " + ", ".join(f"{k}={v:.4f}" for k, v in stored["metrics"].items() if isinstance(v, (int, float))),
    )
    return {"run_id": run_id, "key": key, "metrics": stored["metrics"], "cached": False, "backend_job_id": job_id}
