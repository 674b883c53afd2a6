"""Results: a finished study's scaling curves, ranking, per-run metrics and downloads.

A thin view over the study's metrics.json (`workers.client.results`), which the ranking task
writes atomically to the artifacts store with the chart it drew (scaling.json and .png).

Where the curves come from. The page must not refit (a fit with its bootstrap takes seconds, and a
refit could disagree with the ranking it sits beside), so it draws what the study saved:
- points: every finished run in metrics.json `runs` (seed means beyond a few thousand points);
- fitted curves and their uncertainty bands: metrics.json's curves table (core.results.StudyResult);
  a file written before that table existed gets its curves from the fitted parameters, without bands.
All of it is parsed once per file version (cached on the file's mtime and size), so a rerun of
the page for a study of 10k runs only draws: no JSON parsing, no DataFrame building.
User text (names, notes, paths) goes to tables and st.code/st.text: never Markdown or HTML.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd
import streamlit as st

from app import prescreen_view, views
from app.common import artifacts, redis
from app.ui import flash, md_escape, page_link, pick_study, show_flash
from core.artifacts import ArtifactStore
from core.charts import ranking_chart, scaling_chart
from core.decision import proposal_text
from core.results import StudyResult
from core.spec import LOSS_METRICS
from workers import client
from workers.store import JobStore

MAX_POINTS = 3000
PAGE = "results"  # the key of the page's flash message


@dataclass(frozen=True)
class StudyResults:
    """What the page draws for one study, parsed once per version of its metrics.json."""

    study_id: str
    folder: Path
    metrics: dict
    runs: pd.DataFrame
    points: pd.DataFrame
    thinned: bool
    result: StudyResult
    curves: pd.DataFrame
    curves_source: str  # "saved table", "fitted parameters" or "none"
    version: tuple  # (artifacts root, study id, mtime_ns, size) of metrics.json: the cache key


@st.cache_resource(max_entries=16, show_spinner=False)
def _parse(root: str, study_id: str, mtime_ns: int, size: int) -> StudyResults | None:
    """Cached on the file's version (mtime, size): a rewritten metrics.json is read again."""
    store = ArtifactStore(root)
    metrics = client.results(study_id, store)
    if metrics is None:
        return None
    folder = store.study_dir(study_id)
    primary = metrics.get("primary_metric") or "metric"
    runs = views.results_runs_frame(metrics)
    points, thinned = views.points_frame(runs, primary, max_points=MAX_POINTS)
    result = StudyResult.from_dict(metrics)
    curves = result.curves
    source = "none" if curves.empty else "saved table" if "curves" in metrics else "fitted parameters"
    return StudyResults(
        study_id, folder, metrics, runs, points, thinned, result, curves, source, (root, study_id, mtime_ns, size)
    )


@st.cache_resource(max_entries=64, show_spinner=False)
def _chart_spec(version: tuple, which: str, metric: str) -> dict | None:
    """A chart's Vega-Lite spec, built once per file version (and metric, for the ranking).

    Building an Altair chart and validating it costs ~0.1 s; the page redraws the cached spec
    (st.vega_lite_chart copies the dict before it changes anything).
    """
    r = _parse(*version)
    if r is None:
        return None
    m = r.metrics
    if which == "scaling":
        if r.points.empty:
            return None
        target = int(m.get("target_size") or r.points["size"].max())
        chart = scaling_chart(
            r.points,
            r.curves,
            metric=metric,
            target_size=target,
            higher_is_better=bool(m.get("higher_is_better", True)),
        )
    else:
        rows, baseline = _ranking_rows(m, metric)
        frame = views.ranking_chart_frame(rows)
        if frame.empty:
            return None
        chart = ranking_chart(
            frame,
            metric=metric,
            baseline_value=(baseline or {}).get("predicted"),
            higher_is_better=metric not in LOSS_METRICS,
        )
    spec = chart.to_dict()
    if spec.get("config") == {"view": {"continuousWidth": 300, "continuousHeight": 300}}:
        del spec["config"]  # Altair's default theme: Streamlit's theme sizes the chart instead
    return spec


def _ranking_rows(m: dict, metric: str) -> tuple[list[dict], dict | None]:
    """The ranking and baseline of `metric`: the primary one, or one of ranking_by_metric."""
    if metric == (m.get("primary_metric") or "metric"):
        return m.get("ranking") or [], m.get("baseline")
    other = (m.get("ranking_by_metric") or {}).get(metric) or {}
    return other.get("ranking") or [], other.get("baseline")


