"""Setup: build a study, validate it against a preview of its normalized rows, and submit it.

A thin view. The form fills a `core.spec.StudySpec`; `workers.client.preview` validates and loads
the data without enqueueing anything; `workers.client.submit` enqueues; uploads go through
`app.uploads`. Form values live in st.session_state under "setup.f.*": widgets use "setup.w.*"
copies, which Streamlit drops while another page runs, so the form survives a visit to Jobs.
User text is never rendered as Markdown or HTML: messages are escaped, rows go to st.dataframe.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from app import prescreen_view
from app.common import artifacts, current_user, redis
from app.training_form import draw_inputs, setting_inputs
from app.ui import duration, flash, md_escape, show_flash
from app.uploads import (
    SPEC_EXTENSIONS,
    UploadError,
    check_local_path,
    max_upload_bytes,
    max_upload_mb,
    read_spec,
    save_upload,
)
from core import tasks
from core.catalog import Catalog, CatalogError, load_catalog
from core.models import MINILM, TINY_LM
from core.normalize import DataError
from core.paths import PROJECT_ROOT
from core.sources import SUPPORTED_EXTENSIONS, SourceError
from core.spec import SpecError, StudySpec, dump_spec, load_spec, parse_spec
from core.tasks.generative import EXTRACTIONS
from workers import client, prescreen
from workers.backends import BackendError, backends, get_backend
from workers.backends.base import DEFAULT_BACKEND
from workers.client import SubmitError, SubmitOptions

log = logging.getLogger(__name__)

PAGE = "setup"
DEMOS = {
    "fast": PROJECT_ROOT / "catalog" / "demo_study_fast.yaml",
    "full": PROJECT_ROOT / "catalog" / "demo_study.yaml",
    "minilm": PROJECT_ROOT / "catalog" / "demo_study_minilm.yaml",
}
JOBS_PAGE = Path(__file__).resolve().parent / "jobs.py"
MODEL_SUGGESTIONS = [TINY_LM, MINILM, "HuggingFaceTB/SmolLM2-135M", "Qwen/Qwen2.5-0.5B", "meta-llama/Llama-3.2-1B"]
SOURCE_KINDS = {"upload": "Upload a file", "hub": "Hub dataset", "catalog": "Catalog entry"}
BENCH_KINDS = {"holdout": "Hold out rows of D0", **SOURCE_KINDS}
DATA_FILE_TYPES = [e.lstrip(".") for e in SUPPORTED_EXTENSIONS]
FIELD_LABELS = {
    "name": "Study name",
    "model": "Model",
    "task": "Task",
    "d0": "D0",
    "benchmark": "Benchmark",
    "benchmark_holdout": "Benchmark",
    "candidates": "Candidates",
    "sizes": "Sizes",
    "d0_share": "D0 share",
    "seeds": "Seeds",
    "target_size": "Target size",
    "metrics": "Metrics",
    "primary_metric": "Primary metric",
    "training": "Training settings",
    "backend": "Backend",
    "bootstrap": "Bootstrap",
    "spec": "Spec",
}
SOURCE_EXTRAS = ("label_names", "label_map", "answer_extraction", "revision")  # kept from a loaded spec

TRAINING = setting_inputs()
DEFAULTS: dict = {
    "name": "my study",
    "task": tasks.names()[0],
    "model": TINY_LM,
    "model_pick": None,
    "metrics": list(tasks.all_tasks()[0].default_metrics()),
    "primary": tasks.all_tasks()[0].default_metrics()[0],
    "candidates": [],
    "sizes": "1k, 2k, 4k",
    "d0_share": 0.3,
    "seeds": "0",
    "target": "200k",
    "backend": DEFAULT_BACKEND,
    "bench.holdout": 200,
    **{f"t.{setting.name}": setting.form_value(setting.default) for setting in TRAINING},
}
for _p, _kind in (("d0", "upload"), ("bench", "holdout"), ("cand", "upload")):
    DEFAULTS.update(
        {
            f"{_p}.kind": _kind,
            f"{_p}.path": "",
            f"{_p}.hub_id": "",
            f"{_p}.config": "",
            f"{_p}.split": "train",
            f"{_p}.catalog": None,
            f"{_p}.columns": "",
            f"{_p}.name": "",
            f"{_p}.max_rows": 0,
            f"{_p}.answer_extraction": "none",
            f"{_p}.options": "",
        }
    )
DEFAULTS.update({o.name: o.default for b in backends().values() for o in b.form_options()})  # each backend's fields
# Not widgets: custom candidates (option key -> source), fields of a loaded spec the form has no input for.
STATE_DEFAULTS = {"custom": {}, "extra": {"sources": {}, "top": {}}}

ss = st.session_state
STORED, WIDGET = "setup.f.", "setup.w."  # key prefixes: the form's own copy of a value, and its widget's


# ---------------------------------------------------------------------------------------------
# Form state


def _get(name: str):
    """A form value: the widget's (callbacks see it before the script runs), else the stored one."""
    if name in DEFAULTS and WIDGET + name in ss:
        return ss[WIDGET + name]
    if STORED + name in ss:
        return ss[STORED + name]
    default = DEFAULTS[name] if name in DEFAULTS else STATE_DEFAULTS[name]
    return json.loads(json.dumps(default))  # a fresh copy of lists and dicts


def _set(name: str, value) -> None:
    """Set a form value and its widget (from callbacks, which run before the widgets)."""
    ss[STORED + name] = value
    if name in DEFAULTS:
        ss[WIDGET + name] = value


