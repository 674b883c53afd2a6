"""Scaling-law fits: predict each arm's metric at the target size, with bootstrap intervals.

Every arm (a candidate, or "baseline" for the D0-only runs) was trained at a few mixture sizes N
and seeds. We fit an error-like quantity e (the loss itself, or 1 - score) with a saturating
power law and read the fitted curve at the target size. The choices follow what the literature
on this exact question found (see DESIGN.md, "Evaluation and scaling"):

- Fit in log space with a robust loss (Chinchilla's approach 3): E = exp(e_), B = exp(b_) so both
  stay positive, Huber(delta=1e-3) on log(pred) - log(obs), L-BFGS-B from a grid of starting
  points, keep the best converged one. When no start converges, fall back to a grid search
  (Scaling Laws for Data Filtering).
- Not every arm improves with data: an off-domain or label-noise candidate can get *worse* as it
  takes more of the mixture. Each arm's direction is read from its points first (the sign of a
  Theil-Sen slope of log e on log N, see `trend_direction`), and its curve is
  e(N) = E + s * B * N^(-alpha) with B >= 0 and s = +1 ("improving", falling toward the floor E)
  or s = -1 ("worsening", rising toward the ceiling E). A worsening curve is kept positive from
  the study's smallest size on, so over the measured and target range, by writing
  B * N_min^(-alpha) = u * E with 0 <= u < 1; for a score, whose error 1 - score cannot pass 1,
  its ceiling E is at most 1. A "flat" arm (no trend) is fitted with s = +1.
  The bootstrap keeps each arm's direction: its interval is conditional on it.
- Three sizes and three parameters leave no degrees of freedom, so with few sizes the *improving*
  arms of a study share one exponent alpha (as the Data Mixing Laws code ties exponents across
  curves). Worsening and flat arms are fitted on their own, each with its E and B only and alpha
  borrowed from the improving arms' fit: they cannot be described by a falling curve, and in the
  shared fit they would drag the common exponent to its bound. Their exponent is a convention
  (how fast they saturate), not something their points measure; they rank low either way. With
  no improving fit to borrow from (or enough sizes to fit every arm alone) they fit alpha too.
- alpha is bounded to [0, 1]: data-scaling exponents in the literature sit well below 1
  (Chinchilla's ~0.28). An exponent that ends on a bound means the points do not pin the curve's
  shape and the prediction rests on the bound: that fit is flagged "degenerate". In a shared fit
  an arm is flagged only if its own points (fitted alone) also put alpha on a bound; an arm whose
  own points give an interior exponent gets a note that the shared value sits on the bound.
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
ALPHA_BOUNDS = (0.0, 1.0)
# alpha this close to a bound counts as on it.
BOUND_TOLERANCE = 1e-4
MIN_ERROR = 1e-6
# Fewer distinct sizes than this per arm => share alpha across the arms of a study ("auto").
SHARED_BELOW_SIZES = 4
EXTRAPOLATION_FACTOR = 10.0
# A fitted curve whose error falls by less than this fraction over the measured sizes is flat;
# a trend (change of log e over the measured sizes) smaller than this is no direction at all.
FLAT_RELATIVE_IMPROVEMENT = 1e-3
INTERVAL_PERCENTILES = (5.0, 95.0)
MAX_REDRAWS = 20

# Starting grid for the full-data fit: exponents, and E as a fraction of the arm's smallest error.
START_ALPHAS = (0.1, 0.3, 0.6, 0.9)
START_E_FRACTIONS = (1e-3, 0.5, 0.9)
# Grid for the fallback search over alpha.
FALLBACK_ALPHAS = np.linspace(ALPHA_BOUNDS[0], ALPHA_BOUNDS[1], 201)
# Arms fitted on their own ("solo"): u = B * N_min^-alpha / E, the curve's distance from E at the
# study's smallest size as a fraction of E. A worsening curve needs u < 1 to stay positive.
SOLO_U_MAX = {-1: 0.999, 1: 1e6}
SOLO_START_U = {-1: (0.05, 0.3, 0.7), 1: (0.01, 0.3, 3.0)}

NO_FIT_NOTE = "one size: no curve to fit; the plain ranking at that size is reported"
DEGENERATE_BOUND_NOTE = ("degenerate fit: exponent at its bound (alpha={alpha:.3g}): the points do not "
                         "pin the curve's shape; the prediction rests on the bound")
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


def _huber(r: np.ndarray) -> tuple[float, np.ndarray]:
    """Sum of Huber(r) / delta and its derivative in r (the objective of every fit here)."""
    a = np.abs(r)
    quad = a <= HUBER_DELTA
    loss = float(np.where(quad, 0.5 * r * r, HUBER_DELTA * (a - 0.5 * HUBER_DELTA)).sum() / HUBER_DELTA)
    return loss, np.where(quad, r / HUBER_DELTA, np.sign(r))


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
    loss, dr = _huber(pred - d.logy)
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
    """The fitted error at `sizes`; a worsening curve read below the study's sizes stays > 0."""
    n = np.asarray(sizes, dtype=float)
    if form == "power_law":
        e = power_law(n, params["E"], params.get("s", 1.0) * params["B"], params["alpha"])
        return np.maximum(e, MIN_ERROR)
    if form == "log_linear":
        return np.exp(params["a"] + params["c"] * np.log(n))
    return np.full(n.shape, np.nan)


