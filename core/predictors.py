"""Which predictor a study ranks by: each one backtested on the study's own sizes, the best one used.

DataDecide (Magnusson et al., 2025) found no scaling-law method that beat the plain ranking at the
largest small size for equal compute, and which one wins depends on the study. So every study
backtests each predictor that its sizes allow: fit without the largest size and predict it (with 4+
sizes, also without the two largest, predicting the largest), and uses the one with the best
pairwise accuracy over the candidates, then the lowest error, then the earliest in PREDICTORS.
Every predictor is a configuration of core.scaling.fit_study; docs/SCALING.md says more.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.scaling import BASELINE, StudyFit, clean_points, fit_study, json_float, to_error, trend_direction
from core.scaling.repetition import Exposure
from core.scaling.study_fit import LEVELS, Calibration, extrapolation_scale


@dataclass(frozen=True)
class Predictor:
    name: str
    description: str
    shared: str = "auto"
    max_form: str = "power_law"
    repetition_aware: bool = True
    min_sizes: int = 2  # distinct sizes every arm needs for this predictor to differ from the plain one

    def fit(
        self,
        points: pd.DataFrame,
        *,
        metric: str,
        higher_is_better: bool,
        target_size: int,
        n_boot: int,
        exposure: Exposure | None,
        calibration: Calibration | None = None,
    ) -> StudyFit:
        return fit_study(
            points,
            metric=metric,
            higher_is_better=higher_is_better,
            target_size=target_size,
            n_boot=n_boot,
            seed=0,
            shared=self.shared,
            exposure=exposure if self.repetition_aware else None,
            max_form=self.max_form,
            calibration=calibration,
        )


# In order of preference when backtests tie (with 3 sizes, every law is a straight line on the two left).
PREDICTORS: dict[str, Predictor] = {
    p.name: p
    for p in (
        Predictor("shared_law", "a power law per arm, the exponent shared by the improving arms, on effective rows"),
        Predictor(
            "per_arm_law", "a power law per arm, each with its own exponent, on effective rows", "none", min_sizes=4
        ),
        Predictor("log_linear", "a straight line in log-log per arm, on effective rows", max_form="log_linear"),
        Predictor(
            "shared_law_nominal",
            "the shared power law on nominal sizes (repeated rows count in full)",
            repetition_aware=False,
        ),
        Predictor("plain", "the value measured at the largest size (no extrapolation)", max_form="none", min_sizes=1),
    )
}
DEFAULT = "shared_law"


@dataclass
class BacktestScore:
    """How a predictor did on the held-out largest size, over every fold it could be backtested on."""

    pairs_right: int = 0
    pairs: int = 0
    errors: dict[str, list[float]] = field(default_factory=dict)  # per arm, |predicted - measured| per fold
    folds: list[str] = field(default_factory=list)  # "100-200 -> 400"
    per_unit: list[tuple[str, float]] = field(default_factory=list)  # (arm, error over its fold's extrapolation_scale)
    gap_per_unit: list[tuple[str, str, float]] = field(default_factory=list)  # the same for candidate pairs' gaps

    @property
    def pairwise(self) -> float | None:
        return self.pairs_right / self.pairs if self.pairs else None

    @property
    def mean_abs_error(self) -> float | None:
        flat = [e for errs in self.errors.values() for e in errs]
        return float(np.mean(flat)) if flat else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pairwise": json_float(self.pairwise),
            "pairs_right": self.pairs_right,
            "pairs": self.pairs,
            "mean_abs_error": json_float(self.mean_abs_error),
            "folds": list(self.folds),
        }

    def calibration(self, points: pd.DataFrame, higher_is_better: bool) -> Calibration | None:
        """Each level's quantile of the backtest errors (per unit of extrapolation), for the arms' intervals.

        Errors are pooled by the arms' direction (improving, worsening, flat) where a direction has
        two or more: an arm that collapses off-domain says little about how far an improving one
        can be off. Otherwise, over all arms."""
        if not self.per_unit:
            return None
        df = clean_points(points)
        largest = {str(a): float(g["size"].max()) for a, g in df.groupby("arm")}
        group_of = {
            str(a): str(
                trend_direction(g["size"].to_numpy(float), to_error(g["value"].to_numpy(float), higher_is_better))
            )
            for a, g in df.groupby("arm")
        }
        arm_errors = [(group_of.get(a, ""), e) for a, e in self.per_unit]
        # Gaps: pairs of arms that do not get worse with size apart from pairs with a worsening arm.
        pair_group = lambda a, b: WORSENING if WORSENING in (group_of.get(a), group_of.get(b)) else STEADY  # noqa: E731
        gap_errors = [(pair_group(a, b), e) for a, b, e in self.gap_per_unit]
        return Calibration(_quantiles(arm_errors), largest, _quantiles(gap_errors, min_group=1), group_of)


WORSENING, STEADY = "worsening", "steady"  # the two groups of candidate pairs for the gap's band


def _quantiles(errors: list[tuple[str, float]], min_group: int = 2) -> dict[str, dict[float, float]]:
    """Each level's quantile of the errors, over all ("") and per group with `min_group` or more."""
    groups = {"": [e for _, e in errors]}
    for g, e in errors:
        if g:
            groups.setdefault(g, []).append(e)
    return {
        g: {lvl: float(np.quantile(es, lvl)) for lvl in LEVELS}
        for g, es in groups.items()
        if es and (not g or len(es) >= min_group)
    }


