"""The embedding pre-screen: a ranking of the candidates in seconds, before any training.

On a seeded sample of each source, embedded with MiniLM (core.embeddings) whatever model the study
trains, each candidate is described against the benchmark by:
- `centroid_cosine`: cosine between the candidate's and the benchmark's mean embeddings;
- `coverage`: mean over benchmark rows of the cosine to their nearest candidate row (does the
  candidate have something like every benchmark row?);
- `mmd`: squared maximum mean discrepancy with the cosine kernel, ||mean_c - mean_b||^2 (0: same means);
- `label_coverage` / `label_balance`: share of the benchmark's labels the candidate has, and
  1 - total variation distance between the two label distributions (tasks with labels);
- `knn_accuracy`: the benchmark rows' labels predicted by a vote of their 5 nearest candidate rows
  (tasks with labels): it sees domain, coverage and label noise at once;
- `near_duplicate_rate`: share of candidate rows within the near-duplicate threshold of a benchmark row;
- `diversity`: 1 - mean pairwise cosine inside the candidate sample.
The score ranks by `knn_accuracy` where labels exist, else by `coverage`. D0 gets the same
description, as the reference the candidates are added to.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pandas as pd

from core import tasks
from core.hashing import stable_hash

VERSION = 1
SAMPLE_ROWS = 1000
K_NEIGHBOURS = 5

COLUMNS = {  # measure -> (column title, help)
    "score": ("Pre-screen score", "What the pre-screen ranks by (kNN label accuracy, or coverage without labels)"),
    "knn_accuracy": ("kNN accuracy", "Benchmark rows labelled by a vote of their 5 nearest candidate rows"),
    "coverage": ("Coverage", "Mean cosine of each benchmark row to its nearest candidate row"),
    "centroid_cosine": ("Centroid cosine", "Cosine between the mean embeddings"),
    "mmd": ("MMD", "Squared distance between the mean embeddings (0: same)"),
    "label_coverage": ("Label coverage", "Share of the benchmark's labels the candidate has"),
    "label_balance": ("Label balance", "1 - total variation distance between the label distributions"),
    "near_duplicate_rate": ("Near-dup rate", "Share of sampled rows within the threshold of a benchmark row"),
    "diversity": ("Diversity", "1 - mean pairwise cosine inside the sample"),
}


def prescreen_key(prepared, sample: int = SAMPLE_ROWS) -> str:
    """Cache key: the sources' data fingerprints (as loaded, before decontamination) and the sample size."""
    payload = {
        "v": VERSION,
        "task": prepared.spec.task,
        "d0": prepared.d0.fingerprint,
        "benchmark": prepared.benchmark.fingerprint,
        "candidates": prepared.source_fingerprints or {n: d.fingerprint for n, d in prepared.candidates.items()},
        "threshold": prepared.spec.near_duplicate_threshold,
        "sample": sample,
    }
    return "ps-" + stable_hash(payload)[:20]


def screen(prepared, *, sample: int = SAMPLE_ROWS, progress=None) -> dict:
    """The pre-screen of a prepared study: per source its measures, and the candidates' ranking."""
    from core.embeddings import cached_encode

    start = time.perf_counter()
    task = tasks.get(prepared.spec.task)
    sources = {"d0": prepared.d0.rows, **{n: d.rows for n, d in prepared.candidates.items()}}
    steps = len(sources) + 1
    bench_rows = _sample(prepared.benchmark.rows, sample)
    bench_labels = _labels(task, bench_rows)
    bench = cached_encode([task.text(r) for r in bench_rows])
    _report(progress, 1, steps)
    threshold = prepared.spec.near_duplicate_threshold
    measures = {}
    for i, (name, rows) in enumerate(sources.items(), start=2):
        picked = _sample(rows, sample)
        vectors = cached_encode([task.text(r) for r in picked])
        measures[name] = describe(vectors, bench, _labels(task, picked), bench_labels, threshold)
        _report(progress, i, steps)
    candidates = {n: m for n, m in measures.items() if n != "d0"}
    ranking = sorted(candidates, key=lambda n: -candidates[n]["score"])
    return {
        "version": VERSION,
        "embedding_model": "sentence-transformers/all-MiniLM-L6-v2",
        "sample": sample,
        "score": "coverage" if bench_labels is None else "knn_accuracy",
        "d0": measures["d0"],
        "candidates": candidates,
        "ranking": ranking,
        "near_duplicates_removed": prepared.near_duplicates,
        "seconds": round(time.perf_counter() - start, 2),
    }


