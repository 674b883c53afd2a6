"""Chart builders: DataFrame in, Altair chart out, no I/O (except `save_chart`).

Pure functions so that the Streamlit pages, the CLI and the artifact writer draw the same charts,
and so that tests can check a chart by its Vega-Lite spec (`chart.to_dict()`) without a browser.
PNGs are rendered by vl-convert, which bundles Vega and a font (Liberation Sans) in its wheel, so
saving works on an air-gapped box; remote data loads are refused outright (`allowed_base_urls=[]`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import altair as alt
import pandas as pd

from core.artifacts import write_bytes
from core.spec import LOSS_METRICS

WIDTH = 640
HEIGHT = 360
BASELINE_COLOR = "#6e6e6e"
# Vega's tableau10 without its gray, which is kept for the D0-only baseline.
CANDIDATE_COLORS = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d"]
BASELINE_DASH = [6, 4]

POINT_COLUMNS = ["arm", "size", "seed", "value"]
CURVE_COLUMNS = ["arm", "size", "value", "low", "high"]
RANKING_COLUMNS = ["candidate", "predicted", "low", "high", "gain_over_baseline", "p_best"]
LOSS_COLUMNS = ["step", "loss"]


def scaling_chart(
    points: pd.DataFrame,
    curves: pd.DataFrame,
    *,
    metric: str,
    target_size: int,
    higher_is_better: bool,
    baseline: str = "baseline",
) -> alt.LayerChart:
    """Per-candidate scaling curves on one log-x chart.

    Layers (those without data are left out): uncertainty bands (low..high), fitted candidate
    curves, the baseline's fitted curve (gray, dashed), measured points per seed, a rule and label
    at the target size. Color is the arm ("Candidate" legend, the baseline gray). An arm may have
    points and no curve (its fit failed) and `curves` may be empty (nothing fitted yet).
    """
    if target_size <= 0:
        raise ValueError(f"target_size must be positive for a log axis; got {target_size}")
    points = _require(points, POINT_COLUMNS, "points")
    curves = _require(curves, CURVE_COLUMNS, "curves")
    points = points[points["size"] > 0]
    curves = curves[curves["size"] > 0]
    color = _arm_color(list(points["arm"]) + list(curves["arm"]), baseline)
    x = _size_axis(list(points["size"]) + list(curves["size"]) + [target_size])
    y_title = f"{metric} ({'higher' if higher_is_better else 'lower'} is better)"
    y = alt.Y("value:Q", scale=alt.Scale(zero=False), title=y_title)
    layers = _curve_layers(curves, x=x, y=y, y_title=y_title, color=color, metric=metric, baseline=baseline)
    if not points.empty:
        layers.append(_points_layer(points, x=x, y=y, color=color, metric=metric))
    layers += _target_layers(target_size, x)
    return (
        alt.layer(*layers)
        .properties(width=WIDTH, height=HEIGHT, title=f"Scaling of {metric} with mixture size")
        .resolve_scale(color="shared")
    )


def _size_axis(sizes: list[float]) -> alt.X:
    """A log x axis of mixture sizes spanning the data (smallest size to the target), not the next powers of ten."""
    domain = [min(sizes) * 0.8, max(sizes) * 1.25]
    return alt.X(
        "size:Q",
        scale=alt.Scale(type="log", domain=domain, nice=False),
        title="Mixture size (rows, log scale)",
        axis=alt.Axis(format="~s"),
    )


def _curve_layers(
    curves: pd.DataFrame, *, x: alt.X, y: alt.Y, y_title: str, color: alt.Color, metric: str, baseline: str
) -> list[alt.Chart]:
    """The uncertainty bands, the candidates' fitted curves and the baseline's (dashed); those without data left out."""
    tooltip = [
        alt.Tooltip("arm:N", title="Candidate"),
        alt.Tooltip("size:Q", title="Rows", format=","),
        alt.Tooltip("value:Q", title=f"Fitted {metric}", format=".4f"),
        alt.Tooltip("low:Q", title="Low", format=".4f"),
        alt.Tooltip("high:Q", title="High", format=".4f"),
    ]
    layers: list[alt.Chart] = []
    bands = curves.dropna(subset=["low", "high"])
    if not bands.empty:
        layers.append(
            alt.Chart(bands)
            .mark_area(opacity=0.15)
            .encode(
                x=x,
                y=alt.Y("low:Q", scale=alt.Scale(zero=False), title=y_title),
                y2="high:Q",
                color=color,
                detail="arm:N",
            )
        )
    candidate_curves = curves[curves["arm"] != baseline]
    if not candidate_curves.empty:
        layers.append(
            alt.Chart(candidate_curves)
            .mark_line(strokeWidth=2)
            .encode(x=x, y=y, color=color, detail="arm:N", tooltip=tooltip)
        )
    baseline_curve = curves[curves["arm"] == baseline]
    if not baseline_curve.empty:
        layers.append(
            alt.Chart(baseline_curve)
            .mark_line(strokeWidth=2, strokeDash=BASELINE_DASH)
            .encode(x=x, y=y, color=color, tooltip=tooltip)
        )
    return layers


def _points_layer(points: pd.DataFrame, *, x: alt.X, y: alt.Y, color: alt.Color, metric: str) -> alt.Chart:
    """The measured points, one per run (arm, size, seed)."""
    tooltip = [
        alt.Tooltip("arm:N", title="Candidate"),
        alt.Tooltip("size:Q", title="Rows", format=","),
        alt.Tooltip("seed:N", title="Seed"),
        alt.Tooltip("value:Q", title=metric, format=".4f"),
    ]
    return alt.Chart(points).mark_circle(size=60, opacity=0.85).encode(x=x, y=y, color=color, tooltip=tooltip)


def _target_layers(target_size: int, x: alt.X) -> list[alt.Chart]:
    """A dotted rule at the target size and its label."""
    target = pd.DataFrame({"size": [target_size], "label": [f"target {target_size:,}"]})
    return [
        alt.Chart(target).mark_rule(color="black", strokeDash=[2, 2]).encode(x=x),
        alt.Chart(target)
        .mark_text(align="right", baseline="top", dx=-4, dy=4, fontSize=11)
        .encode(x=x, y=alt.value(0), text="label:N"),
    ]


def ranking_chart(
    ranking: pd.DataFrame,
    *,
    metric: str,
    baseline_value: float | None,
    higher_is_better: bool | None = None,
    title: str | None = None,
) -> alt.LayerChart:
    """Candidates ranked by their predicted metric, best at the top, with interval bars.

    `higher_is_better` defaults to False for loss metrics and True for scores. A dashed rule marks
    the baseline's value. Tooltips carry the interval, the gain over the baseline and P(best).
    """
    ranking = _require(ranking, RANKING_COLUMNS, "ranking")
    if higher_is_better is None:
        higher_is_better = metric not in LOSS_METRICS
    ranking = ranking.sort_values("predicted", ascending=not higher_is_better, na_position="last", kind="stable")
    order = [str(c) for c in ranking["candidate"]]
    ranking = ranking.assign(candidate=order)

    x_title = f"Predicted {metric} ({'higher' if higher_is_better else 'lower'} is better)"
    x = alt.X("predicted:Q", scale=alt.Scale(zero=False), title=x_title)
    y = alt.Y("candidate:N", sort=order, title="Candidate")
    tooltip = [
        alt.Tooltip("candidate:N", title="Candidate"),
        alt.Tooltip("predicted:Q", title=f"Predicted {metric}", format=".4f"),
        alt.Tooltip("low:Q", title="Low", format=".4f"),
        alt.Tooltip("high:Q", title="High", format=".4f"),
        alt.Tooltip("gain_over_baseline:Q", title="Gain over baseline", format="+.4f"),
        alt.Tooltip("p_best:Q", title="P(best)", format=".0%"),
    ]
    base = alt.Chart(ranking)
    layers: list[alt.Chart] = [
        base.mark_rule(strokeWidth=2, color=CANDIDATE_COLORS[0]).encode(
            x=alt.X("low:Q", title=x_title), x2="high:Q", y=y, tooltip=tooltip
        ),
        base.mark_point(filled=True, size=90, color=CANDIDATE_COLORS[0]).encode(x=x, y=y, tooltip=tooltip),
    ]
    if baseline_value is not None:
        rule = pd.DataFrame({"predicted": [float(baseline_value)], "label": ["baseline"]})
        layers.append(
            alt.Chart(rule)
            .mark_rule(color=BASELINE_COLOR, strokeDash=BASELINE_DASH)
            .encode(x=x, tooltip=[alt.Tooltip("predicted:Q", title=f"Baseline {metric}", format=".4f")])
        )
        layers.append(
            alt.Chart(rule)
            .mark_text(align="left", baseline="top", dx=4, dy=2, color=BASELINE_COLOR, fontSize=11)
            .encode(x=x, y=alt.value(0), text="label:N")
        )
    height = max(120, 36 * len(order))
    return alt.layer(*layers).properties(
        width=WIDTH, height=height, title=title or f"Candidates ranked by predicted {metric}"
    )


def loss_curve_chart(events: pd.DataFrame) -> alt.Chart:
    """A run's training loss against optimizer step (live view; empty before the first log)."""
    events = _require(events, LOSS_COLUMNS, "events")
    events = events.dropna(subset=LOSS_COLUMNS).sort_values("step")
    return (
        alt.Chart(events)
        .mark_line(point=alt.OverlayMarkDef(size=20), color=CANDIDATE_COLORS[0])
        .encode(
            x=alt.X("step:Q", title="Optimizer step", axis=alt.Axis(format="d", tickMinStep=1)),
            y=alt.Y("loss:Q", scale=alt.Scale(zero=False), title="Training loss"),
            tooltip=[alt.Tooltip("step:Q", title="Step"), alt.Tooltip("loss:Q", title="Loss", format=".4f")],
        )
        .properties(width=WIDTH, height=240, title="Training loss")
    )


