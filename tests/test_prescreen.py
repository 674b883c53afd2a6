"""The embedding pre-screen and semantic decontamination: real MiniLM embeddings, real Redis and RQ workers."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from bench import topics
from core import prescreen
from core.embeddings import cached_encode, nearest
from core.study import prepare_study
from tests.conftest import real_redis, redis_test_url
from tests.specs import tiny_spec
from tests.test_queue import Workers
from workers import client
from workers import prescreen as queued_prescreen
from workers.client import SubmitOptions
from workers.store import JobStore

REDIS_URL = redis_test_url(4)


@pytest.fixture
def redis():
    yield from real_redis(REDIS_URL)


@pytest.fixture
def artifacts(tmp_path, monkeypatch):
    from core.artifacts import ArtifactStore

    root = tmp_path / "artifacts"
    monkeypatch.setenv("ARTIFACTS_DIR", str(root))
    return ArtifactStore(root)


BENCH_ROW = {"text": "The central bank raised interest rates by half a point to fight inflation.", "label": "finance"}
# A paraphrase that exact-text decontamination cannot see (cosine 0.93 with MiniLM).
PLANTED = {"text": "To fight inflation, the central bank put interest rates up by half a point.", "label": "finance"}


def _topic_files(tmp_path, candidate_rows: list[dict]) -> dict:
    files = {
        "benchmark": topics.generate("benchmark", 120, seed=0) + [BENCH_ROW],
        "d0": topics.generate("d0", 200, seed=5),
        "cand": candidate_rows,
    }
    for name, rows in files.items():
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {name: str(tmp_path / f"{name}.jsonl") for name in files}


def _topic_spec(paths: dict, **over):
    return tiny_spec(
        d0={"path": paths["d0"], "name": "d0"},
        benchmark={"path": paths["benchmark"], "name": "benchmark"},
        candidates=[{"path": paths["cand"], "name": "cand"}],
        sizes=[20, 40],
        **over,
    )


def test_a_planted_paraphrase_of_a_benchmark_row_is_removed_and_distinct_rows_stay(tmp_path):
    distinct = topics.generate("helpful", 300, seed=9)
    paths = _topic_files(tmp_path, distinct + [PLANTED])

    prepared = prepare_study(_topic_spec(paths))
    kept = {r["text"] for r in prepared.candidates["cand"].rows}
    assert PLANTED["text"] not in kept
    assert prepared.near_duplicates["cand"] >= 1
    assert len(kept) >= 0.97 * len(distinct)  # distinct in-domain rows are not mistaken for paraphrases
    assert prepared.summary()["candidates"]["cand"]["near_duplicates_removed"] == prepared.near_duplicates["cand"]
    assert any("near-duplicates of benchmark rows" in n for n in prepared.notes)

    exact_only = prepare_study(_topic_spec(paths, near_duplicate_threshold=None))
    assert PLANTED["text"] in {r["text"] for r in exact_only.candidates["cand"].rows}
    assert exact_only.near_duplicates is None
    assert exact_only.candidates["cand"].fingerprint != prepared.candidates["cand"].fingerprint


def test_nearest_is_exact_across_blocks():
    rng = np.random.default_rng(0)
    keys = rng.normal(size=(50, 384)).astype(np.float32)
    queries = np.concatenate([keys[[7, 3]] * 2, rng.normal(size=(9, 384)).astype(np.float32)])
    best, where = nearest(queries, keys, block=4)
    sims = queries @ keys.T
    assert where.tolist() == sims.argmax(1).tolist()
    assert np.allclose(best, sims.max(1), atol=1e-5)
    assert where[:2].tolist() == [7, 3]


def test_embeddings_are_cached_by_text(tmp_path):
    texts = ["the striker scored twice", "interest rates rose again"]
    first = cached_encode(texts, folder=tmp_path)
    assert first.shape == (2, 384) and np.allclose(np.linalg.norm(first, axis=1), 1, atol=1e-5)
    assert len(list(tmp_path.glob("*.npy"))) == 1
    assert np.array_equal(cached_encode(texts, folder=tmp_path), first)


def test_the_prescreen_ranks_the_demo_candidates_as_their_construction_says():
    spec = tiny_spec(
        candidates=[
            {"catalog": f"demo/{name}", "name": name, "max_rows": 400}
            for name in ("helpful", "partial", "offdomain", "noisy")
        ]
    )
    result = prescreen.screen(prepare_study(spec), sample=300)
    ranking = result["ranking"]
    assert ranking[0] == "helpful", result
    by = result["candidates"]
    assert by["offdomain"]["centroid_cosine"] < by["helpful"]["centroid_cosine"]
    assert by["partial"]["label_coverage"] == 0.5 and by["helpful"]["label_coverage"] == 1.0
    assert by["noisy"]["knn_accuracy"] < by["helpful"]["knn_accuracy"]  # the flipped labels show in the vote
    assert by["offdomain"]["knn_accuracy"] < result["d0"]["knn_accuracy"]
    table = prescreen.table(result)
    assert table["source"].tolist()[:4] == ranking and table["source"].tolist()[-1] == "D0 (reference)"


def test_agreement_counts_pairs_in_the_same_order():
    same = prescreen.agreement(["a", "b", "c"], ["a", "b", "c"])
    assert same["pairwise"] == 1.0 and same["top1_same"]
    flipped = prescreen.agreement(["b", "a", "c"], ["a", "b", "c"])
    assert flipped["pairs_agreeing"] == 2 and flipped["pairs"] == 3 and not flipped["top1_same"]


def test_the_prescreen_runs_as_a_queued_job_once_per_data_and_submit_records_it(redis, artifacts, tmp_path):
    spec = tiny_spec()
    key = client.preview(spec, sample=0, artifacts=artifacts)["prescreen_key"]
    state = queued_prescreen.start(redis, spec, key, artifacts=artifacts)
    assert state["status"] == "queued"
    assert queued_prescreen.start(redis, spec, key, artifacts=artifacts)["status"] == "queued"  # the same job
    workers = Workers(REDIS_URL, artifacts, tmp_path)
    workers.start("--queues", "default")
    try:
        deadline = time.monotonic() + 300
        while state["status"] in ("queued", "started") and time.monotonic() < deadline:
            time.sleep(0.5)
            state = queued_prescreen.status(redis, key, artifacts=artifacts)
        assert state["status"] == "finished", (state, workers.logs()[-3000:])
        assert state["result"]["ranking"][0] == "helpful"
        assert set(state["result"]["near_duplicates_removed"]) == {"helpful", "offdomain"}

        study_id = client.submit(redis, spec, SubmitOptions(prescreen=True), artifacts=artifacts)
        assert JobStore(redis).study(study_id)["prescreen_key"] == key
        assert queued_prescreen.start(redis, spec, key, artifacts=artifacts)["status"] == "finished"
    finally:
        workers.stop_all()