def _widget_key(name: str, options: list | None = None) -> str:
    """The widget key of a form field, seeded from the stored value; choices kept within options."""
    key = WIDGET + name
    if key not in ss:
        ss[key] = _get(name)
    if options is not None:
        value = ss[key]
        if isinstance(value, list):
            if any(v not in options for v in value):
                ss[key] = [v for v in value if v in options]
        elif value not in options:
            ss[key] = options[0] if options else None
    return key


def _store(name: str, value):
    """Keep a widget's value as the form's own (it outlives the widget); the value."""
    ss[STORED + name] = value
    return value


def _catalog() -> Catalog:
    try:
        return load_catalog()
    except CatalogError as err:
        st.error(md_escape(f"The catalog cannot be read: {err}"))
        return Catalog([])


def _entry_label(catalog: Catalog, entry_id: str) -> str:
    if entry_id in catalog:
        e = catalog.get(entry_id)
        lic = e.license if len(e.license) <= 40 else e.license[:39] + "…"
        size = f"{e.size_hint:,} rows" if e.size_hint else "size unknown"
        return f"{e.id} · {lic} · {size}"
    return f"{entry_id} (not in the catalog)"


# ---------------------------------------------------------------------------------------------
# Filling the form from a spec (demo, uploaded or pasted YAML)


def _reset_form() -> None:
    for name in DEFAULTS:
        _set(name, json.loads(json.dumps(DEFAULTS[name])))
    for name, value in STATE_DEFAULTS.items():
        ss[STORED + name] = json.loads(json.dumps(value))
    for key in ("setup.preview", "setup.spec_errors", "setup.cand_error", "setup.submitted"):
        ss.pop(key, None)


def _source_identity(src: dict) -> str:
    """Which source a loaded spec's extra fields belong to (they have no input: kept aside, put back)."""
    return "|".join(str(src.get(k) or "") for k in ("catalog", "hub_id", "path", "config", "split"))


def _fill_source(prefix: str, src: dict, extras: dict) -> None:
    kind = "catalog" if src.get("catalog") else "hub" if src.get("hub_id") else "upload"
    _set(f"{prefix}.kind", kind)
    _set(f"{prefix}.path", src.get("path") or "")
    _set(f"{prefix}.hub_id", src.get("hub_id") or "")
    _set(f"{prefix}.catalog", src.get("catalog"))
    _set(f"{prefix}.config", src.get("config") or "")
    _set(f"{prefix}.split", src.get("split") or "train")
    _set(f"{prefix}.columns", ", ".join(f"{k}={v}" for k, v in (src.get("columns") or {}).items()))
    _set(f"{prefix}.name", src.get("name") or "")
    _set(f"{prefix}.max_rows", int(src.get("max_rows") or 0))
    _set(f"{prefix}.answer_extraction", src.get("answer_extraction") or "none")
    _set(f"{prefix}.options", tasks.format_options(src.get("options") or {}))
    kept = {k: src[k] for k in SOURCE_EXTRAS if k in src and k != "answer_extraction"}
    if kept:
        extras[_source_identity(src)] = kept


def _fill(spec: StudySpec) -> None:
    _reset_form()
    extras = {"sources": {}, "top": {}}
    _set("name", spec.name)
    _set("task", spec.task)
    _set("model", spec.model)
    _set("metrics", list(spec.metrics or tasks.get(spec.task).default_metrics()))
    _set("primary", spec.primary_metric)
    _fill_source("d0", spec.d0.model_dump(exclude_unset=True), extras["sources"])
    if spec.benchmark is not None:
        _fill_source("bench", spec.benchmark.model_dump(exclude_unset=True), extras["sources"])
    else:
        _set("bench.kind", "holdout")
        _set("bench.holdout", int(spec.benchmark_holdout or 200))
    chosen, custom = [], {}
    for cand in spec.candidates:
        src = cand.model_dump(exclude_unset=True)
        if src.get("catalog"):
            chosen.append(src["catalog"])
            rest = {k: v for k, v in src.items() if k != "catalog"}
            if rest:
                extras["sources"]["catalog:" + src["catalog"]] = rest
        else:
            key = f"custom:{cand.display_name}"
            custom[key] = src
            chosen.append(key)
    ss[STORED + "custom"] = custom
    _set("candidates", chosen)
    _set("sizes", ", ".join(str(s) for s in spec.sizes))
    _set("d0_share", float(spec.d0_share))
    _set("seeds", ", ".join(str(s) for s in spec.seeds))
    _set("target", str(spec.target_size))
    for setting in TRAINING:
        _set(f"t.{setting.name}", setting.form_value(getattr(spec.training, setting.name)))
    extras["top"] = spec.model_dump(
        exclude_unset=True,
        include={"bootstrap", "trust_remote_code", "output_dir", "refine", "refine_budget", "near_duplicate_threshold"},
    )
    ss[STORED + "extra"] = extras


def _on_demo(which: str) -> None:
    try:
        _fill(load_spec(DEMOS[which]))
    except SpecError as err:  # a broken shipped file: say so rather than fail
        ss["setup.spec_errors"] = [f"The demo spec cannot be read: {p}" for p in err.problems]


def _load_spec_text(data, filename: str) -> None:
    try:
        spec = read_spec(data, filename)
    except SpecError as err:
        ss["setup.spec_errors"] = [f"{FIELD_LABELS.get(_root(p), 'Spec')} · {p}" for p in err.problems]
        return
    ss.pop("setup.spec_errors", None)
    _fill(spec)
    flash(PAGE, "info", f"Loaded the spec '{spec.name}' into the form.")


def _on_spec_upload() -> None:
    f = ss.get("setup.spec_upload")
    if f is not None:
        _load_spec_text(f.getvalue(), f.name)


