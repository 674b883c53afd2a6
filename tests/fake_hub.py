"""A local fake of the Hugging Face Hub and its Jobs API, for the real `huggingface_hub` client.

Point the client at it with HF_ENDPOINT=<fake.url>. It implements exactly the routes the workbench's
HF Jobs backend calls, answering as the Hub does (status codes, X-Error-Code headers, response shapes):

    GET  /api/whoami-v2                                   the token's user (401 for another token)
    GET  /api/models/<id>                                 model info; gated models say so, missing ones 404
    GET  /api/models/<id>/auth-check                      403 GatedRepo for a gated model without access
    POST /api/repos/create                                create a repo (409 when it exists)
    POST /api/validate-yaml                               a README's YAML front matter (400 with errors when bad)
    GET  /api/<type>s/<id>                                repo info
    POST /api/<type>s/<id>/preupload/<rev>                "lfs" from `lfs_threshold` bytes (10 MB), else "regular"
    POST /<type>s/<id>.git/info/lfs/objects/batch         LFS batch API (basic transfer); Xet is not served:
                                                          the suite sets HF_HUB_DISABLE_XET=1 (Xet is untested)
    PUT  /lfs-storage/<oid>, POST .../verify              the upload URL (its bytes must hash to the oid), verify
    POST /api/<type>s/<id>/commit/<rev>                   NDJSON commit of base64 files and uploaded LFS objects
    HEAD/GET /<type>s/<id>/resolve/<rev>/<path>           file download, with ETag, X-Repo-Commit, Content-Length
    POST /api/jobs/<ns>                                   run a Job (400 for a flavor not in FLAVORS)
    GET  /api/jobs/hardware                               the flavors with their specs and prices (HARDWARE)
    GET  /api/jobs/<ns>?label=k=v&stage=S                 list the namespace's Jobs, filtered as the Hub does
    GET  /api/jobs/<ns>/<job>                             inspect a Job
    GET  /api/jobs/<ns>/<job>/logs                        the Job's logs as server-sent events, then the stream ends
                                                          (only the latest `log_window` lines when it is set)
    POST /api/jobs/<ns>/<job>/cancel                      cancel a Job

Every request is recorded (method, path, query, headers, raw body, parsed JSON) in `requests`.
Scripted faults (`fake.faults.append(Fault(...))`) answer matching requests with an error instead,
a given number of times: 429 with Retry-After, 5xx, 402/403, 404 on the logs route...

Jobs move through stages in one of two modes:
- scripted (`fake.script = Script([...])`): each inspect of a Job advances it one step through a list of
  (stage, inspects, log lines, message); the last stage stays. A cancel makes it CANCELED.
- execute (`fake.execute = True`): the Job's command runs here as a subprocess, with the Job's env and
  secrets over `fake.base_env`, and HF_ENDPOINT pointing back at the fake; its output lines are the
  Job's logs; exit code 0 is COMPLETED, anything else ERROR. A cancel kills it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

TERMINAL = ("COMPLETED", "ERROR", "CANCELED", "DELETED")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# Jobs hardware flavors the fake accepts (a subset of the Hub's, as the client's JobHardware names them).
# The hardware the fake's Jobs accept, with the Hub's prices per minute in micro-USD (GET /api/jobs/hardware).
HARDWARE = {
    "cpu-basic": (None, 167),
    "cpu-upgrade": (None, 500),
    "t4-small": ("T4", 6667),
    "t4-medium": ("T4", 10000),
    "l4x1": ("L4", 13333),
    "a10g-small": ("A10G", 16667),
    "a10g-large": ("A10G", 25000),
    "a100-large": ("A100", 41667),
    "l40sx8": ("L40S", 391667),  # newer than the client's JobHardware enum: only the live list has it
}
FLAVORS = tuple(HARDWARE)


@dataclass
class Fault:
    """Answer `times` requests whose method is `method` and whose path matches `path` (re.search) with `status`."""

    method: str
    path: str
    status: int
    times: int = 1
    retry_after: float | None = None  # sent as Retry-After (seconds)
    message: str = "scripted fault"
    hits: int = 0


@dataclass
class Step:
    stage: str
    inspects: int = 1  # how many inspects see the Job in this stage before it moves on
    logs: list[str] = field(default_factory=list)  # lines logged on entering the stage
    message: str | None = None


@dataclass
class Script:
    """Stages a scripted Job goes through, one inspect at a time. `on_stage(fake, job, stage)` runs on each entry."""

    steps: list[Step]
    on_stage: object = None


@dataclass
class FakeJob:
    id: str
    namespace: str
    spec: dict
    stage: str = "SCHEDULING"
    message: str | None = None
    logs: list[tuple[str, str]] = field(default_factory=list)  # (timestamp, line)
    created_at: str = field(default_factory=_now)
    inspects: int = 0
    step: int = 0
    step_inspects: int = 0
    process: subprocess.Popen | None = None
    canceled: bool = False

    def labels(self) -> dict:
        return dict(self.spec.get("labels") or {})

    def log(self, line: str) -> None:
        self.logs.append((_now(), line))

    def info(self, endpoint: str) -> dict:
        return {
            "id": self.id,
            "createdAt": self.created_at,
            "dockerImage": self.spec.get("dockerImage"),
            "spaceId": self.spec.get("spaceId"),
            "command": self.spec.get("command"),
            "arguments": self.spec.get("arguments") or [],
            "environment": self.spec.get("environment") or {},
            # The Hub keeps secrets encrypted and never sends their values back.
            "secrets": {k: None for k in (self.spec.get("secrets") or {})},
            "flavor": self.spec.get("flavor"),
            "labels": self.spec.get("labels"),
            "timeoutSeconds": self.spec.get("timeoutSeconds"),
            "status": {"stage": self.stage, "message": self.message},
            "owner": {"id": "fake-owner-id", "name": self.namespace, "type": "user"},
        }


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    sha: str = field(default_factory=lambda: secrets.token_hex(20))


class FakeHub:
    def __init__(self, *, token: str, user: str = "fake-user", orgs: tuple[str, ...] = ()):
        self.token, self.user, self.orgs = token, user, list(orgs)
        self.requests: list[dict] = []
        self.repos: dict[tuple[str, str], Repo] = {}
        self.models: dict[str, str] = {}  # id -> "gated" | "missing" | "ok"; unknown ids exist and are public
        self.jobs: dict[str, FakeJob] = {}
        self.faults: list[Fault] = []
        self.script: Script | None = None
        self.execute = False
        self.log_window: int | None = None
        self.lfs_threshold = 10 * 1024 * 1024  # files this large take the LFS path, as on the Hub
        self.lfs_objects: dict[
            str, bytes
        ] = {}  # LFS storage: sha256 -> bytes  # logs replay only their latest N lines (None: the whole log)
        self.base_env: dict[str, str] = {}  # execute mode: what the image provides (PATH, HOME, ...)
        self.workdir: str | None = None  # execute mode: the container's working directory
        self.lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-hub", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        for job in list(self.jobs.values()):
            if job.process and job.process.poll() is None:
                job.process.kill()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- what tests set up and read ---------------------------------------------------------------

    def mark_model(self, model_id: str, state: str) -> None:
        assert state in ("gated", "missing", "ok")
        self.models[model_id] = state

    def put_file(self, repo_id: str, path: str, data: bytes | str, repo_type: str = "dataset") -> None:
        with self.lock:
            repo = self.repos.setdefault((repo_type, repo_id), Repo(repo_type, repo_id, private=True))
            repo.files[path] = data.encode() if isinstance(data, str) else data
            repo.sha = secrets.token_hex(20)

    def file(self, repo_id: str, path: str, repo_type: str = "dataset") -> bytes | None:
        repo = self.repos.get((repo_type, repo_id))
        return repo.files.get(path) if repo else None

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.hits < fault.times and fault.method == method and re.search(fault.path, path):
                    fault.hits += 1
                    return fault
        return None

    def requests_to(self, method: str, pattern: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method and re.search(pattern, r["path"])]

    def job_requests(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST" and re.fullmatch(r"/api/jobs/[^/]+", r["path"])]

    # -- jobs --------------------------------------------------------------------------------------

    def create_job(self, namespace: str, spec: dict) -> FakeJob:
        job = FakeJob(id=secrets.token_hex(12), namespace=namespace, spec=spec)
        job.log(f"===== Job started at {job.created_at} =====")
        with self.lock:
            self.jobs[job.id] = job
            if self.execute:
                threading.Thread(target=self._execute, args=(job,), daemon=True).start()
            elif self.script:
                self._enter(job, 0)
        return job

    def _enter(self, job: FakeJob, index: int) -> None:
        step = self.script.steps[index]
        job.step, job.step_inspects = index, 0
        job.stage, job.message = step.stage, step.message
        for line in step.logs:
            job.log(line)
        if self.script.on_stage:
            self.script.on_stage(self, job, step.stage)

    def inspect(self, job: FakeJob) -> None:
        """A scripted Job advances one inspect at a time."""
        with self.lock:
            job.inspects += 1
            if self.execute or not self.script or job.stage in TERMINAL:
                return
            step = self.script.steps[job.step]
            if job.step_inspects >= step.inspects and job.step + 1 < len(self.script.steps):
                self._enter(job, job.step + 1)
            job.step_inspects += 1  # this inspect sees the stage

    def cancel(self, job: FakeJob) -> None:
        with self.lock:
            job.canceled = True
            if job.stage not in TERMINAL:
                job.stage, job.message = "CANCELED", "canceled by the user"
            if job.process and job.process.poll() is None:
                job.process.kill()

    def _execute(self, job: FakeJob) -> None:
        time.sleep(0.1)  # a moment of SCHEDULING
        env = {
            **self.base_env,
            **(job.spec.get("environment") or {}),
            **(job.spec.get("secrets") or {}),
            "HF_ENDPOINT": self.url,
        }
        with self.lock:
            if job.canceled:
                return
            job.stage = "RUNNING"
            job.process = subprocess.Popen(
                job.spec["command"] + list(job.spec.get("arguments") or []),
                env=env,
                cwd=self.workdir,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
            )
        for line in job.process.stdout:
            job.log(line.rstrip("\n"))
        code = job.process.wait()
        with self.lock:
            if job.stage in TERMINAL:
                return
            if code == 0:
                job.stage, job.message = "COMPLETED", None
            else:
                job.stage, job.message = "ERROR", f"Job failed with exit code: {code}"


def _handler(hub: FakeHub):
    repo_re = r"(?P<type>models|datasets|spaces)/(?P<id>[^/]+/[^/]+)"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        # -- plumbing ------------------------------------------------------------------------------

        def _record(self) -> dict:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                raw = self._read_chunked()
            else:
                raw = self.rfile.read(length) if length else b""
            body = raw.decode("utf-8", errors="replace")
            parsed = None
            if (
                raw
                and "json" in (self.headers.get("Content-Type") or "")
                and "ndjson" not in (self.headers.get("Content-Type") or "")
            ):
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    parsed = None
            rec = {
                "method": self.command,
                "path": unquote(parts.path),
                "query": parse_qs(parts.query),
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
                "raw": raw,
                "json": parsed,
            }
            with hub.lock:
                hub.requests.append(rec)
            return rec

        def _read_chunked(self) -> bytes:
            out = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()

        def _authorized(self, rec: dict) -> bool:
            return rec["headers"].get("authorization") == f"Bearer {hub.token}"

        def _send(
            self,
            status: int,
            payload=None,
            headers: dict | None = None,
            body: bytes | None = None,
            content_type="application/json",
        ):
            data = body if body is not None else (json.dumps(payload).encode() if payload is not None else b"")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _error(self, status: int, code: str | None, message: str, extra: dict | None = None):
            headers = {"X-Error-Message": message, **(extra or {})}
            if code:
                headers["X-Error-Code"] = code
            self._send(status, {"error": message}, headers=headers)

        def _repo(self, rec, repo_type: str, repo_id: str) -> Repo | None:
            repo = hub.repos.get((repo_type, repo_id))
            if repo is None or (repo.private and not self._authorized(rec)):
                self._error(404, "RepoNotFound", "Repository not found")
                return None
            return repo

        def do_GET(self):
            self._route("GET")

        def do_HEAD(self):
            self._route("HEAD")

        def do_POST(self):
            self._route("POST")

        def do_PUT(self):
            self._route("PUT")

        # -- routes --------------------------------------------------------------------------------

        def _route(self, method: str):
            rec = self._record()
            path = rec["path"]
            try:
                fault = hub.take_fault(method, path)
                if fault is not None:
                    extra = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
                    return self._error(fault.status, None, fault.message, extra)
                if path == "/api/whoami-v2" and method == "GET":
                    return self._whoami(rec)
                if path == "/api/repos/create" and method == "POST":
                    return self._create_repo(rec)
                if path == "/api/validate-yaml" and method == "POST":
                    return self._validate_yaml(rec)
                if path == "/api/jobs/hardware" and method == "GET":
                    return self._hardware(rec)
                m = re.fullmatch(r"/api/jobs/(?P<ns>[^/]+)", path)
                if m and method == "POST":
                    return self._run_job(rec, m["ns"])
                if m and method == "GET":
                    return self._list_jobs(rec, m["ns"])
                m = re.fullmatch(r"/api/jobs/(?P<ns>[^/]+)/(?P<job>[^/]+)(?P<rest>/logs|/cancel)?", path)
                if m:
                    return self._job(rec, method, m["ns"], m["job"], m["rest"])
                m = re.fullmatch(r"/api/models/(?P<id>[^/]+/[^/]+|[^/]+)(?P<rest>/auth-check)?", path)
                if m and method == "GET":
                    return self._model(rec, m["id"], m["rest"])
                m = re.fullmatch(rf"/api/{repo_re}/preupload/(?P<rev>[^/]+)", path)
                if m and method == "POST":
                    return self._preupload(rec, m["type"][:-1], m["id"])
                m = re.fullmatch(rf"/{repo_re}\.git/info/lfs/objects/batch", path)
                if m and method == "POST":
                    return self._lfs_batch(rec, m["type"][:-1], m["id"])
                m = re.fullmatch(r"/lfs-storage/(?P<oid>[0-9a-f]{64})(?P<verify>/verify)?", path)
                if m and method == "PUT" and not m["verify"]:
                    return self._lfs_put(rec, m["oid"])
                if m and method == "POST" and m["verify"]:
                    return self._lfs_verify(rec, m["oid"])
                m = re.fullmatch(rf"/api/{repo_re}/commit/(?P<rev>[^/]+)", path)
                if m and method == "POST":
                    return self._commit(rec, m["type"][:-1], m["id"])
                m = re.fullmatch(rf"/api/{repo_re}(?:/revision/(?P<rev>[^/]+))?", path)
                if m and method == "GET":
                    return self._repo_info(rec, m["type"][:-1], m["id"])
                m = re.fullmatch(rf"/{repo_re}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", path)
                if m and method in ("GET", "HEAD"):
                    return self._resolve(rec, m["type"][:-1], m["id"], m["file"])
                self._error(404, None, f"no route for {method} {path}")
            except BrokenPipeError:
                pass

        def _whoami(self, rec):
            if not self._authorized(rec):
                return self._error(401, None, "Invalid credentials in Authorization header")
            self._send(
                200,
                {
                    "type": "user",
                    "id": "fake-user-id",
                    "name": hub.user,
                    "fullname": "Fake User",
                    "orgs": [{"name": o, "type": "org"} for o in hub.orgs],
                    "auth": {"type": "access_token", "accessToken": {"displayName": "fake", "role": "write"}},
                },
            )

        def _model(self, rec, model_id: str, rest: str | None):
            state = hub.models.get(model_id, "ok")
            if state == "missing":
                return self._error(404, "RepoNotFound", "Repository not found")
            if rest == "/auth-check":
                if state == "gated":
                    return self._error(403, "GatedRepo", "Access to model is restricted")
                return self._send(200, {})
            self._send(
                200,
                {
                    "id": model_id,
                    "sha": "0" * 40,
                    "private": False,
                    "gated": "manual" if state == "gated" else False,
                    "tags": [],
                },
            )

        def _create_repo(self, rec):
            if not self._authorized(rec):
                return self._error(401, None, "Invalid credentials in Authorization header")
            body = rec["json"] or {}
            repo_type = body.get("type") or "model"
            repo_id = f"{body.get('organization') or hub.user}/{body['name']}"
            prefix = "" if repo_type == "model" else f"{repo_type}s/"
            with hub.lock:
                if (repo_type, repo_id) in hub.repos:  # the Hub answers 409 with the repo's url
                    message = "You already created this repo"
                    return self._send(
                        409,
                        {"error": message, "url": f"{hub.url}/{prefix}{repo_id}"},
                        headers={"X-Error-Message": message},
                    )
                private = body.get("visibility") == "private" or bool(body.get("private"))
                hub.repos[(repo_type, repo_id)] = Repo(repo_type, repo_id, private=private)
            self._send(200, {"url": f"{hub.url}/{prefix}{repo_id}", "name": repo_id})

        def _hardware(self, rec):
            listed = []
            for name, (gpu, micro_usd) in HARDWARE.items():
                accelerator = None
                if gpu:
                    count = "8" if name.endswith("x8") else "1"
                    accelerator = {
                        "type": "gpu",
                        "model": gpu,
                        "quantity": count,
                        "vram": "24 GB",
                        "manufacturer": "Nvidia",
                    }
                listed.append(
                    {
                        "name": name,
                        "prettyName": name.replace("-", " ").title(),
                        "cpu": "8 vCPU",
                        "ram": "32 GB",
                        "ephemeralStorage": "50 GB",
                        "accelerator": accelerator,
                        "unitCostMicroUSD": micro_usd,
                        "unitCostUSD": micro_usd / 1e6,
                        "unitLabel": "minute",
                    }
                )
            self._send(200, listed)

        def _validate_yaml(self, rec):
            """What the Hub says of a README before a commit: warnings for no metadata, 400 for bad YAML."""
            import yaml

            content = (rec["json"] or {}).get("content") or ""
            m = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.DOTALL)
            if not m:
                return self._send(200, {"errors": [], "warnings": [{"message": "empty or missing yaml metadata"}]})
            try:
                meta = yaml.safe_load(m.group(1))
            except yaml.YAMLError as err:
                return self._send(400, {"errors": [{"message": f"invalid YAML: {err}"}], "warnings": []})
            if not isinstance(meta, dict):
                return self._send(400, {"errors": [{"message": "metadata must be a YAML mapping"}], "warnings": []})
            self._send(200, {"errors": [], "warnings": []})

        def _repo_info(self, rec, repo_type, repo_id):
            repo = self._repo(rec, repo_type, repo_id)
            if repo:
                self._send(
                    200,
                    {
                        "id": repo_id,
                        "sha": repo.sha,
                        "private": repo.private,
                        "siblings": [{"rfilename": p} for p in sorted(repo.files)],
                    },
                )

        def _preupload(self, rec, repo_type, repo_id):
            if not self._authorized(rec):
                return self._error(401, None, "Invalid credentials in Authorization header")
            if not self._repo(rec, repo_type, repo_id):
                return
            files = (rec["json"] or {}).get("files") or []
            mode = lambda f: "lfs" if int(f.get("size") or 0) >= hub.lfs_threshold else "regular"  # noqa: E731
            self._send(
                200,
                {
                    "files": [
                        {"path": f["path"], "uploadMode": mode(f), "shouldIgnore": False, "oid": None} for f in files
                    ]
                },
            )

        def _lfs_batch(self, rec, repo_type, repo_id):
            """The LFS batch API: an upload action for each object the store does not hold yet."""
            if not self._authorized(rec):
                return self._error(401, None, "Invalid credentials in Authorization header")
            if not self._repo(rec, repo_type, repo_id):
                return
            body = rec["json"] or {}
            if body.get("operation") != "upload" or "basic" not in (body.get("transfers") or ["basic"]):
                return self._error(400, None, "only basic uploads")
            objects = []
            for obj in body.get("objects") or []:
                entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
                if obj["oid"] not in hub.lfs_objects:
                    href = f"{hub.url}/lfs-storage/{obj['oid']}"
                    entry["actions"] = {"upload": {"href": href, "header": {}}, "verify": {"href": href + "/verify"}}
                objects.append(entry)
            self._send(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"})

        def _lfs_put(self, rec, oid):
            """The storage's upload URL (on the Hub, a presigned S3 URL): the bytes, if their sha256 is the oid."""
            data = rec["raw"]
            if hashlib.sha256(data).hexdigest() != oid:
                return self._error(400, None, "the uploaded bytes do not match the object id")
            with hub.lock:
                hub.lfs_objects[oid] = data
            self._send(200, {})

        def _lfs_verify(self, rec, oid):
            body = rec["json"] or {}
            stored = hub.lfs_objects.get(oid)
            if stored is None or body.get("size") != len(stored):
                return self._error(404, None, "object not found or of another size")
            self._send(200, {"message": "verified"})

        def _commit(self, rec, repo_type, repo_id):
            if not self._authorized(rec):
                return self._error(401, None, "Invalid credentials in Authorization header")
            repo = self._repo(rec, repo_type, repo_id)
            if not repo:
                return
            items = [json.loads(line) for line in rec["body"].splitlines() if line.strip()]
            with hub.lock:
                for item in items:
                    value = item.get("value") or {}
                    if item.get("key") == "file":
                        if value.get("encoding") != "base64":
                            return self._error(400, None, "only base64 files")
                        repo.files[value["path"]] = base64.b64decode(value["content"])
                    elif item.get("key") == "deletedFile":
                        repo.files.pop(value["path"], None)
                    elif item.get("key") == "lfsFile":
                        data = hub.lfs_objects.get(value.get("oid"))
                        if data is None or len(data) != value.get("size"):
                            return self._error(422, None, f"LFS object of {value.get('path')} was never uploaded")
                        repo.files[value["path"]] = data
                repo.sha = secrets.token_hex(20)
                sha = repo.sha
            prefix = "" if repo_type == "model" else f"{repo_type}s/"
            self._send(
                200,
                {"commitUrl": f"{hub.url}/{prefix}{repo_id}/commit/{sha}", "commitOid": sha, "pullRequestUrl": None},
            )

        def _resolve(self, rec, repo_type, repo_id, filename):
            repo = self._repo(rec, repo_type, repo_id)
            if not repo:
                return
            data = repo.files.get(filename)
            if data is None:
                return self._error(404, "EntryNotFound", "Entry not found")  # X-Repo-Commit is optional here
            self._send(
                200,
                body=data,
                content_type="application/octet-stream",
                headers={"ETag": f'"{_git_sha1(data)}"', "X-Repo-Commit": repo.sha, "Accept-Ranges": "bytes"},
            )

        # -- jobs ----------------------------------------------------------------------------------

        def _run_job(self, rec, namespace):
            if not self._authorized(rec):
                return self._error(401, None, "Invalid credentials in Authorization header")
            if namespace not in [hub.user, *hub.orgs]:
                return self._error(403, None, f"You cannot run Jobs in namespace {namespace}")
            flavor = (rec["json"] or {}).get("flavor")
            if flavor not in FLAVORS:
                return self._error(400, None, f"Invalid flavor '{flavor}': expected one of {', '.join(FLAVORS)}")
            job = hub.create_job(namespace, rec["json"] or {})
            self._send(200, job.info(hub.url))

        def _list_jobs(self, rec, namespace):
            if not self._authorized(rec):
                return self._error(401, None, "Invalid credentials in Authorization header")
            labels = dict(x.split("=", 1) for x in rec["query"].get("label", []))
            stages = set(rec["query"].get("stage", []))
            with hub.lock:
                jobs = [j for j in hub.jobs.values() if j.namespace == namespace]
            jobs = [j for j in jobs if all(j.labels().get(k) == v for k, v in labels.items())]
            jobs = [j for j in jobs if not stages or j.stage in stages]
            self._send(200, [j.info(hub.url) for j in jobs])

        def _job(self, rec, method, namespace, job_id, rest):
            if not self._authorized(rec):
                return self._error(401, None, "Invalid credentials in Authorization header")
            job = hub.jobs.get(job_id)
            if job is None or job.namespace != namespace:
                return self._error(404, None, "Job not found")
            if rest is None and method == "GET":
                hub.inspect(job)
                return self._send(200, job.info(hub.url))
            if rest == "/cancel" and method == "POST":
                hub.cancel(job)
                return self._send(200, {})
            if rest == "/logs" and method == "GET":
                with hub.lock:
                    logs = list(job.logs)
                tail = rec["query"].get("tail")
                if tail:
                    logs = logs[-int(tail[0]) :]
                if hub.log_window:  # a partial replay: only the latest lines
                    logs = logs[-hub.log_window :]
                body = "".join(f"data: {json.dumps({'data': line, 'timestamp': ts})}\n\n" for ts, line in logs)
                return self._send(200, body=body.encode(), content_type="text/event-stream")
            self._error(404, None, "no such Job route")

    return Handler
