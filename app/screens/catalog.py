"""Catalog page: browse the candidate datasets, add or edit an entry after checking it against a preview.

Every entry is checked before it is saved: the source is read with a small row cap
(core.sources.load_source) and mapped onto the task (core.normalize.normalize). Save is enabled only
while the form holds exactly the fields of the last successful check (a hash of the checked entry is
kept in session_state). The catalog file is written atomically by Catalog.save.

User text (ids, descriptions, paths, error messages naming columns) is never rendered as HTML or
markdown: tables go through st.dataframe, free text through st.text, and messages shown in
st.error/st.success/st.info are markdown-escaped first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # when the page is run on its own (tests, `streamlit run app/screens/catalog.py`)
    sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from app.ui import flash, md_escape, show_flash  # noqa: E402
from core import paths, tasks  # noqa: E402
from core.catalog import Catalog, CatalogEntry, CatalogError, load_catalog, resolve  # noqa: E402
from core.demo import DEMO_SIZES, MATH_DEMO_SIZES, MC_DEMO_SIZES  # noqa: E402
from core.normalize import DataError, normalize  # noqa: E402
from core.sources import SourceError, load_source  # noqa: E402
from core.spec import SourceSpec, stable_hash  # noqa: E402
from core.tasks.generative import EXTRACTIONS as EXTRACTION_NAMES  # noqa: E402

TASKS = tasks.names()

PREVIEW_ROWS = 50  # rows read from the source when checking an entry
PREVIEW_SHOWN = 20  # normalized rows shown

NEW = ""  # the "new entry" choice of the entry selector
KINDS = ("Hub id", "local path", "offline demo")
ALL_TASKS = "all tasks"
EXTRACTIONS = EXTRACTION_NAMES
DEMO_NAMES = (*DEMO_SIZES, *MC_DEMO_SIZES, *MATH_DEMO_SIZES)
ANY_SIZE = "any size"
# Size filter buckets: label -> rows in [low, high).
SIZES = {"under 10k rows": (0, 10_000), "10k-100k rows": (10_000, 100_000), "100k-1M rows": (100_000, 1_000_000)}
SIZES["1M rows or more"] = (1_000_000, float("inf"))

# Session state keys (all prefixed, so other pages' keys never collide).
K_TARGET = "cat_target"
K_CHECK = "cat_check"
PAGE = "cat"  # the key of the page's flash message
K_CONFIRM = "cat_confirm_delete"
FORM_KEYS = {
    "id": "cat_f_id",
    "kind": "cat_f_kind",
    "source": "cat_f_source",
    "demo": "cat_f_demo",
    "config": "cat_f_config",
    "split": "cat_f_split",
    "revision": "cat_f_revision",
    "task": "cat_f_task",
    "license": "cat_f_license",
    "gated": "cat_f_gated",
    "size_hint": "cat_f_size_hint",
    "columns": "cat_f_columns",
    "label_names": "cat_f_label_names",
    "label_map": "cat_f_label_map",
    "answer_extraction": "cat_f_answer_extraction",
    "options": "cat_f_options",
    "description": "cat_f_description",
    "tags": "cat_f_tags",
    "checked": "cat_f_checked",
}
BLANK: dict[str, Any] = {
    "id": "",
    "kind": KINDS[0],
    "source": "",
    "demo": DEMO_NAMES[0],
    "config": "",
    "split": "train",
    "revision": "",
    "task": TASKS[0],
    "license": "",
    "gated": False,
    "size_hint": None,
    "columns": "",
    "label_names": "",
    "label_map": "",
    "answer_extraction": "none",
    "options": "",
    "description": "",
    "tags": "",
    "checked": "",
}


def is_demo(entry: CatalogEntry) -> bool:
    return entry.demo is not None


def kind_of(entry: CatalogEntry) -> str:
    return KINDS[2] if entry.demo else KINDS[1] if entry.path else KINDS[0]


# ---------------------------------------------------------------------------------------------
# The table


def catalog_frame(entries: list[CatalogEntry]) -> pd.DataFrame:
    rows = []
    for e in entries:
        rows.append(
            {
                "kind": "offline demo" if e.demo else ("local" if e.path else "Hub"),
                "id": e.id,
                "task": e.task,
                "license": e.license,
                "gated": "gated" if e.gated else "",
                "size hint": e.size_hint,
                "source": e.hub_id or e.path or f"demo: {e.demo}",
                "config": e.config or "",
                "split": e.split,
                "columns": ", ".join(f"{k}={v}" for k, v in e.columns.items()),
                "labels": ", ".join(e.label_names or []),
                "tags": ", ".join(e.tags),
                "description": e.description,
                "checked": e.checked or "",
            }
        )
    columns = [
        "kind",
        "id",
        "task",
        "license",
        "gated",
        "size hint",
        "source",
        "config",
        "split",
        "columns",
        "labels",
        "tags",
        "description",
        "checked",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    frame["size hint"] = frame["size hint"].astype("Int64")  # blanks stay blank, numbers stay integers
    return frame


def license_family(entry: CatalogEntry) -> str:
    """The license without its remarks, for the filter: "other (GLUE; ...)" -> "other"."""
    return entry.license.split("(")[0].strip().lower() or "unknown"


def filter_entries(
    entries: list[CatalogEntry],
    task: str,
    query: str,
    licenses: list[str] | None = None,
    size: str = ANY_SIZE,
    hide_gated: bool = False,
) -> list[CatalogEntry]:
    """Entries of `task` whose text holds `query`, with one of `licenses` (any if none), in the `size`
    bucket (entries without a size hint only under ANY_SIZE), not gated when `hide_gated`."""
    q = query.strip().lower()
    low, high = SIZES.get(size, (None, None))
    out = []
    for e in entries:
        if task != ALL_TASKS and e.task != task:
            continue
        if licenses and license_family(e) not in licenses:
            continue
        if low is not None and (e.size_hint is None or not low <= e.size_hint < high):
            continue
        if hide_gated and e.gated:
            continue
        if q:
            hay = " ".join(
                [e.id, e.hub_id or "", e.path or "", e.demo or "", e.config or "", e.license, e.description, *e.tags]
            ).lower()
            if q not in hay:
                continue
        out.append(e)
    return out


# ---------------------------------------------------------------------------------------------
# Form <-> entry


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in (text or "").splitlines() if ln.strip()]


def _pairs(text: str, what: str, problems: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, line in enumerate(_lines(text), 1):
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            pair = "field=column" if what == "column mapping" else "source=label"
            problems.append(f"{what}, line {i} ('{line}'): write one {pair} per line")
            continue
        if key in out:
            problems.append(f"{what}: '{key}' is given twice; keep one line for it")
            continue
        out[key] = value
    return out


def form_values() -> dict[str, Any]:
    return {name: st.session_state.get(key, BLANK[name]) for name, key in FORM_KEYS.items()}


def entry_values(e: CatalogEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "kind": kind_of(e),
        "source": e.hub_id or e.path or "",
        "demo": e.demo if e.demo in DEMO_NAMES else DEMO_NAMES[0],
        "config": e.config or "",
        "split": e.split,
        "revision": e.revision or "",
        "task": e.task,
        "license": e.license,
        "gated": e.gated,
        "size_hint": e.size_hint,
        "columns": "\n".join(f"{k}={v}" for k, v in e.columns.items()),
        "label_names": "\n".join(e.label_names or []),
        "label_map": "\n".join(f"{k}={v}" for k, v in e.label_map.items()),
        "answer_extraction": e.answer_extraction,
        "options": "\n".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in e.options.items()),
        "description": e.description,
        "tags": ", ".join(e.tags),
        "checked": e.checked or "",
    }


def build_entry(v: dict[str, Any], folder: Path) -> tuple[CatalogEntry | None, list[str]]:
    """The CatalogEntry the form describes, or the problems to fix (one line each)."""
    problems: list[str] = []
    task = v["task"]
    task_def = tasks.get(task)
    data: dict[str, Any] = {
        "id": (v["id"] or "").strip(),
        "split": (v["split"] or "").strip() or "train",
        "task": task,
        "license": (v["license"] or "").strip(),
        "description": (v["description"] or "").strip(),
        "tags": [t.strip() for t in (v["tags"] or "").split(",") if t.strip()],
    }
    if (v["checked"] or "").strip():
        data["checked"] = v["checked"].strip()
    if v["gated"]:
        data["gated"] = True
    if not data["id"]:
        problems.append("id: give the entry an id (letters, digits and . _ / : + -), e.g. 'owner/name'")
    if not data["license"]:
        problems.append("license: give the dataset's license (e.g. 'cc-by-4.0', or 'unknown')")
    source = (v["source"] or "").strip()
    if v["kind"] == KINDS[0]:
        if not source:
            problems.append("Hub dataset id: give the dataset's id on the Hub, e.g. 'owner/name'")
        data["hub_id"] = source
    elif v["kind"] == KINDS[1]:
        if not source:
            problems.append(f"local path: give a file or folder inside the catalog folder {folder}")
        p = Path(source).expanduser()
        if p.is_absolute():
            try:
                source = p.resolve().relative_to(folder).as_posix()
            except ValueError:
                problems.append(
                    f"local path: '{source}' is outside the catalog folder {folder}; copy the data into that "
                    "folder and give its path relative to it"
                )
        data["path"] = source
    else:
        data["demo"] = v["demo"]
    for name in ("config", "revision"):
        if (v[name] or "").strip():
            data[name] = v[name].strip()
    if v["size_hint"] is not None:
        data["size_hint"] = int(v["size_hint"])
    data["columns"] = _pairs(v["columns"], "column mapping", problems)
    if "label_names" in task_def.source_options and _lines(v["label_names"]):
        data["label_names"] = _lines(v["label_names"])
    if "label_map" in task_def.source_options:
        data["label_map"] = _pairs(v["label_map"], "label map", problems)
    elif _lines(v["label_map"]):
        users = " and ".join(t.name for t in tasks.all_tasks() if "label_map" in t.source_options)
        problems.append(f"label map: applies to {users} entries only; clear it or set the task to {users}")
    if "answer_extraction" in task_def.source_options:
        data["answer_extraction"] = v["answer_extraction"]
    if task_def.options:
        try:
            data["options"] = tasks.parse_options(v["options"])
        except ValueError as err:
            problems.append(str(err))
    if problems:
        return None, problems
    try:
        return Catalog().add(data), []
    except CatalogError as err:
        return None, [str(err).removeprefix("invalid catalog entry: ")]


def entry_hash(entry: CatalogEntry, editing: str) -> str:
    return stable_hash({"entry": entry.model_dump(), "editing": editing})


# ---------------------------------------------------------------------------------------------
# Check, save, delete (button callbacks: they run before the page is drawn)


def _fill(values: dict[str, Any]) -> None:
    for name, key in FORM_KEYS.items():
        st.session_state[key] = values[name]


def _on_target_change() -> None:
    target = st.session_state.get(K_TARGET, NEW)
    st.session_state[K_CHECK] = None
    st.session_state[K_CONFIRM] = None
    if target == NEW:
        _fill(BLANK)
        return
    try:
        _fill(entry_values(load_catalog().get(target)))
    except CatalogError as err:
        flash(PAGE, "error", str(err))


def _cell(value: Any) -> Any:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def check_entry(entry: CatalogEntry, catalog: Catalog, editing: str) -> dict:
    """Read the entry's source with a row cap and normalize it; a dict for session_state."""
    if not editing and entry.id in catalog:
        return {
            "ok": False,
            "error": f"catalog id '{entry.id}' already exists; choose another id, or pick it above to edit it",
        }
    if editing and entry.id != editing:
        return {"ok": False, "error": f"the id of '{editing}' cannot change; add a new entry instead"}
    scratch = Catalog([entry], path=catalog.path or paths.catalog_file())
    try:
        src = resolve(SourceSpec(catalog=entry.id, max_rows=PREVIEW_ROWS), scratch)
        loaded = load_source(src)
        data = normalize(loaded, entry.task, src)
    except (CatalogError, SourceError, DataError) as err:
        return {"ok": False, "error": str(err)}
    except Exception as err:  # noqa: BLE001 - never a traceback on the page
        reason = f"{type(err).__name__}: {str(err)[:300]}"
        return {"ok": False, "error": f"{entry.id}: the source could not be read ({reason})"}
    counts: dict[str, int] = {}
    for row in data.rows:
        if "label" in row:
            counts[row["label"]] = counts.get(row["label"], 0) + 1
    return {
        "ok": True,
        "origin": loaded.origin,
        "read": len(loaded.rows),
        "total": loaded.total_rows,
        "source_columns": list(loaded.columns),
        "mapping": dict(data.columns),
        "rows": [{k: _cell(v) for k, v in row.items()} for row in data.rows[:PREVIEW_SHOWN]],
        "kept": len(data.rows),
        "dropped": data.dropped,
        "notes": list(data.notes),
        "labels": counts,
    }


