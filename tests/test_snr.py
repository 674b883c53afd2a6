"""Signal-to-noise per metric (core.snr) on points whose spread and noise are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.scaling import fit_study
from core.snr import recommendation, signal_to_noise


def _points(arm_values: dict[str, float], seed_offsets: list[float], sizes=(100, 200, 400)) -> pd.DataFrame:
    """Each arm flat at its value, plus a per-seed offset: the seeds' spread is the noise."""
    rows = [
        {"arm": arm, "size": n, "seed": s, "value": v + off}
        for arm, v in arm_values.items()
        for n in sizes
        for s, off in enumerate(seed_offsets)
    ]
    return pd.DataFrame(rows)


def test_noise_from_seeds_and_signal_from_the_arms_spread():
    points = _points({"a": 0.5, "b": 0.6, "c": 0.7}, [-0.01, 0.01])
    out = signal_to_noise(points, None)
    assert out["size"] == 400 and out["noise_from"] == "seeds"
    assert out["signal"] == pytest.approx(0.1)  # std of 0.5, 0.6, 0.7
    assert out["noise"] == pytest.approx(np.std([-0.01, 0.01], ddof=1))
    assert out["snr"] == pytest.approx(0.1 / np.std([-0.01, 0.01], ddof=1))


def test_one_seed_takes_the_noise_from_the_points_around_the_fitted_curves():
    rng = np.random.default_rng(0)
    rows = [
        {"arm": arm, "size": n, "seed": 0, "value": 1 - (0.2 + b * n**-0.5) + rng.normal(0, 0.01)}
        for arm, b in (("a", 2.0), ("b", 4.0), ("baseline", 6.0))
        for n in (100, 200, 400, 800)
    ]
    points = pd.DataFrame(rows)
    fit = fit_study(points, metric="acc", higher_is_better=True, target_size=3200, n_boot=0)
    out = signal_to_noise(points, fit)
    assert out["noise_from"] == "fit residuals"
    assert 0.001 < out["noise"] < 0.03 and out["snr"] == pytest.approx(out["signal"] / out["noise"])
    assert signal_to_noise(points, None)["snr"] is None  # one seed, no fit: the noise is unknown


def test_a_much_noisier_primary_metric_gets_a_recommendation():
    by_metric = {"macro_f1": {"snr": 1.0}, "gold_prob": {"snr": 4.0}, "loss": {"snr": None}}
    text = recommendation(by_metric, "macro_f1")
    assert text.startswith("macro_f1 is noisy here (signal-to-noise 1.0, against 4.0 for gold_prob)")
    assert "primary_metric: gold_prob" in text
    assert recommendation(by_metric | {"macro_f1": {"snr": 2.5}}, "macro_f1") is None  # not much noisier
    assert recommendation(by_metric, "gold_prob") is None  # the primary is the best
    assert recommendation({"macro_f1": {"snr": 1.0}}, "macro_f1") is None  # nothing to compare with
