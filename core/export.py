"""Export the exact mixture a run trained on, as a folder laid out like a Hub dataset repo.

Two formats:
- `verifiers`: `data/train.jsonl` in the `verifiers` library's schema: `prompt` (text or chat messages),
  `answer`, `info` (a dict: the row's own info plus its `source` and `source_row`), and `task` where the
  row has a tag. Generative rows keep their prompt and the answer text they trained on; rows of other
  tasks become the prompt the model saw and the completion it learnt, with the original row in `info`.
- `hf`: `data/train-00000-of-00001.parquet` holding the rows in their task's columns (a generative
  answer is the text trained on), plus `source` and `source_row` columns.

Either folder loads back as a source (`path: <folder>`) and can be pushed to a Hub dataset repo. The
rows come in the order the run saw them, rebuilt from the study's prepared data and checked against
the run's stored manifest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core import tasks
from core.artifacts import ArtifactStore, read_json, write_text
from core.mixture import BASELINE, Mixture
from core.study import PreparedStudy, RunSpec, load_prepared, mixture_for, prepare_study, run_key

FORMATS = ("verifiers", "hf")
JSONL_FILE = "data/train.jsonl"
PARQUET_FILE = "data/train-00000-of-00001.parquet"


class ExportError(ValueError):
    """An export that cannot be made; the message says what to fix."""


@dataclass(frozen=True)
class Exported:
    folder: Path
    file: Path
    rows: int
    run: RunSpec
    trained: bool  # the run has finished: its manifest confirmed the rows


def load_study(study_id: str, store: ArtifactStore) -> PreparedStudy:
    """A study's prepared data (what its runs trained on); prepared again from its spec if not kept."""
    prepared_file = store.prepared_dir(study_id) / "prepared.json"
    if prepared_file.is_file():
        return load_prepared(prepared_file.parent)
    spec_file = store.study_dir(study_id) / "spec.yaml"
    if not spec_file.is_file():
        raise ExportError(f"no study '{study_id}' in {store.root}; list studies with `workbench status`")
    from core.spec import load_spec

    return prepare_study(load_spec(spec_file))


def run_for(prepared: PreparedStudy, arm: str, size: int, seed: int | None) -> RunSpec:
    """The run of `arm` at `size` rows (seed: the study's first unless given)."""
    arms = [BASELINE, *prepared.candidates]
    if arm not in arms:
        raise ExportError(f"no mixture '{arm}' in study {prepared.study_id}; choose one of {arms}")
    if size <= 0:
        raise ExportError(f"--size must be a positive number of rows; got {size}")
    seed = prepared.spec.seeds[0] if seed is None else seed
    return RunSpec(arm, size, seed, run_key(prepared, arm, size, seed))


def export_mixture(
    study_id: str,
    arm: str,
    size: int,
    fmt: str,
    out: str | Path,
    *,
    seed: int | None = None,
    store: ArtifactStore | None = None,
) -> Exported:
    """Write run (study, arm, size, seed)'s training rows to `out` in format `fmt`."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format '{fmt}'; choose one of {', '.join(FORMATS)}")
    store = store or ArtifactStore()
    prepared = load_study(study_id, store)
    run = run_for(prepared, arm, size, seed)
    mixture = mixture_for(prepared, run)
    manifest = read_json(store.run_dir(run.key) / "manifest.json")
    if manifest is not None and manifest["rows"] != [[s, i] for s, i in zip(mixture.sources, mixture.indices)]:
        raise ExportError(
            f"the rows rebuilt for {run.label} differ from the ones its run trained on (the study's data changed "
            "since); submit the study again to export what it trains on now"
        )
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    task = prepared.spec.task
    if fmt == "verifiers":
        file = _write_jsonl(folder / JSONL_FILE, [_verifiers_row(task, r, s, i) for r, s, i in _provenance(mixture)])
    else:
        file = _write_parquet(
            folder / PARQUET_FILE, [dict(_hf_row(task, r), source=s, source_row=i) for r, s, i in _provenance(mixture)]
        )
    _write_card(folder, prepared, run, fmt, manifest is not None, mixture)
    return Exported(folder, file, len(mixture.rows), run, manifest is not None)


def _provenance(mixture: Mixture):
    return zip(mixture.rows, mixture.sources, mixture.indices)


def _verifiers_row(task: str, row: dict, source: str, index: int) -> dict:
    where = {"source": source, "source_row": index}
    if task == "generative":
        out = {"prompt": row["prompt"], "answer": row.get("answer_full") or row["answer"]}
        out["info"] = {**(row.get("info") or {}), **where}
        if row.get("task"):
            out["task"] = row["task"]
        return out
    kind = tasks.get(task)
    return {"prompt": kind.prompt(row), "answer": kind.completion(row).strip(), "info": {"row": row, **where}}


def _hf_row(task: str, row: dict) -> dict:
    """A row as the columns a source of its task has: a generative answer is the text trained on (the
    source's answer_extraction finds the final answer in it again)."""
    if task != "generative":
        return dict(row)
    out = {k: v for k, v in row.items() if k != "answer_full"}
    out["answer"] = row.get("answer_full") or row["answer"]
    return out


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def _write_parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    kinds = {type(r.get("prompt")) for r in rows if "prompt" in r}
    if len(kinds) > 1:
        raise ExportError(
            "this mixture's prompts mix text and chat messages, which one Parquet column cannot hold; "
            "export it with --format verifiers (JSON lines)"
        )
    for r in rows:  # info dicts differ from row to row: JSON text keeps each one as it is
        if "info" in r:
            r["info"] = json.dumps(r["info"], ensure_ascii=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(pa.Table.from_pylist(rows), tmp)
    tmp.replace(path)
    return path


def _write_card(folder: Path, prepared: PreparedStudy, run: RunSpec, fmt: str, trained: bool, mixture: Mixture) -> None:
    parts = "\n".join(f"| {p.source} | {p.used:,} | {p.available:,} | {p.repetition:g} |" for p in mixture.parts)
    file = JSONL_FILE if fmt == "verifiers" else PARQUET_FILE
    status = "its run finished; the rows match its manifest" if trained else "its run has not finished yet"
    write_text(
        folder / "README.md",
        f"""---
configs:
- config_name: default
  data_files:
  - split: train
    path: {file}
---
# Training mixture: {run.label}

Study `{prepared.spec.name}` ({prepared.study_id}), task {prepared.spec.task}, run key `{run.key}`: {status}.
Exported by the Data Curation Workbench in the `{fmt}` format; rows are in training order, and each row's
`source` and `source_row` say where it came from.

| source | rows used | rows available | repetition |
|---|---|---|---|
{parts}
""",
    )


def push_export(folder: str | Path, repo_id: str, *, private: bool = True, token: str | None = None) -> str:
    """Upload an exported folder to the Hub dataset repo `repo_id` (created if missing); its URL."""
    from huggingface_hub import HfApi

    from core.spec import hub_id_problem

    problem = hub_id_problem(repo_id)
    if problem:
        raise ExportError(f"--push: {problem}")
    api = HfApi(token=token)
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(
        repo_id=repo_id, repo_type="dataset", folder_path=str(folder), commit_message="Workbench mixture export"
    )
    return str(url)
