"""Repetition-aware predictions: repeated rows count less at the target (core.scaling.repetition)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.mixture import build_mixture
from core.scaling import POWER_LAW, fit_study, from_error
from core.scaling.repetition import R_STAR, Exposure, Sources, effective_rows
from tests.test_scaling import make_points


def test_effective_rows_counts_the_first_pass_fully_and_repeats_less():
    assert effective_rows([50, 100], 100).tolist() == [50, 100]
    # 400 rows used 5x each: R = 4 repeats beyond the first pass.
    expected = 100 + 100 * R_STAR * (1 - math.exp(-4 / R_STAR))
    assert effective_rows([500], 100)[0] == pytest.approx(expected)
    assert 100 < effective_rows([500], 100)[0] < 500
    # No amount of repetition is worth more than U (1 + R*).
    assert effective_rows([1e9], 100)[0] == pytest.approx(100 * (1 + R_STAR))
    # A smaller R* (repeats worth less) gives fewer effective rows; an infinite one none fewer.
    assert effective_rows([500], 100, r_star=2)[0] < expected
    assert effective_rows([500], 100, r_star=math.inf)[0] == 500


def test_exposure_reads_unique_rows_from_the_mixture_manifests():
    d0 = [{"text": f"d{i}", "label": "a"} for i in range(30)]
    small = [{"text": f"s{i}", "label": "a"} for i in range(20)]
    big = [{"text": f"b{i}", "label": "a"} for i in range(500)]
    results = []
    for arm, cand in (("baseline", None), ("small", small), ("big", big)):
        m = build_mixture(d0, cand, size=40, d0_share=0.25, seed=0, arm=arm)
        results.append({"arm": arm, "mixture": m.manifest()})
    exp = Exposure.from_results(results, 0.25)
    assert exp.sources == {"baseline": Sources(30), "small": Sources(30, 20), "big": Sources(30, 500)}
    # At 400 rows: 100 from D0 (30 unique), 300 from the candidate.
    assert exp.repetition("small", 400) == pytest.approx(300 / 20)
    assert exp.repetition("big", 400) == pytest.approx(300 / 500)
    assert exp.repetition("baseline", 400) == pytest.approx(400 / 30)
    eff = exp.effective_size("big", [40, 400])
    assert eff[0] == 40  # nothing repeated at 40 rows (10 of D0, 30 of the candidate)
    assert eff[1] == pytest.approx(effective_rows([100], 30)[0] + 300)
    assert exp.effective_size("unknown", [400])[0] == 400


def _two_equal_arms():
    """Two candidates measured identically at 100-400 rows; "small" has 500 unique rows, "large" 50,000."""
    points = make_points({"small": (0.2, 3.0, 0.4), "large": (0.2, 3.0, 0.4)}, [100, 200, 400], noise=0.01)
    points.loc[points["arm"] == "small", "value"] = points.loc[points["arm"] == "large", "value"].to_numpy()
    exposure = Exposure(0.3, {"small": Sources(10_000, 500), "large": Sources(10_000, 50_000)})
    return points, exposure


def test_a_candidate_repeated_at_the_target_is_predicted_below_an_equal_one_that_is_not():
    points, exposure = _two_equal_arms()
    plain = fit_study(points, metric="acc", higher_is_better=True, target_size=6400, n_boot=40)
    assert plain.fits["small"].prediction.value == pytest.approx(plain.fits["large"].prediction.value)

    aware = fit_study(points, metric="acc", higher_is_better=True, target_size=6400, n_boot=40, exposure=exposure)
    small, large = aware.fits["small"], aware.fits["large"]
    assert small.prediction.value < large.prediction.value - 1e-3
    # The large one needs no repetition: its prediction is the one made without an exposure.
    assert large.prediction.value == pytest.approx(plain.fits["large"].prediction.value, abs=1e-6)
    assert "repeated_at_target" in small.flags and "repeated_at_target" not in large.flags
    note = next(n for n in small.notes if "effective rows" in n)
    assert "8.96x" not in note and "9.0x" in note  # 4,480 candidate rows from 500 unique
    # The interval spans the doubt about R*: the curve read with R* a quarter and four times as large.
    r_low, r_high = exposure.r_star_range
    at = {
        r: from_error(POWER_LAW.error(small.params, aware.effective("small", [6400], r)), True)[0]
        for r in (r_low, r_high)
    }
    assert at[r_low] < small.prediction.value < at[r_high]
    assert small.prediction.low <= at[r_low] and small.prediction.high >= at[r_high]


def test_curves_are_read_at_nominal_sizes_and_unrepeated_sizes_are_unchanged():
    points, exposure = _two_equal_arms()
    aware = fit_study(points, metric="acc", higher_is_better=True, target_size=6400, n_boot=0, exposure=exposure)
    at_measured = aware.predict("small", [100, 400])
    assert np.allclose(at_measured, aware.predict("large", [100, 400]), atol=1e-9)
    value, low, high = aware.curve("small", [400, 6400])
    assert value[1] == pytest.approx(aware.fits["small"].prediction.value)


def test_the_bootstrap_is_paired_so_seed_noise_common_to_the_arms_cancels():
    """b is a's points plus 0.01 everywhere, under seed noise five times larger: b is best in every replicate."""
    from core.ranking import rank_arms

    offsets = {0: -0.05, 1: 0.0, 2: 0.05}
    rows = [
        {"arm": arm, "size": n, "seed": s, "value": 1 - (0.2 + 2.0 * n**-0.5) + off + lift}
        for arm, lift in (("a", 0.0), ("b", 0.01))
        for n in (100, 200, 400)
        for s, off in offsets.items()
    ]
    points = pd.DataFrame(rows)
    fit = fit_study(points, metric="acc", higher_is_better=True, target_size=3200, n_boot=100)
    p_best = {r.candidate: r.p_best for r in rank_arms(fit, points, higher_is_better=True)}
    assert p_best["b"] >= 0.99
    gap = fit.gap("b", "a")  # paired: the common seed noise cancels in the difference
    assert gap[0] == pytest.approx(0.01, abs=0.002) and 0 < gap[1] <= gap[0] <= gap[2]
