"""How a Hugging Face Job gets the workbench when its image does not have it: the project's own wheel.

The worker builds the wheel of the code it runs (once per version of the sources, cached in the
artifacts folder), and puts it with the pinned requirements in the results repo under
`bootstrap/<sources hash>/` (uploaded once). The Job's script then downloads both with its token
and installs them with uv when the image has it (the default image is uv's Python image), else
with pip. So a stock image runs the exact code and pins the worker has, and a team's own image
(`docker build --target jobs`) skips all of it, since `workbench` is already on its PATH.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.paths import PROJECT_ROOT

PACKAGES = ("core", "workers", "app")  # what pyproject's packages.find includes
PROJECT_FILES = ("pyproject.toml", "requirements.txt")
REPO_FOLDER = "bootstrap"


class BootstrapError(RuntimeError):
    """The wheel could not be built; the message says what to do instead."""


@dataclass(frozen=True)
class Bundle:
    """The wheel and requirements a Job installs, by their paths in the results repo."""

    wheel: Path
    requirements: Path
    folder_in_repo: str

    @property
    def wheel_in_repo(self) -> str:
        return f"{self.folder_in_repo}/{self.wheel.name}"

    @property
    def requirements_in_repo(self) -> str:
        return f"{self.folder_in_repo}/requirements.txt"


def _sources(root: Path) -> list[Path]:
    """The files the wheel is built from: the project files and everything in the packages."""
    files = [root / f for f in PROJECT_FILES]
    for package in PACKAGES:
        files += sorted(
            p
            for p in (root / package).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        )
    return files


def sources_hash(root: Path = PROJECT_ROOT) -> str:
    """sha256 over the packaged sources' paths and contents: a new wheel for any code change."""
    h = hashlib.sha256()
    for f in _sources(root):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def build_bundle(cache: Path, root: Path = PROJECT_ROOT) -> Bundle:
    """The wheel of the running code and its pinned requirements, built once per sources hash."""
    missing = [f for f in PROJECT_FILES if not (root / f).is_file()]
    if missing:
        raise BootstrapError(
            f"this worker runs from an installed package without its project files ({', '.join(missing)}), so it "
            "cannot build the wheel a Job installs: give the study an image with the workbench installed "
            "(docker build --target jobs), or set WORKBENCH_PIP_SPEC on the worker"
        )
    digest = sources_hash(root)
    folder = cache / digest
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        _build(root, folder)
        wheels = sorted(folder.glob("*.whl"))
    requirements = folder / "requirements.txt"
    if not requirements.is_file():
        shutil.copyfile(root / "requirements.txt", requirements)
    return Bundle(wheels[0], requirements, f"{REPO_FOLDER}/{digest}")


def _build(root: Path, folder: Path) -> None:
    """`pip wheel` on a copy of the packaged files, so the checkout gets no build/ or egg-info."""
    with tempfile.TemporaryDirectory(prefix="workbench-wheel-") as tmp:
        src = Path(tmp) / "src"
        for f in _sources(root):
            dest = src / f.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest)
        out = Path(tmp) / "dist"
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(src),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not list(out.glob("*.whl")):
            tail = " | ".join(done.stderr.strip().splitlines()[-3:])
            raise BootstrapError(f"building the workbench wheel for the Job failed: {tail}")
        folder.mkdir(parents=True, exist_ok=True)
        for whl in out.glob("*.whl"):  # copied in last, so a half-built folder never looks complete
            shutil.copyfile(whl, folder / whl.name)


# Runs inside the Job (see hf_jobs.remote_command). WORKBENCH_BOOTSTRAP_* name the bundle's files in
# the results repo; the token is the Job's HF_TOKEN secret; nothing of the run is pasted in.
SCRIPT = """\
if ! command -v workbench >/dev/null 2>&1; then
  if [ -n "$WORKBENCH_PIP_SPEC" ]; then
    echo "[workbench] installing WORKBENCH_PIP_SPEC"
    python -m pip install --quiet --no-cache-dir $WORKBENCH_PIP_SPEC || \
{ echo "error: pip install of WORKBENCH_PIP_SPEC failed" >&2; exit 3; }
  elif [ -n "$WORKBENCH_BOOTSTRAP_WHEEL" ]; then
    echo "[workbench] installing the workbench from the results repo ($WORKBENCH_BOOTSTRAP_WHEEL)"
    dir=$(mktemp -d) && python - "$dir" <<'PY' || { echo "error: downloading the workbench wheel failed" >&2; exit 3; }
import os, sys, urllib.request
endpoint = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
repo, folder = os.environ["WORKBENCH_BOOTSTRAP_REPO"], sys.argv[1]
for name in ("WORKBENCH_BOOTSTRAP_WHEEL", "WORKBENCH_BOOTSTRAP_REQUIREMENTS"):
    path = os.environ[name]
    request = urllib.request.Request(f"{endpoint}/datasets/{repo}/resolve/main/{path}")
    request.add_header("Authorization", "Bearer " + os.environ["HF_TOKEN"])
    target = os.path.join(folder, path.rsplit("/", 1)[-1])
    with urllib.request.urlopen(request, timeout=300) as answer, open(target, "wb") as out:
        out.write(answer.read())
PY
    wheel="$dir/${WORKBENCH_BOOTSTRAP_WHEEL##*/}"
    if command -v uv >/dev/null 2>&1; then
      uv pip install --system --quiet -r "$dir/requirements.txt" "$wheel"
    else
      python -m pip install --quiet --no-cache-dir -r "$dir/requirements.txt" "$wheel"
    fi || { echo "error: installing the workbench wheel and its requirements failed" >&2; exit 3; }
  else
    echo "error: this image has no workbench command: give the study an image with the workbench installed, \
or set WORKBENCH_PIP_SPEC on the worker" >&2
    exit 3
  fi
fi
exec workbench remote-run "$@"
"""