# --------------------------------------------------------------------------------------------
# Direction, and the fit of an arm on its own in either direction
# --------------------------------------------------------------------------------------------


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


def _solo_loss_grad(theta: np.ndarray, x: np.ndarray, logy: np.ndarray, s: float) -> tuple[float, np.ndarray]:
    """Huber on log residuals of log e = e_ + log(1 + s u exp(-alpha x)), x = log N - log N_min."""
    alpha, e_, u = theta
    q = np.exp(-alpha * x)
    h = 1.0 + s * u * q
    r = e_ + np.log(h) - logy
    loss, dr = _huber(r)
    grad = np.array([-s * u * float(np.sum(dr * x * q / h)), float(np.sum(dr)), s * float(np.sum(dr * q / h))])
    return loss, grad


def _solo_start(x: np.ndarray, logy: np.ndarray, s: float, alpha: float, u: float) -> np.ndarray:
    """A starting point: e_ is the median shift that puts the curve through the points."""
    return np.array([alpha, float(np.median(logy - np.log(1.0 + s * u * np.exp(-alpha * x)))), u])


def _solo_grid(x: np.ndarray, logy: np.ndarray, s: float, alphas: np.ndarray, e_max: float
               ) -> tuple[np.ndarray, float]:
    """Fallback: scan alpha and u, e_ the median log shift (the L1 optimum), keep the best."""
    umax = SOLO_U_MAX[int(s)]
    us = np.linspace(0.0, umax, 101) if s < 0 else np.concatenate([[0.0], np.geomspace(1e-4, umax, 100)])
    logh = np.log(1.0 + s * us[None, :, None] * np.exp(-alphas[:, None, None] * x[None, None, :]))
    base = logy[None, None, :] - logh
    e_ = np.minimum(np.median(base, axis=-1), e_max)
    a = np.abs(e_[..., None] - base)
    loss = np.where(a <= HUBER_DELTA, 0.5 * a * a, HUBER_DELTA * (a - 0.5 * HUBER_DELTA)).sum(axis=-1) / HUBER_DELTA
    i, j = np.unravel_index(int(np.argmin(loss)), loss.shape)
    return np.array([float(alphas[i]), float(e_[i, j]), float(us[j])]), float(loss[i, j])


