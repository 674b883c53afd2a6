"""Scaling-law fits: predict each arm's metric at the target size, with bootstrap intervals.

Every arm (a candidate, or "baseline" for the D0-only runs) was trained at a few mixture sizes N
and seeds. We fit an error-like quantity e (the loss itself, or 1 - score) with a saturating power
law e(N) = E + B * N^(-alpha) and read the fitted curve at the target size. The choices follow what
the literature on this exact question found (see DESIGN.md, "Evaluation and scaling"):

- Fit in log space with a robust loss (Chinchilla's approach 3): E = exp(e_), B = exp(b_) so both
  stay positive, Huber(delta=1e-3) on log(pred) - log(obs), L-BFGS-B from a grid of starting
  points, keep the best converged one. When no start converges, fall back to a grid search over
  alpha with E, B solved by nonnegative least squares (Scaling Laws for Data Filtering).
- Three sizes and three parameters leave no degrees of freedom, so with few sizes the arms of a
  study share one exponent alpha (as the Data Mixing Laws code ties exponents across curves).
- Two sizes only support a straight line in log-log space; one size supports no curve at all.
- The fit's own standard errors are not to be trusted (Epoch AI's Chinchilla replication), so
  intervals come from a bootstrap over each arm's (size, seed) points.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.optimize import minimize

BASELINE = "baseline"
HUBER_DELTA = 1e-3
ALPHA_BOUNDS = (0.0, 2.0)
MIN_ERROR = 1e-6
# Fewer distinct sizes than this per arm => share alpha across the arms of a study ("auto").
SHARED_BELOW_SIZES = 4
EXTRAPOLATION_FACTOR = 10.0
# A fitted curve whose error falls by less than this fraction over the measured sizes is flat.
FLAT_RELATIVE_IMPROVEMENT = 1e-3
INTERVAL_PERCENTILES = (5.0, 95.0)
MAX_REDRAWS = 20

# Starting grid for the full-data fit: exponents, and E as a fraction of the arm's smallest error.
START_ALPHAS = (0.1, 0.3, 0.6, 1.0)
START_E_FRACTIONS = (1e-3, 0.5, 0.9)
# Grid for the fallback search over alpha.
FALLBACK_ALPHAS = np.linspace(ALPHA_BOUNDS[0], ALPHA_BOUNDS[1], 201)

NO_FIT_NOTE = "one size: no curve to fit; the plain ranking at that size is reported"

Form = Literal["power_law", "log_linear", "none"]


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
    """The metric predicted at the target size, with the bootstrap's 90% interval (None if no bootstrap)."""

    target_size: int
    value: float
    low: float | None
    high: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_size": int(self.target_size),
            "value": json_float(self.value),
            "low": json_float(self.low),
            "high": json_float(self.high),
        }


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


@dataclass
class Fit:
    """One arm's fitted curve.

    `params` holds E, B, alpha for "power_law" (e = E + B N^-alpha), a, c for "log_linear"
    (log e = a + c log N), nothing for "none". `shared` names the parameters tied across arms.
    `flags` are machine codes ("extrapolation", "no_improvement", "degenerate"); `notes` are
    the human sentences that go with them, plus anything else worth saying about the fit.
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "form": self.form,
            "params": {k: json_float(v) for k, v in self.params.items()},
            "shared": list(self.shared),
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "backtest": self.backtest.to_dict() if self.backtest else None,
            "flags": list(self.flags),
            "notes": list(self.notes),
            "converged": bool(self.converged),
        }


@dataclass
class PowerLaw:
    """A fitted e(N) = E + B * N^(-alpha); `method` is "lbfgsb" or "grid" (the fallback)."""

    E: float
    B: float
    alpha: float
    converged: bool
    method: str
    loss: float

    def predict(self, sizes: Any) -> np.ndarray:
        return power_law(sizes, self.E, self.B, self.alpha)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (json_float(v) if isinstance(v, float) else v) for k, v in d.items()}


def power_law(sizes: Any, E: float, B: float, alpha: float) -> np.ndarray:
    """e(N) = E + B * N^(-alpha)."""
    n = np.asarray(sizes, dtype=float)
    return E + B * n ** (-alpha)


# --------------------------------------------------------------------------------------------
# Error-like quantity
# --------------------------------------------------------------------------------------------


def to_error(values: Any, higher_is_better: bool) -> np.ndarray:
    """The quantity that falls toward an irreducible floor as N grows: loss, or 1 - score."""
    v = np.asarray(values, dtype=float)
    e = 1.0 - v if higher_is_better else v
    return np.clip(e, MIN_ERROR, None)


def from_error(errors: Any, higher_is_better: bool) -> np.ndarray:
    """Back to the metric's own units; scores are clipped to [0, 1]."""
    e = np.asarray(errors, dtype=float)
    if higher_is_better:
        return np.clip(1.0 - e, 0.0, 1.0)
    return e


