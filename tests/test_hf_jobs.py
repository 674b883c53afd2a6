"""The Hugging Face Jobs backend: the real `huggingface_hub` client against a local fake Hub.

Nothing of ours is patched. A study is submitted with `workers.client.submit`; a real
`workbench worker --burst` subprocess runs `hf_run_task` with HF_ENDPOINT pointing at the fake Hub
(tests/fake_hub.py) and a fake secret in HF_TOKEN. In execute mode the fake runs the Job's command,
so `workbench remote-run` really downloads the prepared data, trains the tiny model and uploads its
result. Redis: 127.0.0.1:6379, db 11 (flushed per test).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from redis import Redis

from core.artifacts import ArtifactStore
from core.spec import parse_spec
from tests.conftest import real_redis, redis_test_url
from tests.fake_hub import FakeHub, Fault, Script, Step
from workers import client
from workers.client import SubmitOptions
from workers.store import JobStore

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = redis_test_url(11)
TOKEN = "hf_FAKE_SECRET_123"
USER = "alice"
ORG = "acme"  # an organization the user may run Jobs in
RESULTS_REPO = f"{USER}/workbench-results"
TINY_TRAINING = {"method": "full", "min_steps": 4, "learning_rate": 0.001, "max_seq_length": 64, "eval_batch_size": 256}


def _spec(**over):
    data = {
        "name": "hf-small",
        "model": "builtin:tiny-lm",
        "task": "classification",
        "d0": {"catalog": "demo/d0", "name": "d0"},
        "benchmark": {"catalog": "demo/benchmark", "name": "benchmark", "max_rows": 60},
        "candidates": [{"catalog": "demo/helpful", "name": "helpful", "max_rows": 400}],
        "sizes": [40],
        "seeds": [0],
        "target_size": 1000,
        "bootstrap": 30,
        "training": TINY_TRAINING,
    }
    data.update(over)
    return parse_spec(data)


@pytest.fixture
def redis():
    yield from real_redis(REDIS_URL)


@pytest.fixture
def hub(tmp_path):
    fake = FakeHub(token=TOKEN, user=USER, orgs=(ORG,)).start()
    yield fake
    fake.stop()


@pytest.fixture
def artifacts(tmp_path):
    return ArtifactStore(tmp_path / "artifacts")


@pytest.fixture(autouse=True)
def _no_worker_left_behind(redis, hub):
    """A test that fails mid-way leaves no worker polling (set up after Redis and the hub: stops before them)."""
    yield
    while Worker.started:
        Worker.started.pop().kill()


class Worker:
    """A `workbench worker --burst` subprocess whose environment is a worker's serving HF Jobs."""

    started: list[Worker] = []

    def __init__(self, hub: FakeHub, artifacts: ArtifactStore, tmp: Path, *, token: bool = True):
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
        }
        env.update(
            REDIS_URL=REDIS_URL,
            ARTIFACTS_DIR=str(artifacts.root),
            HF_ENDPOINT=hub.url,
            HF_HOME=str(tmp / "worker-hf-home"),
            WORKBENCH_HF_POLL="0.2",
        )
        if token:
            env["HF_TOKEN"] = TOKEN
        self.log_path = tmp / "worker.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "worker", "--burst", "--queues", "default"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=open(self.log_path, "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        Worker.started.append(self)

    def kill(self) -> None:
        """Stop this worker and its work horse (its own process group) if a test left it running."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def wait(self, timeout: float = 300) -> str:  # a guard: ~10 s on an idle machine
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"worker still running after {timeout} s:\n{self.log()[-3000:]}") from None
        return self.log()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _submit(redis: Redis, artifacts: ArtifactStore, spec=None, **backend_options) -> str:
    options = {"hf_flavor": "a10g-small", "hf_timeout": "45m", **backend_options}
    opts = SubmitOptions(backend="hf_jobs", backend_options=options, run_timeout=900)
    return client.submit(redis, spec or _spec(), opts, artifacts=artifacts)


def _runs(redis: Redis, study_id: str) -> list[dict]:
    return JobStore(redis).study_runs(study_id)


def _wait_for(predicate, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# ------------------------------------------------------------------------------------------------
# Where a secret could leak


def _variants(raw: bytes):
    """The bytes, and what they decode to when they are compressed or base64 (RQ stores both)."""
    yield raw
    for attempt in (lambda b: zlib.decompress(b), lambda b: base64.b64decode(b, validate=True)):
        try:
            decoded = attempt(raw)
        except Exception:
            continue
        yield decoded
        try:
            yield zlib.decompress(decoded)
        except Exception:
            pass


def _redis_dump(redis: Redis) -> list[tuple[str, bytes]]:
    """Every key of the test db and every value in it, whatever its type."""
    out = []
    for key in redis.scan_iter(count=500):
        kind = redis.type(key).decode()
        name = key.decode(errors="replace")
        out.append((name, key))
        if kind == "string":
            out.append((name, redis.get(key) or b""))
        elif kind == "hash":
            for f, v in redis.hgetall(key).items():
                out += [(f"{name}.{f.decode(errors='replace')}", f), (f"{name}.{f.decode(errors='replace')}", v)]
        elif kind == "list":
            out += [(name, v) for v in redis.lrange(key, 0, -1)]
        elif kind == "set":
            out += [(name, v) for v in redis.smembers(key)]
        elif kind == "zset":
            out += [(name, v) for v, _ in redis.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            for _, fields in redis.xrange(key):
                for f, v in fields.items():
                    out += [(name, f), (name, v)]
        else:
            raise AssertionError(f"unexpected Redis type {kind} for {name}")
    return out


def _assert_token_nowhere(redis: Redis, hub: FakeHub, artifacts: ArtifactStore, texts: dict[str, str]) -> None:
    secret = TOKEN.encode()
    dump = _redis_dump(redis)
    assert len(dump) > 20  # the scan saw the study, its runs, events and RQ's jobs
    for name, raw in dump:
        for variant in _variants(raw):
            assert secret not in variant, f"token found in Redis key {name}"
    # RQ's own view of each job: arguments, result, failure
    from rq.job import Job

    for key in redis.scan_iter("rq:job:*"):
        job_id = key.decode().split(":", 2)[2]
        if ":" in job_id:
            continue
        job = Job.fetch(job_id, connection=redis)
        assert TOKEN not in repr((job.args, job.kwargs, job.meta, job.exc_info, job.description)), (
            f"token in RQ job {job_id}"
        )
        for result in job.results():
            assert TOKEN not in repr((result.return_value, result.exc_string)), f"token in result of RQ job {job_id}"
    files = [p for p in artifacts.root.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert secret not in path.read_bytes(), f"token written to {path}"
    for name, text in texts.items():
        assert TOKEN not in text, f"token in {name}"
    for job in hub.jobs.values():
        assert TOKEN not in "\n".join(line for _, line in job.logs), f"token in the logs of HF Job {job.id}"


def _assert_requests_keep_the_token_secret(hub: FakeHub) -> None:
    """The token travels only as the Authorization header and as the Job's secret."""
    assert hub.requests
    for r in hub.requests:
        auth = r["headers"].get("authorization")
        assert auth in (None, f"Bearer {TOKEN}")
        others = {k: v for k, v in r["headers"].items() if k != "authorization"}
        assert TOKEN not in json.dumps(others) and TOKEN not in r["path"] and TOKEN not in json.dumps(r["query"])
        if r in hub.job_requests():
            assert r["json"]["secrets"] == {"HF_TOKEN": TOKEN}
            assert TOKEN not in json.dumps({k: v for k, v in r["json"].items() if k != "secrets"})
        else:
            assert TOKEN not in r["body"], f"token in the body of {r['method']} {r['path']}"