def _fit_solo(sizes: np.ndarray, errors: np.ndarray, s: float, log_nmin: float, alpha: float | None,
              warm: np.ndarray | None = None, full_starts: bool = True,
              max_error: float = math.inf) -> _SoloFit:
    """Fit one arm's curve in direction s; alpha fixed when given (borrowed), else free in bounds.

    Parametrised as E = exp(e_), B N^-alpha = u E (N / N_min)^-alpha with N_min the study's
    smallest size, so u < 1 keeps a worsening curve positive over every size the study reads.
    `max_error` caps E, the ceiling a worsening curve rises toward (1 for 1 - score).
    """
    x = np.log(np.asarray(sizes, dtype=float)) - log_nmin
    logy = np.log(np.clip(np.asarray(errors, dtype=float), MIN_ERROR, None))
    e_max = min(float(logy.max()) + 5.0, math.log(max_error))
    bounds = [(alpha, alpha) if alpha is not None else ALPHA_BOUNDS, (-30.0, e_max), (0.0, SOLO_U_MAX[int(s)])]
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    grid = [_solo_start(x, logy, s, a, u) for a in (START_ALPHAS if alpha is None else (alpha,))
            for u in SOLO_START_U[int(s)]]

    def best_of(starts: list[np.ndarray]) -> tuple[np.ndarray, float] | None:
        best = None
        for st in starts:
            res = minimize(_solo_loss_grad, np.clip(st, lo, hi), args=(x, logy, s), jac=True,
                           method="L-BFGS-B", bounds=bounds, options={"maxiter": 1000})
            if res.success and np.all(np.isfinite(res.x)) and (best is None or res.fun < best[1] - 1e-12):
                best = (res.x, float(res.fun))
        return best

    warm_only = warm is not None and not full_starts
    best = best_of([warm] if warm_only else ([warm] if warm is not None else []) + grid)
    if best is None and warm_only:
        best = best_of(grid)  # the warm start alone failed on this replicate: try the grid first
    converged = best is not None
    if best is None:
        best = _solo_grid(x, logy, s, np.array([alpha]) if alpha is not None else FALLBACK_ALPHAS, e_max)
    theta, loss = best
    a, e_, u = (float(v) for v in theta)
    E = math.exp(e_)
    return _SoloFit(a, E, u * E * math.exp(a * log_nmin), s, converged, "lbfgsb" if converged else "grid", loss,
                    np.asarray(theta, dtype=float))


# --------------------------------------------------------------------------------------------
# A study: forms, sharing, bootstrap, backtest, flags
# --------------------------------------------------------------------------------------------


@dataclass
class StudyFit:
    """All arms' fits for one metric, plus the bootstrap that gives their intervals.

    `boot` holds, per replicate (row) and fitted arm (column), the predicted metric at the target
    size; ranking reads P(best) from it. `boot_params` keeps each replicate's curve parameters
    (columns as in `param_names`; a power law's direction s is the arm's, in its `params`) so that
    bands can be drawn at any size.
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
        vals = np.stack([_error_curve(f.form, {**f.params, **dict(zip(names, row))}, n) for row in reps])
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
    direction: Direction

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


@dataclass
class _Plan:
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


def _plan(arms: list[_Arm], mode: str, log_nmin: float, max_error: float) -> _Plan:
    pl = [a for a in arms if a.form == "power_law"]
    improving = [a for a in pl if a.direction == "improving"]
    solos = [a for a in pl if a.direction != "improving"]
    if mode == "alpha" and improving:
        return _Plan([improving], solos, True, log_nmin, max_error)
    return _Plan([[a] for a in improving], solos, False, log_nmin, max_error)


@dataclass
class _Fits:
    """The fits of one pass over the data: per improving group, and per solo arm."""

    groups: dict[int, _GroupFit]
    solos: dict[str, _SoloFit]


def _params_from_group(g: _GroupFit, i: int) -> dict[str, float]:
    return {"E": float(g.E[i]), "B": float(g.B[i]), "alpha": float(g.alpha), "s": 1.0}


def _fit_arms(arms: list[_Arm], plan: _Plan, data: dict[str, tuple[np.ndarray, np.ndarray]],
              warm: _Fits | None, full_starts: bool) -> tuple[dict[str, dict[str, float]], _Fits]:
    """Fit every arm with its form on the given (sizes, errors); returns params per arm and the fits."""
    params: dict[str, dict[str, float]] = {}
    fits = _Fits({}, {})
    for gi, group in enumerate(plan.groups):
        d = _make_data([data[a.name][0] for a in group], [data[a.name][1] for a in group])
        warm_start = [_warm_theta(warm.groups[gi], d.log_n0)] if warm is not None and gi in warm.groups else []
        few_starts = bool(warm_start) and not full_starts
        g = _fit_group(d, warm_start if few_starts else warm_start + _grid_starts(d))
        if few_starts and not g.converged:
            # The warm start alone failed on this replicate: try the full grid before falling back.
            g = _fit_group(d, warm_start + _grid_starts(d))
        fits.groups[gi] = g
        for i, a in enumerate(group):
            params[a.name] = _params_from_group(g, i)
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
            aa, c = fit_log_linear(s, e)
            params[a.name] = {"a": aa, "c": c}
    return params, fits


def _resample(arm: _Arm, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Resample an arm's (size, seed) points with replacement, keeping at least two distinct sizes."""
    n = len(arm.sizes)
    for _ in range(MAX_REDRAWS):
        idx = rng.integers(0, n, n)
        if len(np.unique(arm.sizes[idx])) >= 2:
            return arm.sizes[idx], arm.errors[idx]
    return arm.sizes, arm.errors


