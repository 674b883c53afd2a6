"""The Setup page (Streamlit AppTest against the real Redis, db 12) and its upload helpers.

AppTest cannot upload files, so uploads are tested through app.uploads directly, and the page is
driven with the path those helpers return (what the page's upload callback does with a real file).
Every bad input must show st.error and enqueue nothing.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path

import pytest
import yaml
from redis import Redis
from rq import Queue
from streamlit.testing.v1 import AppTest

from app import uploads
from app.uploads import UploadError, check_local_path, read_spec, safe_filename, save_upload
from core.spec import SpecError, dump_spec, load_spec, parse_spec
from tests.conftest import real_redis, redis_test_url
from workers import client
from workers.store import JobStore

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "app" / "screens" / "setup.py")
REDIS_URL = redis_test_url(12)
USER = "tester@example.com"
W = "setup.w."


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("setup-home")


@pytest.fixture
def env(home, tmp_path, monkeypatch):
    """Workbench home (shared by the module: the demo data is made once), fresh artifacts, db 12."""
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("WORKBENCH_USER", USER)
    for var in ("WORKBENCH_DATA_DIRS", "WORKBENCH_UPLOAD_MAX_MB", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def redis(env):
    yield from real_redis(REDIS_URL)


def _app() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def _demo(at: AppTest, which: str = "fast") -> AppTest:
    at.button(key=f"setup.demo_{which}").click().run()
    assert not at.exception, at.exception
    return at


def _plain(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)  # the page escapes Markdown in user-facing text


def _errors(at: AppTest) -> list[str]:
    return [_plain(e.value) for e in at.error]


def _nothing_enqueued(redis: Redis, prescreens: int = 0) -> None:
    """No study and no job, except the embedding pre-screens that validation starts (`prescreens` of them)."""
    assert JobStore(redis).study_ids() == []
    assert Queue(client.QUEUE_GPU, connection=redis).count == 0
    jobs = Queue(client.QUEUE_DEFAULT, connection=redis).jobs
    assert [j.func_name for j in jobs] == ["workers.tasks.prescreen_task"] * prescreens
    assert len(redis.keys("rq:job:*")) == prescreens


def _click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


# ---------------------------------------------------------------------------------------------
# The page


def test_page_renders_with_defaults(redis):
    at = _app()
    assert at.title[0].value == "Setup"
    assert not at.error
    assert at.text_input(key=W + "model").value == "builtin:tiny-lm"
    assert at.selectbox(key=W + "task").value == "classification"
    assert at.multiselect(key=W + "metrics").value == ["macro_f1", "accuracy", "gold_prob", "loss"]
    # every candidate option is labelled with its id, license and size
    opts = at.multiselect(key=W + "candidates").options
    assert any(o.startswith("demo/helpful · CC0-1.0") and "9,000 rows" in o for o in opts)
    assert any(o.startswith("ag_news · unknown · 120,000 rows") for o in opts)
    assert not any(o.startswith("squad") for o in opts)  # a QA entry is not offered for classification
    _nothing_enqueued(redis)


def test_column_mapping_help_describes_each_task_field_and_training_shows_every_setting(redis):
    from core import tasks
    from core.spec import TrainingSettings

    at = _app()
    help_text = at.text_input(key=W + "d0.columns").help
    for field, described in tasks.get("classification").field_help.items():
        assert f"{field} ({described})" in help_text
    at.selectbox(key=W + "task").set_value("qa").run()
    assert all(d in at.text_input(key=W + "d0.columns").help for d in tasks.get("qa").field_help.values())
    keys = {w.key for w in [*at.text_input, *at.number_input, *at.selectbox, *at.checkbox]}
    assert {W + "t." + name for name in TrainingSettings.model_fields} <= keys
    assert at.selectbox(key=W + "t.lr_scheduler").options == ["linear", "cosine", "constant"]


def test_load_demo_fills_the_whole_form(redis):
    at = _demo(_app())
    assert at.text_input(key=W + "name").value == "offline demo, fast (support intents)"
    assert at.text_input(key=W + "model").value == "builtin:tiny-lm"
    assert at.radio(key=W + "d0.kind").value == "catalog"
    assert at.selectbox(key=W + "d0.catalog").value == "demo/d0"
    assert at.radio(key=W + "bench.kind").value == "catalog"
    assert at.selectbox(key=W + "bench.catalog").value == "demo/benchmark"
    assert at.multiselect(key=W + "candidates").value == [
        "demo/helpful",
        "demo/partial",
        "demo/offdomain",
        "demo/noisy",
    ]
    assert at.text_input(key=W + "sizes").value == "250, 500, 1000"
    assert at.text_input(key=W + "seeds").value == "0"
    assert at.text_input(key=W + "target").value == "4000"
    assert at.slider(key=W + "d0_share").value == pytest.approx(0.3)
    assert at.selectbox(key=W + "primary").value == "macro_f1"
    assert at.selectbox(key=W + "t.method").value == "full"
    assert at.number_input(key=W + "t.min_steps").value == 300
    assert at.text_input(key=W + "t.learning_rate").value == "0.001"
    assert at.number_input(key=W + "t.eval_batch_size").value == 256
    _demo(at, "full")
    assert at.text_input(key=W + "sizes").value == "250, 500, 1000, 2000"
    assert at.text_input(key=W + "seeds").value == "0, 1"
    _nothing_enqueued(redis)


def test_validate_shows_summary_preview_and_estimate(redis):
    at = _click(_demo(_app()), "setup.validate")
    assert not at.error, _errors(at)
    summary = next(d.value for d in at.dataframe if "contamination removed" in d.value.columns)
    rows = dict(zip(summary["name"], summary["rows"]))
    assert rows == {"d0": 300, "benchmark": 600, "helpful": 9000, "partial": 9000, "offdomain": 9000, "noisy": 9000}
    assert list(summary["contamination removed"].dropna()) == [0, 0, 0, 0]
    assert any("Labels (6): account, billing, cancel, refund, shipping, technical" in t.value for t in at.text)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Runs"] == "15" and metrics["Already cached"] == "0" and metrics["Estimated time"] == "unknown"
    previews = [d.value for d in at.dataframe if list(d.value.columns) == ["text", "label"]]
    assert len(previews) == 6 and all(len(p) == 5 for p in previews)
    # the preview stays while the form is unchanged, and says so when it changes
    at.run()
    assert any("contamination removed" in d.value.columns for d in at.dataframe)
    at.text_input(key=W + "seeds").input("0, 1").run()
    assert any("form changed" in _plain(i.value) for i in at.info)
    _nothing_enqueued(redis, prescreens=1)  # no study and no run: only the pre-screen of the validated data, once


def test_validate_shows_the_prescreen_waiting_for_a_worker(redis):
    at = _click(_demo(_app()), "setup.validate")
    assert any("Pre-screen" in m.value for m in at.markdown)
    texts = [_plain(p.proto.text) for p in at.get("progress")]
    assert any(t.startswith("Pre-screen queued: waiting for a worker") for t in texts), texts
    assert any("No worker listens on the 'default' queue" in _plain(c.value) for c in at.caption)


def test_run_enqueues_exactly_one_study(redis, env):
    at = _click(_demo(_app()), "setup.run")
    assert not at.error, _errors(at)
    store = JobStore(redis)
    ids = store.study_ids()
    assert len(ids) == 1
    study_id = ids[0]
    assert at.session_state["study_id"] == study_id
    study = store.study(study_id)
    assert study["submitted_by"] == USER and study["backend"] == "local"
    runs = store.study_runs(study_id)
    assert len(runs) == 15 and {r["status"] for r in runs} == {"queued"}
    assert Queue(client.QUEUE_GPU, connection=redis).count == 15
    assert any(study_id in _plain(s.value) for s in at.success)


def test_run_on_hf_jobs_records_flavor_and_timeout(redis):
    at = _demo(_app())
    at.radio(key=W + "backend").set_value("hf_jobs").run()
    at.selectbox(key=W + "hf_flavor").set_value("a10g-small")
    at.text_input(key=W + "hf_timeout").input("90m")
    _click(at, "setup.run")
    assert not at.error, _errors(at)
    (study_id,) = JobStore(redis).study_ids()
    study = JobStore(redis).study(study_id)
    assert (study["backend"], study["hf_flavor"], study["hf_timeout"]) == ("hf_jobs", "a10g-small", "90m")
    jobs = [j.func_name for j in Queue(client.QUEUE_DEFAULT, connection=redis).jobs]
    assert sorted(set(jobs)) == ["workers.backends.hf_jobs.hf_run_task", "workers.tasks.prescreen_task"]
    assert (
        jobs.count("workers.backends.hf_jobs.hf_run_task") == 15
        and Queue(client.QUEUE_GPU, connection=redis).count == 0
    )


def _set_text(key: str, value: str):
    return lambda at: at.text_input(key=W + key).input(value)


BAD_INPUTS = {
    "sizes not numbers": (_set_text("sizes", "250, abc, 1000"), ["Sizes", "'abc' is not a whole number"]),
    "sizes empty": (_set_text("sizes", " "), ["Sizes", "at least one size"]),
    "sizes repeated": (_set_text("sizes", "250, 250"), ["sizes", "distinct"]),
    "target smaller than sizes": (
        _set_text("target", "500"),
        ["Target size", "target_size", "must be at least the largest size (1000)"],
    ),
    "seeds not numbers": (_set_text("seeds", "zero"), ["Seeds", "'zero'"]),
    "no candidates": (
        lambda at: at.multiselect(key=W + "candidates").set_value([]),
        ["Candidates", "choose at least one candidate"],
    ),
    "no metrics": (lambda at: at.multiselect(key=W + "metrics").set_value([]), ["Metrics", "at least one"]),
    "empty model": (_set_text("model", ""), ["Model", "model"]),
    "bad column mapping": (_set_text("d0.columns", "text"), ["D0 column mapping", "field=column"]),
    "unknown mapped field": (_set_text("d0.columns", "prompt=text"), ["not a classification field"]),
    "learning rate": (_set_text("t.learning_rate", "fast"), ["Learning rate", "not a number"]),
    "qlora on builtin": (lambda at: at.selectbox(key=W + "t.method").set_value("qlora"), ["training.method", "qlora"]),
    "d0 upload missing": (lambda at: at.radio(key=W + "d0.kind").set_value("upload"), ["D0", "upload a file"]),
    "hub id missing": (lambda at: at.radio(key=W + "bench.kind").set_value("hub"), ["Benchmark", "Hub dataset id"]),
    "hub dataset unreachable": (
        lambda at: (
            at.radio(key=W + "bench.kind").set_value("hub").run(),
            at.text_input(key=W + "bench.hub_id").input("someone/no-such-set"),
        ),
        ["someone/no-such-set"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_shows_error_and_enqueues_nothing(redis, case):
    change, expected = BAD_INPUTS[case]
    at = _demo(_app())
    change(at)
    at.run()
    for button in ("setup.validate", "setup.run"):
        _click(at, button)
        errors = " | ".join(_errors(at))
        assert at.error, f"{case}: no st.error after {button}"
        for piece in expected:
            assert piece in errors, f"{case}: {piece!r} not in {errors!r}"
        assert not any("contamination removed" in d.value.columns for d in at.dataframe)
        assert "study_id" not in at.session_state
    _nothing_enqueued(redis)


def test_path_outside_the_upload_folder_is_refused(redis):
    at = _demo(_app())
    at.radio(key=W + "d0.kind").set_value("upload").run()
    at.text_input(key=W + "d0.path").input("/etc/passwd").run()
    _click(at, "setup.run")
    assert any("outside the folders this dashboard reads" in e for e in _errors(at))
    _nothing_enqueued(redis)


def test_hf_jobs_bad_timeout_is_refused(redis):
    at = _demo(_app())
    at.radio(key=W + "backend").set_value("hf_jobs").run()
    at.text_input(key=W + "hf_timeout").input("soon").run()
    _click(at, "setup.run")
    assert any("30m, 2h or 1d" in e for e in _errors(at))
    _nothing_enqueued(redis)


def _add_candidate(at: AppTest, path: Path, name: str) -> AppTest:
    at.text_input(key=W + "cand.path").input(str(path))
    at.text_input(key=W + "cand.name").input(name)
    return _click(at, "setup.add_candidate")


def test_uploaded_candidate_with_unknown_label_is_refused(redis, tmp_path):
    rows = (
        "text,label\n" + "".join(f"my parcel {i} is late,shipping\n" for i in range(20)) + "what a sunny day,weather\n"
    )
    up = save_upload("../my candidate.csv", rows.encode())
    at = _demo(_app())
    _add_candidate(at, up.path, "mine")
    assert not at.error, _errors(at)
    assert "custom:mine" in at.multiselect(key=W + "candidates").value
    for button in ("setup.validate", "setup.run"):
        _click(at, button)
        errors = " | ".join(_errors(at))
        assert "mine" in errors and "weather" in errors, errors
    _nothing_enqueued(redis)


def test_uploaded_candidate_with_known_labels_validates(redis):
    rows = "text,label\n" + "".join(f"my parcel {i} never arrived,shipping\n" for i in range(30))
    up = save_upload("good.csv", rows.encode())
    at = _demo(_app())
    at.multiselect(key=W + "candidates").set_value(["demo/helpful"]).run()
    _add_candidate(at, up.path, "parcels")
    _click(at, "setup.validate")
    assert not at.error, _errors(at)
    summary = next(d.value for d in at.dataframe if "contamination removed" in d.value.columns)
    assert dict(zip(summary["name"], summary["rows"]))["parcels"] == 30
    # a candidate path that escapes the upload folder is refused, even if planted in the state
    at.session_state["setup.f.custom"] = {"custom:evil": {"path": "/etc/passwd", "name": "evil"}}
    at.run()
    at.multiselect(key=W + "candidates").set_value(["custom:evil"]).run()
    _click(at, "setup.run")
    assert any("outside the folders" in e for e in _errors(at)), _errors(at)
    _nothing_enqueued(redis, prescreens=1)  # the validation's pre-screen; the refused Run added nothing


def test_bad_yaml_spec_shows_error_and_keeps_the_form(redis):
    at = _demo(_app())
    for text, expected in (
        ("name: [unclosed\nmodel: x", ["not valid YAML", "line"]),
        ("- just\n- a list", ["expected a mapping"]),
        ("", ["empty"]),
        (
            dump_spec(load_spec(ROOT / "catalog" / "demo_study_fast.yaml")).replace("sizes:", "sizez:"),
            ["sizez", "unknown field", "sizes", "missing"],
        ),
        (
            dump_spec(load_spec(ROOT / "catalog" / "demo_study_fast.yaml")).replace(
                "target_size: 4000", "target_size: 10"
            ),
            ["target_size", "at least"],
        ),
    ):
        at.text_area(key="setup.spec_text").input(text).run()
        _click(at, "setup.spec_paste")
        errors = " | ".join(_errors(at))
        for piece in expected:
            assert piece in errors, (text, errors)
        assert at.text_input(key=W + "sizes").value == "250, 500, 1000"  # the form is unchanged
    _nothing_enqueued(redis)


@pytest.mark.parametrize("refine", [{}, {"refine": "auto", "refine_budget": 4}])
def test_spec_yaml_round_trip_fills_the_form(redis, refine):
    """A pasted spec comes back as the same study, fields the form does not show (refine: auto) included."""
    spec = load_spec(ROOT / "catalog" / "demo_study.yaml")
    text = yaml.safe_dump(spec.model_dump(exclude_unset=True) | refine, sort_keys=False)
    spec = parse_spec(yaml.safe_load(text))
    at = _app()
    at.text_area(key="setup.spec_text").input(text).run()
    _click(at, "setup.spec_paste")
    assert not at.error, _errors(at)
    assert at.text_input(key=W + "sizes").value == "250, 500, 1000, 2000"
    assert at.text_input(key=W + "seeds").value == "0, 1"
    assert at.multiselect(key=W + "candidates").value == [
        "demo/helpful",
        "demo/partial",
        "demo/offdomain",
        "demo/noisy",
    ]
    # the form builds back the same study (same content hash), names of catalog candidates included
    _click(at, "setup.validate")
    assert not at.error, _errors(at)
    assert at.session_state["setup.preview"]["spec_id"] == spec.study_id()


def test_form_survives_another_page(redis, tmp_path):
    """Streamlit drops the state of widgets another page does not draw; the form keeps its own copy."""
    other = tmp_path / "other.py"
    other.write_text("import streamlit as st\nst.title('Other page')\n")
    main = tmp_path / "main.py"
    main.write_text(
        "import streamlit as st\n"
        f"st.navigation([st.Page({PAGE!r}, url_path='setup', default=True), st.Page({str(other)!r}, "
        "url_path='other')]).run()\n"
    )
    at = AppTest.from_file(str(main), default_timeout=60)
    at.run()
    _demo(at)
    at.text_input(key=W + "sizes").input("300, 600, 1200").run()
    at.switch_page("other.py").run()
    assert at.title[0].value == "Other page" and W + "sizes" not in at.session_state
    at.switch_page(os.path.relpath(PAGE, tmp_path)).run()
    assert not at.exception, at.exception
    assert at.text_input(key=W + "sizes").value == "300, 600, 1200"
    assert at.multiselect(key=W + "candidates").value == [
        "demo/helpful",
        "demo/partial",
        "demo/offdomain",
        "demo/noisy",
    ]
    assert at.selectbox(key=W + "t.method").value == "full"


def test_changing_task_resets_metrics_and_candidates(redis):
    at = _demo(_app())
    at.selectbox(key=W + "task").set_value("qa").run()
    assert not at.exception
    assert at.multiselect(key=W + "metrics").value == ["exact_match", "f1", "loss"]
    assert at.multiselect(key=W + "candidates").value == []
    assert any(o.startswith("squad") for o in at.multiselect(key=W + "candidates").options)


def test_a_math_benchmark_offers_math_equiv_as_the_primary_metric(redis):
    at = _demo(_app())
    at.selectbox(key=W + "task").set_value("generative").run()
    assert at.multiselect(key=W + "metrics").value == ["exact_match", "f1", "loss"]
    assert "setup.use_math" not in [b.key for b in at.button]  # no math benchmark yet
    at.radio(key=W + "bench.kind").set_value("catalog").run()
    at.selectbox(key=W + "bench.catalog").set_value("gsm8k").run()
    assert any("math_equiv" in i.value for i in at.info)
    _click(at, "setup.use_math")
    assert at.multiselect(key=W + "metrics").value == ["math_equiv", "exact_match", "f1", "loss"]
    assert at.selectbox(key=W + "primary").value == "math_equiv"
    assert "setup.use_math" not in [b.key for b in at.button]  # offered once, until it is removed again


def test_check_model_messages_never_a_traceback(redis):
    at = _app()
    _click(at, "setup.check_model")
    assert any("offline, no Hub access needed" in _plain(s.value) for s in at.success)
    at.text_input(key=W + "model").input("someone/some-model").run()
    _click(at, "setup.check_model")  # the suite is offline (HF_HUB_OFFLINE=1)
    assert any("Cannot reach the Hugging Face Hub" in _plain(w.value) for w in at.warning)
    at.selectbox(key=W + "model_pick").set_value("Qwen/Qwen2.5-0.5B").run()
    assert at.text_input(key=W + "model").value == "Qwen/Qwen2.5-0.5B"


def test_run_from_the_app_switches_to_jobs(redis):
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    _click(_demo(at), "setup.run")
    (study_id,) = JobStore(redis).study_ids()
    assert at.session_state["study_id"] == study_id
    assert not any(t.value == "Setup" for t in at.title)  # Jobs runs now


# ---------------------------------------------------------------------------------------------
# Upload helpers


def test_save_upload_stores_by_content_inside_the_upload_folder(env):
    data = b"text,label\nhello,greeting\n"
    up = save_upload("../../etc/My Data (1).csv", data)
    root = (env / "uploads").resolve()
    assert up.path == up.stored and up.path.is_relative_to(root)
    assert up.path.parent.name == up.sha256[:16] and up.path.name == "My_Data_1.csv"
    assert up.path.read_bytes() == data and up.size == len(data)
    again = save_upload("other name.csv", io.BytesIO(data))  # a file-like works too
    assert again.path.parent == up.path.parent
    assert not list(root.glob(".incoming-*"))


@pytest.mark.parametrize(
    "name, safe",
    [
        ("../../etc/passwd.csv", "passwd.csv"),
        ("C:\\Users\\x\\..\\evil.JSONL", "evil.jsonl"),
        ("..", "upload"),
        (".hidden.csv", "hidden.csv"),
        ("ré sumé.parquet", "re_sume.parquet"),
        ("a\x00b.csv", "a_b.csv"),
        ("x" * 500 + ".csv", "x" * 116 + ".csv"),
    ],
)
def test_safe_filename(name, safe):
    assert safe_filename(name) == safe


@pytest.mark.parametrize("name", ["data.exe", "data.txt", "data", "passwd", "spec.yaml"])
def test_bad_extension_is_refused(env, name):
    with pytest.raises(UploadError, match="not a supported file"):
        save_upload(name, b"a,b\n1,2\n")


def test_size_cap(env, monkeypatch):
    with pytest.raises(UploadError, match="larger than"):
        save_upload("big.csv", b"x" * 11, max_bytes=10)
    monkeypatch.setenv("WORKBENCH_UPLOAD_MAX_MB", "1")
    assert uploads.max_upload_mb() == 1
    with pytest.raises(UploadError, match="1 MB upload limit"):
        save_upload("big.csv", io.BytesIO(b"a" * (1024**2 + 1)))
    assert not list((env / "uploads").rglob("big.csv")) and not list((env / "uploads").glob(".incoming-*"))
    monkeypatch.setenv("WORKBENCH_UPLOAD_MAX_MB", "lots")
    assert uploads.max_upload_mb() == uploads.DEFAULT_MAX_MB


def test_empty_and_non_utf8_files_are_refused(env):
    with pytest.raises(UploadError, match="empty"):
        save_upload("empty.csv", b"")
    with pytest.raises(UploadError, match="not UTF-8.*0xe9.*iconv"):
        save_upload("latin1.csv", "text,label\ncafé,a\n".encode("latin-1"))
    assert not list((env / "uploads").rglob("latin1.csv"))


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_with_one_data_file(env):
    rows = "".join(json.dumps({"text": f"t{i}", "label": "a"}) + "\n" for i in range(5)).encode()
    up = save_upload(
        "data.zip", _zip_bytes({"inner/data.jsonl": rows, "__MACOSX/inner/._data.jsonl": b"junk", "README.txt": b"hi"})
    )
    assert up.path.name == "data.jsonl" and up.path.read_bytes() == rows
    assert up.path.is_relative_to((env / "uploads").resolve())


def test_zip_with_splits_gives_its_folder(env):
    rows = b'{"text": "a", "label": "x"}\n'
    up = save_upload("splits.zip", _zip_bytes({"data/train.jsonl": rows, "data/test.jsonl": rows}))
    assert up.path.is_dir() and {p.name for p in up.path.rglob("*.jsonl")} == {"train.jsonl", "test.jsonl"}


@pytest.mark.parametrize("evil", ["../evil.jsonl", "/tmp/evil-setup-abs.jsonl", "a/../../evil.jsonl", "C:/evil.jsonl"])
def test_zip_path_traversal_is_refused(env, evil):
    with pytest.raises(UploadError, match="unsafe path|outside"):
        save_upload("evil.zip", _zip_bytes({"ok.jsonl": b'{"text": "a", "label": "x"}\n', evil: b"pwned"}))
    root = env / "uploads"
    assert not any(p.name.startswith("evil") and p.suffix == ".jsonl" for p in root.parent.rglob("*"))
    assert not Path("/tmp/evil-setup-abs.jsonl").exists()
    assert not list(root.rglob("ok.jsonl"))  # refused before anything was written
    assert not list(root.rglob("evil.zip"))  # and the refused upload is not kept


def test_bad_zips_are_refused(env):
    with pytest.raises(UploadError, match="not a valid zip"):
        save_upload("broken.zip", b"PK not really")
    with pytest.raises(UploadError, match="holds no"):
        save_upload("nodata.zip", _zip_bytes({"notes.txt": b"hello"}))
    with pytest.raises(UploadError, match="not UTF-8"):
        save_upload("latin.zip", _zip_bytes({"d.csv": "text,label\ncafé,a\n".encode("latin-1")}))


def test_check_local_path(env, tmp_path, monkeypatch):
    up = save_upload("ok.csv", b"text,label\na,b\n")
    assert check_local_path(str(up.path)) == up.path
    for bad in ("/etc/passwd", str(env / "uploads" / ".." / ".." / "x.csv"), "../../../../etc/passwd"):
        with pytest.raises(UploadError, match="outside the folders"):
            check_local_path(bad)
    link = env / "uploads" / "link.csv"
    link.unlink(missing_ok=True)
    link.symlink_to("/etc/passwd")
    with pytest.raises(UploadError, match="outside the folders"):
        check_local_path(str(link))
    outside = tmp_path / "shared" / "d.csv"
    outside.parent.mkdir()
    outside.write_text("text,label\na,b\n")
    with pytest.raises(UploadError):
        check_local_path(str(outside))
    monkeypatch.setenv("WORKBENCH_DATA_DIRS", str(outside.parent))
    assert check_local_path(str(outside)) == outside.resolve()
    with pytest.raises(UploadError, match="does not exist"):
        check_local_path(str(outside.parent / "missing.csv"))
    with pytest.raises(UploadError, match="no file"):
        check_local_path("  ")


def test_read_spec():
    text = (ROOT / "catalog" / "demo_study_fast.yaml").read_text()
    assert read_spec(text, "demo.yaml").sizes == [250, 500, 1000]
    assert read_spec(json.dumps(yaml.safe_load(text)).encode(), "demo.json").sizes == [250, 500, 1000]
    cases = [
        ("name: [x", "s.yaml", "not valid YAML at line"),
        ("{", "s.json", "not valid JSON at line 1"),
        ("- a", "s.yaml", "expected a mapping"),
        (text, "s.txt", ".yaml, .yml or .json"),
        (b"\xff\xfe", "s.yaml", "not UTF-8"),
        ("x" * (2 * 1024**2), "s.yaml", "too large"),
    ]
    for data, name, expected in cases:
        with pytest.raises(SpecError) as err:
            read_spec(data, name)
        assert expected in str(err.value), (name, str(err.value))


# ---------------------------------------------------------------------------------------------
# The model probe behind "Check model"


def test_check_model_offline_and_unreachable(monkeypatch):
    import huggingface_hub.constants as hub_constants

    assert client.check_model("builtin:tiny-lm")["ok"]
    assert client.check_model("builtin:huge")["kind"] == "invalid"
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    res = client.check_model("someone/model")
    assert res["kind"] == "unreachable" and "HF_HUB_OFFLINE" in res["message"]
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    res = client.check_model("someone/model", endpoint="http://127.0.0.1:9", timeout=2)  # nothing listens there
    assert res["kind"] == "unreachable" and "Cannot reach the Hugging Face Hub" in res["message"]
    assert client.check_model("not a valid id!")["kind"] == "invalid"


def test_check_model_against_the_fake_hub(monkeypatch, tmp_path):
    import huggingface_hub.constants as hub_constants

    from tests.fake_hub import FakeHub

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_fake_token")
    with FakeHub(token="hf_fake_token") as hub:
        hub.mark_model("org/gated", "gated")
        hub.mark_model("org/missing", "missing")
        assert client.check_model("org/open", endpoint=hub.url)["kind"] == "hub"
        gated = client.check_model("org/gated", endpoint=hub.url)
        assert (
            gated["kind"] == "gated"
            and "request access" in gated["message"]
            and "hf_fake_token" not in gated["message"]
        )
        assert client.check_model("org/missing", endpoint=hub.url)["kind"] == "missing"
    folder = tmp_path / "model"
    folder.mkdir()
    assert client.check_model(str(folder))["kind"] == "missing"
    (folder / "config.json").write_text("{}")
    assert "is neither a causal LM" in client.check_model(str(folder))["message"]
    (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}')
    assert client.check_model(str(folder))["kind"] == "local"
