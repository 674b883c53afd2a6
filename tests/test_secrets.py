"""A Hugging Face token is found nowhere it should not be, after real studies on both backends.

One module fixture runs, against a real Redis (db 7) and with one random token:
1. an HF Jobs study (the smallest setup of tests/test_hf_jobs.py: baseline + one candidate at one
   size) through the real `huggingface_hub` client against the fake Hub/Jobs API in execute mode,
   followed by a real `workbench worker --burst` subprocess whose environment holds HF_TOKEN;
2. a local study (tests/specs.py `tiny_spec`, one size: 3 runs) trained by a real
   `workbench worker --burst` subprocess with HF_TOKEN in its environment.
The submitting process (this one) has HF_TOKEN set too, and the dashboard (`workbench dashboard`)
is started with it. Then every place the workbench writes to is searched for the token, its first
12 characters (a partial leak) and its base64 forms (a token inside an encoded blob):
Redis (every key of the db, every value whatever its type, RQ's jobs), logs (the workers' and the
dashboard's output, every run's event log, the HF Jobs' own logs), files (ARTIFACTS_DIR and
WORKBENCH_HOME, as bytes) and the dashboard's pages in headless Chromium (the HTML of each page
and each study and run the pages let one pick, and every websocket frame Streamlit sent, which
holds what the HTML does not: table cells drawn on a canvas). Each search also has to find the
study and run ids (or another known marker) where it looks, so a search of nothing cannot pass.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import string
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from core.artifacts import ArtifactStore
from tests.conftest import real_redis, redis_test_url
from tests.fake_hub import FakeHub
from tests.specs import tiny_spec
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, _free_port, _settle
from tests.test_hf_jobs import USER, _redis_dump, _variants
from tests.test_hf_jobs import _spec as hf_spec
from workers import client
from workers.client import SubmitOptions
from workers.store import JobStore

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = redis_test_url(7)
TOKEN = "hf_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(34))
CLEAN_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT", "REDIS_URL", "ARTIFACTS_DIR", "WORKBENCH_HOME")


# ------------------------------------------------------------------------------------------------
# What is searched for, and how


def needles(token: str) -> dict[str, bytes]:
    """The token, its first 12 characters, and its base64 forms at each of the three alignments.

    Inside a base64 blob the token's encoding depends on where it starts (mod 3), so each form drops
    the 4-character groups at its edges, which also hold the unknown bytes around it.
    """
    raw = token.encode()
    out = {"token": raw, "token's first 12 characters": raw[:12]}
    for shift in range(3):
        for name, encode in (("base64", base64.b64encode), ("url-safe base64", base64.urlsafe_b64encode)):
            out[f"{name} of the token (alignment {shift})"] = encode(b"\0" * shift + raw)[4 if shift else 0 : -4]
    return out


NEEDLES = needles(TOKEN)


def find_token(where: str, data: bytes | str, needles: dict[str, bytes] = NEEDLES) -> list[str]:
    """Each form of the token found in `data`, with where and the text around it."""
    if isinstance(data, str):
        data = data.encode("utf-8", errors="replace")
    found = []
    for name, needle in needles.items():
        at = data.find(needle)
        if at >= 0:
            around = data[max(0, at - 120) : at + len(needle) + 120].decode("utf-8", errors="replace")
            found.append(f"{name} in {where}: ...{around}...")
    return found


def assert_no_token(found: list[str]) -> None:
    assert not found, "the Hugging Face token leaked:\n" + "\n".join(found[:30])


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


# ------------------------------------------------------------------------------------------------
# The two studies and the dashboard


class Process:
    """A `workbench ...` subprocess in its own process group, stdout and stderr in two files."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path):
        self.name = name
        self.out, self.err = logs / f"{name}.stdout.log", logs / f"{name}.stderr.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", *args],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=open(self.out, "wb"),
            stderr=open(self.err, "wb"),
            start_new_session=True,
        )

    def text(self) -> str:
        return (self.out.read_bytes() + b"\n" + self.err.read_bytes()).decode(errors="replace")

    def wait(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"{self.name} still running after {timeout} s:\n{self.text()[-3000:]}") from None

    def stop(self, sig=signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    env.update(extra)
    return env


def _wait_for_dashboard(dashboard: Process, url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                return
        except OSError:
            time.sleep(0.3)
        if dashboard.proc.poll() is not None:
            raise AssertionError("the dashboard exited:\n" + dashboard.text()[-3000:])
    raise AssertionError(f"the dashboard did not answer within {timeout} s:\n" + dashboard.text()[-3000:])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Both studies finished, the dashboard up; what the searches need to know where to look."""
    tmp = tmp_path_factory.mktemp("secrets")
    home, artifacts_root, logs = tmp / "home", tmp / "artifacts", tmp / "logs"
    logs.mkdir()
    redis_gen = real_redis(REDIS_URL)
    redis = next(redis_gen)
    processes: list[Process] = []
    hub = FakeHub(token=TOKEN, user=USER).start()
    mp = pytest.MonkeyPatch()
    try:
        # This process submits both studies: its environment holds the token too.
        mp.setenv("HF_TOKEN", TOKEN)
        mp.setenv("WORKBENCH_HOME", str(home))
        mp.setenv("ARTIFACTS_DIR", str(artifacts_root))
        mp.setenv("REDIS_URL", REDIS_URL)
        from core.tiny_model import ensure_tiny_lm

        ensure_tiny_lm()  # in this home, before any process wants it
        artifacts = ArtifactStore(artifacts_root)
        places = dict(REDIS_URL=REDIS_URL, ARTIFACTS_DIR=str(artifacts_root), WORKBENCH_HOME=str(home))

        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        dashboard = Process(
            "dashboard",
            ["dashboard", "--port", str(port), "--address", "127.0.0.1"],
            _env(HF_TOKEN=TOKEN, **places),
            logs,
        )
        processes.append(dashboard)

        # 1. HF Jobs: the Job's command runs here, as in test_hf_jobs' end-to-end test.
        hub.execute = True
        container = tmp / "container"
        container.mkdir()
        hub.workdir = str(container)
        hub.base_env = {  # what the Job's image provides: the workbench on PATH, a home, the model cache
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(container),
            "WORKBENCH_HOME": str(home),
            "HF_HOME": str(container / "hf-home"),
        }
        hf_options = SubmitOptions(
            backend="hf_jobs", backend_options={"hf_flavor": "a10g-small", "hf_timeout": "45m"}, run_timeout=900
        )
        hf_study = client.submit(redis, hf_spec(), hf_options, artifacts=artifacts)
        hf_env = _env(
            HF_TOKEN=TOKEN, HF_ENDPOINT=hub.url, HF_HOME=str(tmp / "worker-hf-home"), WORKBENCH_HF_POLL="0.2", **places
        )
        for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # a worker serving HF Jobs reaches the (fake) Hub
            hf_env.pop(k, None)
        # -v: the workers log all they can (each Hub request's URL too), so there is more to search
        hf_worker = Process("hf-worker", ["-v", "worker", "--burst", "--queues", "default"], hf_env, logs)
        processes.append(hf_worker)
        hf_worker.wait(timeout=300)

        # 2. Local, after the HF study (two trainings side by side on a 2-core box are slower, not faster).
        # Seed 1, not the HF study's 0, so that none of its runs is a cache hit of an HF run.
        local_study = client.submit(
            redis,
            tiny_spec(sizes=[40], seeds=[1], name="secrets-local"),
            SubmitOptions(backend="local"),
            artifacts=artifacts,
        )
        local_worker = Process("local-worker", ["-v", "worker", "--burst"], _env(HF_TOKEN=TOKEN, **places), logs)
        processes.append(local_worker)
        local_worker.wait(timeout=300)

        studies = {"hf_jobs": hf_study, "local": local_study}
        store = JobStore(redis)
        runs = {}
        for backend, sid in studies.items():
            st = client.wait(redis, sid, timeout=30, poll=0.2)  # the burst workers ran its ranking too
            worker = hf_worker if backend == "hf_jobs" else local_worker
            assert st["study"]["status"] == "finished", (st, worker.text()[-3000:])
            for run in store.study_runs(sid):
                assert run["status"] == "finished" and str(run.get("cached") or 0) == "0", (run, worker.text()[-3000:])
                runs[run["id"]] = run
        assert len(runs) == 5 and len(hub.jobs) == 2
        _wait_for_dashboard(dashboard, url)
        yield {
            "redis": redis,
            "hub": hub,
            "studies": studies,
            "runs": runs,
            "artifacts": artifacts_root,
            "home": home,
            "url": url,
            "port": port,
            "workers": [hf_worker, local_worker],
            "dashboard": dashboard,
        }
    finally:
        for p in reversed(processes):
            p.stop(signal.SIGTERM if p.name == "dashboard" else signal.SIGKILL)
        hub.stop()
        mp.undo()
        next(redis_gen, None)


# ------------------------------------------------------------------------------------------------
# The search itself


def test_the_search_finds_every_form_of_a_planted_token():
    planted = "hf_" + "".join(secrets.choice(string.ascii_letters) for _ in range(34))
    forms = needles(planted)
    assert find_token("x", f'{{"auth": "Bearer {planted}"}}', forms)
    assert any("first 12" in f for f in find_token("x", f"token={planted[:14]}...", forms))
    for prefix in (b"", b"a", b"ab", b"abc"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            assert find_token("x", encode(prefix + planted.encode() + b"tail"), forms), prefix
    assert not find_token("x", TOKEN, forms) and not find_token("x", planted, NEEDLES)


# ------------------------------------------------------------------------------------------------
# Where the token must not be


def test_no_token_in_redis(world):
    from rq.job import Job

    redis = world["redis"]
    keys = list(redis.scan_iter(count=500))
    found, seen = [], []
    for name, raw in _redis_dump(redis):  # every key and every value, whatever its type
        seen.append(raw)
        for variant in _variants(raw):  # RQ stores zlib-compressed pickles; base64 decoded too
            found += find_token(f"Redis key {name}", variant)
    for key in keys:  # and each value as Redis serializes it
        dumped = redis.dump(key) or b""
        seen.append(dumped)
        found += find_token(f"DUMP of Redis key {key.decode(errors='replace')}", dumped)
    jobs = 0
    for key in redis.scan_iter("rq:job:*"):  # RQ's own view of each job: arguments, result, failure
        job_id = key.decode().split(":", 2)[2]
        if ":" in job_id:
            continue
        job = Job.fetch(job_id, connection=redis)
        jobs += 1
        found += find_token(
            f"RQ job {job_id}", repr((job.args, job.kwargs, job.meta, job.exc_info, job.description, job.origin))
        )
        for result in job.results():
            found += find_token(f"result of RQ job {job_id}", repr((result.return_value, result.exc_string)))
    assert_no_token(found)

    # the search looked at the studies: their records, every run's record and events, RQ's jobs
    blob = b"\n".join(seen)
    for sid in world["studies"].values():
        assert sid.encode() in blob and f"wb:study:{sid}".encode() in keys
    for rid in world["runs"]:
        assert f"wb:run:{rid}".encode() in keys and f"wb:run:{rid}:events".encode() in keys
    assert jobs >= 5 + 2 * 2  # a job per run, a fit per arm and a ranking per study
    print(f"Redis: {len(keys)} keys, {len(seen)} values, {jobs} RQ jobs searched")


def test_no_token_in_logs(world):
    redis, hub = world["redis"], world["hub"]
    store = JobStore(redis)
    found = []
    logs = {}
    for proc in (*world["workers"], world["dashboard"]):
        for path in (proc.out, proc.err):
            logs[str(path)] = path.read_bytes()
    for rid in world["runs"]:
        logs[f"event log of run {rid}"] = json.dumps(store.events(rid)).encode()
    for job in hub.jobs.values():
        logs[f"log of HF Job {job.id}"] = "\n".join(line for _, line in job.logs).encode()
    for where, data in logs.items():
        found += find_token(where, data)
    assert_no_token(found)

    # the search read real logs: each run's events name it; the workers said what they ran
    for rid, run in world["runs"].items():
        events = logs[f"event log of run {rid}"].decode()
        assert "finished: " in events, events[-2000:]
        if run.get("backend") == "hf_jobs":
            assert run["backend_job_id"] in events and f"[workbench] [{rid}] done:" in events
    # The HF worker logs each Hub request (-v), URLs with the study id; the dashboard says where it is.
    # The local worker prints nothing at all when every run goes well: there is nothing to search there.
    hf_worker, local_worker = world["workers"]
    assert world["studies"]["hf_jobs"] in hf_worker.text(), hf_worker.text()[-2000:]
    assert f":{world['port']}" in world["dashboard"].text()
    assert local_worker.text().strip() == "" or world["studies"]["local"] in local_worker.text(), local_worker.text()[
        -2000:
    ]
    for job in hub.jobs.values():
        assert job.labels()["workbench-run"] in "\n".join(line for _, line in job.logs)
    print(f"logs: {len(logs)} logs searched ({sum(len(v) for v in logs.values()):,} bytes)")


def test_no_token_in_artifacts_or_workbench_home(world):
    found, counts = [], {}
    for label, root in (("ARTIFACTS_DIR", world["artifacts"]), ("WORKBENCH_HOME", world["home"])):
        files = files_under(root)
        counts[label] = len(files)
        blob = []
        for path in files:
            data = path.read_bytes()
            blob.append(str(path.relative_to(root)).encode())
            blob.append(data)
            found += find_token(f"{label} file {path}", str(path.relative_to(root)).encode() + b"\n" + data)
        blob = b"\n".join(blob)
        if label == "ARTIFACTS_DIR":  # every study's outputs and every run's result are there
            for sid in world["studies"].values():
                assert sid.encode() in blob
            for run in world["runs"].values():
                assert run["key"].encode() in blob
        else:  # the built-in model and the demo data the studies used
            assert b"LlamaForCausalLM" in blob and b'"text"' in blob
    assert_no_token(found)
    print(
        f"files: {counts['ARTIFACTS_DIR']} under ARTIFACTS_DIR, {counts['WORKBENCH_HOME']} under "
        "WORKBENCH_HOME searched"
    )


def _pick(page, label: str, wanted: str) -> None:
    """Choose the option of Streamlit's selectbox `label` whose text holds `wanted`, and wait for the rerun."""
    box = page.get_by_role("combobox", name=label, exact=True)
    box.click()
    box.fill(wanted)  # the picker filters its options on what is typed
    page.get_by_role("option").filter(has_text=wanted).first.click()
    _settle(page)
    assert wanted in box.input_value()


def test_no_token_in_dashboard_pages(world):
    """Each page, each study the pages let one pick and each run's log, as Chromium has them."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), "Debian's chromium is needed (make test installs it)"
    url, studies, runs = world["url"], world["studies"], world["runs"]
    snapshots: dict[str, str] = {}  # what was seen -> page.content() then
    frames: list[bytes] = []  # every websocket frame the browser received from Streamlit

    def on_websocket(ws):
        ws.on(
            "framereceived", lambda payload: frames.append(payload if isinstance(payload, bytes) else payload.encode())
        )

    def visit(page, path: str, heading: str, shows: str) -> None:
        """Open a page and wait until Streamlit has drawn it: its heading, then `shows`, then no script running."""
        page.goto(url + path)
        page.wait_for_load_state("networkidle")
        page.get_by_role("heading", name=heading, exact=True).wait_for()
        page.get_by_text(shows).first.wait_for(state="attached")  # table cells are hidden: a canvas draws them
        _settle(page)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
            page.set_default_timeout(60_000)
            page.on("websocket", on_websocket)

            visit(page, "/", "Setup", "Load demo study")
            snapshots["Setup page (/)"] = page.content()
            visit(page, "/catalog", "Catalog", "glue/sst2")  # the first entry (the grid draws only what is in view)
            snapshots["Catalog page (/catalog)"] = page.content()

            visit(page, "/jobs", "Jobs", "Show studies with status")
            snapshots["Jobs page (/jobs) as it opens"] = page.content()
            for backend, sid in studies.items():
                _pick(page, "Study", sid)
                page.get_by_text(f"id {sid}").first.wait_for()
                snapshots[f"Jobs page, {backend} study {sid}"] = page.content()
                for rid in (r for r in runs if r.startswith(sid + "-")):
                    _pick(page, "Run", rid)
                    page.get_by_test_id("stCode").filter(has_text="finished: ").first.wait_for()  # the run's log
                    snapshots[f"Jobs page, {backend} study {sid}, run {rid} and its log"] = page.content()

            visit(page, "/results", "Results", "Results folder")
            snapshots["Results page (/results) as it opens"] = page.content()
            for backend, sid in studies.items():
                _pick(page, "Study", sid)
                page.get_by_test_id("stCode").filter(has_text=sid).first.wait_for()  # its results folder
                snapshots[f"Results page, {backend} study {sid}"] = page.content()
            other = studies["hf_jobs"]  # the local study is picked: compare it with the HF one, side by side
            _pick(page, "Compare with", other)
            page.get_by_text(other, exact=True).first.wait_for()  # the caption under its compact summary
            snapshots[f"Results page, local study {studies['local']} compared with study {other}"] = page.content()
        finally:
            browser.close()

    found = []
    for what, html in snapshots.items():
        found += find_token(what, html)
    for i, frame in enumerate(frames):
        found += find_token(f"websocket frame {i} from the dashboard", frame)
    assert_no_token(found)

    # The snapshots hold what was looked at: each page's own content, the picked study, the run
    # and its log; the frames hold every run's row (the tables are drawn on a canvas).
    assert "Load demo study" in snapshots["Setup page (/)"] and "glue/sst2" in snapshots["Catalog page (/catalog)"]
    for what, html in snapshots.items():
        for sid in studies.values():
            if sid in what:
                assert sid in html, what
        for rid in runs:
            if f"run {rid}" in what:
                assert rid in html and "finished: " in html, what
                if runs[rid].get("backend") == "hf_jobs":
                    assert f"[workbench] [{rid}] done:" in html, what
    wire = b"".join(frames)
    for rid in runs:
        assert rid.encode() in wire
    print(f"dashboard: {len(snapshots)} page snapshots, {len(frames)} websocket frames ({len(wire):,} bytes) searched")
