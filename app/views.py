"""Tables for the Jobs and Results pages: records in, DataFrames out, no Streamlit calls and no I/O.

The pages read the job store and metrics.json; these functions turn what they read into the frames
that the pages show and chart. Kept pure so that they are unit-tested without a browser, and so
that the 10k-run paths stay vectorized (one DataFrame build, column operations, formatting only for
the rows a page actually shows).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from app.ui import duration
from core.results import SUMMARY_COLUMNS
from workers.backends.base import DEFAULT_BACKEND
from workers.store import LIVE, STATUSES

BASELINE = "baseline"
PAGE_SIZE = 200

# What the ranking's machine flags mean, in the words the Results page uses.
FLAG_LABELS = {
    "extrapolation": "long extrapolation",
    "no_improvement": "no improvement with size",
    "degenerate": "degenerate fit",
    "crosses": "curve crosses another",
    "repeated_data": "repeated data",
    "repeated_at_target": "repeated at the target",
}

STUDY_COLUMNS = (
    "id name status progress queued running finished failed canceled runs submitted_by submitted_at backend".split()
)
# Fields of a run record (workers.store) that the Jobs page reads.
_RUN_FIELDS = (
    "id index arm size seed status phase step total started_at finished_at worker host backend_url"
    " metrics attempts cached error"
).split()
EMPTY_CELL = "—"
RUN_COLUMNS = (
    "id index arm size seed status phase progress steps elapsed_s worker backend_url value attempts cached error"
).split()


# ---------------------------------------------------------------------------------------------
# Jobs


def studies_frame(studies: Sequence[Mapping], counts: Mapping[str, Mapping[str, int]] | None = None) -> pd.DataFrame:
    """One row per study (in the order given: newest first from the store), with its run counts.

    `counts` maps study id to {status: n}; a study without counts shows its planned run count only.
    `progress` is the share of runs that reached a terminal status.
    """
    counts = counts or {}
    rows = []
    for s in studies:
        sid = str(s.get("id", ""))
        c = counts.get(sid) or {}
        n = int(s.get("n_runs") or sum(c.values()) or 0)
        done = sum(int(c.get(k, 0)) for k in ("finished", "failed", "canceled"))
        rows.append(
            {
                "id": sid,
                "name": str(s.get("name") or sid),
                "status": str(s.get("status") or "queued"),
                "progress": (done / n) if n and c else None,
                **{k: (int(c[k]) if k in c else None) for k in STATUSES},
                "runs": n,
                "submitted_by": str(s.get("submitted_by") or ""),
                "submitted_at": _datetime(s.get("submitted_at")),
                "backend": str(s.get("backend") or DEFAULT_BACKEND),
            }
        )
    frame = pd.DataFrame(rows, columns=STUDY_COLUMNS)
    for k in STATUSES:
        frame[k] = frame[k].astype("Int64")
    frame["submitted_at"] = pd.to_datetime(frame["submitted_at"])
    return frame


def study_label(study: Mapping) -> str:
    """How a study reads in a picker: name, status, when, and its id (names repeat, ids don't)."""
    when = _datetime(study.get("submitted_at"))
    stamp = when.strftime("%Y-%m-%d %H:%M") if when else "?"
    return f"{study.get('name') or study.get('id')} · {study.get('status') or 'queued'} · {stamp} · {study.get('id')}"


def runs_frame(runs: Sequence[Mapping], *, metric: str | None = None, now: float | None = None) -> pd.DataFrame:
    """The runs of a study as a typed frame, in plan order, built with column operations.

    progress: step/total of the current phase (1.0 when finished); steps: "step/total" text;
    elapsed_s: seconds since the run started (to its end when it ended); value: the run's `metric`.
    """
    now = time.time() if now is None else now
    if not runs:
        return pd.DataFrame({c: pd.Series(dtype=_run_dtype(c)) for c in RUN_COLUMNS})
    raw = pd.DataFrame.from_records(list(runs), columns=_RUN_FIELDS)  # only the fields shown: 2x faster
    n = len(raw)

    def col(name: str, default=None) -> pd.Series:
        return raw[name] if name in raw.columns else pd.Series([default] * n, index=raw.index, dtype=object)

    def num(name: str) -> pd.Series:
        return pd.to_numeric(col(name), errors="coerce")

    status = col("status").fillna("queued").astype(str)
    step, total = num("step"), num("total")
    progress = (step / total.where(total > 0)).clip(0.0, 1.0)
    progress = progress.mask(status == "finished", 1.0)
    step_text = step.fillna(0).astype("int64").astype(str)
    total_text = total.fillna(0).astype("int64").astype(str)
    steps = np.where(total.fillna(0) > 0, step_text + "/" + total_text, "")
    started, finished = num("started_at"), num("finished_at")
    end = finished.where(status.isin(["finished", "failed", "canceled"]) & finished.notna(), now)
    elapsed = (end - started).where(started.notna() & (status != "queued"))
    metrics = col("metrics")
    value = [m.get(metric) if metric and isinstance(m, dict) else None for m in metrics]
    frame = pd.DataFrame(
        {
            "id": col("id").astype(str),
            "index": num("index").astype("Int64"),
            "arm": col("arm").astype(str),
            "size": num("size").astype("Int64"),
            "seed": num("seed").astype("Int64"),
            "status": status,
            "phase": col("phase").fillna("").astype(str),
            "progress": progress.astype(float),
            "steps": steps,
            "elapsed_s": elapsed.clip(lower=0).astype(float),
            "worker": col("worker").fillna(col("host")).fillna("").astype(str),
            "backend_url": col("backend_url").replace("", None),
            "value": pd.to_numeric(pd.Series(value, index=raw.index, dtype=object), errors="coerce").astype(float),
            "attempts": num("attempts").astype("Int64"),
            "cached": col("cached").map(_truthy).astype(bool),
            "error": col("error").fillna("").astype(str),
        }
    )
    if frame["index"].notna().all():
        frame = frame.sort_values("index", kind="stable")
    return frame.reset_index(drop=True)


def is_live(counts: Mapping[str, int]) -> bool:
    """Anything still queued or running (the Jobs page keeps refreshing while so)."""
    return any(int(counts.get(s, 0)) > 0 for s in LIVE)


def n_pages(n_rows: int, page_size: int = PAGE_SIZE) -> int:
    return max(1, math.ceil(n_rows / page_size))


def runs_display(page: pd.DataFrame) -> pd.DataFrame:
    """The shown page of runs: elapsed time as text, progress in percent (only rows on screen)."""
    out = page.drop(columns=["index"]).copy()
    out["progress"] = out["progress"] * 100.0
    out.insert(out.columns.get_loc("elapsed_s"), "elapsed", [duration(x) for x in out["elapsed_s"]])
    return out.drop(columns=["elapsed_s"])


def cells_as_text(frame: pd.DataFrame, formats: Mapping[str, str]) -> pd.DataFrame:
    """The columns in `formats` as display text, with an em dash where a cell has no value.

    The grid draws a missing number as "None" whatever a pandas Styler says, so the pages show these
    columns as right-aligned text (only the rows on screen are formatted).
    """
    out = frame.copy()
    for column, spec in formats.items():
        out[column] = [EMPTY_CELL if _missing(v) else spec.format(v) for v in out[column]]
    return out


def runs_cells(shown: pd.DataFrame, metric_format: str = "{:.4f}") -> pd.DataFrame:
    """The shown runs with the metric and attempts as text: a dash until a run has a value."""
    return cells_as_text(shown, {"value": metric_format, "attempts": "{:.0f}"})


def run_label(row: Mapping) -> str:
    """How a run reads in the run picker."""
    size = row.get("size")
    size_text = f"{int(size):,} rows" if size is not None and not pd.isna(size) else "? rows"
    return f"{row.get('id')} · {row.get('arm')} · {size_text} · seed {row.get('seed')} · {row.get('status')}"


def log_text(events: Sequence[Mapping], *, tail: int = 200) -> str:
    """A run's log lines (loss points left out: they are the chart), oldest first, as plain text."""
    lines = []
    for e in events:
        kind = e.get("kind", "log")
        if kind == "loss":
            continue
        stamp = datetime.fromtimestamp(float(e["t"])).strftime("%H:%M:%S") if e.get("t") else "--:--:--"
        prefix = "ERROR " if kind == "error" else ""
        lines.append(f"{stamp}  {prefix}{e.get('message', '')}")
    return "\n".join(lines[-tail:])


def loss_frame(events: Sequence[Mapping]) -> pd.DataFrame:
    """The training-loss points of a run's events (step, loss), in step order."""
    rows = [(e.get("step"), e.get("loss")) for e in events if e.get("kind") == "loss"]
    frame = pd.DataFrame(rows, columns=["step", "loss"]).apply(pd.to_numeric, errors="coerce").dropna()
    return frame.sort_values("step", kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Results


def results_runs_frame(metrics_json: Mapping) -> pd.DataFrame:
    """Per-run metrics of a finished study (metrics.json `runs`), one column per metric."""
    names = list(metrics_json.get("metrics") or [])
    runs = metrics_json.get("runs") or []
    rows = []
    for r in runs:
        m = r.get("metrics") or {}
        train = r.get("train") or {}
        timings = r.get("timings") or {}
        mixture = r.get("mixture") or {}
        row = {"candidate": r.get("candidate") or r.get("arm"), "size": r.get("size"), "seed": r.get("seed")}
        row.update({name: m.get(name) for name in names})
        row.update(
            {
                "steps": train.get("steps"),
                "train_loss": train.get("train_loss"),
                "repetition": mixture.get("candidate_repetition"),
                "train_seconds": timings.get("train_seconds"),
                "total_seconds": timings.get("total_seconds"),
                "cached": bool(r.get("cached")),
                "key": r.get("key"),
            }
        )
        rows.append(row)
    columns = [
        "candidate",
        "size",
        "seed",
        *names,
        "steps",
        "train_loss",
        "repetition",
        "train_seconds",
        "total_seconds",
        "cached",
        "key",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    for c in ["size", "seed", "steps"]:
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("Int64")
    for c in [*names, "train_loss", "repetition", "train_seconds", "total_seconds"]:
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    return frame


def points_frame(runs: pd.DataFrame, metric: str, *, max_points: int = 3000) -> tuple[pd.DataFrame, bool]:
    """Scaling-chart points (arm, size, seed, value) from the per-run frame.

    Beyond `max_points` the chart shows the seed mean per (arm, size) instead of every seed, so a
    study of thousands of runs still draws quickly; the flag says whether that happened.
    """
    if metric not in runs.columns or runs.empty:
        return pd.DataFrame(columns=["arm", "size", "seed", "value"]), False
    pts = runs[["candidate", "size", "seed", metric]].rename(columns={"candidate": "arm", metric: "value"})
    pts = pts.dropna(subset=["size", "value"])
    pts = pts.assign(size=pts["size"].astype(float))
    if len(pts) <= max_points:
        return pts.reset_index(drop=True), False
    means = pts.groupby(["arm", "size"], as_index=False, sort=False)["value"].mean()
    return means.assign(seed="mean").loc[:, ["arm", "size", "seed", "value"]], True


def flag_text(flags: Iterable[str] | None) -> str:
    """Machine flags in words: "degenerate fit, long extrapolation"."""
    return ", ".join(FLAG_LABELS.get(f, str(f).replace("_", " ")) for f in (flags or []))


def ranking_frame(summary: Sequence[Mapping]) -> pd.DataFrame:
    """The ranking table from core.results' ranking summary (baseline row included when it has one).

    Columns: rank, candidate, predicted, interval (text), low, high, gain_over_baseline, p_best,
    measured_at_largest, largest_size, rank_at_largest_size, backtest_error, repetition_at_target,
    flags (in words).
    """
    frame = pd.DataFrame([dict(r) for r in summary], columns=SUMMARY_COLUMNS)
    frame.insert(3, "interval", [interval_text(lo, hi) for lo, hi in zip(frame["low"], frame["high"])])
    frame["candidate"] = frame["candidate"].astype(str)
    frame["flags"] = [flag_text(f) for f in frame["flags"]]
    for c in ["rank", "largest_size", "rank_at_largest_size"]:
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("Int64")
    for c in [
        "predicted",
        "low",
        "high",
        "gain_over_baseline",
        "p_best",
        "measured_at_largest",
        "backtest_error",
        "repetition_at_target",
    ]:
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    return frame


RANKING_FORMATS = {
    "rank": "{:.0f}",
    "predicted": "{:.4f}",
    "low": "{:.4f}",
    "high": "{:.4f}",
    "gain_over_baseline": "{:+.4f}",
    "p_best": "{:.0%}",
    "measured_at_largest": "{:.4f}",
    "largest_size": "{:,.0f}",
    "rank_at_largest_size": "{:.0f}",
    "backtest_error": "{:.4f}",
    "repetition_at_target": "{:.1f}×",
}


def ranking_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """The ranking table's numbers as text, with an em dash where a cell has no value (the baseline's rank,
    gain and P(best))."""
    return cells_as_text(frame, RANKING_FORMATS)


def ranking_chart_frame(ranking: Sequence[Mapping]) -> pd.DataFrame:
    """The candidates with a prediction, in the columns core.charts.ranking_chart takes."""
    columns = ["candidate", "predicted", "low", "high", "gain_over_baseline", "p_best"]
    frame = pd.DataFrame([{c: r.get(c) for c in columns} for r in ranking], columns=columns)
    for c in columns[1:]:
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    return frame[frame["predicted"].notna()].reset_index(drop=True)


def notes_frame(ranking: Sequence[Mapping], baseline: Mapping | None = None) -> pd.DataFrame:
    """Every note behind the flags, one per row (candidate, note): the long form of `flags`."""
    rows = [(str(r.get("candidate")), str(n)) for r in ranking for n in (r.get("notes") or [])]
    if baseline:
        rows += [("baseline (D0 only)", str(n)) for n in (baseline.get("notes") or [])]
    return pd.DataFrame(rows, columns=["candidate", "note"])


def rankings_disagree(ranking: Sequence[Mapping]) -> list[str]:
    """Candidates whose extrapolated rank differs from their plain rank at the largest measured size."""
    return [
        str(r.get("candidate"))
        for r in ranking
        if r.get("rank") is not None
        and r.get("rank_at_largest_size") is not None
        and int(r["rank"]) != int(r["rank_at_largest_size"])
    ]


def plain_order(ranking: Sequence[Mapping]) -> list[str]:
    """Candidates by their rank at the largest measured size (DataDecide's plain ranking)."""
    ranked = [r for r in ranking if r.get("rank_at_largest_size") is not None]
    return [str(r["candidate"]) for r in sorted(ranked, key=lambda r: int(r["rank_at_largest_size"]))]


def interval_text(low, high, spec: str = "{:.4f}") -> str:
    if low is None or high is None or _isnan(low) or _isnan(high):
        return ""
    return f"{spec.format(float(low))} – {spec.format(float(high))}"


def warning_lines(metrics_json: Mapping) -> list[str]:
    """The study's warnings in words ("helpful: degenerate fit"), from the ranking's flags."""
    out = []
    for r in metrics_json.get("ranking") or []:
        if r.get("flags"):
            out.append(f"{r.get('candidate')}: {flag_text(r.get('flags'))}")
    regime = (metrics_json.get("regime") or {}).get("warning")
    if regime:
        out.append(f"training regime: {regime}")
    return out


# ---------------------------------------------------------------------------------------------
# Helpers


def _datetime(ts) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(ts)) if ts not in (None, "") else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _truthy(x) -> bool:
    if isinstance(x, str):
        return x.strip().lower() in ("1", "true", "yes")
    return bool(x) if x is not None and not _isnan(x) else False


def _missing(x) -> bool:
    return x is None or x is pd.NA or _isnan(x)


def _isnan(x) -> bool:
    try:
        return isinstance(x, float) and math.isnan(x)
    except TypeError:
        return False


def _run_dtype(column: str) -> str:
    return {
        "index": "Int64",
        "size": "Int64",
        "seed": "Int64",
        "attempts": "Int64",
        "progress": "float",
        "elapsed_s": "float",
        "value": "float",
        "cached": "bool",
    }.get(column, "object")


def snr_cells(by_metric: Mapping[str, Mapping], primary: str | None) -> pd.DataFrame:
    """One row per metric (the primary first, then by SNR): its signal-to-noise as text, "—" where unknown."""
    rows = [
        {
            "metric": f"{m} (primary)" if m == primary else m,
            "snr": s.get("snr"),
            "signal": s.get("signal"),
            "noise": s.get("noise"),
            "noise_from": s.get("noise_from") or "",
        }
        for m, s in sorted(by_metric.items(), key=lambda kv: (kv[0] != primary, -(kv[1].get("snr") or 0.0)))
    ]
    frame = pd.DataFrame(rows, columns=["metric", "snr", "signal", "noise", "noise_from"])
    return cells_as_text(frame, {"snr": "{:.1f}", "signal": "{:.4f}", "noise": "{:.4f}"})


def predictor_cells(choice: Mapping[str, object]) -> pd.DataFrame:
    """The predictors a study compared (core.predictors): the one used first, each with its backtest, as text."""
    used = choice.get("used")
    rows = []
    for name, p in sorted((choice.get("predictors") or {}).items(), key=lambda kv: kv[0] != used):
        bt = p.get("backtest") or {}
        rows.append(
            {
                "predictor": f"{name} (used)" if name == used else name,
                "pairwise": f"{bt['pairs_right']}/{bt['pairs']}" if bt.get("pairs") else EMPTY_CELL,
                "error": bt.get("mean_abs_error"),
                "folds": ", ".join(bt.get("folds") or []),
                "description": p.get("description") or "",
            }
        )
    frame = pd.DataFrame(rows, columns=["predictor", "pairwise", "error", "folds", "description"])
    return cells_as_text(frame, {"error": "{:.4f}"})
