"""The shipped evaluate modules against hand-computed scores, offline."""

from __future__ import annotations

import socket
import sys

import pytest

import core.metrics as metrics
from core.metrics import compute_metrics, load_metric, module_path


@pytest.fixture(autouse=True)
def offline_home(tmp_path_factory, monkeypatch):
    """Offline env vars on, and every file evaluate writes kept in one temp workbench home."""
    home = tmp_path_factory.getbasetemp() / "metrics-home"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    monkeypatch.delenv("HF_MODULES_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    return home


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# refs:  cat cat cat dog dog  bird
# preds: cat cat dog dog bird bird
# cat:  TP 2, FP 0, FN 1 -> P 1,   R 2/3 -> F1 0.8   = 72/90
# dog:  TP 1, FP 1, FN 1 -> P 1/2, R 1/2 -> F1 0.5   = 45/90
# bird: TP 1, FP 1, FN 0 -> P 1/2, R 1   -> F1 2/3   = 60/90
# macro F1 = (72 + 45 + 60) / 90 / 3 = 59/90; accuracy = 4/6.
# With labels [cat, dog, bird, fish], fish scores 0: 177/90/4 = 177/360.
REFS = ["cat", "cat", "cat", "dog", "dog", "bird"]
PREDS = ["cat", "cat", "dog", "dog", "bird", "bird"]


def test_macro_f1_and_accuracy_by_hand():
    scores = compute_metrics("classification", PREDS, REFS, ["accuracy", "macro_f1"])
    assert scores == {"accuracy": pytest.approx(4 / 6), "macro_f1": pytest.approx(59 / 90)}
    assert all(type(v) is float for v in scores.values())


def test_macro_f1_int_labels_and_explicit_label_list():
    ids = {"cat": 0, "dog": 1, "bird": 2}
    scores = compute_metrics("classification", [ids[p] for p in PREDS], [ids[r] for r in REFS], ["macro_f1"])
    assert scores["macro_f1"] == pytest.approx(59 / 90)
    scores = compute_metrics("classification", PREDS, REFS, ["macro_f1"], labels=["cat", "dog", "bird", "fish"])
    assert scores["macro_f1"] == pytest.approx(177 / 360)


def test_macro_f1_counts_labels_only_predicted():
    # a: TP 1, FN 1 -> F1 2/3; b (only predicted): TP 0, FP 1 -> F1 0; macro = 1/3.
    result = load_metric("macro_f1").compute(predictions=["a", "b"], references=["a", "a"])
    assert result == {"macro_f1": pytest.approx(1 / 3)}


def test_squad_em_f1_normalization_and_multiple_golds():
    predictions = ["The Eiffel Tower.", "a cat sat", "An apple, a day!", "Paris", "theater"]
    references = [
        ["Eiffel Tower", "Paris"],  # articles + punctuation removed: EM 1, F1 1
        ["the dog sat", "cat"],  # "cat sat" vs "dog sat": F1 1/2; vs "cat": P 1/2, R 1 -> F1 2/3; EM 0
        ["apple day"],  # EM 1, F1 1
        ["London"],  # EM 0, F1 0
        ["the theater"],  # "the" inside a word is not an article: EM 1, F1 1
    ]
    result = load_metric("squad_em_f1").compute(predictions=predictions, references=references)
    assert result["exact_match"] == pytest.approx(3 / 5)
    assert result["f1"] == pytest.approx((1 + 2 / 3 + 1 + 0 + 1) / 5)


def test_squad_unanswerable_and_string_references():
    # No gold answers = unanswerable: an empty prediction is right (SQuAD v2 rule), a non-empty one wrong.
    result = load_metric("squad_em_f1").compute(predictions=["", "x"], references=[[], []])
    assert result == {"exact_match": 0.5, "f1": 0.5}
    # generative: each reference a single string
    scores = compute_metrics("generative", ["42", "the answer is 7"], ["42", "7"], ["exact_match", "f1"])
    # "answer is 7" vs "7": P 1/3, R 1 -> F1 1/2
    assert scores == {"exact_match": pytest.approx(0.5), "f1": pytest.approx((1 + 0.5) / 2)}


def test_returns_only_requested_and_skips_loss():
    assert compute_metrics("qa", ["a"], [["a"]], ["f1", "loss"]) == {"f1": 1.0}
    assert compute_metrics("classification", ["a"], ["a"], ["loss"]) == {}


def test_empty_inputs_are_a_clear_error():
    with pytest.raises(ValueError, match="empty"):
        compute_metrics("classification", [], [], ["accuracy"])
    for name in metrics.MODULE_NAMES:
        with pytest.raises(ValueError, match="empty"):
            load_metric(name).compute(predictions=[], references=[])


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 predictions but 3 references"):
        compute_metrics("classification", ["a", "b"], ["a", "b", "c"], ["macro_f1"])
    with pytest.raises(ValueError, match="Mismatch"):
        load_metric("accuracy").compute(predictions=["a"], references=["a", "b"])


def test_unknown_names_are_errors():
    with pytest.raises(ValueError, match="not available for task 'qa'"):
        compute_metrics("qa", ["a"], [["a"]], ["macro_f1"])
    with pytest.raises(ValueError, match="unknown task"):
        compute_metrics("regression", ["a"], ["a"], ["accuracy"])
    with pytest.raises(ValueError, match="unknown metric module"):
        load_metric("f1")


def test_loads_offline_into_workbench_home_and_caches(offline_home, tmp_path, monkeypatch, no_network):
    # A fresh modules folder forces a real load (copy + import) rather than the per-process cache.
    modules = tmp_path / "modules"
    monkeypatch.setenv("HF_MODULES_CACHE", str(modules))
    metric = load_metric("macro_f1")
    assert load_metric("macro_f1") is metric
    assert list(modules.rglob("macro_f1.py")), "evaluate copied the script into HF_MODULES_CACHE"
    assert metric.compute(predictions=[1, 0], references=[1, 1])["macro_f1"] == pytest.approx(1 / 3)

    monkeypatch.delenv("HF_MODULES_CACHE")
    load_metric("accuracy")
    assert list((offline_home / "hf-modules").rglob("accuracy.py"))


def test_plain_evaluate_load_accepts_the_folder_layout(tmp_path, monkeypatch, no_network):
    """`evaluate.load(<folder>)` works too: the folders follow evaluate's local-module layout."""
    import evaluate

    monkeypatch.setattr(evaluate.config, "HF_MODULES_CACHE", tmp_path / "modules")
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    try:
        metric = evaluate.load(str(module_path("accuracy")), cache_dir=str(tmp_path / "scratch"), keep_in_memory=True)
        assert metric.compute(predictions=[1, 2], references=[1, 1]) == {"accuracy": 0.5}
    finally:  # don't leave evaluate's package pointing at this test's temp folder
        for name in set(sys.modules) - before:
            if name.startswith("evaluate_modules"):
                del sys.modules[name]
