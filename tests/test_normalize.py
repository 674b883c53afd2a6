"""core.normalize: column mapping, labels, qa answers, generative extraction and chat, keys, errors."""

from __future__ import annotations

import time

import pytest

from core.normalize import DataError, NormalizedData, fingerprint_rows, normalize, normalize_text, text_key, text_keys
from core.sources import LoadedSource
from core.spec import SourceSpec
from core.tasks.generative import extract_boxed, extract_gsm8k


def loaded(rows, name="ds", label_names=None, columns=None, indices=None) -> LoadedSource:
    return LoadedSource(
        name=name,
        rows=rows,
        columns=columns if columns is not None else list(rows[0].keys()) if rows else [],
        label_names=label_names,
        total_rows=len(rows),
        origin="test",
        streamed=False,
        indices=indices if indices is not None else list(range(len(rows))),
    )


def src(**kw) -> SourceSpec:
    return SourceSpec(path="x.jsonl", **kw)


def expect(rows, task, spec=None, *needles, name="mydata", **kw) -> str:
    with pytest.raises(DataError) as info:
        normalize(loaded(rows, name=name), task, spec or src(), **kw)
    msg = str(info.value)
    assert msg.startswith(name + ":"), msg
    for n in needles:
        assert n in msg, f"{n!r} not in {msg!r}"
    return msg


# ---------------------------------------------------------------------------------------------
# classification


def test_classification_identity_strip_and_drop_empty():
    rows = [
        {"text": "  good movie ", "label": " pos "},
        {"text": "   ", "label": "neg"},
        {"text": None, "label": "neg"},
        {"text": "bad", "label": "neg"},
    ]
    nd = normalize(loaded(rows, indices=[10, 11, 12, 13]), "classification", src())
    assert isinstance(nd, NormalizedData)
    assert nd.rows == [{"text": "good movie", "label": "pos"}, {"text": "bad", "label": "neg"}]
    assert nd.dropped == 2 and any("empty text" in n for n in nd.notes)
    assert nd.indices == [10, 13]
    assert nd.labels == ["neg", "pos"] and nd.task == "classification" and nd.name == "ds"
    assert nd.columns == {"text": "text", "label": "label"}


def test_classification_aliases_and_explicit_mapping():
    nd = normalize(loaded([{"sentence": "hi", "category": "greet", "id": 1}]), "classification", src())
    assert nd.columns == {"text": "sentence", "label": "category"} and nd.rows == [{"text": "hi", "label": "greet"}]
    nd = normalize(
        loaded([{"body": "hi", "y": "greet"}]), "classification", src(columns={"text": "body", "label": "y"})
    )
    assert nd.rows == [{"text": "hi", "label": "greet"}]


def test_int_labels_named_by_classlabel_then_label_map():
    rows = [{"text": f"t{i}", "label": i % 3} for i in range(6)]
    names = ["negative", "neutral", "positive"]
    nd = normalize(loaded(rows, label_names=names), "classification", src())
    assert [r["label"] for r in nd.rows] == names * 2
    nd = normalize(loaded(rows, label_names=names), "classification", src(label_map={"neutral": "negative"}))
    assert nd.labels == ["negative", "positive"]
    # src.label_names wins over the ClassLabel names; label_map by index string works too
    nd = normalize(
        loaded(rows, label_names=names), "classification", src(label_names=["a", "b", "c"], label_map={"2": "z"})
    )
    assert [r["label"] for r in nd.rows[:3]] == ["a", "b", "z"]
    # no names: decimal strings
    assert normalize(loaded(rows), "classification", src()).labels == ["0", "1", "2"]


def test_bool_and_float_labels():
    nd = normalize(loaded([{"text": "a", "label": True}, {"text": "b", "label": False}]), "classification", src())
    assert [r["label"] for r in nd.rows] == ["true", "false"]
    nd = normalize(
        loaded([{"text": "a", "label": 1.0}, {"text": "b", "label": 0.0}]),
        "classification",
        src(label_names=["n", "p"]),
    )
    assert [r["label"] for r in nd.rows] == ["p", "n"]


def test_digit_string_labels_use_explicit_label_names():
    nd = normalize(loaded([{"text": "a", "label": "1"}]), "classification", src(label_names=["neg", "pos"]))
    assert nd.rows[0]["label"] == "pos"


def test_labels_outside_the_study_set_are_an_error_with_the_fix():
    rows = [{"text": f"t{i}", "label": f"L{i}"} for i in range(15)] + [{"text": "x", "label": "pos"}]
    msg = expect(
        rows,
        "classification",
        None,
        "column 'label'",
        "'L0'",
        "and 5 more",
        "label_map",
        "remove those rows",
        labels=["pos", "neg"],
    )
    assert "'L9'" not in msg  # at most 10 shown (sorted: L0, L1, L10..L14, L2..L4)
    nd = normalize(loaded(rows[-1:]), "classification", src(), labels=["pos", "neg"])
    assert nd.labels == ["pos"]
    nd = normalize(
        loaded([{"text": "a", "label": "positive"}]),
        "classification",
        src(label_map={"positive": "pos"}),
        labels=["pos", "neg"],
    )
    assert nd.rows[0]["label"] == "pos"


