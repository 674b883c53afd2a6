"""What every page shares: the Redis connection, the artifacts store, the signed-in user.

Pages stay thin: they read and write through workers.client and draw with core.charts.
"""

from __future__ import annotations

import os

import streamlit as st

from core.artifacts import ArtifactStore


@st.cache_resource(show_spinner=False)
def _redis(url: str):
    from workers.connection import get_redis

    return get_redis(url)


def redis():
    """The shared Redis client, or a page-level error that says how to start one."""
    from workers.connection import redis_url

    try:
        return _redis(redis_url())
    except ConnectionError as err:
        st.error(f"The job queue is not reachable: {err}. Start everything with `make run` (or `workbench up`).")
        st.stop()


def artifacts() -> ArtifactStore:
    return ArtifactStore()


def auth_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def current_user() -> str:
    """Who is using the dashboard: the OIDC user when sign-in is configured, else the OS user."""
    if auth_configured() and getattr(st, "user", None) is not None and st.user.get("is_logged_in"):
        return str(st.user.get("email") or st.user.get("name") or "signed-in user")
    return os.environ.get("WORKBENCH_USER") or os.environ.get("USER") or "anonymous"