def load(study_id: str) -> StudyResults | None:
    store = artifacts()
    path = store.study_dir(study_id) / "metrics.json"
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    try:
        return _parse(str(store.root), study_id, stat.st_mtime_ns, stat.st_size)
    except ValueError as err:  # not valid JSON
        st.error(md_escape(f"Cannot read the results of {study_id}: {err}"))
        return None


def has_results(study: dict) -> bool:
    return study.get("status") == "finished" or bool(study.get("results_dir"))


# -- pieces ---------------------------------------------------------------------------------------


def _facts(r: StudyResults) -> None:
    m = r.metrics
    sizes = ", ".join(f"{int(s):,}" for s in m.get("sizes") or [])
    bits = [
        f"model {m.get('model')}",
        f"task {m.get('task')}",
        f"primary metric {m.get('primary_metric')}",
        f"sizes {sizes}",
        f"seeds {len(m.get('seeds') or [])}",
        f"D0 share {m.get('d0_share')}",
        f"target {int(m.get('target_size') or 0):,}",
        f"{len(m.get('runs') or []):,} runs",
        f"written {m.get('generated_at', '?')}",
    ]
    if m.get("reused"):  # every run cached and the fitting code unchanged: the ranking was copied at submit
        bits.append(f"ranking reused from study {m['reused'].get('from_study')} (same runs, spec and fitting code)")
    st.caption(md_escape(" · ".join(bits)))


def _scaling(r: StudyResults, key: str) -> None:
    m = r.metrics
    primary = m.get("primary_metric") or "metric"
    if r.points.empty:
        st.info("No finished run has a value for the primary metric: nothing to draw.")
        return
    st.vega_lite_chart(_chart_spec(r.version, "scaling", primary), width="stretch", key=f"{key}.scaling")
    notes = []
    if r.thinned:
        notes.append(f"{len(m.get('runs') or []):,} runs: points are seed means per candidate and size")
    if r.curves_source == "fitted parameters":
        notes.append("curves from the fitted parameters (written before curves were saved, so no uncertainty bands)")
    elif r.curves_source == "none" and (m.get("predictor") or {}).get("used") == "plain":
        notes.append("no curve: the backtest chose the plain ranking at the largest size (see below)")
    elif r.curves_source == "none":
        notes.append("no fitted curve (too few sizes)")
    else:
        notes.append(
            "bands: 90% bootstrap interval over seeds and points, widened beyond the measured sizes by what the "
            "study's backtests missed"
        )
    st.caption("; ".join(notes) + ".")


def _ranking_table(r: StudyResults, metric: str, target: int, compact: bool = False) -> None:
    frame = views.ranking_frame(r.result.ranking_summary(metric, with_baseline=True))
    columns = [
        "rank",
        "candidate",
        "predicted",
        "interval",
        "gain_over_baseline",
        "p_best",
        "rank_at_largest_size",
        "measured_at_largest",
        "flags",
        "backtest_error",
        "repetition_at_target",
        "largest_size",
    ]
    if compact:  # half a page wide: what decides, and the warnings
        columns = ["rank", "candidate", "predicted", "interval", "p_best", "rank_at_largest_size", "flags"]
    number = partial(st.column_config.TextColumn, alignment="right")  # formatted text: "—" where empty
    st.dataframe(
        views.ranking_cells(frame),
        hide_index=True,
        column_order=columns,
        column_config={
            "rank": number("Rank"),
            "candidate": st.column_config.TextColumn("Candidate"),
            "predicted": number(f"Predicted {metric} at {target:,}"),
            "interval": st.column_config.TextColumn("90% interval", help="bootstrap over seeds and points"),
            "gain_over_baseline": number("Gain over baseline", help="positive = better than D0 alone, for losses too"),
            "p_best": number("P(best)", help="share of bootstrap replicates in which it ranks first"),
            "measured_at_largest": number("Measured at largest size"),
            "largest_size": number("Largest size"),
            "rank_at_largest_size": number("Rank at largest size", help="the plain ranking, no extrapolation"),
            "backtest_error": number(
                "Backtest error", help="|predicted − measured| at the largest size, fitted without it"
            ),
            "repetition_at_target": number(
                "Repetition at target",
                help="times each of the candidate's unique rows is used at the target size; above 1× it is "
                "repeated, and repeated rows count less in the prediction",
            ),
            "flags": st.column_config.TextColumn("Warnings", width="medium"),
        },
    )


