"""Page helpers every screen shares: Markdown escaping, flash messages, page links, durations, the study picker.

Each exists once here, so that pages escape user text the same way and pick a study the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitAPIException

SCREENS = Path(__file__).resolve().parent / "screens"
ICONS = {"success": ":material/check_circle:", "error": ":material/error:", "info": ":material/info:"}
# CommonMark lets a backslash escape any ASCII punctuation, and Streamlit's Markdown gives meaning to
# many of them (:red[x], :material/icon:, $math$, <b>, [a](b)): escaping all of them is the safe rule.
_ASCII_PUNCTUATION = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")


def md_escape(text: object) -> str:
    """User text that shows literally in a Markdown element (st.error, st.caption…): no formatting, link,
    HTML, math or colour survives; line breaks stay line breaks."""
    escaped = _ASCII_PUNCTUATION.sub(r"\\\1", str(text))
    return escaped.replace("\r\n", "\n").replace("\n", "  \n")


def flash(page: str, kind: str, message: str) -> None:
    """Keep a message for the next run of `page` (a callback's outcome, shown after the rerun it causes)."""
    st.session_state[f"{page}.flash"] = (kind, message)


def show_flash(page: str) -> None:
    """Show `page`'s kept message once, escaped: success, info or error."""
    kept = st.session_state.pop(f"{page}.flash", None)
    if kept:
        kind, message = kept
        show = {"success": st.success, "info": st.info}.get(kind, st.error)
        show(md_escape(message), icon=ICONS.get(kind, ICONS["error"]))


def page_link(page: str, label: str, icon: str) -> None:
    """A link to another screen (setup.py, jobs.py…); nothing when the page runs on its own, as in tests."""
    try:
        st.page_link(str(SCREENS / page), label=label, icon=icon)
    except (StreamlitAPIException, KeyError):  # no st.navigation around the page: nothing to link to
        pass


def duration(seconds: float | None, unknown: str = "") -> str:
    """12s, 3m 05s, 2h 04m; `unknown` when there is no time."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return unknown
    s = int(round(float(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {(s % 3600) // 60:02d}m"


def pick_study(ids: list[str], labels: Mapping[str, str], key: str, where=st) -> str:
    """The study picker of Jobs and Results: the session's last study, else the link's ?study=, else the first.

    The choice is kept as the session's study and in the address, so a link or a page switch keeps it.
    """
    if st.session_state.get(key) not in ids:
        wanted = [st.session_state.get("study_id"), st.query_params.get("study")]
        st.session_state[key] = next((w for w in wanted if w in ids), ids[0])
    study_id = where.selectbox("Study", ids, key=key, format_func=lambda i: labels.get(i, i))
    st.session_state["study_id"] = study_id
    if st.query_params.get("study") != study_id:
        st.query_params["study"] = study_id
    return study_id