def test_mixed_label_types():
    expect(
        [{"text": "a", "label": 1}, {"text": "b", "label": "pos"}], "classification", None, "mixes types", "label_names"
    )
    expect([{"text": "a", "label": True}, {"text": "b", "label": 1}], "classification", None, "mixes types")


def test_missing_label_and_out_of_range_int():
    expect(
        [{"text": "a", "label": "x"}, {"text": "b", "label": None}],
        "classification",
        None,
        "row 1",
        "missing",
        "fill in the label",
    )
    expect([{"text": "a", "label": " "}], "classification", None, "row 0", "empty")
    expect([{"text": "a", "label": float("nan")}], "classification", None, "missing")
    expect([{"text": "a", "label": -1}], "classification", src(label_names=["n", "p"]), "-1", "unlabeled test split")


def test_missing_column_names_field_columns_and_fix():
    msg = expect(
        [{"body": "a", "y": 1}], "classification", None, "field 'text'", "['body', 'y']", "columns: {text: <column>}"
    )
    assert "classification" in msg
    expect([{"text": "a", "y": 1}], "classification", src(columns={"label": "nope"}), "'nope'", "not a column")
    expect([{"text": "a", "label": 1}], "classification", src(columns={"txt": "text"}), "unknown field", "'txt'")


def test_wrong_types_name_the_row():
    expect(
        [{"text": "a", "label": "x"}, {"text": ["a", "b"], "label": "x"}],
        "classification",
        None,
        "row 1",
        "list",
        "'text'",
    )
    expect([{"text": "a", "label": {"x": 1}}], "classification", None, "row 0", "dict")


def test_no_rows_after_normalization():
    expect([{"text": "", "label": "x"}], "classification", None, "no rows left", "empty text")
    with pytest.raises(DataError, match="no rows"):
        normalize(loaded([], columns=["text", "label"], name="e"), "classification", src())


def test_fingerprint_is_content_based_and_order_sensitive():
    rows = [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}]
    a = normalize(loaded(rows), "classification", src())
    b = normalize(
        loaded([{"text": " a ", "label": "x"}, {"text": "b", "label": "y"}], name="other"), "classification", src()
    )
    c = normalize(loaded(rows[::-1]), "classification", src())
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert len(a.fingerprint) == 64
    assert fingerprint_rows(a.rows, "classification") != fingerprint_rows(a.rows, "generative")


# ---------------------------------------------------------------------------------------------
# qa


def test_qa_squad_dict_and_plain_string():
    ctx = "Paris is the capital of France."
    rows = [
        {"question": "Capital?", "context": ctx, "answers": {"text": ["Paris"], "answer_start": [0]}},
        {"question": "Country?", "context": ctx, "answers": "France"},
        {"question": "Where?", "context": ctx, "answers": "Berlin"},
        {"question": "Unanswerable?", "context": ctx, "answers": {"text": [], "answer_start": []}},
    ]
    nd = normalize(loaded(rows), "qa", src())
    assert nd.rows[0]["answers"] == {"text": ["Paris"], "answer_start": [0]}
    assert nd.rows[1]["answers"] == {"text": ["France"], "answer_start": [ctx.find("France")]}
    assert nd.rows[2]["answers"] == {"text": ["Berlin"], "answer_start": [-1]}
    assert nd.dropped == 1 and any("without an answer" in n for n in nd.notes)
    assert nd.labels is None


def test_qa_answer_alias_and_missing_context():
    nd = normalize(loaded([{"question": "q", "context": "c a", "answer": "a"}]), "qa", src())
    assert nd.rows[0]["answers"] == {"text": ["a"], "answer_start": [2]}
    expect([{"question": "q", "answers": "a"}], "qa", None, "field 'context'", "generative")


# ---------------------------------------------------------------------------------------------
# generative


def test_gsm8k_extraction():
    assert extract_gsm8k("She has 3 + 4 = <<3+4=7>>7 apples.\n#### 1,234") == "1234"
    assert extract_gsm8k("a #### 1 #### 42 ") == "42"
    assert extract_gsm8k("no marker") is None
    rows = [{"question": "How many?", "answer": "Work...\n#### 72"}, {"question": "Bad", "answer": "no final answer"}]
    nd = normalize(loaded(rows), "generative", src(answer_extraction="gsm8k"))
    assert nd.rows == [{"prompt": "How many?", "answer": "72", "answer_full": "Work...\n#### 72"}]
    assert nd.dropped == 1 and any("####" in n for n in nd.notes)


