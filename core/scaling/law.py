"""Curve forms: the shapes a scaling law takes, each with its parameters and the coordinates it is fitted in.

A form says how the fitted error moves with the mixture size N (`error`), which parameters a
bootstrap replicate varies (`param_names`) and how many distinct sizes it needs. The power law is
fitted in two coordinate systems (see docs/SCALING.md): arms sharing one exponent, and one arm on
its own anchored at the study's smallest size. Each gives log residuals with their gradient,
starting points, bounds and a grid fallback; core.scaling.optimize does the rest. A new curve
form is one new object here.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from core.scaling.optimize import huber

MIN_ERROR = 1e-6
ALPHA_BOUNDS = (0.0, 1.0)
# Starting grid: exponents, and E as a fraction of the arm's smallest error (shared fits).
START_ALPHAS = (0.1, 0.3, 0.6, 0.9)
START_E_FRACTIONS = (1e-3, 0.5, 0.9)
# Grid for the fallback search over alpha.
FALLBACK_ALPHAS = np.linspace(ALPHA_BOUNDS[0], ALPHA_BOUNDS[1], 201)
# Anchored fits: u = B * N_min^-alpha / E, the curve's distance from E at the study's smallest size
# as a fraction of E, per direction s. A worsening curve needs u < 1 to stay positive.
ANCHORED_U_MAX = {-1: 0.999, 1: 1e6}
ANCHORED_START_U = {-1: (0.05, 0.3, 0.7), 1: (0.01, 0.3, 3.0)}


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


class CurveForm(ABC):
    """A family of curves e(N); `param_names` are the parameters a bootstrap replicate varies."""

    name: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]]
    min_sizes: ClassVar[int]

    @abstractmethod
    def error(self, params: dict[str, float], sizes: Any) -> np.ndarray:
        """The curve's error at `sizes`."""


class NoCurve(CurveForm):
    """One size: nothing to fit; the curve is NaN everywhere."""

    name = "none"
    param_names = ()
    min_sizes = 1

    def error(self, params: dict[str, float], sizes: Any) -> np.ndarray:
        return np.full(np.asarray(sizes, dtype=float).shape, np.nan)


class LogLinear(CurveForm):
    """log e = a + c log N: a straight line in log-log space, all that two sizes support."""

    name = "log_linear"
    param_names = ("a", "c")
    min_sizes = 2

    def error(self, params: dict[str, float], sizes: Any) -> np.ndarray:
        return np.exp(params["a"] + params["c"] * np.log(np.asarray(sizes, dtype=float)))

    def fit(self, sizes: Any, errors: Any) -> dict[str, float]:
        logn = np.log(np.asarray(sizes, dtype=float))
        loge = np.log(np.clip(np.asarray(errors, dtype=float), MIN_ERROR, None))
        c, a = np.polyfit(logn, loge, 1)
        return {"a": float(a), "c": float(c)}


@dataclass
class GroupPoints:
    """Points of arms fitted with one shared exponent, arm k's rows marked by arm == k.

    x is log N centred on log_n0: centring decorrelates b_ and alpha, which L-BFGS-B needs to
    move along the valley.
    """

    x: np.ndarray
    logy: np.ndarray
    arm: np.ndarray
    k: int
    log_n0: float

    @classmethod
    def of(cls, sizes_per_arm: list[np.ndarray], errors_per_arm: list[np.ndarray]) -> GroupPoints:
        sizes = np.concatenate([np.asarray(s, dtype=float) for s in sizes_per_arm])
        errors = np.concatenate([np.asarray(e, dtype=float) for e in errors_per_arm])
        arm = np.concatenate([np.full(len(s), i, dtype=np.intp) for i, s in enumerate(sizes_per_arm)])
        log_n0 = float(np.mean(np.log(np.unique(sizes))))
        return cls(np.log(sizes) - log_n0, np.log(np.clip(errors, MIN_ERROR, None)), arm, len(sizes_per_arm), log_n0)