def _two_rankings(rows: list[dict], target: int) -> None:
    """The extrapolated order beside the plain one at the largest measured size (DataDecide)."""
    extrapolated = [str(r["candidate"]) for r in sorted(rows, key=lambda r: int(r["rank"]))]
    plain = views.plain_order(rows)
    if not extrapolated:
        return
    sizes = {int(r.get("largest_size") or 0) for r in rows}
    # A refinement measures only the top two at a larger size: then each arm is read at its own largest.
    measured = f"Measured at {max(sizes):,}" if len(sizes) == 1 else "Measured (each at its largest size)"
    n = max(len(extrapolated), len(plain))
    frame = pd.DataFrame(
        {
            "position": range(1, n + 1),
            "extrapolated": extrapolated + [""] * (n - len(extrapolated)),
            "plain": plain + [""] * (n - len(plain)),
        }
    )
    st.dataframe(
        frame,
        hide_index=True,
        column_config={
            "position": st.column_config.NumberColumn("#", format="%d"),
            "extrapolated": st.column_config.TextColumn(f"Extrapolated to {target:,}"),
            "plain": st.column_config.TextColumn(measured),
        },
    )
    if extrapolated[: len(plain)] != plain:
        st.info(
            "The extrapolated ranking differs from the plain ranking at the largest measured size. Small-scale "
            "rankings get about 80% of pairwise decisions right, and no scaling-law method beat the plain "
            "ranking at the largest size for the same compute (DataDecide, 2025): weigh both.",
            icon=":material/balance:",
        )
    else:
        st.caption("The extrapolated ranking agrees with the plain ranking at the largest measured size.")


def _ranking(r: StudyResults, key: str, compact: bool = False) -> None:
    m = r.metrics
    primary = m.get("primary_metric") or "metric"
    others = list((m.get("ranking_by_metric") or {}).keys())
    metric = primary
    if others and not compact:
        metric = st.radio(
            "Rank by",
            [primary, *others],
            horizontal=True,
            key=f"{key}.metric",
            format_func=lambda x: f"{x} (primary)" if x == primary else x,
            help="Continuous quantities such as loss often rank better at small scale than accuracy or F1.",
        )
    rows, baseline = _ranking_rows(m, metric)
    target = int(m.get("target_size") or 0)
    if not rows:
        st.info("No candidate could be ranked on this metric (no finished candidate run).")
        return
    _ranking_table(r, metric, target, compact=compact)
    if compact:
        return
    spec = _chart_spec(r.version, "ranking", metric)
    left, right = st.columns([3, 2])
    with left:
        if spec is not None:
            # An explicit height: with "content", Streamlit squeezes this layered chart's discrete axis.
            st.vega_lite_chart(
                spec, width="stretch", height=int(spec.get("height") or 120) + 110, key=f"{key}.ranking_chart"
            )
    with right:
        _two_rankings(rows, target)
    notes = views.notes_frame(rows, baseline)
    if not notes.empty:
        with st.expander(f"Why these warnings ({len(notes)} notes)"):
            st.dataframe(
                notes,
                hide_index=True,
                column_config={
                    "candidate": st.column_config.TextColumn("Candidate"),
                    "note": st.column_config.TextColumn("Note", width="large"),
                },
            )
    _predictors(m, metric)
    _signal_to_noise(m)


def _predictors(m: dict, metric: str) -> None:
    """Which predictor ranked the candidates, why, and how the others did in the same backtest."""
    choice = m.get("predictor") or {}
    if not choice.get("used"):
        return
    if metric != m.get("primary_metric"):
        used = ((m.get("ranking_by_metric") or {}).get(metric) or {}).get("predictor")
        if used:
            st.caption(md_escape(f"Predictor for {metric}: {used} (chosen by its own backtest)."))
        return
    st.caption(md_escape(f"Predictor: {choice['used']} ({choice.get('reason') or ''})."))
    with st.expander("Predictors compared by backtest"):
        number = partial(st.column_config.TextColumn, alignment="right")
        st.dataframe(
            views.predictor_cells(choice),
            hide_index=True,
            column_config={
                "predictor": st.column_config.TextColumn("Predictor"),
                "pairwise": number("Pairs right", help="candidate pairs ordered right at the held-out size"),
                "error": number("Backtest error", help="mean |predicted − measured| at the held-out size"),
                "folds": st.column_config.TextColumn("Fitted on → predicted"),
                "description": st.column_config.TextColumn("What it is", width="large"),
            },
        )