def _run_check() -> None:
    st.session_state[K_CONFIRM] = None
    editing = st.session_state.get(K_TARGET, NEW)
    try:
        catalog = load_catalog()
    except CatalogError as err:
        st.session_state[K_CHECK] = {"ok": False, "error": str(err), "hash": None}
        return
    entry, problems = build_entry(form_values(), catalog.folder)
    if entry is None:
        listed = "\n".join(f"- {p}" for p in problems)
        st.session_state[K_CHECK] = {"ok": False, "error": "fix the form:\n" + listed, "hash": None}
        return
    result = check_entry(entry, catalog, editing)
    result["hash"] = entry_hash(entry, editing)
    st.session_state[K_CHECK] = result


def _on_save() -> None:
    st.session_state[K_CONFIRM] = None
    editing = st.session_state.get(K_TARGET, NEW)
    try:
        catalog = load_catalog()
    except CatalogError as err:
        flash(PAGE, "error", str(err))
        return
    entry, problems = build_entry(form_values(), catalog.folder)
    check = st.session_state.get(K_CHECK) or {}
    if entry is None or not check.get("ok") or check.get("hash") != entry_hash(entry, editing):
        flash(
            PAGE,
            "error",
            "Not saved: check the entry against a preview first (the form must match the last successful check).",
        )
        return
    if editing and editing not in catalog:
        flash(
            PAGE,
            "error",
            f"Not saved: '{editing}' is no longer in the catalog (deleted elsewhere?); add it as a new entry.",
        )
        return
    try:
        catalog.add(entry, replace=bool(editing))
        target = catalog.save()
    except (CatalogError, OSError) as err:
        flash(PAGE, "error", f"Not saved: {err}")
        return
    flash(PAGE, "success", f"Saved '{entry.id}' to {target}.")
    st.session_state[K_CHECK] = None
    st.session_state[K_TARGET] = entry.id  # go on editing what was just saved
    _fill(entry_values(entry))


