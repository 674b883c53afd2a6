"""Scaling fits on synthetic curves whose parameters are known."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from core import scaling
from core.scaling import (
    NO_FIT_NOTE,
    POWER_LAW,
    fit_power_law,
    fit_study,
    from_error,
    optimize,
    to_error,
    trend_direction,
)
from core.scaling.law import AnchoredPoints, GroupPoints


def make_points(
    curves: dict[str, tuple[float, float, float]], sizes, seeds=(0, 1), noise=0.0, higher_is_better=True, rng_seed=0
) -> pd.DataFrame:
    """Runs of arms whose error is E + B N^-alpha times lognormal noise; scores are 1 - error."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for arm, (E, B, alpha) in curves.items():
        for n in sizes:
            for s in seeds:
                e = (E + B * n**-alpha) * np.exp(rng.normal(0.0, noise)) if noise else E + B * n**-alpha
                rows.append({"arm": arm, "size": n, "seed": s, "value": 1 - e if higher_is_better else e})
    return pd.DataFrame(rows)


def make_worsening(
    curves: dict[str, tuple[float, float, float]], sizes, seeds=(0, 1), noise=0.0, higher_is_better=True, rng_seed=0
) -> pd.DataFrame:
    """Runs of arms whose error rises with size: E - B N^-alpha times lognormal noise."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for arm, (E, B, alpha) in curves.items():
        for n in sizes:
            for s in seeds:
                e = (E - B * n**-alpha) * (np.exp(rng.normal(0.0, noise)) if noise else 1.0)
                rows.append({"arm": arm, "size": n, "seed": s, "value": 1 - e if higher_is_better else e})
    return pd.DataFrame(rows)


def truth(curve, n, higher_is_better=True):
    E, B, alpha = curve
    e = E + B * n**-alpha
    return 1 - e if higher_is_better else e


# ---------------------------------------------------------------- single curve


@pytest.mark.parametrize("rng_seed", [0, 1, 2])
def test_fit_power_law_recovers_known_parameters(rng_seed):
    rng = np.random.default_rng(rng_seed)
    sizes = np.array([250, 500, 1000, 2000, 4000, 8000, 16000] * 2)
    errors = (0.2 + 5 * sizes**-0.5) * np.exp(rng.normal(0, 0.015, len(sizes)))
    fit = fit_power_law(sizes, errors)
    assert fit.converged and fit.method == "lbfgsb"
    assert fit.E == pytest.approx(0.2, abs=0.02)
    assert fit.alpha == pytest.approx(0.5, abs=0.06)
    assert fit.B == pytest.approx(5, rel=0.35)
    true_at_10x = 0.2 + 5 * 160_000**-0.5
    assert abs(fit.predict(160_000) - true_at_10x) / true_at_10x < 0.03


def test_fit_power_law_needs_two_sizes():
    with pytest.raises(ValueError, match="two or more distinct sizes"):
        fit_power_law([1000, 1000], [0.3, 0.31])


class FailedOptimizer:
    """What scipy's minimize returns when it does not converge."""

    success = False
    x = np.array([np.nan])
    fun = np.inf


def test_grid_fallback_when_optimizer_fails(monkeypatch):
    monkeypatch.setattr(optimize, "minimize", lambda *a, **k: FailedOptimizer())
    sizes = np.array([250, 500, 1000, 2000, 4000, 8000, 16000])
    fit = fit_power_law(sizes, 0.2 + 5 * sizes**-0.5)
    assert not fit.converged and fit.method == "grid"
    assert fit.alpha == pytest.approx(0.5, abs=0.02)
    assert fit.E == pytest.approx(0.2, abs=0.01)

    pts = make_points({"a": (0.2, 5, 0.5)}, [250, 1000, 4000, 16000])
    sf = fit_study(pts, metric="accuracy", higher_is_better=True, target_size=32000, n_boot=5)
    f = sf.fits["a"]
    assert not f.converged and "degenerate" in f.flags
    assert any("grid-search fallback" in n for n in f.notes)


