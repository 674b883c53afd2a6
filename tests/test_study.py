"""A small real study end to end through core: runs, caching by content key, outputs."""

from __future__ import annotations

import json

import pytest

from core.normalize import DataError
from core.study import plan_runs, prepare_study, run_study
from tests.specs import tiny_spec


def _spec(**over):
    return tiny_spec(**over)


def test_plan_expands_arms_sizes_seeds_with_distinct_keys():
    spec = _spec(seeds=[0, 1])
    prepared = prepare_study(spec)
    runs = plan_runs(prepared)
    assert len(runs) == 3 * 3 * 2
    assert runs[0].arm == "baseline"
    assert len({r.key for r in runs}) == len(runs)
    # the key depends on what decides the result, not on the study's name or output folder
    renamed = plan_runs(prepare_study(_spec(seeds=[0, 1], name="other", output_dir="/tmp/x")))
    assert [r.key for r in renamed] == [r.key for r in runs]
    # a baseline run does not depend on the share; candidate runs do
    shared = plan_runs(prepare_study(_spec(seeds=[0, 1], d0_share=0.5)))
    base = {r.key for r in runs if r.arm == "baseline"}
    assert base == {r.key for r in shared if r.arm == "baseline"}
    assert not ({r.key for r in runs if r.arm != "baseline"} & {r.key for r in shared if r.arm != "baseline"})


def test_study_writes_metrics_and_reuses_results(tmp_path, store):
    spec = _spec()
    out = tmp_path / "out"
    summary = run_study(spec, out, store=store)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["primary_metric"] == "macro_f1"
    assert len(metrics["runs"]) == 9 and not metrics["failed_runs"]
    run = metrics["runs"][0]
    assert {"candidate", "size", "seed", "metrics", "timings", "key"} <= set(run)
    assert set(run["metrics"]) == {"macro_f1", "accuracy", "loss", "gold_prob"}  # gold_prob: always measured
    assert run["train"]["steps"] >= 4
    assert set(metrics["fits"]) == {"baseline", "helpful", "offdomain"}
    for fit in metrics["fits"].values():
        assert {"form", "params", "prediction", "backtest"} <= set(fit)
        # The plain predictor (when its backtest wins) draws no curve and ranks by the measured values.
        assert (
            fit["form"] == "none"
            if metrics["predictor"]["used"] == "plain"
            else fit["prediction"]["target_size"] == 1000
        )
    assert [r["candidate"] for r in metrics["ranking"]] and {r["candidate"] for r in metrics["ranking"]} == {
        "helpful",
        "offdomain",
    }
    for row in metrics["ranking"]:
        assert {"predicted", "low", "high", "gain_over_baseline", "p_best", "rank_at_largest_size"} <= set(row)
    assert "loss" in metrics["ranking_by_metric"] and "accuracy" in metrics["ranking_by_metric"]
    snr = metrics["signal_to_noise"]
    assert set(snr) == {"macro_f1", "accuracy", "loss", "gold_prob"}
    assert all(s["snr"] is None or s["snr"] > 0 for s in snr.values())
    assert all(row["repetition_at_target"] > 0 for row in metrics["ranking"])
    predictor = metrics["predictor"]  # 3 sizes: backtested from 2 on the largest
    assert predictor["used"] in predictor["predictors"] and predictor["reason"]
    assert len(predictor["predictors"]["plain"]["backtest"]["folds"]) == 1
    for row in metrics["ranking"]:
        assert row["low"] <= row["low_80"] <= row["predicted"] <= row["high_80"] <= row["high"]
    assert (out / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "scaling.json").is_file() and (out / "spec.yaml").is_file()
    assert (store.study_dir(spec.study_id()) / "metrics.json").is_file()
    for r in summary["runs"]:
        assert (store.run_dir(r["key"]) / "result.json").is_file()
        manifest = json.loads((store.run_dir(r["key"]) / "manifest.json").read_text())
        assert len(manifest["rows"]) == r["size"]

    again = run_study(spec, tmp_path / "again", store=store)
    assert all(r["cached"] for r in again["runs"])
    assert [r["metrics"] for r in again["runs"]] == [r["metrics"] for r in summary["runs"]]