def _on_delete_ask() -> None:
    st.session_state[K_CONFIRM] = st.session_state.get(K_TARGET, NEW) or None


def _on_delete_cancel() -> None:
    st.session_state[K_CONFIRM] = None


def _on_delete_confirm() -> None:
    target = st.session_state.get(K_CONFIRM)
    st.session_state[K_CONFIRM] = None
    if not target:
        return
    try:
        catalog = load_catalog()
        entry = catalog.get(target)
        if is_demo(entry):
            flash(
                PAGE,
                "error",
                f"'{target}' is an offline demo entry: the built-in demo study needs it, so it cannot be deleted.",
            )
            return
        catalog.remove(target)
        catalog.save()
    except (CatalogError, OSError) as err:
        flash(PAGE, "error", f"Not deleted: {err}")
        return
    flash(PAGE, "success", f"Deleted '{target}' from the catalog.")
    st.session_state[K_CHECK] = None
    st.session_state[K_TARGET] = NEW
    _fill(BLANK)


# ---------------------------------------------------------------------------------------------
# The page


def _init_state() -> None:
    st.session_state.setdefault(K_CHECK, None)
    st.session_state.setdefault(K_CONFIRM, None)
    for name, key in FORM_KEYS.items():
        st.session_state.setdefault(key, BLANK[name])


