"""The Catalog page (app/screens/catalog.py) with streamlit.testing.v1.AppTest.

Every test works on a copy of the shipped catalog in tmp_path (WORKBENCH_CATALOG); the shipped
catalog/candidates.json is checked to be byte-for-byte unchanged afterwards.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import paths
from core.catalog import load_catalog

PAGE = Path(__file__).resolve().parent.parent / "app" / "screens" / "catalog.py"
SHIPPED = paths.PROJECT_ROOT / "catalog" / "candidates.json"
TIMEOUT = 30


def unescape(text: str) -> str:
    """The page markdown-escapes user text in messages; tests compare the literal text."""
    return re.sub(r"\\(.)", r"\1", text).replace("  \n", "\n")


def errors(at: AppTest) -> list[str]:
    return [unescape(e.value) for e in at.error]


def successes(at: AppTest) -> list[str]:
    return [unescape(e.value) for e in at.success]


@pytest.fixture(autouse=True)
def _isolated_hf_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


@pytest.fixture
def catalog_copy(tmp_path, monkeypatch) -> Path:
    before = SHIPPED.read_bytes()
    copy = tmp_path / "catalog" / "candidates.json"
    copy.parent.mkdir()
    shutil.copyfile(SHIPPED, copy)
    monkeypatch.setenv("WORKBENCH_CATALOG", str(copy))
    assert paths.catalog_file() == copy.resolve()
    yield copy
    assert SHIPPED.read_bytes() == before, "the shipped catalog must never be modified by tests"


@pytest.fixture
def reviews(catalog_copy) -> Path:
    """A local jsonl file next to the catalog copy, with columns that need a mapping."""
    path = catalog_copy.parent / "data" / "reviews.jsonl"
    path.parent.mkdir()
    rows = [
        {"body": "great phone, fast delivery", "stars": "positive"},
        {"body": "broke after a day", "stars": "negative"},
        {"body": "works as described", "stars": "positive"},
        {"body": "never arrived", "stars": "negative"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def page() -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def table(at: AppTest):
    return at.dataframe[0].value


def fill_local(
    at: AppTest,
    *,
    id: str = "local/reviews",
    path: str = "data/reviews.jsonl",
    columns: str = "text=body\nlabel=stars",
    license: str = "cc-by-4.0",
) -> None:
    at.text_input(key="cat_f_id").input(id)
    at.radio(key="cat_f_kind").set_value("local path")
    at.run()
    at.text_input(key="cat_f_source").input(path)
    at.text_input(key="cat_f_license").input(license)
    at.text_area(key="cat_f_columns").input(columns)
    at.text_input(key="cat_f_tags").input("reviews, english")
    at.text_area(key="cat_f_description").input("Product reviews **not markdown** <b>nor html</b>")
    at.run()
    assert not at.exception, at.exception


def check(at: AppTest) -> None:
    at.button(key="cat_check_btn").click().run()
    assert not at.exception, at.exception


def save(at: AppTest) -> None:
    at.button(key="cat_save_btn").click().run()
    assert not at.exception, at.exception


def forge_click(at: AppTest, key: str) -> None:
    """Press a disabled button, as a crafted client message could (AppTest itself refuses to).

    Streamlit discards such a click server-side; the page must do nothing with it.
    """
    btn = at.button(key=key)
    assert btn.disabled
    btn._value = True
    at.run()
    assert not at.exception, at.exception


# ---------------------------------------------------------------------------------------------


def test_renders_the_catalog_with_demo_entries_marked(catalog_copy):
    at = page()
    assert not at.error
    df = table(at)
    shipped = load_catalog(catalog_copy)
    assert list(df["id"]) == shipped.ids()
    cols = (
        "kind",
        "id",
        "task",
        "source",
        "config",
        "split",
        "license",
        "gated",
        "size hint",
        "columns",
        "labels",
        "tags",
        "description",
        "checked",
    )
    for col in cols:
        assert col in df.columns
    demo = df[df["id"].str.startswith("demo/")]
    assert len(demo) == 10 and all("offline demo" in k for k in demo["kind"])
    assert not any("offline demo" in k for k in df[~df["id"].str.startswith("demo/")]["kind"])
    sst2 = df[df["id"] == "glue/sst2"].iloc[0]
    assert sst2["source"] == "nyu-mll/glue" and sst2["config"] == "sst2" and sst2["size hint"] == 67349
    assert "text=sentence" in sst2["columns"] and sst2["labels"] == "negative, positive"
    # Save is not possible before a check.
    assert at.button(key="cat_save_btn").disabled


def test_filter_by_task_and_search(catalog_copy):
    shipped = load_catalog(catalog_copy)
    at = page()
    at.selectbox(key="cat_filter_task").set_value("qa").run()
    assert set(table(at)["id"]) == {"squad", "squad_v2", "adversarial_qa"}
    at.selectbox(key="cat_filter_task").set_value("generative").run()
    assert list(table(at)["id"]) == [e.id for e in shipped.for_task("generative")]
    at.text_input(key="cat_filter_query").input("hendrycks").run()
    assert len(table(at)) == 7 and all(i.startswith("hendrycks_math/") for i in table(at)["id"])
    at.selectbox(key="cat_filter_task").set_value("all tasks")
    at.text_input(key="cat_filter_query").input("offline").run()
    assert all(i.startswith("demo/") for i in table(at)["id"]) and len(table(at)) == 10
    at.text_input(key="cat_filter_query").input("no such thing").run()
    assert not at.dataframe and "No entry matches" in at.info[0].value


def test_filter_by_license_size_and_gated(catalog_copy):
    cat = load_catalog(catalog_copy)
    gated = cat.get("no_robots").model_copy(update={"id": "gated/set", "gated": True})
    cat.add(gated)
    cat.save()
    at = page()
    df = table(at)
    assert df[df["id"] == "gated/set"].iloc[0]["gated"] == "gated"
    assert set(df[df["gated"] == "gated"]["id"]) == {"gated/set"}
    at.checkbox(key="cat_filter_gated").check().run()
    assert "gated/set" not in set(table(at)["id"]) and "no_robots" in set(table(at)["id"])
    at.multiselect(key="cat_filter_license").set_value(["apache-2.0"]).run()
    apache = {e.id for e in cat.entries if e.license.lower().startswith("apache-2.0")}
    assert set(table(at)["id"]) == apache and "polaris-53k" in apache
    # "other (GLUE; ...)" files under "other"
    at.multiselect(key="cat_filter_license").set_value(["other"]).run()
    assert "glue/sst2" in set(table(at)["id"]) and "imdb" in set(table(at)["id"])
    at.multiselect(key="cat_filter_license").set_value([]).run()
    at.selectbox(key="cat_filter_size").set_value("1M rows or more").run()
    big = set(table(at)["id"])
    assert {"amazon_polarity", "openhermes-2.5", "openthoughts3-1.2m"} <= big
    assert all(cat.get(i).size_hint >= 1_000_000 for i in big)
    at.selectbox(key="cat_filter_size").set_value("under 10k rows").run()
    small = set(table(at)["id"])
    assert "hendrycks_math/geometry" in small and "demo/d0" in small and "gsm8k" in small
    assert all(cat.get(i).size_hint < 10_000 for i in small)


def test_new_local_entry_is_checked_previewed_and_saved(catalog_copy, reviews):
    at = page()
    fill_local(at)
    at.text_input(key="cat_f_checked").input("columns read in the file, 2026-12-01")
    assert at.button(key="cat_save_btn").disabled
    check(at)
    assert not at.error, errors(at)
    assert any("Preview OK" in s and "4 normalized" in s for s in successes(at))
    labels, rows = at.dataframe[1].value, at.dataframe[2].value
    assert dict(zip(labels["label"], labels["rows"])) == {"negative": 2, "positive": 2}
    assert list(rows.columns) == ["text", "label"] and "broke after a day" in set(rows["text"])
    assert not at.button(key="cat_save_btn").disabled
    save(at)
    assert any("Saved 'local/reviews'" in s for s in successes(at)), successes(at)
    on_disk = load_catalog(catalog_copy)
    entry = on_disk.get("local/reviews")
    assert entry.path == "data/reviews.jsonl" and entry.task == "classification"
    assert entry.columns == {"text": "body", "label": "stars"}
    assert entry.license == "cc-by-4.0" and entry.tags == ["reviews", "english"]
    assert entry.checked == "columns read in the file, 2026-12-01"
    assert len(on_disk) == len(load_catalog(SHIPPED)) + 1
    # The new entry is in the table, its description as plain text, and the form now edits it.
    df = table(at)
    assert "Product reviews **not markdown** <b>nor html</b>" in set(df["description"])
    assert "columns read in the file, 2026-12-01" in set(df["checked"])
    assert at.selectbox(key="cat_target").value == "local/reviews"
    assert at.text_input(key="cat_f_id").disabled


def test_bad_mapping_shows_an_error_and_cannot_be_saved(catalog_copy, reviews):
    before = catalog_copy.read_bytes()
    at = page()
    fill_local(at, columns="text=review_body\nlabel=stars")
    check(at)
    msgs = errors(at)
    assert len(msgs) == 1 and "review_body" in msgs[0] and "not a column" in msgs[0] and "body" in msgs[0]
    assert "Traceback" not in msgs[0]
    forge_click(at, "cat_save_btn")  # the button is disabled; a forged click writes nothing either
    assert catalog_copy.read_bytes() == before
    assert not successes(at)


def test_malformed_form_lines_are_reported(catalog_copy, reviews):
    at = page()
    fill_local(at, columns="text body", license="")
    check(at)
    msg = errors(at)[0]
    assert "column mapping, line 1" in msg and "license" in msg
    assert at.button(key="cat_save_btn").disabled


def test_saving_without_a_check_is_refused(catalog_copy, reviews):
    before = catalog_copy.read_bytes()
    at = page()
    fill_local(at)
    assert at.button(key="cat_save_btn").disabled
    assert any("Save is enabled after a successful check" in c.value for c in at.caption)
    forge_click(at, "cat_save_btn")
    assert not successes(at)
    assert catalog_copy.read_bytes() == before


def test_save_pressed_together_with_an_edit_is_refused(catalog_copy, reviews):
    """The Save button was enabled for the checked fields, but a field changed in the same rerun."""
    before = catalog_copy.read_bytes()
    at = page()
    fill_local(at)
    check(at)
    assert not at.button(key="cat_save_btn").disabled
    at.text_area(key="cat_f_columns").input("text=body\nlabel=body")
    at.button(key="cat_save_btn").click()
    at.run()
    assert not at.exception, at.exception
    assert any("check the entry against a preview first" in e for e in errors(at)), errors(at)
    assert not successes(at)
    assert catalog_copy.read_bytes() == before


def test_a_change_after_the_check_needs_a_new_check(catalog_copy, reviews):
    before = catalog_copy.read_bytes()
    at = page()
    fill_local(at)
    check(at)
    assert not at.button(key="cat_save_btn").disabled
    at.text_area(key="cat_f_columns").input("text=body\nlabel=body").run()  # changed, unchecked
    assert at.button(key="cat_save_btn").disabled
    assert any("changed since the last check" in i.value for i in at.info)
    forge_click(at, "cat_save_btn")
    assert catalog_copy.read_bytes() == before
    at.text_area(key="cat_f_columns").input("text=body\nlabel=stars").run()  # back to what was checked
    assert not at.button(key="cat_save_btn").disabled


def test_new_entry_with_an_existing_id_is_refused(catalog_copy):
    at = page()
    at.text_input(key="cat_f_id").input("demo/helpful")
    at.radio(key="cat_f_kind").set_value("offline demo")
    at.text_input(key="cat_f_license").input("CC0-1.0")
    at.run()
    check(at)
    assert any("already exists" in e for e in errors(at))
    assert at.button(key="cat_save_btn").disabled


def test_edit_prefills_the_form_and_replaces_the_entry(catalog_copy):
    at = page()
    at.selectbox(key="cat_target").set_value("gsm8k").run()
    assert not at.exception, at.exception
    assert at.text_input(key="cat_f_id").value == "gsm8k" and at.text_input(key="cat_f_id").disabled
    assert at.radio(key="cat_f_kind").value == "Hub id"
    assert at.text_input(key="cat_f_source").value == "openai/gsm8k"
    assert at.text_input(key="cat_f_config").value == "main"
    assert at.selectbox(key="cat_f_task").value == "generative"
    assert at.selectbox(key="cat_f_answer_extraction").value == "gsm8k"
    assert at.text_area(key="cat_f_columns").value == "prompt=question\nanswer=answer"
    assert at.number_input(key="cat_f_size_hint").value == 7473
    assert at.text_input(key="cat_f_tags").value == "math, reasoning, word-problems, english"
    assert at.checkbox(key="cat_f_gated").value is False
    # Point it at a local copy of the data, check, save: the entry is replaced, not duplicated.
    data = catalog_copy.parent / "gsm8k.jsonl"
    data.write_text(
        json.dumps({"question": "What is 2+3?", "answer": "2+3=5\n#### 5"})
        + "\n"
        + json.dumps({"question": "What is 4*2?", "answer": "4*2=8\n#### 8"})
        + "\n",
        encoding="utf-8",
    )
    at.radio(key="cat_f_kind").set_value("local path").run()
    at.text_input(key="cat_f_source").input("gsm8k.jsonl")
    at.text_input(key="cat_f_license").input("mit (local copy)")
    at.text_input(key="cat_f_config").input("")
    at.run()
    check(at)
    assert not at.error, errors(at)
    rows = at.dataframe[-1].value
    assert list(rows["answer"]) == ["5", "8"] or sorted(rows["answer"]) == ["5", "8"]
    save(at)
    assert any("Saved 'gsm8k'" in s for s in successes(at)), errors(at)
    on_disk = load_catalog(catalog_copy)
    assert on_disk.ids().count("gsm8k") == 1 and len(on_disk) == len(load_catalog(SHIPPED))
    e = on_disk.get("gsm8k")
    assert e.path == "gsm8k.jsonl" and e.hub_id is None and e.config is None
    assert e.license == "mit (local copy)" and e.answer_extraction == "gsm8k" and e.size_hint == 7473
    # Choosing "new entry" clears the form again.
    at.selectbox(key="cat_target").set_value("").run()
    assert at.text_input(key="cat_f_id").value == "" and not at.text_input(key="cat_f_id").disabled


def test_delete_asks_for_confirmation(catalog_copy):
    at = page()
    at.selectbox(key="cat_target").set_value("ag_news").run()
    at.button(key="cat_delete_btn").click().run()
    assert any("Delete 'ag_news'" in unescape(w.value) for w in at.warning)
    assert "ag_news" in load_catalog(catalog_copy)  # not yet
    at.button(key="cat_delete_no").click().run()
    assert not at.warning and "ag_news" in load_catalog(catalog_copy)
    at.button(key="cat_delete_btn").click().run()
    at.button(key="cat_delete_yes").click().run()
    assert not at.exception, at.exception
    assert any("Deleted 'ag_news'" in s for s in successes(at))
    assert "ag_news" not in load_catalog(catalog_copy)
    assert "ag_news" not in set(table(at)["id"])
    assert at.selectbox(key="cat_target").value == ""


def test_a_demo_entry_cannot_be_deleted(catalog_copy):
    before = catalog_copy.read_bytes()
    at = page()
    at.selectbox(key="cat_target").set_value("demo/helpful").run()
    assert any("cannot be deleted" in i.value for i in at.info)
    forge_click(at, "cat_delete_btn")  # disabled; a forged click asks nothing
    assert all(b.key != "cat_delete_yes" for b in at.button)
    # Nor through a forged confirmation.
    at.session_state["cat_confirm_delete"] = "demo/helpful"
    at.run()
    assert all(b.key != "cat_delete_yes" for b in at.button)
    assert catalog_copy.read_bytes() == before
    assert "demo/helpful" in load_catalog(catalog_copy)


def test_hub_entry_without_network_gives_a_clean_message(catalog_copy):
    # tests/conftest.py sets HF_HUB_OFFLINE=1: the Hub cannot be reached, as on a machine without network.
    at = page()
    at.text_input(key="cat_f_id").input("someone/sentiment")
    at.text_input(key="cat_f_source").input("someone/sentiment")
    at.text_input(key="cat_f_license").input("mit")
    at.run()
    check(at)
    msgs = errors(at)
    assert len(msgs) == 1, msgs
    assert "could not reach the Hugging Face Hub" in msgs[0] and "someone/sentiment" in msgs[0]
    assert "Traceback" not in msgs[0] and not at.exception
    assert at.button(key="cat_save_btn").disabled


def test_a_verifiers_file_previews_with_its_info_and_task(catalog_copy):
    data = catalog_copy.parent / "data" / "verifiers.jsonl"
    data.parent.mkdir()
    rows = [
        {"prompt": [{"role": "user", "content": f"What is {i} + {i}?"}], "answer": str(2 * i), "info": {"id": i}}
        for i in range(4)
    ]
    for i, row in enumerate(rows):
        row["task"] = "sums" if i % 2 else "doubles"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    at = page()
    at.selectbox(key="cat_f_task").set_value("generative").run()
    fill_local(at, id="local/verifiers", path="data/verifiers.jsonl", columns="", license="mit")
    check(at)
    assert not at.error, errors(at)
    preview = at.dataframe[-1].value
    assert {"prompt", "answer", "info", "task"} <= set(preview.columns)
    assert json.loads(preview["info"].iloc[1]) == {"id": 1} and list(preview["task"]) == ["doubles", "sums"] * 2
    shown = [e.value for e in at.text]
    assert any("rows by task tag: doubles 2, sums 2" in s for s in shown), shown