def _result_payload(record: dict, **metrics) -> dict:
    return {
        "key": record["key"],
        "arm": record["arm"],
        "size": record["size"],
        "seed": record["seed"],
        "metrics": metrics or {"macro_f1": 0.5, "accuracy": 0.55, "loss": 2.0},
        "train": {"steps": 4},
        "timings": {"total_seconds": 1.5},
        "mixture": {"parts": [], "candidate_repetition": None},
    }


# ------------------------------------------------------------------------------------------------
# A real run in a (local) Job container


def _image_without_the_workbench(root: Path) -> Path:
    """A Python like a stock image's, without the workbench: a venv holding the pinned dependencies (links to
    this environment's packages, but for the workbench itself) and no `workbench` command. Its bin folder."""
    import sysconfig

    env = root / "image"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    (site,) = (env / "lib").glob("python3*/site-packages")
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if "workbench" not in entry.name.lower() and "editable" not in entry.name.lower():
            (site / entry.name).symlink_to(entry)
    return env / "bin"


def _assert_default_job(hub: FakeHub, post: dict, study_id: str, runs: dict) -> None:
    """A Job submitted with the default image: its command, labels, secret, batch and bootstrap files."""
    body = post["json"]
    command = body["command"] + body.get("arguments", [])
    rid = body["labels"]["workbench-run"]
    assert any("remote-run" in part for part in command)
    for flag, value in (("--study", study_id), ("--repo", RESULTS_REPO)):
        assert command[command.index(flag) + 1] == value
    batch = command[command.index("--batch") + 1]
    assert body["labels"]["workbench-batch"] == batch
    listed = json.loads(hub.file(RESULTS_REPO, f"experiments/{study_id}/batches/{batch}.json"))
    assert [(r["run_id"], r["key"], r["size"]) for r in listed] == [(rid, runs[rid]["key"], 40)]
    assert body["flavor"] == "a10g-small" and body["timeoutSeconds"] == 45 * 60
    assert body["labels"]["workbench-study"] == study_id and rid in runs
    assert body["secrets"] == {"HF_TOKEN": TOKEN}
    assert TOKEN not in json.dumps(body["environment"]) and "HF_TOKEN" not in body["environment"]
    assert post["path"] == f"/api/jobs/{USER}"
    assert body["dockerImage"] == "ghcr.io/astral-sh/uv:python3.11-bookworm"  # the default image
    wheel = body["environment"]["WORKBENCH_BOOTSTRAP_WHEEL"]
    assert wheel.startswith("bootstrap/") and wheel.endswith(".whl")
    assert hub.file(RESULTS_REPO, wheel)[:2] == b"PK"  # the wheel (a zip) is in the results repo
    assert (
        hub.file(RESULTS_REPO, body["environment"]["WORKBENCH_BOOTSTRAP_REQUIREMENTS"])
        == (PROJECT_ROOT / "requirements.txt").read_bytes()
    )