def _bootstrap(arms: list[_Arm], plan: _Plan, full: _Fits, n_boot: int, seed: int, target_size: int,
               higher_is_better: bool) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Refit on resampled points; each arm keeps the direction read from all its points."""
    fitted = [a for a in arms if a.form != "none"]
    if n_boot <= 0 or not fitted:
        return pd.DataFrame(columns=[a.name for a in fitted], dtype=float), {}
    rng = np.random.default_rng(seed)
    preds = np.full((n_boot, len(fitted)), np.nan)
    reps = {a.name: np.full((n_boot, len(StudyFit.param_names(a.form))), np.nan) for a in fitted}
    for r in range(n_boot):
        data = {a.name: _resample(a, rng) for a in fitted}
        try:
            params, _ = _fit_arms(arms, plan, data, warm=full, full_starts=False)
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            continue  # a failed replicate stays NaN and is left out of the percentiles
        for j, a in enumerate(fitted):
            p = params[a.name]
            reps[a.name][r] = [p[k] for k in StudyFit.param_names(a.form)]
            preds[r, j] = from_error(_error_curve(a.form, p, [target_size]), higher_is_better)[0]
    boot = pd.DataFrame(preds, columns=[a.name for a in fitted])
    boot.index.name = "replicate"
    return boot, reps


def _backtest(arm: _Arm, plan: _Plan, full: _Fits, higher_is_better: bool) -> tuple[Backtest | None, str | None]:
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
        d = _make_data([a.sizes[keep] if a.name == arm.name else a.sizes for a in group],
                       [a.errors[keep] if a.name == arm.name else a.errors for a in group])
        g = _fit_group(d, [_warm_theta(full.groups[gi], d.log_n0)] + _backtest_starts(d))
        i = [a.name for a in group].index(arm.name)
        form, params = "power_law", _params_from_group(g, i)
    elif solo and (plan.borrow or len(distinct) - 1 >= 3):
        # The improving arms' exponent does not depend on this arm's points: borrow the full fit's.
        alpha = full.groups[0].alpha if plan.borrow else None
        f = _fit_solo(arm.sizes[keep], arm.errors[keep], SIGN[arm.direction], plan.log_nmin, alpha,
                      full.solos[arm.name].theta, max_error=plan.max_error)
        form, params = "power_law", f.params()
    elif not solo and len(distinct) - 1 >= 3:
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


def _at_bound(alpha: float) -> bool:
    return alpha <= ALPHA_BOUNDS[0] + BOUND_TOLERANCE or alpha >= ALPHA_BOUNDS[1] - BOUND_TOLERANCE


def _own_alphas(group: list[_Arm]) -> dict[str, float]:
    """Each arm's exponent fitted on its own points alone (asked when a shared one is on a bound)."""
    out = {}
    for a in group:
        d = _make_data([a.sizes], [a.errors])
        out[a.name] = _fit_group(d, _grid_starts(d)).alpha
    return out