@dataclass
class AnchoredPoints:
    """One arm's points, x = log N - log N_min with N_min the study's smallest size; s its direction."""

    x: np.ndarray
    logy: np.ndarray
    s: float

    @classmethod
    def of(cls, sizes: np.ndarray, errors: np.ndarray, s: float, log_nmin: float) -> AnchoredPoints:
        x = np.log(np.asarray(sizes, dtype=float)) - log_nmin
        return cls(x, np.log(np.clip(np.asarray(errors, dtype=float), MIN_ERROR, None)), s)


class PowerLaw(CurveForm):
    """e(N) = E + s B N^-alpha with B >= 0: s = +1 falls toward the floor E, s = -1 rises toward the ceiling E."""

    name = "power_law"
    param_names = ("E", "B", "alpha")
    min_sizes = 3

    def error(self, params: dict[str, float], sizes: Any) -> np.ndarray:
        """The fitted error at `sizes`; a worsening curve read below the study's sizes stays > 0."""
        n = np.asarray(sizes, dtype=float)
        e = params["E"] + params.get("s", 1.0) * params["B"] * n ** (-params["alpha"])
        return np.maximum(e, MIN_ERROR)

    # Shared exponent: theta = [alpha, e_1..e_K, b_1..b_K], pred_k = exp(e_k) + exp(b_k - alpha x).

    def shared_residuals(self, theta: np.ndarray, d: GroupPoints):
        """log pred - log obs, and the map from d(loss)/d(residual) to d(loss)/d(theta)."""
        k = d.k
        t1 = theta[1 : 1 + k][d.arm]
        t2 = theta[1 + k :][d.arm] - theta[0] * d.x
        pred = np.logaddexp(t1, t2)

        def vjp(dr: np.ndarray) -> np.ndarray:
            w_e = np.exp(t1 - pred)
            w_b = np.exp(t2 - pred)
            grad = np.empty_like(theta)
            grad[0] = -float(np.sum(dr * w_b * d.x))
            grad[1 : 1 + k] = np.bincount(d.arm, dr * w_e, k)
            grad[1 + k :] = np.bincount(d.arm, dr * w_b, k)
            return grad

        return pred - d.logy, vjp

    def shared_bounds(self, d: GroupPoints) -> list[tuple[float, float]]:
        top = float(d.logy.max())
        return [ALPHA_BOUNDS] + [(-30.0, top + 1.0)] * d.k + [(-30.0, top + 5.0)] * d.k

    def shared_start(self, d: GroupPoints, alpha: float, e_fraction: float) -> np.ndarray:
        """E_k a fraction of arm k's smallest error, b_k fitted given alpha and E_k."""
        e = np.empty(d.k)
        b = np.empty(d.k)
        for i in range(d.k):
            m = d.arm == i
            y = np.exp(d.logy[m])
            E = e_fraction * y.min()
            e[i] = math.log(max(E, 1e-12))
            b[i] = float(np.mean(np.log(np.maximum(y - E, 1e-3 * y)) + alpha * d.x[m]))
        return np.concatenate([[alpha], e, b])

    def shared_starts(self, d: GroupPoints) -> list[np.ndarray]:
        return [self.shared_start(d, a, f) for a in START_ALPHAS for f in START_E_FRACTIONS]

    def shared_theta(self, alpha: float, E: np.ndarray, B: np.ndarray, log_n0: float) -> np.ndarray:
        """Coordinates of (alpha, E_k, B_k) for points centred on log_n0 (a warm start)."""
        log_e, log_b = np.log(np.clip(E, 1e-12, None)), np.log(np.clip(B, 1e-12, None))
        return np.concatenate([[alpha], log_e, log_b - alpha * log_n0])

    def shared_params(self, theta: np.ndarray, d: GroupPoints) -> tuple[float, np.ndarray, np.ndarray]:
        """(alpha, E_k, B_k); b_ was fitted against centred log N: B N^-alpha = exp(b_ - alpha (log N - log n0))."""
        alpha = float(theta[0])
        return alpha, np.exp(theta[1 : 1 + d.k]), np.exp(theta[1 + d.k :] + alpha * d.log_n0)

    def shared_grid(self, d: GroupPoints) -> tuple[np.ndarray, float]:
        """Fallback: scan alpha, solve E_k, B_k >= 0 per arm in closed form, keep the best alpha."""
        alphas = FALLBACK_ALPHAS[:, None]
        total = np.zeros(len(FALLBACK_ALPHAS))
        Es, Bs = [], []
        for i in range(d.k):
            m = d.arm == i
            y = np.exp(d.logy[m])
            x = np.exp(-alphas * (d.x[m] + d.log_n0)[None, :])  # (grid, points)
            E, B = _nonnegative_pair(np.broadcast_to(1.0 / y, x.shape), x / y)
            pred = E[:, None] + B[:, None] * x
            total += huber(np.log(np.clip(pred, 1e-300, None)) - d.logy[m][None, :], axis=-1)[0]
            Es.append(E)
            Bs.append(B)
        j = int(np.argmin(total))
        alpha = float(FALLBACK_ALPHAS[j])
        theta = self.shared_theta(alpha, np.array([e[j] for e in Es]), np.array([b[j] for b in Bs]), d.log_n0)
        return theta, float(total[j])

    # Anchored: theta = [alpha, e_, u], log e = e_ + log(1 + s u exp(-alpha x)), E = exp(e_).

    def anchored_residuals(self, theta: np.ndarray, d: AnchoredPoints):
        alpha, e_, u = theta
        q = np.exp(-alpha * d.x)
        h = 1.0 + d.s * u * q

        def vjp(dr: np.ndarray) -> np.ndarray:
            return np.array(
                [-d.s * u * float(np.sum(dr * d.x * q / h)), float(np.sum(dr)), d.s * float(np.sum(dr * q / h))]
            )

        return e_ + np.log(h) - d.logy, vjp

    def anchored_bounds(self, d: AnchoredPoints, alpha: float | None, e_max: float) -> list[tuple[float, float]]:
        """alpha fixed when given (borrowed); e_max caps E, the ceiling a worsening curve rises toward."""
        return [(alpha, alpha) if alpha is not None else ALPHA_BOUNDS, (-30.0, e_max), (0.0, ANCHORED_U_MAX[int(d.s)])]

    def anchored_starts(self, d: AnchoredPoints, alpha: float | None) -> list[np.ndarray]:
        """e_ is the median shift that puts the curve through the points."""
        return [
            np.array([a, float(np.median(d.logy - np.log(1.0 + d.s * u * np.exp(-a * d.x)))), u])
            for a in (START_ALPHAS if alpha is None else (alpha,))
            for u in ANCHORED_START_U[int(d.s)]
        ]

    def anchored_grid(self, d: AnchoredPoints, alpha: float | None, e_max: float) -> tuple[np.ndarray, float]:
        """Fallback: scan alpha and u, e_ the median log shift (the L1 optimum), keep the best."""
        alphas = np.array([alpha]) if alpha is not None else FALLBACK_ALPHAS
        umax = ANCHORED_U_MAX[int(d.s)]
        us = np.linspace(0.0, umax, 101) if d.s < 0 else np.concatenate([[0.0], np.geomspace(1e-4, umax, 100)])
        logh = np.log(1.0 + d.s * us[None, :, None] * np.exp(-alphas[:, None, None] * d.x[None, None, :]))
        base = d.logy[None, None, :] - logh
        e_ = np.minimum(np.median(base, axis=-1), e_max)
        loss = huber(e_[..., None] - base, axis=-1)[0]
        i, j = np.unravel_index(int(np.argmin(loss)), loss.shape)
        return np.array([float(alphas[i]), float(e_[i, j]), float(us[j])]), float(loss[i, j])

    def anchored_params(self, theta: np.ndarray, s: float, log_nmin: float) -> dict[str, float]:
        a, e_, u = (float(v) for v in theta)
        E = math.exp(e_)
        return {"E": E, "B": u * E * math.exp(a * log_nmin), "alpha": a, "s": s}


def _nonnegative_pair(w: np.ndarray, xw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


POWER_LAW = PowerLaw()
LOG_LINEAR = LogLinear()
NO_CURVE = NoCurve()
FORMS: dict[str, CurveForm] = {f.name: f for f in (POWER_LAW, LOG_LINEAR, NO_CURVE)}
