"""A study's fits: which arms share an exponent, the bootstrap, the backtest, and the flags.

Each arm (a candidate, or "baseline") is fitted on an error-like quantity with the form its
number of sizes supports (core.scaling.law), by the one robust fit (core.scaling.optimize).
docs/SCALING.md says why each choice was made.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.scaling.law import (
    ALPHA_BOUNDS,
    FORMS,
    LOG_LINEAR,
    MIN_ERROR,
    POWER_LAW,
    START_ALPHAS,
    AnchoredPoints,
    GroupPoints,
    from_error,
    to_error,
)
from core.scaling.optimize import robust_fit, single_threaded_blas
from core.scaling.repetition import Exposure

BASELINE = "baseline"
# alpha this close to a bound counts as on it.
BOUND_TOLERANCE = 1e-4
# Fewer distinct sizes than this per arm => share alpha across the arms of a study ("auto").
SHARED_BELOW_SIZES = 4
EXTRAPOLATION_FACTOR = 10.0
# A fitted curve whose error falls by less than this fraction over the measured sizes is flat;
# a trend (change of log e over the measured sizes) smaller than this is no direction at all.
FLAT_RELATIVE_IMPROVEMENT = 1e-3
LEVELS = (0.9, 0.8)  # the intervals a prediction carries: low/high at 90%, low_80/high_80 at 80%
MAX_REDRAWS = 20

NO_FIT_NOTE = "one size: no curve to fit; the plain ranking at that size is reported"
PLAIN_NOTE = "plain predictor: the value measured at the largest size, no curve"
DEGENERATE_BOUND_NOTE = (
    "degenerate fit: exponent at its bound (alpha={alpha:.3g}): the points do not "
    "pin the curve's shape; the prediction rests on the bound"
)
DEGENERATE_GRID_NOTE = "degenerate fit: the optimizer did not converge; grid-search fallback used"

Form = Literal["power_law", "log_linear", "none"]
Direction = Literal["improving", "worsening", "flat"]
SIGN = {"improving": 1.0, "flat": 1.0, "worsening": -1.0}

# --------------------------------------------------------------------------------------------
# Result records
# --------------------------------------------------------------------------------------------


def json_float(x: Any) -> float | None:
    """Python float for JSON, with NaN/inf as None (JSON has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass
class Prediction:
    """The metric predicted at the target size, with its 90% and 80% intervals (None if no bootstrap)."""

    target_size: int
    value: float
    low: float | None
    high: float | None
    low_80: float | None = None
    high_80: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_size": int(self.target_size),
            "value": json_float(self.value),
            "low": json_float(self.low),
            "high": json_float(self.high),
            "low_80": json_float(self.low_80),
            "high_80": json_float(self.high_80),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Prediction:
        return cls(int(d["target_size"]), d["value"], d.get("low"), d.get("high"), d.get("low_80"), d.get("high_80"))


EXTRAPOLATION_GROWTH = 0.75  # an extrapolation's error grows as log(N / largest measured) to this power


def extrapolation_scale(ratio: Any) -> np.ndarray:
    """How an error grows with the extrapolation ratio N / largest measured size (0 inside the measured range).

    Between a random walk in log size (each doubling adding an independent error: power 0.5) and a
    systematic slope error (power 1); 0.75 was chosen on the decision benchmark (docs/SCALING.md)."""
    return np.log(np.maximum(np.asarray(ratio, dtype=float), 1.0)) ** EXTRAPOLATION_GROWTH


@dataclass
class Calibration:
    """How far off the study's own backtests were, per unit of extrapolation (conformal style).

    `per_unit` maps a group of arms ("" for all; else a direction: improving, worsening, flat) to
    each interval level's backtest error (metric units) per unit of `extrapolation_scale`: the error
    that level's share of the group's backtest errors stays within. Beyond an arm's largest measured
    size, its band is at least its group's value times the scale of the extrapolation.
    """

    per_unit: dict[str, dict[float, float]]
    largest: dict[str, float]  # per arm, its largest measured (nominal) size
    gap_per_unit: dict[str, dict[float, float]] = field(default_factory=dict)  # the same for two arms' difference
    group_of: dict[str, str] = field(default_factory=dict)  # arm -> its group

    def quantile(self, table: dict[str, dict[float, float]], group: str | None, level: float) -> float | None:
        return (table.get(group or "") or table.get("") or {}).get(level)

    def half_width(self, arm: str, sizes: np.ndarray, level: float) -> np.ndarray:
        q, largest = self.quantile(self.per_unit, self.group_of.get(arm), level), self.largest.get(arm)
        if q is None or largest is None:
            return np.zeros_like(sizes, dtype=float)
        return q * extrapolation_scale(sizes / largest)

    def gap_width(self, a: str, b: str, target: float, level: float) -> float:
        """The least half-width of the band of a's value minus b's at `target` (pairs grouped as in predictors)."""
        group = "worsening" if "worsening" in (self.group_of.get(a), self.group_of.get(b)) else "steady"
        q = self.quantile(self.gap_per_unit, group, level)
        largest = max(self.largest.get(a, 0), self.largest.get(b, 0), 1)
        return 0.0 if q is None else float(q * extrapolation_scale(target / largest))

    def to_dict(self) -> dict[str, Any]:
        table = lambda t: {g or "all": {f"{lvl:g}": json_float(q) for lvl, q in qs.items()} for g, qs in t.items()}  # noqa: E731
        return {"per_unit": table(self.per_unit), "gap_per_unit": table(self.gap_per_unit)}


@dataclass
class Backtest:
    """What the fit without the largest size predicted there, against what was measured (seed mean)."""

    held_out_size: int
    predicted: float
    actual: float
    abs_error: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "held_out_size": int(self.held_out_size),
            "predicted": json_float(self.predicted),
            "actual": json_float(self.actual),
            "abs_error": json_float(self.abs_error),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Backtest:
        return cls(int(d["held_out_size"]), d["predicted"], d["actual"], d["abs_error"])


@dataclass
class ArmFit:
    """One arm's fitted curve.

    `params` holds E, B, alpha, s for "power_law" (e = E + s B N^-alpha, s = +1 or -1), a, c for
    "log_linear" (log e = a + c log N), nothing for "none". `direction` is the way the arm's error
    moves with size ("improving", "worsening", "flat"; None with one size). `shared` names the
    parameters tied across arms. `flags` are machine codes ("extrapolation", "no_improvement",
    "degenerate"); `notes` are the human sentences that go with them, plus anything else worth
    saying about the fit.
    """

    arm: str
    form: Form
    params: dict[str, float]
    shared: list[str]
    prediction: Prediction | None
    backtest: Backtest | None
    flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    converged: bool = False
    direction: Direction | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "form": self.form,
            "direction": self.direction,
            "params": {k: json_float(v) for k, v in self.params.items()},
            "shared": list(self.shared),
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "backtest": self.backtest.to_dict() if self.backtest else None,
            "flags": list(self.flags),
            "notes": list(self.notes),
            "converged": bool(self.converged),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArmFit:
        """An arm's fit as metrics.json holds it (parameters JSON wrote as null are left out)."""
        return cls(
            d["arm"],
            d["form"],
            {k: float(v) for k, v in (d.get("params") or {}).items() if v is not None},
            list(d.get("shared") or []),
            Prediction.from_dict(d["prediction"]) if d.get("prediction") else None,
            Backtest.from_dict(d["backtest"]) if d.get("backtest") else None,
            list(d.get("flags") or []),
            list(d.get("notes") or []),
            bool(d.get("converged")),
            d.get("direction"),
        )


@dataclass
class PowerLawFit:
    """A fitted e(N) = E + B * N^(-alpha); `method` is "lbfgsb" or "grid" (the fallback)."""

    E: float
    B: float
    alpha: float
    converged: bool
    method: str
    loss: float

    def predict(self, sizes: Any) -> np.ndarray:
        return POWER_LAW.error({"E": self.E, "B": self.B, "alpha": self.alpha}, sizes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (json_float(v) if isinstance(v, float) else v) for k, v in d.items()}


# --------------------------------------------------------------------------------------------
# The two ways a power law is fitted: improving arms sharing alpha, and one arm on its own
# --------------------------------------------------------------------------------------------


@dataclass
class _GroupFit:
    """Fitted [alpha, E_k, B_k] of a group; `converged` False means the grid fallback was used."""

    alpha: float
    E: np.ndarray
    B: np.ndarray
    converged: bool
    method: str
    loss: float

    def warm_start(self, d: GroupPoints) -> np.ndarray:
        """This fit's coordinates for another group's points (centred on their log_n0)."""
        return POWER_LAW.shared_theta(self.alpha, self.E, self.B, d.log_n0)

    def params(self, i: int) -> dict[str, float]:
        return {"E": float(self.E[i]), "B": float(self.B[i]), "alpha": float(self.alpha), "s": 1.0}


def _fit_group(d: GroupPoints, *start_sets: list[np.ndarray]) -> _GroupFit:
    """Best fit from the first set of starts that converges, else the grid fallback."""
    sol = robust_fit(
        lambda t: POWER_LAW.shared_residuals(t, d),
        start_sets,
        POWER_LAW.shared_bounds(d),
        lambda: POWER_LAW.shared_grid(d),
    )
    alpha, E, B = POWER_LAW.shared_params(sol.theta, d)
    return _GroupFit(alpha, E, B, sol.converged, "lbfgsb" if sol.converged else "grid", sol.loss)


@dataclass
class _SoloFit:
    """e = E + s B N^-alpha for one arm; theta = [alpha, e_, u] are the optimizer's coordinates."""

    alpha: float
    E: float
    B: float
    s: float
    converged: bool
    method: str
    loss: float
    theta: np.ndarray

    def params(self) -> dict[str, float]:
        return {"E": self.E, "B": self.B, "alpha": self.alpha, "s": self.s}


def _fit_solo(
    sizes: np.ndarray,
    errors: np.ndarray,
    s: float,
    log_nmin: float,
    alpha: float | None,
    warm: np.ndarray | None = None,
    full_starts: bool = True,
    max_error: float = math.inf,
) -> _SoloFit:
    """ArmFit one arm's curve in direction s; alpha fixed when given (borrowed), else free in bounds.

    Anchored at N_min, the study's smallest size, so a worsening curve stays positive over every
    size the study reads. `max_error` caps E, the ceiling a worsening curve rises toward (1 for 1 - score).
    """
    d = AnchoredPoints.of(sizes, errors, s, log_nmin)
    e_max = min(float(d.logy.max()) + 5.0, math.log(max_error))
    grid = POWER_LAW.anchored_starts(d, alpha)
    if warm is None:
        start_sets = [grid]
    else:
        # The warm start alone on a bootstrap replicate; the grid only if it fails there.
        start_sets = [[warm], grid] if not full_starts else [[warm] + grid]
    sol = robust_fit(
        lambda t: POWER_LAW.anchored_residuals(t, d),
        start_sets,
        POWER_LAW.anchored_bounds(d, alpha, e_max),
        lambda: POWER_LAW.anchored_grid(d, alpha, e_max),
    )
    p = POWER_LAW.anchored_params(sol.theta, s, log_nmin)
    return _SoloFit(
        p["alpha"], p["E"], p["B"], s, sol.converged, "lbfgsb" if sol.converged else "grid", sol.loss, sol.theta
    )


def fit_power_law(sizes: Any, errors: Any, *, starts: list[tuple[float, float, float]] | None = None) -> PowerLawFit:
    """ArmFit one curve e(N) = E + B N^-alpha to (size, error) points (Chinchilla approach 3).

    `errors` are error-like (loss, or 1 - score), all > 0. `starts` optionally replaces the
    starting grid with (E, B, alpha) triples. Returns the best converged L-BFGS-B solution, or
    the grid-search fallback (converged=False, method="grid") when no start converges.
    """
    sizes = np.asarray(sizes, dtype=float)
    errors = np.asarray(errors, dtype=float)
    keep = np.isfinite(sizes) & np.isfinite(errors) & (sizes > 0)
    sizes, errors = sizes[keep], errors[keep]
    if len(np.unique(sizes)) < 2:
        raise ValueError("fit_power_law needs points at two or more distinct sizes")
    d = GroupPoints.of([sizes], [errors])
    if starts is None:
        theta0 = POWER_LAW.shared_starts(d)
    else:
        theta0 = [POWER_LAW.shared_theta(a, np.array([E]), np.array([B]), d.log_n0) for E, B, a in starts]
    with single_threaded_blas():
        g = _fit_group(d, theta0)
    return PowerLawFit(float(g.E[0]), float(g.B[0]), g.alpha, g.converged, g.method, g.loss)


def trend_direction(sizes: Any, errors: Any) -> Direction:
    """Which way an arm's error moves with N: the sign of a Theil-Sen slope of log e on log N.

    Seeds are averaged per size first, then the slope is the median over all pairs of sizes, so
    with three sizes one odd point cannot set the direction alone (0.61, 0.55, 0.73 rises: two of
    its three pairwise slopes are positive). A trend that changes log e by less than
    FLAT_RELATIVE_IMPROVEMENT over the measured sizes is "flat"; so is an arm with one size.
    """
    sizes = np.asarray(sizes, dtype=float)
    errors = np.clip(np.asarray(errors, dtype=float), MIN_ERROR, None)
    distinct = np.unique(sizes)
    if len(distinct) < 2:
        return "flat"
    loge = np.log([np.mean(errors[sizes == n]) for n in distinct])
    logn = np.log(distinct)
    i, j = np.triu_indices(len(distinct), 1)
    slope = float(np.median((loge[j] - loge[i]) / (logn[j] - logn[i])))
    if abs(slope) * (logn[-1] - logn[0]) < FLAT_RELATIVE_IMPROVEMENT:
        return "flat"
    return "improving" if slope < 0 else "worsening"


# --------------------------------------------------------------------------------------------
# A study: forms, sharing, bootstrap, backtest, flags
# --------------------------------------------------------------------------------------------


@dataclass
class StudyFit:
    """All arms' fits for one metric, plus the bootstrap that gives their intervals.

    `boot` holds, per replicate (row) and fitted arm (column), the predicted metric at the target
    size; ranking reads P(best) from it. `boot_params` keeps each replicate's curve parameters
    (columns as in its form's `param_names`; a power law's direction s is the arm's, in its `params`) so that
    bands can be drawn at any size. With `exposure`, curves are fitted on effective sizes (repeated
    rows count less, core.scaling.repetition); every size given here is nominal and mapped.
    """

    metric: str
    higher_is_better: bool
    target_size: int
    shared_mode: str
    n_boot: int
    seed: int
    fits: dict[str, ArmFit]
    boot: pd.DataFrame
    boot_params: dict[str, np.ndarray]
    exposure: Exposure | None = None
    calibration: Calibration | None = None

    def effective(self, arm: str, sizes: Any, r_star: float | None = None) -> np.ndarray:
        """The sizes the arm's curve is read at: effective rows with an exposure, else the sizes."""
        n = np.atleast_1d(np.asarray(sizes, dtype=float))
        return n if self.exposure is None else self.exposure.effective_size(arm, n, r_star)

    def predict(self, arm: str, sizes: Any) -> np.ndarray:
        """The fitted curve of `arm` in metric units (NaN for an arm with no fit)."""
        f = self.fits[arm]
        errors = FORMS[f.form].error(f.params, self.effective(arm, sizes))
        return errors if f.form == "none" else from_error(errors, self.higher_is_better)

    def curve(self, arm: str, sizes: Any, level: float = 0.9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(value, low, high) at each size, for drawing a curve with its band at `level` (90% by default).

        The band is the bootstrap's, widened beyond the largest measured size to what the study's
        backtests missed by (`calibration`). An arm with no fit gives NaN arrays (nothing to draw);
        without replicates low/high are NaN. Where the arm's rows must be repeated, the band also
        spans the curve read with R* a quarter and four times the one used: how much a repeated
        row is worth is itself uncertain.
        """
        n = np.atleast_1d(np.asarray(sizes, dtype=float))
        value = self.predict(arm, n)
        reps = self.boot_params.get(arm)
        f = self.fits[arm]
        if reps is None or len(reps) == 0 or f.form == "none":
            nan = np.full(n.shape, np.nan)
            return value, nan, nan.copy()
        names = FORMS[f.form].param_names
        x = self.effective(arm, n)
        vals = np.stack([FORMS[f.form].error({**f.params, **dict(zip(names, row))}, x) for row in reps])
        vals = from_error(vals, self.higher_is_better)
        low, high = _percentiles(vals, level)
        if self.calibration is not None:
            w = self.calibration.half_width(arm, n, level)
            low, high = self.clip(np.fmin(low, value - w)), self.clip(np.fmax(high, value + w))
        if self.exposure is not None and self.exposure.knows(arm):
            other = [
                from_error(FORMS[f.form].error(f.params, self.effective(arm, n, r)), self.higher_is_better)
                for r in self.exposure.r_star_range
            ]
            low = np.fmin(low, np.fmin(*other))
            high = np.fmax(high, np.fmax(*other))
        return value, low, high

    def gap(self, a: str, b: str, level: float = 0.9) -> tuple[float, float, float] | None:
        """(value, low, high) of a's prediction minus b's at the target, from the paired replicates.

        Errors common to both arms (a curve form that overshoots them alike) cancel in the
        difference, so its band comes from the backtests' errors on differences, not on values.
        None when either arm has no bootstrap replicates.
        """
        if a not in self.boot.columns or b not in self.boot.columns or not len(self.boot):
            return None
        diff = (self.boot[a] - self.boot[b]).to_numpy(dtype=float)
        value = self.fits[a].prediction.value - self.fits[b].prediction.value
        lows, highs = _percentiles(diff[:, None], level)
        low, high = float(lows[0]), float(highs[0])
        if self.calibration is not None:
            w = self.calibration.gap_width(a, b, self.target_size, level)
            low, high = min(low, value - w), max(high, value + w)
        return value, low, high

    def measured_interval(self, arm: str, value: float, low: float, high: float, level: float) -> tuple[float, float]:
        """An unfitted arm's interval at the target: its seeds' spread at its largest size, widened by calibration."""
        if self.calibration is None:
            return low, high
        w = float(self.calibration.half_width(arm, np.array([float(self.target_size)]), level)[0])
        lo, hi = self.clip(np.array([min(low, value - w), max(high, value + w)]))
        return float(lo), float(hi)

    def clip(self, values: np.ndarray) -> np.ndarray:
        """Metrics are never negative, and a score never passes 1."""
        return np.clip(values, 0.0, 1.0 if self.higher_is_better else np.inf)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "higher_is_better": bool(self.higher_is_better),
            "target_size": int(self.target_size),
            "shared_mode": self.shared_mode,
            "n_boot": int(self.n_boot),
            "seed": int(self.seed),
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "fits": {arm: f.to_dict() for arm, f in self.fits.items()},
        }


def _percentiles(vals: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The central `level` interval over replicates (axis 0), ignoring failed (NaN) replicates."""
    tail = 50.0 * (1.0 - level)
    with np.errstate(all="ignore"), _quiet_nan_warnings():
        low = np.nanpercentile(vals, tail, axis=0)
        high = np.nanpercentile(vals, 100.0 - tail, axis=0)
    return low, high


@contextlib.contextmanager
def _quiet_nan_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def clean_points(points: pd.DataFrame) -> pd.DataFrame:
    """Rows with a finite value and a positive size; failed runs are simply absent rows."""
    missing = {"arm", "size", "seed", "value"} - set(points.columns)
    if missing:
        raise ValueError(f"points need columns arm, size, seed, value; missing {sorted(missing)}")
    df = points[["arm", "size", "seed", "value"]].copy()
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df["size"] = pd.to_numeric(df["size"], errors="coerce")
    df = df[np.isfinite(df["value"].to_numpy(dtype=float)) & np.isfinite(df["size"].to_numpy(dtype=float))]
    df = df[df["size"] > 0]
    df = df.astype({"arm": str, "size": int})
    return df.sort_values(["arm", "size", "seed"], kind="stable").reset_index(drop=True)


@dataclass
class _Arm:
    name: str
    sizes: np.ndarray  # per point, the size the curve is fitted at (effective rows with an exposure)
    errors: np.ndarray  # per point
    values: np.ndarray  # per point, metric units
    form: str
    direction: Direction
    nominal: np.ndarray  # per point, the mixture's size
    seeds: np.ndarray  # per point

    @property
    def layout(self) -> tuple:
        """The (size, seed) points the arm was measured at: arms with the same layout are resampled together."""
        return tuple(zip(self.nominal.tolist(), self.seeds.tolist()))

    @property
    def distinct(self) -> np.ndarray:
        return np.unique(self.sizes)

    def nominal_of(self, size: float) -> int:
        return int(self.nominal[self.sizes == size][0])


def _form_for(n_distinct: int, max_form: str = "power_law") -> str:
    """The richest form, `max_form` at most, that the arm's number of distinct sizes supports.

    FORMS runs from richest to none."""
    names = list(FORMS)
    allowed = [FORMS[n] for n in names[names.index(max_form) :]]
    return next(f.name for f in allowed if n_distinct >= f.min_sizes)


def _resolve_shared(shared: str, arms: list[_Arm]) -> str:
    if shared not in ("auto", "alpha", "none"):
        raise ValueError(f"shared must be 'auto', 'alpha' or 'none'; got {shared!r}")
    if shared != "auto":
        return shared
    pl = [a for a in arms if a.form == "power_law"]
    if any(len(a.distinct) < SHARED_BELOW_SIZES for a in pl):
        return "alpha"
    return "none"


@dataclass
class _FitPlan:
    """How the power-law arms are fitted.

    Improving arms go in `groups`: one group sharing alpha ("alpha" mode), or each alone.
    Worsening and flat arms are `solos`, each fitted on its own; with `borrow` they take the
    exponent of the improving group's fit instead of fitting it. `log_nmin` is the log of the
    study's smallest size, where a worsening curve is anchored to stay positive; `max_error` is
    the most the error can be (1 for a score), which caps the ceiling a worsening curve rises to.
    """

    groups: list[list[_Arm]]
    solos: list[_Arm]
    borrow: bool
    log_nmin: float
    max_error: float

    def group_of(self, name: str) -> int | None:
        return next((gi for gi, g in enumerate(self.groups) if any(a.name == name for a in g)), None)


def _plan(arms: list[_Arm], mode: str, log_nmin: float, max_error: float) -> _FitPlan:
    pl = [a for a in arms if a.form == "power_law"]
    improving = [a for a in pl if a.direction == "improving"]
    solos = [a for a in pl if a.direction != "improving"]
    if mode == "alpha" and improving:
        return _FitPlan([improving], solos, True, log_nmin, max_error)
    return _FitPlan([[a] for a in improving], solos, False, log_nmin, max_error)


@dataclass
class _FittedCurves:
    """The fits of one pass over the data: per improving group, and per solo arm."""

    groups: dict[int, _GroupFit]
    solos: dict[str, _SoloFit]


def _fit_arms(
    arms: list[_Arm],
    plan: _FitPlan,
    data: dict[str, tuple[np.ndarray, np.ndarray]],
    warm: _FittedCurves | None,
    full_starts: bool,
) -> tuple[dict[str, dict[str, float]], _FittedCurves]:
    """ArmFit every arm with its form on the given (sizes, errors); returns params per arm and the fits."""
    params: dict[str, dict[str, float]] = {}
    fits = _FittedCurves({}, {})
    for gi, group in enumerate(plan.groups):
        d = GroupPoints.of([data[a.name][0] for a in group], [data[a.name][1] for a in group])
        warm_start = [warm.groups[gi].warm_start(d)] if warm is not None and gi in warm.groups else []
        if warm_start and not full_starts:
            # The warm start alone on a bootstrap replicate; the full grid only if it fails there.
            g = _fit_group(d, warm_start, POWER_LAW.shared_starts(d))
        else:
            g = _fit_group(d, warm_start + POWER_LAW.shared_starts(d))
        fits.groups[gi] = g
        for i, a in enumerate(group):
            params[a.name] = g.params(i)
    borrowed = fits.groups[0].alpha if plan.borrow else None
    for a in plan.solos:
        s, e = data[a.name]
        w = warm.solos[a.name].theta if warm is not None and a.name in warm.solos else None
        f = _fit_solo(s, e, SIGN[a.direction], plan.log_nmin, borrowed, w, full_starts, plan.max_error)
        fits.solos[a.name] = f
        params[a.name] = f.params()
    for a in arms:
        if a.form == "log_linear":
            s, e = data[a.name]
            params[a.name] = LOG_LINEAR.fit(s, e)
    return params, fits


def _draw(nominal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of (size, seed) points drawn with replacement, keeping at least two distinct sizes."""
    n = len(nominal)
    for _ in range(MAX_REDRAWS):
        idx = rng.integers(0, n, n)
        if len(np.unique(nominal[idx])) >= 2:
            return idx
    return np.arange(n)


def _paired_resample(arms: list[_Arm], rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One replicate's points per arm; arms measured at the same (size, seed) points share one draw.

    Paired: a replicate that leaves out seed 1 at 400 rows leaves it out for every arm, so noise
    common to the arms (the seed's initialization and D0 order) cancels in their comparison.
    """
    draws: dict[tuple, np.ndarray] = {}
    out = {}
    for a in arms:
        if a.layout not in draws:
            draws[a.layout] = _draw(a.nominal, rng)
        idx = draws[a.layout]
        out[a.name] = (a.sizes[idx], a.errors[idx])
    return out


def _bootstrap(
    arms: list[_Arm],
    plan: _FitPlan,
    full: _FittedCurves,
    n_boot: int,
    seed: int,
    targets: dict[str, float],
    higher_is_better: bool,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Refit on resampled points; each arm keeps the direction read from all its points.

    `targets` is each arm's (effective) size at the target, where the replicates predict."""
    fitted = [a for a in arms if a.form != "none"]
    if n_boot <= 0 or not fitted:
        return pd.DataFrame(columns=[a.name for a in fitted], dtype=float), {}
    rng = np.random.default_rng(seed)
    preds = np.full((n_boot, len(fitted)), np.nan)
    reps = {a.name: np.full((n_boot, len(FORMS[a.form].param_names)), np.nan) for a in fitted}
    for r in range(n_boot):
        data = _paired_resample(fitted, rng)
        try:
            params, _ = _fit_arms(arms, plan, data, warm=full, full_starts=False)
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            continue  # a failed replicate stays NaN and is left out of the percentiles
        for j, a in enumerate(fitted):
            p = params[a.name]
            reps[a.name][r] = [p[k] for k in FORMS[a.form].param_names]
            preds[r, j] = from_error(FORMS[a.form].error(p, [targets[a.name]]), higher_is_better)[0]
    boot = pd.DataFrame(preds, columns=[a.name for a in fitted])
    boot.index.name = "replicate"
    return boot, reps


def _backtest(
    arm: _Arm, plan: _FitPlan, full: _FittedCurves, higher_is_better: bool
) -> tuple[Backtest | None, str | None]:
    """Refit without this arm's largest size (other arms keep theirs) and predict that size."""
    distinct = arm.distinct
    if len(distinct) < 3:
        return None, f"backtest needs 3 or more sizes; {arm.name} has {len(distinct)}"
    largest = distinct[-1]
    keep = arm.sizes < largest
    actual = float(np.mean(arm.values[~keep]))
    note = None
    gi = plan.group_of(arm.name)
    solo = any(a.name == arm.name for a in plan.solos)
    if gi is not None and len(plan.groups[gi]) > 1:
        group = plan.groups[gi]
        d = GroupPoints.of(
            [a.sizes[keep] if a.name == arm.name else a.sizes for a in group],
            [a.errors[keep] if a.name == arm.name else a.errors for a in group],
        )
        # A few starts beside the warm one: the held-out refit differs from the full fit in one arm only.
        g = _fit_group(
            d,
            [full.groups[gi].warm_start(d)]
            + [POWER_LAW.shared_start(d, a, 0.5) for a in (START_ALPHAS[1], START_ALPHAS[3])],
        )
        i = [a.name for a in group].index(arm.name)
        form, params = "power_law", g.params(i)
    elif solo and (plan.borrow or len(distinct) - 1 >= 3):
        # The improving arms' exponent does not depend on this arm's points: borrow the full fit's.
        alpha = full.groups[0].alpha if plan.borrow else None
        f = _fit_solo(
            arm.sizes[keep],
            arm.errors[keep],
            SIGN[arm.direction],
            plan.log_nmin,
            alpha,
            full.solos[arm.name].theta,
            max_error=plan.max_error,
        )
        form, params = "power_law", f.params()
    elif not solo and len(distinct) - 1 >= 3:
        d = GroupPoints.of([arm.sizes[keep]], [arm.errors[keep]])
        form, params = "power_law", _fit_group(d, POWER_LAW.shared_starts(d)).params(0)
    else:
        # Two sizes left for an arm fitted on its own: only the straight line is identifiable.
        form, params = "log_linear", LOG_LINEAR.fit(arm.sizes[keep], arm.errors[keep])
        note = "backtest used a log-linear fit (two sizes left without the largest)"
    predicted = float(from_error(FORMS[form].error(params, [largest]), higher_is_better)[0])
    return Backtest(arm.nominal_of(largest), predicted, actual, abs(predicted - actual)), note


def _at_bound(alpha: float) -> bool:
    return alpha <= ALPHA_BOUNDS[0] + BOUND_TOLERANCE or alpha >= ALPHA_BOUNDS[1] - BOUND_TOLERANCE


def _own_alphas(group: list[_Arm]) -> dict[str, float]:
    """Each arm's exponent fitted on its own points alone (asked when a shared one is on a bound)."""
    out = {}
    for a in group:
        d = GroupPoints.of([a.sizes], [a.errors])
        out[a.name] = _fit_group(d, POWER_LAW.shared_starts(d)).alpha
    return out


def _exponent_notes(
    arm: _Arm, plan: _FitPlan, full: _FittedCurves, own_cache: dict[int, dict[str, float]]
) -> tuple[bool, list[str]]:
    """Whether the arm's fit is degenerate, and the notes that say why (or why not).

    A fit is degenerate when the optimizer fell back to the grid, or when the exponent the arm's
    prediction uses was fitted and ended on a bound. In a shared fit that ends on a bound, each
    arm is refitted alone: only arms whose own points also end on a bound are flagged; the others
    are told that the shared value was set by those arms. A borrowed exponent is not this arm's
    fit, and a solo curve with no slope (B ~ 0) does not depend on its exponent.
    """
    gi = plan.group_of(arm.name)
    if gi is not None:
        g, group = full.groups[gi], plan.groups[gi]
        if not g.converged:
            return True, [DEGENERATE_GRID_NOTE]
        if not _at_bound(g.alpha):
            return False, []
        if len(group) == 1:
            return True, [DEGENERATE_BOUND_NOTE.format(alpha=g.alpha)]
        if gi not in own_cache:
            own_cache[gi] = _own_alphas(group)
        own = own_cache[gi]
        pushers = [n for n, al in own.items() if _at_bound(al)]
        if arm.name in pushers or not pushers:
            return True, [DEGENERATE_BOUND_NOTE.format(alpha=g.alpha)]
        return False, [
            f"the shared exponent alpha={g.alpha:.3g} sits on its bound, set there by "
            f"{', '.join(pushers)}; {arm.name}'s own points alone give alpha={own[arm.name]:.2f}, "
            f"so its prediction leans on the others' curve shape"
        ]
    f = full.solos[arm.name]
    notes = []
    if plan.borrow:
        notes.append(
            f"exponent alpha={f.alpha:.3g} borrowed from the improving arms' fit; "
            f"this arm's points set its E and B only"
        )
    if not f.converged:
        return True, notes + [DEGENERATE_GRID_NOTE]
    if not plan.borrow and _at_bound(f.alpha) and f.theta[2] >= FLAT_RELATIVE_IMPROVEMENT:
        return True, notes + [DEGENERATE_BOUND_NOTE.format(alpha=f.alpha)]
    return False, notes


def _flags(
    arm: _Arm, fit: ArmFit, target_size: int, higher_is_better: bool, degenerate: tuple[bool, list[str]] | None
) -> None:
    """Add machine flags and their human notes to `fit` in place."""
    distinct = arm.distinct
    largest = arm.nominal_of(distinct[-1])
    if fit.form != "none" and target_size > EXTRAPOLATION_FACTOR * largest:
        fit.flags.append("extrapolation")
        fit.notes.append(
            f"target {target_size:,} is {target_size / largest:.0f}x the largest measured size "
            f"{largest:,}: a long extrapolation"
        )
    if fit.form == "none":
        return
    mean_small = float(np.mean(arm.values[arm.sizes == distinct[0]]))
    mean_large = float(np.mean(arm.values[arm.sizes == distinct[-1]]))
    improved = mean_large > mean_small if higher_is_better else mean_large < mean_small
    curve = FORMS[fit.form].error(fit.params, [distinct[0], distinct[-1]])
    flat = not (curve[0] - curve[1] > FLAT_RELATIVE_IMPROVEMENT * curve[0])
    if arm.direction == "worsening":
        fit.flags.append("no_improvement")
        how = (
            f"fitted as e = E - B*N^-alpha, the error rising toward E={fit.params['E']:.3g}"
            if fit.form == "power_law"
            else "the log-linear fit rises with size"
        )
        fit.notes.append(f"no improvement with size: the metric gets worse as the size grows (worsening); {how}")
    elif not improved or flat:
        fit.flags.append("no_improvement")
        why = (
            "the metric at the largest size is no better than at the smallest"
            if not improved
            else "the fitted curve is flat over the measured sizes"
        )
        fit.notes.append(f"no improvement with size: {why}")
    if degenerate is not None:
        is_degenerate, notes = degenerate
        if is_degenerate:
            fit.flags.append("degenerate")
        fit.notes.extend(notes)


def fit_study(
    points: pd.DataFrame,
    *,
    metric: str,
    higher_is_better: bool,
    target_size: int,
    n_boot: int = 200,
    seed: int = 0,
    shared: str = "auto",
    exposure: Exposure | None = None,
    max_form: str = "power_law",
    calibration: Calibration | None = None,
) -> StudyFit:
    """ArmFit every arm of a study on one metric and predict it at `target_size`.

    `points` has columns arm, size, seed, value (one row per finished run; NaN values are
    dropped). Each arm's direction (improving, worsening, flat) is read from its points. Arms
    with 3+ sizes get a power law e = E + s B N^-alpha; with fewer than 4 sizes per arm ("auto")
    the improving ones share alpha, so that 3 sizes still leave degrees of freedom, and the
    worsening and flat ones are fitted alone with that alpha. 2 sizes get a log-linear fit,
    1 size none. Intervals are the 5th-95th percentiles over `n_boot` bootstrap replicates.
    With `exposure` (each arm's unique rows), curves are fitted and read on effective sizes, and
    an arm whose rows must be repeated at the target is flagged "repeated_at_target". `max_form`
    caps the form ("log_linear": straight lines only; "none": no curve, the plain ranking).
    `calibration` widens the intervals beyond the measured sizes (core.predictors computes it).
    """
    df = clean_points(points)
    arms = _arms(df, higher_is_better, exposure, max_form)
    mode = _resolve_shared(shared, arms)
    # 1 - score cannot pass 1, so a worsening score's error rises at most to 1; a loss has no ceiling.
    plan = _plan(arms, mode, float(np.log(df["size"].min())) if len(df) else 0.0, 1.0 if higher_is_better else math.inf)
    data = {a.name: (a.sizes, a.errors) for a in arms}
    targets = {
        a.name: float(exposure.effective_size(a.name, [target_size])[0]) if exposure else target_size for a in arms
    }
    with single_threaded_blas():
        params, full = _fit_arms(arms, plan, data, warm=None, full_starts=True)
        boot, reps = _bootstrap(arms, plan, full, n_boot, seed, targets, higher_is_better)
        backtests = {a.name: _backtest(a, plan, full, higher_is_better) for a in arms if a.form != "none"}
        own_cache: dict[int, dict[str, float]] = {}
        degenerate = {a.name: _exponent_notes(a, plan, full, own_cache) for a in arms if a.form == "power_law"}

    fits: dict[str, ArmFit] = {}
    study = StudyFit(
        metric,
        higher_is_better,
        int(target_size),
        mode,
        int(n_boot),
        int(seed),
        fits,
        boot,
        reps,
        exposure,
        calibration,
    )
    for a in arms:
        if a.form == "none":
            note = NO_FIT_NOTE if len(a.distinct) < 2 else PLAIN_NOTE
            fit = ArmFit(a.name, "none", {}, [], None, None, [], [note], False)
            _flags(a, fit, target_size, higher_is_better, None)
        else:
            fit = _arm_fit(a, study, plan, full, params[a.name], shared, backtests[a.name])
            _flags(a, fit, target_size, higher_is_better, degenerate.get(a.name))
            _repetition_flag(a.name, fit, exposure, target_size)
        fits[a.name] = fit
    return study


def _arms(df: pd.DataFrame, higher_is_better: bool, exposure: Exposure | None, max_form: str) -> list[_Arm]:
    """Each arm's points, on effective sizes with an exposure, with its form and direction."""
    arms: list[_Arm] = []
    for name, g in df.groupby("arm", sort=True):
        vals = g["value"].to_numpy(dtype=float)
        nominal = g["size"].to_numpy(dtype=float)
        sizes = nominal if exposure is None else exposure.effective_size(str(name), nominal)
        errors = to_error(vals, higher_is_better)
        form, direction = _form_for(len(np.unique(sizes)), max_form), trend_direction(sizes, errors)
        arms.append(_Arm(str(name), sizes, errors, vals, form, direction, nominal, g["seed"].to_numpy()))
    return arms


def _arm_fit(
    a: _Arm,
    study: StudyFit,
    plan: _FitPlan,
    full: _FittedCurves,
    params: dict[str, float],
    shared: str,
    backtest: tuple[Backtest | None, str | None],
) -> ArmFit:
    """A fitted arm's ArmFit: its parameters, its prediction at the target with both intervals, its backtest."""
    gi = plan.group_of(a.name)
    if gi is not None:
        converged = full.groups[gi].converged
    else:
        converged = full.solos[a.name].converged if a.name in full.solos else True
    gsize = len(plan.groups[gi]) if gi is not None else 1
    shared_params = ["alpha"] if gsize > 1 else []
    fit = ArmFit(a.name, a.form, params, shared_params, None, None, [], [], converged, a.direction)
    study.fits[a.name] = fit  # curve() reads it
    target = study.target_size
    value, low, high = study.curve(a.name, [target])
    _, low_80, high_80 = study.curve(a.name, [target], level=0.8)
    bounds = (low[0], high[0], low_80[0], high_80[0])
    fit.prediction = Prediction(target, float(value[0]), *(json_float(b) for b in bounds))
    fit.backtest, note = backtest
    if note:
        fit.notes.append(note)
    if a.form == "log_linear":
        fit.notes.append("two sizes: log-linear fit (no saturation), read it as a trend")
    if shared_params:
        why = " (too few sizes per arm to fit it alone)" if shared == "auto" else ""
        fit.notes.append(f"exponent alpha shared across {gsize} improving arms{why}")
    return fit


def _repetition_flag(arm: str, fit: ArmFit, exposure: Exposure | None, target_size: int) -> None:
    """Flag an arm whose own rows must be repeated at the target, with what they count for there."""
    rep = exposure.repetition(arm, target_size) if exposure is not None else None
    if rep is None or rep <= 1.0:
        return
    effective = float(exposure.effective_size(arm, [target_size])[0])
    whose = "D0's" if arm == BASELINE else "its"
    fit.flags.append("repeated_at_target")
    fit.notes.append(
        f"{whose} rows must be used {rep:.1f}x each to reach the target {target_size:,}: predicted at "
        f"{effective:,.0f} effective rows (repeated rows count less, R*={exposure.r_star:g}); the interval "
        "spans R* from {:g} to {:g}".format(*exposure.r_star_range)
    )