def test_boxed_extraction():
    assert extract_boxed("so $\\boxed{\\frac{1}{2}}$.") == "\\frac{1}{2}"
    assert extract_boxed("\\boxed{1} then \\boxed{{a}+{b}}") == "{a}+{b}"
    assert extract_boxed("\\fbox{7}") == "7"
    assert extract_boxed("\\boxed{unbalanced") is None
    assert extract_boxed("nothing") is None
    rows = [{"problem": "1/2?", "solution": "It is $\\boxed{\\dfrac{1}{2}}$."}]
    nd = normalize(loaded(rows), "generative", src(answer_extraction="boxed"))
    assert nd.columns == {"prompt": "problem", "answer": "solution"}
    assert nd.rows[0]["answer"] == "\\dfrac{1}{2}" and nd.rows[0]["answer_full"] == rows[0]["solution"]
    expect(
        [{"problem": "p", "solution": "no box"}], "generative", src(answer_extraction="boxed"), "no rows left", "boxed"
    )


def test_chat_messages_split_on_last_assistant_turn():
    msgs = [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    ]
    rows = [
        {"prompt": "hi", "messages": msgs, "prompt_id": "x"},
        {"prompt": "q", "messages": msgs[:2], "prompt_id": "y"},
    ]
    nd = normalize(loaded(rows), "generative", src(columns={"prompt": "messages"}))
    assert nd.rows == [{"prompt": msgs[:4], "answer": "4", "answer_full": "4"}]
    assert nd.dropped == 1  # no final assistant turn
    # ShareGPT {from, value}
    sg = [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]
    nd = normalize(loaded([{"conversations": sg}]), "generative", src(columns={"prompt": "conversations"}))
    assert nd.rows == [{"prompt": [{"role": "user", "content": "hi"}], "answer": "yo", "answer_full": "yo"}]


def test_generative_context_folded_into_prompt():
    rows = [
        {"instruction": "Summarize.", "context": "Long text.", "response": "Short."},
        {"instruction": "Name a color.", "context": "", "response": "Red"},
    ]
    nd = normalize(loaded(rows), "generative", src())
    assert nd.rows[0]["prompt"] == "Summarize.\n\nLong text." and nd.rows[1]["prompt"] == "Name a color."
    assert nd.rows[0]["answer"] == "Short."


def test_generative_errors():
    expect([{"prompt": "p", "other": 1}], "generative", None, "field 'answer'", "columns: {answer: <column>}")
    expect([{"prompt": {"a": 1}, "answer": "x"}], "generative", None, "row 0", "dict")
    expect([{"prompt": [{"role": "user"}], "answer": "x"}], "generative", None, "row 0", "role", "content")
    expect([{"prompt": "p", "answer": "a"}], "nope", None, "unknown task")


def test_numeric_answers_become_strings():
    nd = normalize(loaded([{"question": "2+2", "answer": 4}]), "generative", src())
    assert nd.rows[0]["answer"] == "4"


# ---------------------------------------------------------------------------------------------
# keys


def test_text_key_normalizes_case_space_punctuation():
    a = text_key({"text": "Hello,   World!", "label": "x"}, "classification")
    b = text_key({"text": "hello world", "label": "y"}, "classification")
    c = text_key({"text": "hello there", "label": "x"}, "classification")
    assert a == b != c
    assert normalize_text("  It's   A_test, OK?\n") == "its atest ok"
    q1 = text_key({"question": "Who?", "context": "Ctx.", "answers": {}}, "qa")
    q2 = text_key({"question": "who", "context": "ctx", "answers": {}}, "qa")
    assert q1 == q2
    g1 = text_key({"prompt": [{"role": "user", "content": "Hi!"}], "answer": "x"}, "generative")
    g2 = text_key({"prompt": "hi", "answer": "y"}, "generative")
    assert g1 == g2
    assert text_keys([{"text": "a", "label": "b"}], "classification") == [
        text_key({"text": "a", "label": "b"}, "classification")
    ]


def test_classification_speed():
    n = 200_000
    rows = [{"text": f"this is review number {i} of the set", "label": i % 4} for i in range(n)]
    data = loaded(rows, label_names=["a", "b", "c", "d"])
    t = time.perf_counter()
    nd = normalize(data, "classification", src(label_map={"d": "c"}), labels=["a", "b", "c"])
    elapsed = time.perf_counter() - t
    assert len(nd.rows) == n
    assert n / elapsed > 100_000, f"{n / elapsed:,.0f} rows/s"


def test_extract_answer_dispatch():
    from core.tasks.generative import extract_answer

    assert extract_answer("steps\n#### 3,000", "gsm8k") == "3000"
    assert extract_answer("so \\boxed{x+1}", "boxed") == "x+1"
    assert extract_answer("  42 \n", "none") == "42"
    assert extract_answer("no answer here", "gsm8k") is None
    with pytest.raises(ValueError, match="unknown answer_extraction"):
        extract_answer("x", "regex")
