"""Typed study results: what metrics.json holds, read and written in one place.

`StudyResult` is a study's metrics.json: its runs (`RunResult`), each arm's fit (`ArmFit`), the
ranking (`RankingRow`, with the baseline's `BaselineRow`) and the `curves` table (arm, size, value,
low, high: each fitted curve and its 90% bootstrap band on a grid from the smallest size to the
target, as the chart draws it), so that no page refits or parses a chart. A file written before the
curves table existed gets it computed once on reading, from its fitted parameters (without bands:
the bootstrap replicates were never saved). `ranking_summary` is the one table of the ranking that
the worker, reindex, the CLI and the pages show.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.artifacts import read_json, write_json
from core.ranking import BaselineRow, RankingRow
from core.scaling import FORMS, ArmFit, StudyFit, json_float

CURVE_COLUMNS = ["arm", "size", "value", "low", "high"]
CURVE_GRID_POINTS = 60
SUMMARY_COLUMNS = (
    "rank candidate predicted low high gain_over_baseline p_best measured_at_largest largest_size"
    " rank_at_largest_size backtest_error repetition_at_target flags"
).split()
BASELINE_LABEL = "baseline (D0 only)"

__all__ = ["ArmFit", "BaselineRow", "RankingRow", "RunResult", "StudyResult", "curve_records", "curves_table"]


def curves_table(
    study_fit: StudyFit, min_size: float, max_size: float, target_size: int, n: int = CURVE_GRID_POINTS
) -> pd.DataFrame:
    """Each fitted arm's curve with its band, from the smallest measured size to the target (or the largest)."""
    grid = np.unique(np.geomspace(min_size, max(target_size, max_size), n).round().astype(int))
    frames = []
    for arm, fit in study_fit.fits.items():
        if fit.form == "none":
            continue
        value, low, high = study_fit.curve(arm, grid)
        frames.append(pd.DataFrame({"arm": arm, "size": grid, "value": value, "low": low, "high": high}))
    if not frames:
        return _empty_curves()
    return pd.concat(frames, ignore_index=True).astype({"size": float, "value": float, "low": float, "high": float})


def _empty_curves() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c == "arm" else float) for c in CURVE_COLUMNS})


