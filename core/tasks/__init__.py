"""The task registry: one module per task in this package, each defining `TASK`, a `Task`.

`get(name)` and `names()` are what the rest of the workbench reads. Importing the registry is
cheap (no torch or transformers), so the web app uses it too.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Annotated

from pydantic import AfterValidator

from core.tasks.base import SOURCE_OPTIONS, EvalSettings, Task, format_options, parse_options

__all__ = [
    "SOURCE_OPTIONS",
    "EvalSettings",
    "Task",
    "all_tasks",
    "format_options",
    "get",
    "lower_is_better",
    "names",
    "parse_options",
    "TaskName",
]


def _discover() -> dict[str, Task]:
    found: list[Task] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name != "base":
            found.append(importlib.import_module(f"{__name__}.{info.name}").TASK)
    return {t.name: t for t in sorted(found, key=lambda t: t.position)}


_TASKS = _discover()


def names() -> tuple[str, ...]:
    return tuple(_TASKS)


def all_tasks() -> list[Task]:
    return list(_TASKS.values())


def get(name: str) -> Task:
    try:
        return _TASKS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task '{name}'; choose one of {list(_TASKS)}") from None


def _known(name: str) -> str:
    get(name)  # ValueError naming the tasks
    return name


# A task name in a pydantic model (the study spec, a catalog entry): checked against the registry.
TaskName = Annotated[str, AfterValidator(_known)]


def lower_is_better() -> tuple[str, ...]:
    """Metric names where lower is better (losses), over every task."""
    return tuple(dict.fromkeys(m for t in _TASKS.values() for m, higher in t.metrics.items() if not higher))