def describe(vectors: np.ndarray, bench: np.ndarray, labels, bench_labels, threshold: float | None) -> dict:
    """The measures of one source's sample against the benchmark's (see the module docstring)."""
    sims = vectors @ bench.T  # [source rows, benchmark rows]
    mean_c, mean_b = vectors.mean(0), bench.mean(0)
    out = {
        "rows_sampled": len(vectors),
        "centroid_cosine": _cos(mean_c, mean_b),
        "coverage": float(sims.max(0).mean()),
        "mmd": float(np.sum((mean_c - mean_b) ** 2)),
        "near_duplicate_rate": float((sims.max(1) >= threshold).mean()) if threshold else None,
        "diversity": _diversity(vectors),
    }
    if labels is not None and bench_labels is not None:
        out |= _label_measures(sims, labels, bench_labels)
    out["score"] = out.get("knn_accuracy", out["coverage"])
    return out


def _label_measures(sims: np.ndarray, labels: list, bench_labels: list) -> dict:
    have, want = Counter(labels), Counter(bench_labels)
    total_have, total_want = sum(have.values()), sum(want.values())
    tvd = 0.5 * sum(abs(have[k] / total_have - want[k] / total_want) for k in set(have) | set(want))
    k = min(K_NEIGHBOURS, sims.shape[0])
    nearest = np.argpartition(-sims, k - 1, axis=0)[:k]  # [k, benchmark rows]
    right = 0
    for j, gold in enumerate(bench_labels):
        votes = Counter(labels[i] for i in nearest[:, j])
        right += votes.most_common(1)[0][0] == gold
    return {
        "label_coverage": len(set(want) & set(have)) / max(len(want), 1),
        "label_balance": 1.0 - tvd,
        "knn_accuracy": right / max(len(bench_labels), 1),
    }


def table(result: dict) -> pd.DataFrame:
    """One row per candidate in pre-screen order, D0 last as the reference; a column per measure present."""
    rows = [
        {"rank": str(i + 1), "source": name, **result["candidates"][name]} for i, name in enumerate(result["ranking"])
    ]
    rows.append({"rank": "—", "source": "D0 (reference)", **result["d0"]})
    frame = pd.DataFrame(rows)
    keep = ["rank", "source"] + [c for c in COLUMNS if c in frame and frame[c].notna().any()]
    frame = frame[keep]
    removed = result.get("near_duplicates_removed")
    if removed is not None:
        frame["near-dups removed"] = [removed.get(s) for s in frame["source"]]
    return frame


def agreement(prescreen_ranking: list[str], trained_ranking: list[str]) -> dict:
    """How often the pre-screen orders a pair of candidates as the trained study does, and whether top-1 matches."""
    common = [n for n in trained_ranking if n in prescreen_ranking]
    pos = {n: i for i, n in enumerate(prescreen_ranking)}
    pairs = [(a, b) for i, a in enumerate(common) for b in common[i + 1 :]]
    same = sum(pos[a] < pos[b] for a, b in pairs)
    return {
        "pairs": len(pairs),
        "pairs_agreeing": same,
        "pairwise": same / len(pairs) if pairs else None,
        "top1_same": bool(common) and prescreen_ranking[0] == common[0],
    }


def _sample(rows: list[dict], n: int) -> list[dict]:
    if len(rows) <= n:
        return rows
    picked = np.random.default_rng(0).choice(len(rows), size=n, replace=False)
    return [rows[i] for i in sorted(picked.tolist())]


def _labels(task, rows: list[dict]):
    return [r["label"] for r in rows] if task.labels(rows) is not None else None


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def _diversity(vectors: np.ndarray) -> float:
    n = len(vectors)
    if n < 2:
        return 0.0
    total = float(np.sum(vectors.sum(0) ** 2))  # sum of all pairwise dot products, diagonal included
    return 1.0 - (total - n) / (n * (n - 1))


def _report(progress, done: int, total: int) -> None:
    if progress:
        progress("embedding", done, total, None)
