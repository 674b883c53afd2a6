"""core.catalog: the shipped catalog, lookups, resolve with overrides, add/save, and errors."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import pytest

from core import paths, tasks
from core.catalog import Catalog, CatalogEntry, CatalogError, load_catalog, resolve
from core.normalize import normalize
from core.sources import load_source
from core.spec import SourceSpec


@pytest.fixture(autouse=True)
def _isolated_hf_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def entry(**kw) -> CatalogEntry:
    base = {"id": "x", "hub_id": "o/x", "task": "classification", "license": "mit"}
    return CatalogEntry(**{**base, **kw})


@pytest.fixture
def cat(tmp_path) -> Catalog:
    c = Catalog(
        [
            entry(
                id="glue/sst2",
                hub_id="nyu-mll/glue",
                config="sst2",
                size_hint=67349,
                columns={"text": "sentence"},
                label_names=["negative", "positive"],
                label_map={"negative": "neg"},
            ),
            entry(id="local/reviews", hub_id=None, path="data/reviews.jsonl", columns={"text": "body"}),
            entry(
                id="gsm8k",
                hub_id="openai/gsm8k",
                config="main",
                task="generative",
                columns={"prompt": "question"},
                answer_extraction="gsm8k",
            ),
            entry(
                id="demo/helpful",
                hub_id=None,
                demo="helpful",
                license="CC0-1.0 (generated)",
                columns={"text": "text", "label": "label"},
                tags=["demo", "offline"],
            ),
        ],
        path=tmp_path / "candidates.json",
    )
    c.save()
    return c


# ---------------------------------------------------------------------------------------------
# The shipped catalog


def test_shipped_catalog_validates_and_has_the_entries():
    cat = load_catalog()  # core.paths.catalog_file()
    assert cat.path == paths.catalog_file()
    ids = cat.ids()
    for required in (
        "glue/sst2",
        "ag_news",
        "squad",
        "gsm8k",
        "hendrycks_math/algebra",
        "ultrachat_200k",
        "dolly-15k",
        "demo/helpful",
        "demo/partial",
        "demo/offdomain",
        "demo/noisy",
        "demo/d0",
        "demo/benchmark",
    ):
        assert required in ids, required
    for e in cat.entries:
        assert e.license and e.description, e.id
        CatalogEntry.model_validate(e.model_dump())  # round-trips
        if e.hub_id:
            assert "/" in e.hub_id and e.size_hint and e.size_hint > 0, e.id
        if e.demo and e.task == "classification":
            assert e.id == f"demo/{e.demo}"
            assert e.license == "CC0-1.0 (generated)" and e.tags == ["demo", "offline"]
            assert e.columns == {"text": "text", "label": "label"}
        elif e.demo:
            assert e.task == "generative" and e.is_math and e.columns == {"prompt": "prompt", "answer": "answer"}
    sst2 = cat.get("glue/sst2")
    assert (sst2.hub_id, sst2.config, sst2.columns["text"], sst2.label_names) == (
        "nyu-mll/glue",
        "sst2",
        "sentence",
        ["negative", "positive"],
    )
    assert cat.get("ag_news").label_names == ["World", "Sports", "Business", "Sci/Tech"]
    assert (
        cat.get("gsm8k").answer_extraction == "gsm8k" and cat.get("hendrycks_math/algebra").answer_extraction == "boxed"
    )
    chat = cat.get("ultrachat_200k")
    assert chat.split == "train_sft" and chat.columns == {"prompt": "messages"}
    assert {e.task for e in cat.entries} == set(tasks.names())  # every task has entries to start from
    # every shipped entry resolves to a valid SourceSpec (demo entries need core.demo: checked below)
    for e in cat.entries:
        if not e.demo:
            assert resolve(SourceSpec(catalog=e.id), cat).display_name == e.id


# The sets the issue asks for, by catalog id (every hendrycks_math subject, the common SFT, math,
# classification and QA sets).
REQUIRED_HUB_IDS = {
    "gsm8k": "openai/gsm8k",
    "deepmath-103k": "zwhe99/DeepMath-103K",
    "polaris-53k": "POLARIS-Project/Polaris-Dataset-53K",
    "metamathqa": "meta-math/MetaMathQA",
    "numinamath-cot": "AI-MO/NuminaMath-CoT",
    "openthoughts3-1.2m": "open-thoughts/OpenThoughts3-1.2M",
    "ultrachat_200k": "HuggingFaceH4/ultrachat_200k",
    "tulu-3-sft-mixture": "allenai/tulu-3-sft-mixture",
    "no_robots": "HuggingFaceH4/no_robots",
    "dolly-15k": "databricks/databricks-dolly-15k",
    "alpaca": "tatsu-lab/alpaca",
    "openhermes-2.5": "teknium/OpenHermes-2.5",
    "glue/sst2": "nyu-mll/glue",
    "ag_news": "fancyzhx/ag_news",
    "imdb": "stanfordnlp/imdb",
    "yelp_review_full": "Yelp/yelp_review_full",
    "emotion": "dair-ai/emotion",
    "banking77": "PolyAI/banking77",
    "tweet_eval/sentiment": "cardiffnlp/tweet_eval",
    "amazon_polarity": "fancyzhx/amazon_polarity",
    "squad": "rajpurkar/squad",
    "squad_v2": "rajpurkar/squad_v2",
    "adversarial_qa": "UCLNLP/adversarial_qa",
}
MATH_SUBJECTS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)


def test_every_hub_entry_is_checked_and_maps_the_fields_its_task_needs():
    cat = load_catalog()
    hub = [e for e in cat.entries if e.hub_id]
    assert len(hub) >= 30
    for entry_id, hub_id in REQUIRED_HUB_IDS.items():
        assert cat.get(entry_id).hub_id == hub_id, entry_id
    for subject in MATH_SUBJECTS:
        e = cat.get(f"hendrycks_math/{subject}")
        assert (e.hub_id, e.config, e.answer_extraction) == ("EleutherAI/hendrycks_math", subject, "boxed")
    for e in hub:
        assert re.match(r"^\d{4}-\d{2}-\d{2}: \S", e.checked or ""), f"{e.id}: checked must say when and how"
        task = tasks.get(e.task)
        mapped = set(e.columns)
        assert mapped <= set(task.known_fields), e.id
        needed = set(task.fields)
        if e.task == "generative" and "answer" not in mapped:
            needed.discard("answer")  # a chat column whose last turn is the answer
            assert e.columns["prompt"] in ("messages", "conversations"), e.id
        if e.task == "multiple_choice" and e.options:
            needed.discard("choices")  # choice_columns or fixed choices
        assert needed <= mapped, f"{e.id}: columns must map {sorted(needed - mapped)}"
        if e.task == "classification":
            assert e.label_names and len(set(e.label_names)) == len(e.label_names), e.id
        assert e.size_hint and e.description and e.license, e.id
    assert len(cat.get("banking77").label_names) == 77
    assert cat.get("metamathqa").answer_extraction == "answer_is"
    math_ids = {e.id for e in hub if e.is_math}
    assert {"gsm8k", "deepmath-103k", "polaris-53k", "metamathqa", "numinamath-cot"} <= math_ids
    assert "tulu-3-sft-mixture" not in math_ids and "openthoughts3-1.2m" not in math_ids  # mixed domains


def test_shipped_catalog_file_is_what_save_writes(tmp_path):
    cat = load_catalog()
    out = cat.save(tmp_path / "copy.json")
    assert json.loads(out.read_text()) == json.loads(paths.catalog_file().read_text())


# ---------------------------------------------------------------------------------------------
# Lookups


def test_get_and_close_matches(cat):
    assert cat.get("gsm8k").config == "main"
    with pytest.raises(CatalogError) as info:
        cat.get("glue/sst-2")
    assert "unknown catalog id 'glue/sst-2'" in str(info.value) and "'glue/sst2'" in str(info.value)
    with pytest.raises(KeyError):
        cat.get("nothing-like-it")
    assert "known ids" in str(pytest.raises(CatalogError, cat.get, "zzzzzzzz").value)
    assert "gsm8k" in cat and len(cat) == 4 and [e.id for e in cat][0] == "glue/sst2"


def test_for_task(cat):
    assert [e.id for e in cat.for_task("generative")] == ["gsm8k"]
    assert [e.id for e in cat.for_task("qa")] == []


# ---------------------------------------------------------------------------------------------
# resolve


def test_resolve_hub_entry_defaults(cat):
    s = resolve(SourceSpec(catalog="glue/sst2", max_rows=500), cat)
    assert s.catalog is None and s.hub_id == "nyu-mll/glue" and s.config == "sst2" and s.split == "train"
    assert s.columns == {"text": "sentence"} and s.label_names == ["negative", "positive"]
    assert s.label_map == {"negative": "neg"} and s.max_rows == 500
    assert s.name == "glue/sst2" and s.display_name == "glue/sst2"


def test_resolve_explicit_fields_override(cat):
    s = resolve(
        SourceSpec(
            catalog="glue/sst2",
            split="validation",
            name="sst-val",
            label_names=["n", "p"],
            columns={"label": "target"},
            label_map={"positive": "pos"},
            revision="abc",
        ),
        cat,
    )
    assert (s.split, s.name, s.label_names, s.revision) == ("validation", "sst-val", ["n", "p"], "abc")
    assert s.columns == {"text": "sentence", "label": "target"}  # merged, user's keys win
    assert s.label_map == {"negative": "neg", "positive": "pos"}
    assert s.config == "sst2"
    # an explicit value equal to the default still counts as explicit
    assert resolve(SourceSpec(catalog="gsm8k", answer_extraction="none"), cat).answer_extraction == "none"
    assert resolve(SourceSpec(catalog="gsm8k"), cat).answer_extraction == "gsm8k"


def test_resolve_path_entry_is_relative_to_the_catalog_folder(cat, tmp_path):
    s = resolve(SourceSpec(catalog="local/reviews"), cat)
    assert s.path == str((tmp_path / "data" / "reviews.jsonl").resolve()) and s.hub_id is None


def test_resolve_demo_entry_uses_core_demo_lazily(cat, tmp_path, monkeypatch):
    folder = tmp_path / "demo-data"
    folder.mkdir()
    (folder / "helpful.jsonl").write_text('{"text": "reset my password", "label": "account"}\n')
    calls = []
    fake = types.ModuleType("core.demo")
    fake.ensure_demo_data = lambda: calls.append(1) or folder
    monkeypatch.setitem(sys.modules, "core.demo", fake)
    s = resolve(SourceSpec(catalog="demo/helpful"), cat)
    assert calls == [1] and Path(s.path) == folder / "helpful.jsonl" and s.name == "demo/helpful"
    nd = normalize(load_source(s), "classification", s)
    assert nd.rows == [{"text": "reset my password", "label": "account"}] and nd.name == "demo/helpful"
    (folder / "helpful.jsonl").unlink()
    with pytest.raises(CatalogError, match="helpful.jsonl"):
        resolve(SourceSpec(catalog="demo/helpful"), cat)


def test_shipped_demo_entries_resolve(tmp_path, monkeypatch):
    folder = tmp_path / "demo"
    folder.mkdir()
    fake = types.ModuleType("core.demo")
    fake.ensure_demo_data = lambda: folder
    monkeypatch.setitem(sys.modules, "core.demo", fake)
    cat = load_catalog()
    for e in cat.entries:
        if e.demo:
            (folder / f"{e.demo}.jsonl").write_text('{"text": "a", "label": "b"}\n')
            assert resolve(SourceSpec(catalog=e.id), cat).path == str(folder / f"{e.demo}.jsonl")


def test_resolve_task_mismatch_and_passthrough(cat):
    with pytest.raises(CatalogError, match="generative dataset, not classification.*glue/sst2"):
        resolve(SourceSpec(catalog="gsm8k"), cat, task="classification")
    plain = SourceSpec(path="x.csv")
    assert resolve(plain, cat) is plain
    with pytest.raises(CatalogError, match="unknown catalog id"):
        resolve(SourceSpec(catalog="nope"), cat)


def test_catalog_path_entry_loads_end_to_end(cat, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "reviews.jsonl").write_text(
        "".join(json.dumps({"body": f"review {i}", "label": i % 2}) + "\n" for i in range(30))
    )
    src = SourceSpec(catalog="local/reviews", max_rows=10, label_names=["bad", "good"])
    concrete = resolve(src, tmp_path / "candidates.json")
    ld = load_source(concrete, seed=4)
    assert ld.name == "local/reviews" and len(ld.rows) == 10
    nd = normalize(ld, "classification", concrete)
    assert set(nd.labels) <= {"bad", "good"} and nd.rows[0]["text"].startswith("review")


# ---------------------------------------------------------------------------------------------
# add / save / load


def test_add_save_load_roundtrip(cat, tmp_path):
    cat.add(
        {
            "id": "new/set",
            "hub_id": "me/new",
            "task": "qa",
            "license": "cc-by-4.0",
            "size_hint": 10,
            "checked": "dataset card read, 2026-12-01",
        }
    )
    path = cat.save()
    assert path == tmp_path / "candidates.json"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    again = load_catalog(path)
    assert again.ids() == cat.ids() and again.get("new/set").size_hint == 10
    assert again.get("new/set").checked == "dataset card read, 2026-12-01"
    data = json.loads(path.read_text())
    assert data["version"] == 1 and data["entries"][-1]["id"] == "new/set"


def test_add_duplicate_id_is_an_error(cat):
    with pytest.raises(CatalogError, match="already exists"):
        cat.add(entry(id="gsm8k"))
    cat.add(entry(id="gsm8k", license="apache-2.0"), replace=True)
    assert cat.get("gsm8k").license == "apache-2.0"


def test_add_invalid_entry_names_the_field(cat):
    with pytest.raises(CatalogError, match="license"):
        cat.add({"id": "a", "hub_id": "o/a", "task": "qa"})
    with pytest.raises(CatalogError, match="exactly one of"):
        cat.add({"id": "a", "hub_id": "o/a", "path": "a.csv", "task": "qa", "license": "mit"})
    with pytest.raises(CatalogError, match="without '..'"):
        cat.add({"id": "a", "path": "../../etc/passwd", "task": "qa", "license": "mit"})
    with pytest.raises(CatalogError, match="unknown field"):
        cat.add({"id": "a", "hub_id": "o/a", "task": "qa", "license": "mit", "colums": {}})
    with pytest.raises(CatalogError, match="unknown field.*'txt'"):
        cat.add({"id": "a", "hub_id": "o/a", "task": "classification", "license": "mit", "columns": {"txt": "t"}})
    with pytest.raises(CatalogError, match="unknown task 'regression'"):
        cat.add({"id": "a", "hub_id": "o/a", "task": "regression", "license": "mit"})


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"task": "qa", "answer_extraction": "gsm8k"}, "answer_extraction applies to generative entries only"),
        ({"task": "qa", "label_map": {"a": "b"}}, "label_map applies to classification entries only"),
        ({"task": "generative", "label_names": ["a"]}, "label_names applies to classification entries only"),
        (
            {"task": "classification", "options": {"choices": ["a", "b"]}},
            "do not apply to task 'classification'; it takes none",
        ),
    ],
)
def test_source_options_of_another_task_are_errors(cat, extra, message):
    with pytest.raises(CatalogError, match=message):
        cat.add({"id": "a", "hub_id": "o/a", "license": "mit", **extra})


def test_load_errors(tmp_path):
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CatalogError, match="not valid JSON"):
        load_catalog(bad)
    bad.write_text(json.dumps({"version": 2, "entries": []}))
    with pytest.raises(CatalogError, match="version 2"):
        load_catalog(bad)
    e = {"id": "a", "hub_id": "o/a", "task": "qa", "license": "mit"}
    bad.write_text(json.dumps({"version": 1, "entries": [e, e, {"id": "b", "task": "qa", "license": "mit"}]}))
    with pytest.raises(CatalogError) as info:
        load_catalog(bad)
    msg = str(info.value)
    assert "entries[1] ('a'): duplicate id 'a'" in msg and "entries[2] ('b')" in msg and "exactly one of" in msg


def test_catalog_file_env_override(tmp_path, monkeypatch, cat):
    monkeypatch.setenv("WORKBENCH_CATALOG", str(tmp_path / "candidates.json"))
    assert load_catalog().ids() == cat.ids()
    resolved = resolve(SourceSpec(catalog="glue/sst2"))  # default catalog from the environment
    assert resolved.hub_id == "nyu-mll/glue"


def test_demo_entries_load_with_the_real_demo_data(tmp_path, monkeypatch):
    pytest.importorskip("core.demo")
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    cat = load_catalog()
    for e in cat.entries:
        if e.demo:
            src = SourceSpec(catalog=e.id, max_rows=500)
            concrete = resolve(src, cat)
            nd = normalize(load_source(concrete), e.task, concrete)
            assert nd.name == e.id and nd.rows, e.id
            if e.task == "classification":
                assert nd.labels, e.id
            else:  # the math demo: every answer's \\boxed{} value extracted
                assert len(nd.rows) == min(500, e.size_hint) and all(r["answer"] for r in nd.rows), e.id
