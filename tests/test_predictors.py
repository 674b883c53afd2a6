"""Predictors chosen by backtest, and intervals calibrated on the backtests' errors (core.predictors)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.predictors import PREDICTORS, backtest, choose


def _points(values: dict[str, list[float]], sizes=(100, 200, 400)) -> pd.DataFrame:
    return pd.DataFrame(
        [{"arm": arm, "size": n, "seed": 0, "value": v} for arm, vs in values.items() for n, v in zip(sizes, vs)]
    )


def _choose(points, target=3200):
    return choose(points, metric="acc", higher_is_better=True, target_size=target, exposure=None)


def test_a_curve_that_keeps_rising_is_backtested_right_where_the_plain_ranking_is_wrong():
    # a rises fast and passes b at 400; the plain ranking at 200 still has b ahead.
    points = _points({"a": [0.40, 0.50, 0.60], "b": [0.52, 0.54, 0.56], "baseline": [0.45, 0.47, 0.49]})
    plain = backtest(PREDICTORS["plain"], points, metric="acc", higher_is_better=True, exposure=None)
    law = backtest(PREDICTORS["shared_law"], points, metric="acc", higher_is_better=True, exposure=None)
    assert (plain.pairs_right, plain.pairs) == (0, 1) and (law.pairs_right, law.pairs) == (1, 1)
    assert plain.folds == ["100-200 -> 400"]
    choice = _choose(points)
    assert choice.used == "shared_law"
    assert choice.reason.startswith("best backtest: 1/1 candidate pairs ordered right")
    assert set(choice.scores) == {
        "shared_law",
        "log_linear",
        "shared_law_nominal",
        "plain",
    }  # per-arm law needs 4 sizes
    assert choice.predicted["plain"] == {"a": 0.60, "b": 0.56, "baseline": 0.49}


def test_saturated_curves_choose_the_plain_ranking_on_its_smaller_error_with_four_sizes():
    # Both saturate faster than any exponent the laws allow (error ~ N^-2): the laws overshoot at 800.
    sizes = (100, 200, 400, 800)
    points = _points(
        {"a": [0.5 - 0.2 * (100 / n) ** 2 for n in sizes], "b": [0.48 - 0.2 * (100 / n) ** 2 for n in sizes]}, sizes
    )
    choice = _choose(points)
    assert choice.used == "plain"
    s = choice.scores["plain"]
    assert s.pairwise == 1.0 and s.mean_abs_error < choice.scores["shared_law"].mean_abs_error


def test_with_three_sizes_the_error_of_a_straight_line_backtest_does_not_unseat_the_law():
    points = _points({"a": [0.40, 0.50, 0.51], "b": [0.45, 0.49, 0.50]})
    choice = _choose(points)
    assert choice.scores["plain"].mean_abs_error == pytest.approx(0.01)
    assert choice.scores["shared_law"].mean_abs_error > 0.05  # both order the pair right
    assert choice.used == "shared_law"


def test_four_sizes_add_the_per_arm_law_and_a_second_fold():
    sizes = (100, 200, 400, 800)
    values = {arm: [1 - (0.2 + b * n**-0.5) for n in sizes] for arm, b in (("a", 2.0), ("b", 3.0), ("c", 4.0))}
    choice = _choose(_points(values, sizes))
    assert "per_arm_law" in choice.scores
    assert choice.scores["shared_law"].folds == ["100-200-400 -> 800", "100-200 -> 800"]
    assert choice.scores["shared_law"].pairwise == 1.0


def test_two_sizes_cannot_be_backtested_and_use_the_default():
    choice = _choose(_points({"a": [0.4, 0.5], "b": [0.45, 0.48]}, sizes=(100, 200)))
    assert choice.used == "shared_law" and "too few sizes to backtest" in choice.reason
    assert all(s is None for s in choice.scores.values())


def test_intervals_at_the_target_cover_the_backtest_error_scaled_by_the_extrapolation():
    rng = np.random.default_rng(0)
    values = {
        arm: [1 - (0.2 + b * n**-0.5) + rng.normal(0, 0.02) for n in (100, 200, 400)]
        for arm, b in (("a", 2.0), ("b", 3.0), ("c", 4.0), ("baseline", 5.0))
    }
    points = _points(values)
    choice = _choose(points)
    score = choice.scores[choice.used]
    calibration = score.calibration(points, True)
    # The level's quantile of the four arms' errors, each over log(400/200) ** 0.75 (one fold); all four
    # arms improve, so their own group's quantile is the same as the one over all arms.
    unit = [e[0] / math.log(2) ** 0.75 for e in score.errors.values()]
    assert sorted(e for _, e in score.per_unit) == pytest.approx(sorted(unit))
    assert calibration.per_unit["improving"][0.9] == pytest.approx(np.quantile(unit, 0.9))
    assert calibration.per_unit[""] == calibration.per_unit["improving"]
    assert calibration.per_unit[""][0.8] < calibration.per_unit[""][0.9]
    fit = PREDICTORS[choice.used].fit(
        points, metric="acc", higher_is_better=True, target_size=3200, n_boot=50, exposure=None, calibration=calibration
    )
    for arm in values:
        p = fit.fits[arm].prediction
        half = calibration.per_unit[""][0.9] * math.log(3200 / 400) ** 0.75
        assert p.low <= max(p.value - half, 0.0) + 1e-9 and p.high >= min(p.value + half, 1.0) - 1e-9
        assert p.low <= p.low_80 <= p.value <= p.high_80 <= p.high


def test_a_collapsing_arm_does_not_widen_the_bands_of_the_improving_ones():
    """Errors are pooled by direction: an off-domain arm's large backtest error stays in its own group."""
    sizes = (100, 200, 400)
    values = {arm: [1 - (0.2 + b * n**-0.5) for n in sizes] for arm, b in (("a", 2.0), ("b", 3.0), ("baseline", 4.0))}
    values["off"] = [0.5, 0.3, 0.05]  # falls faster than the line through 100 and 200 says
    points = _points(values)
    score = _choose(points).scores["shared_law"]
    calibration = score.calibration(points, True)
    assert calibration.group_of == {"a": "improving", "b": "improving", "baseline": "improving", "off": "worsening"}
    assert "worsening" not in calibration.per_unit  # one worsening arm: too few for a group of its own
    improving = [e for arm, e in score.per_unit if arm != "off"]
    assert calibration.per_unit["improving"][0.9] == pytest.approx(np.quantile(improving, 0.9))
    assert calibration.per_unit["improving"][0.9] < calibration.per_unit[""][0.9] / 2
