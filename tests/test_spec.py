"""Study specs: validation messages that name the field and the fix, files, round-trips, hashing."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from core import tasks
from core.spec import MAX_SIZE, TASK_METRICS, SpecError, StudySpec, dump_spec, load_spec, parse_spec, resolve_paths

PROJECT_ROOT = Path(__file__).resolve().parent.parent

MINIMAL = {
    "name": "unit study",
    "model": "builtin:tiny-lm",
    "task": "classification",
    "d0": {"path": "data/d0.jsonl", "name": "d0"},
    "benchmark_holdout": 100,
    "candidates": [{"catalog": "demo/helpful"}],
    "sizes": [100, 200],
    "target_size": 1000,
}


def spec_data(**changes) -> dict:
    """MINIMAL with fields replaced; a value of `...` removes the field."""
    data = copy.deepcopy(MINIMAL)
    for key, value in changes.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def problems_for(data) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    problems = info.value.problems
    assert problems, "a SpecError must carry at least one problem"
    # The message lists every problem, one a line.
    for p in problems:
        assert p in str(info.value)
    return problems


def only_problem(data) -> str:
    problems = problems_for(data)
    assert len(problems) == 1, problems
    return problems[0]


def problem_for_field(problems: list[str], field: str) -> str:
    hits = [p for p in problems if p.startswith(field + ":")]
    assert hits, f"no problem names {field!r}: {problems}"
    return hits[0]


# ----------------------------------------------------------------------------- valid specs


def test_minimal_spec_parses_with_defaults():
    spec = parse_spec(spec_data())
    assert isinstance(spec, StudySpec)
    assert spec.name == "unit study"
    assert spec.task == "classification"
    assert spec.metrics == list(TASK_METRICS["classification"])
    assert sorted(spec.metrics) == ["accuracy", "gold_prob", "loss", "macro_f1"]
    assert spec.primary_metric == spec.metrics[0]
    assert spec.seeds == [0]
    assert spec.d0_share == 0.3
    assert spec.benchmark is None and spec.benchmark_holdout == 100
    assert spec.output_dir is None
    assert spec.trust_remote_code is False
    t = spec.training
    assert t.method == "auto"
    assert t.epochs == 1.0 and t.max_steps is None and t.min_steps == 0
    assert t.learning_rate == 2e-4
    assert t.batch_size == 8 and t.grad_accum == 1
    assert t.max_seq_length == 256
    assert (t.lora_r, t.lora_alpha, t.lora_dropout) == (16, 32, 0.05)
    assert t.lora_target_modules == "all-linear"
    assert spec.candidate_names() == ["demo/helpful"]
    assert spec.is_loss_primary is False


@pytest.mark.parametrize("task", ["classification", "qa", "generative"])
def test_default_metrics_per_task_and_primary_is_first(task):
    spec = parse_spec(spec_data(task=task))
    assert spec.metrics == list(tasks.get(task).default_metrics())
    assert set(spec.metrics) <= set(TASK_METRICS[task])
    assert spec.primary_metric == spec.metrics[0]


@pytest.mark.parametrize(
    "benchmark, is_math",
    [
        ({"path": "bench.jsonl", "answer_extraction": "gsm8k"}, True),
        ({"path": "bench.jsonl", "answer_extraction": "answer_is"}, True),
        ({"catalog": "deepmath-103k"}, True),  # tagged math, no extraction
        ({"catalog": "hendrycks_math/algebra"}, True),
        ({"catalog": "dolly-15k"}, False),
        ({"path": "bench.jsonl"}, False),
    ],
)
def test_math_benchmarks_are_graded_by_equivalence_first(benchmark, is_math):
    spec = parse_spec(spec_data(task="generative", benchmark=benchmark, benchmark_holdout=...))
    if is_math:
        assert spec.metrics == ["math_equiv", "exact_match", "f1", "loss"] and spec.primary_metric == "math_equiv"
    else:
        assert spec.metrics == ["exact_match", "f1", "loss"] and spec.primary_metric == "exact_match"
    chosen = parse_spec(
        spec_data(task="generative", benchmark=benchmark, benchmark_holdout=..., metrics=["f1", "math_equiv"])
    )
    assert chosen.metrics == ["f1", "math_equiv", "loss"] and chosen.primary_metric == "f1"  # a choice is kept


def test_qa_and_generative_default_metrics():
    assert parse_spec(spec_data(task="qa")).metrics == ["exact_match", "f1", "loss"]
    assert parse_spec(spec_data(task="generative")).metrics == ["exact_match", "f1", "loss"]


def test_explicit_metrics_primary_defaults_to_first_given():
    spec = parse_spec(spec_data(metrics=["loss", "accuracy"]))
    assert spec.metrics == ["loss", "accuracy", "gold_prob"]  # the continuous metric is always measured
    assert spec.primary_metric == "loss"
    assert spec.is_loss_primary


def test_explicit_primary_metric_kept():
    spec = parse_spec(spec_data(metrics=["accuracy", "macro_f1"], primary_metric="macro_f1"))
    assert spec.primary_metric == "macro_f1"
    assert spec.metrics == ["accuracy", "macro_f1", "gold_prob"]


def test_sizes_are_sorted_and_target_equal_to_largest_allowed():
    spec = parse_spec(spec_data(sizes=[400, 100, 200], target_size=400))
    assert spec.sizes == [100, 200, 400]
    assert spec.target_size == 400


def test_d0_share_edges_allowed():
    assert parse_spec(spec_data(d0_share=0)).d0_share == 0.0
    assert parse_spec(spec_data(d0_share=1)).d0_share == 1.0


def test_benchmark_source_instead_of_holdout():
    spec = parse_spec(spec_data(benchmark_holdout=..., benchmark={"hub_id": "org/bench", "split": "test"}))
    assert spec.benchmark is not None and spec.benchmark.hub_id == "org/bench"
    assert spec.benchmark.split == "test"
    assert spec.benchmark_holdout is None


def test_display_names():
    spec = parse_spec(
        spec_data(
            candidates=[
                {"catalog": "demo/helpful"},
                {"hub_id": "org/set", "config": "en"},
                {"hub_id": "org/other"},
                {"path": "some/dir/extra.jsonl"},
                {"path": "x.csv", "name": "named"},
            ]
        )
    )
    assert spec.candidate_names() == ["demo/helpful", "org/set:en", "org/other", "extra", "named"]


def test_qlora_allowed_with_hub_model():
    spec = parse_spec(spec_data(model="org/some-model", training={"method": "qlora"}))
    assert spec.training.method == "qlora"


# ----------------------------------------------------------------------------- missing / unknown fields


@pytest.mark.parametrize("field", ["name", "model", "task", "d0", "candidates", "sizes", "target_size"])
def test_missing_required_field_named(field):
    problem = only_problem(spec_data(**{field: ...}))
    assert problem.startswith(f"{field}:")
    assert "missing" in problem and "add it" in problem


def test_all_missing_fields_reported_at_once():
    problems = problems_for({"benchmark_holdout": 10})
    for field in ["name", "model", "task", "d0", "candidates", "sizes", "target_size"]:
        problem_for_field(problems, field)
    assert len(problems) == 7


def test_unknown_task():
    problem = only_problem(spec_data(task="translation"))
    assert problem.startswith("task:")
    for task in ("classification", "qa", "generative"):
        assert task in problem


@pytest.mark.parametrize("typo", ["seed", "trainig", "size", "candidate"])
def test_unknown_top_level_field(typo):
    problem = only_problem(spec_data(**{typo: 1}))
    assert problem.startswith(f"{typo}:")
    assert "unknown field" in problem and "spelling" in problem


def test_unknown_nested_fields():
    problems = problems_for(
        spec_data(
            training={"learnig_rate": 0.1},
            d0={"path": "a.jsonl", "colums": {}},
            candidates=[{"catalog": "x"}, {"catalog": "y", "splt": "test"}],
        )
    )
    assert len(problems) == 3
    assert "unknown field" in problem_for_field(problems, "training.learnig_rate")
    assert "unknown field" in problem_for_field(problems, "d0.colums")
    assert "unknown field" in problem_for_field(problems, "candidates.1.splt")


# ----------------------------------------------------------------------------- sizes, seeds, shares, target


@pytest.mark.parametrize("sizes", [[-5, 100], [0, 100], [100, MAX_SIZE + 1]], ids=["negative", "zero", "absurd"])
def test_bad_sizes_out_of_range(sizes):
    problem = only_problem(spec_data(sizes=sizes, target_size=10**9))
    assert problem.startswith("sizes:")
    assert f"{MAX_SIZE:,}" in problem  # says the allowed range
    bad = [s for s in sizes if s <= 0 or s > MAX_SIZE]
    assert str(bad) in problem  # and which values to fix


def test_sizes_largest_allowed():
    assert parse_spec(spec_data(sizes=[MAX_SIZE], target_size=MAX_SIZE)).sizes == [MAX_SIZE]


def test_sizes_empty():
    problem = only_problem(spec_data(sizes=[]))
    assert problem.startswith("sizes:")
    assert "at least 1" in problem


def test_sizes_duplicate():
    problem = only_problem(spec_data(sizes=[100, 200, 100]))
    assert problem.startswith("sizes:")
    assert "distinct" in problem


def test_sizes_not_numbers():
    problem = only_problem(spec_data(sizes=[100, "lots"]))
    assert problem.startswith("sizes.1:")


def test_seeds_duplicate():
    problem = only_problem(spec_data(seeds=[0, 1, 1]))
    assert problem.startswith("seeds:")
    assert "distinct" in problem


def test_seeds_negative():
    problem = only_problem(spec_data(seeds=[0, -1]))
    assert problem.startswith("seeds:")
    assert "between 0 and" in problem


def test_seeds_empty():
    assert only_problem(spec_data(seeds=[])).startswith("seeds:")


def test_several_seeds_kept_in_order():
    assert parse_spec(spec_data(seeds=[3, 1, 2])).seeds == [3, 1, 2]


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_d0_share_out_of_range(share):
    problem = only_problem(spec_data(d0_share=share))
    assert problem.startswith("d0_share:")
    assert ("greater than or equal to 0" in problem) or ("less than or equal to 1" in problem)


def test_target_size_smaller_than_largest_size():
    problem = only_problem(spec_data(sizes=[100, 2000], target_size=1000))
    assert problem.startswith("target_size:")
    assert "2000" in problem and "at least the largest size" in problem


@pytest.mark.parametrize("target", [0, -10, 10**11])
def test_target_size_out_of_range(target):
    problem = only_problem(spec_data(target_size=target))
    assert problem.startswith("target_size:")
    assert "between 1 and" in problem


def test_benchmark_holdout_zero():
    assert only_problem(spec_data(benchmark_holdout=0)).startswith("benchmark_holdout:")


# ----------------------------------------------------------------------------- metrics


def test_metric_not_available_for_task():
    problem = only_problem(spec_data(task="qa", metrics=["macro_f1", "f1"]))
    assert problem.startswith("metrics:")
    assert "macro_f1" in problem and "qa" in problem
    assert "exact_match" in problem  # lists the choices


def test_duplicate_metrics():
    problem = only_problem(spec_data(metrics=["accuracy", "accuracy"]))
    assert problem.startswith("metrics:")
    assert "distinct" in problem


def test_primary_metric_not_among_metrics():
    problem = only_problem(spec_data(metrics=["accuracy", "loss"], primary_metric="macro_f1"))
    assert problem.startswith("primary_metric:")
    assert "macro_f1" in problem and "accuracy" in problem


def test_primary_metric_unknown_for_task():
    problem = only_problem(spec_data(primary_metric="exact_match"))
    assert problem.startswith("primary_metric:")


# ----------------------------------------------------------------------------- benchmark / sources


def test_benchmark_and_holdout_both_set():
    problem = only_problem(spec_data(benchmark={"catalog": "demo/benchmark"}))
    assert problem.startswith("benchmark_holdout:") or problem.startswith("benchmark:")
    assert "not both" in problem


def test_benchmark_and_holdout_neither_set():
    problem = only_problem(spec_data(benchmark_holdout=...))
    assert problem.startswith("benchmark:")
    assert "benchmark_holdout" in problem


@pytest.mark.parametrize(
    "source, got",
    [
        ({"split": "train"}, "none"),
        ({"path": "a.jsonl", "hub_id": "org/a"}, "['path', 'hub_id']"),
        ({"hub_id": "org/a", "catalog": "demo/helpful"}, "['hub_id', 'catalog']"),
    ],
)
def test_source_needs_exactly_one_location(source, got):
    problem = only_problem(spec_data(candidates=[{"catalog": "ok"}, source]))
    assert problem.startswith("candidates.1:")
    assert "exactly one of 'path'" in problem and "'hub_id'" in problem and "'catalog'" in problem
    assert got in problem


def test_d0_and_benchmark_location_errors_named():
    problems = problems_for(
        spec_data(d0={"name": "d0"}, benchmark_holdout=..., benchmark={"path": "b", "catalog": "c"})
    )
    assert "exactly one" in problem_for_field(problems, "d0")
    assert "exactly one" in problem_for_field(problems, "benchmark")


def test_max_rows_zero():
    problem = only_problem(spec_data(d0={"path": "a.jsonl", "max_rows": 0}))
    assert problem.startswith("d0.max_rows:")
    assert "greater than 0" in problem


def test_answer_extraction_unknown():
    problem = only_problem(spec_data(candidates=[{"catalog": "a", "answer_extraction": "regex"}]))
    assert problem.startswith("candidates.0.answer_extraction:")
    assert "gsm8k" in problem


def test_candidates_empty():
    problem = only_problem(spec_data(candidates=[]))
    assert problem.startswith("candidates:")


def test_duplicate_candidate_names():
    problem = only_problem(spec_data(candidates=[{"catalog": "a"}, {"catalog": "b"}, {"hub_id": "x", "name": "a"}]))
    assert problem.startswith("candidates.2:")
    assert "'a'" in problem and "candidates.0" in problem
    assert "name" in problem


def test_duplicate_names_from_file_stems():
    # Two files with the same stem in different folders have the same display name.
    problem = only_problem(spec_data(candidates=[{"path": "one/train.jsonl"}, {"path": "two/train.jsonl"}]))
    assert problem.startswith("candidates.1:")
    assert "'train'" in problem


def test_candidate_named_baseline():
    problem = only_problem(spec_data(candidates=[{"catalog": "a"}, {"catalog": "b", "name": "baseline"}]))
    assert problem.startswith("candidates.1:")
    assert "baseline" in problem and "reserved" in problem


def test_candidate_named_like_d0():
    # Provenance records source names: a candidate must not share D0's name.
    problem = only_problem(spec_data(candidates=[{"catalog": "a", "name": "d0"}]))
    assert problem.startswith("candidates.0:")
    assert "D0" in problem


@pytest.mark.parametrize("method", ["qlora", "lora"])
def test_adapters_on_the_random_init_model_are_refused(method):
    problem = only_problem(spec_data(training={"method": method}))
    assert problem.startswith("training.method:")
    assert method in problem and "pretrained" in problem and "'full'" in problem


@pytest.mark.parametrize("method", ["auto", "lora", "qlora", "full"])
def test_the_pretrained_builtin_model_takes_every_method(method):
    assert parse_spec(spec_data(model="builtin:minilm", training={"method": method})).model == "builtin:minilm"


def test_an_unknown_builtin_model_lists_the_builtin_ones():
    problem = only_problem(spec_data(model="builtin:bert"))
    assert "builtin:tiny-lm" in problem and "builtin:minilm" in problem


# ----------------------------------------------------------------------------- training settings


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("learning_rate", 0, "greater than 0"),
        ("learning_rate", 1.5, "less than 1"),
        ("batch_size", 0, "greater than 0"),
        ("epochs", 0, "greater than 0"),
        ("epochs", 1000, "less than or equal to 100"),
        ("lora_dropout", 1, "less than 1"),
        ("max_seq_length", 4, "greater than or equal to 8"),
        ("method", "foo", "'lora'"),
        ("grad_accum", 0, "greater than 0"),
        ("max_steps", 0, "greater than 0"),
        ("min_steps", -1, "greater than or equal to 0"),
        ("warmup_ratio", 1, "less than 1"),
        ("lora_r", 0, "greater than 0"),
        ("lr_scheduler", "step", "'cosine'"),
        ("bf16", "maybe", "'auto'"),
        ("eval_batch_size", 0, "greater than 0"),
        ("max_new_tokens", 0, "greater than 0"),
    ],
)
def test_training_field_out_of_range(field, value, words):
    problem = only_problem(spec_data(training={field: value}))
    assert problem.startswith(f"training.{field}:")
    assert words in problem


def test_training_problems_reported_together():
    problems = problems_for(
        spec_data(
            training={
                "learning_rate": 0,
                "batch_size": 0,
                "epochs": 0,
                "lora_dropout": 1,
                "max_seq_length": 4,
                "method": "foo",
            }
        )
    )
    for field in ["learning_rate", "batch_size", "epochs", "lora_dropout", "max_seq_length", "method"]:
        problem_for_field(problems, f"training.{field}")
    assert len(problems) == 6


def test_training_not_a_mapping():
    assert only_problem(spec_data(training="fast")).startswith("training:")


# ----------------------------------------------------------------------------- shape and many problems


@pytest.mark.parametrize("data, kind", [([MINIMAL], "list"), ("name: x", "str"), (None, "NoneType"), (3, "int")])
def test_spec_not_a_mapping(data, kind):
    problem = only_problem(data)
    assert problem.startswith("spec:")
    assert "mapping" in problem and kind in problem


def test_multiple_field_problems_at_once():
    problems = problems_for(spec_data(sizes=[0, 100], seeds=[1, 1], d0_share=2, seed=3, training={"batch_size": 0}))
    assert len(problems) >= 5
    for field in ["sizes", "seeds", "d0_share", "seed", "training.batch_size"]:
        problem_for_field(problems, field)
    # The message has one line per problem.
    with pytest.raises(SpecError) as info:
        parse_spec(spec_data(sizes=[0, 100], seeds=[1, 1], d0_share=2, seed=3, training={"batch_size": 0}))
    lines = str(info.value).splitlines()
    assert lines[0] == "invalid study spec:"
    assert len(lines) == 1 + len(problems)
    assert all(line.startswith("  - ") for line in lines[1:])


def test_multiple_cross_field_problems_at_once():
    problems = problems_for(
        spec_data(
            target_size=150,
            primary_metric="f1",
            benchmark={"catalog": "b"},
            candidates=[{"catalog": "a"}, {"catalog": "a"}, {"catalog": "baseline"}],
            training={"method": "qlora"},
        )
    )
    assert len(problems) == 6, problems
    problem_for_field(problems, "target_size")
    problem_for_field(problems, "primary_metric")
    problem_for_field(problems, "benchmark_holdout")
    problem_for_field(problems, "candidates.1")
    problem_for_field(problems, "candidates.2")
    problem_for_field(problems, "training.method")


def test_spec_error_is_value_error():
    assert issubclass(SpecError, ValueError)
    err = SpecError(["a: fix a", "b: fix b"])
    assert err.problems == ["a: fix a", "b: fix b"]
    assert str(err) == "invalid study spec:\n  - a: fix a\n  - b: fix b"


# ----------------------------------------------------------------------------- files


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_load_yaml_file(tmp_path):
    f = write(tmp_path / "study.yaml", yaml.safe_dump(spec_data()))
    spec = load_spec(f)
    assert spec.name == "unit study"
    assert spec.sizes == [100, 200]


def test_load_yml_suffix_reads_yaml(tmp_path):
    f = write(tmp_path / "study.yml", yaml.safe_dump(spec_data()))
    assert load_spec(str(f)).name == "unit study"


def test_load_json_file(tmp_path):
    f = write(tmp_path / "study.json", json.dumps(spec_data(seeds=[4, 5])))
    spec = load_spec(f)
    assert spec.seeds == [4, 5]
    assert parse_spec(spec_data(seeds=[4, 5])).study_id() != spec.study_id()  # d0 path was resolved
    assert spec.d0.path == str((tmp_path / "data/d0.jsonl").resolve())


def test_load_invalid_yaml_names_file(tmp_path):
    f = write(tmp_path / "broken.yaml", "name: [unclosed\nmodel: x\n")
    with pytest.raises(SpecError) as info:
        load_spec(f)
    (problem,) = info.value.problems
    assert problem.startswith("broken.yaml:")
    assert "not valid YAML" in problem


def test_load_invalid_json_names_file(tmp_path):
    f = write(tmp_path / "broken.json", '{"name": "x",}')
    with pytest.raises(SpecError) as info:
        load_spec(f)
    (problem,) = info.value.problems
    assert problem.startswith("broken.json:")
    assert "not valid JSON" in problem


def test_load_missing_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as info:
        load_spec(missing)
    (problem,) = info.value.problems
    assert str(missing) in problem and "does not exist" in problem


def test_load_a_folder_is_not_a_file(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path)


def test_load_file_with_invalid_spec_reports_fields(tmp_path):
    f = write(tmp_path / "study.yaml", yaml.safe_dump(spec_data(sizes=[], trainig={})))
    with pytest.raises(SpecError) as info:
        load_spec(f)
    problem_for_field(info.value.problems, "sizes")
    problem_for_field(info.value.problems, "trainig")


def test_load_yaml_that_is_a_list(tmp_path):
    f = write(tmp_path / "study.yaml", "- a\n- b\n")
    with pytest.raises(SpecError) as info:
        load_spec(f)
    assert "mapping" in info.value.problems[0] and "list" in info.value.problems[0]


def test_load_empty_file(tmp_path):
    f = write(tmp_path / "study.yaml", "")
    with pytest.raises(SpecError, match="mapping"):
        load_spec(f)


def test_relative_paths_resolve_against_spec_folder(tmp_path, monkeypatch):
    folder = tmp_path / "studies" / "mine"
    absolute = tmp_path / "elsewhere" / "abs.jsonl"
    data = spec_data(
        d0={"path": "data/d0.jsonl", "name": "d0"},
        benchmark_holdout=...,
        benchmark={"path": "../bench.csv", "name": "bench"},
        candidates=[
            {"path": "cand/a.jsonl"},
            {"path": str(absolute)},
            {"catalog": "demo/helpful"},
            {"hub_id": "org/set", "config": "en"},
        ],
    )
    write(folder / "study.yaml", yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    spec = load_spec(Path("studies/mine/study.yaml"))
    assert spec.d0.path == str((folder / "data/d0.jsonl").resolve())
    assert spec.benchmark.path == str((tmp_path / "studies/bench.csv").resolve())
    assert Path(spec.benchmark.path).is_absolute()
    assert spec.candidates[0].path == str((folder / "cand/a.jsonl").resolve())
    assert spec.candidates[1].path == str(absolute)  # absolute paths unchanged
    assert spec.candidates[2] == parse_spec(data).candidates[2]  # catalog untouched
    assert spec.candidates[2].path is None and spec.candidates[2].catalog == "demo/helpful"
    assert spec.candidates[3].path is None and spec.candidates[3].hub_id == "org/set"
    # Display names do not change with resolution.
    assert spec.candidate_names() == ["a", "abs", "demo/helpful", "org/set:en"]


def test_resolve_paths_directly(tmp_path):
    spec = parse_spec(spec_data())
    resolved = resolve_paths(spec, tmp_path)
    assert resolved.d0.path == str((tmp_path / "data/d0.jsonl").resolve())
    assert spec.d0.path == "data/d0.jsonl"  # the original is not modified
    assert resolved.candidates == spec.candidates
    assert resolved.benchmark is None
    # Resolving twice changes nothing more.
    assert resolve_paths(resolved, tmp_path / "other") == resolved


# ----------------------------------------------------------------------------- dump and hashing


def full_spec() -> StudySpec:
    return parse_spec(
        spec_data(
            model="Qwen/Qwen2.5-0.5B",
            task="generative",
            d0={
                "hub_id": "org/math",
                "config": "main",
                "split": "train",
                "columns": {"prompt": "question"},
                "answer_extraction": "gsm8k",
                "max_rows": 5000,
                "name": "d0",
            },
            benchmark_holdout=...,
            benchmark={"path": "bench.jsonl", "label_map": {"a": "b"}},
            candidates=[{"catalog": "x", "label_names": ["neg", "pos"]}, {"path": "c.parquet", "revision": "abc"}],
            sizes=[1000, 250, 500],
            seeds=[0, 1, 7],
            d0_share=0.25,
            target_size=200_000,
            metrics=["f1", "loss"],
            training={
                "method": "lora",
                "learning_rate": 1e-5,
                "epochs": 2.5,
                "lora_target_modules": ["q_proj", "v_proj"],
                "max_steps": 40,
            },
            output_dir="out/x",
            bootstrap=50,
        )
    )


@pytest.mark.parametrize("make", [lambda: parse_spec(spec_data()), full_spec])
def test_dump_spec_round_trips(make):
    spec = make()
    text = dump_spec(spec)
    assert isinstance(text, str)
    again = parse_spec(yaml.safe_load(text))
    assert again == spec
    assert again.study_id() == spec.study_id()
    assert dump_spec(again) == text


def test_dump_spec_writes_computed_defaults_and_drops_none():
    data = yaml.safe_load(dump_spec(parse_spec(spec_data())))
    assert data["metrics"] == list(TASK_METRICS["classification"])
    assert data["primary_metric"] == TASK_METRICS["classification"][0]
    assert "benchmark" not in data and "output_dir" not in data
    assert list(data)[:3] == ["name", "model", "task"]  # field order kept, readable


def test_dumped_spec_loads_from_file(tmp_path):
    spec = full_spec()
    f = write(tmp_path / "s.yaml", dump_spec(spec))
    loaded = load_spec(f)
    # Only the relative benchmark/candidate paths differ: they are resolved against the folder.
    assert loaded.benchmark.path == str((tmp_path / "bench.jsonl").resolve())
    assert loaded.model_copy(update={"benchmark": spec.benchmark, "candidates": spec.candidates}) == spec


def test_study_id_stable_for_equal_specs():
    a = parse_spec(spec_data())
    b = parse_spec(spec_data())
    assert a.study_id() == b.study_id()
    assert a.study_id().startswith("st-") and len(a.study_id()) == 3 + 12
    # Defaults written out explicitly compute the same study.
    defaults = list(TASK_METRICS["classification"])
    c = parse_spec(spec_data(metrics=defaults, primary_metric=defaults[0], seeds=[0], d0_share=0.3))
    assert c.study_id() == a.study_id()
    # Sizes are a set: order does not matter.
    assert parse_spec(spec_data(sizes=[200, 100])).study_id() == a.study_id()


@pytest.mark.parametrize(
    "changes",
    [
        {"sizes": [100, 300]},
        {"seeds": [0, 1]},
        {"seeds": [1]},
        {"model": "org/other-model"},
        {"task": "qa"},
        {"d0_share": 0.5},
        {"target_size": 2000},
        {"metrics": ["macro_f1", "accuracy"]},
        {"primary_metric": "loss"},
        {"training": {"learning_rate": 1e-3}},
        {"candidates": [{"catalog": "demo/noisy"}]},
        {"d0": {"path": "data/d0.jsonl", "name": "d0", "max_rows": 10}},
        {"benchmark_holdout": 99},
        {"bootstrap": 10},
    ],
)
def test_study_id_changes_with_computed_fields(changes):
    assert parse_spec(spec_data(**changes)).study_id() != parse_spec(spec_data()).study_id()


def test_study_id_ignores_output_dir():
    a = parse_spec(spec_data())
    b = parse_spec(spec_data(output_dir="/somewhere/else"))
    assert a != b
    assert a.study_id() == b.study_id()


def test_specs_are_frozen():
    spec = parse_spec(spec_data())
    with pytest.raises(ValidationError, match="frozen"):
        spec.name = "other"
    with pytest.raises(ValidationError, match="frozen"):
        spec.training.learning_rate = 1.0


# ----------------------------------------------------------------------------- shipped specs


@pytest.mark.parametrize("name", ["demo_study.yaml", "demo_study_fast.yaml"])
def test_shipped_demo_specs_load(name):
    spec = load_spec(PROJECT_ROOT / "catalog" / name)
    assert spec.model == "builtin:tiny-lm"
    assert spec.task == "classification"
    assert spec.primary_metric == "macro_f1"
    assert spec.metrics == ["macro_f1", "accuracy", "loss", "gold_prob"]
    assert spec.benchmark is not None and spec.benchmark.catalog == "demo/benchmark"
    assert spec.d0.catalog == "demo/d0"
    assert spec.candidate_names() == ["helpful", "partial", "offdomain", "noisy"]
    assert spec.training.method == "full"
    assert spec.target_size >= max(spec.sizes)
    assert parse_spec(yaml.safe_load(dump_spec(spec))) == spec


def test_demo_specs_differ():
    full = load_spec(PROJECT_ROOT / "catalog" / "demo_study.yaml")
    fast = load_spec(PROJECT_ROOT / "catalog" / "demo_study_fast.yaml")
    assert len(fast.sizes) < len(full.sizes) and len(fast.seeds) <= len(full.seeds)
    assert fast.study_id() != full.study_id()


def test_dump_spec_keeps_catalog_defaults_of_sources():
    """A catalog source's unset fields stay unset, so the entry's own split/extraction still apply."""
    import yaml

    from core.spec import dump_spec, parse_spec

    spec = parse_spec(
        {
            "name": "chat",
            "model": "org/m",
            "task": "generative",
            "d0": {"catalog": "gsm8k"},
            "benchmark_holdout": 10,
            "candidates": [{"catalog": "ultrachat_200k", "max_rows": 100}],
            "sizes": [10],
            "target_size": 100,
        }
    )
    data = yaml.safe_load(dump_spec(spec))
    assert data["candidates"][0] == {"catalog": "ultrachat_200k", "max_rows": 100}
    assert "split" not in data["d0"] and "answer_extraction" not in data["d0"]
    assert parse_spec(data) == spec


def test_a_stored_spec_with_a_local_model_folder_reads_back_on_a_box_without_it(tmp_path):
    """Submit checks a local model folder; a worker on another box re-reads the stored spec."""
    import yaml

    from core.spec import SpecError, dump_spec, parse_spec
    from tests.specs import tiny_spec

    folder = tmp_path / "my-model"
    folder.mkdir()
    data = yaml.safe_load(dump_spec(tiny_spec()))
    data["model"] = str(folder)
    stored = dump_spec(parse_spec(data))
    folder.rmdir()
    with pytest.raises(SpecError, match="no such folder here"):
        parse_spec(yaml.safe_load(stored))
    assert parse_spec(yaml.safe_load(stored), stored=True).model == str(folder)
