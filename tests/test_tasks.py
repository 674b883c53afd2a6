"""core.tasks: the registry the rest of the workbench reads instead of branching on task names."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core import tasks
from core.paths import PROJECT_ROOT


def test_every_task_module_is_registered_in_its_order():
    names = tasks.names()
    assert names[:3] == ("classification", "qa", "generative")
    assert [t.name for t in tasks.all_tasks()] == list(names)
    for task in tasks.all_tasks():
        assert tasks.get(task.name) is task
        assert task.metric_names and set(task.fields) <= set(task.known_fields)
        assert set(task.source_options) <= set(tasks.SOURCE_OPTIONS)
        assert set(task.field_help) <= set(task.known_fields)


def test_unknown_task_names_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown task 'regression'; choose one of \['classification', 'qa', 'gener"):
        tasks.get("regression")


def test_losses_are_the_lower_is_better_metrics():
    assert tasks.lower_is_better() == ("loss",)
    assert tasks.get("classification").metrics == {"macro_f1": True, "accuracy": True, "gold_prob": True, "loss": False}
    assert {t.name: t.continuous_metric for t in tasks.all_tasks()} == {
        "classification": "gold_prob",
        "qa": "loss",
        "generative": "loss",
        "multiple_choice": "gold_prob",
    }


def test_registry_import_is_cheap():
    code = "import sys, core.tasks, core.spec, core.catalog\n"
    code += "print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_task_options_text_round_trips():
    text = "choice_columns=[sol1, sol2]; choices=[no, yes]\nlimit=3"
    options = tasks.parse_options(text)
    assert options == {"choice_columns": ["sol1", "sol2"], "choices": ["no", "yes"], "limit": 3}
    assert tasks.parse_options(tasks.format_options(options)) == options
    assert tasks.parse_options("  ") == {}
    with pytest.raises(ValueError, match="is not name=value"):
        tasks.parse_options("choices")
    with pytest.raises(ValueError, match="is not a value"):
        tasks.parse_options("choices=[no, yes")


def test_gold_probability_is_the_softmax_of_the_options_log_likelihoods():
    import math

    from core.tasks.base import gold_probability

    sums = [math.log(0.2) - 7, math.log(0.6) - 7, math.log(0.2) - 7]  # unnormalized: only differences count
    assert gold_probability(sums, 1) == pytest.approx(0.6)
    assert gold_probability(sums, 0) == pytest.approx(0.2)
    assert gold_probability([-1000.0, 0.0], 0) == pytest.approx(0.0, abs=1e-300)  # no overflow