def _browse(catalog: Catalog) -> None:
    left, right = st.columns([1, 3])
    task = left.selectbox("Task", [ALL_TASKS, *TASKS], key="cat_filter_task")
    query = right.text_input("Search", key="cat_filter_query", placeholder="id, source, license, tag or description")
    c1, c2, c3 = st.columns([2, 1, 1])
    licenses = c1.multiselect(
        "License",
        sorted({license_family(e) for e in catalog.entries}),
        key="cat_filter_license",
        placeholder="any license",
    )
    size = c2.selectbox("Size", [ANY_SIZE, *SIZES], key="cat_filter_size", help="rows in the entry's split")
    hide_gated = c3.checkbox(
        "Hide gated sets",
        key="cat_filter_gated",
        help="Gated Hub sets ask you to accept their conditions on the Hub before a token can download them.",
    )
    shown = filter_entries(catalog.entries, task, query, licenses, size, hide_gated)
    if not shown:
        st.info("No entry matches these filters; clear the search or choose another task.")
        return
    st.dataframe(
        catalog_frame(shown),
        hide_index=True,
        width="stretch",
        column_config={
            "kind": st.column_config.TextColumn("kind", help="offline demo: generated locally, works without network"),
            "gated": st.column_config.TextColumn(
                "gated", help="accept the dataset's conditions on the Hub first, with the account of your HF_TOKEN"
            ),
            "size hint": st.column_config.NumberColumn("size hint", help="approximate rows in the split", format="%d"),
            "description": st.column_config.TextColumn("description", width="large"),
        },
    )
    st.caption(
        f"{len(shown)} of {len(catalog)} entries. Offline demo entries are generated locally, need no network, "
        "and cannot be deleted (the built-in demo study uses them)."
    )