def test_error_conversion():
    assert to_error([0.9, 1.0], True) == pytest.approx([0.1, 1e-6])
    assert to_error([2.5], False) == pytest.approx([2.5])
    assert from_error([1.2, -0.1], True) == pytest.approx([0.0, 1.0])


# ---------------------------------------------------------------- joint fit

JOINT = {
    "baseline": (0.22, 3.0, 0.5),
    "alpha_set": (0.10, 4.0, 0.5),
    "beta_set": (0.15, 3.0, 0.5),
    "gamma_set": (0.20, 6.0, 0.5),
}
SIZES3 = [500, 2000, 8000]


@pytest.fixture(scope="module")
def joint_fit():
    pts = make_points(JOINT, SIZES3, noise=0.01, rng_seed=7)
    return pts, fit_study(pts, metric="accuracy", higher_is_better=True, target_size=64000, n_boot=100, seed=1)


def test_joint_shared_alpha_predicts_truth(joint_fit):
    _, sf = joint_fit
    assert sf.shared_mode == "alpha"
    alphas = {f.params["alpha"] for f in sf.fits.values()}
    assert len(alphas) == 1 and abs(alphas.pop() - 0.5) < 0.15
    inside = 0
    for arm, curve in JOINT.items():
        f = sf.fits[arm]
        assert f.form == "power_law" and f.shared == ["alpha"] and f.converged
        true = truth(curve, 64000)
        assert f.prediction.value == pytest.approx(true, abs=0.015), arm
        inside += f.prediction.low <= true <= f.prediction.high
        assert f.prediction.low <= f.prediction.high
        assert f.flags == []  # 8x the largest size: no extrapolation flag
    assert inside >= 3
    predicted_order = sorted(JOINT, key=lambda a: -sf.fits[a].prediction.value)
    true_order = sorted(JOINT, key=lambda a: -truth(JOINT[a], 64000))
    assert predicted_order == true_order


def test_boot_matrix_and_curve(joint_fit):
    _, sf = joint_fit
    assert sf.boot.shape == (100, 4)
    assert list(sf.boot.columns) == sorted(JOINT)
    assert sf.boot.notna().all().all()
    for arm in JOINT:
        assert sf.boot_params[arm].shape == (100, 3)
    sizes = np.array([500, 2000, 8000, 64000])
    value, low, high = sf.curve("alpha_set", sizes)
    assert value.shape == low.shape == high.shape == (4,)
    assert np.all(low <= high)
    # bands widen with extrapolation
    assert (high - low)[-1] > (high - low)[1]
    # the curve at the target is the prediction
    assert value[-1] == pytest.approx(sf.fits["alpha_set"].prediction.value)
    assert low[-1] == pytest.approx(sf.fits["alpha_set"].prediction.low)


def test_to_dict_is_json(joint_fit):
    _, sf = joint_fit
    text = json.dumps(sf.to_dict(), allow_nan=False)
    back = json.loads(text)
    assert back["fits"]["beta_set"]["form"] == "power_law"
    assert set(back["fits"]["beta_set"]["prediction"]) == {"target_size", "value", "low", "high", "low_80", "high_80"}


def test_many_sizes_fit_each_arm_alone():
    curves = {"a": (0.2, 5.0, 0.5), "b": (0.1, 2.0, 0.3)}
    pts = make_points(curves, [250, 1000, 4000, 16000], noise=0.005, rng_seed=3)
    sf = fit_study(pts, metric="accuracy", higher_is_better=True, target_size=64000, n_boot=20)
    assert sf.shared_mode == "none"
    assert sf.fits["a"].shared == [] and sf.fits["b"].shared == []
    assert sf.fits["a"].params["alpha"] == pytest.approx(0.5, abs=0.1)
    assert sf.fits["b"].params["alpha"] == pytest.approx(0.3, abs=0.1)
    forced = fit_study(pts, metric="accuracy", higher_is_better=True, target_size=64000, n_boot=0, shared="alpha")
    assert forced.fits["a"].shared == ["alpha"]
    assert forced.fits["a"].params["alpha"] == forced.fits["b"].params["alpha"]
    with pytest.raises(ValueError, match="shared"):
        fit_study(pts, metric="accuracy", higher_is_better=True, target_size=64000, shared="E")


