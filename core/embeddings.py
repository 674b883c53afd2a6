"""Sentence embeddings (all-MiniLM-L6-v2, whatever model a study trains) and nearest-neighbour search.

Embeddings are sentence-transformers' mean-pooled, L2-normalized 384-d vectors, so a dot product is
the cosine similarity. They are a pure function of the texts, so they are cached per machine (like
the Hugging Face cache, outside the workbench home: nothing to back up), one .npy per text list,
under a file lock so two processes embedding the same source do it once. Search is exact, in blocks
of plain numpy matrix products: measured fast enough at 100k x 10k (docs/BENCHMARKS.md), so no index library is needed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.hashing import stable_hash

DIM = 384
BLOCK_ROWS = 1024  # query rows per matrix product: 40 MB against 10k keys; faster than larger blocks here
_model = None
_lock = threading.Lock()

# progress(done, total) while embedding
EmbedProgress = Callable[[int, int], None]


def cache_dir() -> Path:
    """WORKBENCH_EMBEDDINGS_DIR, else $XDG_CACHE_HOME/workbench/embeddings (default ~/.cache/...)."""
    explicit = os.environ.get("WORKBENCH_EMBEDDINGS_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "workbench" / "embeddings"


def _encoder():
    """The MiniLM sentence encoder, loaded once per process (about 5 s, mostly importing sentence-transformers)."""
    global _model
    with _lock:
        if _model is None:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            from core.models import minilm_folder

            hf_logging.disable_progress_bar()
            _model = SentenceTransformer(str(minilm_folder()), device=_device())
        return _model


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def encode(texts: list[str], *, batch_size: int = 256, progress: EmbedProgress | None = None) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text (chunks of batch_size report progress)."""
    model = _encoder()
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    chunk = batch_size * 8
    parts = []
    for start in range(0, len(texts), chunk):
        part = model.encode(
            texts[start : start + chunk],
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        parts.append(part.astype(np.float32, copy=False))
        if progress:
            progress(min(start + chunk, len(texts)), len(texts))
    return np.concatenate(parts)


def cached_encode(texts: list[str], *, progress: EmbedProgress | None = None, folder: Path | None = None) -> np.ndarray:
    """`encode`, read from (or written to) the embedding cache keyed by the texts."""
    from filelock import FileLock

    folder = Path(folder or cache_dir())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"minilm-{stable_hash(texts)[:24]}.npy"
    with FileLock(str(path) + ".lock"):
        vectors = _read(path, len(texts))
        if vectors is None:
            vectors = encode(texts, progress=progress)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, vectors)
            os.replace(tmp, path)
        elif progress:
            progress(len(texts), len(texts))
    return vectors


def _read(path: Path, rows: int) -> np.ndarray | None:
    try:
        vectors = np.load(path)
    except (OSError, ValueError):
        return None  # absent, torn or foreign: embed again and replace it
    return vectors if vectors.shape == (rows, DIM) else None


def nearest(queries: np.ndarray, keys: np.ndarray, *, block: int = BLOCK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the highest cosine to any key row and that key's index (exact search)."""
    if len(keys) == 0 or len(queries) == 0:
        return np.full(len(queries), -1.0, dtype=np.float32), np.full(len(queries), -1, dtype=np.int64)
    best = np.empty(len(queries), dtype=np.float32)
    where = np.empty(len(queries), dtype=np.int64)
    keys_t = np.ascontiguousarray(keys.T)
    for start in range(0, len(queries), block):
        sims = queries[start : start + block] @ keys_t
        idx = sims.argmax(axis=1)
        where[start : start + block] = idx
        best[start : start + block] = sims[np.arange(len(idx)), idx]
        del sims  # else the next block's product is allocated while this one is alive: twice the memory
    return best, where


def near_duplicates(candidate: np.ndarray, benchmark: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of candidate rows whose cosine to some benchmark row is at or above `threshold`."""
    best, _ = nearest(candidate, benchmark)
    return np.flatnonzero(best >= threshold)