def _exponent_notes(arm: _Arm, plan: _Plan, full: _Fits, own_cache: dict[int, dict[str, float]]
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
        return False, [f"the shared exponent alpha={g.alpha:.3g} sits on its bound, set there by "
                       f"{', '.join(pushers)}; {arm.name}'s own points alone give alpha={own[arm.name]:.2f}, "
                       f"so its prediction leans on the others' curve shape"]
    f = full.solos[arm.name]
    notes = []
    if plan.borrow:
        notes.append(f"exponent alpha={f.alpha:.3g} borrowed from the improving arms' fit; "
                     f"this arm's points set its E and B only")
    if not f.converged:
        return True, notes + [DEGENERATE_GRID_NOTE]
    if not plan.borrow and _at_bound(f.alpha) and f.theta[2] >= FLAT_RELATIVE_IMPROVEMENT:
        return True, notes + [DEGENERATE_BOUND_NOTE.format(alpha=f.alpha)]
    return False, notes


def _flags(arm: _Arm, fit: Fit, target_size: int, higher_is_better: bool,
           degenerate: tuple[bool, list[str]] | None) -> None:
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
    if arm.direction == "worsening":
        fit.flags.append("no_improvement")
        how = (f"fitted as e = E - B*N^-alpha, the error rising toward E={fit.params['E']:.3g}"
               if fit.form == "power_law" else "the log-linear fit rises with size")
        fit.notes.append(f"no improvement with size: the metric gets worse as the size grows (worsening); {how}")
    elif not improved or flat:
        fit.flags.append("no_improvement")
        why = "the metric at the largest size is no better than at the smallest" if not improved \
            else "the fitted curve is flat over the measured sizes"
        fit.notes.append(f"no improvement with size: {why}")
    if degenerate is not None:
        is_degenerate, notes = degenerate
        if is_degenerate:
            fit.flags.append("degenerate")
        fit.notes.extend(notes)


def fit_study(points: pd.DataFrame, *, metric: str, higher_is_better: bool, target_size: int,
              n_boot: int = 200, seed: int = 0, shared: str = "auto") -> StudyFit:
    """Fit every arm of a study on one metric and predict it at `target_size`.

    `points` has columns arm, size, seed, value (one row per finished run; NaN values are
    dropped). Each arm's direction (improving, worsening, flat) is read from its points. Arms
    with 3+ sizes get a power law e = E + s B N^-alpha; with fewer than 4 sizes per arm ("auto")
    the improving ones share alpha, so that 3 sizes still leave degrees of freedom, and the
    worsening and flat ones are fitted alone with that alpha. 2 sizes get a log-linear fit,
    1 size none. Intervals are the 5th-95th percentiles over `n_boot` bootstrap replicates.
    """
    df = clean_points(points)
    arms: list[_Arm] = []
    for name, g in df.groupby("arm", sort=True):
        vals = g["value"].to_numpy(dtype=float)
        sizes = g["size"].to_numpy(dtype=float)
        errors = to_error(vals, higher_is_better)
        arms.append(_Arm(str(name), sizes, errors, vals, _form_for(len(np.unique(sizes))),
                         trend_direction(sizes, errors)))
    mode = _resolve_shared(shared, arms)
    # 1 - score cannot pass 1, so a worsening score's error rises at most to 1; a loss has no ceiling.
    plan = _plan(arms, mode, float(np.log(df["size"].min())) if len(df) else 0.0,
                 1.0 if higher_is_better else math.inf)
    data = {a.name: (a.sizes, a.errors) for a in arms}
    with _single_threaded_blas():
        params, full = _fit_arms(arms, plan, data, warm=None, full_starts=True)
        boot, reps = _bootstrap(arms, plan, full, n_boot, seed, target_size, higher_is_better)
        backtests = {a.name: _backtest(a, plan, full, higher_is_better) for a in arms if a.form != "none"}
        own_cache: dict[int, dict[str, float]] = {}
        degenerate = {a.name: _exponent_notes(a, plan, full, own_cache) for a in arms if a.form == "power_law"}

    fits: dict[str, Fit] = {}
    study = StudyFit(metric, higher_is_better, int(target_size), mode, int(n_boot), int(seed), fits, boot, reps)
    for a in arms:
        if a.form == "none":
            fit = Fit(a.name, "none", {}, [], None, None, [], [NO_FIT_NOTE], False)
            _flags(a, fit, target_size, higher_is_better, None)
            fits[a.name] = fit
            continue
        gi = plan.group_of(a.name)
        if gi is not None:
            converged = full.groups[gi].converged
        else:
            converged = full.solos[a.name].converged if a.name in full.solos else True
        gsize = len(plan.groups[gi]) if gi is not None else 1
        shared_params = ["alpha"] if gsize > 1 else []
        fit = Fit(a.name, a.form, params[a.name], shared_params, None, None, [], [], converged, a.direction)
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
            fit.notes.append(f"exponent alpha shared across {gsize} improving arms{why}")
        _flags(a, fit, target_size, higher_is_better, degenerate.get(a.name))
    return study