def test_no_bootstrap_gives_no_interval():
    pts = make_points({"a": (0.2, 5.0, 0.5)}, [250, 1000, 4000])
    sf = fit_study(pts, metric="accuracy", higher_is_better=True, target_size=8000, n_boot=0)
    p = sf.fits["a"].prediction
    assert p.low is None and p.high is None and p.value == pytest.approx(truth((0.2, 5.0, 0.5), 8000), abs=1e-3)
    assert sf.boot.empty


def test_loss_metric_predicts_loss():
    curves = {"baseline": (1.5, 20.0, 0.4), "c": (1.2, 25.0, 0.4)}
    pts = make_points(curves, SIZES3, higher_is_better=False)
    sf = fit_study(pts, metric="loss", higher_is_better=False, target_size=32000, n_boot=20)
    for arm, curve in curves.items():
        assert sf.fits[arm].prediction.value == pytest.approx(truth(curve, 32000, False), rel=0.01)


# ---------------------------------------------------------------- fallbacks and dropped rows


def test_fallback_forms_and_nan_rows():
    pts = make_points(
        {"three": (0.2, 5.0, 0.5), "two": (0.1, 4.0, 0.5), "baseline": (0.2, 3.0, 0.5)}, SIZES3, noise=0.005
    )
    # "two" loses its largest size to NaN (a failed metric), "one" was only ever measured once.
    pts.loc[(pts.arm == "two") & (pts["size"] == 8000), "value"] = np.nan
    pts = pd.concat(
        [
            pts,
            pd.DataFrame(
                [
                    {"arm": "one", "size": 500, "seed": 0, "value": 0.7},
                    {"arm": "one", "size": 500, "seed": 1, "value": 0.72},
                ]
            ),
        ]
    )
    sf = fit_study(pts, metric="accuracy", higher_is_better=True, target_size=16000, n_boot=30)

    two = sf.fits["two"]
    assert two.form == "log_linear" and set(two.params) == {"a", "c"}
    assert two.params["c"] < 0  # error falls with size
    assert two.prediction is not None and two.backtest is None
    assert any("backtest needs 3" in n for n in two.notes)
    e = 0.1 + 4.0 * np.array([500, 2000]) ** -0.5
    c_true = np.log(e[1] / e[0]) / np.log(4)
    assert two.params["c"] == pytest.approx(c_true, abs=0.02)

    one = sf.fits["one"]
    assert one.form == "none" and one.prediction is None and one.backtest is None
    assert NO_FIT_NOTE in one.notes
    assert "one" not in sf.boot.columns and "two" in sf.boot.columns
    value, low, high = sf.curve("one", [1000, 2000])
    assert np.isnan(value).all() and np.isnan(low).all()

    # the power-law arms still share alpha; the log-linear one does not
    assert sf.fits["three"].shared == ["alpha"] and two.shared == []
    json.dumps(sf.to_dict(), allow_nan=False)


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="seed"):
        fit_study(
            pd.DataFrame({"arm": ["a"], "size": [1], "value": [0.5]}),
            metric="accuracy",
            higher_is_better=True,
            target_size=10,
        )


# ---------------------------------------------------------------- backtest


