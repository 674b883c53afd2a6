"""The dashboard: `streamlit run app/main.py` (started by `make run` / `workbench up`).

Four pages over the client API in workers/: Setup (build and submit a study), Jobs (live runs),
Results (curves and ranking), Catalog (candidate datasets). Sign-in is optional: with an `[auth]`
section in .streamlit/secrets.toml, users sign in with OIDC (st.login); without it the dashboard
is open, for a trusted network.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run app/main.py` puts app/ first, not the project
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app.common import auth_configured  # noqa: E402

st.set_page_config(page_title="Data Curation Workbench", page_icon=":material/science:", layout="wide")

if auth_configured() and not st.user.is_logged_in:
    st.title("Data Curation Workbench")
    st.write("Sign in to submit and follow studies.")
    st.button("Sign in", on_click=st.login, type="primary")
    st.stop()

SCREENS = ROOT / "app" / "screens"
pages = [
    st.Page(str(SCREENS / "setup.py"), title="Setup", icon=":material/tune:", url_path="setup", default=True),
    st.Page(str(SCREENS / "jobs.py"), title="Jobs", icon=":material/pending_actions:", url_path="jobs"),
    st.Page(str(SCREENS / "results.py"), title="Results", icon=":material/monitoring:", url_path="results"),
    st.Page(str(SCREENS / "catalog.py"), title="Catalog", icon=":material/library_books:", url_path="catalog"),
]
nav = st.navigation(pages)
with st.sidebar:
    st.caption("Which candidate dataset is worth adding to your training data?")
    if auth_configured() and st.user.is_logged_in:
        st.caption(f"Signed in as {st.user.get('email') or st.user.get('name')}")
        st.button("Sign out", on_click=st.logout)
nav.run()
