"""core/tasks/multiple_choice.py: choices from every source shape, answers in every form, scoring, catalog entries."""

from __future__ import annotations

import json
import math

import pytest
import torch

from core import tasks
from core.catalog import load_catalog, resolve
from core.evaluation import _encode_pair, evaluate_model
from core.normalize import DataError, normalize
from core.paths import PROJECT_ROOT
from core.prompts import completion_text, prompt_text
from core.sources import LoadedSource
from core.spec import SourceSpec, SpecError, TrainingSettings, parse_spec
from core.tiny_model import TINY_LM
from core.train import load_model

MC = "multiple_choice"


def norm(rows, options=None, columns=None, name="ds"):
    src = SourceSpec(path="x.jsonl", options=options or {}, columns=columns or {})
    return normalize(LoadedSource(name=name, rows=rows, columns=list(rows[0])), MC, src)


def test_registered_with_its_metrics_and_directions():
    task = tasks.get(MC)
    assert MC in tasks.names()
    assert task.metric_names == ("accuracy", "accuracy_raw", "gold_prob", "loss")
    assert tasks.lower_is_better() == ("loss",)


def test_mmlu_list_column_and_index_answer():
    rows = [{"question": " 2+2? ", "subject": "math", "choices": ["3", "4", "5", "6"], "answer": 1}]
    data = norm(rows)
    assert data.rows == [{"question": "2+2?", "context": "", "choices": ["3", "4", "5", "6"], "answer": 1}]
    assert data.columns == {"question": "question", "choices": "choices", "answer": "answer"}


def test_arc_text_label_column_and_answer_key():
    rows = [
        {"id": "a", "question": "Q1", "choices": {"text": ["x", "y", "z"], "label": ["A", "B", "C"]}, "answerKey": "C"},
        {
            "id": "b",
            "question": "Q2",
            "choices": {"text": ["p", "q", "r", "s"], "label": ["1", "2", "3", "4"]},
            "answerKey": "2",
        },
    ]
    data = norm(rows)
    assert [r["answer"] for r in data.rows] == [2, 1]  # "2" is the label "2", not index 2
    assert data.rows[1]["choices"] == ["p", "q", "r", "s"]
    assert data.columns["answer"] == "answerKey"


def test_piqa_choice_columns_and_hellaswag_aliases():
    piqa = norm(
        [{"goal": "Boil eggs", "sol1": "no water", "sol2": "cold water", "label": 1}],
        options={"choice_columns": ["sol1", "sol2"]},
    )
    assert piqa.rows == [{"question": "Boil eggs", "context": "", "choices": ["no water", "cold water"], "answer": 1}]
    hella = norm([{"ind": 4, "ctx": "A man", "endings": ["runs", "sits", "eats", "naps"], "label": "3"}])
    assert hella.rows[0]["choices"][hella.rows[0]["answer"]] == "naps"
    assert hella.columns == {"question": "ctx", "choices": "endings", "answer": "label"}


def test_boolq_fixed_choices_bool_answer_and_passage_context():
    rows = [
        {"question": "is it?", "passage": "It is.", "answer": True},
        {"question": "no?", "passage": "", "answer": False},
    ]
    data = norm(rows, options={"choices": ["no", "yes"]})
    assert [(r["context"], r["choices"][r["answer"]]) for r in data.rows] == [("It is.", "yes"), ("", "no")]
    row = data.rows[0]
    assert prompt_text(row, MC) == "It is.\nQuestion: is it?\nAnswer:"
    assert completion_text(row, MC) == " yes"
    assert prompt_text(data.rows[1], MC) == "Question: no?\nAnswer:"


def test_answer_as_choice_text_and_letter():
    data = norm(
        [
            {"question": "q", "choices": ["red", "blue"], "answer": "blue"},
            {"question": "r", "choices": ["a", "b"], "answer": "B"},
        ]
    )
    assert [r["answer"] for r in data.rows] == [1, 1]


def test_unlabeled_rows_and_short_choices_are_dropped_with_notes():
    rows = [
        {"question": "q1", "choices": ["a", "b"], "answer": 0},
        {"question": "q2", "choices": ["a", "b"], "answer": ""},
        {"question": "q3", "choices": ["only"], "answer": 0},
        {"question": "", "choices": ["a", "b"], "answer": 0},
    ]
    data = norm(rows)
    assert len(data.rows) == 1 and data.dropped == 3 and data.indices == [0]
    assert any("no answer" in n for n in data.notes) and any("fewer than two choices" in n for n in data.notes)


@pytest.mark.parametrize(
    "rows, options, message",
    [
        (
            [{"question": "q", "choices": ["a", "b"], "answer": "maybe"}],
            None,
            "answer 'maybe' in column 'answer' is not a choice",
        ),
        ([{"question": "q", "choices": ["a", "b"], "answer": -1}], None, "out of range for 2 choices"),
        ([{"question": "q", "opts": ["a", "b"], "answer": 0}], None, "no column for field 'choices'"),
        ([{"question": "q", "s1": "a", "answer": 0}], {"choice_columns": ["s1", "s2"]}, "choice_columns names ['s2']"),
        ([{"question": "q", "choices": "a,b", "answer": 0}], None, "map 'choices' to a list of choices"),
        (
            [{"question": "q", "choices": ["a", "b"], "answer": 0}],
            {"labels": ["a", "b"]},
            "options ['labels'] do not apply",
        ),
    ],
)
def test_bad_data_names_the_fix(rows, options, message):
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        norm(rows, options=options)


