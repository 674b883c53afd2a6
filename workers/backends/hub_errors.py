"""How the HF Jobs backend answers the Hub's errors: what to retry, how long to wait, what fails at once.

- 401, 402 and 403 fail the run at once with what to fix (a bad token, no paid plan or credits, a
  token without Jobs permission in that namespace): retrying cannot help and may cost.
- 429 (rate limited) is waited out: the answer's Retry-After, else a growing backoff.
- 5xx and transport errors (connection reset, timeouts) are retried with a growing backoff.
- Anything else (400, 404, 409...) is the caller's to handle: it is raised unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from workers.backends.base import RunFailed

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_WAIT_S = 300.0  # the longest single wait, whatever Retry-After says
BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)

_AUTH_FIX = {
    401: "the Hub refused the token in HF_TOKEN (invalid or expired): set a valid one in the worker's environment",
    402: "the Hub answered 402 Payment Required: HF Jobs needs a paid plan (PRO, Team or Enterprise) or credits "
    "on the account or organization that runs the Jobs; add them, or run the study on local workers",
    403: "the Hub answered 403 Forbidden: the token in HF_TOKEN may not run Jobs in this namespace; use a token "
    "with write access (a fine-grained token needs the Jobs permission) or set the namespace option to one you "
    "may use",
}


def status_of(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def retry_after(err: BaseException) -> float | None:
    """Seconds the Hub asked to wait (Retry-After in seconds), if it said."""
    response = getattr(err, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def is_transient(err: BaseException) -> bool:
    """A rate limit, a server error or a transport failure: worth another try."""
    status = status_of(err)
    if status is not None:
        return status == 429 or status >= 500
    module = type(err).__module__.split(".")[0]
    return isinstance(err, (OSError, ConnectionError, TimeoutError)) or module in (
        "httpx",
        "httpx2",
        "httpcore",
        "httpcore2",
    )


def refuse_auth(err: BaseException, what: str) -> None:
    """Raise RunFailed with the fix when `err` is a 401/402/403."""
    fix = _AUTH_FIX.get(status_of(err) or 0)
    if fix:
        raise RunFailed(f"{what}: {fix}") from None


def wait_for(err: BaseException, attempt: int, sleep: Callable[[float], None] = time.sleep) -> float:
    """Sleep before the next try: Retry-After for a 429, else the backoff for this attempt. Returns the wait."""
    asked = retry_after(err) if status_of(err) == 429 else None
    wait = min(MAX_WAIT_S, asked if asked is not None else BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
    sleep(wait)
    return wait


def call(fn: Callable[[], T], what: str, *, attempts: int = 6, on_wait: Callable[[str], None] | None = None) -> T:
    """`fn()`, retried through rate limits and transient errors; 401/402/403 fail the run with the fix."""
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as err:
            refuse_auth(err, what)
            if not is_transient(err) or attempt == attempts - 1:
                raise
            waited = wait_for(err, attempt)
            note = f"{what}: the Hub answered {status_of(err) or type(err).__name__}; retrying after {waited:.0f} s"
            log.warning(note)
            if on_wait:
                on_wait(note)
    raise AssertionError("unreachable")
