"""Rank candidates by their predicted metric at the target size, beside the plain ranking.

The extrapolated ranking is what the study is for, but small-scale rankings are noisy and no
scaling-law method beat plain ranking at the largest small size for the same compute (DataDecide,
AI2 2025). So every row carries both: the predicted value with its bootstrap interval and P(best),
and the measured value at the largest size with its plain rank. Candidates whose fitted curves
cross another's between the largest measured size and the target are flagged: that is where the
two rankings disagree for a reason, not by noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from core.scaling import BASELINE, StudyFit, clean_points, json_float

NO_FIT_RANK_NOTE = "ranked at the measured size; no fit"
DEFAULT_SEED_BOOT = 200


@dataclass
class RankingRow:
    """One candidate's line in the ranking; "better" always means in the metric's own direction.

    predicted/low/high are at the target size (or at the measured size when nothing was fitted);
    gain_over_baseline is positive when the candidate beats the baseline, for losses too.
    """

    candidate: str
    predicted: float | None
    low: float | None
    high: float | None
    gain_over_baseline: float | None
    p_best: float | None
    rank: int
    measured_at_largest: float
    largest_size: int
    rank_at_largest_size: int
    beats_baseline_at_largest: bool | None
    form: str
    flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Set for the primary metric's ranking only (core.study.summarize_study).
    low_80: float | None = None
    high_80: float | None = None
    max_repetition: float | None = None
    backtest_abs_error: float | None = None
    repetition_at_target: float | None = None  # passes over the candidate's unique rows at the target size

    def to_dict(self) -> dict[str, Any]:
        d = {
            "candidate": self.candidate,
            "predicted": json_float(self.predicted),
            "low": json_float(self.low),
            "high": json_float(self.high),
            "low_80": json_float(self.low_80),
            "high_80": json_float(self.high_80),
            "gain_over_baseline": json_float(self.gain_over_baseline),
            "p_best": json_float(self.p_best),
            "rank": int(self.rank),
            "measured_at_largest": json_float(self.measured_at_largest),
            "largest_size": int(self.largest_size),
            "rank_at_largest_size": int(self.rank_at_largest_size),
            "beats_baseline_at_largest": None
            if self.beats_baseline_at_largest is None
            else bool(self.beats_baseline_at_largest),
            "form": self.form,
            "flags": list(self.flags),
            "notes": list(self.notes),
        }
        if self.max_repetition is not None:
            d.update(
                max_repetition=self.max_repetition,
                backtest_abs_error=json_float(self.backtest_abs_error),
                repetition_at_target=json_float(self.repetition_at_target),
            )
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RankingRow:
        return cls(**{f.name: d.get(f.name) for f in fields(cls) if f.name in d})


@dataclass
class BaselineRow:
    """The D0-only reference: shown beside the ranking, never ranked in it."""

    arm: str
    predicted: float | None
    low: float | None
    high: float | None
    measured_at_largest: float
    largest_size: int
    form: str
    flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    low_80: float | None = None
    high_80: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "predicted": json_float(self.predicted),
            "low": json_float(self.low),
            "high": json_float(self.high),
            "low_80": json_float(self.low_80),
            "high_80": json_float(self.high_80),
            "measured_at_largest": json_float(self.measured_at_largest),
            "largest_size": int(self.largest_size),
            "form": self.form,
            "flags": list(self.flags),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BaselineRow:
        return cls(**{f.name: d.get(f.name) for f in fields(cls) if f.name in d})


@dataclass
class _Measured:
    largest_size: int
    mean: float
    low: float
    high: float
    seed_values: np.ndarray
    by_size: dict[int, float]


def _measured(df: pd.DataFrame) -> dict[str, _Measured]:
    """Per arm: seed-mean at each size, and the spread across seeds at its largest size."""
    out = {}
    for arm, g in df.groupby("arm", sort=True):
        largest = int(g["size"].max())
        at = g.loc[g["size"] == largest, "value"].to_numpy(dtype=float)
        by_size = {int(s): float(v) for s, v in g.groupby("size")["value"].mean().items()}
        out[str(arm)] = _Measured(largest, float(at.mean()), float(at.min()), float(at.max()), at, by_size)
    return out


def _order(names: list[str], values: dict[str, float], sign: float) -> list[str]:
    """Best first in the metric's direction, ties broken by name for determinism."""
    return sorted(names, key=lambda n: (-sign * values[n], n))