@dataclass
class RunResult:
    """One finished run as the study's metrics.json lists it."""

    candidate: str
    arm: str
    size: int
    seed: int
    key: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    train: dict | None = None
    eval: dict | None = None
    timings: dict | None = None
    mixture: dict | None = None
    d0_share: float | None = None
    cached: bool | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known} | {"candidate": d.get("candidate") or d["arm"]})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class StudyResult:
    """A study's metrics.json: the keys it always had, plus `curves`; `extra` keeps any other key (data, files)."""

    study: str
    study_id: str
    model: str
    task: str
    primary_metric: str
    higher_is_better: bool
    metrics: list[str]
    target_size: int
    sizes: list[int]
    seeds: list[int]
    d0_share: float | None
    runs: list[RunResult]
    failed_runs: list[dict]
    fits: dict[str, ArmFit]
    ranking: list[RankingRow]
    baseline: BaselineRow | None
    ranking_by_metric: dict[str, dict]
    contamination: dict[str, int]
    warnings: list[str]
    generated_at: str
    curves: pd.DataFrame
    signal_to_noise: dict[str, dict] | None = None  # metric -> signal, noise, snr, noise_from, size (core.snr)
    snr_recommendation: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudyResult:
        """Read a metrics.json dict; one written before the curves table gets it from its fitted parameters."""
        names = {f.name for f in fields(cls)}
        plain = {k: d.get(k) for k in names - {"runs", "fits", "ranking", "baseline", "curves", "extra"}}
        result = cls(
            **plain,
            runs=[RunResult.from_dict(r) for r in d.get("runs") or []],
            fits={arm: ArmFit.from_dict(f) for arm, f in (d.get("fits") or {}).items()},
            ranking=[RankingRow.from_dict(r) for r in d.get("ranking") or []],
            baseline=BaselineRow.from_dict(d["baseline"]) if d.get("baseline") else None,
            curves=_empty_curves(),
            extra={k: v for k, v in d.items() if k not in names},
        )
        result.curves = _curves_frame(d["curves"]) if "curves" in d else result._curves_from_fits()
        return result

    def to_dict(self) -> dict[str, Any]:
        plain = {f.name: getattr(self, f.name) for f in fields(self)}
        plain.update(
            runs=[r.to_dict() for r in self.runs],
            fits={arm: f.to_dict() for arm, f in self.fits.items()},
            ranking=[r.to_dict() for r in self.ranking],
            baseline=self.baseline.to_dict() if self.baseline else None,
            curves=curve_records(self.curves),
        )
        return {k: v for k, v in plain.items() if k != "extra"} | self.extra

    @classmethod
    def read(cls, path: str | Path) -> StudyResult | None:
        d = read_json(Path(path))
        return None if d is None else cls.from_dict(d)

    def write(self, path: str | Path) -> None:
        write_json(Path(path), self.to_dict())

    def points(self, metric: str | None = None) -> pd.DataFrame:
        """arm, size, seed, value of every run that has `metric` (the primary one by default)."""
        metric = metric or self.primary_metric
        rows = [
            (r.arm, r.size, r.seed, r.metrics[metric]) for r in self.runs if (r.metrics or {}).get(metric) is not None
        ]
        return pd.DataFrame(rows, columns=["arm", "size", "seed", "value"])

    def ranking_rows(self, metric: str | None = None) -> tuple[list[RankingRow], BaselineRow | None]:
        """The ranking and baseline of `metric`: the primary one, or one of ranking_by_metric."""
        if metric is None or metric == self.primary_metric:
            return self.ranking, self.baseline
        other = self.ranking_by_metric.get(metric) or {}
        base = other.get("baseline")
        rows = [RankingRow.from_dict(r) for r in other.get("ranking") or []]
        return rows, BaselineRow.from_dict(base) if base else None

    def ranking_summary(self, metric: str | None = None, *, with_baseline: bool = False) -> list[dict[str, Any]]:
        """The ranking as shown everywhere (SUMMARY_COLUMNS), best first; the baseline row last when asked."""
        rows, base = self.ranking_rows(metric)
        out = [
            {
                "rank": r.rank,
                "candidate": r.candidate,
                "predicted": r.predicted,
                "low": r.low,
                "high": r.high,
                "gain_over_baseline": r.gain_over_baseline,
                "p_best": r.p_best,
                "measured_at_largest": r.measured_at_largest,
                "largest_size": r.largest_size,
                "rank_at_largest_size": r.rank_at_largest_size,
                "backtest_error": r.backtest_abs_error,
                "repetition_at_target": r.repetition_at_target,
                "flags": list(r.flags),
            }
            for r in rows
        ]
        if with_baseline and base is not None:
            out.append(
                {c: None for c in SUMMARY_COLUMNS}
                | {
                    "candidate": BASELINE_LABEL,
                    "predicted": base.predicted,
                    "low": base.low,
                    "high": base.high,
                    "measured_at_largest": base.measured_at_largest,
                    "largest_size": base.largest_size,
                    "flags": list(base.flags),
                }
            )
        return out

    def _curves_from_fits(self) -> pd.DataFrame:
        """The curves of a file written before the curves table: its fitted curves, no bands."""
        sizes = [r.size for r in self.runs if r.size] or list(self.sizes or [])
        if not sizes or not self.target_size:
            return _empty_curves()
        fits = {a: f for a, f in self.fits.items() if set(FORMS[f.form].param_names) <= set(f.params)}
        fit = StudyFit(
            self.primary_metric, bool(self.higher_is_better), int(self.target_size), "", 0, 0, fits, pd.DataFrame(), {}
        )
        return curves_table(fit, float(min(sizes)), float(max(sizes)), int(self.target_size))


def curve_records(curves: pd.DataFrame) -> list[dict[str, Any]]:
    """The curves table as metrics.json stores it: one record per (arm, size), JSON's null for no band."""
    return [
        {
            "arm": str(arm),
            "size": int(round(size)),
            "value": json_float(value),
            "low": json_float(low),
            "high": json_float(high),
        }
        for arm, size, value, low, high in curves[CURVE_COLUMNS].itertuples(index=False)
    ]


def _curves_frame(records: list[dict]) -> pd.DataFrame:
    if not records:
        return _empty_curves()
    frame = pd.DataFrame.from_records(records, columns=CURVE_COLUMNS)
    return frame.astype({"arm": str}).astype({c: float for c in CURVE_COLUMNS[1:]})
