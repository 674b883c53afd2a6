"""The curated list of candidate datasets (catalog/candidates.json) and turning its ids into sources.

File shape: {"version": 1, "entries": [CatalogEntry, ...]}. An entry points at exactly one of a Hub
dataset (`hub_id`), a file or folder next to the catalog (`path`, relative to the catalog's folder),
or a generated offline demo set (`demo`, a name that core.demo writes as `<name>.jsonl`).
"""

from __future__ import annotations

import difflib
import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core import paths, tasks
from core.artifacts import write_text
from core.spec import SourceSpec, hub_id_problem
from core.tasks.generative import AnswerExtraction

CATALOG_VERSION = 1


class CatalogError(ValueError):
    """A catalog file or entry that cannot be used; the message says what to fix."""


class UnknownCatalogId(CatalogError, KeyError):
    """`Catalog.get` of an id that is not there (a KeyError too, for dict-like callers)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class CatalogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:+-]*$")
    hub_id: str | None = None
    path: str | None = Field(None, description="file or folder, relative to the catalog's folder")
    demo: str | None = Field(None, pattern=r"^[a-z0-9_-]+$", description="an offline demo set made by core.demo")
    config: str | None = None
    split: str = "train"
    revision: str | None = None
    task: tasks.TaskName
    license: str = Field(..., min_length=1)
    size_hint: int | None = Field(None, ge=0, description="approximate rows in the split")
    columns: dict[str, str] = Field(default_factory=dict, description="task field -> source column")
    label_names: list[str] | None = None
    label_map: dict[str, str] = Field(default_factory=dict)
    answer_extraction: AnswerExtraction = "none"
    options: dict[str, Any] = Field(default_factory=dict, description="the task's own source options (see core.tasks)")
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    gated: bool = Field(False, description="the Hub asks users to accept conditions before downloading")
    checked: str | None = Field(
        None, max_length=1000, description="how the columns were checked (dataset card or viewer schema read), and when"
    )

    @field_validator("hub_id")
    @classmethod
    def _hub_id(cls, v: str | None) -> str | None:
        problem = hub_id_problem(v) if v else None
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("path")
    @classmethod
    def _relative_path(cls, v: str | None) -> str | None:
        if v is None:
            return v
        p = PurePosixPath(v.replace("\\", "/"))
        if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
            raise ValueError(f"path '{v}' must be relative to the catalog folder, without '..'")
        return v

    @model_validator(mode="after")
    def _check(self) -> CatalogEntry:
        given = [k for k in ("hub_id", "path", "demo") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"give exactly one of 'hub_id', 'path' or 'demo'; got {given or 'none'}")
        task = tasks.get(self.task)
        known = task.known_fields
        unknown = [f for f in self.columns if f not in known]
        if unknown:
            raise ValueError(
                f"columns maps unknown field(s) {unknown} for task '{self.task}'; fields are {list(known)}"
            )
        for option in tasks.SOURCE_OPTIONS:
            unset = type(self).model_fields[option].get_default(call_default_factory=True)
            if option not in task.source_options and getattr(self, option) != unset:
                users = [t.name for t in tasks.all_tasks() if option in t.source_options]
                raise ValueError(f"{option} applies to {' and '.join(users)} entries only")
        task.check_options(self.options)
        return self

    @property
    def is_math(self) -> bool:
        """Answers are math: graded by equivalence (math_equiv) by default."""
        return self.answer_extraction != "none" or "math" in self.tags

    def source_spec(self, **overrides: Any) -> SourceSpec:
        """A SourceSpec pointing at this entry (resolve() turns it into a concrete one)."""
        return SourceSpec(catalog=self.id, **overrides)


class Catalog:
    def __init__(self, entries: list[CatalogEntry] | None = None, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self._entries: dict[str, CatalogEntry] = {}
        for e in entries or []:
            self.add(e)

    @property
    def entries(self) -> list[CatalogEntry]:
        return list(self._entries.values())

    def ids(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._entries

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, entry_id: str) -> CatalogEntry:
        try:
            return self._entries[entry_id]
        except KeyError:
            close = difflib.get_close_matches(entry_id, self.ids(), n=5, cutoff=0.5)
            hint = (
                f"did you mean {', '.join(repr(c) for c in close)}?"
                if close
                else f"known ids: {', '.join(self.ids()[:30])}"
            )
            raise UnknownCatalogId(f"unknown catalog id '{entry_id}'; {hint}") from None

    def for_task(self, task: str) -> list[CatalogEntry]:
        return [e for e in self._entries.values() if e.task == task]

    def add(self, entry: CatalogEntry | dict, *, replace: bool = False) -> CatalogEntry:
        """Add an entry (validated); an existing id is an error unless replace=True."""
        if not isinstance(entry, CatalogEntry):
            try:
                entry = CatalogEntry.model_validate(entry)
            except ValidationError as err:
                raise CatalogError(f"invalid catalog entry: {_problems(err)}") from None
        if entry.id in self._entries and not replace:
            raise CatalogError(f"catalog id '{entry.id}' already exists; choose another id (or replace it explicitly)")
        self._entries[entry.id] = entry
        return entry

    def remove(self, entry_id: str) -> CatalogEntry:
        entry = self.get(entry_id)
        del self._entries[entry_id]
        return entry

    def save(self, path: str | Path | None = None) -> Path:
        """Write the catalog atomically (temporary file in the same folder, then os.replace)."""
        target = Path(path) if path is not None else (self.path or paths.catalog_file())
        ids = [e.id for e in self._entries.values()]
        if len(set(ids)) != len(ids):  # cannot happen through add(); checked for safety
            raise CatalogError("catalog ids must be unique")
        data = {
            "version": CATALOG_VERSION,
            "entries": [e.model_dump(exclude_defaults=True) for e in self._entries.values()],
        }
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        write_text(target, text)
        self.path = target
        return target

    @property
    def folder(self) -> Path:
        return (self.path or paths.catalog_file()).resolve().parent


def _problems(err: ValidationError) -> str:
    out = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "entry"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field; remove it or check its spelling"
        out.append(f"{loc}: {msg}")
    return "; ".join(out)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and validate a catalog file (default: core.paths.catalog_file())."""
    path = Path(path) if path is not None else paths.catalog_file()
    if not path.is_file():
        raise CatalogError(
            f"catalog file '{path}' does not exist; set WORKBENCH_CATALOG or restore catalog/candidates.json"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CatalogError(f"catalog file '{path.name}' is not valid JSON ({err}); fix the file") from None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise CatalogError(f'catalog file \'{path.name}\' must be an object {{"version": 1, "entries": [...]}}')
    if data.get("version") != CATALOG_VERSION:
        raise CatalogError(
            f"catalog file '{path.name}' has version {data.get('version')!r}; this workbench reads version 1"
        )
    problems: list[str] = []
    entries: list[CatalogEntry] = []
    seen: set[str] = set()
    for i, raw in enumerate(data["entries"]):
        label = f"entries[{i}]" + (f" ('{raw.get('id')}')" if isinstance(raw, dict) and raw.get("id") else "")
        try:
            entry = CatalogEntry.model_validate(raw)
        except ValidationError as err:
            problems.append(f"{label}: {_problems(err)}")
            continue
        if entry.id in seen:
            problems.append(f"{label}: duplicate id '{entry.id}'; ids must be unique")
            continue
        seen.add(entry.id)
        entries.append(entry)
    if problems:
        raise CatalogError(
            f"catalog file '{path.name}' has invalid entries:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    return Catalog(entries, path=path)


_math_ids: dict[tuple[str, int], frozenset[str]] = {}


def is_math_entry(entry_id: str) -> bool:
    """Whether the default catalog's entry `entry_id` holds math answers (False when unknown or unreadable).

    The ids are read once per catalog file version (its mtime), since spec validation asks on every check.
    """
    path = paths.catalog_file()
    try:
        key = (str(path), path.stat().st_mtime_ns)
        if key not in _math_ids:
            _math_ids.clear()
            _math_ids[key] = frozenset(e.id for e in load_catalog(path) if e.is_math)
    except (OSError, CatalogError):
        return False
    return entry_id in _math_ids[key]


# SourceSpec fields an entry provides; an explicit value on the SourceSpec wins.
_OVERRIDABLE = ("config", "split", "revision", "label_names", "answer_extraction")


@dataclass(frozen=True)
class ResolvedSource:
    """A concrete source (a path or a hub_id) and the rows of its split, when its catalog entry knows them."""

    spec: SourceSpec
    size_hint: int | None = None


def resolve(src: SourceSpec, catalog: Catalog | str | Path | None = None, *, task: str | None = None) -> SourceSpec:
    """Turn a SourceSpec with `catalog=` into a concrete one (path or hub_id); see `resolve_source`."""
    return resolve_source(src, catalog, task=task).spec


def resolve_source(
    src: SourceSpec, catalog: Catalog | str | Path | None = None, *, task: str | None = None
) -> ResolvedSource:
    """The one place a catalog entry becomes a concrete source, with the entry's size hint for its split.

    Fields set explicitly on `src` (per `model_fields_set`) override the entry's: config, split,
    revision, label_names, answer_extraction, max_rows, name. `columns`, `label_map` and `options` merge,
    the user's keys winning. The name defaults to the catalog id. A SourceSpec without `catalog`
    is returned unchanged. With `task`, an entry for another task is an error.
    """
    if not src.catalog:
        return ResolvedSource(src)
    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    entry = cat.get(src.catalog)
    if task is not None and entry.task != task:
        others = ", ".join(e.id for e in cat.for_task(task)[:10]) or "none"
        raise CatalogError(
            f"catalog entry '{entry.id}' is a {entry.task} dataset, not {task}; choose a {task} entry ({others})"
        )
    explicit = src.model_fields_set
    data: dict[str, Any] = {"name": src.name or entry.id, "max_rows": src.max_rows}
    if entry.hub_id:
        data["hub_id"] = entry.hub_id
    elif entry.path:
        data["path"] = str((cat.folder / entry.path).resolve())
    else:
        data["path"] = str(_demo_file(entry))
    for f in _OVERRIDABLE:
        data[f] = getattr(src, f) if f in explicit else getattr(entry, f)
    data["columns"] = {**entry.columns, **src.columns}
    data["label_map"] = {**entry.label_map, **src.label_map}
    data["options"] = {**entry.options, **src.options}
    concrete = SourceSpec(**data)
    # The entry's size is only known for the entry's own split.
    same_split = concrete.split == entry.split and concrete.config == entry.config
    return ResolvedSource(concrete, entry.size_hint if same_split else None)


def _demo_file(entry: CatalogEntry) -> Path:
    demo = importlib.import_module("core.demo")  # lazily: generating demo data is someone else's job
    folder = Path(demo.ensure_demo_data())
    file = folder / f"{entry.demo}.jsonl"
    if not file.is_file():
        raise CatalogError(
            f"catalog entry '{entry.id}': demo data '{entry.demo}.jsonl' is not in {folder}; "
            "delete that folder to regenerate the demo data, or fix the entry's 'demo' name"
        )
    return file
