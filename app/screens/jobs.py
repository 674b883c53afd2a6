"""Jobs: the studies and their runs, live while anything is queued or running.

A thin view over the job store. Everything lives in Redis, nothing in this page: closing the
browser changes nothing, and the page shows the same state on return. The selected study's runs
come a page at a time from `workers.client.reconcile_page` (one script in Redis filters by status,
candidate and search, counts every status, and returns the shown page's records only; runs whose
worker died are corrected), into one DataFrame (app.views.runs_frame). The block that shows them is an
`st.fragment` that reruns every 2 s while the study is live and stops when everything is terminal.
User text (names, errors, logs) goes to tables, st.code or st.text: never Markdown or HTML.
"""

from __future__ import annotations

import time

import streamlit as st

from app import views
from app.common import redis
from app.ui import flash, md_escape, page_link, pick_study, show_flash
from core.charts import loss_curve_chart
from workers import client
from workers.backends import get_backend
from workers.store import STATUSES, TERMINAL, JobStore

REFRESH = "2s"
LOG_TAIL = 200
ICONS = {
    "wait": ":material/hourglass_top:",
    "results": ":material/insights:",
    "stop": ":material/block:",
    "setup": ":material/tune:",
}
PAGE = "jobs"


def run_counts_by_study(conn, study_ids: list[str]) -> dict[str, dict[str, int]]:
    """{study id: {status: n}}, counted inside Redis: one small reply per study, not every run."""
    return JobStore(conn).study_run_counts(study_ids) if study_ids else {}


def study_is_live(study: dict, counts: dict[str, int]) -> bool:
    """Runs still queued or running, or the study's fits and ranking not written yet."""
    unranked = study.get("status") in ("submitting", "queued", "running") and study.get("phase") != "done"
    return views.is_live(counts) or unranked


def live_status(study: dict, counts: dict[str, int]) -> str:
    """A study's status as its runs' counts say now; the record's word (written by the tasks) once none is live."""
    if counts.get("running"):
        return "running"
    if counts.get("queued"):
        return "queued"
    stored = study.get("status") or "queued"
    if stored not in ("submitting", "queued", "running"):
        return stored  # finished, failed or canceled
    if study.get("phase") != "done":
        return "ranking"  # every run has ended: the fits and the ranking are being written
    return "finished" if counts.get("finished") else "failed"


def study_labels(studies: list[dict], counts: dict[str, dict[str, int]]) -> dict[str, str]:
    """The study picker's labels, with each study's live status."""
    return {s["id"]: views.study_label(dict(s, status=live_status(s, counts.get(s["id"], {})))) for s in studies}


# -- actions (callbacks: they run before the rerun, so the table already shows their effect) ------


def _cancel(target: str, what: str, how: str) -> None:
    """Cancel a study or a run; `how` is the backend's word on what happens to a running run."""
    try:
        ids = client.cancel(redis(), target)
    except (KeyError, ValueError) as err:
        flash(PAGE, "error", f"Could not cancel {what}: {err}")
        return
    if what == "the study":
        flash(
            PAGE,
            "success",
            f"Canceled the study: {len(ids):,} queued or running runs stopped; finished runs "
            f"keep their results and the ranking is computed from them. {how}",
        )
    else:
        flash(PAGE, "success", f"Canceled run {target}. {how}")


def _retry(run_id: str) -> None:
    try:
        job_id = client.retry(redis(), run_id)
    except (KeyError, ValueError) as err:
        flash(PAGE, "error", f"Could not retry: {err}")
        return
    flash(PAGE, "success", f"Run {run_id} is queued again (job {job_id}); the ranking is recomputed after it.")


# -- the page ------------------------------------------------------------------------------------


