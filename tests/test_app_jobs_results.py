"""The Jobs and Results pages through streamlit.testing.v1.AppTest, against the real Redis.

Redis: 127.0.0.1:6379 db 14 (on $WORKBENCH_TEST_REDIS_SERVER), flushed before and after each
test. WORKBENCH_HOME and ARTIFACTS_DIR live under the test's tmp_path.

The finished study that Results shows is made by the real pipeline except training: the tiny spec
is prepared (prepare_study, save_prepared), its planned runs get results in the artifacts store
(synthetic metrics with a known order: helpful improves with size, offdomain gets worse), the real
fit, ranking and outputs are written (summarize_study, write_study_outputs: metrics.json,
scaling.json/png), and the Redis records come from workers.client.reindex. Training the nine tiny
runs for real takes minutes on a busy CPU box; this takes seconds.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from rq import Queue
from streamlit.testing.v1 import AppTest

from app import ui, views
from core.artifacts import ArtifactStore, write_text
from core.results import StudyResult
from core.spec import dump_spec
from tests.conftest import real_redis, redis_test_url
from tests.specs import tiny_spec
from workers import client
from workers.store import JobStore

REDIS_URL = redis_test_url(14)
PAGES = Path(__file__).resolve().parent.parent / "app" / "screens"
JOBS, RESULTS = str(PAGES / "jobs.py"), str(PAGES / "results.py")
TIMEOUT = 60


@pytest.fixture
def redis(tmp_path, monkeypatch):
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    yield from real_redis(REDIS_URL)


def page(path: str, **query) -> AppTest:
    at = AppTest.from_file(path, default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def table(at: AppTest, column: str) -> pd.DataFrame:
    """The first dataframe on the page that has `column`."""
    for df in at.dataframe:
        if column in df.value.columns:
            return df.value
    raise AssertionError(f"no table with column {column!r}: {[list(d.value.columns) for d in at.dataframe]}")


def make_study(
    store: JobStore,
    study_id: str,
    n: int,
    *,
    name: str = "study",
    status: str = "running",
    arms=("baseline", "helpful", "offdomain"),
    **record,
) -> list[str]:
    runs = [
        {
            "id": f"{study_id}-r{i}",
            "index": i,
            "arm": arms[i % len(arms)],
            "size": 100 * (1 + i % 3),
            "seed": i // 9,
            "key": f"run-{study_id}-{i}",
            "status": "queued",
            "phase": "queued",
            "attempts": 0,
        }
        for i in range(n)
    ]
    store.create_study(
        study_id,
        {
            "name": name,
            "status": status,
            "backend": "local",
            "submitted_by": "tester",
            "primary_metric": "macro_f1",
            "target_size": 10_000,
            **record,
        },
        runs,
    )
    return [r["id"] for r in runs]


# ---------------------------------------------------------------------------------------------
# A finished study, made once per module


def _metric(arm: str, size: int, seed: int) -> dict:
    step = math.log2(size / 40)
    slope = {"baseline": 0.05, "helpful": 0.12, "offdomain": -0.02}[arm]
    f1 = 0.30 + slope * step + 0.004 * seed
    return {"macro_f1": f1, "accuracy": f1 + 0.05, "loss": 2.0 - 1.5 * slope * step - 0.01 * seed}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """(artifacts root, study id) of a finished tiny study with real fits, ranking and charts."""
    from core.study import plan_runs, prepare_study, save_prepared, summarize_study, write_study_outputs

    home = tmp_path_factory.mktemp("home")
    old = os.environ.get("WORKBENCH_HOME")
    os.environ["WORKBENCH_HOME"] = str(home)
    try:
        spec = tiny_spec(seeds=[0, 1])
        store = ArtifactStore(home / "artifacts")
        prepared = prepare_study(spec)
        study_id = spec.study_id()
        save_prepared(prepared, store.prepared_dir(study_id))
        write_text(store.study_dir(study_id) / "spec.yaml", dump_spec(spec))
        results = []
        for run in plan_runs(prepared):
            res = {
                "key": run.key,
                "arm": run.arm,
                "size": run.size,
                "seed": run.seed,
                "model": spec.model,
                "task": spec.task,
                "metrics": _metric(run.arm, run.size, run.seed),
                "train": {"steps": 4, "train_loss": 3.0},
                "timings": {"train_seconds": 1.0, "total_seconds": 2.0},
                "mixture": {"parts": [], "candidate_repetition": None if run.arm == "baseline" else 0.2},
                "d0_share": None if run.arm == "baseline" else spec.d0_share,
            }
            store.put_result(run.key, res)
            results.append(res)
        summary = summarize_study(spec, results, contamination=prepared.contamination)
        summary["study_id"] = study_id
        write_study_outputs(summary, store.study_dir(study_id), spec)
    finally:
        if old is None:
            os.environ.pop("WORKBENCH_HOME", None)
        else:
            os.environ["WORKBENCH_HOME"] = old
    return store.root, study_id


@pytest.fixture
def finished_in_redis(finished, redis, monkeypatch):
    root, study_id = finished
    monkeypatch.setenv("ARTIFACTS_DIR", str(root))
    assert client.reindex(redis, ArtifactStore(root)) == [study_id]
    return study_id


# ---------------------------------------------------------------------------------------------
# app/views.py


def test_runs_frame_progress_elapsed_metric_and_link():
    now = 1_000.0
    runs = [
        {
            "id": "s-r0",
            "index": 0,
            "arm": "baseline",
            "size": 40,
            "seed": 0,
            "status": "finished",
            "phase": "done",
            "step": 60,
            "total": 60,
            "started_at": 900.0,
            "finished_at": 990.0,
            "metrics": {"macro_f1": 0.5},
            "cached": "1",
        },
        {
            "id": "s-r1",
            "index": 1,
            "arm": "helpful",
            "size": 40,
            "seed": 0,
            "status": "running",
            "phase": "training",
            "step": 3,
            "total": 12,
            "started_at": 940.0,
            "worker": "gpu-1:77",
            "backend_url": "https://hf.co/jobs/u/1",
        },
        {"id": "s-r2", "index": 2, "arm": "helpful", "size": 80, "seed": 0, "status": "queued"},
        {
            "id": "s-r3",
            "index": 3,
            "arm": "offdomain",
            "size": 80,
            "seed": 0,
            "status": "failed",
            "error": "<b>CUDA</b> out of memory",
            "started_at": 950.0,
            "finished_at": 955.0,
        },
    ]
    f = views.runs_frame(list(reversed(runs)), metric="macro_f1", now=now)
    assert list(f["id"]) == ["s-r0", "s-r1", "s-r2", "s-r3"]  # plan order
    assert list(f["status"]) == ["finished", "running", "queued", "failed"]
    assert f["progress"].tolist()[:2] == [1.0, 0.25] and math.isnan(f["progress"][2])
    assert list(f["steps"]) == ["60/60", "3/12", "", ""]
    assert f["elapsed_s"].tolist()[:2] == [90.0, 60.0] and math.isnan(f["elapsed_s"][2]) and f["elapsed_s"][3] == 5.0
    assert f["value"][0] == 0.5 and math.isnan(f["value"][1])
    assert f["backend_url"][1] == "https://hf.co/jobs/u/1" and f["worker"][1] == "gpu-1:77"
    assert f["cached"].tolist() == [True, False, False, False]
    assert f["error"][3] == "<b>CUDA</b> out of memory"  # kept as text; the page shows it in a table
    shown = views.runs_display(f)
    assert list(shown["elapsed"]) == ["1m 30s", "1m 00s", "", "5s"]
    cells = views.runs_cells(shown)
    assert cells["value"].tolist() == ["0.5000", "—", "—", "—"]  # no metric yet: a dash, not "None"
    assert cells.columns.tolist() == shown.columns.tolist()
    assert views.runs_frame([], metric="x").empty


def test_a_page_of_runs_is_filtered_counted_and_cut_inside_redis(redis):
    runs = [
        {
            "id": f"s-r{i}",
            "index": i,
            "key": f"k{i}",
            "arm": "a" if i % 2 else "b",
            "status": "finished" if i % 3 else "failed",
            "error": "boom" if i == 3 else "",
        }
        for i in range(450)
    ]
    store = JobStore(redis)
    store.create_study("s", {"name": "s"}, runs)

    def page(**kw):
        return store.study_runs_page("s", page_size=200, **kw)

    first = page()
    assert first["total"] == first["matched"] == 450 and first["arms"] == ["a", "b"] and first["stale"] == []
    assert first["counts"] == {"queued": 0, "running": 0, "finished": 300, "failed": 150, "canceled": 0}
    assert [r["id"] for r in first["runs"]] == [f"s-r{i}" for i in range(200)]  # plan order, whole records
    assert first["runs"][3]["error"] == "boom" and first["runs"][3]["key"] == "k3"
    assert page(statuses=["failed"])["matched"] == 150
    assert page(arm="a", statuses=["failed"])["matched"] == 75
    assert [r["id"] for r in page(search="BOOM")["runs"]] == ["s-r3"]
    assert [r["id"] for r in page(search="s-r44")["runs"]] == ["s-r44"] + [f"s-r44{i}" for i in range(10)]
    assert views.n_pages(450) == 3 and len(page(page=3)["runs"]) == 50
    assert page(page=9)["page"] == 3 and len(page(page=9)["runs"]) == 50  # past the end: the last page
    assert page(search="no such run")["runs"] == [] and page(search="no such run")["matched"] == 0
    counts = first["counts"]
    assert not views.is_live(counts) and views.is_live({**counts, "queued": 1})
    assert ui.duration(59.6) == "1m 00s" and ui.duration(7325) == "2h 02m" and ui.duration(None) == ""


def test_a_running_run_whose_worker_went_silent_is_settled_on_the_page_read(redis):
    store = JobStore(redis)
    runs = [{"id": f"t-r{i}", "index": i, "key": f"k{i}", "arm": "a", "status": "running"} for i in range(3)]
    store.create_study("t", {"name": "t"}, runs)
    store.touch_alive("t-r1")
    assert sorted(store.study_runs_page("t")["stale"]) == ["t-r0", "t-r2"]
    view = client.reconcile_page(redis, "t")  # no RQ job exists for them: failed, with the reason
    assert view["stale"] == [] and view["counts"]["running"] == 1 and view["counts"]["failed"] == 2
    assert "worker died" in next(r for r in view["runs"] if r["id"] == "t-r0")["error"]


def test_studies_frame_and_labels():
    studies = [
        {
            "id": "b-2",
            "name": "second",
            "status": "running",
            "n_runs": 4,
            "submitted_at": 1_700_000_000.0,
            "submitted_by": "ana",
            "backend": "hf_jobs",
        },
        {"id": "a-1", "name": "first", "status": "finished", "n_runs": 2},
    ]
    f = views.studies_frame(studies, {"b-2": {"queued": 1, "running": 1, "finished": 2}})
    assert list(f["id"]) == ["b-2", "a-1"]
    assert f["progress"][0] == 0.5 and f["finished"][0] == 2 and pd.isna(f["progress"][1])
    assert f["backend"].tolist() == ["hf_jobs", "local"]
    assert views.study_label(studies[0]).startswith("second · running · ") and views.study_label(studies[0]).endswith(
        "b-2"
    )


def test_log_text_and_loss_frame():
    events = [
        {"t": 0, "kind": "log", "message": "started <script>alert(1)</script>"},
        {"t": 1, "kind": "loss", "step": 2, "loss": 1.5},
        {"t": 2, "kind": "loss", "step": 1, "loss": 2.5},
        {"t": 3, "kind": "error", "message": "failed: boom"},
    ]
    text = views.log_text(events)
    assert text.splitlines()[0].endswith("started <script>alert(1)</script>")
    assert "ERROR failed: boom" in text and "1.5" not in text
    assert views.loss_frame(events).to_dict("list") == {"step": [1.0, 2.0], "loss": [2.5, 1.5]}
    assert views.loss_frame([]).empty
    assert ui.md_escape("my_study *v2* [x](y) <b>") == r"my\_study \*v2\* \[x\]\(y\) \<b\>"


def test_ranking_frame_words_baseline_and_disagreement():
    ranking = [
        {
            "candidate": "helpful",
            "predicted": 0.8,
            "low": 0.7,
            "high": 0.85,
            "gain_over_baseline": 0.1,
            "p_best": 0.9,
            "rank": 1,
            "measured_at_largest": 0.6,
            "largest_size": 160,
            "rank_at_largest_size": 2,
            "flags": ["extrapolation", "crosses"],
            "notes": ["a note"],
            "backtest_abs_error": 0.01,
            "max_repetition": 0.2,
            "beats_baseline_at_largest": True,
            "form": "power_law",
        },
        {
            "candidate": "noisy",
            "predicted": 0.7,
            "low": None,
            "high": None,
            "gain_over_baseline": 0.0,
            "p_best": 0.1,
            "rank": 2,
            "measured_at_largest": 0.65,
            "largest_size": 160,
            "rank_at_largest_size": 1,
            "flags": [],
            "beats_baseline_at_largest": True,
            "form": "log_linear",
        },
    ]
    baseline = {
        "arm": "baseline",
        "predicted": 0.7,
        "low": 0.6,
        "high": 0.75,
        "measured_at_largest": 0.55,
        "largest_size": 160,
        "form": "power_law",
        "flags": ["no_improvement"],
        "notes": ["flat"],
    }
    result = StudyResult.from_dict(
        {"primary_metric": "macro_f1", "ranking": ranking, "baseline": baseline, "target_size": 1000, "curves": []}
    )
    f = views.ranking_frame(result.ranking_summary(with_baseline=True))
    assert list(f["candidate"]) == ["helpful", "noisy", "baseline (D0 only)"]
    assert f["flags"][0] == "long extrapolation, curve crosses another"
    assert f["flags"][2] == "no improvement with size" and pd.isna(f["rank"][2])
    assert f["interval"][0] == "0.7000 – 0.8500" and f["interval"][1] == ""
    assert f["backtest_error"][0] == 0.01 and pd.isna(f["backtest_error"][1])
    assert views.rankings_disagree(ranking) == ["helpful", "noisy"]
    assert views.plain_order(ranking) == ["noisy", "helpful"]
    assert views.notes_frame(ranking, baseline).values.tolist() == [
        ["helpful", "a note"],
        ["baseline (D0 only)", "flat"],
    ]
    assert list(views.ranking_chart_frame(ranking)["candidate"]) == ["helpful", "noisy"]


def test_ranking_table_shows_an_em_dash_in_the_baseline_rows_empty_cells():
    summary = [
        {
            "rank": 1,
            "candidate": "helpful",
            "predicted": 0.8,
            "low": 0.7,
            "high": 0.85,
            "gain_over_baseline": 0.1,
            "p_best": 1.0,
            "measured_at_largest": 0.6,
            "largest_size": 160,
            "rank_at_largest_size": 1,
            "backtest_error": None,
            "flags": [],
        },
        {
            "rank": None,
            "candidate": "baseline (D0 only)",
            "predicted": 0.7,
            "low": None,
            "high": None,
            "gain_over_baseline": None,
            "p_best": None,
            "measured_at_largest": 0.55,
            "largest_size": 160,
            "rank_at_largest_size": None,
            "backtest_error": None,
            "flags": [],
        },
    ]
    frame = views.ranking_frame(summary)
    shown = views.ranking_cells(frame)
    baseline = shown.iloc[1]
    assert (
        baseline["rank"] == "—" and baseline["candidate"] == "baseline (D0 only)" and baseline["predicted"] == "0.7000"
    )
    assert all(isinstance(v, str) and v != "None" and "nan" not in v.lower() and "<NA>" not in v for v in baseline)
    assert shown.iloc[0]["p_best"] == "100%"


def test_saved_curves_table_and_an_old_file_without_one(finished):
    root, study_id = finished
    metrics = json.loads((root / "studies" / study_id / "metrics.json").read_text())
    saved = StudyResult.from_dict(metrics).curves
    assert list(saved.columns) == ["arm", "size", "value", "low", "high"]
    assert saved["size"].min() == 40 and saved["size"].max() == metrics["target_size"]
    at_target = saved[saved["size"] == metrics["target_size"]].set_index("arm")
    for row in metrics["ranking"]:  # the table's curve and band at the target are the ranking's prediction
        assert at_target.loc[row["candidate"], "value"] == pytest.approx(row["predicted"], rel=1e-9)
        assert at_target.loc[row["candidate"], "low"] == pytest.approx(row["low"], rel=1e-9)
        assert at_target.loc[row["candidate"], "high"] == pytest.approx(row["high"], rel=1e-9)
    assert StudyResult.from_dict(metrics).to_dict() == metrics  # reads and writes the same keys and values

    old = StudyResult.from_dict({k: v for k, v in metrics.items() if k != "curves"})  # written before the table
    old_at_target = old.curves[old.curves["size"] == metrics["target_size"]].set_index("arm")
    for row in metrics["ranking"]:
        assert old_at_target.loc[row["candidate"], "value"] == pytest.approx(row["predicted"], rel=1e-9)
    assert old.curves["low"].isna().all()  # no bootstrap replicates were saved: no bands
    pd.testing.assert_frame_equal(old.curves[["arm", "size", "value"]], saved[["arm", "size", "value"]])
    runs = views.results_runs_frame(metrics)
    assert len(runs) == 18 and {"macro_f1", "loss", "accuracy"} <= set(runs.columns)
    pts, thinned = views.points_frame(runs, "macro_f1")
    assert len(pts) == 18 and not thinned
    means, thinned = views.points_frame(runs, "macro_f1", max_points=10)
    assert thinned and len(means) == 9 and set(means["seed"]) == {"mean"}


# ---------------------------------------------------------------------------------------------
# Pages with zero, one and many studies


def test_pages_with_no_studies_say_what_to_do(redis):
    jobs = ok(page(JOBS))
    assert any("Load demo study" in i.value for i in jobs.info)
    results = ok(page(RESULTS))
    assert any("No finished study yet" in i.value for i in results.info)


def test_jobs_shows_the_statuses_the_store_holds(redis):
    store = JobStore(redis)
    ids = make_study(store, "s1", 6)
    store.set_run_status(ids[1], "running", phase="training", step=3, total=12, worker="gpu-1:42")
    store.touch_alive(ids[1])  # a live worker: reconcile leaves it running
    store.set_run_status(ids[2], "finished", phase="done", metrics={"macro_f1": 0.61})
    store.set_run_status(ids[3], "failed", phase="failed", error="CUDA out of memory")
    store.set_run_status(ids[4], "canceled", phase="canceled", error="canceled by user")
    store.update_run(ids[5], backend_url="https://huggingface.co/jobs/me/abc")
    store.log(ids[1], "started on gpu-1:42")
    store.progress(ids[1], "training", 3, 12, 2.5)

    at = ok(page(JOBS))
    studies = table(at, "submitted_by")
    assert studies.loc[0, "name"] == "study" and studies.loc[0, "progress"] == pytest.approx(50.0)  # 3 of 6 ended
    assert studies.loc[0, "running"] == 1 and studies.loc[0, "failed"] == 1
    runs = table(at, "steps")
    assert list(runs["id"]) == ids
    assert list(runs["status"]) == ["queued", "running", "finished", "failed", "canceled", "queued"]
    assert runs.loc[1, "progress"] == 25.0 and runs.loc[1, "steps"] == "3/12" and runs.loc[1, "worker"] == "gpu-1:42"
    assert runs.loc[2, "value"] == "0.6100" and runs.loc[0, "value"] == "—"  # text: a dash until finished
    assert runs.loc[3, "error"] == "CUDA out of memory"
    assert runs.loc[5, "backend_url"] == "https://huggingface.co/jobs/me/abc"
    # The running run is picked: its log is text and its loss curve is drawn.
    assert at.selectbox(key="jobs.run").value == ids[1]
    assert "started on gpu-1:42" in at.code[0].value
    assert at.get("vega_lite_chart")

    at.multiselect(key="jobs.status_filter").select("failed").run()
    assert list(ok(at).dataframe[1].value["id"]) == [ids[3]]
    assert JobStore(redis).study("s1")["status"] == "running"  # reading changes nothing


def test_jobs_shows_a_dash_not_none_where_a_run_has_no_metric_yet(redis):
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    store = JobStore(redis)
    ids = make_study(store, "dash", 2)
    store.set_run_status(ids[0], "finished", metrics={"macro_f1": 0.75})
    runs = next(d for d in ok(page(JOBS, study="dash")).dataframe if "value" in d.value.columns)
    # The grid draws a missing number as "None" whatever a Styler says: the page sends the cells as text.
    shown = convert_arrow_bytes_to_pandas_df(runs.proto.arrow_data.data)
    assert shown["value"].tolist() == ["0.7500", "—"]


def test_jobs_warns_when_no_worker_listens_on_the_runs_queue(redis):
    from rq import Worker

    make_study(JobStore(redis), "s1", 3, status="queued")
    warnings = [w.value for w in ok(page(JOBS)).warning]
    assert any("no worker listens on it" in w and "`gpu` queue" in w for w in warnings), warnings
    cpu_only = Worker([Queue("default", connection=redis)], connection=redis, name="cpu-1")
    cpu_only.register_birth()  # a worker on another queue does not help
    assert any("no worker listens" in w.value for w in ok(page(JOBS)).warning)
    gpu = Worker([Queue("gpu", connection=redis)], connection=redis, name="gpu-1")
    gpu.register_birth()
    try:
        assert not any("no worker listens" in w.value for w in ok(page(JOBS)).warning)
    finally:
        gpu.register_death()
        cpu_only.register_death()


def test_jobs_cancel_and_retry_change_the_store(redis):
    store = JobStore(redis)
    ids = make_study(store, "s2", 4)
    store.set_run_status(ids[0], "running", phase="training")
    store.touch_alive(ids[0])
    at = ok(page(JOBS, study="s2"))
    assert at.selectbox(key="jobs.run").value == ids[0]

    at.button(key="jobs.cancel_run").click().run()
    assert store.run(ids[0])["status"] == "canceled"
    assert any(ui.md_escape(f"Canceled run {ids[0]}") in s.value for s in ok(at).success)

    at.selectbox(key="jobs.run").set_value(ids[0]).run()
    at.button(key="jobs.retry_run").click().run()
    assert store.run(ids[0])["status"] == "queued"
    assert any("queued again" in s.value for s in ok(at).success)
    assert Queue("gpu", connection=redis).count == 1

    at.button(key="jobs.cancel_study").click().run()
    assert {r["status"] for r in store.study_runs("s2")} == {"canceled"}
    assert store.study("s2")["status"] == "canceled"
    assert any(ui.md_escape("Canceled the study: 4") in s.value for s in ok(at).success)

    # The page said "running" but the run finished meanwhile: the refusal is shown, nothing changes.
    store.set_run_status(ids[1], "running")
    store.touch_alive(ids[1])
    at = ok(page(JOBS, study="s2"))
    at.selectbox(key="jobs.run").set_value(ids[1]).run()
    store.set_run_status(ids[1], "finished", phase="done")
    at.button(key="jobs.cancel_run").click().run()
    assert any("only queued or running runs can be canceled" in e.value for e in ok(at).error)
    assert store.run(ids[1])["status"] == "finished"


def test_many_studies_one_with_10k_runs(redis, finished_in_redis):
    store = JobStore(redis)
    make_study(store, "small", 3, name="small one", status="queued")
    ids = make_study(store, "big", 10_000, name="big one")
    with redis.pipeline(transaction=False) as p:  # a realistic mix, written the way workers write it
        for i, rid in enumerate(ids):
            if i % 4 == 0:
                p.hset(
                    f"wb:run:{rid}",
                    mapping={"status": "finished", "phase": "done", "metrics": json.dumps({"macro_f1": 0.5})},
                )
            elif i % 97 == 0:
                p.hset(f"wb:run:{rid}", mapping={"status": "failed", "phase": "failed", "error": f"boom {i}"})
        p.execute()

    t0 = time.perf_counter()
    at = ok(page(JOBS, study="big"))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    at.run()
    again = time.perf_counter() - t0
    print(f"\nJobs, 10k runs: first render {first:.2f} s, rerun {again:.2f} s")
    studies = table(ok(at), "submitted_by")
    assert len(studies) == 3 and studies.set_index("id").loc["big", "finished"] == 2500
    runs = table(at, "steps")
    assert len(runs) == views.PAGE_SIZE and runs["id"].iloc[0] == "big-r0"
    assert at.get("pagination")
    at.text_input(key="jobs.search").input("boom 9991").run()
    assert list(table(ok(at), "steps")["id"]) == ["big-r9991"]

    t0 = time.perf_counter()
    res = ok(page(RESULTS))
    print(f"Results with 3 studies: first render {time.perf_counter() - t0:.2f} s")
    assert res.selectbox(key="results.study").options == [views.study_label(store.study(finished_in_redis))]


def test_results_shows_a_finished_study(redis, finished_in_redis):
    sid = finished_in_redis
    at = ok(page(RESULTS))
    assert at.selectbox(key="results.study").value == sid
    ranking = table(at, "p_best")
    assert list(ranking["candidate"]) == ["helpful", "offdomain", "baseline (D0 only)"]
    # Numbers reach the grid as formatted text, a dash where the baseline has none.
    gain = [float(g) for g in ranking["gain_over_baseline"].iloc[:2]]
    assert ranking.loc[0, "rank"] == "1" and gain[0] > 0 > gain[1] and ranking.loc[2, "rank"] == "—"
    assert sum(float(p.rstrip("%")) for p in ranking["p_best"].iloc[:2]) == pytest.approx(100.0, abs=1)  # percent
    assert "no improvement with size" in ranking.loc[1, "flags"]
    runs = table(at, "train_seconds")
    assert len(runs) == 18
    labels = [b.label for b in at.download_button]
    assert labels == ["metrics.json", "Runs (CSV)", "Scaling chart (PNG)", "Ranking chart (PNG)"]
    assert any(str(Path(os.environ["ARTIFACTS_DIR"]) / "studies" / sid) in c.value for c in at.code)
    assert len(at.get("vega_lite_chart")) == 2  # scaling curves and the ranking
    assert any("bootstrap" in c.value for c in at.caption)  # bands from the saved chart

    at.radio(key="a.metric").set_value("loss").run()
    by_loss = table(ok(at), "p_best")
    assert list(by_loss["candidate"])[:2] == ["helpful", "offdomain"]
    assert ranking.loc[0, "predicted"] != by_loss.loc[0, "predicted"]


def test_results_shows_the_prescreen_beside_the_trained_ranking(redis, finished_in_redis):
    from core.prescreen import screen
    from core.study import load_prepared

    store = ArtifactStore()
    key = JobStore(redis).study(finished_in_redis)["prescreen_key"]
    prepared = load_prepared(store.prepared_dir(finished_in_redis))
    result = screen(prepared, sample=100)
    store.put_prescreen(key, result)
    at = ok(page(RESULTS))
    assert any("Pre-screen" in e.label for e in at.expander)
    shown = table(at, "knn_accuracy")
    assert list(shown["source"]) == [*result["ranking"], "D0 (reference)"]
    agree = next(m.value for m in at.markdown if "Agreement with the trained ranking" in m.value)
    assert "1 of 1 pairs" in agree or "0 of 1 pairs" in agree


def test_results_compares_two_studies_and_draws_without_a_saved_spec(redis, finished, tmp_path, monkeypatch):
    root = tmp_path / "artifacts"
    shutil.copytree(finished[0], root)
    monkeypatch.setenv("ARTIFACTS_DIR", str(root))
    sid, copy = finished[1], finished[1] + "-copy"
    shutil.copytree(root / "studies" / sid, root / "studies" / copy)
    shutil.copytree(root / "prepared" / sid, root / "prepared" / copy)
    old = json.loads((root / "studies" / copy / "metrics.json").read_text())
    del old["curves"]  # a metrics.json written before the curves table: curves come from the fitted parameters
    (root / "studies" / copy / "metrics.json").write_text(json.dumps(old))
    assert sorted(client.reindex(redis, ArtifactStore(root))) == [sid, copy]

    at = ok(page(RESULTS, study=copy))
    assert at.selectbox(key="results.study").value == copy
    assert any("fitted parameters" in c.value for c in at.caption)
    at.selectbox(key="results.compare").set_value(sid).run()
    tables = [d.value for d in ok(at).dataframe if "p_best" in d.value.columns]
    assert len(tables) >= 3  # one per study side by side, and the detailed one
    assert all(list(t["candidate"])[:2] == ["helpful", "offdomain"] for t in tables)


def test_study_picker_labels_come_from_the_live_run_counts(redis):
    store = JobStore(redis)
    # The record still says "running" (the last word a task wrote) but every run finished and the ranking is done.
    done = make_study(store, "done", 3, name="done one", phase="done")
    for rid in done:
        store.set_run_status(rid, "finished", phase="done", metrics={"macro_f1": 0.5})
    # The record says "queued" but a run has started; another study waits for its ranking.
    busy = make_study(store, "busy", 3, name="busy one", status="queued")
    store.set_run_status(busy[0], "running", phase="training")
    store.touch_alive(busy[0])
    ranking = make_study(store, "ranking", 2, name="ranking one")
    for rid in ranking:
        store.set_run_status(rid, "failed", phase="failed", error="boom")

    at = ok(page(JOBS, study="done"))
    picker = at.selectbox(key="jobs.study")
    labels = {option.split(" · ")[0]: option.split(" · ")[1] for option in picker.options}
    assert labels == {"done one": "finished", "busy one": "running", "ranking one": "ranking"}
    assert picker.value == "done"


def test_jobs_follows_a_study_the_way_its_backend_says(redis):
    store = JobStore(redis)
    ids = make_study(store, "hf", 2, status="queued", backend="hf_jobs", hf_flavor="a10g-small", hf_timeout="45m")
    at = ok(page(JOBS, study="hf"))
    header = ui.md_escape("backend: Hugging Face Jobs (flavor a10g-small, timeout 45m)")
    assert any(header in c.value for c in at.caption), [c.value for c in at.caption]
    assert any("`default` queue" in w.value for w in at.warning)  # HF Jobs runs are followed from the default queue
    at.button(key="jobs.cancel_run").click().run()
    assert store.run(ids[0])["status"] == "canceled"
    assert any("has the Job skip the run" in s.value for s in ok(at).success)
