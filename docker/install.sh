#!/bin/sh
# Install the workbench into the virtual environment $VIRTUAL_ENV. The Dockerfile runs this script,
# and so does tests/test_deploy.py in a fresh venv, so a broken install step fails CI, not a build.
#
#   docker/install.sh deps      Python dependencies (needs requirements.txt in the current folder)
#   docker/install.sh project   the workbench itself (the project's source in the current folder)
#
# TORCH picks the torch build, installed first so that nothing else pulls a different one:
#   cpu (default)  the CPU wheel from download.pytorch.org (about 200 MB instead of several GB)
#   cu126, cu128   a CUDA build from download.pytorch.org, for GPU workers
#   pypi           whatever pip's own configuration resolves (PyPI: the CUDA build on Linux x86_64;
#                  a machine's local wheel mirror where pip is configured for one)
set -eu
step="${1:?usage: docker/install.sh deps|project}"
venv="${VIRTUAL_ENV:?set VIRTUAL_ENV to the virtual environment to install into}"
torch="${TORCH:-cpu}"
python="${PYTHON:-python3}"

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip="$venv/bin/python -m pip --disable-pip-version-check --no-input"

case "$step" in
  deps)
    $pip install --upgrade pip "setuptools>=68"
    torch_pin="$(grep -E '^torch==' requirements.txt)"
    case "$torch" in
      cpu|cu[0-9]*) $pip install --index-url "https://download.pytorch.org/whl/$torch" "$torch_pin" ;;
      pypi) $pip install "$torch_pin" ;;
      *) echo "error: TORCH=$torch is not a torch build: use cpu, cu126, cu128 or pypi" >&2; exit 2 ;;
    esac
    $pip install -r requirements.txt
    ;;
  project)
    $pip install --no-deps --no-build-isolation -e .
    $pip check
    "$venv/bin/workbench" --help >/dev/null
    ;;
  *)
    echo "error: unknown step '$step': use deps or project" >&2
    exit 2
    ;;
esac