def p_best_from_replicates(reps: np.ndarray, sign: float) -> np.ndarray | None:
    """Fraction of replicates (rows) in which each column is best; ties split evenly.

    Replicates where any candidate failed to refit (NaN) cannot say who is best and are left out.
    """
    if reps.ndim != 2 or reps.shape[1] == 0:
        return None
    ok = np.all(np.isfinite(reps), axis=1)
    reps = sign * reps[ok]
    if len(reps) == 0:
        return None
    best = reps.max(axis=1, keepdims=True)
    winners = np.isclose(reps, best, rtol=0.0, atol=1e-12)
    share = winners / winners.sum(axis=1, keepdims=True)
    return share.mean(axis=0)


def _seed_bootstrap(measured: dict[str, _Measured], names: list[str], n_boot: int, seed: int) -> np.ndarray:
    """Replicates of each candidate's seed mean at its largest size (for P(best) without a fit)."""
    rng = np.random.default_rng(seed)
    cols = []
    for n in names:
        v = measured[n].seed_values
        idx = rng.integers(0, len(v), (n_boot, len(v)))
        cols.append(v[idx].mean(axis=1))
    return np.stack(cols, axis=1)


def _crossings(
    study_fit: StudyFit, names: list[str], measured: dict[str, _Measured], sign: float
) -> dict[str, list[str]]:
    """Pairs whose fitted curves swap order between the largest measured size and the target.

    The order at the measured end is read from the fitted curves at the pair's common largest
    size, so this flags curves that cross, not seed noise (which rank_at_largest_size shows).
    """
    out: dict[str, list[str]] = {n: [] for n in names}
    target = study_fit.target_size
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            n_l = min(measured[a].largest_size, measured[b].largest_size)
            va = study_fit.predict(a, [n_l, target])
            vb = study_fit.predict(b, [n_l, target])
            d_l, d_t = sign * (va[0] - vb[0]), sign * (va[1] - vb[1])
            if abs(d_l) > 1e-9 and abs(d_t) > 1e-9 and d_l * d_t < 0:
                out[a].append(b)
                out[b].append(a)
    return out


def _beats(sign: float, cand: _Measured, base: _Measured | None) -> bool | None:
    if base is None or cand.largest_size not in base.by_size:
        return None
    return bool(sign * (cand.mean - base.by_size[cand.largest_size]) > 0)


def rank_arms(
    study_fit: StudyFit, points: pd.DataFrame, *, higher_is_better: bool, baseline: str = BASELINE
) -> list[RankingRow]:
    """Rank the candidates (baseline excluded) of one fitted study; rows come best first.

    Fitted candidates are ranked by the predicted value at the target size; candidates with no
    fit (one size) follow, ranked by their measured value. When no candidate has a fit, all are
    ranked at the measured size with a seed-level bootstrap for P(best).
    """
    if bool(higher_is_better) != bool(study_fit.higher_is_better):
        raise ValueError(
            f"higher_is_better={higher_is_better} disagrees with the fit of "
            f"'{study_fit.metric}' (higher_is_better={study_fit.higher_is_better})"
        )
    sign = 1.0 if higher_is_better else -1.0
    measured = _measured(clean_points(points))
    candidates = sorted(a for a in measured if a != baseline)
    if not candidates:
        return []
    fitted = [n for n in candidates if _has_fit(study_fit, n)]
    unfitted = [n for n in candidates if not _has_fit(study_fit, n)]
    meas_vals = {n: measured[n].mean for n in candidates}
    plain_order = _order(candidates, meas_vals, sign)
    rank_plain = {n: i + 1 for i, n in enumerate(plain_order)}
    if fitted:
        pred_vals = {n: study_fit.fits[n].prediction.value for n in fitted}
        order = _order(fitted, pred_vals, sign) + _order(unfitted, meas_vals, sign)
        p_best = _p_best_of_fits(study_fit, fitted, sign)
        crossings = _crossings(study_fit, fitted, measured, sign)
    else:
        order = plain_order
        p_best = _p_best_of_seeds(study_fit, measured, candidates, sign)
        crossings = {}
    base_fit = study_fit.fits.get(baseline)
    context = _RankContext(
        study_fit=study_fit,
        sign=sign,
        any_fitted=bool(fitted),
        base_measured=measured.get(baseline),
        base_predicted=base_fit.prediction.value if base_fit is not None and base_fit.prediction else None,
    )
    return [
        _ranking_row(
            context, n, measured[n], rank=rank, rank_plain=rank_plain[n], p_best=p_best.get(n), crossed=crossings.get(n)
        )
        for rank, n in enumerate(order, start=1)
    ]


def _has_fit(study_fit: StudyFit, name: str) -> bool:
    f = study_fit.fits.get(name)
    return f is not None and f.form != "none" and f.prediction is not None


