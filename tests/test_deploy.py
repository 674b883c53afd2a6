"""Deployment files: the compose file, the Dockerfile's commands and the .env.example.

There is no Docker engine here, so the compose file is checked the way Compose itself checks it
first: against the Compose specification's JSON schema (the copy check-jsonschema ships), raw and
with its variables interpolated. Every command a service or health check runs is parsed by the
workbench CLI's own parser. And the image's install and start steps (the Dockerfile's RUN, CMD and
HEALTHCHECK lines, read from the file) are run in a fresh virtual environment: a broken step fails
here, not in someone's `docker build`.

What this cannot check: the base images and the CUDA build of torch (TORCH=cu128) are not
reachable offline, so the fresh venv takes torch through pip's own configuration (TORCH=pypi).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from tests.conftest import PROJECT_ROOT, real_redis, redis_test_url

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
REDIS_URL = redis_test_url(10)
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def compose_schema() -> dict:
    text = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    return json.loads(text)


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def interpolate(value, env: dict[str, str]):
    """Compose's interpolation of the parsed file's strings: ${VAR}, ${VAR:-default} (defaults may
    nest), ${VAR-default} and $$."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                depth += {"{": 1, "}": -1}.get(value[j], 0)
                j += 1
            body = value[i + 2 : j - 1]
            name = re.match(r"[A-Za-z_][A-Za-z0-9_]*", body).group(0)
            rest = body[len(name) :]
            if rest.startswith(":-"):
                out.append(env.get(name) or interpolate(rest[2:], env))
            elif rest.startswith("-"):
                out.append(env[name] if name in env else interpolate(rest[1:], env))
            else:
                assert not rest, f"unsupported interpolation ${{{body}}}"
                out.append(env.get(name, ""))
            i = j
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def compose(env: dict[str, str] | None = None) -> dict:
    doc = yaml.safe_load(COMPOSE.read_text())
    return interpolate(doc, env) if env is not None else doc