# --------------------------------------------------------------------------------------------
# The joint power-law fit (one shared alpha, per-arm E_k, B_k); a single curve is K = 1
# --------------------------------------------------------------------------------------------


@dataclass
class _Data:
    """Points of one fit group, arm k's rows marked by idx == k; x is log N centred on log_n0.

    Centring log N decorrelates b_ and alpha, which L-BFGS-B needs to move along the valley.
    """

    x: np.ndarray
    logy: np.ndarray
    idx: np.ndarray
    k: int
    log_n0: float


def _make_data(sizes_per_arm: list[np.ndarray], errors_per_arm: list[np.ndarray], log_n0: float | None = None) -> _Data:
    sizes = np.concatenate([np.asarray(s, dtype=float) for s in sizes_per_arm])
    errors = np.concatenate([np.asarray(e, dtype=float) for e in errors_per_arm])
    idx = np.concatenate([np.full(len(s), i, dtype=np.intp) for i, s in enumerate(sizes_per_arm)])
    logn = np.log(sizes)
    if log_n0 is None:
        log_n0 = float(np.mean(np.log(np.unique(sizes))))
    return _Data(logn - log_n0, np.log(np.clip(errors, MIN_ERROR, None)), idx, len(sizes_per_arm), log_n0)


def _huber_loss_grad(theta: np.ndarray, d: _Data) -> tuple[float, np.ndarray]:
    """Sum of Huber(log pred - log obs) / delta, with its gradient.

    theta = [alpha, e_1..e_K, b_1..b_K], pred = exp(e_k) + exp(b_k - alpha x). Dividing by delta
    keeps the objective near sum |r|, away from L-BFGS-B's absolute stopping tolerance.
    """
    k = d.k
    alpha = theta[0]
    t1 = theta[1 : 1 + k][d.idx]
    t2 = theta[1 + k :][d.idx] - alpha * d.x
    pred = np.logaddexp(t1, t2)
    r = pred - d.logy
    a = np.abs(r)
    quad = a <= HUBER_DELTA
    loss = float(np.where(quad, 0.5 * r * r, HUBER_DELTA * (a - 0.5 * HUBER_DELTA)).sum() / HUBER_DELTA)
    dr = np.where(quad, r / HUBER_DELTA, np.sign(r))
    w_e = np.exp(t1 - pred)
    w_b = np.exp(t2 - pred)
    grad = np.empty_like(theta)
    grad[0] = -float(np.sum(dr * w_b * d.x))
    grad[1 : 1 + k] = np.bincount(d.idx, dr * w_e, k)
    grad[1 + k :] = np.bincount(d.idx, dr * w_b, k)
    return loss, grad


def _huber_log_loss(pred: np.ndarray, obs_log: np.ndarray) -> np.ndarray:
    """Same objective for the grid fallback, summed over the last axis."""
    r = np.log(np.clip(pred, 1e-300, None)) - obs_log
    a = np.abs(r)
    return np.where(a <= HUBER_DELTA, 0.5 * r * r, HUBER_DELTA * (a - 0.5 * HUBER_DELTA)).sum(axis=-1) / HUBER_DELTA


def _bounds(d: _Data) -> list[tuple[float, float]]:
    top = float(d.logy.max())
    return [ALPHA_BOUNDS] + [(-30.0, top + 1.0)] * d.k + [(-30.0, top + 5.0)] * d.k