def _on_spec_paste() -> None:
    _load_spec_text(ss.get("setup.spec_text") or "", "pasted spec.yaml")


def _on_upload(prefix: str) -> None:
    f = ss.get(f"setup.upload.{prefix}")
    ss.pop(f"setup.upload_error.{prefix}", None)
    if f is None:
        return
    try:
        up = save_upload(f.name, f, max_bytes=max_upload_bytes())
    except UploadError as err:
        ss[f"setup.upload_error.{prefix}"] = str(err)
        return
    _set(f"{prefix}.path", str(up.path))
    if prefix == "cand" and not _get("cand.name").strip():
        _set("cand.name", Path(up.name).stem)


def _on_task() -> None:
    task = ss[WIDGET + "task"]
    _set("task", task)
    _set("metrics", list(tasks.get(task).default_metrics()))
    _set("primary", tasks.get(task).default_metrics()[0])
    ss.pop("setup.preview", None)


def _on_model_pick() -> None:
    pick = ss.get(WIDGET + "model_pick")
    if pick:
        _set("model", pick)
    _set("model_pick", None)


def _on_add_candidate() -> None:
    ss.pop("setup.cand_error", None)
    problems: list[tuple[str, str]] = []
    src = _source("cand", _get("task"), problems, "Custom candidate")
    if problems or src is None:
        ss["setup.cand_error"] = [p for _, p in problems]
        return
    name = src.get("name") or Path(src.get("path") or "").stem or src.get("hub_id") or "custom"
    src["name"] = name
    key = f"custom:{name}"
    custom = _get("custom")
    custom[key] = src
    ss[STORED + "custom"] = custom
    _set("candidates", [k for k in _get("candidates") if k != key] + [key])
    for f in ("path", "hub_id", "config", "columns", "name"):
        _set(f"cand.{f}", "")
    _set("cand.max_rows", 0)


# ---------------------------------------------------------------------------------------------
# From the form to a spec


def _root(problem: str) -> str:
    return re.split(r"[.:\s]", problem, maxsplit=1)[0]


_COUNT = re.compile(r"^(\d+(?:\.\d+)?)\s*([kKmM]?)$")


def _parse_counts(text: str, what: str) -> list[int]:
    """'250, 500, 1k' -> [250, 500, 1000]; ValueError with what to fix."""
    tokens = [t for t in re.split(r"[,;\s]+", text or "") if t]
    if not tokens:
        raise ValueError(f"write at least one {what}, e.g. 250, 500, 1000")
    out = []
    for tok in tokens:
        m = _COUNT.match(tok.replace("_", ""))
        value = float(m[1]) * {"": 1, "k": 1_000, "m": 1_000_000}[m[2].lower()] if m else None
        if value is None or value != int(value):
            raise ValueError(f"'{tok}' is not a whole number; write {what}s like 250, 500, 1000 (1k = 1000)")
        out.append(int(value))
    return out


def _parse_columns(text: str, task: str, label: str) -> dict[str, str]:
    known = tasks.get(task).known_fields
    out: dict[str, str] = {}
    for part in [p.strip() for p in re.split(r"[,\n]+", text or "") if p.strip()]:
        field, eq, column = (s.strip() for s in part.partition("="))
        if not eq or not field or not column:
            raise ValueError(f"{label} column mapping: '{part}' is not field=column (e.g. text=sentence, label=label)")
        if field not in known:
            raise ValueError(
                f"{label} column mapping: '{field}' is not a {task} field; the fields are {', '.join(known)}"
            )
        out[field] = column
    return out


def _source(prefix: str, task: str, problems: list, label: str) -> dict | None:
    """A source dict from the form's fields for D0, the benchmark or a custom candidate."""
    field = {"d0": "d0", "bench": "benchmark", "cand": "candidates"}[prefix]
    kind = _get(f"{prefix}.kind")
    src: dict = {}
    if kind == "upload":
        path = (_get(f"{prefix}.path") or "").strip()
        if not path:
            problems.append((field, f"{label}: upload a file ({', '.join(SUPPORTED_EXTENSIONS)})"))
            return None
        try:
            resolved = check_local_path(path)
        except UploadError as err:
            problems.append((field, f"{label}: {err}"))
            return None
        src["path"] = str(resolved)
        if resolved.is_dir() and (_get(f"{prefix}.split") or "train").strip() != "train":
            src["split"] = _get(f"{prefix}.split").strip()
    elif kind == "hub":
        hub_id = (_get(f"{prefix}.hub_id") or "").strip()
        if not hub_id:
            problems.append((field, f"{label}: give a Hub dataset id (owner/name)"))
            return None
        src["hub_id"] = hub_id
        if (_get(f"{prefix}.config") or "").strip():
            src["config"] = _get(f"{prefix}.config").strip()
        src["split"] = (_get(f"{prefix}.split") or "").strip() or "train"
    elif kind == "catalog":
        if not _get(f"{prefix}.catalog"):
            problems.append((field, f"{label}: choose a catalog entry"))
            return None
        src["catalog"] = _get(f"{prefix}.catalog")
    try:
        columns = _parse_columns(_get(f"{prefix}.columns"), task, label)
    except ValueError as err:
        problems.append((field, str(err)))
        return None
    if columns:
        src["columns"] = columns
    if (_get(f"{prefix}.name") or "").strip():
        src["name"] = _get(f"{prefix}.name").strip()
    if int(_get(f"{prefix}.max_rows") or 0) > 0:
        src["max_rows"] = int(_get(f"{prefix}.max_rows"))
    task_def = tasks.get(task)
    if "answer_extraction" in task_def.source_options and _get(f"{prefix}.answer_extraction") != "none":
        src["answer_extraction"] = _get(f"{prefix}.answer_extraction")
    if task_def.options:
        try:
            options = tasks.parse_options(_get(f"{prefix}.options"))
        except ValueError as err:
            problems.append((field, f"{label}: {err}"))
            return None
        if options:
            src["options"] = options
    for k, v in (_get("extra")["sources"].get(_source_identity(src)) or {}).items():
        src.setdefault(k, v)
    return src


