"""Loaded-and-normalized sources kept in memory by identity, so Validate then Run parse a file once.

Identity: the concrete source spec (after catalog resolution), the task, the seed, the label set,
and what the data is: for a local file or folder, each file's path and a sha256 of its bytes
(reading a file is far cheaper than parsing and normalizing it; an edit is a new identity, however
quick); for a Hub dataset, its id and revision. A Hub
source with no pinned revision follows a moving branch, so its entry lives HUB_UNPINNED_TTL
seconds only. The cache is per process (the dashboard's), bounded, and thread-safe (Streamlit
serves sessions on threads).
"""

from __future__ import annotations

import copy
import hashlib
import threading
import time
from collections import OrderedDict
from pathlib import Path

from core.hashing import stable_hash

MAX_ENTRIES = 12
MAX_ROWS = 2_000_000  # rows held over all entries; a larger source is not kept
HUB_UNPINNED_TTL = 600.0

_lock = threading.Lock()
_entries: OrderedDict[str, tuple[float, object]] = OrderedDict()  # key -> (expires at, NormalizedData)


def _files_identity(path: Path) -> list | None:
    """(name, sha256) of the file, or of every file under the folder; None if unreadable."""
    try:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        out = []
        for p in files:
            with p.open("rb") as f:
                out.append((str(p), hashlib.file_digest(f, "sha256").hexdigest()))
        return out
    except OSError:
        return None


def identity(spec, task: str, seed: int, labels: list[str] | None, size_hint: int | None) -> tuple[str, float] | None:
    """(cache key, seconds it stays valid), or None when the source cannot be identified."""
    data = spec.model_dump()
    if spec.path:
        files = _files_identity(Path(spec.path).expanduser())
        if files is None:
            return None
        data["files"] = files
        ttl = float("inf")
    else:
        ttl = float("inf") if spec.revision else HUB_UNPINNED_TTL
    return stable_hash([data, task, seed, labels, size_hint]), ttl


def get(key: str):
    """A copy of the cached NormalizedData (its own rows list), or None."""
    with _lock:
        hit = _entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            _entries.pop(key, None)
            return None
        _entries.move_to_end(key)
    return _own_rows(hit[1])


def _own_rows(data):
    """A shallow copy with its own rows list: a caller's list operations cannot reach the cache."""
    data = copy.copy(data)
    data.rows = list(data.rows)
    return data


def put(key: str, ttl: float, data) -> None:
    if len(data.rows) > MAX_ROWS:
        return
    data = _own_rows(data)
    with _lock:
        _entries[key] = (time.monotonic() + ttl, data)
        _entries.move_to_end(key)
        while len(_entries) > MAX_ENTRIES or sum(len(d.rows) for _, d in _entries.values()) > MAX_ROWS:
            _entries.popitem(last=False)


def clear() -> None:
    with _lock:
        _entries.clear()