def _start(d: _Data, alpha: float, e_fraction: float) -> np.ndarray:
    """A starting point: E_k a fraction of arm k's smallest error, b_k fitted given alpha and E_k."""
    e = np.empty(d.k)
    b = np.empty(d.k)
    for i in range(d.k):
        m = d.idx == i
        y = np.exp(d.logy[m])
        E = e_fraction * y.min()
        e[i] = math.log(max(E, 1e-12))
        b[i] = float(np.mean(np.log(np.maximum(y - E, 1e-3 * y)) + alpha * d.x[m]))
    return np.concatenate([[alpha], e, b])


def _grid_starts(d: _Data) -> list[np.ndarray]:
    return [_start(d, a, f) for a in START_ALPHAS for f in START_E_FRACTIONS]


def _backtest_starts(d: _Data) -> list[np.ndarray]:
    """A few starts beside the warm one: the held-out refit differs from the full fit in one arm only."""
    return [_start(d, a, 0.5) for a in (START_ALPHAS[1], START_ALPHAS[3])]


@dataclass
class _GroupFit:
    """Fitted [alpha, E_k, B_k] of a group; `converged` False means the grid fallback was used."""

    alpha: float
    E: np.ndarray
    B: np.ndarray
    converged: bool
    method: str
    loss: float
    theta: np.ndarray  # optimizer coordinates, for warm starts (centred b)