def test_spec_checks_task_options():
    base = {
        "name": "mc",
        "model": TINY_LM,
        "task": MC,
        "d0": {"path": "d0.jsonl"},
        "benchmark_holdout": 10,
        "candidates": [{"path": "c.jsonl", "options": {"choices": "no,yes"}}],
        "sizes": [10],
        "target_size": 100,
    }
    with pytest.raises(SpecError) as err:
        parse_spec(base)
    assert "candidates.0.options: option choices must be a list of at least two non-empty strings" in str(err.value)
    with pytest.raises(SpecError, match=r"quote words YAML reads as booleans"):  # YAML 1.1 read [no, yes] as bools
        parse_spec({**base, "candidates": [{"path": "c.jsonl", "options": {"choices": [False, True]}}]})
    ok = parse_spec({**base, "candidates": [{"path": "c.jsonl", "options": {"choices": ["no", "yes"]}}]})
    assert ok.metrics == ["accuracy", "accuracy_raw", "gold_prob", "loss"] and ok.primary_metric == "accuracy"
    with pytest.raises(SpecError, match="do not apply to task 'classification'"):
        bad = [{"path": "c.jsonl", "options": {"choices": ["a", "b"]}}]
        parse_spec({**base, "task": "classification", "candidates": bad})


def test_catalog_entries_are_valid_checked_and_resolve():
    catalog = load_catalog(PROJECT_ROOT / "catalog" / "candidates.json")
    entries = {e.id: e for e in catalog.for_task(MC)}
    assert {"mmlu", "arc_easy", "arc_challenge", "hellaswag", "piqa", "boolq"} <= set(entries)
    for entry in entries.values():
        assert entry.checked and "2026-12-01" in entry.checked
    assert entries["arc_challenge"].config == "ARC-Challenge" and entries["mmlu"].config == "all"
    boolq = resolve(SourceSpec(catalog="boolq", options={"choices": ["No", "Yes"]}), catalog, task=MC)
    assert boolq.hub_id == "google/boolq" and boolq.options == {"choices": ["No", "Yes"]}
    piqa = resolve(SourceSpec(catalog="piqa"), catalog, task=MC)
    assert piqa.options == {"choice_columns": ["sol1", "sol2"]}


def _by_hand(model, tok, prompt: str, continuation: str) -> tuple[float, int]:
    ids, start = _encode_pair(tok, prompt, continuation, 128, eos=False)
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
    return sum(logp[t - 1, ids[t]].item() for t in range(start, len(ids))), len(ids) - start


def test_evaluation_scores_each_choice_as_a_continuation(tiny_lm_path):
    rows = norm(
        [
            {"question": "my invoice is wrong", "choices": ["billing", "shipping issue", "refund"], "answer": 0},
            {"question": "where is my parcel", "choices": ["account", "shipping"], "answer": 1},
            {"question": "cancel my plan", "choices": ["cancel", "technical problem", "billing"], "answer": 2},
        ]
    ).rows
    loaded = load_model(TINY_LM, TrainingSettings(method="full"))
    model, tok = loaded.model, loaded.tokenizer
    metrics = ["accuracy", "accuracy_raw", "gold_prob", "loss"]
    res = evaluate_model(model, tok, rows, task=MC, metrics=metrics, batch_size=4, max_len=128)
    acc = acc_raw = prob = nll = 0.0
    n_tok = 0
    for row in rows:
        scored = [_by_hand(model, tok, prompt_text(row, MC), f" {c}") for c in row["choices"]]
        sums = [s for s, _ in scored]
        norm_scores = [s / len(f" {c}") for s, c in zip(sums, row["choices"])]
        acc += norm_scores.index(max(norm_scores)) == row["answer"]
        acc_raw += sums.index(max(sums)) == row["answer"]
        prob += math.exp(sums[row["answer"]]) / sum(math.exp(s) for s in sums)
        nll -= sums[row["answer"]]
        n_tok += scored[row["answer"]][1]
    assert res.metrics["accuracy"] == pytest.approx(acc / 3)
    assert res.metrics["accuracy_raw"] == pytest.approx(acc_raw / 3)
    assert res.metrics["gold_prob"] == pytest.approx(prob / 3, abs=1e-5)
    assert res.metrics["loss"] == pytest.approx(nll / n_tok, abs=1e-5)
    assert 0 < res.metrics["gold_prob"] < 1 and len(res.predictions) == 3
    assert all(p in row["choices"] for p, row in zip(res.predictions, rows))
    assert json.dumps(res.metrics)  # plain floats, as results store them
