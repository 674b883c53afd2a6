"""Content hashes: the keys that make runs, studies and cached models reproducible."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(obj: Any) -> str:
    """sha256 of `obj` as canonical JSON (sorted keys, no spaces): equal content, equal key."""
    data = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode()).hexdigest()