def _form_data() -> tuple[dict, list[tuple[str, str]]]:
    """The spec mapping the form describes, and the problems only the form can see (field, message)."""
    problems: list[tuple[str, str]] = []
    task = _get("task")
    data: dict = {"name": (_get("name") or "").strip(), "model": (_get("model") or "").strip(), "task": task}
    d0 = _source("d0", task, problems, "D0")
    if d0:
        data["d0"] = d0
    data.update(_benchmark_data(task, problems))
    data["candidates"] = _candidates_data(problems)
    data.update(_mixture_data(problems))
    metrics = list(_get("metrics"))
    if not metrics:
        problems.append(("metrics", "Metrics: choose at least one metric"))
    else:
        data["metrics"] = metrics
        data["primary_metric"] = _get("primary")
    data["training"] = _training_data(problems)
    data.update(_get("extra")["top"])
    try:
        get_backend(_get("backend")).parse_options(_backend_options())
    except BackendError as err:
        problems.append(("backend", f"Backend: {err}"))
    return data, problems


def _benchmark_data(task: str, problems: list) -> dict:
    """{"benchmark_holdout": n} or {"benchmark": source}, as the form says (empty when it has a problem)."""
    if _get("bench.kind") == "holdout":
        holdout = int(_get("bench.holdout") or 0) or None
        if holdout is None:
            problems.append(("benchmark", "Benchmark: hold out at least 1 row of D0, or give a benchmark source"))
        return {"benchmark_holdout": holdout}
    bench = _source("bench", task, problems, "Benchmark")
    return {"benchmark": bench} if bench else {}


def _candidates_data(problems: list) -> list[dict]:
    """The chosen candidates as sources: catalog ids with a loaded spec's extras, custom ones with a checked path."""
    candidates, custom = [], _get("custom")
    for key in _get("candidates"):
        if key not in custom:
            candidates.append({"catalog": key, **_get("extra")["sources"].get("catalog:" + key, {})})
            continue
        src = dict(custom[key])
        if src.get("path"):
            try:
                src["path"] = str(check_local_path(src["path"]))
            except UploadError as err:
                problems.append(("candidates", f"Candidate {src.get('name') or key}: {err}"))
                continue
        candidates.append(src)
    if not candidates and not any(f == "candidates" for f, _ in problems):
        problems.append(("candidates", "Candidates: choose at least one candidate dataset (or add your own file)"))
    return candidates


def _mixture_data(problems: list) -> dict:
    """Sizes, seeds, target size and D0 share from their text inputs ("1k, 2k" -> [1000, 2000])."""
    data: dict = {"d0_share": float(_get("d0_share"))}
    for name, field, what in (("sizes", "sizes", "size"), ("seeds", "seeds", "seed")):
        try:
            data[field] = _parse_counts(_get(name), what)
        except ValueError as err:
            problems.append((field, f"{FIELD_LABELS[field]}: {err}"))
    try:
        target = _parse_counts(_get("target"), "target size")
        if len(target) != 1:
            raise ValueError("give one number, e.g. 200k")
        data["target_size"] = target[0]
    except ValueError as err:
        problems.append(("target_size", f"Target size: {err}"))
    return data


def _training_data(problems: list) -> dict:
    """The training settings from their inputs (a text one may not parse: a problem that says what to write)."""
    training = {}
    for setting in TRAINING:
        try:
            training[setting.name] = setting.setting_value(_get(f"t.{setting.name}"))
        except ValueError as err:
            problems.append(("training", f"Training settings: {err}"))
    return training


def _build() -> tuple[StudySpec | None, list[str]]:
    """The spec, or every problem with the field to fix (the form's own, then the spec's)."""
    data, form_problems = _form_data()
    messages = [m for _, m in form_problems]
    seen = {f for f, _ in form_problems}
    try:
        spec = parse_spec(data)
    except SpecError as err:
        for p in err.problems:
            root = _root(p)
            if root in seen or (root == "benchmark_holdout" and "benchmark" in seen):
                continue
            messages.append(f"{FIELD_LABELS.get(root, root)} · {p}")
        return None, messages
    return (spec, []) if not messages else (None, messages)


def _backend_options() -> dict:
    """The chosen backend's form fields, by option name."""
    return {o.name: _get(o.name) for o in get_backend(_get("backend")).form_options()}


def _options() -> SubmitOptions:
    return SubmitOptions(
        backend=_get("backend"), submitted_by=current_user(), backend_options=_backend_options(), prescreen=True
    )


def _backend_section() -> None:
    """The backend picker and the chosen backend's own fields, as the backend declares them."""
    st.subheader("Where it runs")
    registry = backends()
    names = list(registry)
    picked = st.radio(
        "Backend",
        names,
        format_func=lambda n: registry[n].label,
        key=_widget_key("backend", names),
        horizontal=True,
        help=" ".join(f"{b.label}: {b.help}." for b in registry.values()),
    )
    name = _store("backend", picked)
    fields = registry[name].form_options()
    for column, option in zip(st.columns(len(fields)) if fields else [], fields):
        choices = list(option.choice_list())
        if choices:
            value = column.selectbox(option.label, choices, key=_widget_key(option.name, choices), help=option.help)
        else:
            value = column.text_input(option.label, key=_widget_key(option.name), help=option.help)
        _store(option.name, value)