def test_backtest_on_exact_curve_is_near_zero():
    curves = {"a": (0.2, 5.0, 0.5), "b": (0.15, 3.0, 0.5), "baseline": (0.25, 4.0, 0.5)}
    pts = make_points(curves, SIZES3)
    sf = fit_study(pts, metric="accuracy", higher_is_better=True, target_size=16000, n_boot=0)
    for arm, curve in curves.items():
        bt = sf.fits[arm].backtest
        assert bt.held_out_size == 8000
        assert bt.actual == pytest.approx(truth(curve, 8000), abs=1e-12)
        assert bt.abs_error == pytest.approx(abs(bt.predicted - bt.actual))
        assert bt.abs_error < 1e-3

    pts4 = make_points({"a": (0.2, 5.0, 0.5)}, [250, 1000, 4000, 16000])
    bt = fit_study(pts4, metric="accuracy", higher_is_better=True, target_size=32000, n_boot=0).fits["a"].backtest
    assert bt.held_out_size == 16000 and bt.abs_error < 1e-3


def test_backtest_error_is_actual_minus_prediction():
    # Noisy largest size: the backtest error is the gap between the seed mean there and the refit.
    pts = make_points({"a": (0.2, 5.0, 0.5), "b": (0.1, 3.0, 0.5)}, SIZES3)
    pts.loc[(pts.arm == "a") & (pts["size"] == 8000), "value"] -= np.array([0.02, 0.04])
    bt = fit_study(pts, metric="accuracy", higher_is_better=True, target_size=16000, n_boot=0).fits["a"].backtest
    assert bt.actual == pytest.approx(truth((0.2, 5.0, 0.5), 8000) - 0.03)
    assert bt.abs_error == pytest.approx(0.03, abs=2e-3)


# ---------------------------------------------------------------- flags


def test_extrapolation_flag():
    pts = make_points({"a": (0.2, 5.0, 0.5), "b": (0.1, 3.0, 0.5)}, SIZES3)
    near = fit_study(pts, metric="accuracy", higher_is_better=True, target_size=80_000, n_boot=0)
    far = fit_study(pts, metric="accuracy", higher_is_better=True, target_size=80_001, n_boot=0)
    assert "extrapolation" not in near.fits["a"].flags
    assert "extrapolation" in far.fits["a"].flags
    assert any("10x" in n for n in far.fits["a"].notes)


def test_no_improvement_flag():
    flat = make_points({"good": (0.2, 5.0, 0.5)}, SIZES3)
    for size, v in zip(SIZES3, [0.70, 0.70, 0.70]):
        flat = pd.concat([flat, pd.DataFrame([{"arm": "flat", "size": size, "seed": 0, "value": v}])])
    for size, v in zip(SIZES3, [0.70, 0.68, 0.65]):
        flat = pd.concat([flat, pd.DataFrame([{"arm": "worse", "size": size, "seed": 0, "value": v}])])
    sf = fit_study(flat, metric="accuracy", higher_is_better=True, target_size=16000, n_boot=0)
    assert "no_improvement" in sf.fits["flat"].flags
    assert "no_improvement" in sf.fits["worse"].flags
    assert "no_improvement" not in sf.fits["good"].flags
    assert [sf.fits[a].direction for a in ("flat", "worse", "good")] == ["flat", "worsening", "improving"]
    assert sf.fits["flat"].prediction.value == pytest.approx(0.70, abs=1e-3)

    # a loss that rises with size is no improvement either
    rising = pd.DataFrame([{"arm": "a", "size": n, "seed": 0, "value": v} for n, v in [(500, 1.0), (2000, 1.1)]])
    sf = fit_study(rising, metric="loss", higher_is_better=False, target_size=4000, n_boot=0)
    assert sf.fits["a"].form == "log_linear" and "no_improvement" in sf.fits["a"].flags


def test_degenerate_flag_when_alpha_hits_bound():
    # Falls off as N^-3, steeper than the alpha <= 1 the fit allows.
    pts = pd.DataFrame(
        [
            {"arm": "steep", "size": n, "seed": s, "value": 0.5 + 2e7 * n**-3.0}
            for n in [250, 500, 1000, 2000, 4000]
            for s in (0, 1)
        ]
    )
    sf = fit_study(pts, metric="loss", higher_is_better=False, target_size=8000, n_boot=0)
    f = sf.fits["steep"]
    assert scaling.ALPHA_BOUNDS == (0.0, 1.0)
    assert f.params["alpha"] == pytest.approx(1.0, abs=1e-3)
    assert "degenerate" in f.flags
    assert any("at its bound" in n and "the prediction rests on the bound" in n for n in f.notes)


