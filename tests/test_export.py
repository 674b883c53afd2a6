"""The verifiers dataset schema: such files load as D0 or candidates with no mapping, and
`workbench export` writes the exact mixture a run trained on, which loads back to the same rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.artifacts import ArtifactStore
from core.export import ExportError, export_mixture
from core.normalize import normalize
from core.sources import load_source
from core.spec import SourceSpec
from core.study import mixture_for, prepare_study, save_prepared
from tests.fake_hub import FakeHub
from tests.specs import tiny_spec

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hf_fake_export_token_0123456789"


def _workbench(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )


def _verifiers_file(path: Path, n: int, *, chat: bool = False) -> Path:
    rows = []
    for i in range(n):
        question = f"Write {i} plus {i} as a number."
        prompt = (
            [{"role": "system", "content": "Be brief."}, {"role": "user", "content": question}] if chat else question
        )
        rows.append(
            {
                "prompt": prompt,
                "answer": f"The answer is \\boxed{{{2 * i}}}.",
                "info": {"id": f"row-{i}", "difficulty": i % 3},
                "task": "sums" if i % 2 else "doubling",
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _load(path: Path, task: str = "generative", **src) -> list[dict]:
    spec = SourceSpec(path=str(path), **src)
    return normalize(load_source(spec), task, spec).rows


def test_a_verifiers_file_loads_with_no_mapping_and_keeps_info_and_task(tmp_path):
    spec = SourceSpec(path=str(_verifiers_file(tmp_path / "v.jsonl", 6, chat=True)), answer_extraction="boxed")
    data = normalize(load_source(spec), "generative", spec)
    first = data.rows[0]
    assert first["prompt"][-1] == {"role": "user", "content": "Write 0 plus 0 as a number."}
    assert first["answer"] == "0" and first["answer_full"] == "The answer is \\boxed{0}."
    assert first["info"] == {"id": "row-0", "difficulty": 0} and first["task"] == "doubling"
    assert "rows by task tag: doubling 3, sums 3" in data.notes


def test_info_as_json_text_or_any_other_value_is_kept(tmp_path):
    path = tmp_path / "v.jsonl"
    rows = [
        {"prompt": "a", "answer": "1", "info": json.dumps({"k": 1})},
        {"prompt": "b", "answer": "2", "info": "not json"},
        {"prompt": "c", "answer": "3", "info": ""},
        {"prompt": "d", "answer": "4", "info": {}},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = _load(path)
    assert out[0]["info"] == {"k": 1} and out[1]["info"] == {"value": "not json"}
    assert "info" not in out[2] and "info" not in out[3]


def _generative_study(tmp_path: Path, store: ArtifactStore):
    """A generative study on verifiers files, prepared as `client.submit` prepares one (no run trained)."""
    d0 = _verifiers_file(tmp_path / "d0.jsonl", 40)
    cand = _verifiers_file(tmp_path / "cand.jsonl", 60, chat=False)
    spec = tiny_spec(
        task="generative",
        d0={"path": str(d0), "name": "d0", "answer_extraction": "boxed"},
        benchmark_holdout=10,
        benchmark=None,
        candidates=[{"path": str(cand), "name": "verif", "answer_extraction": "boxed"}],
        sizes=[20, 40],
        target_size=200,
    )
    prepared = prepare_study(spec)
    save_prepared(prepared, store.prepared_dir(prepared.study_id))
    return prepared


def test_an_exported_mixture_reimports_to_the_same_rows(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    prepared = _generative_study(tmp_path, store)
    done = export_mixture(prepared.study_id, "verif", 40, "verifiers", tmp_path / "out", store=store)
    assert done.rows == 40 and not done.trained and done.file.name == "train.jsonl"
    mixture = mixture_for(prepared, done.run)
    lines = [json.loads(line) for line in done.file.read_text().splitlines()]
    assert [(r["info"]["source"], r["info"]["source_row"]) for r in lines] == list(
        zip(mixture.sources, mixture.indices)
    )
    again = _load(tmp_path / "out", answer_extraction="boxed")  # the folder, as a Hub-style source
    strip = lambda r: {k: v for k, v in r.items() if k != "info"}  # noqa: E731 - info gains the provenance
    assert [strip(r) for r in again] == [strip(r) for r in mixture.rows]
    assert [r["info"]["id"] for r in again] == [r["info"]["id"] for r in mixture.rows]
    assert "Training mixture: verif · 40 rows · seed 0" in (tmp_path / "out" / "README.md").read_text()

    hf = export_mixture(prepared.study_id, "baseline", 20, "hf", tmp_path / "hf", store=store)
    assert hf.file.suffix == ".parquet"
    assert [strip(r) for r in _load(tmp_path / "hf", answer_extraction="boxed")] == [
        strip(r) for r in mixture_for(prepared, hf.run).rows
    ]


def test_export_refuses_what_it_cannot_write(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    prepared = _generative_study(tmp_path, store)
    with pytest.raises(ExportError, match="choose one of"):
        export_mixture(prepared.study_id, "nope", 20, "verifiers", tmp_path / "o", store=store)
    with pytest.raises(ExportError, match="positive"):
        export_mixture(prepared.study_id, "verif", 0, "verifiers", tmp_path / "o", store=store)
    with pytest.raises(ExportError, match="no study"):
        export_mixture("0123abcd", "verif", 20, "verifiers", tmp_path / "o", store=store)
    # The manifest of a finished run that no longer matches the data: never export other rows.
    run = export_mixture(prepared.study_id, "verif", 20, "verifiers", tmp_path / "o", store=store).run
    store.put_manifest(run.key, {"rows": [["verif", 0]] * 20})
    with pytest.raises(ExportError, match="differ from the ones its run trained on"):
        export_mixture(prepared.study_id, "verif", 20, "verifiers", tmp_path / "o", store=store)


def test_export_of_a_trained_run_from_the_command_line_and_push_to_the_hub(tmp_path, demo_fast_trained):
    metrics = json.loads((demo_fast_trained["out"] / "metrics.json").read_text())
    run = next(r for r in metrics["runs"] if r["arm"] == "helpful")
    artifacts = Path(demo_fast_trained["artifacts"])
    manifest = json.loads((artifacts / "runs" / run["key"] / "manifest.json").read_text())
    out = tmp_path / "export"
    with FakeHub(token=TOKEN, user="alice", orgs=("lab",)) as hub:
        env = {"ARTIFACTS_DIR": str(artifacts), "HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": "0"}
        args = ["export", metrics["study_id"], "--mixture", "helpful", "--size", str(run["size"])]
        proc = _workbench(*args, "--format", "hf", "--out", str(out), "--push", "lab/helpful-mix", env=env)
        assert proc.returncode == 0, proc.stderr
        assert f"wrote {run['size']:,} rows" in proc.stdout and "as its run trained on them" in proc.stdout
        assert "pushed to" in proc.stdout
        parquet = out / "data" / "train-00000-of-00001.parquet"
        assert hub.file("lab/helpful-mix", "data/train-00000-of-00001.parquet") == parquet.read_bytes()
        assert b"Training mixture" in hub.file("lab/helpful-mix", "README.md")
        # classification rows load back as they were, in the run's order
        rows = _load(out, task="classification")
        assert len(rows) == run["size"] == len(manifest["rows"])
        import pandas as pd

        table = pd.read_parquet(parquet)
        assert [[s, i] for s, i in zip(table["source"], table["source_row"])] == manifest["rows"]
        bad = _workbench(*args[:2], "--mixture", "nope", "--size", "10", "--out", str(tmp_path / "x"), env=env)
        assert bad.returncode == 1 and "choose one of" in bad.stderr
