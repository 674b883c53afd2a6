"""Repeated data is worth less: a study's sizes in effective rows, for fitting and predicting.

A mixture of N rows takes round(N · d0_share) rows of D0 and the rest from the candidate (core.mixture);
a source with fewer unique rows than its share is cycled. Muennighoff et al. (2023, data-constrained
scaling) value U unique rows seen 1 + R times as D' = U + U·R*·(1 − exp(−R/R*)): the first pass counts
fully, each further one less, and no amount of repetition is worth more than U·(1 + R*). A curve is
fitted on effective sizes and read at the target's effective size, so a candidate with few unique
rows, not yet repeated at the small sizes, is not credited at the target with rows it does not have.
docs/SCALING.md has the derivation and the choice of R*.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.mixture import BASELINE, split_counts

R_STAR = 15.0  # Muennighoff et al. 2023's fitted half-life of repeated epochs (in passes)
R_STAR_DOUBT = 4.0  # the interval at the target spans R* divided and multiplied by this


def effective_rows(used: Any, unique: float, r_star: float = R_STAR) -> np.ndarray:
    """What `used` draws from `unique` rows are worth in fresh rows (used ≤ unique: all of them)."""
    used = np.asarray(used, dtype=float)
    if unique <= 0:
        return np.zeros_like(used)
    repeats = np.maximum(used / unique - 1.0, 0.0)
    if not np.isfinite(r_star):
        return used.copy()
    return np.where(used <= unique, used, unique + unique * r_star * (1.0 - np.exp(-repeats / r_star)))


def split(sizes: Any, d0_share: float, arm: str) -> tuple[np.ndarray, np.ndarray]:
    """(D0 rows, candidate rows) in mixtures of each size, as the mixture draws them."""
    counts = [split_counts(int(round(n)), d0_share, arm) for n in np.atleast_1d(np.asarray(sizes, dtype=float))]
    return np.array([c[0] for c in counts], dtype=float), np.array([c[1] for c in counts], dtype=float)


@dataclass(frozen=True)
class Sources:
    """The unique rows an arm draws from: D0's, and the candidate's (None for the baseline)."""

    d0: int
    candidate: int | None = None


@dataclass
class Exposure:
    """Per arm, its sources' unique rows: maps a nominal size to effective rows, and says the repetition.

    An arm it does not know keeps its nominal sizes (nothing known, nothing discounted).
    """

    d0_share: float
    sources: dict[str, Sources] = field(default_factory=dict)
    r_star: float = R_STAR

    @property
    def r_star_range(self) -> tuple[float, float]:
        return self.r_star / R_STAR_DOUBT, self.r_star * R_STAR_DOUBT

    def knows(self, arm: str) -> bool:
        return arm in self.sources

    def effective_size(self, arm: str, sizes: Any, r_star: float | None = None) -> np.ndarray:
        n = np.atleast_1d(np.asarray(sizes, dtype=float))
        src = self.sources.get(arm)
        if src is None:
            return n
        r = self.r_star if r_star is None else r_star
        n_d0, n_c = split(n, self.d0_share, arm)
        eff = effective_rows(n_d0, src.d0, r)
        if src.candidate is not None:
            eff = eff + effective_rows(n_c, src.candidate, r)
        return eff

    def repetition(self, arm: str, size: float) -> float | None:
        """Passes over the arm's own rows needed for `size` (the candidate's; D0's for the baseline)."""
        src = self.sources.get(arm)
        if src is None:
            return None
        n_d0, n_c = split_counts(int(round(size)), self.d0_share, arm)
        if arm == BASELINE:
            return n_d0 / src.d0 if src.d0 else None
        return n_c / src.candidate if src.candidate else None

    @classmethod
    def from_results(cls, results: Iterable[Mapping], d0_share: float, r_star: float = R_STAR) -> Exposure:
        """Unique rows per arm from the runs' mixture manifests (parts[0] is D0, parts[1] the candidate)."""
        sources: dict[str, Sources] = {}
        for r in results:
            parts = (r.get("mixture") or {}).get("parts") or []
            if not parts or r["arm"] in sources:
                continue
            d0 = int(parts[0].get("available") or 0)
            cand = int(parts[1].get("available") or 0) if r["arm"] != BASELINE and len(parts) > 1 else None
            if d0 > 0 and (r["arm"] == BASELINE or cand):
                sources[r["arm"]] = Sources(d0, cand)
        return cls(float(d0_share), sources, r_star)