def test_study_runs_on_hf_jobs_end_to_end_and_the_token_stays_secret(redis, hub, artifacts, tmp_path, tiny_lm_path):
    """The default image has no workbench: each Job installs the worker's own wheel and pins from the results repo."""
    hub.execute = True
    workdir = tmp_path / "container"
    workdir.mkdir()
    hub.workdir = str(workdir)
    image_bin = _image_without_the_workbench(tmp_path)
    hub.base_env = {  # what the Job's image provides: a Python with the dependencies, a home, the model cache
        "PATH": f"{image_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir),
        "WORKBENCH_HOME": os.environ["WORKBENCH_HOME"],
        "HF_HOME": str(workdir / "hf-home"),
        "PIP_NO_INDEX": "1",  # everything but the wheel is in the image: installing must not download
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    assert not (image_bin / "workbench").exists()
    study_id = _submit(redis, artifacts)
    records = _runs(redis, study_id)
    assert len(records) == 2

    worker = Worker(hub, artifacts, tmp_path)
    worker_log = worker.wait(timeout=600)

    runs = {r["id"]: r for r in _runs(redis, study_id)}
    installs = []
    for rid, run in runs.items():
        assert run["status"] == "finished", (run, worker_log[-3000:])
        assert set(run["metrics"]) == {"macro_f1", "accuracy", "loss", "gold_prob"}  # gold_prob: always measured
        assert run["backend"] == "hf_jobs" and run["backend_job_id"] in hub.jobs
        assert run["backend_url"] == f"{hub.url}/jobs/{USER}/{run['backend_job_id']}"
        result = artifacts.get_result(run["key"])
        assert result["metrics"] == run["metrics"] and result["train"]["steps"] >= 4 and result["weights"] is None
        assert result["backend_job_id"] == run["backend_job_id"]
        assert (artifacts.run_dir(run["key"]) / "manifest.json").is_file()
        assert hub.file(RESULTS_REPO, f"experiments/{study_id}/{rid}/result.json") is not None
        events = JobStore(redis).events(rid)
        messages = [e.get("message", "") for e in events]
        assert any(f"[workbench] [{rid}] done:" in m for m in messages), messages  # the Job's own log lines
        installs.append(any("installing the workbench from the results repo" in m for m in messages))
        assert any(m.startswith(f"HF Job {run['backend_job_id']}: RUNNING") for m in messages)
        assert any(e["kind"] == "loss" for e in events)  # progress lines became the loss curve

    # the submitted Jobs
    job_posts = hub.job_requests()
    assert len(job_posts) == 2
    for post in job_posts:
        _assert_default_job(hub, post, study_id, runs)
    # The first Job installed the workbench; the fake's Jobs share one "image", so the second found it there.
    assert sorted(installs) == [False, True] and (image_bin / "workbench").is_file()
    assert len([r for r in hub.requests_to("POST", r"/commit/") if ".whl" in r["body"]]) == 1  # uploaded once

    # the results repo: private dataset, the prepared data uploaded once
    creates = hub.requests_to("POST", r"^/api/repos/create$")
    assert creates and all(c["json"]["type"] == "dataset" and c["json"].get("visibility") == "private" for c in creates)
    assert hub.repos[("dataset", RESULTS_REPO)].private
    assert json.loads(hub.file(RESULTS_REPO, f"experiments/{study_id}/prepared.json"))["study_id"]
    prepared_commits = [r for r in hub.requests_to("POST", r"/commit/") if "prepared.json" in r["body"]]
    assert len(prepared_commits) == 1

    # the ranking ran after the remote runs, as with local workers
    st = client.wait(redis, study_id, timeout=30, poll=0.2)
    assert st["study"]["status"] == "finished"

    _assert_requests_keep_the_token_secret(hub)
    job_logs = {f"job {j.id} logs": "\n".join(line for _, line in j.logs) for j in hub.jobs.values()}
    _assert_token_nowhere(redis, hub, artifacts, {"worker output": worker_log, **job_logs})


# ------------------------------------------------------------------------------------------------
# Scripted stages


def test_scheduling_running_completed_brings_the_result_home(redis, hub, artifacts, tmp_path):
    study_id = _submit(redis, artifacts, hf_namespace=ORG)
    records = _runs(redis, study_id)
    for rec in records:  # what the Job would have uploaded
        hub.put_file(RESULTS_REPO, f"experiments/{study_id}/{rec['id']}/result.json", json.dumps(_result_payload(rec)))
        hub.put_file(RESULTS_REPO, f"experiments/{study_id}/{rec['id']}/manifest.json", json.dumps({"rows": []}))
    seen_stages = []

    def on_stage(fake, job, stage):
        seen_stages.append((job.labels()["workbench-run"], stage))

    hub.script = Script(
        [
            Step("SCHEDULING", inspects=2),
            Step(
                "RUNNING",
                inspects=3,
                logs=["loading the model", "[workbench] progress training 2/4 loss=1.2500", "still training"],
            ),
            Step("COMPLETED", logs=["[workbench] done: macro_f1=0.5000"]),
        ],
        on_stage=on_stage,
    )
    # The first run's Job was submitted by an earlier attempt whose worker died while following it:
    # the retried task follows that Job instead of paying for a second one.
    first = records[0]["id"]
    prior = hub.create_job(ORG, {"command": ["sh"], "labels": {"workbench-study": study_id, "workbench-run": first}})
    JobStore(redis).update_run(
        first,
        backend="hf_jobs",
        backend_job_id=prior.id,
        backend_namespace=ORG,
        backend_url=f"{hub.url}/jobs/{ORG}/{prior.id}",
        attempts=1,
    )
    Worker(hub, artifacts, tmp_path).wait()

    store = JobStore(redis)
    for rec in _runs(redis, study_id):
        assert rec["status"] == "finished", rec
        assert rec["metrics"]["macro_f1"] == 0.5 and rec["phase"] == "done"
        assert artifacts.get_result(rec["key"])["metrics"]["macro_f1"] == 0.5
        assert (artifacts.run_dir(rec["key"]) / "manifest.json").is_file()
        messages = [e.get("message", "") for e in store.events(rec["id"])]
        job_id = rec["backend_job_id"]
        assert rec["backend_url"] == f"{hub.url}/jobs/{ORG}/{job_id}" and hub.jobs[job_id].namespace == ORG
        for stage in ("SCHEDULING", "RUNNING", "COMPLETED"):
            assert f"HF Job {job_id}: {stage}" in messages, messages
        assert "loading the model" in messages and "still training" in messages
        assert not any("[workbench] progress" in m for m in messages)  # progress went to the progress fields
        assert any(e["kind"] == "loss" and e["loss"] == 1.25 for e in store.events(rec["id"]))
        assert [s for r, s in seen_stages if r == rec["id"]] == ["SCHEDULING", "RUNNING", "COMPLETED"]
        assert hub.jobs[job_id].inspects >= 6  # it polled through every stage
    assert store.run(first)["backend_job_id"] == prior.id and store.run(first)["attempts"] == 2
    posts = hub.job_requests()
    assert len(posts) == 1 and posts[0]["path"] == f"/api/jobs/{ORG}"  # only the second run was submitted


def test_a_job_that_ends_in_error_fails_the_run_with_its_message_and_log_tail(redis, hub, artifacts, tmp_path):
    study_id = _submit(redis, artifacts)
    hub.script = Script(
        [
            Step("SCHEDULING"),
            Step("RUNNING", logs=["Traceback (most recent call last):", "torch.OutOfMemoryError: CUDA out of memory"]),
            Step("ERROR", message="Job failed with exit code: 1"),
        ]
    )
    Worker(hub, artifacts, tmp_path).wait()

    for rec in _runs(redis, study_id):
        assert rec["status"] == "failed", rec
        assert "ended in ERROR" in rec["error"] and "exit code: 1" in rec["error"]
        assert "CUDA out of memory" in rec["error"]  # the log tail says why
        assert artifacts.get_result(rec["key"]) is None
    assert len(hub.job_requests()) == 2  # a remote failure is not retried automatically (it costs money)


def test_user_cancel_while_running_cancels_the_job_on_the_hub(redis, hub, artifacts, tmp_path):
    study_id = _submit(redis, artifacts)
    hub.script = Script([Step("SCHEDULING"), Step("RUNNING", inspects=10**9, logs=["training..."])])
    worker = Worker(hub, artifacts, tmp_path)
    first = _runs(redis, study_id)[0]["id"]
    _wait_for(
        lambda: JobStore(redis).run(first).get("phase") == "running", timeout=180, what="the first run to be running"
    )
    job_id = JobStore(redis).run(first)["backend_job_id"]
    assert hub.jobs[job_id].stage == "RUNNING"

    client.cancel(redis, study_id)
    worker.wait()

    cancels = hub.requests_to("POST", r"/cancel$")
    assert [c["path"] for c in cancels] == [f"/api/jobs/{USER}/{job_id}/cancel"]
    assert hub.jobs[job_id].stage == "CANCELED"
    runs = _runs(redis, study_id)
    assert all(r["status"] == "canceled" for r in runs), runs
    assert len(hub.job_requests()) == 1  # the second run was canceled before it was submitted
    messages = [e.get("message", "") for e in JobStore(redis).events(first)]
    assert any("canceled by user" in m and job_id in m for m in messages), messages


@pytest.mark.parametrize(
    "state, model, expected",
    [
        ("gated", "meta-org/gated-model", "request access on the model page and use a token that has it"),
        ("missing", "nobody/no-such-model", "check the model id"),
    ],
)
def test_a_model_the_job_cannot_load_fails_before_any_job_starts(
    redis, hub, artifacts, tmp_path, state, model, expected
):
    hub.mark_model(model, state)
    study_id = _submit(redis, artifacts, _spec(model=model, training={**TINY_TRAINING, "method": "lora"}))
    Worker(hub, artifacts, tmp_path).wait()

    for rec in _runs(redis, study_id):
        assert rec["status"] == "failed", rec
        assert expected in rec["error"] and model in rec["error"]
    assert hub.job_requests() == []
    assert hub.requests_to("GET", rf"^/api/models/{model}$")


def test_no_token_in_the_worker_environment_fails_with_what_to_set(redis, hub, artifacts, tmp_path):
    study_id = _submit(redis, artifacts)
    Worker(hub, artifacts, tmp_path, token=False).wait()

    for rec in _runs(redis, study_id):
        assert rec["status"] == "failed", rec
        assert "set HF_TOKEN in the worker's environment" in rec["error"]
    assert hub.requests == []  # nothing was sent anywhere


# ------------------------------------------------------------------------------------------------
# The real service's bad days: rate limits, flaky logs, payment and permission answers


def _put_results(hub: FakeHub, study_id: str, records: list[dict]) -> None:
    """What each run's Job would have uploaded."""
    for rec in records:
        hub.put_file(RESULTS_REPO, f"experiments/{study_id}/{rec['id']}/result.json", json.dumps(_result_payload(rec)))


def test_rate_limits_and_failing_log_reads_are_waited_out_and_the_runs_complete(redis, hub, artifacts, tmp_path):
    study_id = _submit(redis, artifacts)
    records = _runs(redis, study_id)
    _put_results(hub, study_id, records)
    hub.script = Script(
        [Step("SCHEDULING"), Step("RUNNING", inspects=3, logs=["training..."]), Step("COMPLETED", logs=["done"])]
    )
    hub.faults += [
        Fault("POST", r"/commit/", 429, times=1, retry_after=0.2),  # the prepared data's upload
        Fault("POST", rf"^/api/jobs/{USER}$", 429, times=1, retry_after=0.2),  # run_job
        Fault("GET", rf"^/api/jobs/{USER}/[^/]+$", 429, times=3, retry_after=0.3),  # inspect
        Fault("GET", r"/logs$", 404, times=2),
        Fault("GET", r"/logs$", 500, times=2),
    ]
    Worker(hub, artifacts, tmp_path).wait()

    store = JobStore(redis)
    for rec in _runs(redis, study_id):
        assert rec["status"] == "finished", rec
    assert all(f.hits == f.times for f in hub.faults), [(f.path, f.hits) for f in hub.faults]
    assert len(hub.jobs) == 2  # one Job per run, the rate-limited submit included
    assert len(hub.requests_to("GET", r"^/api/whoami-v2$")) == 1  # once per study, not once per run
    assert store.study(study_id)["hf_user"] == USER
    messages = [e.get("message", "") for r in records for e in store.events(r["id"])]
    assert any("logs could not be read" in m for m in messages), messages
    assert any("retrying after" in m for m in messages), messages
    assert "done" in messages  # the logs came back once the route answered


def test_a_retried_task_never_pays_for_a_second_job(redis, hub, artifacts, tmp_path):
    """Run 0's record names its Job, and the Hub rate-limits the inspect that checks it; run 1's submit
    answer was lost (no Job id in its record), but its Job carries the run's labels."""
    study_id = _submit(redis, artifacts)
    first, second = (r["id"] for r in _runs(redis, study_id))
    _put_results(hub, study_id, _runs(redis, study_id))
    hub.script = Script([Step("RUNNING", inspects=2), Step("COMPLETED")])
    jobs = {
        rid: hub.create_job(
            USER, {"flavor": "a10g-small", "labels": {"workbench-study": study_id, "workbench-run": rid}}
        )
        for rid in (first, second)
    }
    store = JobStore(redis)
    store.update_run(first, backend="hf_jobs", backend_job_id=jobs[first].id, backend_namespace=USER, attempts=1)
    hub.faults.append(Fault("GET", rf"^/api/jobs/{USER}/{jobs[first].id}$", 429, times=3, retry_after=0.2))
    Worker(hub, artifacts, tmp_path).wait()

    assert hub.job_requests() == []  # nothing submitted: both runs followed the Jobs they had
    for rid in (first, second):
        rec = store.run(rid)
        assert rec["status"] == "finished" and rec["backend_job_id"] == jobs[rid].id, rec
    assert hub.faults[0].hits == 3


@pytest.mark.parametrize("status, expected", [(402, "needs a paid plan"), (403, "may not run Jobs in this namespace")])
def test_payment_and_permission_answers_fail_the_run_at_once_with_the_fix(
    redis, hub, artifacts, tmp_path, status, expected
):
    study_id = _submit(redis, artifacts)
    hub.faults.append(Fault("POST", rf"^/api/jobs/{USER}$", status, times=10))
    Worker(hub, artifacts, tmp_path).wait()

    for rec in _runs(redis, study_id):
        assert rec["status"] == "failed" and expected in rec["error"], rec
    assert hub.faults[0].hits == 2 and hub.jobs == {}  # one try per run: no retry of an answer that cannot change


def test_a_flavor_the_hub_refuses_fails_with_the_hubs_answer(redis, hub, artifacts, tmp_path):
    # h200 is in the client's JobHardware list (so the submit accepts it), not among this fake Hub's flavors
    study_id = _submit(redis, artifacts, hf_flavor="h200")
    Worker(hub, artifacts, tmp_path).wait()

    for rec in _runs(redis, study_id):
        assert rec["status"] == "failed", rec
        assert "Invalid flavor 'h200'" in rec["error"] and "check the flavor" in rec["error"]
    assert hub.jobs == {}


def test_a_job_stopped_by_its_timeout_is_told_from_a_cancel(redis, hub, artifacts, tmp_path):
    study_id = _submit(redis, artifacts)
    hub.script = Script([Step("RUNNING"), Step("ERROR", message="Job timed out after 45m")])
    Worker(hub, artifacts, tmp_path).wait()

    for rec in _runs(redis, study_id):
        assert rec["status"] == "failed", rec
        assert "reached its timeout (45m)" in rec["error"] and "raise the study's timeout" in rec["error"]


# ------------------------------------------------------------------------------------------------
# Flavors: the Hub's live hardware list, the client's list when the Hub cannot be asked


def test_flavors_come_from_the_hubs_hardware_list_with_prices(hub, monkeypatch):
    from huggingface_hub import constants

    from workers.backends import hf_jobs
    from workers.backends.base import BackendError

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the suite runs offline; this test asks the fake
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setitem(hf_jobs._hardware, "at", -1e9)
    assert hf_jobs.HF_JOBS.parse_options({"hf_flavor": "l40sx8"})["hf_flavor"] == "l40sx8"  # not in the client's enum
    with pytest.raises(BackendError, match="flavor 'h200' is unknown; choose one of .*'a10g-small'"):
        hf_jobs.HF_JOBS.parse_options({"hf_flavor": "h200"})  # in the client's enum, not on this Hub
    listed = hf_jobs.hardware()
    assert listed["live"] and listed["prices"]["a10g-small"] == pytest.approx(1.0, abs=1e-3)  # USD per hour
    assert len(hub.requests_to("GET", r"^/api/jobs/hardware$")) == 1
    hf_jobs.flavors()
    assert len(hub.requests_to("GET", r"^/api/jobs/hardware$")) == 1  # kept, not asked again

    # The Hub unreachable: the client's own list, for a while, and said in the log
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setitem(hf_jobs._hardware, "at", -1e9)
    fallback = hf_jobs.hardware()
    assert not fallback["live"] and "h200" in fallback["names"] and not fallback["prices"]


def test_a_partial_log_replay_takes_each_line_once_and_says_when_lines_were_missed(redis, hub, artifacts, tmp_path):
    hub.log_window = 6  # each fetch replays only the Job's latest 6 lines
    study_id = _submit(redis, artifacts)
    records = _runs(redis, study_id)
    for rec in records:
        hub.put_file(RESULTS_REPO, f"experiments/{study_id}/{rec['id']}/result.json", json.dumps(_result_payload(rec)))
        hub.put_file(RESULTS_REPO, f"experiments/{study_id}/{rec['id']}/manifest.json", json.dumps({"rows": []}))
    batches = [[f"line {b}.{i}" for i in range(3)] for b in range(4)]  # 3 new lines a poll: within the window
    burst = [f"burst {i}" for i in range(10)]  # 10 at once: more than the window replays
    hub.script = Script(
        [Step("SCHEDULING")]
        + [Step("RUNNING", logs=batch) for batch in batches]
        + [Step("RUNNING", logs=burst), Step("COMPLETED", logs=["[workbench] done: macro_f1=0.5000"])]
    )
    Worker(hub, artifacts, tmp_path).wait()
    for rec in _runs(redis, study_id):
        assert rec["status"] == "finished", rec
        messages = [e.get("message", "") for e in JobStore(redis).events(rec["id"])]
        taken = [m for m in messages if m.startswith(("line ", "burst "))]
        expected = [line for batch in batches for line in batch]
        assert taken[: len(expected)] == expected  # each once, in order
        assert taken[len(expected) :] == burst[-6:]  # what the replay still held of the burst
        assert any("replayed from a later point: some lines may be missing" in m for m in messages)


def test_large_files_take_the_lfs_path_and_download_as_they_were(redis, hub, artifacts, tmp_path, monkeypatch):
    """On the Hub, files from 10 MB go through the LFS batch API; here the fake's threshold is 1 KB, so the
    prepared data and the workbench wheel take that path (Xet is disabled in the suite and untested)."""
    hub.lfs_threshold = 1024
    study_id = _submit(redis, artifacts)
    records = _runs(redis, study_id)
    for rec in records:
        hub.put_file(RESULTS_REPO, f"experiments/{study_id}/{rec['id']}/result.json", json.dumps(_result_payload(rec)))
        hub.put_file(RESULTS_REPO, f"experiments/{study_id}/{rec['id']}/manifest.json", json.dumps({"rows": []}))
    hub.script = Script([Step("SCHEDULING"), Step("RUNNING"), Step("COMPLETED")])
    Worker(hub, artifacts, tmp_path).wait()
    assert all(rec["status"] == "finished" for rec in _runs(redis, study_id))

    batches = hub.requests_to("POST", r"\.git/info/lfs/objects/batch$")
    puts = hub.requests_to("PUT", r"^/lfs-storage/")
    assert batches and len(puts) == 2  # the prepared data and the wheel, each uploaded once
    prepared = (artifacts.prepared_dir(study_id) / "prepared.json").read_bytes()
    assert len(prepared) > hub.lfs_threshold
    assert hub.file(RESULTS_REPO, f"experiments/{study_id}/prepared.json") == prepared
    lfs_commits = [r for r in hub.requests_to("POST", r"/commit/") if '"lfsFile"' in r["body"]]
    assert len(lfs_commits) == 2
    # and it downloads through the real client as it was uploaded
    from huggingface_hub import constants, hf_hub_download

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the suite runs offline; this asks the fake
    got = hf_hub_download(
        RESULTS_REPO,
        f"experiments/{study_id}/prepared.json",
        repo_type="dataset",
        token=TOKEN,
        endpoint=hub.url,
        cache_dir=tmp_path / "dl",
    )
    assert Path(got).read_bytes() == prepared


# ------------------------------------------------------------------------------------------------
# Batches: one Job per candidate


def _host_image(hub: FakeHub, tmp_path: Path) -> None:
    """Execute mode with this environment's workbench on the Job's PATH (an image built with --target jobs)."""
    hub.execute = True
    workdir = tmp_path / "container"
    workdir.mkdir(exist_ok=True)
    hub.workdir = str(workdir)
    hub.base_env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(workdir),
        "WORKBENCH_HOME": os.environ["WORKBENCH_HOME"],
        "HF_HOME": str(workdir / "hf-home"),
        "HF_HUB_DISABLE_XET": "1",
    }