def _data_errors(fn):
    """Run fn; return (result, messages) with every expected failure as a message, never a traceback."""
    try:
        return fn(), []
    except SpecError as err:
        return None, [f"{FIELD_LABELS.get(_root(p), 'Spec')} · {p}" for p in err.problems]
    except (SourceError, DataError, CatalogError, SubmitError) as err:
        return None, [str(err)]
    except ConnectionError as err:
        return None, [f"The job queue is not reachable: {err}. Start everything with `make run` (or `workbench up`)."]
    except Exception as err:  # a bug or an unforeseen data problem: the message, and the traceback in the log
        log.exception("setup: unexpected error")
        return None, [f"Unexpected error ({type(err).__name__}): {err}"]


def _cell(v):
    return v if v is None or isinstance(v, (str, int, float, bool)) else json.dumps(v, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
# The page


def _source_inputs(prefix: str, kinds: dict[str, str], catalog: Catalog, task: str, title: str, help: str) -> None:
    """D0's, the benchmark's or a custom candidate's inputs: where the data is, then how it maps onto the task."""
    kind = _store(
        f"{prefix}.kind",
        st.radio(
            title,
            list(kinds),
            format_func=kinds.get,
            horizontal=True,
            help=help,
            key=_widget_key(f"{prefix}.kind", list(kinds)),
        ),
    )
    if kind == "holdout":
        _store(
            "bench.holdout",
            st.number_input(
                "Rows of D0 held out as the benchmark",
                min_value=1,
                max_value=1_000_000,
                step=50,
                key=_widget_key("bench.holdout"),
                help="Taken out of D0 with a fixed seed; D0 keeps the rest.",
            ),
        )
        return
    if kind == "upload":
        _upload_inputs(prefix, title)
    elif kind == "hub":
        c1, c2, c3 = st.columns([3, 2, 2])
        _store(
            f"{prefix}.hub_id",
            c1.text_input(
                "Hub dataset id",
                key=_widget_key(f"{prefix}.hub_id"),
                placeholder="owner/name",
                help="e.g. fancyzhx/ag_news",
            ),
        )
        _store(
            f"{prefix}.config",
            c2.text_input("Config", key=_widget_key(f"{prefix}.config"), help="Leave empty for the default config."),
        )
        _store(
            f"{prefix}.split",
            c3.text_input("Split", key=_widget_key(f"{prefix}.split"), help="e.g. train, validation, test"),
        )
    else:
        _catalog_entry_input(prefix, catalog, task)
    _mapping_inputs(prefix, tasks.get(task))


def _upload_inputs(prefix: str, title: str) -> None:
    st.file_uploader(
        f"{title}: file",
        type=DATA_FILE_TYPES,
        key=f"setup.upload.{prefix}",
        on_change=_on_upload,
        args=(prefix,),
        max_upload_size=max_upload_mb(),
        help=f"csv, jsonl, json, parquet, or a zip holding one (at most {max_upload_mb()} MB).",
    )
    if ss.get(f"setup.upload_error.{prefix}"):
        st.error(md_escape(ss[f"setup.upload_error.{prefix}"]))
    _store(
        f"{prefix}.path",
        st.text_input(
            "Stored file",
            key=_widget_key(f"{prefix}.path"),
            help="Filled in by the upload. A loaded spec may point at a file under the uploads folder or a folder "
            "the operator opened with WORKBENCH_DATA_DIRS.",
        ),
    )
    path = (_get(f"{prefix}.path") or "").strip()
    if path and Path(path).is_dir():
        _store(
            f"{prefix}.split",
            st.text_input(
                "Split", key=_widget_key(f"{prefix}.split"), help="The zip held a folder with one file per split."
            ),
        )


def _catalog_entry_input(prefix: str, catalog: Catalog, task: str) -> None:
    ids = [e.id for e in catalog.for_task(task)]
    current = _get(f"{prefix}.catalog")
    if current and current not in ids:
        ids.append(current)  # shown as "(not in the catalog)"; validation says what to fix
    _store(
        f"{prefix}.catalog",
        st.selectbox(
            "Catalog entry",
            ids,
            key=_widget_key(f"{prefix}.catalog", ids),
            format_func=lambda i: _entry_label(catalog, i),
            help="Entries for this task; the Catalog page lists them all.",
        ),
    )


def _mapping_inputs(prefix: str, task: tasks.Task) -> None:
    """Column mapping (its help names each task field and what it holds), display name, row cap, task options."""
    fields = "; ".join(f"{f} ({task.field_help[f]})" if f in task.field_help else f for f in task.known_fields)
    c1, c2, c3 = st.columns([3, 2, 1])
    _store(
        f"{prefix}.columns",
        c1.text_input(
            "Column mapping (optional)",
            key=_widget_key(f"{prefix}.columns"),
            placeholder="field=column, ...",
            help=f"Map the {task.name} fields onto this dataset's columns, e.g. text=sentence, label=label. "
            f"The fields: {fields}. Columns already named like the fields need no mapping.",
        ),
    )
    _store(
        f"{prefix}.name",
        c2.text_input(
            "Display name (optional)",
            key=_widget_key(f"{prefix}.name"),
            help="Defaults to the catalog id, Hub id or file name.",
        ),
    )
    _store(
        f"{prefix}.max_rows",
        c3.number_input(
            "Max rows",
            min_value=0,
            step=1000,
            key=_widget_key(f"{prefix}.max_rows"),
            help="0 = all rows. Large Hub sets are sampled by streaming with a fixed seed.",
        ),
    )
    if task.options:
        described = "; ".join(f"{k}: {v}" for k, v in task.options.items())
        _store(
            f"{prefix}.options",
            st.text_input(
                "Task options (optional)",
                key=_widget_key(f"{prefix}.options"),
                placeholder="name=value; ...",
                help=f"Options of the {task.name} task, name=value separated by ';'. {described}",
            ),
        )
    if "answer_extraction" in task.source_options:
        opts = list(EXTRACTIONS)
        _store(
            f"{prefix}.answer_extraction",
            st.selectbox(
                "Answer extraction",
                opts,
                key=_widget_key(f"{prefix}.answer_extraction", opts),
                help="gsm8k: the answer after '####'; boxed: the last \\boxed{...}.",
            ),
        )


def _show_errors(messages: list[str]) -> None:
    for m in messages:
        st.error(md_escape(m), icon=":material/error:")


def _show_preview(spec: StudySpec, res: dict) -> None:
    s = res["summary"]
    st.success("The study is valid. Nothing is enqueued until you press Run.", icon=":material/check_circle:")
    table = [{"role": "D0", **_summary_row(s["d0"])}, {"role": "benchmark", **_summary_row(s["benchmark"])}]
    table += [{"role": "candidate", **_summary_row(c, name)} for name, c in s["candidates"].items()]
    st.markdown("**Validation summary**")
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")
    if s.get("labels"):
        st.text(f"Labels ({len(s['labels'])}): " + ", ".join(s["labels"]))
    for note in s.get("notes") or []:
        st.text(f"Note: {note}")
    c1, c2, c3 = st.columns(3)
    c1.metric(
        "Runs",
        res["runs"],
        help=f"(baseline + {len(s['candidates'])} candidates) × {len(spec.sizes)} sizes × {len(spec.seeds)} seeds",
    )
    c2.metric(
        "Already cached",
        res["cached"],
        help="Runs with the same content key have results already and are not run again.",
    )
    c3.metric(
        "Estimated time",
        duration(res.get("estimate_seconds"), unknown="unknown"),
        help="Median time of this model's finished runs here × runs to do, on one worker; "
        "unknown before the first run.",
    )
    st.markdown("**Normalized rows** (first rows of each source, after column mapping)")
    names = list(res["samples"])
    for tab, name in zip(st.tabs([md_escape(n) for n in names]), names):
        rows = [{k: _cell(v) for k, v in r.items()} for r in res["samples"][name]]
        tab.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    if res.get("prescreen_key"):
        _prescreen(spec, res["prescreen_key"])


def _prescreen(spec: StudySpec, key: str) -> None:
    """The queued embedding pre-screen of the validated data: started once, then followed until it finishes."""
    st.markdown("**Pre-screen** (embeddings, no training)")
    again = st.session_state.pop("setup.prescreen_retry", None) == key  # "Pre-screen again" was pressed
    state, messages = _data_errors(lambda: prescreen.start(redis(), spec, key, artifacts=artifacts(), again=again))
    if messages:
        _show_errors(messages)
        return
    live = state["status"] in ("queued", "started")

    @st.fragment(run_every=2 if live else None)
    def follow() -> None:
        now = prescreen.status(redis(), key, artifacts=artifacts()) if live else state
        prescreen_view.show_state(now)
        if now["status"] == "queued" and not client.queue_workers(redis()).get(client.QUEUE_DEFAULT):
            st.caption(
                f"No worker listens on the '{client.QUEUE_DEFAULT}' queue: start one (`make run`, or `workbench "
                "worker`) and the pre-screen begins."
            )
        if live and now["status"] not in ("queued", "started"):
            st.rerun()  # finished or failed: draw the page once more, without the timer
        if now["status"] == "failed":
            st.button("Pre-screen again", key="setup.prescreen_again", on_click=_retry_prescreen, args=(key,))

    follow()


def _retry_prescreen(key: str) -> None:
    st.session_state["setup.prescreen_retry"] = key


def _summary_row(source: dict, name: str | None = None) -> dict:
    """A source's line of the validation summary (contamination is counted for candidates only)."""
    return {
        "name": name if name is not None else source["name"],
        "rows": source["rows"],
        "dropped": source["dropped"],
        "contamination removed": source.get("contaminated_removed"),
    }  # near-duplicates need every row embedded: the pre-screen below and Run count them


def _validate_clicked() -> list[str]:
    """Build and preview the study; the problems (none: the preview is stored for display)."""
    ss.pop("setup.preview", None)
    spec, messages = _build()
    if spec is None:
        return messages
    with st.spinner("Loading and checking the data…"):
        res, messages = _data_errors(lambda: client.preview(spec, artifacts=artifacts()))
    if not messages:
        ss["setup.preview"] = {"spec_id": spec.study_id(), "result": res}
    return messages


def _run_clicked() -> list[str]:
    """Validate again and submit; the problems (none: the new study id is in st.session_state)."""
    ss.pop("setup.submitted", None)
    spec, messages = _build()
    if spec is None:
        return messages
    conn = redis()
    with st.spinner("Preparing the data and enqueueing the runs…"):
        study_id, messages = _data_errors(lambda: client.submit(conn, spec, _options(), artifacts=artifacts()))
    if not messages:
        ss["study_id"] = study_id
        ss["setup.submitted"] = study_id
    return messages


def main() -> None:
    catalog = _catalog()
    st.title("Setup")
    st.caption(
        "Describe a study: your data (D0), a benchmark, a model and candidate datasets. "
        "Validate it against a preview of the rows, then Run it: the runs go to the Jobs page."
    )
    _load_section()
    task = _study_section()
    st.subheader("Your data (D0)")
    _source_inputs(
        "d0",
        SOURCE_KINDS,
        catalog,
        task,
        "D0 source",
        "The data you train on today; every mixture keeps a share of it.",
    )
    st.subheader("Benchmark")
    _source_inputs(
        "bench",
        BENCH_KINDS,
        catalog,
        task,
        "Benchmark source",
        "What the runs are evaluated on. Candidate rows that duplicate a benchmark row are removed and counted.",
    )
    _model_section()
    _metrics_section(task, catalog)
    _candidates_section(catalog, task)
    _mixtures_section()
    _backend_section()
    with st.expander("Training settings"):
        for name, value in draw_inputs(TRAINING, lambda name: _widget_key(f"t.{name}")).items():
            _store(f"t.{name}", value)
    st.divider()
    _actions_section()


def _load_section() -> None:
    """The demo buttons, Clear, and loading or saving a YAML spec."""
    c1, c2, c4, c3 = st.columns([2, 2, 2, 2])
    c1.button(
        "Load demo study",
        type="primary",
        on_click=_on_demo,
        args=("fast",),
        key="setup.demo_fast",
        help="The offline demo (built-in tiny model, generated support-intent data): 15 runs, a few minutes on a CPU.",
    )
    c2.button(
        "Load full demo",
        on_click=_on_demo,
        args=("full",),
        key="setup.demo_full",
        help="The same demo with 4 sizes and 2 seeds (40 runs).",
    )
    c4.button(
        "Load demo on MiniLM",
        on_click=_on_demo,
        args=("minilm",),
        key="setup.demo_minilm",
        help="The same demo on real pretrained weights: all-MiniLM-L6-v2 (shipped, offline) trained with LoRA as a "
        "classifier; 15 runs.",
    )
    c3.button("Clear the form", on_click=_reset_form, key="setup.clear")
    with st.expander("Load or save a spec (YAML), shared with the `workbench` CLI"):
        st.file_uploader(
            "Upload a study spec",
            type=[e.lstrip(".") for e in SPEC_EXTENSIONS],
            key="setup.spec_upload",
            on_change=_on_spec_upload,
            help="A .yaml or .json spec, as `workbench submit` reads.",
        )
        st.text_area(
            "…or paste one",
            key="setup.spec_text",
            height=150,
            placeholder="name: my study\nmodel: builtin:tiny-lm\n...",
        )
        st.button("Load pasted spec", on_click=_on_spec_paste, key="setup.spec_paste")
        spec_now, _ = _build()
        st.download_button(
            "Download this form as YAML",
            data=dump_spec(spec_now) if spec_now else "",
            file_name="study.yaml",
            mime="application/x-yaml",
            disabled=spec_now is None,
            key="setup.spec_download",
            help="Run it with `workbench submit study.yaml`."
            if spec_now
            else "Fix the form first (Validate shows what to fix).",
        )
    if ss.get("setup.spec_errors"):
        _show_errors(ss["setup.spec_errors"])
    show_flash(PAGE)


def _study_section() -> str:
    """Name and task; the task chosen."""
    st.subheader("Study")
    c1, c2 = st.columns([3, 2])
    _store(
        "name",
        c1.text_input(
            "Study name", key=_widget_key("name"), max_chars=200, help="Shown on the Jobs and Results pages."
        ),
    )
    names = list(tasks.names())
    return _store(
        "task",
        c2.selectbox(
            "Task",
            names,
            key=_widget_key("task", names),
            on_change=_on_task,
            help=" ".join(f"{t.name}: {t.summary}." for t in tasks.all_tasks()),
        ),
    )


def _model_section() -> None:
    """The model, its suggestions, and a check that the Hub has it."""
    st.subheader("Model")
    c1, c2, c3 = st.columns([3, 2, 1], vertical_alignment="bottom")
    model = _store(
        "model",
        c1.text_input(
            "Model",
            key=_widget_key("model"),
            help=f"A Hub model id (owner/name), a local folder, {TINY_LM} (offline, random init, fully fine-tuned) or "
            f"{MINILM} (offline, a pretrained encoder for classification, with LoRA).",
        ),
    )
    c2.selectbox(
        "Suggestions",
        MODEL_SUGGESTIONS,
        index=None,
        key=WIDGET + "model_pick",
        on_change=_on_model_pick,
        placeholder="Pick a suggestion…",
        help="Fills the Model field. Gated models need HF_TOKEN with access.",
    )
    if c3.button(
        "Check model",
        key="setup.check_model",
        help="Asks the Hub whether this model exists and is readable (gated models need access).",
    ):
        with st.spinner("Asking the Hub…"):
            ss["setup.model_check"] = {"model": model, **client.check_model(model, timeout=10.0)}
    check = ss.get("setup.model_check")
    if check and check.get("model") == model:
        show = st.success if check["ok"] else st.warning if check["kind"] == "unreachable" else st.error
        show(md_escape(check["message"]))


def _use_math_metrics() -> None:
    math_metrics = list(tasks.get(_get("task")).default_metrics(math=True))
    _set("metrics", math_metrics)
    _set("primary", math_metrics[0])


def _benchmark_is_math(catalog: Catalog) -> bool:
    """Whether the form's benchmark (or D0, when held out) extracts final answers or is a math catalog entry."""
    data = _benchmark_data(_get("task"), [])
    src = data.get("benchmark") or (_source("d0", _get("task"), [], "D0") if "benchmark_holdout" in data else None)
    if not src:
        return False
    if src.get("answer_extraction", "none") != "none":
        return True
    return bool(src.get("catalog")) and src["catalog"] in catalog and catalog.get(src["catalog"]).is_math


def _metrics_section(task: str, catalog: Catalog) -> None:
    st.subheader("Metrics")
    if "math_equiv" in tasks.get(task).metrics and "math_equiv" not in _get("metrics") and _benchmark_is_math(catalog):
        c1, c2 = st.columns([4, 1])
        c1.info(
            "This benchmark's answers are math: **math_equiv** grades them by equivalence "
            "(\\frac{1}{2}, 0.5 and 1/2 are one answer), where exact_match compares strings."
        )
        c2.button("Grade by math_equiv", key="setup.use_math", on_click=_use_math_metrics)
    allowed = list(tasks.get(task).metric_names)
    c1, c2 = st.columns([3, 2])
    metrics = _store(
        "metrics",
        c1.multiselect(
            "Metrics",
            allowed,
            key=_widget_key("metrics", allowed),
            help="loss predicts best at small sizes; scores are what you report. "
            f"{tasks.get(task).continuous_metric} is always measured too: the study compares every metric's "
            "signal-to-noise and says when another one ranks more reliably.",
        ),
    )
    primary_opts = metrics or allowed
    _store(
        "primary",
        c2.selectbox(
            "Primary metric",
            primary_opts,
            key=_widget_key("primary", primary_opts),
            help="Candidates are ranked by this metric.",
        ),
    )


def _candidates_section(catalog: Catalog, task: str) -> None:
    """The catalog and custom candidates to choose from, the chosen ones' facts, and adding a custom one."""
    st.subheader("Candidates")
    custom = _get("custom")
    options = [e.id for e in catalog.for_task(task)] + list(custom)
    extra_ids = [k for k in _get("candidates") if k not in options and k not in catalog and not k.startswith("custom:")]
    options += extra_ids  # catalog ids a loaded spec named that this catalog lacks: validation says so

    def label(key: str) -> str:
        if key in custom:
            src = custom[key]
            where = "uploaded file" if src.get("path") else f"Hub {src.get('hub_id')}"
            return f"{key.removeprefix('custom:')} · {where}"
        return _entry_label(catalog, key)

    chosen = _store(
        "candidates",
        st.multiselect(
            "Candidate datasets",
            options,
            key=_widget_key("candidates", options),
            format_func=label,
            help="Each candidate is mixed into D0 at every size; shown with license and size.",
        ),
    )
    picked = [catalog.get(k) for k in chosen if k in catalog]
    if picked:
        facts = [
            {
                "id": e.id,
                "license": e.license,
                "rows": f"{e.size_hint:,}" if e.size_hint else "unknown",
                "description": e.description,
            }
            for e in picked
        ]
        st.dataframe(pd.DataFrame(facts), hide_index=True, width="stretch")
    with st.expander("Add your own candidate (a file or a Hub dataset)"):
        _source_inputs(
            "cand",
            {"upload": "Upload a file", "hub": "Hub dataset"},
            catalog,
            task,
            "Candidate source",
            "A candidate that is not in the catalog; its labels must be the study's labels.",
        )
        st.button("Add candidate", on_click=_on_add_candidate, key="setup.add_candidate")
        for m in ss.get("setup.cand_error") or []:
            st.error(md_escape(m))


def _mixtures_section() -> None:
    st.subheader("Mixtures and prediction")
    c1, c2, c3, c4 = st.columns(4)
    _store(
        "sizes",
        c1.text_input(
            "Sizes (rows per mixture)",
            key=_widget_key("sizes"),
            help="Comma-separated; 1k = 1000. At least three sizes fit a curve.",
        ),
    )
    _store(
        "d0_share",
        c2.slider(
            "D0 share",
            min_value=0.0,
            max_value=1.0,
            step=0.05,
            key=_widget_key("d0_share"),
            help="Fraction of each mixture taken from D0; the rest comes from the candidate.",
        ),
    )
    _store(
        "seeds",
        c3.text_input(
            "Seeds", key=_widget_key("seeds"), help="Comma-separated, e.g. 0, 1, 2: more seeds, tighter intervals."
        ),
    )
    _store(
        "target",
        c4.text_input(
            "Target size",
            key=_widget_key("target"),
            help="The size the ranking predicts for, e.g. 200k; at least the largest size.",
        ),
    )


def _actions_section() -> None:
    """Validate and Run, then what came of them: the problems, the submitted study, or the preview."""
    c1, c2, _ = st.columns([2, 2, 4])
    validate = c1.button(
        "Validate & preview", key="setup.validate", help="Loads and checks the data; enqueues nothing."
    )
    run = c2.button(
        "Run", type="primary", key="setup.run", help="Validates again, then enqueues the runs and opens the Jobs page."
    )
    errors = _validate_clicked() if validate else _run_clicked() if run else []
    if run and not errors:
        try:
            st.switch_page(JOBS_PAGE)
        except StreamlitAPIException:  # the page runs on its own (tests), or Jobs is not registered
            pass
    if errors:
        _show_errors(errors)
        return
    if ss.get("setup.submitted"):
        st.success(md_escape(f"Submitted study {ss['setup.submitted']}: follow it on the Jobs page."))
    preview = ss.get("setup.preview")
    if preview:
        spec_now, _ = _build()
        if spec_now is not None and spec_now.study_id() == preview["spec_id"]:
            _show_preview(spec_now, preview["result"])
        else:
            st.info("The form changed since the last validation: press Validate & preview again.")


main()
