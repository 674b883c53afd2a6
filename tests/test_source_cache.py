"""Sources kept in memory by identity (core/source_cache.py): Validate then Run parse a file once."""

from __future__ import annotations

import json
import os

import pytest

from core import source_cache
from core.spec import parse_spec
from core.study import prepare_study


@pytest.fixture(autouse=True)
def empty_cache():
    source_cache.clear()
    yield
    source_cache.clear()


def _write(path, texts):
    path.write_text(
        "".join(json.dumps({"text": t, "label": "a" if i % 2 else "b"}) + "\n" for i, t in enumerate(texts))
    )


def _spec(tmp_path):
    return parse_spec(
        {
            "name": "cache",
            "model": "builtin:tiny-lm",
            "task": "classification",
            "d0": {"path": str(tmp_path / "d0.jsonl")},
            "benchmark": {"path": str(tmp_path / "bench.jsonl")},
            "candidates": [{"path": str(tmp_path / "cand.jsonl")}],
            "sizes": [10, 20],
            "target_size": 100,
            "training": {"method": "full"},
            "near_duplicate_threshold": None,
        }
    )


def test_a_source_is_parsed_once_until_its_bytes_change(tmp_path):
    _write(tmp_path / "d0.jsonl", [f"base row {i:02d}" for i in range(40)])
    _write(tmp_path / "bench.jsonl", [f"bench row {i}" for i in range(20)])
    _write(tmp_path / "cand.jsonl", [f"cand row {i:02d}" for i in range(40)])
    spec = _spec(tmp_path)
    first = prepare_study(spec)
    # Served from the cache: the very row objects of the first load, in a list of its own.
    again = prepare_study(spec)
    assert again.d0.rows[0] is first.d0.rows[0] and again.d0.rows is not first.d0.rows

    # An edit of the same size: other bytes are another identity, so the file is read again.
    # (The modification time moves too: datasets' own cache keys a file by path and mtime.)
    stat = (tmp_path / "d0.jsonl").stat()
    _write(tmp_path / "d0.jsonl", [f"BASE ROW {i:02d}" for i in range(40)])
    os.utime(tmp_path / "d0.jsonl", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert (tmp_path / "d0.jsonl").stat().st_size == stat.st_size
    assert prepare_study(spec).d0.rows[0]["text"] == "BASE ROW 00"


def test_a_caller_changing_its_rows_list_does_not_change_the_cache(tmp_path):
    _write(tmp_path / "d0.jsonl", [f"base row {i}" for i in range(40)])
    _write(tmp_path / "bench.jsonl", [f"bench row {i}" for i in range(20)])
    _write(tmp_path / "cand.jsonl", [f"cand row {i:02d}" for i in range(40)])
    spec = _spec(tmp_path)
    prepare_study(spec).d0.rows.clear()
    assert len(prepare_study(spec).d0.rows) == 40
