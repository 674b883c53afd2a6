"""The `Backend` interface (where a run executes) and the registry the client, pages and CLI read.

A backend is one module in `workers/backends/` that calls `register(...)` with an instance: its name
and label, the queue and job function of its runs, their RQ timeout, the options it accepts (stored
on the study record under the option's name; those with `form=True` are drawn on the Setup page, those
with a `flag` are `workbench submit` flags), what a cancel does to a running run, and what the Jobs
page shows for it. Its job function wraps the run in `workers.run_lifecycle.run_lifecycle`, and
raises `RunCanceled` or `RunFailed` to end a run early. This module stays light (no Redis, no ML
stack): the CLI reads the registry to build `workbench --help`.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

QUEUE_GPU = "gpu"
QUEUE_DEFAULT = "default"
DEFAULT_BACKEND = "local"  # a study record without a backend ran here

_REGISTRY: dict[str, Backend] = {}


class BackendError(ValueError):
    """An unknown backend or an option it does not accept, with what to fix."""


class RunCanceled(Exception):
    """Raised inside a run's job when the user canceled it; the run then ends cleanly."""


class RunFailed(Exception):
    """Raised inside a run's job when it cannot succeed as configured (no token, missing model): fail it, no retry."""


@dataclass(frozen=True)
class Option:
    """One setting a backend accepts: a text value, one of `choices` or matching `pattern`."""

    name: str  # the study record's field (and the Setup form's key)
    label: str
    help: str = ""
    default: str | None = None
    # The accepted values, or a function giving them when asked (e.g. read from a service, cached).
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] = ()
    pattern: str | None = None  # a full match is required; `hint` says what a valid value looks like
    hint: str = ""
    flag: str | None = None  # the `workbench submit` flag, if any
    form: bool = True  # drawn on the Setup page

    def choice_list(self) -> tuple[str, ...]:
        return tuple(self.choices()) if callable(self.choices) else self.choices

    def check(self, backend: str, value) -> str | None:
        """The value, stripped (None when empty); BackendError with the fix when it is not valid."""
        value = str(value).strip() if value is not None else ""
        if not value:
            return self.default
        choices = self.choice_list()
        if choices and value not in choices:
            raise BackendError(f"{backend} {self.label.lower()} '{value}' is unknown; choose one of {list(choices)}")
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise BackendError(f"{backend} {self.label.lower()} '{value}' is not valid: {self.hint}")
        return value


@dataclass(frozen=True)
class Backend:
    """Where a study's runs execute. Subclass to change how a run is timed, described or stopped."""

    name: str
    label: str
    help: str  # one line for the Setup page
    queue: str  # the RQ queue its run jobs wait on
    job_function: str  # dotted path of the RQ task that executes (or follows) one run
    cancel_note: str  # what a cancel does to a running run, for the Jobs page
    options: tuple[Option, ...] = ()
    link_label: str = ""  # the runs table's column for a run's `backend_url`; "" when runs have none

    def job_timeout(self, run_timeout: int) -> int:
        """The RQ timeout of a run job, from the study's `run_timeout` (seconds)."""
        return run_timeout

    def parse_options(self, values: Mapping | None) -> dict:
        """The study record's fields for `values`, defaults filled in; BackendError on a bad one."""
        values = dict(values or {})
        known = {o.name: o for o in self.options}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise BackendError(
                f"backend '{self.name}' takes no option {unknown[0]!r}; its options: {sorted(known) or 'none'}"
            )
        return {name: option.check(self.label, values.get(name)) for name, option in known.items()}

    def form_options(self) -> list[Option]:
        return [o for o in self.options if o.form]

    def describe(self, study: Mapping) -> str:
        """How the Jobs page names this backend for a study (its label and the options it was given)."""
        given = [f"{o.label.lower()} {study[o.name]}" for o in self.form_options() if study.get(o.name)]
        return f"{self.label} ({', '.join(given)})" if given else self.label

    def stop(self, redis, job_id: str) -> None:
        """A forced cancel: stop the work horse executing the run's job at once (a hung run)."""
        from rq.command import send_stop_job_command

        try:
            send_stop_job_command(redis, job_id)
        except Exception:
            pass  # not executing: the soft cancel (the run's status) is enough


def register(backend: Backend) -> Backend:
    if backend.name in _REGISTRY and _REGISTRY[backend.name] is not backend:
        raise RuntimeError(f"two backends are named '{backend.name}'")
    _REGISTRY[backend.name] = backend
    return backend


def backends() -> dict[str, Backend]:
    """Every backend, by name: each module of this package is imported once and registers its own."""
    import workers.backends as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    return dict(sorted(_REGISTRY.items(), key=lambda item: item[0] != DEFAULT_BACKEND))  # the default first


def get_backend(name: str | None) -> Backend:
    """The backend called `name` (none: the default); BackendError lists the others."""
    registry = backends()
    name = name or DEFAULT_BACKEND
    if name not in registry:
        raise BackendError(f"backend '{name}' is unknown; choose one of {list(registry)}")
    return registry[name]