# ---------------------------------------------------------------- direction: improving and worsening arms

# Macro-F1 of the offline demo study (1 seed): two candidates get worse with more of their data.
DEMO_SIZES = [250, 500, 1000]
DEMO = {
    "baseline": [0.578, 0.625, 0.658],
    "helpful": [0.566, 0.696, 0.705],
    "partial": [0.512, 0.523, 0.528],
    "noisy": [0.393, 0.452, 0.268],
    "offdomain": [0.427, 0.104, 0.048],
}


def demo_points() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"arm": arm, "size": n, "seed": 0, "value": v}
            for arm, values in DEMO.items()
            for n, v in zip(DEMO_SIZES, values)
        ]
    )


@pytest.fixture(scope="module")
def demo_fit():
    return fit_study(demo_points(), metric="macro_f1", higher_is_better=True, target_size=4000, n_boot=200)


def test_trend_direction():
    sizes = np.array([250, 500, 1000])
    assert trend_direction(sizes, [0.42, 0.38, 0.34]) == "improving"
    assert trend_direction(sizes, [0.57, 0.90, 0.95]) == "worsening"
    # one odd point does not set the direction: two of the three pairwise slopes rise
    assert trend_direction(sizes, [0.607, 0.548, 0.732]) == "worsening"
    assert trend_direction(sizes, [0.30, 0.30, 0.30]) == "flat"
    assert trend_direction([500, 500], [0.3, 0.2]) == "flat"
    # seeds are averaged per size before the slope
    assert trend_direction([250, 250, 1000, 1000], [0.5, 0.1, 0.2, 0.2]) == "improving"


def test_demo_study_ranks_worsening_arms_honestly(demo_fit):
    sf = demo_fit
    fits = sf.fits
    assert {a: f.direction for a, f in fits.items()} == {
        "baseline": "improving",
        "helpful": "improving",
        "partial": "improving",
        "noisy": "worsening",
        "offdomain": "worsening",
    }
    pred = {a: f.prediction.value for a, f in fits.items()}
    order = sorted(pred, key=lambda a: -pred[a])
    assert order[0] == "helpful" and order[1] == "baseline"
    assert pred["noisy"] < pred["baseline"] and pred["offdomain"] < pred["baseline"]
    for arm in ("noisy", "offdomain"):
        f = fits[arm]
        assert f.params["s"] == -1.0 and f.form == "power_law" and f.shared == []
        assert f.params["E"] <= 1.0 + 1e-9  # 1 - score rises at most to 1
        # rising toward E: no better at the target than measured at the largest size
        assert f.prediction.value <= DEMO[arm][-1] + 1e-9
        assert "no_improvement" in f.flags and "degenerate" not in f.flags
        assert any("worsening" in n for n in f.notes) and any("borrowed" in n for n in f.notes)
        e = POWER_LAW.error(f.params, [250, 1000, 4000, 1e6])
        assert np.all(e > 0) and np.all(np.diff(e) > 0)
    # only the improving arms share the exponent, and it stays within [0, 1]
    for arm in ("baseline", "helpful", "partial"):
        f = fits[arm]
        assert f.shared == ["alpha"] and f.params["s"] == 1.0
        assert 0.0 <= f.params["alpha"] <= 1.0
        assert "no_improvement" not in f.flags
    degenerate = [a for a, f in fits.items() if "degenerate" in f.flags]
    assert "baseline" not in degenerate and degenerate  # not every arm: the baseline's shape is its own
    for arm in degenerate:
        assert any(
            "the points do not pin the curve's shape; the prediction rests on the bound" in n for n in fits[arm].notes
        )
    for f in fits.values():
        p = f.prediction
        assert p.low <= p.value + 1e-9 and p.value <= p.high + 1e-9
    assert sf.boot.notna().all().all()
    back = json.loads(json.dumps(sf.to_dict(), allow_nan=False))
    assert back["fits"]["offdomain"]["direction"] == "worsening"
    assert back["fits"]["offdomain"]["params"]["s"] == -1.0