def _signal_to_noise(m: dict) -> None:
    """Which metric separates the candidates best against run-to-run noise (core.snr)."""
    by_metric = m.get("signal_to_noise") or {}
    if not by_metric:
        return
    if m.get("snr_recommendation"):
        st.info(md_escape(m["snr_recommendation"]), icon=":material/insights:")
    cells = views.snr_cells(by_metric, m.get("primary_metric"))
    title = ", ".join(f"{row.metric.split(' ')[0]} {row.snr}" for row in cells.itertuples())
    with st.expander(f"Signal-to-noise by metric: {title}"):
        number = partial(st.column_config.TextColumn, alignment="right")
        st.dataframe(
            cells,
            hide_index=True,
            column_config={
                "metric": st.column_config.TextColumn("Metric"),
                "snr": number("Signal-to-noise", help="spread between arms over run-to-run noise: higher ranks better"),
                "signal": number("Signal", help="standard deviation of the arms' values at the largest common size"),
                "noise": number("Noise", help="standard deviation across seeds, or around the fitted curves"),
                "noise_from": st.column_config.TextColumn("Noise from"),
            },
        )


def _warnings(r: StudyResults) -> None:
    m = r.metrics
    lines = views.warning_lines(m)
    if lines:
        items = "\n".join(f"- {md_escape(line)}" for line in lines)
        st.warning("Read the ranking with care:\n\n" + items, icon=":material/warning:")
    failed = m.get("failed_runs") or []
    if failed:
        st.warning(
            f"{len(failed):,} runs did not finish; the fits use the {len(m.get('runs') or []):,} that did.",
            icon=":material/warning:",
        )
    for what, counts in (("copies", m.get("contamination")), ("near-duplicates", m.get("near_duplicates"))):
        removed = {k: v for k, v in (counts or {}).items() if v}
        if removed:
            leaks = ", ".join(f"{k} {v:,} rows" for k, v in removed.items())
            st.caption(md_escape(f"Benchmark leaks removed from candidates ({what} of benchmark rows): {leaks}"))


def _details(r: StudyResults, key: str) -> None:
    m = r.metrics
    st.subheader("Per-run metrics")
    names = list(m.get("metrics") or [])
    st.dataframe(
        views.cells_as_text(r.runs, {"repetition": "{:.2f}×"}),
        hide_index=True,
        column_config={
            "candidate": st.column_config.TextColumn("Candidate"),
            "size": st.column_config.NumberColumn("Rows", format="localized"),
            "seed": st.column_config.NumberColumn("Seed", format="%d"),
            **{n: st.column_config.NumberColumn(n, format="%.4f") for n in names},
            "steps": st.column_config.NumberColumn("Steps", format="%d"),
            "train_loss": st.column_config.NumberColumn("Train loss", format="%.4f"),
            "repetition": st.column_config.TextColumn(
                "Candidate repetition", alignment="right", help="times each candidate row was used to reach the size"
            ),
            "train_seconds": st.column_config.NumberColumn("Train s", format="%.1f"),
            "total_seconds": st.column_config.NumberColumn("Total s", format="%.1f"),
            "cached": st.column_config.CheckboxColumn("Cached"),
            "key": st.column_config.TextColumn("Run key"),
        },
    )
    failed = m.get("failed_runs") or []
    if failed:
        with st.expander(f"Runs that did not finish ({len(failed):,})"):
            st.dataframe(pd.DataFrame(failed), hide_index=True)

    st.subheader("Downloads and artifacts")
    folder = r.folder
    c1, c2, c3, c4 = st.columns(4)
    c1.download_button(
        "metrics.json",
        data=lambda: (folder / "metrics.json").read_bytes(),
        file_name=f"{r.study_id}-metrics.json",
        mime="application/json",
        key=f"{key}.dl_metrics",
        on_click="ignore",
        icon=":material/data_object:",
    )
    runs = r.runs
    c2.download_button(
        "Runs (CSV)",
        data=lambda: runs.to_csv(index=False),
        file_name=f"{r.study_id}-runs.csv",
        mime="text/csv",
        key=f"{key}.dl_csv",
        on_click="ignore",
        icon=":material/table_view:",
    )
    for col, name, label in ((c3, "scaling.png", "Scaling chart (PNG)"), (c4, "ranking.png", "Ranking chart (PNG)")):
        png = folder / name
        if png.is_file():
            col.download_button(
                label,
                data=lambda p=png: p.read_bytes(),
                file_name=f"{r.study_id}-{name}",
                mime="image/png",
                key=f"{key}.dl_{name}",
                on_click="ignore",
                icon=":material/image:",
            )
        else:
            col.caption(f"No {name} was saved.")
    files = [str(folder)]
    if folder.is_dir():
        files += [f"  {p.name}" for p in sorted(folder.iterdir()) if p.is_file()]
    st.caption("Results folder (the artifacts store is the source of truth; run results live under runs/<key>/):")
    st.code("\n".join(files), language="text")


