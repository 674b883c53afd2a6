"""Each metric's signal-to-noise ratio across a study's arms, and which metric to rank on.

Signal and Noise (Heineman et al., 2025): a metric decides well when the spread between candidates
(signal) is large against the run-to-run noise. Signal here is the standard deviation of the arms'
seed-mean values at the largest size every arm measured; noise is the standard deviation across
seeds of one (arm, size), pooled, or, with a single seed, the scatter of the points around their
fitted curves. Both are in the metric's units, so the ratio compares metrics with each other.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.scaling import StudyFit, clean_points, json_float

RECOMMEND_BELOW = 0.5  # recommend another metric when the primary's SNR is under half of the best one's


def signal_to_noise(points: pd.DataFrame, study_fit: StudyFit | None) -> dict[str, Any]:
    """{"signal", "noise", "snr", "noise_from", "size"} of one metric's points (None where unknown)."""
    df = clean_points(points)
    out: dict[str, Any] = {"signal": None, "noise": None, "snr": None, "noise_from": None, "size": None}
    if df.empty or df["arm"].nunique() < 2:
        return out
    common = set.intersection(*(set(g["size"]) for _, g in df.groupby("arm")))
    if common:
        size = max(common)
        at = df[df["size"] == size]
        out["size"] = int(size)
    else:  # no size all arms share: each arm's largest
        at = df[df["size"] == df.groupby("arm")["size"].transform("max")]
    means = at.groupby("arm")["value"].mean().to_numpy(dtype=float)
    out["signal"] = json_float(np.std(means, ddof=1))
    noise, source = _seed_noise(df)
    if noise is None and study_fit is not None:
        noise, source = _fit_noise(df, study_fit)
    out["noise"], out["noise_from"] = json_float(noise), source
    if noise is not None and noise > 0 and out["signal"] is not None:
        out["snr"] = json_float(out["signal"] / noise)
    return out


def _seed_noise(df: pd.DataFrame) -> tuple[float | None, str | None]:
    """The pooled standard deviation across seeds of each (arm, size) with two or more seeds."""
    groups = [g.to_numpy(dtype=float) for _, g in df.groupby(["arm", "size"])["value"] if len(g) >= 2]
    dof = sum(len(g) - 1 for g in groups)
    if not dof:
        return None, None
    return float(np.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / dof)), "seeds"


def _fit_noise(df: pd.DataFrame, study_fit: StudyFit) -> tuple[float | None, str | None]:
    """The root-mean-square distance of the points from their arms' fitted curves."""
    residuals = []
    for arm, g in df.groupby("arm"):
        fit = study_fit.fits.get(str(arm))
        if fit is None or fit.form == "none":
            continue
        residuals.append(g["value"].to_numpy(dtype=float) - study_fit.predict(str(arm), g["size"].to_numpy()))
    if not residuals:
        return None, None
    r = np.concatenate(residuals)
    r = r[np.isfinite(r)]
    return (float(np.sqrt(np.mean(r**2))), "fit residuals") if len(r) else (None, None)


def recommendation(by_metric: dict[str, dict[str, Any]], primary: str) -> str | None:
    """A sentence recommending the metric with the highest SNR when the primary one is much noisier."""
    known = {m: s["snr"] for m, s in by_metric.items() if s.get("snr") is not None}
    if primary not in known or len(known) < 2:
        return None
    best = max(known, key=known.get)
    if best == primary or known[primary] >= RECOMMEND_BELOW * known[best]:
        return None
    return (
        f"{primary} is noisy here (signal-to-noise {known[primary]:.1f}, against {known[best]:.1f} for {best}): "
        f"the ranking by {best} is the more reliable one; set primary_metric: {best} to rank on it"
    )