def _minimize(d: _Data, starts: list[np.ndarray]) -> tuple[np.ndarray, float] | None:
    """Best converged L-BFGS-B result over the starts, or None if none converged."""
    bounds = _bounds(d)
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    best: tuple[np.ndarray, float] | None = None
    for s in starts:
        x0 = np.clip(s, lo, hi)
        res = minimize(_huber_loss_grad, x0, args=(d,), jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": 1000})
        if not res.success or not np.all(np.isfinite(res.x)):
            continue
        if best is None or res.fun < best[1] - 1e-12:
            best = (res.x, float(res.fun))
    return best


def _nnls2(w: np.ndarray, xw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve min ||E*w + B*xw - 1||^2 with E, B >= 0, vectorised over the leading axis.

    Rows are weighted by 1/e so that the squared error is relative, close to the log-space fit.
    The two-variable problem has a closed form: the unconstrained solution if it is feasible,
    otherwise the better of the two one-variable solutions.
    """
    s11 = np.sum(w * w, axis=-1)
    s12 = np.sum(w * xw, axis=-1)
    s22 = np.sum(xw * xw, axis=-1)
    t1 = np.sum(w, axis=-1)
    t2 = np.sum(xw, axis=-1)
    det = s11 * s22 - s12 * s12
    with np.errstate(divide="ignore", invalid="ignore"):
        E = np.where(det > 1e-300, (s22 * t1 - s12 * t2) / det, -1.0)
        B = np.where(det > 1e-300, (s11 * t2 - s12 * t1) / det, -1.0)
        ok = (E >= 0) & (B >= 0)
        e_only = np.clip(t1 / s11, 0, None)
        b_only = np.where(s22 > 0, np.clip(t2 / s22, 0, None), 0.0)
    n = w.shape[-1]
    # Residual sum of squares of each one-variable solution: ||a v - 1||^2 = n - 2 a t + a^2 s.
    rss_e = n - 2 * e_only * t1 + e_only**2 * s11
    rss_b = n - 2 * b_only * t2 + b_only**2 * s22
    use_e = rss_e <= rss_b
    E = np.where(ok, E, np.where(use_e, e_only, 0.0))
    B = np.where(ok, B, np.where(use_e, 0.0, b_only))
    return E, B


def _grid_fit(d: _Data) -> _GroupFit:
    """Fallback when the optimizer is unstable: scan alpha, solve E_k, B_k >= 0 per arm, keep the best."""
    alphas = FALLBACK_ALPHAS[:, None]
    total = np.zeros(len(FALLBACK_ALPHAS))
    Es, Bs = [], []
    for i in range(d.k):
        m = d.idx == i
        y = np.exp(d.logy[m])
        logn = d.x[m] + d.log_n0
        x = np.exp(-alphas * logn[None, :])  # (grid, points)
        w = np.broadcast_to(1.0 / y, x.shape)
        E, B = _nnls2(w, x / y)
        pred = E[:, None] + B[:, None] * x
        total += _huber_log_loss(pred, d.logy[m][None, :])
        Es.append(E)
        Bs.append(B)
    j = int(np.argmin(total))
    alpha = float(FALLBACK_ALPHAS[j])
    E = np.array([e[j] for e in Es])
    B = np.array([b[j] for b in Bs])
    theta = np.concatenate([[alpha], np.log(np.clip(E, 1e-12, None)),
                            np.log(np.clip(B, 1e-12, None)) - alpha * d.log_n0])
    return _GroupFit(alpha, E, B, False, "grid", float(total[j]), theta)


def _fit_group(d: _Data, starts: list[np.ndarray]) -> _GroupFit:
    best = _minimize(d, starts)
    if best is None:
        return _grid_fit(d)
    theta, loss = best
    alpha = float(theta[0])
    E = np.exp(theta[1 : 1 + d.k])
    # b_ was fitted against centred log N: B * N^-alpha = exp(b_c - alpha (log N - log n0)).
    B = np.exp(theta[1 + d.k :] + alpha * d.log_n0)
    return _GroupFit(alpha, E, B, True, "lbfgsb", loss, theta)


def _warm_theta(fit: _GroupFit, log_n0: float) -> np.ndarray:
    """Optimizer coordinates of a fit, re-centred on another group's log_n0."""
    alpha = fit.alpha
    return np.concatenate([[alpha], np.log(np.clip(fit.E, 1e-12, None)),
                           np.log(np.clip(fit.B, 1e-12, None)) - alpha * log_n0])


@contextlib.contextmanager
def _single_threaded_blas():
    """L-BFGS-B calls BLAS on tiny matrices; a threaded BLAS spends ~6x longer waking threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def fit_power_law(sizes: Any, errors: Any, *, starts: list[tuple[float, float, float]] | None = None) -> PowerLaw:
    """Fit one curve e(N) = E + B N^-alpha to (size, error) points (Chinchilla approach 3).

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
    d = _make_data([sizes], [errors])
    if starts is None:
        theta0 = _grid_starts(d)
    else:
        theta0 = [np.array([a, math.log(max(E, 1e-12)), math.log(max(B, 1e-12)) - a * d.log_n0]) for E, B, a in starts]
    with _single_threaded_blas():
        g = _fit_group(d, theta0)
    return PowerLaw(float(g.E[0]), float(g.B[0]), g.alpha, g.converged, g.method, g.loss)


def fit_log_linear(sizes: Any, errors: Any) -> tuple[float, float]:
    """Straight line in log-log space, log e = a + c log N: all that two sizes support."""
    logn = np.log(np.asarray(sizes, dtype=float))
    loge = np.log(np.clip(np.asarray(errors, dtype=float), MIN_ERROR, None))
    c, a = np.polyfit(logn, loge, 1)
    return float(a), float(c)


def _error_curve(form: str, params: dict[str, float], sizes: Any) -> np.ndarray:
    n = np.asarray(sizes, dtype=float)
    if form == "power_law":
        return power_law(n, params["E"], params["B"], params["alpha"])
    if form == "log_linear":
        return np.exp(params["a"] + params["c"] * np.log(n))
    return np.full(n.shape, np.nan)


# --------------------------------------------------------------------------------------------
# A study: forms, sharing, bootstrap, backtest, flags
# --------------------------------------------------------------------------------------------


@dataclass
class StudyFit:
    """All arms' fits for one metric, plus the bootstrap that gives their intervals.

    `boot` holds, per replicate (row) and fitted arm (column), the predicted metric at the target
    size; ranking reads P(best) from it. `boot_params` keeps each replicate's curve parameters
    (columns as in `param_names`) so that bands can be drawn at any size.
    """

    metric: str
    higher_is_better: bool
    target_size: int
    shared_mode: str
    n_boot: int
    seed: int
    fits: dict[str, Fit]
    boot: pd.DataFrame
    boot_params: dict[str, np.ndarray]

    @staticmethod
    def param_names(form: str) -> list[str]:
        return {"power_law": ["E", "B", "alpha"], "log_linear": ["a", "c"]}.get(form, [])

    def predict(self, arm: str, sizes: Any) -> np.ndarray:
        """The fitted curve of `arm` in metric units (NaN for an arm with no fit)."""
        f = self.fits[arm]
        errors = _error_curve(f.form, f.params, sizes)
        return errors if f.form == "none" else from_error(errors, self.higher_is_better)

    def curve(self, arm: str, sizes: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(value, low, high) at each size, for drawing a curve with its 90% bootstrap band.

        An arm with no fit gives NaN arrays (nothing to draw); without replicates low/high are NaN.
        """
        n = np.atleast_1d(np.asarray(sizes, dtype=float))
        value = self.predict(arm, n)
        reps = self.boot_params.get(arm)
        f = self.fits[arm]
        if reps is None or len(reps) == 0 or f.form == "none":
            nan = np.full(n.shape, np.nan)
            return value, nan, nan.copy()
        names = self.param_names(f.form)
        vals = np.stack([_error_curve(f.form, dict(zip(names, row)), n) for row in reps])
        vals = from_error(vals, self.higher_is_better)
        low, high = _percentiles(vals)
        return value, low, high

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "higher_is_better": bool(self.higher_is_better),
            "target_size": int(self.target_size),
            "shared_mode": self.shared_mode,
            "n_boot": int(self.n_boot),
            "seed": int(self.seed),
            "fits": {arm: f.to_dict() for arm, f in self.fits.items()},
        }


def _percentiles(vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """5th/95th percentiles over replicates (axis 0), ignoring failed (NaN) replicates."""
    with np.errstate(all="ignore"), _quiet_nan_warnings():
        low = np.nanpercentile(vals, INTERVAL_PERCENTILES[0], axis=0)
        high = np.nanpercentile(vals, INTERVAL_PERCENTILES[1], axis=0)
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
    sizes: np.ndarray  # per point
    errors: np.ndarray  # per point
    values: np.ndarray  # per point, metric units
    form: str

    @property
    def distinct(self) -> np.ndarray:
        return np.unique(self.sizes)


def _form_for(n_distinct: int) -> str:
    if n_distinct >= 3:
        return "power_law"
    if n_distinct == 2:
        return "log_linear"
    return "none"


def _resolve_shared(shared: str, arms: list[_Arm]) -> str:
    if shared not in ("auto", "alpha", "none"):
        raise ValueError(f"shared must be 'auto', 'alpha' or 'none'; got {shared!r}")
    if shared != "auto":
        return shared
    pl = [a for a in arms if a.form == "power_law"]
    if any(len(a.distinct) < SHARED_BELOW_SIZES for a in pl):
        return "alpha"
    return "none"


def _groups(arms: list[_Arm], mode: str) -> list[list[_Arm]]:
    """Which power-law arms are fitted together: all of them (shared alpha), or each alone."""
    pl = [a for a in arms if a.form == "power_law"]
    if mode == "alpha" and len(pl) >= 2:
        return [pl]
    return [[a] for a in pl]


def _params_from_group(g: _GroupFit, i: int) -> dict[str, float]:
    return {"E": float(g.E[i]), "B": float(g.B[i]), "alpha": float(g.alpha)}


def _fit_arms(arms: list[_Arm], groups: list[list[_Arm]], data: dict[str, tuple[np.ndarray, np.ndarray]],
              warm: dict[int, _GroupFit] | None, full_starts: bool) -> tuple[dict[str, dict[str, float]], dict[int, _GroupFit]]:
    """Fit every arm with its form on the given (sizes, errors); returns params per arm and group fits."""
    params: dict[str, dict[str, float]] = {}
    group_fits: dict[int, _GroupFit] = {}
    for gi, group in enumerate(groups):
        d = _make_data([data[a.name][0] for a in group], [data[a.name][1] for a in group])
        warm_start = [_warm_theta(warm[gi], d.log_n0)] if warm is not None and gi in warm else []
        few_starts = bool(warm_start) and not full_starts
        g = _fit_group(d, warm_start if few_starts else warm_start + _grid_starts(d))
        if few_starts and not g.converged:
            # The warm start alone failed on this replicate: try the full grid before falling back.
            g = _fit_group(d, warm_start + _grid_starts(d))
        group_fits[gi] = g
        for i, a in enumerate(group):
            params[a.name] = _params_from_group(g, i)
    for a in arms:
        if a.form == "log_linear":
            s, e = data[a.name]
            aa, c = fit_log_linear(s, e)
            params[a.name] = {"a": aa, "c": c}
    return params, group_fits


def _resample(arm: _Arm, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Resample an arm's (size, seed) points with replacement, keeping at least two distinct sizes."""
    n = len(arm.sizes)
    for _ in range(MAX_REDRAWS):
        idx = rng.integers(0, n, n)
        if len(np.unique(arm.sizes[idx])) >= 2:
            return arm.sizes[idx], arm.errors[idx]
    return arm.sizes, arm.errors


def _bootstrap(arms: list[_Arm], groups: list[list[_Arm]], full_groups: dict[int, _GroupFit],
               n_boot: int, seed: int, target_size: int, higher_is_better: bool
               ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    fitted = [a for a in arms if a.form != "none"]
    if n_boot <= 0 or not fitted:
        return pd.DataFrame(columns=[a.name for a in fitted], dtype=float), {}
    rng = np.random.default_rng(seed)
    preds = np.full((n_boot, len(fitted)), np.nan)
    reps = {a.name: np.full((n_boot, len(StudyFit.param_names(a.form))), np.nan) for a in fitted}
    for r in range(n_boot):
        data = {a.name: _resample(a, rng) for a in fitted}
        try:
            params, _ = _fit_arms(arms, groups, data, warm=full_groups, full_starts=False)
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            continue  # a failed replicate stays NaN and is left out of the percentiles
        for j, a in enumerate(fitted):
            p = params[a.name]
            reps[a.name][r] = [p[k] for k in StudyFit.param_names(a.form)]
            preds[r, j] = from_error(_error_curve(a.form, p, [target_size]), higher_is_better)[0]
    boot = pd.DataFrame(preds, columns=[a.name for a in fitted])
    boot.index.name = "replicate"
    return boot, reps


def _backtest(arm: _Arm, groups: list[list[_Arm]], full_groups: dict[int, _GroupFit],
              higher_is_better: bool) -> tuple[Backtest | None, str | None]:
    """Refit without this arm's largest size (other arms keep theirs) and predict that size."""
    distinct = arm.distinct
    if len(distinct) < 3:
        return None, f"backtest needs 3 or more sizes; {arm.name} has {len(distinct)}"
    largest = distinct[-1]
    keep = arm.sizes < largest
    actual = float(np.mean(arm.values[~keep]))
    note = None
    gi = next((i for i, g in enumerate(groups) if any(a.name == arm.name for a in g)), None)
    if gi is not None and len(groups[gi]) > 1:
        group = groups[gi]
        d = _make_data([a.sizes[keep] if a.name == arm.name else a.sizes for a in group],
                       [a.errors[keep] if a.name == arm.name else a.errors for a in group])
        g = _fit_group(d, [_warm_theta(full_groups[gi], d.log_n0)] + _backtest_starts(d))
        i = [a.name for a in group].index(arm.name)
        form, params = "power_law", _params_from_group(g, i)
    elif len(distinct) - 1 >= 3:
        d = _make_data([arm.sizes[keep]], [arm.errors[keep]])
        g = _fit_group(d, _grid_starts(d))
        form, params = "power_law", _params_from_group(g, 0)
    else:
        # Two sizes left for an arm fitted on its own: only the straight line is identifiable.
        aa, c = fit_log_linear(arm.sizes[keep], arm.errors[keep])
        form, params = "log_linear", {"a": aa, "c": c}
        note = "backtest used a log-linear fit (two sizes left without the largest)"
    predicted = float(from_error(_error_curve(form, params, [largest]), higher_is_better)[0])
    return Backtest(int(largest), predicted, actual, abs(predicted - actual)), note


def _flags(arm: _Arm, fit: Fit, target_size: int, higher_is_better: bool, group_converged: bool) -> None:
    """Add machine flags and their human notes to `fit` in place."""
    distinct = arm.distinct
    largest = int(distinct[-1])
    if fit.form != "none" and target_size > EXTRAPOLATION_FACTOR * largest:
        fit.flags.append("extrapolation")
        fit.notes.append(f"target {target_size:,} is {target_size / largest:.0f}x the largest measured size "
                         f"{largest:,}: a long extrapolation")
    if fit.form == "none":
        return
    mean_small = float(np.mean(arm.values[arm.sizes == distinct[0]]))
    mean_large = float(np.mean(arm.values[arm.sizes == distinct[-1]]))
    improved = mean_large > mean_small if higher_is_better else mean_large < mean_small
    curve = _error_curve(fit.form, fit.params, [distinct[0], distinct[-1]])
    flat = not (curve[0] - curve[1] > FLAT_RELATIVE_IMPROVEMENT * curve[0])
    if not improved or flat:
        fit.flags.append("no_improvement")
        why = "the metric at the largest size is no better than at the smallest" if not improved \
            else "the fitted curve is flat over the measured sizes"
        fit.notes.append(f"no improvement with size: {why}")
    if fit.form == "power_law":
        alpha = fit.params["alpha"]
        at_bound = alpha <= ALPHA_BOUNDS[0] + 1e-4 or alpha >= ALPHA_BOUNDS[1] - 1e-4
        if at_bound or not group_converged:
            fit.flags.append("degenerate")
            why = f"exponent alpha={alpha:.3g} at its bound" if at_bound \
                else "the optimizer did not converge; grid-search fallback used"
            fit.notes.append(f"degenerate fit: {why}")


def fit_study(points: pd.DataFrame, *, metric: str, higher_is_better: bool, target_size: int,
              n_boot: int = 200, seed: int = 0, shared: str = "auto") -> StudyFit:
    """Fit every arm of a study on one metric and predict it at `target_size`.

    `points` has columns arm, size, seed, value (one row per finished run; NaN values are
    dropped). Arms with 3+ sizes get a power law; with fewer than 4 sizes per arm ("auto") they
    share alpha, so that 3 sizes still leave degrees of freedom. 2 sizes get a log-linear fit,
    1 size none. Intervals are the 5th-95th percentiles over `n_boot` bootstrap replicates.
    """
    df = clean_points(points)
    arms: list[_Arm] = []
    for name, g in df.groupby("arm", sort=True):
        vals = g["value"].to_numpy(dtype=float)
        sizes = g["size"].to_numpy(dtype=float)
        arms.append(_Arm(str(name), sizes, to_error(vals, higher_is_better), vals, _form_for(len(np.unique(sizes)))))
    mode = _resolve_shared(shared, arms)
    groups = _groups(arms, mode)
    data = {a.name: (a.sizes, a.errors) for a in arms}
    with _single_threaded_blas():
        params, full_groups = _fit_arms(arms, groups, data, warm=None, full_starts=True)
        boot, reps = _bootstrap(arms, groups, full_groups, n_boot, seed, target_size, higher_is_better)
        backtests = {a.name: _backtest(a, groups, full_groups, higher_is_better)
                     for a in arms if a.form != "none"}

    group_of = {a.name: (gi, len(g)) for gi, g in enumerate(groups) for a in g}
    fits: dict[str, Fit] = {}
    study = StudyFit(metric, higher_is_better, int(target_size), mode, int(n_boot), int(seed), fits, boot, reps)
    for a in arms:
        if a.form == "none":
            fit = Fit(a.name, "none", {}, [], None, None, [], [NO_FIT_NOTE], False)
            _flags(a, fit, target_size, higher_is_better, True)
            fits[a.name] = fit
            continue
        gi, gsize = group_of.get(a.name, (None, 1))
        converged = full_groups[gi].converged if gi is not None else True
        shared_params = ["alpha"] if gi is not None and gsize > 1 else []
        fit = Fit(a.name, a.form, params[a.name], shared_params, None, None, [], [], converged)
        fits[a.name] = fit
        value, low, high = study.curve(a.name, [target_size])
        fit.prediction = Prediction(int(target_size), float(value[0]),
                                    json_float(low[0]), json_float(high[0]))
        bt, note = backtests[a.name]
        fit.backtest = bt
        if note:
            fit.notes.append(note)
        if a.form == "log_linear":
            fit.notes.append("two sizes: log-linear fit (no saturation), read it as a trend")
        if shared_params:
            why = " (too few sizes per arm to fit it alone)" if shared == "auto" else ""
            fit.notes.append(f"exponent alpha shared across {gsize} arms{why}")
        _flags(a, fit, target_size, higher_is_better, converged)
    return study