def save_chart(chart: alt.TopLevelMixin, path_without_suffix: str | os.PathLike) -> list[Path]:
    """Write `<path>.json` (the Vega-Lite spec) and `<path>.png` (scale 2), each atomically.

    Rendering is offline: vl-convert carries Vega, Vega-Lite and a font, and is told to fetch
    nothing (`allowed_base_urls=[]`).
    """
    import vl_convert

    base = Path(path_without_suffix)
    if base.suffix.lower() in (".json", ".png"):
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    spec = chart.to_dict()
    json_path = base.with_name(base.name + ".json")
    png_path = base.with_name(base.name + ".png")
    write_bytes(json_path, json.dumps(spec, indent=2, sort_keys=True).encode("utf-8"))
    png = vl_convert.vegalite_to_png(spec, vl_version=_vl_version(), scale=2, allowed_base_urls=[])
    write_bytes(png_path, png)
    return [json_path, png_path]


def _arm_color(arms: Sequence[str], baseline: str) -> alt.Color:
    """Baseline first and gray; candidates in order of appearance from the categorical palette."""
    candidates = [a for a in dict.fromkeys(str(a) for a in arms) if a != baseline]
    domain = ([baseline] if baseline in set(map(str, arms)) else []) + candidates
    palette = [BASELINE_COLOR] if domain[:1] == [baseline] else []
    palette += [CANDIDATE_COLORS[i % len(CANDIDATE_COLORS)] for i in range(len(candidates))]
    # The band layer comes first, so without symbolOpacity the legend would inherit its faint fill.
    legend = alt.Legend(title="Candidate", symbolOpacity=1, symbolType="circle")
    return alt.Color("arm:N", legend=legend, scale=alt.Scale(domain=domain, range=palette))


def _require(frame: pd.DataFrame | None, columns: list[str], name: str) -> pd.DataFrame:
    """A copy with the needed columns; None or a column-less empty frame counts as no rows."""
    if frame is None or (frame.empty and not set(columns) <= set(frame.columns)):
        return pd.DataFrame({c: pd.Series(dtype="object" if c in ("arm", "candidate") else "float") for c in columns})
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} is missing columns {missing}; expected {columns}")
    return frame.copy()


def _vl_version() -> str | None:
    """The Vega-Lite version Altair writes (v6.4.1 -> "6.4"), if vl-convert bundles it."""
    import vl_convert

    major_minor = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return major_minor if major_minor in vl_convert.get_vegalite_versions() else None