def _studies_table(frame) -> None:
    st.dataframe(
        frame.assign(progress=frame["progress"] * 100.0),
        hide_index=True,
        column_order=["name", "status", "progress", *STATUSES, "runs", "submitted_by", "submitted_at", "backend", "id"],
        column_config={
            "name": st.column_config.TextColumn("Study"),
            "status": st.column_config.TextColumn("Status"),
            "progress": st.column_config.ProgressColumn("Done", min_value=0.0, max_value=100.0, format="%.0f%%"),
            **{s: st.column_config.NumberColumn(s.capitalize(), format="%d") for s in STATUSES},
            "runs": st.column_config.NumberColumn("Runs", format="%d"),
            "submitted_by": st.column_config.TextColumn("Submitted by"),
            "submitted_at": st.column_config.DatetimeColumn("Submitted", format="YYYY-MM-DD HH:mm"),
            "backend": st.column_config.TextColumn("Backend"),
            "id": st.column_config.TextColumn("Study id"),
        },
        height=min(38 + 35 * len(frame), 260),
    )


def _study_header(study: dict) -> None:
    bits = [
        f"id {study.get('id')}",
        f"backend: {get_backend(study.get('backend')).describe(study)}",
        f"submitted by {study.get('submitted_by') or 'unknown'}",
        f"primary metric: {study.get('primary_metric') or '?'}",
        f"target size: {int(float(study['target_size'])):,}" if study.get("target_size") else "",
    ]
    st.caption(md_escape(" · ".join(b for b in bits if b)))


def _runs_table(frame, metric: str, link_label: str) -> None:
    """The runs; `link_label` names the column of each run's page on its backend ("" when it has none)."""
    st.dataframe(
        views.runs_cells(views.runs_display(frame)),
        hide_index=True,
        column_order=[
            "id",
            "arm",
            "size",
            "seed",
            "status",
            "progress",
            "steps",
            "phase",
            "elapsed",
            "value",
            "error",
            "worker",
            *(["backend_url"] if link_label else []),
            "attempts",
            "cached",
        ],
        column_config={
            "id": st.column_config.TextColumn("Run"),
            "arm": st.column_config.TextColumn("Candidate"),
            "size": st.column_config.NumberColumn("Rows"),
            "seed": st.column_config.NumberColumn("Seed"),
            "status": st.column_config.TextColumn("Status"),
            "phase": st.column_config.TextColumn("Phase"),
            "progress": st.column_config.ProgressColumn("Progress", min_value=0.0, max_value=100.0, format="%.0f%%"),
            "steps": st.column_config.TextColumn("Step", help="step / total of the current phase"),
            "elapsed": st.column_config.TextColumn("Elapsed"),
            "worker": st.column_config.TextColumn("Worker"),
            "backend_url": st.column_config.LinkColumn(link_label or "Link", display_text="open job"),
            "value": st.column_config.TextColumn(metric, alignment="right", help="a dash until the run has finished"),
            "attempts": st.column_config.TextColumn("Attempts", alignment="right"),
            "cached": st.column_config.CheckboxColumn(
                "Cached", help="result reused from an earlier run with the same content key"
            ),
            "error": st.column_config.TextColumn("Error", width="medium"),
        },
    )


def _run_details(store: JobStore, row: dict, cancel_note: str) -> None:
    rid, status = row["id"], row["status"]
    c1, c2, c3 = st.columns([1, 1, 4])
    c1.button(
        "Cancel run",
        key="jobs.cancel_run",
        on_click=_cancel,
        args=(rid, f"run {rid}", cancel_note),
        disabled=status in TERMINAL,
        help="Only a queued or running run can be canceled.",
    )
    c2.button(
        "Retry run",
        key="jobs.retry_run",
        on_click=_retry,
        args=(rid,),
        disabled=status not in ("failed", "canceled"),
        help="Only a failed or canceled run can be retried.",
    )
    if row.get("error"):
        c3.text(f"Error: {row['error']}")
    events = store.events(rid, last=500)
    left, right = st.columns([1, 1])
    with left:
        st.caption("Log (newest last)")
        text = views.log_text(events, tail=LOG_TAIL)
        st.code(text or "(no log lines yet)", language="text", height=300)
    with right:
        losses = views.loss_frame(events)
        if losses.empty:
            st.caption("Training loss")
            st.text("No training-loss points yet: they appear while the run trains.")
        else:
            st.altair_chart(loss_curve_chart(losses), width="stretch")


