"""The artifacts store on disk: the source of truth for finished work.

Layout under the root (ARTIFACTS_DIR):
    runs/<key>/result.json        one finished run, keyed by its content key (shared across studies)
    runs/<key>/manifest.json      the mixture's provenance
    runs/<key>/model|adapter/     the trained weights (when kept)
    studies/<study_id>/spec.yaml  the study as submitted
    studies/<study_id>/metrics.json, scaling.{json,png}, ranking.{json,png}
    prepared/<study_id>/          normalized, decontaminated data, so workers skip re-loading
    rankings/<key>/               a study's outputs by content key (core/fit_cache.py), for resubmits
    fits/<key>.json               a candidate's preliminary fit by content key

Every write is atomic (temp file + os.replace), so a crash never leaves half a file, and a result
written twice with the same content is stored once.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from core.paths import artifacts_dir


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    """Write a file atomically: a temp file beside it, fsynced, then renamed over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any | None:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); remove it to recompute") from None


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class ArtifactStore:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root or artifacts_dir())

    def run_dir(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"bad run key {key!r}")
        return self.root / "runs" / key

    def get_result(self, key: str) -> dict | None:
        return read_json(self.run_dir(key) / "result.json")

    def put_result(self, key: str, result: dict) -> bool:
        """Store a finished run's result once: the first write of a key wins, later ones return False.

        Two workers that ran the same key (a retry racing a presumed-dead worker) store one result:
        the file appears atomically with os.link, which fails if it already exists.
        """
        path = self.run_dir(key) / "result.json"
        if path.is_file():
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".result.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(result, indent=2, default=_json_default) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        finally:
            Path(tmp).unlink(missing_ok=True)

    def put_manifest(self, key: str, manifest: dict) -> None:
        write_json(self.run_dir(key) / "manifest.json", manifest)

    def study_dir(self, study_id: str) -> Path:
        if not study_id or "/" in study_id or study_id.startswith("."):
            raise ValueError(f"bad study id {study_id!r}")
        return self.root / "studies" / study_id

    def prepared_dir(self, study_id: str) -> Path:
        return self.root / "prepared" / study_id

    def ranking_dir(self, key: str) -> Path:
        return self.root / "rankings" / key

    def fit_path(self, key: str) -> Path:
        return self.root / "fits" / f"{key}.json"

    def prescreen_path(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"bad pre-screen key {key!r}")
        return self.root / "prescreens" / f"{key}.json"

    def get_prescreen(self, key: str | None) -> dict | None:
        return read_json(self.prescreen_path(key)) if key else None

    def put_prescreen(self, key: str, result: dict) -> None:
        write_json(self.prescreen_path(key), result)

    def study_ids(self) -> list[str]:
        base = self.root / "studies"
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    def result_keys(self) -> list[str]:
        base = self.root / "runs"
        return sorted(p.name for p in base.iterdir() if (p / "result.json").is_file()) if base.is_dir() else []
