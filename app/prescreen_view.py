"""The embedding pre-screen on the pages: its state while it runs, its table, its agreement with training.

Setup shows it after validation (before Run); Results shows it beside the trained ranking.
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from app.ui import md_escape
from core.prescreen import COLUMNS, agreement, table

INTRO = (
    "A ranking from sentence embeddings (all-MiniLM-L6-v2, whatever model the study trains), on a sample of "
    "each source, in seconds and before any training. It sees how close a candidate is to the benchmark and "
    "how well its labels transfer; it cannot see what training makes of it, so the trained ranking decides."
)


def show_state(state: Mapping) -> None:
    """The pre-screen's table when finished, else its progress or its error."""
    status = state.get("status")
    if status == "finished":
        show_result(state["result"])
    elif status in ("queued", "started"):
        progress = state.get("progress") or {}
        done, total = progress.get("done") or 0, progress.get("total") or 0
        phase = progress.get("phase") or ("waiting for a worker" if status == "queued" else "starting")
        text = f"Pre-screen {status}: {phase}" + (f" ({done}/{total})" if total else "")
        st.progress(done / total if total else 0.0, text=md_escape(text))
    elif status == "failed":
        st.error(md_escape(f"The pre-screen failed: {state.get('error')}"), icon=":material/error:")


def show_result(result: Mapping, trained_ranking: list[str] | None = None) -> None:
    st.caption(INTRO)
    frame = table(result)
    config = {
        c: st.column_config.NumberColumn(title, help=helptext, format="%.3f")
        for c, (title, helptext) in COLUMNS.items()
    }
    config["rank"] = st.column_config.TextColumn("Rank")
    config["source"] = st.column_config.TextColumn("Source")
    config["near-dups removed"] = st.column_config.NumberColumn(
        "Near-dups removed", help="Rows of the whole source removed as near-copies of benchmark rows"
    )
    st.dataframe(frame, hide_index=True, width="stretch", column_config=config)
    removed = result.get("near_duplicates_removed")
    shown = (
        f"; near-duplicates of benchmark rows removed from the full data: {sum(removed.values()):,}" if removed else ""
    )
    st.caption(
        md_escape(f"{result.get('sample', '?')} rows sampled per source; took {result.get('seconds', '?')} s{shown}.")
    )
    if trained_ranking:
        agree = agreement(result["ranking"], trained_ranking)
        if agree["pairs"]:
            top = "the same candidate first" if agree["top1_same"] else "a different candidate first"
            st.markdown(
                md_escape(
                    f"Agreement with the trained ranking: {agree['pairs_agreeing']} of {agree['pairs']} pairs in the "
                    f"same order ({agree['pairwise']:.0%}), {top}."
                )
            )