def _form(catalog: Catalog, editing: str) -> None:
    values = form_values()
    c1, c2 = st.columns(2)
    c1.text_input(
        "Id",
        key=FORM_KEYS["id"],
        disabled=bool(editing),
        help="A unique name, e.g. 'owner/name'; the id of an existing entry cannot change.",
    )
    c2.selectbox("Task", TASKS, key=FORM_KEYS["task"])
    kind = st.radio("Source", KINDS, key=FORM_KEYS["kind"], horizontal=True)
    if kind == KINDS[2]:
        st.selectbox(
            "Offline demo set", DEMO_NAMES, key=FORM_KEYS["demo"], help="A dataset generated by the built-in demo."
        )
    elif kind == KINDS[1]:
        st.text_input(
            "Local file or folder",
            key=FORM_KEYS["source"],
            placeholder="data/my_set.jsonl",
            help="csv, json, jsonl or parquet file, or a folder laid out like a Hub dataset repo, "
            "relative to the catalog folder (shown below).",
        )
        st.caption("Relative to the catalog folder:")
        st.text(str(catalog.folder))
    else:
        st.text_input("Hub dataset id", key=FORM_KEYS["source"], placeholder="owner/name")
    c1, c2, c3, c4 = st.columns(4)
    c1.text_input("Config", key=FORM_KEYS["config"], placeholder="(default)")
    c2.text_input("Split", key=FORM_KEYS["split"])
    c3.text_input("Revision", key=FORM_KEYS["revision"], placeholder="(main)")
    c4.number_input(
        "Size hint (rows)",
        key=FORM_KEYS["size_hint"],
        min_value=0,
        step=1,
        format="%d",
        help="approximate rows in the split",
    )
    c1, c2 = st.columns([3, 1])
    c1.text_input("License", key=FORM_KEYS["license"], placeholder="e.g. cc-by-4.0, mit, unknown")
    c2.checkbox("Gated on the Hub", key=FORM_KEYS["gated"], help="users must accept conditions on the Hub first")
    task = values["task"]
    _task_inputs(tasks.get(task))
    st.text_area("Description", key=FORM_KEYS["description"], height=80)
    st.text_input("Tags", key=FORM_KEYS["tags"], placeholder="comma-separated, e.g. english, reviews")
    st.text_input(
        "Checked",
        key=FORM_KEYS["checked"],
        placeholder="e.g. columns read on the dataset viewer, 2026-12-01",
        help="How the entry's columns were checked (the dataset card or viewer schema read), and when.",
    )