def test_worsening_arms_do_not_move_the_shared_exponent():
    improving = make_points(JOINT, SIZES3, noise=0.01, rng_seed=7)
    alone = fit_study(improving, metric="accuracy", higher_is_better=True, target_size=64000, n_boot=0)
    worse = make_worsening({"bad": (0.7, 3.0, 0.5), "worst": (0.9, 20.0, 0.8)}, SIZES3, noise=0.01)
    both = fit_study(
        pd.concat([improving, worse]), metric="accuracy", higher_is_better=True, target_size=64000, n_boot=20
    )
    shared = alone.fits["baseline"].params["alpha"]
    for arm in JOINT:
        assert both.fits[arm].params["alpha"] == pytest.approx(shared, abs=1e-6)
        assert both.fits[arm].prediction.value == pytest.approx(alone.fits[arm].prediction.value, abs=1e-6)
        assert both.fits[arm].flags == []
    for arm in ("bad", "worst"):
        f = both.fits[arm]
        assert f.direction == "worsening" and f.params["alpha"] == pytest.approx(shared)
        assert f.prediction.value < worse[worse.arm == arm]["value"].min()  # the score keeps falling
    assert both.fits["bad"].prediction.value == pytest.approx(1 - (0.7 - 3.0 * 64000**-0.5), abs=0.02)


def test_worsening_curve_alone_recovers_parameters():
    curve = (0.8, 4.0, 0.4)
    pts = make_worsening({"w": curve}, [250, 500, 1000, 2000, 4000, 8000], noise=0.005, rng_seed=1)
    sf = fit_study(pts, metric="accuracy", higher_is_better=True, target_size=32000, n_boot=30)
    f = sf.fits["w"]
    assert sf.shared_mode == "none" and f.converged and f.direction == "worsening"
    assert f.params["E"] == pytest.approx(0.8, abs=0.02)
    assert f.params["alpha"] == pytest.approx(0.4, abs=0.1)
    assert f.prediction.value == pytest.approx(1 - (0.8 - 4.0 * 32000**-0.4), abs=0.01)
    assert f.backtest.abs_error < 0.01
    assert f.flags == ["no_improvement"]


def test_loss_that_rises_is_fitted_rising():
    pts = pd.concat(
        [
            make_points({"baseline": (1.5, 20.0, 0.4)}, SIZES3, higher_is_better=False),
            make_worsening({"ood": (3.0, 30.0, 0.5)}, SIZES3, higher_is_better=False),
        ]
    )
    sf = fit_study(pts, metric="loss", higher_is_better=False, target_size=32000, n_boot=20)
    ood = sf.fits["ood"]
    assert ood.direction == "worsening" and "no_improvement" in ood.flags
    assert ood.prediction.value > pts[pts.arm == "ood"]["value"].max()
    assert ood.prediction.value > sf.fits["baseline"].prediction.value


def test_study_with_no_improving_arm_fits_each_exponent():
    pts = make_worsening({"a": (0.8, 4.0, 0.4), "b": (0.6, 2.0, 0.5)}, SIZES3, noise=0.01)
    sf = fit_study(pts, metric="accuracy", higher_is_better=True, target_size=32000, n_boot=20)
    for arm in ("a", "b"):
        f = sf.fits[arm]
        assert f.direction == "worsening" and f.shared == [] and f.params["s"] == -1.0
        assert not any("borrowed" in n for n in f.notes)
        assert 0.0 <= f.params["alpha"] <= 1.0
        assert f.prediction.value < pts[pts.arm == arm]["value"].min()


