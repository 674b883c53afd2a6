"""Where the workbench keeps things on disk.

Everything lives under one home folder (WORKBENCH_HOME, default `var/` in the project) so that an
operator backs up one place; ARTIFACTS_DIR may point elsewhere (a shared volume).
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def workbench_home() -> Path:
    return Path(os.environ.get("WORKBENCH_HOME") or PROJECT_ROOT / "var").resolve()


def artifacts_dir() -> Path:
    return Path(os.environ.get("ARTIFACTS_DIR") or workbench_home() / "artifacts").resolve()


def models_dir() -> Path:
    return workbench_home() / "models"


def demo_data_dir() -> Path:
    return workbench_home() / "demo-data"


def catalog_file() -> Path:
    return Path(os.environ.get("WORKBENCH_CATALOG") or PROJECT_ROOT / "catalog" / "candidates.json").resolve()