def _task_inputs(task: tasks.Task) -> None:
    """The task's inputs: column mapping, and the source options that apply to it (others disabled)."""
    fields = list(task.known_fields)
    c1, c2, c3 = st.columns(3)
    c1.text_area(
        "Column mapping",
        key=FORM_KEYS["columns"],
        placeholder="\n".join(f"{f}=<column>" for f in fields),
        help=f"One field=column per line. Fields for {task.name}: "
        + "; ".join(f"{f} ({task.field_help[f]})" if f in task.field_help else f for f in fields)
        + ". A field named like a column needs no line.",
    )
    only = {o: " and ".join(t.name for t in tasks.all_tasks() if o in t.source_options) for o in tasks.SOURCE_OPTIONS}
    on = {o: o in task.source_options for o in tasks.SOURCE_OPTIONS}
    c2.text_area(
        "Label names",
        key=FORM_KEYS["label_names"],
        disabled=not on["label_names"],
        placeholder="negative\npositive" if on["label_names"] else f"({only['label_names']} only)",
        help=f"Names of integer labels, one per line in index order ({only['label_names']} only).",
    )
    c3.text_area(
        "Label map",
        key=FORM_KEYS["label_map"],
        disabled=not on["label_map"],
        placeholder="source label=study label" if on["label_map"] else f"({only['label_map']} only)",
        help=f"Rename labels: one source=label per line ({only['label_map']} only).",
    )
    st.selectbox(
        "Answer extraction",
        EXTRACTIONS,
        key=FORM_KEYS["answer_extraction"],
        disabled=not on["answer_extraction"],
        help=f"How the final answer is taken from the answer text ({only['answer_extraction']} only): "
        "gsm8k takes what follows '####', boxed the last \\boxed{...}.",
    )
    st.text_area(
        "Task options",
        key=FORM_KEYS["options"],
        disabled=not task.options,
        placeholder="\n".join(f"{k}=..." for k in task.options) or f"(none for {task.name})",
        help="One name=value per line, values as YAML (e.g. [a, b]). "
        + ("; ".join(f"{k}: {v}" for k, v in task.options.items()) or f"{task.name} has no options."),
    )