def schema_errors(doc: dict) -> list[str]:
    validator = Draft202012Validator(compose_schema())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, rest) pairs with continuation lines joined and comments dropped."""
    out, buf = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buf += line.rstrip("\\").strip() + " " if line.rstrip().endswith("\\") else line.strip()
        if not line.rstrip().endswith("\\"):
            word, _, rest = buf.partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    return out


def exec_form(rest: str) -> list[str]:
    assert rest.startswith("["), f"use the exec form (a JSON list) so signals reach the process: {rest}"
    return json.loads(rest)


# --- compose ---------------------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_spec():
    assert schema_errors(compose()) == []
    assert schema_errors(compose({})) == []  # every default
    assert schema_errors(compose(env_example())) == []  # the documented .env


def test_the_schema_check_catches_a_broken_compose_file():
    doc = compose({})
    doc["services"]["app"]["ports"] = {"8501": "8501"}  # a map where Compose wants a list
    doc["services"]["worker"]["restrat"] = "always"  # a misspelt key
    errors = schema_errors(doc)
    assert any("services/app/ports" in e for e in errors), errors
    assert any("restrat" in e for e in errors), errors


def test_compose_services_redis_app_workers_and_gpu_profile():
    doc = compose({})
    services = doc["services"]
    assert {"redis", "app", "worker", "worker-gpu"} <= set(services)
    redis = services["redis"]
    assert redis["image"].startswith("redis:7")
    args = redis["command"]
    assert args[args.index("--appendonly") + 1] == "yes", "Redis keeps its queue in an append-only file"
    assert any(v.endswith(":/data") and not v.startswith("/") for v in redis["volumes"]), (
        "the AOF lives on a named volume"
    )
    assert "healthcheck" in redis
    for name in ("app", "worker", "worker-gpu"):
        svc = services[name]
        assert "/data" in [v.split(":")[1] for v in svc["volumes"]], f"{name} shares the data volume"
        assert svc["environment"]["ARTIFACTS_DIR"].startswith("/data/")
        assert svc["environment"]["REDIS_URL"] == "redis://:@redis:6379/0"
        assert "healthcheck" in svc
    assert services["worker-gpu"]["profiles"] == ["gpu"]
    device = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert services["worker"]["command"][-1] == "default", "the CPU worker serves fits, ranking and HF Jobs polling"
    assert services["worker-gpu"]["command"][-1] == "gpu"
    assert {"redis-data", "workbench-data"} <= set(doc["volumes"])
    # a password in .env reaches both Redis and the URL the workbench uses
    with_password = compose({"REDIS_PASSWORD": "s3cret"})["services"]
    assert with_password["redis"]["command"][-1] == "s3cret"
    assert with_password["app"]["environment"]["REDIS_URL"] == "redis://:s3cret@redis:6379/0"


def _workbench_commands(doc: dict) -> list[tuple[str, list[str]]]:
    out = []
    for name, svc in doc["services"].items():
        if svc.get("image", "").startswith("redis"):
            continue
        assert svc["command"][0] == "workbench", f"{name}: the image has no entrypoint; the command names the CLI"
        out.append((f"{name}.command", list(svc["command"][1:])))
        test = svc.get("healthcheck", {}).get("test")
        if test:
            assert test[0] == "CMD" and test[1] == "workbench", f"{name}: health check should run the workbench CLI"
            out.append((f"{name}.healthcheck", test[2:]))
    return out


def test_the_dockerfile_builds_the_app_by_default_and_a_jobs_target_from_it():
    stages = [rest.split() for word, rest in dockerfile_instructions() if word == "FROM"]
    assert stages[0][-2:] == ["AS", "app"]
    assert ["app", "AS", "jobs"] in stages  # docker build --target jobs (docs/OPERATIONS.md)
    assert stages[-1] == ["app"]  # a plain `docker build .` gives the app's image
    assert "--target jobs" in (PROJECT_ROOT / "docs" / "OPERATIONS.md").read_text()


def test_every_service_command_is_one_the_cli_accepts():
    from workers.cli import build_parser

    parser = build_parser()
    commands = _workbench_commands(compose(env_example()))
    instructions = dict(dockerfile_instructions())
    cmd = exec_form(instructions["CMD"])
    assert cmd[0] == "workbench"
    commands.append(("Dockerfile CMD", cmd[1:]))
    health = exec_form(instructions["HEALTHCHECK"].split(" CMD ", 1)[1])
    assert health[0] == "workbench"
    commands.append(("Dockerfile HEALTHCHECK", health[1:]))
    assert "ENTRYPOINT" not in instructions, "HF Jobs and other runtimes give the image their own command"
    assert len(commands) >= 10
    for where, argv in commands:
        args = parser.parse_args(argv)  # SystemExit (a failed test) on anything the CLI refuses
        assert callable(args.func), where


def test_the_cli_check_refuses_what_the_cli_refuses(capsys):
    from workers.cli import build_parser

    for argv in (["worker", "--queue", "gpu"], ["dashbaord"], ["health", "--dashboard"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(argv)


def test_dockerfile_runs_as_a_non_root_user_with_a_torch_build_argument():
    instructions = dockerfile_instructions()
    words = [w for w, _ in instructions]
    users = [rest for w, rest in instructions if w == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image runs as a non-root user"
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN"), "USER comes after the last RUN"
    args = {
        rest.split("=")[0]: rest.split("=", 1)[1] if "=" in rest else None for w, rest in instructions if w == "ARG"
    }
    assert args.get("TORCH") == "cpu"
    runs = [rest for w, rest in instructions if w == "RUN"]
    assert any("docker/install.sh deps" in r and "${TORCH}" in r for r in runs)
    assert "HEALTHCHECK" in words


def test_env_example_documents_every_variable_the_compose_file_reads():
    documented = set(env_example()) | set(re.findall(r"^#\s*([A-Z_]+)=", ENV_EXAMPLE.read_text(), re.M))
    used = set(m.group(1) for m in VAR.finditer(COMPOSE.read_text()))
    assert used - documented == set()
    from workers.cli import AUTH_ENV

    assert set(AUTH_ENV) <= documented
    for name in ("REDIS_URL", "ARTIFACTS_DIR", "HF_TOKEN", "RESULTS_REPO"):
        assert name in documented


def test_auth_variables_become_the_dashboards_sign_in_settings(tmp_path, monkeypatch):
    import tomllib

    from workers.cli import AUTH_ENV, dashboard_command

    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    for var in AUTH_ENV:
        monkeypatch.delenv(var, raising=False)
    assert "--secrets.files" not in dashboard_command(8501)
    values = {var: f'value "{i}" of {var}' for i, var in enumerate(AUTH_ENV)}
    for var, value in values.items():
        monkeypatch.setenv(var, value)
    cmd = dashboard_command(8501)
    files = cmd[cmd.index("--secrets.files") + 1].split(",")
    ours = Path(files[-1])
    assert ours.parent.parent == tmp_path and oct(ours.stat().st_mode & 0o777) == "0o600"
    auth = tomllib.loads(ours.read_text())["auth"]
    assert auth == {key: values[var] for var, key in AUTH_ENV.items()}
    monkeypatch.delenv("AUTH_CLIENT_SECRET")
    with pytest.raises(ValueError, match="AUTH_CLIENT_SECRET"):
        dashboard_command(8501)


# --- the image's install and start steps, in a fresh venv ------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(pred, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def deploy_redis():
    yield from real_redis(REDIS_URL)


def test_image_install_and_start_steps_work_in_a_fresh_venv(tmp_path, deploy_redis):
    """The Dockerfile's RUN steps, then its CMD and HEALTHCHECK and compose's worker, from a new venv."""
    instructions = dockerfile_instructions()
    venv = tmp_path / "venv"
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON", "PIP_"))}
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    # The image's ENV, with its folders moved under this test's tmp_path.
    for word, rest in instructions:
        if word == "ENV":
            for key, value in re.findall(r"(\w+)=(\S+)", rest):
                env[key] = (
                    value.replace("/opt/venv", str(venv)).replace("/data", str(data)).replace("$PATH", env["PATH"])
                )
    env.update(TORCH="pypi", PYTHON=getattr(sys, "_base_executable", sys.executable), REDIS_URL=REDIS_URL)
    env.pop("PIP_NO_CACHE_DIR")  # the image builds without pip's cache; here the cache saves minutes
    runs = [
        rest.replace("${TORCH}", "pypi") for word, rest in instructions if word == "RUN" and "docker/install.sh" in rest
    ]
    assert len(runs) == 2
    for cmd in runs:
        done = subprocess.run(["sh", "-c", cmd], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"`{cmd}` failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    workbench = venv / "bin" / "workbench"
    assert workbench.is_file()
    probe = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import torch, transformers, trl, peft, rq, streamlit; print(torch.__version__)",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert probe.returncode == 0, probe.stderr[-2000:]

    data.mkdir()
    port = _free_port()
    cmd = [*exec_form(dict(instructions)["CMD"]), "--port", str(port)]
    worker_cmd = compose(env_example())["services"]["worker"]["command"]
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = [
        subprocess.Popen(c, env=env, stdout=open(logs / f"{i}.log", "w"), stderr=subprocess.STDOUT, cwd=tmp_path)
        for i, c in enumerate([cmd, worker_cmd])
    ]
    try:
        health = exec_form(dict(instructions)["HEALTHCHECK"].split(" CMD ", 1)[1])

        def run(argv):
            return subprocess.run(
                [str(venv / "bin" / argv[0]), *argv[1:]], env=env, capture_output=True, text=True, timeout=60
            )

        assert run(health).returncode == 0, run(health).stderr
        dashboard_check = ["workbench", "health", "--dashboard", f"http://127.0.0.1:{port}"]
        _wait(lambda: run(dashboard_check).returncode == 0, 120, "the dashboard's health check")
        _wait(lambda: run(["workbench", "health", "--worker"]).returncode == 0, 180, "the worker to register")
        # the worker from the fresh venv does work: a job on its queue comes back
        from rq import Queue

        job = Queue("default", connection=deploy_redis).enqueue("workers.tasks.artifacts_root")
        _wait(lambda: job.get_status(refresh=True) in ("finished", "failed"), 120, "the job")
        assert job.get_status() == "finished", job.latest_result().exc_string if job.latest_result() else "no result"
        assert Path(job.return_value()) == data / "artifacts", "the worker uses the image's ARTIFACTS_DIR"
        # and a health check fails when its service is gone
        procs[0].terminate()
        procs[0].wait(timeout=30)
        assert run(dashboard_check).returncode == 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in sorted(logs.iterdir()):
            print(f"--- {f.name}\n{f.read_text()[-2000:]}")


def test_the_package_declares_every_pinned_requirement_and_admits_its_pin():
    """pyproject's dependencies (what `pip install <wheel>` brings, e.g. in an HF Job) and requirements.txt
    (the tested pins) name the same packages, and each declared range admits the tested pin."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    declared = {
        canonicalize_name(r.name): r.specifier
        for r in map(
            Requirement, tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        )
    }
    pins = {}
    for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            pins[canonicalize_name(req.name)] = next(iter(req.specifier)).version
    assert set(declared) == set(pins), set(declared) ^ set(pins)
    for name, version in pins.items():
        assert declared[name].contains(version), (name, str(declared[name]), version)