@pytest.mark.parametrize("s", [1.0, -1.0])
def test_anchored_gradient_matches_finite_differences(s):
    from scipy.optimize import check_grad

    d = AnchoredPoints.of(np.array([250, 500, 1000, 4000]), np.array([0.5, 0.45, 0.62, 0.7]), s, np.log(250))
    fun = optimize.objective(lambda t: POWER_LAW.anchored_residuals(t, d))
    for theta in ([0.4, -0.3, 0.5], [0.9, 0.1, 0.2]):
        err = check_grad(lambda t: fun(t)[0], lambda t: fun(t)[1], np.array(theta), epsilon=1e-7)
        assert err < 1e-4


def test_shared_gradient_matches_finite_differences():
    from scipy.optimize import check_grad

    sizes = np.array([250, 1000, 4000])
    d = GroupPoints.of([sizes, sizes], [np.array([0.5, 0.41, 0.35]), np.array([0.6, 0.44, 0.4])])
    fun = optimize.objective(lambda t: POWER_LAW.shared_residuals(t, d))
    for theta in ([0.4, -1.0, -1.5, -0.5, -0.8], [0.8, -2.0, -1.2, -1.0, -0.6]):
        err = check_grad(lambda t: fun(t)[0], lambda t: fun(t)[1], np.array(theta), epsilon=1e-7)
        assert err < 1e-4


def test_solo_grid_fallback_when_optimizer_fails(monkeypatch):
    monkeypatch.setattr(optimize, "minimize", lambda *a, **k: FailedOptimizer())
    pts = pd.concat([make_points({"good": (0.2, 5.0, 0.5)}, SIZES3), make_worsening({"bad": (0.7, 3.0, 0.5)}, SIZES3)])
    sf = fit_study(pts, metric="accuracy", higher_is_better=True, target_size=16000, n_boot=5)
    for arm in ("good", "bad"):
        f = sf.fits[arm]
        assert not f.converged and "degenerate" in f.flags
        assert any("grid-search fallback" in n for n in f.notes)
    assert sf.fits["bad"].prediction.value == pytest.approx(1 - (0.7 - 3.0 * 16000**-0.5), abs=0.01)


# ---------------------------------------------------------------- determinism and speed


def test_same_seed_same_output():
    pts = make_points(JOINT, SIZES3, noise=0.01, rng_seed=11)
    a = fit_study(pts, metric="accuracy", higher_is_better=True, target_size=64000, n_boot=30, seed=5)
    b = fit_study(
        pts.sample(frac=1.0, random_state=3),
        metric="accuracy",
        higher_is_better=True,
        target_size=64000,
        n_boot=30,
        seed=5,
    )
    c = fit_study(pts, metric="accuracy", higher_is_better=True, target_size=64000, n_boot=30, seed=6)
    assert json.dumps(a.to_dict()) == json.dumps(b.to_dict())
    pd.testing.assert_frame_equal(a.boot, b.boot)
    assert not a.boot.equals(c.boot)


@pytest.mark.parametrize("n_worsening", [0, 2])
def test_bootstrap_of_a_typical_study_is_fast(n_worsening):
    """200 replicates of 6 arms x 3 sizes x 2 seeds (~2.5 s here): well under 10 s on 2 busy cores."""
    rng = np.random.default_rng(0)
    curves = {f"arm{i}": (rng.uniform(0.1, 0.3), rng.uniform(2, 8), 0.5) for i in range(6 - n_worsening)}
    pts = make_points(curves, [250, 1000, 4000], noise=0.015, rng_seed=1)
    worse = {f"worse{i}": (rng.uniform(0.5, 0.8), rng.uniform(2, 8), 0.5) for i in range(n_worsening)}
    pts = pd.concat([pts, make_worsening(worse, [250, 1000, 4000], noise=0.015, rng_seed=2)])
    t = time.perf_counter()
    sf = fit_study(pts, metric="accuracy", higher_is_better=True, target_size=64000, n_boot=200)
    elapsed = time.perf_counter() - t
    assert sf.boot.shape == (200, 6) and sf.boot.notna().all().all()
    assert elapsed < 10.0