def _check_result(current_hash: str | None) -> bool:
    """Draw the last check (its preview, or what to fix); True when it succeeded for exactly the current form."""
    check = st.session_state.get(K_CHECK)
    if not check:
        return False
    if check.get("hash") is not None and check.get("hash") != current_hash:
        st.info("The form changed since the last check; check it again before saving.")
        return False
    if not check["ok"]:
        st.error(md_escape(check["error"]))
        return False
    total = f" of {check['total']:,}" if check.get("total") else ""
    st.success(
        md_escape(
            f"Preview OK: read {check['read']:,}{total} rows; {check['kept']:,} normalized, "
            f"{check['dropped']:,} dropped. "
            "Save is enabled for exactly these fields."
        )
    )
    st.caption("Read from:")
    st.text(check["origin"])
    st.caption("Columns used (field=column) and the source's columns:")
    st.text(
        ", ".join(f"{k}={v}" for k, v in check["mapping"].items())
        + "\nsource columns: "
        + ", ".join(check["source_columns"])
    )
    for note in check["notes"]:
        st.text(f"note: {note}")
    if check["labels"]:
        st.caption("Labels in the preview:")
        st.dataframe(
            pd.DataFrame(sorted(check["labels"].items()), columns=["label", "rows"]),
            hide_index=True,
            key="cat_preview_labels",
        )
    st.caption(f"First {len(check['rows'])} normalized rows:")
    st.dataframe(pd.DataFrame(check["rows"]), hide_index=True, width="stretch", key="cat_preview_rows")
    return True


def _manage(catalog: Catalog) -> None:
    ids = catalog.ids()
    if st.session_state.get(K_TARGET, NEW) not in (NEW, *ids):  # deleted meanwhile
        st.session_state[K_TARGET] = NEW
        _fill(BLANK)
    editing = st.selectbox(
        "Entry",
        [NEW, *ids],
        key=K_TARGET,
        format_func=lambda i: "(new entry)" if i == NEW else i,
        on_change=_on_target_change,
        help="Choose an entry to edit it (the form fills in), or add a new one.",
    )
    current = catalog.get(editing) if editing else None
    if current is not None and is_demo(current):
        st.info("Offline demo entry: the built-in demo study uses it, so it cannot be deleted.")
    _form(catalog, editing)

    entry, _ = build_entry(form_values(), catalog.folder)
    current_hash = entry_hash(entry, editing) if entry is not None else None
    row = st.container(horizontal=True)
    if row.button(
        "Check against a preview",
        key="cat_check_btn",
        type="primary",
        help=f"Reads up to {PREVIEW_ROWS} rows of the source and maps them onto the task.",
    ):
        with st.spinner(f"Reading up to {PREVIEW_ROWS} rows of the source…"):
            _run_check()
    check = st.session_state.get(K_CHECK) or {}
    ok = bool(check.get("ok")) and current_hash is not None and check.get("hash") == current_hash
    row.button(
        "Save",
        key="cat_save_btn",
        on_click=_on_save,
        disabled=not ok,
        help="Saving needs a successful check of exactly these fields.",
    )
    if current is not None:
        row.button(
            "Delete…",
            key="cat_delete_btn",
            on_click=_on_delete_ask,
            disabled=is_demo(current),
            help="Offline demo entries cannot be deleted." if is_demo(current) else "Asks for confirmation.",
        )
    if not ok:
        st.caption("Save is enabled after a successful check of exactly the fields above.")
    show_flash(PAGE)
    if current is not None and st.session_state.get(K_CONFIRM) == editing and not is_demo(current):
        st.warning(md_escape(f"Delete '{editing}' from the catalog? This cannot be undone."))
        confirm = st.container(horizontal=True)
        confirm.button("Yes, delete", key="cat_delete_yes", on_click=_on_delete_confirm, type="primary")
        confirm.button("Cancel", key="cat_delete_no", on_click=_on_delete_cancel)
    _check_result(current_hash)


def main() -> None:
    _init_state()
    st.title("Catalog")
    st.caption(
        "Candidate datasets a study can add to its training data. Every entry is checked against a preview "
        "of its source before it is saved."
    )
    try:
        catalog = load_catalog()
    except CatalogError as err:
        st.error(md_escape(err))
        st.stop()
    _browse(catalog)
    st.divider()
    st.subheader("Add or edit an entry")
    _manage(catalog)


main()
