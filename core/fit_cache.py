"""Content keys for fits and rankings, so a study whose runs are all cached reuses them.

A ranking is a pure function of its input runs (their content keys), the spec, what
decontamination removed and the fitting code; `ranking_key` hashes exactly those. The code's part
is a hash of the fitting and ranking modules' source, so any change to them computes afresh.
A stored ranking is a copy of the study's output folder (metrics.json and the charts) under
rankings/<key>/; reusing it copies the folder into the new study's and points its metrics.json at
the new study (README, "The job system").
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from core.artifacts import ArtifactStore, read_json, write_json
from core.hashing import stable_hash

# The modules whose code turns run results into fits, rankings, decisions and charts.
FITTING_CODE = (
    "scaling",
    "predictors.py",
    "ranking.py",
    "decision.py",
    "snr.py",
    "study.py",
    "charts.py",
    "results.py",
)


@functools.cache
def fitting_code_version() -> str:
    """sha256 over the fitting modules' source files, in a fixed order."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in FITTING_CODE:
        path = root / name
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(root).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def ranking_key(spec_yaml: str, run_keys: list[str], contamination: dict | None, near_duplicates: dict | None) -> str:
    return (
        "rk-"
        + stable_hash(
            {
                "spec": spec_yaml,
                "runs": sorted(run_keys),
                "contamination": contamination or {},
                "near_duplicates": near_duplicates,
                "code": fitting_code_version(),
            }
        )[:20]
    )


def fit_key(arm: str, run_keys: list[str], metric: str, target: int | None) -> str:
    """A candidate's preliminary fit (workers.tasks.fit_task): its runs, the metric and the target."""
    payload = {"arm": arm, "runs": sorted(run_keys), "metric": metric, "target": target}
    return "fk-" + stable_hash(payload | {"code": fitting_code_version()})[:20]


def store_ranking(artifacts: ArtifactStore, key: str, study_dir: Path) -> None:
    """Keep a copy of a study's outputs under rankings/<key>/ (first copy wins; atomic)."""
    target = artifacts.ranking_dir(key)
    if (target / "metrics.json").is_file():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=target.parent))
    try:
        for f in Path(study_dir).iterdir():
            if f.is_file():
                shutil.copy2(f, tmp / f.name)
        os.replace(tmp, target)
    except OSError:
        if not (target / "metrics.json").is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def reuse_ranking(artifacts: ArtifactStore, key: str, study_id: str) -> dict | None:
    """Copy a stored ranking into `study_id`'s folder; its metrics.json (updated), or None if none is stored."""
    source = artifacts.ranking_dir(key)
    summary = read_json(source / "metrics.json")
    if summary is None:
        return None
    out = artifacts.study_dir(study_id)
    out.mkdir(parents=True, exist_ok=True)
    for f in source.iterdir():
        if f.is_file() and f.name != "metrics.json":
            shutil.copy2(f, out / f.name)
    summary["files"] = {
        name: [str(out / Path(p).name) for p in v] if isinstance(v, list) else str(out / Path(v).name)
        for name, v in (summary.get("files") or {}).items()
    }
    summary["reused"] = {"from_study": summary.get("study_id"), "ranking_key": key}
    summary["study_id"] = study_id
    for run in summary.get("runs") or []:
        run["cached"] = True  # every run of a reused ranking came from the cache
    write_json(out / "metrics.json", summary)
    return summary