def test_contaminated_candidate_rows_are_removed_and_counted(tmp_path, store, demo_folder):
    bench = prepare_study(_spec(sizes=[40])).benchmark.rows  # the 60-row seeded sample
    helpful = [json.loads(x) for x in (demo_folder / "helpful.jsonl").read_text().splitlines()][:300]
    leaked = helpful + [{"text": r["text"].upper() + "  ", "label": r["label"]} for r in bench[:25]]
    path = tmp_path / "leaky.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in leaked))
    spec = _spec(candidates=[{"path": str(path), "name": "leaky"}], sizes=[40])
    prepared = prepare_study(spec)
    assert prepared.contamination == {"leaky": 25}
    assert len(prepared.candidates["leaky"].rows) == 300
    assert max(prepared.candidate_index["leaky"]) < 300  # provenance points at the source rows kept
    assert prepared.summary()["candidates"]["leaky"]["contaminated_removed"] == 25


def test_benchmark_held_out_of_d0(tmp_path, store):
    spec = _spec(benchmark=None, benchmark_holdout=100, sizes=[40])
    prepared = prepare_study(spec)
    assert len(prepared.benchmark.rows) == 100 and len(prepared.d0.rows) == 200
    d0_texts = {r["text"] for r in prepared.d0.rows}
    assert not any(r["text"] in d0_texts for r in prepared.benchmark.rows)
    with pytest.raises(DataError, match="benchmark_holdout"):
        prepare_study(_spec(benchmark=None, benchmark_holdout=300))


def test_single_size_study_ranks_at_that_size(tmp_path, store):
    summary = run_study(_spec(sizes=[40]), tmp_path / "one", store=store)
    assert all(f["form"] == "none" for f in summary["fits"].values())
    assert all(r["predicted"] == pytest.approx(r["measured_at_largest"]) for r in summary["ranking"])
    assert any("no curve" in n or "measured size" in n for r in summary["ranking"] for n in r["notes"])


def test_unknown_candidate_labels_fail_before_any_run(tmp_path):
    path = tmp_path / "weird.csv"
    path.write_text("text,label\nhello,billing\nbye,weather\n")
    with pytest.raises(DataError, match="weather"):
        prepare_study(_spec(candidates=[{"path": str(path), "name": "weird"}]))


def test_multiple_choice_study_runs_offline_end_to_end(tmp_path, store, demo_folder):
    spec = _spec(
        task="multiple_choice",
        d0={"path": str(demo_folder / "mc_d0.jsonl"), "name": "d0"},
        benchmark={"path": str(demo_folder / "mc_benchmark.jsonl"), "name": "benchmark", "max_rows": 60},
        candidates=[
            {"path": str(demo_folder / "mc_helpful.jsonl"), "name": "helpful", "max_rows": 300},
            {"path": str(demo_folder / "mc_offdomain.jsonl"), "name": "offdomain", "max_rows": 300},
        ],
        sizes=[40, 80, 160],
    )
    out = tmp_path / "out"
    run_study(spec, out, store=store)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["primary_metric"] == "accuracy"
    assert len(metrics["runs"]) == 9 and not metrics["failed_runs"]
    for run in metrics["runs"]:
        assert set(run["metrics"]) == {"accuracy", "accuracy_raw", "gold_prob", "loss"}
        assert 0 < run["metrics"]["gold_prob"] < 1 and run["metrics"]["loss"] > 0
        assert run["eval"]["rows"] == 60
    assert {r["candidate"] for r in metrics["ranking"]} == {"helpful", "offdomain"}
    assert "gold_prob" in metrics["ranking_by_metric"] and "loss" in metrics["ranking_by_metric"]


def test_refine_auto_refines_an_inconclusive_study_in_process_within_its_budget(tmp_path, store):
    """`workbench run` / `demo` honour `refine: auto` as the queue does: one size is never settled."""
    summary = run_study(tiny_spec(sizes=[40], refine="auto", refine_budget=3), tmp_path / "out", store=store)
    sizes = sorted({(r["arm"], r["size"]) for r in summary["runs"]})
    refined = [arm for arm, size in sizes if size == 80]
    assert len(refined) == 2 and len(summary["runs"]) == 5  # 3 arms at 40 rows, then the top two at 80
    assert all(size in (40, 80) for _, size in sizes)  # a second refinement (2 more) would pass the budget of 3
