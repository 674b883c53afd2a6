"""Content keys of fits and rankings (core/fit_cache.py): what changes them, and a stored ranking's reuse."""

from __future__ import annotations

import json
from pathlib import Path

from core import fit_cache
from core.artifacts import ArtifactStore


def test_the_fitting_code_version_covers_files_that_exist():
    root = Path(fit_cache.__file__).parent
    for name in fit_cache.FITTING_CODE:  # a renamed module would silently drop out of the hash
        assert (root / name).exists(), name
    assert len(fit_cache.fitting_code_version()) == 16


def test_a_ranking_key_changes_with_each_input():
    base = dict(spec_yaml="name: a\n", run_keys=["k1", "k2"], contamination={"c": 1}, near_duplicates=None)
    key = fit_cache.ranking_key(**base)
    assert fit_cache.ranking_key(**{**base, "run_keys": ["k2", "k1"]}) == key  # order does not matter
    for change in (
        {"spec_yaml": "name: b\n"},
        {"run_keys": ["k1", "k3"]},
        {"contamination": {"c": 2}},
        {"near_duplicates": {"c": 0}},
    ):
        assert fit_cache.ranking_key(**{**base, **change}) != key, change
    assert fit_cache.fit_key("a", ["k1"], "macro_f1", 4000) != fit_cache.fit_key("a", ["k1"], "accuracy", 4000)


def test_a_stored_ranking_is_copied_into_the_new_study_and_points_at_it(tmp_path):
    store = ArtifactStore(tmp_path)
    old = store.study_dir("st-old")
    old.mkdir(parents=True)
    (old / "scaling.json").write_text("{}")
    (old / "scaling.png").write_bytes(b"png")
    files = {
        "metrics": str(old / "metrics.json"),
        "scaling_chart": [str(old / "scaling.json"), str(old / "scaling.png")],
    }
    runs = [{"key": "k1", "cached": False}]
    (old / "metrics.json").write_text(json.dumps({"study_id": "st-old", "files": files, "runs": runs}))
    fit_cache.store_ranking(store, "rk-1", old)
    (old / "scaling.png").unlink()  # the stored copy does not depend on the first study's folder

    assert fit_cache.reuse_ranking(store, "rk-missing", "st-new") is None
    summary = fit_cache.reuse_ranking(store, "rk-1", "st-new")
    new = store.study_dir("st-new")
    assert summary["study_id"] == "st-new" and summary["reused"] == {"from_study": "st-old", "ranking_key": "rk-1"}
    assert summary["files"]["scaling_chart"] == [str(new / "scaling.json"), str(new / "scaling.png")]
    assert (new / "scaling.png").read_bytes() == b"png" and summary["runs"] == [{"key": "k1", "cached": True}]
    assert json.loads((new / "metrics.json").read_text()) == summary
