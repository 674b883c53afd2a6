"""Evaluation metrics as local `evaluate` modules, loadable with no network.

`evaluate.load("f1")` downloads its script from the Hub and fails on an air-gapped box, so the
workbench ships its own modules next to this file (`<name>/<name>.py`, the layout `evaluate.load`
accepts for a local folder) and loads them from there.

evaluate copies a module's script into a "dynamic modules" folder and imports it from there. By
default that folder is `~/.cache/huggingface/modules`, fixed when `evaluate` is first imported
(`evaluate.config.HF_MODULES_CACHE`), so setting the environment variable from here would only work
if nothing had imported `evaluate` before us. Instead we hand the folder to evaluate's own factory
(`evaluation_module_factory(dynamic_modules_path=...)`), which works whatever the import order:
`$HF_MODULES_CACHE` when the user set it, else `<workbench home>/hf-modules`. The package name in
that folder carries a hash of its path, so two homes in one process (tests) cannot shadow each other
in `sys.modules`. The metric's scratch files (`cache_dir`) also stay under the workbench home.

`evaluate` is imported on first load, not when this package is imported (see `load_metric`).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import tasks
from core.paths import workbench_home

if TYPE_CHECKING:
    import evaluate

MODULES_DIR = Path(__file__).resolve().parent

# The evaluate module that computes each metric name the study spec knows.
MODULE_FOR_METRIC = {
    "accuracy": "accuracy",
    "macro_f1": "macro_f1",
    "exact_match": "squad_em_f1",
    "f1": "squad_em_f1",
    "math_equiv": "math_equiv",
}
MODULE_NAMES = tuple(sorted(set(MODULE_FOR_METRIC.values())))

_cache: dict[tuple[str, str], evaluate.EvaluationModule] = {}
_cache_lock = threading.Lock()
# An EvaluationModule buffers inputs between add_batch and compute: one caller at a time.
_compute_locks: dict[str, threading.Lock] = {name: threading.Lock() for name in MODULE_NAMES}


def modules_cache_dir() -> Path:
    """Where evaluate copies the module scripts: $HF_MODULES_CACHE if set, else under the workbench home."""
    return Path(os.environ.get("HF_MODULES_CACHE") or workbench_home() / "hf-modules").resolve()


def module_path(name: str) -> Path:
    """The folder of a shipped module (what `evaluate.load` would be given)."""
    if name not in MODULE_NAMES:
        raise ValueError(f"unknown metric module '{name}'; shipped modules: {list(MODULE_NAMES)}")
    return MODULES_DIR / name


def load_metric(name: str) -> evaluate.EvaluationModule:
    """Load a shipped metric module (`accuracy`, `macro_f1`, `squad_em_f1`, `math_equiv`), once per process.

    Equivalent to `evaluate.load(module_path(name))`, except that the dynamic-modules folder is
    chosen here rather than by evaluate's import-time config. Needs no network.
    """
    folder = module_path(name)
    cache_dir = modules_cache_dir()
    key = (name, str(cache_dir))
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            return cached
        # Imported here, not at module level: `import evaluate` takes seconds and pulls in
        # transformers and torch (evaluate/__init__ imports its evaluator), which processes that
        # only need the metric names (the web app) should not pay for.
        from evaluate.loading import evaluation_module_factory, import_main_class, init_dynamic_modules

        package = "workbench_evaluate_" + hashlib.sha1(str(cache_dir).encode()).hexdigest()[:10]
        dynamic_modules_path = init_dynamic_modules(name=package, hf_modules_cache=cache_dir)
        importable = evaluation_module_factory(str(folder), dynamic_modules_path=dynamic_modules_path)
        metric_cls = import_main_class(importable.module_path)
        if metric_cls is None:
            raise ImportError(f"{folder} defines no evaluate.Metric subclass")
        metric = metric_cls(hash=importable.hash, keep_in_memory=True, cache_dir=str(workbench_home() / "hf-evaluate"))
        metric.download_and_prepare()
        _cache[key] = metric
        return metric


def compute_metrics(
    task: str,
    predictions: Sequence[Any],
    references: Sequence[Any],
    metrics: Sequence[str],
    labels: Sequence[Any] | None = None,
) -> dict[str, float]:
    """Score predictions against references; returns only the requested metric names.

    classification: predictions and references are labels (str or int); `labels` fixes the classes
    macro F1 averages over. qa / generative: predictions are strings, each reference is a string or a
    list of all gold answers. "loss" is accepted and skipped (it comes from the model, not from
    predictions).
    """
    kind = tasks.get(task)
    lower = tasks.lower_is_better()
    wanted = [m for m in metrics if m not in lower]
    unknown = [m for m in wanted if m not in kind.metrics]
    if unknown:
        raise ValueError(f"metrics {unknown} are not available for task '{task}'; choose from {list(kind.metrics)}")
    own = [m for m in wanted if m not in MODULE_FOR_METRIC]
    if own:
        raise ValueError(f"metrics {own} come from task '{task}''s own evaluation (core.tasks), not from predictions")
    predictions = list(predictions)
    references = list(references)
    if len(predictions) != len(references):
        raise ValueError(f"got {len(predictions)} predictions but {len(references)} references; they must pair up")
    if not wanted:
        return {}
    if not predictions:
        raise ValueError("cannot compute metrics on empty inputs: no predictions and no references")
    predictions, references, labels = kind.metric_inputs(predictions, references, labels)
    inputs: dict[str, Any] = {"predictions": predictions, "references": references}

    results: dict[str, float] = {}
    for module_name in dict.fromkeys(MODULE_FOR_METRIC[m] for m in wanted):
        kwargs = {"labels": labels} if module_name == "macro_f1" and labels is not None else {}
        metric = load_metric(module_name)
        with _compute_locks[module_name]:
            scores = metric.compute(**inputs, **kwargs)
        results.update({k: float(v) for k, v in scores.items()})
    return {m: results[m] for m in wanted}