def _runs_panel(sid: str, live_at_start: bool) -> None:
    """The live block: the study's runs, a run's log and loss, cancel and retry."""
    conn = redis()
    store = JobStore(conn)
    study = store.study(sid)
    if study is None:
        st.warning(
            "This study is gone from the job store (deleted, or Redis was flushed). "
            "`workbench reindex` rebuilds finished studies from the artifacts."
        )
        return
    backend = get_backend(study.get("backend"))
    view = client.reconcile_page(conn, sid, **_page_request())  # only the shown page's records
    counts = view["counts"]
    live = study_is_live(study, counts)
    if live != live_at_start:
        st.rerun()  # start or stop the periodic refresh (it is fixed when the fragment is defined)
    show_flash(PAGE)
    _study_progress(view["total"], counts)
    _study_state(conn, study, counts, live, backend)
    if not view["total"]:
        st.info("This study has no runs.")
        return
    _filters(view)
    rows = views.runs_frame(view["runs"], metric=study.get("primary_metric"), now=time.time())
    if rows.empty:
        st.info("No run matches these filters.")
        return
    _runs_table(rows, study.get("primary_metric") or "metric", backend.link_label)
    st.subheader("Run")
    _run_picker(store, rows, backend.cancel_note)


def _study_progress(total: int, counts: dict[str, int]) -> None:
    done = counts["finished"] + counts["failed"] + counts["canceled"]
    summary = " · ".join(f"{counts[s]:,} {s}" for s in STATUSES)
    st.progress(done / max(1, total), text=f"{done:,} of {total:,} runs done — {summary}")


def _study_state(conn, study: dict, counts: dict[str, int], live: bool, backend) -> None:
    """Where the study stands (finished, ranking, canceled, failed, waiting for a worker) and Cancel study."""
    if study.get("status") == "finished" and study.get("phase") == "done":
        st.success("Finished: the curves and the ranking are on the Results page.", icon=ICONS["results"])
        page_link("results.py", "Open Results", ICONS["results"])
    elif not views.is_live(counts) and live:
        st.info("Every run has ended; the curves are being fitted and the candidates ranked.", icon=ICONS["wait"])
    elif study.get("status") == "canceled":
        st.info("This study was canceled. Finished runs keep their results; retry a run to go on.", icon=ICONS["stop"])
    if study.get("error"):
        st.error(md_escape(f"Study error: {study['error']}"))
    if counts["queued"] and not counts["running"] and not client.queue_workers(conn).get(backend.queue):
        st.warning(
            f"{counts['queued']:,} runs wait on the `{backend.queue}` queue, but no worker listens on it. "
            f"Start one: `workbench worker --queues {backend.queue}` on a machine that shares this Redis and "
            "artifacts folder (with Docker: `docker compose --profile gpu up -d`; see docs/OPERATIONS.md).",
            icon=ICONS["wait"],
        )
    if live:
        st.caption(f"Refreshing every {REFRESH} while runs are queued or running. Closing the browser changes nothing.")
    if views.is_live(counts):
        with st.popover("Cancel study…"):
            st.text(f"Cancel the {counts['queued'] + counts['running']:,} queued and running runs of this study?")
            st.button(
                "Yes, cancel the study",
                key="jobs.cancel_study",
                type="primary",
                on_click=_cancel,
                args=(study["id"], "the study", backend.cancel_note),
            )


def _page_request() -> dict:
    """The filters and page as the widgets below hold them (read first: Redis filters, the page draws)."""
    arm = st.session_state.get("jobs.arm_filter") or "(all)"
    return {
        "statuses": list(st.session_state.get("jobs.status_filter") or []),
        "arm": None if arm == "(all)" else arm,
        "search": st.session_state.get("jobs.search") or "",
        "page": int(st.session_state.get("jobs.page") or 1),
        "page_size": views.PAGE_SIZE,
    }


