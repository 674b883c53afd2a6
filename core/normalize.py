"""Mapping heterogeneous dataset rows onto one task's schema: the shared part.

What each task's rows look like, and how its values are read, is the task's (core/tasks/<task>.py).
Here: resolving the task's fields to source columns (an explicit mapping, then a column of the
field's name, then the task's aliases), the error type, the rows' content fingerprint and the text
keys that contamination compares.

This runs over every row of every dataset in a study, so the loops are plain Python over lists
(no per-row validation models): >1M classification rows/s on one core.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # core.spec imports the task registry, whose modules import this one
    from core.spec import SourceSpec
    from core.tasks import Task

_FP_CHUNK = 8192


class DataError(ValueError):
    """Rows that cannot be normalized; the message names the dataset, the column and the fix."""


@dataclass
class NormalizedData:
    name: str
    task: str
    rows: list[dict]
    labels: list[str] | None  # sorted label names seen (classification only)
    fingerprint: str  # sha256 of the task and the rows' compact JSON: a content key for caching
    dropped: int  # rows removed (empty text, no answer, answer not extractable), see notes
    notes: list[str] = field(default_factory=list)
    # Source row index of each kept row (LoadedSource.indices, minus the dropped rows).
    indices: list[int] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)  # task field -> source column actually used


def normalize(loaded: Any, task: str, src: SourceSpec, *, labels: list[str] | None = None) -> NormalizedData:
    """Map a LoadedSource's rows onto `task`'s schema, raising DataError with the fix on bad data."""
    from core import tasks

    name = loaded.name
    try:
        kind = tasks.get(task)
    except ValueError as err:
        raise DataError(f"{name}: {err}") from None
    rows = loaded.rows
    if not rows:
        raise DataError(f"{name}: the dataset has no rows; give a file or split with data")
    indices = list(loaded.indices) if len(getattr(loaded, "indices", ()) or ()) == len(rows) else list(range(len(rows)))
    columns = list(loaded.columns) or list(rows[0].keys())
    mapping = _resolve_columns(name, kind, src, columns, rows)
    notes: list[str] = []
    out, skipped = kind.normalize_rows(name, rows, mapping, src, loaded, labels, notes)
    dropped = len(rows) - len(out)
    if not out:
        raise DataError(
            f"{name}: no rows left after normalization ({dropped:,} dropped: {'; '.join(notes) or 'none usable'}); "
            "check the column mapping and the data"
        )
    if skipped:
        gone = set(skipped)
        indices = [idx for i, idx in enumerate(indices) if i not in gone]
    return NormalizedData(
        name=name,
        task=task,
        rows=out,
        labels=kind.labels(out),
        fingerprint=fingerprint_rows(out, task),
        dropped=dropped,
        notes=notes,
        indices=indices,
        columns=mapping,
    )


def text_value(name: str, index: int, column: str, field_name: str, value: Any) -> str:
    """A text field's value as it is ("" when missing); DataError with the fix when it is not a string."""
    if value is None:
        return ""
    if value.__class__ is not str:
        raise type_error(name, index, column, field_name, value, "text (a string)")
    return value


# ---------------------------------------------------------------------------------------------
# Column mapping


def _resolve_columns(name: str, task: Task, src: SourceSpec, columns: list[str], rows: list[dict]) -> dict[str, str]:
    known = task.known_fields
    given = dict(src.columns)
    unknown = [f for f in given if f not in known]
    if unknown:
        raise DataError(
            f"{name}: columns maps unknown field(s) {unknown} for task '{task.name}'; the fields are {list(known)} "
            "(write columns: {field: <source column>})"
        )
    try:
        task.check_options(src.options)
    except ValueError as err:
        raise DataError(f"{name}: {err}") from None
    present = set(columns)
    mapping: dict[str, str] = {}
    for f in known:
        if f in given:
            col = given[f]
            if col not in present:
                raise DataError(
                    f"{name}: columns maps '{f}' to '{col}', which is not a column; the columns are {columns}; "
                    f"fix it with columns: {{{f}: <column>}}"
                )
            mapping[f] = col
        elif f in present:
            mapping[f] = f
        else:
            alias = next((a for a in task.aliases.get(f, ()) if a in present and a not in mapping.values()), None)
            if alias is not None:
                mapping[f] = alias
    missing = task.missing_fields(mapping, rows, src)
    if missing:
        f = missing[0]
        raise DataError(
            f"{name}: no column for field '{f}' (task '{task.name}' needs {list(task.fields)}); the columns are "
            f"{columns}; map it with columns: {{{f}: <column>}}" + task.missing_help.get(f, "")
        )
    return mapping


def type_error(name: str, index: int, column: str, field_name: str, value: Any, want: str) -> DataError:
    return DataError(
        f"{name}: row {index}: column '{column}' (field '{field_name}') holds a {type(value).__name__}, not {want}; "
        f"map '{field_name}' to a {want.removeprefix('a ')} column with columns: {{{field_name}: <column>}} or "
        "fix that row"
    )


# ---------------------------------------------------------------------------------------------
# Keys and fingerprints


def fingerprint_rows(rows: list[dict], task: str) -> str:
    """sha256 over the task and the rows' compact JSON, in chunks (bounded memory, deterministic)."""
    h = hashlib.sha256(task.encode() + b"\n")
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for start in range(0, len(rows), _FP_CHUNK):
        h.update(dumps(rows[start : start + _FP_CHUNK]).encode("utf-8", "surrogatepass"))
        h.update(b"\n")
    return h.hexdigest()


_PUNCT = re.compile(r"[^\w\s]|_")
# The same deletion for ASCII text, done by bytes.translate (several times faster than the regex).
_ASCII_DELETE = bytes(c for c in range(128) if not (chr(c).isalnum() or chr(c).isspace()))


def normalize_text(text: str) -> str:
    """Lowercase, punctuation removed, whitespace collapsed: the text that contamination compares."""
    text = text.lower()
    if text.isascii():
        return " ".join(text.encode().translate(None, _ASCII_DELETE).decode().split())
    return " ".join(_PUNCT.sub("", text).split())


def text_key(row: dict, task: str) -> str:
    """Hash of a normalized row's input text (its task's `text`), for finding benchmark rows inside candidate data."""
    from core import tasks

    return _key(tasks.get(task).text(row))


def text_keys(rows: list[dict], task: str) -> list[str]:
    from core import tasks

    text = tasks.get(task).text
    return [_key(text(r)) for r in rows]


def _key(text: str) -> str:
    return hashlib.blake2b(normalize_text(text).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