def test_one_job_per_candidate_commits_per_batch_and_cancel_and_retry_work_inside_it(redis, hub, artifacts, tmp_path):
    _host_image(hub, tmp_path)
    spec = _spec(
        candidates=[
            {"catalog": "demo/helpful", "name": "helpful", "max_rows": 400},
            {"catalog": "demo/offdomain", "name": "offdomain", "max_rows": 400},
        ],
        sizes=[40, 80],
        seeds=[0, 1],
    )
    study_id = _submit(redis, artifacts, spec=spec)
    records = _runs(redis, study_id)
    assert len(records) == 12
    # The user cancels helpful's last run (80 rows, seed 1) as soon as its candidate's Job is running.
    victim = next(r["id"] for r in records if r["arm"] == "helpful" and int(r["size"]) == 80 and int(r["seed"]) == 1)

    def cancel_when_its_job_runs():
        _wait_for(
            lambda: (JobStore(redis).run(victim) or {}).get("backend_job_id") in hub.jobs,
            timeout=600,
            what="helpful's Job",
        )
        client.cancel(redis, victim)

    import threading

    canceller = threading.Thread(target=cancel_when_its_job_runs, daemon=True)
    canceller.start()
    Worker(hub, artifacts, tmp_path).wait(timeout=900)
    canceller.join(5)

    runs = {r["id"]: r for r in _runs(redis, study_id)}
    assert runs[victim]["status"] == "canceled"
    assert all(r["status"] == "finished" for rid, r in runs.items() if rid != victim), runs
    assert len(hub.jobs) == 3  # baseline, helpful, offdomain: one Job each
    by_job: dict[str, list] = {}
    for r in runs.values():
        by_job.setdefault(r["backend_job_id"], []).append(r["arm"])
    assert sorted(len(v) for v in by_job.values()) == [4, 4, 4] and all(len(set(v)) == 1 for v in by_job.values())
    result_commits = [r for r in hub.requests_to("POST", r"/commit/") if "results of batch" in r["body"]]
    assert len(result_commits) == 3  # one commit of results per Job, not one per run
    helpful_job = hub.jobs[runs[victim]["backend_job_id"]]
    job_log = "\n".join(line for _, line in helpful_job.logs)
    assert f"[workbench] [{victim}] skipped: canceled by the user" in job_log
    assert helpful_job.stage == "COMPLETED"  # the other three runs of the batch went on
    assert artifacts.get_result(runs[victim]["key"]) is None

    # Retried, the canceled run trains in a Job of its own; the finished runs are not trained again.
    client.retry(redis, victim)
    Worker(hub, artifacts, tmp_path).wait(timeout=600)
    again = JobStore(redis).run(victim)
    assert again["status"] == "finished", again
    assert len(hub.jobs) == 4 and again["backend_job_id"] not in by_job
    assert artifacts.get_result(again["key"])["metrics"] == again["metrics"]
    listed = json.loads(hub.file(RESULTS_REPO, f"experiments/{study_id}/batches/{again['backend_batch']}.json"))
    assert [r["run_id"] for r in listed] == [victim]
