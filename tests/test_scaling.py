"""Scaling fits on synthetic curves whose parameters are known."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from core import scaling
from core.scaling import NO_FIT_NOTE, fit_power_law, fit_study, from_error, to_error


def make_points(curves: dict[str, tuple[float, float, float]], sizes, seeds=(0, 1), noise=0.0,
                higher_is_better=True, rng_seed=0) -> pd.DataFrame:
    """Runs of arms whose error is E + B N^-alpha times lognormal noise; scores are 1 - error."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for arm, (E, B, alpha) in curves.items():
        for n in sizes:
            for s in seeds:
                e = (E + B * n ** -alpha) * np.exp(rng.normal(0.0, noise)) if noise else E + B * n ** -alpha
                rows.append({"arm": arm, "size": n, "seed": s, "value": 1 - e if higher_is_better else e})
    return pd.DataFrame(rows)


def truth(curve, n, higher_is_better=True):
    E, B, alpha = curve
    e = E + B * n ** -alpha
    return 1 - e if higher_is_better else e


# ---------------------------------------------------------------- single curve


@pytest.mark.parametrize("rng_seed", [0, 1, 2])
def test_fit_power_law_recovers_known_parameters(rng_seed):
    rng = np.random.default_rng(rng_seed)
    sizes = np.array([250, 500, 1000, 2000, 4000, 8000, 16000] * 2)
    errors = (0.2 + 5 * sizes ** -0.5) * np.exp(rng.normal(0, 0.015, len(sizes)))
    fit = fit_power_law(sizes, errors)
    assert fit.converged and fit.method == "lbfgsb"
    assert fit.E == pytest.approx(0.2, abs=0.02)
    assert fit.alpha == pytest.approx(0.5, abs=0.06)
    assert fit.B == pytest.approx(5, rel=0.35)
    true_at_10x = 0.2 + 5 * 160_000 ** -0.5
    assert abs(fit.predict(160_000) - true_at_10x) / true_at_10x < 0.03


def test_fit_power_law_needs_two_sizes():
    with pytest.raises(ValueError, match="two or more distinct sizes"):
        fit_power_law([1000, 1000], [0.3, 0.31])


def test_grid_fallback_when_optimizer_fails(monkeypatch):
    monkeypatch.setattr(scaling, "_minimize", lambda d, starts: None)
    sizes = np.array([250, 500, 1000, 2000, 4000, 8000, 16000])
    fit = fit_power_law(sizes, 0.2 + 5 * sizes ** -0.5)
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
    assert set(back["fits"]["beta_set"]["prediction"]) == {"target_size", "value", "low", "high"}


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
    pts = make_points({"three": (0.2, 5.0, 0.5), "two": (0.1, 4.0, 0.5), "baseline": (0.2, 3.0, 0.5)},
                      SIZES3, noise=0.005)
    # "two" loses its largest size to NaN (a failed metric), "one" was only ever measured once.
    pts.loc[(pts.arm == "two") & (pts["size"] == 8000), "value"] = np.nan
    pts = pd.concat([pts, pd.DataFrame([{"arm": "one", "size": 500, "seed": 0, "value": 0.7},
                                        {"arm": "one", "size": 500, "seed": 1, "value": 0.72}])])
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
        fit_study(pd.DataFrame({"arm": ["a"], "size": [1], "value": [0.5]}), metric="accuracy",
                  higher_is_better=True, target_size=10)


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

    # a loss that rises with size is no improvement either
    rising = pd.DataFrame([{"arm": "a", "size": n, "seed": 0, "value": v}
                           for n, v in [(500, 1.0), (2000, 1.1)]])
    sf = fit_study(rising, metric="loss", higher_is_better=False, target_size=4000, n_boot=0)
    assert sf.fits["a"].form == "log_linear" and "no_improvement" in sf.fits["a"].flags


def test_degenerate_flag_when_alpha_hits_bound():
    # Falls off as N^-3, steeper than the alpha <= 2 the fit allows.
    pts = pd.DataFrame([{"arm": "steep", "size": n, "seed": s, "value": 0.5 + 2e7 * n ** -3.0}
                        for n in [250, 500, 1000, 2000, 4000] for s in (0, 1)])
    sf = fit_study(pts, metric="loss", higher_is_better=False, target_size=8000, n_boot=0)
    f = sf.fits["steep"]
    assert f.params["alpha"] == pytest.approx(2.0, abs=1e-3)
    assert "degenerate" in f.flags and any("bound" in n for n in f.notes)


# ---------------------------------------------------------------- determinism and speed


def test_same_seed_same_output():
    pts = make_points(JOINT, SIZES3, noise=0.01, rng_seed=11)
    a = fit_study(pts, metric="accuracy", higher_is_better=True, target_size=64000, n_boot=30, seed=5)
    b = fit_study(pts.sample(frac=1.0, random_state=3), metric="accuracy", higher_is_better=True,
                  target_size=64000, n_boot=30, seed=5)
    c = fit_study(pts, metric="accuracy", higher_is_better=True, target_size=64000, n_boot=30, seed=6)
    assert json.dumps(a.to_dict()) == json.dumps(b.to_dict())
    pd.testing.assert_frame_equal(a.boot, b.boot)
    assert not a.boot.equals(c.boot)


def test_bootstrap_of_a_typical_study_is_fast():
    """200 replicates of a joint fit of 6 arms x 3 sizes x 2 seeds: well under 10 s on 2 cores."""
    rng = np.random.default_rng(0)
    curves = {f"arm{i}": (rng.uniform(0.1, 0.3), rng.uniform(2, 8), 0.5) for i in range(6)}
    pts = make_points(curves, [250, 1000, 4000], noise=0.015, rng_seed=1)
    t = time.perf_counter()
    sf = fit_study(pts, metric="accuracy", higher_is_better=True, target_size=64000, n_boot=200)
    elapsed = time.perf_counter() - t
    assert sf.boot.shape == (200, 6) and sf.boot.notna().all().all()
    assert elapsed < 10.0
