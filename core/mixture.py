"""Mixtures D0 ⊕ Dk with provenance, and benchmark decontamination.

A mixture of size N takes round(N · d0_share) rows of D0 and the rest from the candidate (all of
it from D0 for the baseline arm). Rows are drawn from a seeded permutation of each source and
taken as a prefix, so for one seed the mixture at 1k contains the mixture at 500: curves then
measure added data, not resampling noise. A source too small for its share is cycled through
fresh permutations, and the repetition factor is recorded (repeated data is worth less).

Every row keeps its provenance (source name, row index in the normalized source); the manifest
is written beside the run's results.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from core.normalize import text_keys

BASELINE = "baseline"


@dataclass
class MixturePart:
    source: str
    available: int
    used: int

    @property
    def repetition(self) -> float:
        return round(self.used / self.available, 4) if self.available else 0.0


@dataclass
class Mixture:
    arm: str
    size: int
    seed: int
    d0_share: float
    rows: list[dict]
    sources: list[str]  # provenance, parallel to rows
    indices: list[int]
    parts: list[MixturePart]

    @property
    def candidate_repetition(self) -> float:
        """How many times, on average, each candidate row is used (1.0 = no repetition)."""
        # parts[0] is always D0; compare by position, not name (a candidate may share D0's name).
        cand = self.parts[1:] if self.arm != BASELINE else self.parts
        return max((p.repetition for p in cand), default=0.0)

    def manifest(self) -> dict:
        return {
            "arm": self.arm,
            "size": self.size,
            "seed": self.seed,
            "d0_share": self.d0_share,
            "parts": [dict(asdict(p), repetition=p.repetition) for p in self.parts],
            "rows": [[s, i] for s, i in zip(self.sources, self.indices)],
        }


def _draw(n_available: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n indices into a source of n_available rows: a seeded permutation, cycled when too small."""
    if n <= 0 or n_available <= 0:
        return np.empty(0, dtype=np.int64)
    reps = -(-n // n_available)
    return np.concatenate([rng.permutation(n_available) for _ in range(reps)])[:n]


def split_counts(size: int, d0_share: float, arm: str) -> tuple[int, int]:
    if arm == BASELINE:
        return size, 0
    n_d0 = int(round(size * d0_share))
    return n_d0, size - n_d0


def build_mixture(
    d0: list[dict],
    candidate: list[dict] | None,
    *,
    size: int,
    d0_share: float,
    seed: int,
    arm: str,
    d0_name: str = "d0",
    candidate_index: list[int] | None = None,
) -> Mixture:
    """D0 ⊕ candidate at `size` rows (D0 only for the baseline arm), deterministic in `seed`."""
    if arm != BASELINE and candidate is None:
        raise ValueError(f"arm '{arm}' needs candidate rows")
    if not d0 and (arm == BASELINE or d0_share > 0):
        raise ValueError("D0 is empty: the mixture needs D0 rows")
    if arm != BASELINE and not candidate and d0_share < 1:
        raise ValueError(f"candidate '{arm}' has no rows left (after decontamination?): nothing to mix")
    n_d0, n_c = split_counts(size, d0_share, arm)
    # Separate streams per source, so D0's draw does not depend on the candidate's size.
    d0_idx = _draw(len(d0), n_d0, np.random.default_rng([seed, 0]))
    c_idx = _draw(len(candidate or []), n_c, np.random.default_rng([seed, 1]))
    order = np.random.default_rng([seed, 2]).permutation(n_d0 + n_c)
    src_d0 = np.concatenate([np.zeros(len(d0_idx), dtype=np.int8), np.ones(len(c_idx), dtype=np.int8)])[order]
    idx = np.concatenate([d0_idx, c_idx])[order]
    pools = (d0, candidate or [])
    names = (d0_name, arm)
    src_list, idx_list = src_d0.tolist(), idx.tolist()
    rows = [pools[s][i] for s, i in zip(src_list, idx_list)]
    if candidate_index is not None:  # provenance points at the row in the source before decontamination
        idx_list = [candidate_index[i] if s else i for s, i in zip(src_list, idx_list)]
    parts = [MixturePart(d0_name, len(d0), n_d0)]
    if arm != BASELINE:
        parts.append(MixturePart(arm, len(candidate or []), n_c))
    return Mixture(
        arm=arm,
        size=size,
        seed=seed,
        d0_share=d0_share,
        rows=rows,
        sources=[names[s] for s in src_list],
        indices=idx_list,
        parts=parts,
    )


def decontaminate(rows: list[dict], benchmark: list[dict], task: str) -> tuple[list[dict], list[int], int]:
    """Drop rows whose normalized text equals a benchmark row's.

    Returns the kept rows, their indices in `rows` (for provenance) and the count removed.
    A candidate must not win by leaking the test set.
    """
    keys = set(text_keys(benchmark, task))
    kept_index = [i for i, k in enumerate(text_keys(rows, task)) if k not in keys]
    return [rows[i] for i in kept_index], kept_index, len(rows) - len(kept_index)
