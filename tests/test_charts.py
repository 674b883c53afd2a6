"""Chart builders checked through their Vega-Lite specs; save_chart through the files it writes."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core.charts import BASELINE_COLOR, loss_curve_chart, ranking_chart, save_chart, scaling_chart

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _points() -> pd.DataFrame:
    rows = []
    for arm, base in [("baseline", 0.6), ("helpful", 0.65), ("noisy", 0.5)]:
        for size in (250, 500, 1000):
            for seed in (0, 1):
                rows.append({"arm": arm, "size": size, "seed": seed, "value": base + size / 1e4 + seed / 100})
    return pd.DataFrame(rows)


def _curves() -> pd.DataFrame:
    rows = []
    for arm, base in [("baseline", 0.6), ("helpful", 0.65)]:  # "noisy" has no fitted curve
        for size in (250, 1000, 4000, 16000):
            v = base + size / 1e5
            rows.append({"arm": arm, "size": size, "value": v, "low": v - 0.02, "high": v + 0.02})
    return pd.DataFrame(rows)


def _layers(chart) -> list[dict]:
    return chart.to_dict()["layer"]


def _mark(layer: dict) -> dict:
    mark = layer["mark"]
    return mark if isinstance(mark, dict) else {"type": mark}


def test_scaling_chart_layers_and_encodings():
    chart = scaling_chart(_points(), _curves(), metric="macro_f1", target_size=16000, higher_is_better=True)
    spec = chart.to_dict()
    layers = spec["layer"]
    types = [_mark(layer)["type"] for layer in layers]
    assert types == ["area", "line", "line", "circle", "rule", "text"]
    assert spec["width"] == 640

    for layer in layers:
        x = layer["encoding"]["x"]
        assert x["scale"]["type"] == "log"
        assert x["title"] == "Mixture size (rows, log scale)"
    assert "macro_f1" in layers[3]["encoding"]["y"]["title"]

    # the baseline's curve is its own dashed line; candidate curves are solid
    dashed = [layer for layer in layers if _mark(layer)["type"] == "line" and "strokeDash" in _mark(layer)]
    solid = [layer for layer in layers if _mark(layer)["type"] == "line" and "strokeDash" not in _mark(layer)]
    assert len(dashed) == 1 and len(solid) == 1
    datasets = spec["datasets"]
    assert {row["arm"] for row in datasets[dashed[0]["data"]["name"]]} == {"baseline"}
    assert {row["arm"] for row in datasets[solid[0]["data"]["name"]]} == {"helpful"}

    # the area band spans low..high at low opacity
    band = layers[0]
    assert band["encoding"]["y"]["field"] == "low" and band["encoding"]["y2"]["field"] == "high"
    assert _mark(band)["opacity"] < 0.5

    # the rule sits at the target size and is labelled
    rule, label = layers[4], layers[5]
    assert datasets[rule["data"]["name"]][0]["size"] == 16000
    assert datasets[label["data"]["name"]][0]["label"] == "target 16,000"

    # color: one legend titled Candidate, baseline gray, every arm (with or without curve) in the domain
    color = layers[3]["encoding"]["color"]
    assert color["legend"]["title"] == "Candidate"
    assert color["scale"]["domain"] == ["baseline", "helpful", "noisy"]
    assert color["scale"]["range"][0] == BASELINE_COLOR
    assert len(set(color["scale"]["range"])) == 3

    # tooltips on points and curves
    assert {t["field"] for t in layers[3]["encoding"]["tooltip"]} == {"arm", "size", "seed", "value"}
    assert {t["field"] for t in layers[1]["encoding"]["tooltip"]} >= {"arm", "size", "value", "low", "high"}


def test_scaling_chart_lower_is_better_title():
    chart = scaling_chart(_points(), _curves(), metric="loss", target_size=8000, higher_is_better=False)
    assert _layers(chart)[3]["encoding"]["y"]["title"] == "loss (lower is better)"


def test_scaling_chart_points_only_and_fully_empty():
    chart = scaling_chart(_points(), pd.DataFrame(), metric="accuracy", target_size=2000, higher_is_better=True)
    assert [_mark(layer)["type"] for layer in _layers(chart)] == ["circle", "rule", "text"]

    empty = scaling_chart(pd.DataFrame(), None, metric="accuracy", target_size=2000, higher_is_better=True)
    assert [_mark(layer)["type"] for layer in _layers(empty)] == ["rule", "text"]

    with pytest.raises(ValueError, match="missing columns"):
        scaling_chart(pd.DataFrame({"arm": ["a"]}), None, metric="accuracy", target_size=2000, higher_is_better=True)
    with pytest.raises(ValueError, match="positive"):
        scaling_chart(_points(), None, metric="accuracy", target_size=0, higher_is_better=True)


def _ranking() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "candidate": ["noisy", "helpful", "off-domain"],
            "predicted": [0.60, 0.85, 0.40],
            "low": [0.50, 0.80, 0.30],
            "high": [0.70, 0.90, 0.50],
            "gain_over_baseline": [-0.05, 0.20, -0.25],
            "p_best": [0.05, 0.95, 0.0],
        }
    )


def test_ranking_chart_sorted_best_first_with_baseline_rule():
    spec = ranking_chart(_ranking(), metric="macro_f1", baseline_value=0.65).to_dict()
    layers = spec["layer"]
    assert [_mark(layer)["type"] for layer in layers] == ["rule", "point", "rule", "text"]
    point = layers[1]
    assert point["encoding"]["y"]["sort"] == ["helpful", "noisy", "off-domain"]
    assert point["encoding"]["x"]["title"].startswith("Predicted macro_f1")
    assert point["encoding"]["y"]["title"] == "Candidate"
    # error bar from low to high
    assert layers[0]["encoding"]["x"]["field"] == "low" and layers[0]["encoding"]["x2"]["field"] == "high"
    # baseline rule at the baseline value, dashed
    baseline = layers[2]
    assert spec["datasets"][baseline["data"]["name"]][0]["predicted"] == 0.65
    assert "strokeDash" in _mark(baseline)
    tooltip = {t["field"]: t.get("title") for t in point["encoding"]["tooltip"]}
    assert tooltip["p_best"] == "P(best)"
    assert {"low", "high", "gain_over_baseline"} <= set(tooltip)


def test_ranking_chart_loss_sorts_ascending_and_handles_empty():
    spec = ranking_chart(_ranking(), metric="loss", baseline_value=None).to_dict()
    assert spec["layer"][1]["encoding"]["y"]["sort"] == ["off-domain", "noisy", "helpful"]
    assert len(spec["layer"]) == 2  # no baseline rule without a baseline value

    empty = ranking_chart(pd.DataFrame(), metric="accuracy", baseline_value=0.5).to_dict()
    assert empty["layer"][1]["encoding"]["y"]["sort"] == []


def test_loss_curve_chart():
    events = pd.DataFrame({"step": [20, 10, 0], "loss": [2.0, 3.0, 6.7]})
    spec = loss_curve_chart(events).to_dict()
    assert _mark(spec)["type"] == "line"
    assert spec["encoding"]["x"]["title"] == "Optimizer step"
    assert spec["encoding"]["y"]["title"] == "Training loss"
    assert [row["step"] for row in spec["datasets"][spec["data"]["name"]]] == [0, 10, 20]
    assert loss_curve_chart(pd.DataFrame()).to_dict()["mark"]


def test_save_chart_writes_png_and_json(tmp_path):
    chart = scaling_chart(_points(), _curves(), metric="macro_f1", target_size=16000, higher_is_better=True)
    paths = save_chart(chart, tmp_path / "out" / "scaling.macro_f1")
    assert [p.name for p in paths] == ["scaling.macro_f1.json", "scaling.macro_f1.png"]
    json_path, png_path = paths
    assert json.loads(json_path.read_text())["layer"]
    data = png_path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    width = int.from_bytes(data[16:20], "big")
    assert width > 640  # scale 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)  # no temp files left


def test_save_chart_empty_charts(tmp_path):
    for name, chart in {
        "ranking": ranking_chart(pd.DataFrame(), metric="accuracy", baseline_value=None),
        "loss": loss_curve_chart(pd.DataFrame()),
    }.items():
        _, png = save_chart(chart, tmp_path / f"{name}.png")  # a suffix given by mistake is dropped
        assert png.name == f"{name}.png"
        assert png.read_bytes().startswith(PNG_SIGNATURE)
