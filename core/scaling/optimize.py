"""The one robust fit every curve uses: Huber on log residuals, multi-start L-BFGS-B, a grid fallback."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

HUBER_DELTA = 1e-3

# theta -> (residuals, vjp): vjp maps d(loss)/d(residuals) to d(loss)/d(theta).
Residuals = Callable[[np.ndarray], tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]]


def huber(r: np.ndarray, axis: int | None = None) -> tuple[np.ndarray | float, np.ndarray]:
    """Sum of Huber(r) / delta over `axis` (all when None), and its derivative in r.

    Dividing by delta keeps the objective near sum |r|, away from L-BFGS-B's absolute stopping tolerance.
    """
    a = np.abs(r)
    quad = a <= HUBER_DELTA
    loss = np.where(quad, 0.5 * r * r, HUBER_DELTA * (a - 0.5 * HUBER_DELTA)).sum(axis=axis) / HUBER_DELTA
    return (float(loss) if axis is None else loss), np.where(quad, r / HUBER_DELTA, np.sign(r))


@dataclass
class Solution:
    """Best parameters found; `converged` False means none of the starts converged and the grid was used."""

    theta: np.ndarray
    loss: float
    converged: bool


def objective(residuals: Residuals) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """theta -> (Huber loss of the residuals, its gradient): what L-BFGS-B minimizes."""

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        r, vjp = residuals(theta)
        loss, dr = huber(r)
        return loss, vjp(dr)

    return loss_grad


def best_start(
    residuals: Residuals, starts: Sequence[np.ndarray], bounds: list[tuple[float, float]]
) -> tuple[np.ndarray, float] | None:
    """Best converged L-BFGS-B result over the starts (clipped into the bounds), or None."""
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    fun = objective(residuals)
    best: tuple[np.ndarray, float] | None = None
    for s in starts:
        res = minimize(fun, np.clip(s, lo, hi), jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 1000})
        if not res.success or not np.all(np.isfinite(res.x)):
            continue
        if best is None or res.fun < best[1] - 1e-12:
            best = (res.x, float(res.fun))
    return best


def robust_fit(
    residuals: Residuals,
    start_sets: Sequence[Sequence[np.ndarray]],
    bounds: list[tuple[float, float]],
    fallback: Callable[[], tuple[np.ndarray, float]],
) -> Solution:
    """Try each set of starts in turn (e.g. a warm start, then the full grid); the grid search if none converges."""
    for starts in start_sets:
        best = best_start(residuals, starts, bounds) if len(starts) else None
        if best is not None:
            return Solution(np.asarray(best[0], dtype=float), best[1], True)
    theta, loss = fallback()
    return Solution(np.asarray(theta, dtype=float), float(loss), False)


@contextlib.contextmanager
def single_threaded_blas():
    """L-BFGS-B calls BLAS on tiny matrices; a threaded BLAS spends ~6x longer waking threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