def _p_best_of_fits(study_fit: StudyFit, fitted: list[str], sign: float) -> dict[str, float]:
    """P(best) from the fit's bootstrap replicates at the target size; none unless every fitted arm has them."""
    cols = [n for n in fitted if n in study_fit.boot.columns]
    if len(cols) != len(fitted) or not len(study_fit.boot):
        return {}
    shares = p_best_from_replicates(study_fit.boot[cols].to_numpy(dtype=float), sign)
    return {} if shares is None else {n: float(s) for n, s in zip(cols, shares)}


def _p_best_of_seeds(
    study_fit: StudyFit, measured: dict[str, _Measured], candidates: list[str], sign: float
) -> dict[str, float]:
    """P(best) at the measured size, from a bootstrap over seeds (nothing was fitted)."""
    n_boot = study_fit.n_boot if study_fit.n_boot > 0 else DEFAULT_SEED_BOOT
    shares = p_best_from_replicates(_seed_bootstrap(measured, candidates, n_boot, study_fit.seed), sign)
    return {} if shares is None else {n: float(s) for n, s in zip(candidates, shares)}


@dataclass(frozen=True)
class _RankContext:
    """What every row of one ranking is measured against."""

    study_fit: StudyFit
    sign: float
    any_fitted: bool
    base_measured: _Measured | None
    base_predicted: float | None


def _ranking_row(
    ctx: _RankContext,
    name: str,
    m: _Measured,
    *,
    rank: int,
    rank_plain: int,
    p_best: float | None,
    crossed: list[str] | None,
) -> RankingRow:
    fit = ctx.study_fit.fits.get(name)
    flags = list(fit.flags) if fit else []
    notes = list(fit.notes) if fit else []
    sign, base_meas = ctx.sign, ctx.base_measured
    low_80 = high_80 = None
    if _has_fit(ctx.study_fit, name):
        pr = fit.prediction
        predicted, low, high, low_80, high_80 = pr.value, pr.low, pr.high, pr.low_80, pr.high_80
        gain = sign * (predicted - ctx.base_predicted) if ctx.base_predicted is not None else None
    elif not ctx.any_fitted:
        predicted = m.mean
        low, high = ctx.study_fit.measured_interval(name, m.mean, m.low, m.high, 0.9)
        low_80, high_80 = ctx.study_fit.measured_interval(name, m.mean, m.low, m.high, 0.8)
        base_here = base_meas.by_size.get(m.largest_size) if base_meas else None
        gain = sign * (m.mean - base_here) if base_here is not None else None
        notes.append(NO_FIT_RANK_NOTE)
    else:
        predicted = low = high = gain = None
        notes.append(f"{NO_FIT_RANK_NOTE}; placed after the fitted candidates (measured only at {m.largest_size:,})")
    if crossed:
        flags.append("crosses")
        notes.append(
            "fitted curve crosses " + ", ".join(crossed) + "'s between the largest measured size and the target"
        )
    beats = _beats(sign, m, base_meas)
    if beats is None and base_meas is not None:
        notes.append(f"baseline not measured at {m.largest_size:,}; no plain comparison with it")
    return RankingRow(
        candidate=name,
        predicted=predicted,
        low=low,
        high=high,
        low_80=low_80,
        high_80=high_80,
        gain_over_baseline=gain,
        p_best=p_best,
        rank=rank,
        measured_at_largest=m.mean,
        largest_size=m.largest_size,
        rank_at_largest_size=rank_plain,
        beats_baseline_at_largest=beats,
        form=fit.form if fit else "none",
        flags=flags,
        notes=notes,
    )


def baseline_row(study_fit: StudyFit, points: pd.DataFrame, *, baseline: str = BASELINE) -> BaselineRow | None:
    """The baseline's prediction (or measured value, with no fit) to show beside the ranking."""
    measured = _measured(clean_points(points))
    m = measured.get(baseline)
    if m is None:
        return None
    fit = study_fit.fits.get(baseline)
    if fit is not None and fit.prediction is not None:
        pr = fit.prediction
        return BaselineRow(
            baseline,
            pr.value,
            pr.low,
            pr.high,
            m.mean,
            m.largest_size,
            fit.form,
            list(fit.flags),
            list(fit.notes),
            pr.low_80,
            pr.high_80,
        )
    notes = (list(fit.notes) if fit else []) + [NO_FIT_RANK_NOTE]
    low, high = study_fit.measured_interval(baseline, m.mean, m.low, m.high, 0.9)
    low_80, high_80 = study_fit.measured_interval(baseline, m.mean, m.low, m.high, 0.8)
    return BaselineRow(
        baseline,
        m.mean,
        low,
        high,
        m.mean,
        m.largest_size,
        fit.form if fit else "none",
        list(fit.flags) if fit else [],
        notes,
        low_80,
        high_80,
    )