def _refine(study_id: str, force: bool) -> None:
    try:
        ids = client.refine(redis(), study_id, force=force)
    except (KeyError, ValueError) as err:
        flash(PAGE, "error", f"Could not refine: {err}")
        return
    flash(PAGE, "success", f"Queued {len(ids)} more runs; the fits and the ranking update when they finish.")


def _decision(r: StudyResults, key: str) -> None:
    """Too close to call? Say why, and offer the cheapest next step (core.decision) as one click."""
    decision = r.metrics.get("decision") or {}
    p = decision.get("proposal")
    study = JobStore(redis()).study(r.study_id) or {}
    if study.get("status") != "finished" or study.get("phase") != "done":
        if study.get("refined_at_size"):
            st.info(
                f"Refining: runs at {int(study['refined_at_size']):,} rows are queued or running; this page shows "
                "the ranking before them until they finish.",
                icon=":material/hourglass_top:",
            )
        return
    if decision.get("inconclusive"):
        reasons = "\n".join(f"- {md_escape(x)}" for x in decision.get("reasons") or [])
        st.warning("**Inconclusive: the top two are too close to call.**\n\n" + reasons, icon=":material/balance:")
    if not p:
        return
    label = f"Refine: {p['runs']} runs at {p['size']:,} rows"
    help_text = "Enqueue " + proposal_text(p) + " as more runs of this study; the ranking is recomputed after them."
    if decision.get("inconclusive"):
        st.caption(md_escape("Cheapest next step: " + proposal_text(p) + "."))
        st.button(
            label, key=f"{key}.refine", type="primary", help=help_text, on_click=_refine, args=(r.study_id, False)
        )
    else:
        with st.expander("Refine anyway"):
            st.caption(md_escape("The decision looks settled. " + proposal_text(p) + " would add points near it."))
            st.button(label, key=f"{key}.refine", help=help_text, on_click=_refine, args=(r.study_id, True))


def _summary(r: StudyResults, key: str, compact: bool = False) -> None:
    m = r.metrics
    if compact:
        st.subheader(md_escape(m.get("study") or r.study_id))
        st.caption(md_escape(r.study_id))
    _facts(r)
    _warnings(r)
    if not compact:
        _decision(r, key)
    _scaling(r, key)
    st.subheader("Ranking" if not compact else "Ranking (primary metric)")
    _ranking(r, key, compact=compact)


# -- the page ---------------------------------------------------------------------------------------


def main() -> None:
    st.title("Results")
    show_flash(PAGE)
    store = JobStore(redis())
    studies = [s for s in store.studies() if has_results(s)]
    if not studies:
        st.info(
            "No finished study yet — submit one from Setup (**Load demo study**, then **Run**) and follow it "
            "on Jobs; its curves and ranking appear here when it finishes.",
            icon=":material/insights:",
        )
        page_link("jobs.py", "Go to Jobs", ":material/manufacturing:")
        return
    ids = [s["id"] for s in studies]
    labels = {s["id"]: views.study_label(s) for s in studies}
    c1, c2 = st.columns(2)
    sid = pick_study(ids, labels, "results.study", where=c1)
    other = c2.selectbox(
        "Compare with",
        [None, *[i for i in ids if i != sid]],
        key="results.compare",
        format_func=lambda i: "(none)" if i is None else labels.get(i, i),
    )

    result = load(sid)
    if result is None:
        st.warning(
            "This study has no metrics.json in the artifacts store yet (still ranking, or written to another "
            "ARTIFACTS_DIR). Check it on the Jobs page.",
            icon=":material/hourglass_top:",
        )
        return
    if other:
        second = load(other)
        left, right = st.columns(2)
        with left:
            _summary(result, "a", compact=True)
        with right:
            if second is None:
                st.warning("The study to compare with has no metrics.json yet.")
            else:
                _summary(second, "b", compact=True)
        st.divider()
        st.header(md_escape(f"Details: {result.metrics.get('study') or sid}"))
        _ranking(result, "a.full")
        _details(result, "a")
        return
    _summary(result, "a")
    _prescreen(next(s for s in studies if s["id"] == sid), result)
    _details(result, "a")


def _prescreen(study: dict, r: StudyResults) -> None:
    """The embedding pre-screen of the study's data beside the trained ranking, when one was made."""
    screened = artifacts().get_prescreen(study.get("prescreen_key"))
    if screened is None:
        return
    trained = [row["candidate"] for row in r.metrics.get("ranking") or []]
    with st.expander("Pre-screen (embeddings, before training) beside the trained ranking", expanded=False):
        prescreen_view.show_result(screened, trained_ranking=trained)


main()
