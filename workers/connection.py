"""The Redis connection: REDIS_URL, or the embedded server that `workbench up` started."""

from __future__ import annotations

import os

from redis import Redis

from core.paths import workbench_home

DEFAULT_URL_FILE = "redis.url"  # written by `workbench up` for the embedded server


def redis_url() -> str:
    """REDIS_URL if set; else the embedded server's URL recorded by `workbench up`."""
    url = os.environ.get("REDIS_URL")
    if url:
        return url
    recorded = workbench_home() / "redis" / DEFAULT_URL_FILE
    if recorded.is_file():
        return recorded.read_text().strip()
    raise ConnectionError(
        "no Redis configured: set REDIS_URL (e.g. redis://127.0.0.1:6379/0), or start the embedded one with "
        "`workbench up`"
    )


def get_redis(url: str | None = None) -> Redis:
    conn = Redis.from_url(url or redis_url(), socket_connect_timeout=5, health_check_interval=30)
    try:
        conn.ping()
    except Exception as err:  # redis raises several kinds; all mean "not reachable"
        raise ConnectionError(f"cannot reach Redis at {_safe(url or redis_url())}: {err}") from None
    return conn


def _safe(url: str) -> str:
    """The URL without its password, for messages and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