def _seed_means(df: pd.DataFrame, size: int) -> dict[str, float]:
    at = df[df["size"] == size]
    return {str(a): float(v) for a, v in at.groupby("arm")["value"].mean().items()}


def _folds(sizes: list[int]) -> list[tuple[list[int], int]]:
    """(sizes fitted, size predicted): without the largest; with 4+ sizes, also without the two largest."""
    if len(sizes) < 3:
        return []
    folds = [(sizes[:-1], sizes[-1])]
    if len(sizes) >= 4:
        folds.append((sizes[:-2], sizes[-1]))
    return folds


def backtest(
    predictor: Predictor, points: pd.DataFrame, *, metric: str, higher_is_better: bool, exposure: Exposure | None
) -> BacktestScore | None:
    """Refit on the smaller sizes and score the prediction at the held-out largest one (None: too few sizes)."""
    df = clean_points(points)
    sizes = sorted(set.intersection(*(set(g["size"]) for _, g in df.groupby("arm")))) if len(df) else []
    score = BacktestScore()
    sign = 1.0 if higher_is_better else -1.0
    for kept, held in _folds(sizes):
        fitted = predictor.fit(
            df[df["size"].isin(kept)],
            metric=metric,
            higher_is_better=higher_is_better,
            target_size=held,
            n_boot=0,
            exposure=exposure,
        )
        actual = _seed_means(df, held)
        predicted = _predicted_values(fitted, df[df["size"].isin(kept)])
        arms = [a for a in actual if a in predicted]
        scale = float(extrapolation_scale(held / max(kept)))
        for a in arms:
            score.errors.setdefault(a, []).append(abs(predicted[a] - actual[a]))
            score.per_unit.append((a, abs(predicted[a] - actual[a]) / scale))
        candidates = [a for a in arms if a != BASELINE]
        for a, b in itertools.combinations(candidates, 2):
            gap_error = (predicted[a] - predicted[b]) - (actual[a] - actual[b])
            score.gap_per_unit.append((a, b, abs(gap_error) / scale))
            if actual[a] == actual[b]:
                continue
            score.pairs += 1
            score.pairs_right += (sign * (predicted[a] - predicted[b]) > 0) == (sign * (actual[a] - actual[b]) > 0)
        score.folds.append(f"{'-'.join(f'{s:,}' for s in kept)} -> {held:,}")
    return score if score.folds else None


def _predicted_values(study_fit: StudyFit, points: pd.DataFrame) -> dict[str, float]:
    """Each arm's value at the fit's target: its curve's prediction, or (no curve) its value at its largest size."""
    out = {}
    df = clean_points(points)
    for arm, f in study_fit.fits.items():
        if f.prediction is not None and f.prediction.value is not None and np.isfinite(f.prediction.value):
            out[arm] = float(f.prediction.value)
        else:
            g = df[df["arm"] == arm]
            if len(g):
                out[arm] = float(g[g["size"] == g["size"].max()]["value"].mean())
    return out


@dataclass
class Choice:
    """The predictor a study uses, every candidate predictor's backtest and predictions, and why."""

    used: str
    reason: str
    scores: dict[str, BacktestScore | None]
    predicted: dict[str, dict[str, float]]  # predictor -> arm -> value at the target
    fits: dict[str, StudyFit] = field(default_factory=dict)  # predictor -> its fit on every point (no bootstrap)

    def to_dict(self) -> dict[str, Any]:
        return {
            "used": self.used,
            "reason": self.reason,
            "predictors": {
                name: {
                    "description": PREDICTORS[name].description,
                    "backtest": s.to_dict() if s is not None else None,
                    "predicted": {a: json_float(v) for a, v in self.predicted.get(name, {}).items()},
                }
                for name, s in self.scores.items()
            },
        }


def choose(
    points: pd.DataFrame, *, metric: str, higher_is_better: bool, target_size: int, exposure: Exposure | None
) -> Choice:
    """Backtest every applicable predictor and pick the best (see the module doc)."""
    df = clean_points(points)
    n_sizes = min((g["size"].nunique() for _, g in df.groupby("arm")), default=0)
    applicable = [p for p in PREDICTORS.values() if n_sizes >= p.min_sizes]
    scores = {
        p.name: backtest(p, df, metric=metric, higher_is_better=higher_is_better, exposure=exposure) for p in applicable
    }
    fits = {
        p.name: p.fit(
            df, metric=metric, higher_is_better=higher_is_better, target_size=target_size, n_boot=0, exposure=exposure
        )
        for p in applicable
    }
    predicted = {name: _predicted_values(f, df) for name, f in fits.items()}
    scored = [n for n, s in scores.items() if s is not None and s.pairwise is not None]
    if not scored:
        used = DEFAULT if DEFAULT in scores else next(iter(scores), "plain")
        why = "too few sizes to backtest (3 or more are needed): the default predictor is used"
        return Choice(used, why, scores, predicted, fits)
    order = list(PREDICTORS)
    # With 3 sizes every law is backtested as a straight line through 2 sizes, not in its own form:
    # its error there says little about it, so only the pairwise order then decides against the default.
    own_form = n_sizes >= 4
    used = min(
        scored,
        key=lambda n: (-scores[n].pairwise, (scores[n].mean_abs_error or 0.0) if own_form else 0.0, order.index(n)),
    )
    s = scores[used]
    why = (
        f"best backtest: {s.pairs_right}/{s.pairs} candidate pairs ordered right at the held-out size, "
        f"mean error {s.mean_abs_error:.4f}"
    )
    return Choice(used, why, scores, predicted, fits)