def _filters(view: dict) -> None:
    """The status, candidate and search filters, what they match, and the page picker."""
    counts = view["counts"]
    f1, f2, f3 = st.columns([2, 1, 2])
    f1.multiselect(
        "Status",
        list(STATUSES),
        key="jobs.status_filter",
        placeholder="all statuses",
        format_func=lambda s: f"{s} ({counts[s]:,})",
    )
    f2.selectbox("Candidate", ["(all)", *view["arms"]], key="jobs.arm_filter")
    f3.text_input("Search", key="jobs.search", placeholder="run id, worker, phase or error text")
    pages = views.n_pages(view["matched"])
    if pages > 1:
        st.caption(f"{view['matched']:,} runs match; {views.PAGE_SIZE} per page.")
        if st.session_state.get("jobs.page", view["page"]) != view["page"]:
            del st.session_state["jobs.page"]  # past the end after a filter change: the widget starts on the last page
        st.pagination(pages, default=view["page"], key="jobs.page")
    else:
        st.caption(f"{view['matched']:,} of {view['total']:,} runs.")


def _run_picker(store: JobStore, rows, cancel_note: str) -> None:
    """Pick one of the shown runs (the first running one, else the first failed, else the first) and show it."""
    records = rows.to_dict("records")
    by_id = {r["id"]: r for r in records}
    if st.session_state.get("jobs.run") not in by_id:
        running = [r["id"] for r in records if r["status"] == "running"]
        failed = [r["id"] for r in records if r["status"] == "failed"]
        st.session_state["jobs.run"] = (running or failed or [records[0]["id"]])[0]
    rid = st.selectbox(
        "Run",
        list(by_id),
        key="jobs.run",
        format_func=lambda i: views.run_label(by_id[i]),
        label_visibility="collapsed",
    )
    _run_details(store, by_id[rid], cancel_note)


def _studies_overview(ids: list[str], first_frame, picker_labels: dict[str, str]) -> None:
    """The studies table; on the first pass the frame main() built, on refreshes a fresh read.

    A refresh that finds a study's label changed (it finished, say) reruns the page, so the picker shows it too.
    """
    if st.session_state.get("_jobs_overview_drawn"):
        conn = redis()
        studies = [s for s in JobStore(conn).studies() if s["id"] in ids]
        counts = run_counts_by_study(conn, ids)
        if study_labels(studies, counts) != picker_labels:
            st.rerun()
        first_frame = views.studies_frame(studies, counts)
    st.session_state["_jobs_overview_drawn"] = True
    _studies_table(first_frame)


def main() -> None:
    st.session_state["_jobs_overview_drawn"] = False
    st.title("Jobs")
    conn = redis()
    store = JobStore(conn)
    studies = store.studies()
    if not studies:
        st.info("No studies yet — go to Setup and click **Load demo study**, then **Run**.", icon=ICONS["setup"])
        page_link("setup.py", "Go to Setup", ICONS["setup"])
        return
    counts = run_counts_by_study(conn, [s["id"] for s in studies])
    frame = views.studies_frame(studies, counts)

    wanted = st.multiselect(
        "Show studies with status", list(STATUSES), key="jobs.study_filter", placeholder="any status"
    )
    listed = [s for s in studies if not wanted or s.get("status") in wanted] or studies
    if wanted and len(listed) == len(studies) and not any(s.get("status") in wanted for s in studies):
        st.caption("No study has these statuses; showing all.")
    listed_ids = [s["id"] for s in listed]
    any_live = any(study_is_live(s, counts.get(s["id"], {})) for s in listed)
    # The overview refreshes on its own while any listed study is live, like the runs below.
    labels = study_labels(listed, counts)
    overview = st.fragment(run_every=REFRESH if any_live else None)(_studies_overview)
    overview(listed_ids, frame[frame["id"].isin(listed_ids)], labels)

    sid = pick_study([s["id"] for s in listed], labels, "jobs.study")
    study = next(s for s in listed if s["id"] == sid)
    _study_header(study)
    live = study_is_live(study, counts.get(sid, {}))
    panel = st.fragment(run_every=REFRESH if live else None)(_runs_panel)
    panel(sid, live)


main()
