# syntax=docker/dockerfile:1
# One image for the dashboard and the workers (docker-compose.yml runs both from it).
#
#   docker build -t data-curation-workbench .                                    # CPU torch
#   docker build --build-arg TORCH=cu128 -t data-curation-workbench:cuda .       # CUDA 12.8 torch
#   docker build --target jobs --build-arg TORCH=cu128 -t ORG/workbench-jobs .  # for HF Jobs (docs/OPERATIONS.md)
#
# The install steps live in docker/install.sh, which tests/test_deploy.py runs in a fresh venv.
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim-bookworm AS app

# cpu, cu126, cu128 (download.pytorch.org) or pypi
ARG TORCH=cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    WORKBENCH_HOME=/data \
    ARTIFACTS_DIR=/data/artifacts \
    HF_HOME=/data/hf-cache \
    WORKBENCH_EMBEDDINGS_DIR=/data/embeddings \
    TOKENIZERS_PARALLELISM=false \
    WORKBENCH_PUBLIC_HOST=localhost

# A non-root user owns the data folder; the named volume mounted there inherits that ownership.
RUN groupadd --gid 1000 workbench \
 && useradd --uid 1000 --gid workbench --create-home --shell /usr/sbin/nologin workbench \
 && mkdir -p /data \
 && chown workbench:workbench /data

WORKDIR /app
# Dependencies first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt ./
COPY docker/install.sh docker/
RUN TORCH=${TORCH} docker/install.sh deps
COPY . .
RUN TORCH=${TORCH} docker/install.sh project

USER workbench
EXPOSE 8501
VOLUME ["/data"]
# Redis reachable and the artifacts folder writable; compose adds the dashboard and worker checks.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["workbench", "health"]
# No ENTRYPOINT: other runtimes (Hugging Face Jobs, Kubernetes) give their own command, e.g. the
# `sh -c ... workbench remote-run` of an HF Job run.
CMD ["workbench", "dashboard", "--address", "0.0.0.0"]

# The image a team pushes for Hugging Face Jobs: the same install, with the workbench on PATH, so a
# Job skips the wheel bootstrap (workers/backends/job_bootstrap.py). The Job gives its own command
# (`sh -c ... workbench remote-run`) and runs as the image's user, whose home holds the caches.
FROM app AS jobs
ENV HF_HUB_DISABLE_PROGRESS_BARS=1 \
    HF_HOME=/home/workbench/.cache/huggingface \
    WORKBENCH_HOME=/home/workbench/.workbench

# The default target: the dashboard and workers' image.
FROM app
