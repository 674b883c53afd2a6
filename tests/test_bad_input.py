"""Bad input, handed over the way users hand it over: `workbench submit SPEC` (CLI: a real
subprocess, run concurrently because a Python start costs seconds; CLI-inproc: `workers.cli.main`
in this process, for the cases whose stderr holds nothing a library could add), the dashboard's
client API (`parse_spec` / `load_spec` / `client.preview` / `client.submit` / `client.check_model`,
the catalog's add), and its upload helpers (`app.uploads`).

Every case checks four things:
(a) the input is refused with a user-facing error (SpecError, SourceError, DataError, SubmitError,
    UploadError, CatalogError; `check_model` answers ok=False with its kind; `workbench submit`
    exits 2 or 1 with one `error: ...` message on stderr and no traceback) whose message names
    what to fix (each case lists the substrings: field, column, file name, limit);
(b) nothing else was raised: any other exception fails the case as a crash;
(c) nothing was enqueued: Redis db 8 holds no `wb:*` and no `rq:*` key afterwards;
(d) nothing was written: no file appeared or changed under the temporary area, the session's
    workbench home or the case's "outside" sentinel folder (uploads that were accepted before a
    later refusal excepted), ARTIFACTS_DIR stays empty, and a zip member's escape target does not exist.

The message of every case goes to test-output/bad_input_cases.md (case | path | first line).
No case trains anything or starts a worker: a refusal comes before any of that.
"""

from __future__ import annotations

import functools
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import traceback
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from redis import Redis

from app.uploads import UploadError, check_local_path, read_spec, save_upload
from core.catalog import CatalogError, load_catalog
from core.normalize import DataError
from core.sources import SourceError
from core.spec import SpecError, load_spec, parse_spec
from tests.conftest import real_redis, redis_test_url
from tests.fake_hub import FakeHub
from tests.specs import tiny_spec
from workers import client
from workers.client import SubmitError, SubmitOptions

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = redis_test_url(8)
SESSION_HOME = Path(os.environ["WORKBENCH_HOME"])  # set by tests/conftest.py before this module loads
REPORT = PROJECT_ROOT / "test-output" / "bad_input_cases.md"
USER_ERRORS = (SpecError, SourceError, DataError, SubmitError, UploadError, CatalogError)
FAKE_TOKEN = "hf_fake_token_for_bad_input"
CLI_TIMEOUT = 180
CLI_PARALLEL = 4  # the CLI cases run as concurrent subprocesses: a Python start costs ~3 s

# case id -> (path, first line of the message), written out when the module finishes
RESULTS: dict[str, tuple[str, str]] = {}


# ---------------------------------------------------------------------------------------------
# Small data, written per case


def _csv(prefix: str, n: int) -> str:
    return "text,label\n" + "".join(f"{prefix} number {i} says hello,{'a' if i % 2 else 'b'}\n" for i in range(n))


@functools.cache
def _parquet() -> bytes:
    import pandas as pd

    buf = io.BytesIO()
    pd.DataFrame({"text": [f"parquet row {i}" for i in range(200)], "label": ["a", "b"] * 100}).to_parquet(buf)
    return buf.getvalue()


@functools.cache
def _parquet_no_rows() -> bytes:
    import pandas as pd

    buf = io.BytesIO()
    pd.DataFrame({"text": pd.Series([], dtype=str), "label": pd.Series([], dtype=str)}).to_parquet(buf)
    return buf.getvalue()


def _zip(members: list[tuple[str, bytes | str]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return buf.getvalue()


@functools.cache
def _zip_bomb() -> bytes:
    """~65 KB that inflates to 64 MiB of zeros (about 1000x)."""
    return _zip([("data.csv", b"\0" * (64 * 1024**2))])


@functools.cache
def _zip_lying() -> bytes:
    """A member whose headers declare 1,000 bytes but that inflates to 8 MiB."""
    raw = bytearray(_zip([("data.csv", b"text,label\n" + b"x,a\n" * (2 * 1024**2))]))
    small = struct.pack("<I", 1000)
    raw[22:26] = small  # local header: uncompressed size
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24 : cd + 28] = small  # central directory: uncompressed size
    return bytes(raw)


@functools.cache
def _zip_wide() -> bytes:
    """24 members of 1 MiB of zeros: each one under the ratio check, 24 MiB together."""
    return _zip([(f"part{i}.csv", b"\0" * 1024**2) for i in range(24)])


def _zip_symlink() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("data.csv")
        info.external_attr = 0o120777 << 16  # a symbolic link to /etc/passwd
        zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def _symlink(w: Work, name: str, target: str) -> str:
    """A link the user (or anyone with a shell on the server) left in an open data folder."""
    link = w.data / name
    link.symlink_to(target)
    w.inputs.append(link)
    return str(link)


def _escape(w: Work, name: str) -> str:
    """A relative member path that climbs from any extraction folder to `w.outside / name`."""
    return "../" * 40 + str((w.outside / name).relative_to("/"))


class Work:
    """One case's folders: data (its inputs), outside (a sentinel nothing may touch), artifacts, home."""

    def __init__(self, root: Path):
        self.root = root
        self.data = root / "data"
        self.outside = root / "outside"
        self.artifacts = root / "artifacts"
        self.home = root / "home"
        self.inputs: list[Path] = []  # what the user wrote: excluded from "nothing was written"
        self.data.mkdir(parents=True)
        self.outside.mkdir()
        (self.outside / "sentinel.txt").write_text("nothing may be written next to me\n")
        self.write("d0.csv", _csv("base note", 60))
        self.write("bench.csv", _csv("benchmark question", 20))
        self.write("cand.csv", _csv("candidate remark", 60))

    def write(self, name: str, content: bytes | str) -> str:
        path = self.data / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        self.inputs.append(path)
        return str(path)

    def spec(self, **over: Any) -> dict:
        data = {
            "name": "bad input",
            "model": "builtin:tiny-lm",
            "task": "classification",
            "d0": {"path": str(self.data / "d0.csv"), "name": "d0"},
            "benchmark": {"path": str(self.data / "bench.csv"), "name": "bench"},
            "candidates": [{"path": str(self.data / "cand.csv"), "name": "cand"}],
            "sizes": [20, 40],
            "seeds": [0],
            "target_size": 400,
            "training": {"method": "full", "min_steps": 4, "max_seq_length": 64},
        }
        data.update(over)
        return data

    def spec_file(self, content: dict | str | bytes, name: str = "spec.yaml") -> str:
        if isinstance(content, dict):
            content = yaml.safe_dump(content, sort_keys=False)
        return self.write(name, content)

    @property
    def uploads(self) -> Path:
        return self.home / "uploads"


@dataclass
class Ctx:
    w: Work
    redis: Redis | None = None
    monkeypatch: pytest.MonkeyPatch | None = None


# ---------------------------------------------------------------------------------------------
# What a user does


def submit(c: Ctx, **over) -> str:
    """The dashboard's Run button: the form's fields -> parse_spec -> client.submit."""
    return client.submit(c.redis, parse_spec(c.w.spec(**over)))


def preview(c: Ctx, **over) -> dict:
    """The dashboard's Validate & preview button."""
    return client.preview(parse_spec(c.w.spec(**over)))


def cli(c: Ctx, **over) -> list[str]:
    """`workbench submit <spec.yaml>`: the arguments after `submit`."""
    return [c.w.spec_file(c.w.spec(**over))]


def _model_folder(c: Ctx, name: str, architectures: list[str], model_type: str, **config) -> str:
    """A model folder with only its config.json: the kind check reads nothing else."""
    (c.w.data / name).mkdir(exist_ok=True)
    body = {"architectures": architectures, "model_type": model_type, **config}
    return str(Path(c.w.write(f"{name}/config.json", json.dumps(body))).parent)


def _generative_columns(c: Ctx) -> dict:
    """The classification files read as prompt -> answer (valid generative data)."""
    columns = {"columns": {"prompt": "text", "answer": "label"}}
    spec = c.w.spec()
    return {
        "d0": {**spec["d0"], **columns},
        "benchmark": {**spec["benchmark"], **columns},
        "candidates": [{**spec["candidates"][0], **columns}],
    }


def upload(name: str, data) -> Any:
    return save_upload(name, data)


def upload_then_submit(c: Ctx, name: str, data: bytes) -> str:
    """Upload a file (accepted), then use it as D0 and press Run."""
    up = save_upload(name, data)
    return submit(c, d0={"path": str(up.path), "name": "d0"})


def add_to_catalog(c: Ctx, entry: dict) -> None:
    """The Catalog page's "Add entry": validate, add, save (to a copy of the shipped catalog)."""
    copy = c.w.write("candidates.json", (PROJECT_ROOT / "catalog" / "candidates.json").read_bytes())
    c.monkeypatch.setenv("WORKBENCH_CATALOG", copy)
    cat = load_catalog()
    cat.add(entry)
    cat.save()


def with_fake_hub(c: Ctx, model: str, state: str) -> dict:
    """The Setup page's "Check model" button against a Hub (the fake one at HF_ENDPOINT)."""
    import huggingface_hub.constants as hub_constants

    c.monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    c.monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    with FakeHub(token=FAKE_TOKEN) as hub:
        hub.mark_model(model, state)
        c.monkeypatch.setenv("HF_ENDPOINT", hub.url)
        return client.check_model(model, timeout=10)


EVERY_FIELD_WRONG = {
    "name": "",
    "model": "a/b/c",
    "task": "translation",
    "d0": {},
    "candidates": [],
    "sizes": [0, -3, 0],
    "seeds": [1, 1],
    "target_size": "huge",
    "training": {"epochs": -1, "learning_rate": 5, "method": "magic"},
}
EVERY_FIELD = (
    "  - name:",
    "  - model:",
    "  - task:",
    "  - d0:",
    "  - candidates:",
    "  - sizes:",
    "  - seeds:",
    "  - target_size:",
    "  - training.epochs:",
    "  - training.learning_rate:",
    "  - training.method:",
)


# ---------------------------------------------------------------------------------------------
# The cases

API, CLI, CLI_IN, UPLOAD = "API", "CLI", "CLI-inproc", "upload"  # CLI: a subprocess; CLI-inproc: workers.cli.main()


@dataclass(frozen=True)
class Case:
    id: str
    path: str  # CLI | CLI-inproc | API | upload
    act: Callable  # API/upload: act(ctx) does what the user does; CLI: act(ctx) -> arguments after `submit`
    expect: tuple[str, ...]  # what the message must name
    errors: tuple[type, ...] = USER_ERRORS  # API/upload: the error types that count as a clear refusal
    kind: str | None = None  # check_model: the kind of refusal
    rc: int = 2  # CLI: the exit code
    env: dict = field(default_factory=dict)  # extra environment ("{hub}" is the fake Hub's URL)
    demo: bool = False  # uses the demo catalog (the session's workbench home)
    absent: Callable[[Work], list[Path]] | None = None  # paths that must not exist afterwards
    allow_new: Callable[[Work], list[Path]] | None = None  # folders the user's accepted steps may write to
    forbid: tuple[str, ...] = ()  # must not appear in the message (a token, a terminal escape)


def C(id, path, act, expect, errors=USER_ERRORS, **kw) -> Case:
    return Case(
        id,
        path,
        act,
        tuple([expect] if isinstance(expect, str) else expect),
        tuple([errors] if isinstance(errors, type) else errors),
        **kw,
    )


_uploads = lambda w: [w.uploads]  # noqa: E731

CASES = [
    # -- malformed files: parquet, csv, jsonl, json
    C(
        "parquet-truncated",
        API,
        lambda c: submit(c, d0={"path": c.w.write("trunc.parquet", _parquet()[: len(_parquet()) // 2])}),
        ("'trunc.parquet'", "not a readable Parquet file", "truncated upload"),
        SourceError,
    ),
    C(
        "parquet-garbage",
        CLI,
        lambda c: cli(c, d0={"path": c.w.write("garbage.parquet", os.urandom(4096))}),
        ("'garbage.parquet'", "Parquet"),
    ),
    C(
        "parquet-garbage-upload",
        UPLOAD,
        lambda c: upload("garbage.parquet", os.urandom(4096)),
        ("'garbage.parquet'", "not a readable Parquet file"),
        UploadError,
    ),
    C(
        "parquet-truncated-upload",
        UPLOAD,
        lambda c: upload("trunc.parquet", _parquet()[:-100]),
        ("'trunc.parquet'", "truncated upload"),
        UploadError,
    ),
    C(
        "parquet-no-rows-preview",
        API,
        lambda c: preview(c, d0={"path": c.w.write("zero.parquet", _parquet_no_rows())}),
        ("'zero.parquet'", "no rows"),
        SourceError,
    ),
    C(
        "csv-ragged-rows",
        API,
        lambda c: submit(
            c, candidates=[{"path": c.w.write("ragged.csv", "text,label\nhello,a\nfoo,b,extra,more\n"), "name": "cand"}]
        ),
        ("'ragged.csv'", "Expected 2 fields in line 3", "same number of fields"),
        SourceError,
    ),
    C(
        "csv-ragged-rows",
        CLI,
        lambda c: cli(c, d0={"path": c.w.write("ragged.csv", "text,label\nhello,a\nfoo,b,extra,more\n")}),
        ("'ragged.csv'", "same number of fields"),
    ),
    C(
        "csv-unclosed-quote",
        API,
        lambda c: preview(c, d0={"path": c.w.write("quote.csv", 'text,label\n"hello,a\nfoo,b\n')}),
        ("'quote.csv'", "quoting"),
        SourceError,
    ),
    C(
        "csv-short-row-no-label",
        API,
        lambda c: submit(c, d0={"path": c.w.write("short.csv", "text,label\nhello,a\nbare row\nbye,b\n")}),
        ("row 1", "label column 'label' is missing"),
        DataError,
    ),
    C(
        "jsonl-broken-line",
        API,
        lambda c: submit(
            c,
            d0={
                "path": c.w.write(
                    "broken.jsonl", '{"text":"a","label":"a"}\n{"text": "b", "label"\n{"text":"c","label":"b"}\n'
                )
            },
        ),
        ("'broken.jsonl'", "one JSON object per line"),
        SourceError,
    ),
    C(
        "jsonl-broken-line",
        CLI,
        lambda c: cli(
            c,
            candidates=[
                {"path": c.w.write("broken.jsonl", '{"text":"a","label":"a"}\n{"text": "b"\n'), "name": "cand"}
            ],
        ),
        ("'broken.jsonl'", "could not be parsed"),
    ),
    C(
        "json-scalar",
        API,
        lambda c: preview(c, d0={"path": c.w.write("num.json", "42")}),
        ("'num.json'", "list of objects"),
        SourceError,
    ),
    # -- wrong or missing columns
    C(
        "column-text-absent",
        API,
        lambda c: submit(c, d0={"path": c.w.write("body.csv", "body,label\nhi,a\nho,b\n")}),
        ("no column for field 'text'", "['body', 'label']", "columns: {text: <column>}"),
        DataError,
    ),
    C(
        "column-label-absent",
        CLI_IN,
        lambda c: cli(c, d0={"path": c.w.write("tag.csv", "text,tag\nhi,a\nho,b\n")}),
        ("no column for field 'label'", "['text', 'tag']"),
    ),
    C(
        "columns-names-missing-column",
        API,
        lambda c: submit(
            c,
            candidates=[
                {"path": c.w.spec()["candidates"][0]["path"], "name": "cand", "columns": {"text": "body_text"}}
            ],
        ),
        ("cand:", "'body_text', which is not a column", "['text', 'label']"),
        DataError,
    ),
    C(
        "columns-unknown-field",
        API,
        lambda c: preview(c, d0={"path": c.w.spec()["d0"]["path"], "columns": {"texte": "text"}}),
        ("unknown field(s) ['texte']", "['text', 'label']"),
        DataError,
    ),
    C(
        "qa-context-absent",
        API,
        lambda c: submit(c, task="qa", d0={"path": c.w.write("qa.jsonl", '{"question":"q?","answers":"a"}\n')}),
        ("no column for field 'context'", "generative"),
        DataError,
    ),
    # -- labels
    C(
        "labels-mixed-int-and-str",
        API,
        lambda c: submit(
            c, d0={"path": c.w.write("mixed.jsonl", '{"text":"x","label":1}\n{"text":"y","label":"a"}\n')}
        ),
        ("label column 'label' mixes types", "number 1", "string 'a'"),
        DataError,
    ),
    C(
        "labels-mixed-int-and-str",
        CLI_IN,
        lambda c: cli(
            c,
            candidates=[
                {"path": c.w.write("mixed.jsonl", '{"text":"x","label":0}\n{"text":"y","label":"b"}\n'), "name": "cand"}
            ],
        ),
        ("mixes types", "label_names"),
    ),
    C(
        "labels-outside-benchmark-set",
        API,
        lambda c: client.submit(
            c.redis,
            tiny_spec(
                candidates=[
                    {
                        "path": c.w.write("weather.csv", "text,label\nis it raining,weather\nsunny days,weather\n"),
                        "name": "weather",
                    }
                ]
            ),
        ),
        ("weather:", "outside the study's label set", "'weather'", "label_map"),
        DataError,
        demo=True,
    ),
    C(
        "labels-outside-benchmark-set",
        CLI_IN,
        lambda c: cli(c, candidates=[{"path": c.w.write("zz.csv", "text,label\nfoo,zzz\n"), "name": "cand"}]),
        ("outside the study's label set", "'zzz'"),
    ),
    C(
        "labels-none",
        API,
        lambda c: submit(
            c, d0={"path": c.w.write("none.jsonl", '{"text":"x","label":"a"}\n{"text":"y","label":null}\n')}
        ),
        ("row 1", "label column 'label' is missing"),
        DataError,
    ),
    C(
        "labels-int-without-name",
        API,
        lambda c: preview(c, d0={"path": c.w.write("seven.csv", "text,label\nx,7\ny,0\n"), "label_names": ["a", "b"]}),
        ("integer label 7", "label_names has 2"),
        DataError,
    ),
    C(
        "labels-list-value",
        API,
        lambda c: submit(c, d0={"path": c.w.write("listy.jsonl", '{"text":"x","label":[1,2]}\n')}),
        ("row 0", "column 'label'", "holds a list"),
        DataError,
    ),
    # -- empty files
    C(
        "csv-zero-bytes",
        API,
        lambda c: submit(c, d0={"path": c.w.write("empty.csv", b"")}),
        ("'empty.csv' is empty",),
        SourceError,
    ),
    C(
        "csv-header-only",
        CLI_IN,
        lambda c: cli(c, d0={"path": c.w.write("header.csv", "text,label\n")}),
        ("'header.csv' has no rows",),
    ),
    C(
        "jsonl-only-whitespace",
        API,
        lambda c: preview(c, d0={"path": c.w.write("blank.jsonl", "\n \n\n")}),
        ("'blank.jsonl' is empty",),
        SourceError,
    ),
    C(
        "parquet-zero-bytes",
        API,
        lambda c: submit(c, benchmark={"path": c.w.write("empty.parquet", b"")}),
        ("'empty.parquet' is empty",),
        SourceError,
    ),
    C("upload-zero-bytes", UPLOAD, lambda c: upload("empty.csv", b""), ("'empty.csv' is empty",), UploadError),
    C(
        "upload-header-only-then-submit",
        UPLOAD,
        lambda c: upload_then_submit(c, "header.csv", b"text,label\n"),
        ("'header.csv' has no rows",),
        SourceError,
        allow_new=_uploads,
    ),
    # -- oversize uploads (WORKBENCH_UPLOAD_MAX_MB=1)
    C(
        "upload-2mb-over-1mb-cap",
        UPLOAD,
        lambda c: upload("big.csv", b"text,label\n" + b"x,a\n" * (2 * 1024**2 // 4)),
        ("'big.csv'", "1 MB upload limit", "WORKBENCH_UPLOAD_MAX_MB"),
        UploadError,
        env={"WORKBENCH_UPLOAD_MAX_MB": "1"},
    ),
    C(
        "upload-2mb-stream-over-1mb-cap",
        UPLOAD,
        lambda c: upload("big.jsonl", io.BytesIO(b'{"text":"x","label":"a"}\n' * 90_000)),
        ("'big.jsonl'", "1 MB upload limit"),
        UploadError,
        env={"WORKBENCH_UPLOAD_MAX_MB": "1"},
    ),
    C(
        "upload-zip-expands-over-cap",
        UPLOAD,
        lambda c: upload("wide.zip", _zip_wide()),
        ("'wide.zip' expands to 24 MiB", "10 MiB limit"),
        UploadError,
        env={"WORKBENCH_UPLOAD_MAX_MB": "1"},
    ),
    # -- text that is not UTF-8
    C(
        "csv-latin1",
        API,
        lambda c: submit(c, d0={"path": c.w.write("latin.csv", "text,label\ncafé crème,a\n".encode("latin-1"))}),
        ("'latin.csv' is not UTF-8", "byte 0xe9", "iconv"),
        SourceError,
    ),
    C(
        "jsonl-utf16",
        CLI_IN,
        lambda c: cli(c, d0={"path": c.w.write("u16.jsonl", '{"text":"x","label":"a"}\n'.encode("utf-16"))}),
        ("'u16.jsonl' is not UTF-8", "byte 0xff"),
    ),
    C(
        "jsonl-latin1",
        API,
        lambda c: preview(
            c,
            candidates=[
                {"path": c.w.write("latin.jsonl", '{"text":"naïve","label":"a"}\n'.encode("latin-1")), "name": "cand"}
            ],
        ),
        ("'latin.jsonl' is not UTF-8",),
        SourceError,
    ),
    C(
        "upload-csv-latin1",
        UPLOAD,
        lambda c: upload("latin.csv", "text,label\ncafé,a\n".encode("latin-1")),
        ("'latin.csv' is not UTF-8", "byte 0xe9"),
        UploadError,
    ),
    C(
        "upload-jsonl-utf16",
        UPLOAD,
        lambda c: upload("u16.jsonl", '{"text":"x","label":"a"}\n'.encode("utf-16")),
        ("'u16.jsonl' is not UTF-8", "byte 0xff"),
        UploadError,
    ),
    C(
        "upload-zip-member-latin1",
        UPLOAD,
        lambda c: upload("latin.zip", _zip([("data.csv", "text,label\ncafé,a\n".encode("latin-1"))])),
        ("'latin.zip:data.csv' is not UTF-8",),
        UploadError,
    ),
    C(
        "spec-file-latin1",
        CLI,
        lambda c: [c.w.spec_file("name: caf\xe9\n".encode("latin-1"))],
        ("spec.yaml: not UTF-8", "byte 0xe9"),
    ),
    C(
        "spec-file-utf16",
        API,
        lambda c: load_spec(c.w.spec_file(yaml.safe_dump(c.w.spec()).encode("utf-16"))),
        ("spec.yaml: not UTF-8",),
        SpecError,
    ),
    C(
        "spec-upload-latin1",
        UPLOAD,
        lambda c: read_spec("name: caf\xe9\n".encode("latin-1"), "study.yaml"),
        ("study.yaml: not UTF-8",),
        SpecError,
    ),
    # -- zips: traversal, absolute paths, links, bombs
    C(
        "zip-traversal-upload",
        UPLOAD,
        lambda c: upload(
            "evil.zip", _zip([("../evil.csv", "text,label\nx,a\n"), (_escape(c.w, "evil.csv"), "text,label\nx,a\n")])
        ),
        ("'evil.zip'", "unsafe path '../evil.csv'"),
        UploadError,
        absent=lambda w: [w.outside / "evil.csv", w.uploads / "evil.csv", w.home / "evil.csv"],
    ),
    C(
        "zip-absolute-upload",
        UPLOAD,
        lambda c: upload("abs.zip", _zip([("/tmp/x", "text,label\nx,a\n")])),
        ("'abs.zip'", "unsafe path '/tmp/x'"),
        UploadError,
    ),
    C(
        "zip-absolute-submit",
        API,
        lambda c: submit(
            c, d0={"path": c.w.write("abs.zip", _zip([(str(c.w.outside / "x.csv"), "text,label\nx,a\n")]))}
        ),
        ("'abs.zip'", "unsafe path", "absolute or with '..'"),
        SourceError,
        absent=lambda w: [w.outside / "x.csv"],
    ),
    C(
        "zip-traversal-submit",
        API,
        lambda c: preview(
            c, d0={"path": c.w.write("evil.zip", _zip([(_escape(c.w, "evil.csv"), "text,label\nx,a\n")]))}
        ),
        ("'evil.zip'", "unsafe path"),
        SourceError,
        absent=lambda w: [w.outside / "evil.csv"],
    ),
    C(
        "zip-traversal",
        CLI,
        lambda c: cli(
            c,
            candidates=[
                {
                    "path": c.w.write(
                        "evil.zip",
                        _zip([("../evil.csv", "text,label\nx,a\n"), (_escape(c.w, "evil.csv"), "text,label\nx,a\n")]),
                    ),
                    "name": "cand",
                }
            ],
        ),
        ("'evil.zip'", "unsafe path '../evil.csv'"),
        absent=lambda w: [w.outside / "evil.csv", w.data / "evil.csv"],
    ),
    C(
        "zip-member-name-with-terminal-escapes",
        UPLOAD,
        lambda c: upload("ansi.zip", _zip([("../\x1b[2J\x1b[31mevil.csv", "text,label\nx,a\n")])),
        ("'ansi.zip'", "unsafe path '../?[2J?[31mevil.csv'"),
        UploadError,
        forbid=("\x1b",),
    ),
    C(
        "zip-without-data-file-terminal-escapes",
        API,
        lambda c: submit(c, d0={"path": c.w.write("notes.zip", _zip([("\x1b[31mnotes.txt", "hello")]))}),
        ("'notes.zip' holds no", "found: ?[31mnotes.txt"),
        SourceError,
        forbid=("\x1b",),
    ),
    C(
        "zip-symlink-upload",
        UPLOAD,
        lambda c: upload("link.zip", _zip_symlink()),
        ("'link.zip'", "symbolic link 'data.csv'"),
        UploadError,
    ),
    C(
        "zip-bomb-upload",
        UPLOAD,
        lambda c: upload("bomb.zip", _zip_bomb()),
        ("'bomb.zip' looks like a zip bomb", "'data.csv'", "limit 100x"),
        UploadError,
    ),
    C(
        "zip-bomb-submit",
        API,
        lambda c: submit(c, d0={"path": c.w.write("bomb.zip", _zip_bomb())}),
        ("'bomb.zip' looks like a zip bomb",),
        SourceError,
    ),
    C(
        "zip-bomb",
        CLI_IN,
        lambda c: cli(c, benchmark={"path": c.w.write("bomb.zip", _zip_bomb())}),
        ("'bomb.zip' looks like a zip bomb",),
    ),
    C(
        "zip-lying-header-upload",
        UPLOAD,
        lambda c: upload("lying.zip", _zip_lying()),
        ("cannot extract 'data.csv' from 'lying.zip'", "re-create the archive"),
        UploadError,
    ),
    C(
        "zip-not-a-zip-upload",
        UPLOAD,
        lambda c: upload("fake.zip", os.urandom(2048)),
        ("'fake.zip' is not a valid zip file",),
        UploadError,
    ),
    C(
        "zip-without-data-file-upload",
        UPLOAD,
        lambda c: upload("notes.zip", _zip([("readme.txt", "hello")])),
        ("'notes.zip' holds no", "found: readme.txt"),
        UploadError,
    ),
    C(
        "upload-unsupported-extension",
        UPLOAD,
        lambda c: upload("../../tool.exe", b"MZ\x90\x00"),
        ("tool.exe", "not a supported file"),
        UploadError,
    ),
    C(
        "local-path-outside-data-dirs",
        UPLOAD,
        lambda c: check_local_path("/etc/passwd"),
        ("'/etc/passwd' is outside the folders", "WORKBENCH_DATA_DIRS"),
        UploadError,
    ),
    C(
        "local-path-symlink-out-of-data-dir",
        UPLOAD,
        lambda c: check_local_path(_symlink(c.w, "passwd.csv", "/etc/passwd")),
        ("passwd.csv' is outside the folders",),
        UploadError,
    ),
    C(
        "local-path-traversal",
        UPLOAD,
        lambda c: check_local_path("../../../etc/passwd"),
        ("'../../../etc/passwd' is outside the folders",),
        UploadError,
    ),
    # -- Hub ids
    C(
        "hub-id-three-parts",
        API,
        lambda c: submit(c, d0={"hub_id": "a/b/c"}),
        ("d0.hub_id: 'a/b/c' is not a Hub dataset id", "owner/name"),
        SpecError,
    ),
    C(
        "hub-id-dotdot",
        CLI_IN,
        lambda c: cli(c, benchmark={"hub_id": "../x", "split": "test"}),
        ("benchmark.hub_id: '../x' is not a Hub dataset id",),
    ),
    C(
        "hub-id-spaces",
        API,
        lambda c: preview(c, candidates=[{"hub_id": "my org/my data"}]),
        ("candidates.0.hub_id: 'my org/my data' is not a Hub dataset id",),
        SpecError,
    ),
    C(
        "hub-id-unreachable-offline",
        API,
        lambda c: submit(c, d0={"hub_id": "someone/nonexistent-data"}),
        ("someone/nonexistent-data", "offline mode is on", "HF_HUB_OFFLINE=1", "local folder as 'path'"),
        SourceError,
    ),
    C(
        "hub-id-unknown-on-hub",
        CLI,
        lambda c: cli(c, d0={"hub_id": "org/private-set"}),
        ("'org/private-set' was not found or cannot be accessed", "HF_TOKEN"),
        env={"HF_ENDPOINT": "{hub}", "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "HF_TOKEN": FAKE_TOKEN},
        forbid=(FAKE_TOKEN,),
    ),
    C(
        "catalog-entry-hub-id-dotdot",
        API,
        lambda c: add_to_catalog(
            c, {"id": "mine/evil", "hub_id": "../../etc", "task": "classification", "license": "mit"}
        ),
        ("hub_id: '../../etc' is not a Hub dataset id",),
        CatalogError,
    ),
    C(
        "model-three-parts",
        API,
        lambda c: submit(c, model="a/b/c"),
        ("model: 'a/b/c' is not a Hub model id", "owner/name"),
        SpecError,
    ),
    C(
        "model-dotdot",
        CLI_IN,
        lambda c: cli(c, model="../x"),
        ("model: '../x' is a path, but there is no such folder here",),
    ),
    C(
        "model-spaces",
        API,
        lambda c: preview(c, model="my model"),
        ("model: 'my model' is not a Hub model id",),
        SpecError,
    ),
    C(
        "model-unknown-builtin",
        API,
        lambda c: submit(c, model="builtin:huge"),
        ("unknown built-in model 'builtin:huge'", "builtin:tiny-lm"),
        SpecError,
    ),
    C(
        "model-encoder-for-generative",
        API,
        lambda c: submit(c, model="builtin:minilm", task="generative", metrics=None, **_generative_columns(c)),
        ("model: 'builtin:minilm' is an encoder", "only be trained for classification", "causal LM"),
        SpecError,
    ),
    C(
        "model-folder-neither-kind",
        CLI_IN,
        lambda c: cli(c, model=_model_folder(c, "t5", ["T5ForConditionalGeneration"], "t5", is_encoder_decoder=True)),
        ("is neither a causal LM", "T5ForConditionalGeneration", "an encoder for classification"),
    ),
    C(
        "model-head-with-other-labels",
        API,
        lambda c: submit(
            c,
            model=_model_folder(
                c, "sentiment", ["BertForSequenceClassification"], "bert", id2label={"0": "neg", "1": "pos"}
            ),
        ),
        ("classifier head for the labels ['neg', 'pos']", "give the base model", "label_map"),
        SpecError,
    ),
    C(
        "lora-on-the-random-init-model",
        API,
        lambda c: submit(c, training={"method": "lora"}),
        ("training.method: 'lora' cannot train builtin:tiny-lm", "use method 'full'", "builtin:minilm"),
        SpecError,
    ),
    C(
        "check-model-malformed",
        API,
        lambda c: client.check_model("a/b/c"),
        ("'a/b/c' is not a valid Hub model id",),
        kind="invalid",
    ),
    C(
        "check-model-offline",
        API,
        lambda c: client.check_model("someone/some-model"),
        ("'someone/some-model' was not checked", "HF_HUB_OFFLINE=1"),
        kind="unreachable",
    ),
    C(
        "check-model-gated",
        API,
        lambda c: with_fake_hub(c, "org/gated-model", "gated"),
        ("'org/gated-model' is gated", "request access", "HF_TOKEN"),
        kind="gated",
        forbid=(FAKE_TOKEN,),
    ),
    C(
        "check-model-missing",
        API,
        lambda c: with_fake_hub(c, "org/no-such-model", "missing"),
        ("'org/no-such-model' was not found on the Hub",),
        kind="missing",
        forbid=(FAKE_TOKEN,),
    ),
    # -- specs with every field wrong, and broken spec files
    C("spec-every-field-wrong", API, lambda c: parse_spec(EVERY_FIELD_WRONG), EVERY_FIELD, SpecError),
    C("spec-every-field-wrong", CLI, lambda c: [c.w.spec_file(EVERY_FIELD_WRONG)], EVERY_FIELD),
    C(
        "spec-every-field-wrong-upload",
        UPLOAD,
        lambda c: read_spec(yaml.safe_dump(EVERY_FIELD_WRONG), "study.yaml"),
        EVERY_FIELD,
        SpecError,
    ),
    C(
        "spec-not-a-mapping",
        CLI_IN,
        lambda c: [c.w.spec_file("- name: x\n- model: y\n")],
        ("spec: expected a mapping of fields, got list",),
    ),
    C(
        "spec-invalid-yaml",
        CLI,
        lambda c: [c.w.spec_file("name: [unclosed\nmodel: x\n")],
        ("spec.yaml: not valid YAML",),
    ),
    C("spec-file-missing", CLI_IN, lambda c: [str(c.w.data / "nope.yaml")], ("nope.yaml' does not exist",)),
    C(
        "spec-file-too-large",
        CLI_IN,
        lambda c: [c.w.spec_file("# padding\n" * 200_000 + yaml.safe_dump(c.w.spec()))],
        ("spec.yaml: 2,000,", "too large for a study spec"),
    ),
    C(
        "spec-yaml-alias-bomb",
        CLI_IN,
        lambda c: [
            c.w.spec_file(
                "\n".join(
                    ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
                    + [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
                )
                + "\n"
                + yaml.safe_dump(c.w.spec(training={"method": "full"})).replace(
                    "method: full", "method: full\n  lora_target_modules: *a8"
                )
            )
        ],
        ("training.lora_target_modules", "a0: unknown field"),
    ),
    C(
        "spec-unknown-field",
        API,
        lambda c: parse_spec(c.w.spec(trainig={"epochs": 1})),
        ("trainig: unknown field",),
        SpecError,
    ),
    # -- absurd sizes and counts
    C(
        "sizes-zero",
        API,
        lambda c: submit(c, sizes=[0, 20]),
        ("sizes: sizes must be between 1 and 10,000,000", "[0]"),
        SpecError,
    ),
    C("sizes-negative", CLI_IN, lambda c: cli(c, sizes=[-5, 20]), ("sizes: sizes must be between 1", "[-5]")),
    C(
        "sizes-10e12",
        API,
        lambda c: preview(c, sizes=[20, 10**12], target_size=10**12),
        ("sizes: sizes must be between 1 and 10,000,000", "[1000000000000]"),
        SpecError,
    ),
    C("sizes-empty", API, lambda c: submit(c, sizes=[]), ("sizes: List should have at least 1 item",), SpecError),
    C(
        "sizes-not-numbers",
        API,
        lambda c: submit(c, sizes=["1k", 20]),
        ("sizes.0: Input should be a valid integer",),
        SpecError,
    ),
    C("sizes-duplicated", API, lambda c: submit(c, sizes=[20, 40, 20]), ("sizes: sizes must be distinct",), SpecError),
    C(
        "sizes-too-many",
        API,
        lambda c: submit(c, sizes=list(range(1, 202)), target_size=1000),
        ("sizes: 201 sizes is too many", "at most 50"),
        SpecError,
    ),
    C(
        "sizes-larger-than-data",
        API,
        lambda c: submit(c, sizes=[20, 100_000], target_size=10**6),
        ("sizes: the largest size 100,000", "'d0', which has 60", "repetition", "lower 'sizes'"),
        DataError,
    ),
    C(
        "sizes-larger-than-demo-data",
        API,
        lambda c: client.submit(c.redis, tiny_spec(sizes=[40, 10**6], target_size=10**7)),
        ("sizes: the largest size 1,000,000", "which has 300"),
        DataError,
        demo=True,
    ),
    C(
        "sizes-larger-than-candidate",
        CLI_IN,
        lambda c: cli(
            c,
            d0={"path": c.w.write("big_d0.csv", _csv("wide base", 3000)), "name": "d0"},
            candidates=[{"path": c.w.write("tiny.csv", _csv("tiny cand", 4)), "name": "tiny"}],
            sizes=[500, 2000],
            target_size=10_000,
        ),
        ("needs 1,400 rows of candidate 'tiny', which has 4", "repetition"),
    ),
    C(
        "target-smaller-than-sizes",
        API,
        lambda c: submit(c, target_size=30),
        ("target_size: 30 must be at least the largest size (40)",),
        SpecError,
    ),
    C("target-size-zero", API, lambda c: submit(c, target_size=0), ("target_size: must be between 1 and",), SpecError),
    C("target-size-negative", CLI_IN, lambda c: cli(c, target_size=-1000), ("target_size: must be between 1 and",)),
    C(
        "target-size-10e12",
        API,
        lambda c: submit(c, target_size=10**12),
        ("target_size: must be between 1 and 10,000,000,000",),
        SpecError,
    ),
    C(
        "seeds-a-million",
        API,
        lambda c: submit(c, seeds=list(range(10**6))),
        ("seeds: 1,000,000 seeds is too many", "at most 1000"),
        SpecError,
    ),
    C(
        "seeds-too-many",
        CLI_IN,
        lambda c: cli(c, seeds=list(range(1500))),
        ("seeds: 1,500 seeds is too many", "at most 1000"),
    ),
    C(
        "seeds-a-million-in-a-file",
        CLI_IN,
        lambda c: [
            c.w.spec_file(
                yaml.safe_dump(c.w.spec()) + "seeds: [" + ",".join(map(str, range(10**6))) + "]\n", name="seeds.yaml"
            )
        ],
        ("seeds.yaml: ", "bytes is too large for a study spec"),
    ),
    C("seeds-negative", API, lambda c: submit(c, seeds=[0, -1]), ("seeds: seeds must be between 0",), SpecError),
    C(
        "runs-over-the-limit",
        API,
        lambda c: submit(
            c,
            sizes=list(range(10, 510, 10)),
            seeds=list(range(200)),
            target_size=10**4,
            candidates=[{"path": c.w.spec()["candidates"][0]["path"], "name": n} for n in ("c1", "c2")],
        ),
        ("sizes:", "= 30,000 runs, above the limit of 20,000"),
        SpecError,
    ),
    C(
        "d0-share-above-one",
        API,
        lambda c: submit(c, d0_share=1.5),
        ("d0_share: Input should be less than or equal to 1",),
        SpecError,
    ),
    C(
        "max-rows-zero",
        API,
        lambda c: submit(c, candidates=[{"path": c.w.spec()["candidates"][0]["path"], "name": "cand", "max_rows": 0}]),
        ("candidates.0.max_rows: Input should be greater than 0",),
        SpecError,
    ),
    C(
        "benchmark-holdout-larger-than-d0",
        API,
        lambda c: submit(c, benchmark=None, benchmark_holdout=500),
        ("benchmark_holdout (500) must be smaller than D0's 60 rows",),
        DataError,
    ),
    C(
        "submit-unknown-backend",
        API,
        lambda c: client.submit(c.redis, parse_spec(c.w.spec()), SubmitOptions(backend="cloud")),
        ("backend 'cloud' is unknown", "hf_jobs"),
        SubmitError,
    ),
    C(
        "submit-hf-flavor-unknown",
        API,
        lambda c: client.submit(
            c.redis, parse_spec(c.w.spec()), SubmitOptions(backend="hf_jobs", backend_options={"hf_flavor": "h100"})
        ),
        ("flavor 'h100' is unknown", "a10g-small"),
        SubmitError,
    ),
    C(
        "submit-hf-timeout-not-a-duration",
        CLI_IN,
        lambda c: [*cli(c), "--backend", "hf_jobs", "--hf-timeout", "soon"],
        ("timeout 'soon' is not valid", "30m, 2h or 1d"),
        rc=1,
    ),
    C(
        "submit-option-of-another-backend",
        API,
        lambda c: client.submit(
            c.redis, parse_spec(c.w.spec()), SubmitOptions(backend_options={"hf_flavor": "t4-small"})
        ),
        ("backend 'local' takes no option 'hf_flavor'",),
        SubmitError,
    ),
]
assert len({_id for _id in (f"{c.path}:{c.id}" for c in CASES)}) == len(CASES), "duplicate case ids"


def _case_id(case: Case) -> str:
    return f"{case.path}:{case.id}"


# ---------------------------------------------------------------------------------------------
# Checks


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under `roots` with its size and mtime, to compare before and after a case."""
    out: dict[str, tuple[int, int]] = {}
    for root in roots:
        if not root.exists():
            continue
        for dirpath, _dirs, files in os.walk(root):
            for f in files:
                p = os.path.join(dirpath, f)
                try:
                    st = os.lstat(p)
                except FileNotFoundError:
                    continue
                out[p] = (st.st_size, st.st_mtime_ns)
    return out


def _changed(before: dict, after: dict, allowed: list[Path]) -> list[str]:
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    return [p for p in changed if not any(Path(p).is_relative_to(a) for a in allowed)]


# Where a member named "/tmp/x" or "../evil.csv" would land when a zip given as a source is
# extracted into a temporary folder under /tmp: each must be as it was before the case.
ESCAPE_TARGETS = ("/tmp/x", "/tmp/evil.csv", "/tmp/x.csv", str(Path(tempfile.gettempdir()) / "evil.csv"))


def _escape_targets() -> list:
    return [_stat(p) for p in ESCAPE_TARGETS]


def _stat(path: str):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return (st.st_size, st.st_mtime_ns)


def _queue_keys(redis: Redis) -> list[str]:
    return sorted(k.decode() for pattern in ("wb:*", "rq:*") for k in redis.keys(pattern))


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    first = lines[0]
    if first.endswith(":") and len(lines) > 1:  # "invalid study spec:" then one problem per line
        first += " " + lines[1] + (f" (+{len(lines) - 2} more)" if len(lines) > 2 else "")
    return first


def _check_message(case: Case, message: str) -> None:
    assert message.strip(), f"{case.id}: empty message"
    for needle in case.expect:
        assert needle in message, f"{case.id}: {needle!r} is not in the message:\n{message}"
    assert "Traceback" not in message, message
    for bad in case.forbid:
        assert bad not in message, f"{case.id}: {bad!r} is in the message:\n{message!r}"


def _check_nothing_written(case: Case, w: Work, changed: list[str]) -> None:
    assert not changed, f"{case.id}: files written or changed by a refused input: {changed[:20]}"
    leftovers = [str(p) for p in w.artifacts.rglob("*")] if w.artifacts.exists() else []
    assert not leftovers, f"{case.id}: ARTIFACTS_DIR is not empty after a refusal: {leftovers[:20]}"
    for path in case.absent(w) if case.absent else []:
        assert not path.exists(), f"{case.id}: {path} was written"
    assert sorted(p.name for p in w.outside.iterdir()) == ["sentinel.txt"]


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture
def redis():
    """Redis db 8, flushed before and after each test (the real server; never a mock)."""
    yield from real_redis(REDIS_URL)


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Bad input: what each case is told",
        "",
        f"{len(RESULTS)} cases from tests/test_bad_input.py. Path: how the input was handed over "
        "(CLI: `workbench submit` in a subprocess; CLI (in-process): `workers.cli.main(['submit', SPEC])`; "
        "API: the dashboard's client API; upload: app/uploads.py).",
        "",
        "| case | path | error message (first line) |",
        "|---|---|---|",
    ]
    for case_id, (path, line) in RESULTS.items():
        cell = line.replace("|", "\\|").replace("\n", " ")
        shown = {CLI: "CLI", CLI_IN: "CLI (in-process)"}.get(path, path)
        lines.append(f"| {case_id.split(':', 1)[1]} | {shown} | {cell} |")
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")


@dataclass
class CliResult:
    argv: list[str]
    rc: int | None
    stdout: str
    stderr: str
    changed: list[str]
    keys: list[str]
    w: Work
    escape_targets: tuple  # (before, after)


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory, demo_folder) -> dict[str, CliResult]:
    """Every CLI case's `workbench submit`, run as concurrent subprocesses (a Python start costs seconds).

    Files are compared before and after the whole batch (each case writes only into its own
    folder, so a change is attributed by folder), and Redis db 8 is read once all have exited.
    """
    cases = [c for c in CASES if c.path == CLI]
    root = tmp_path_factory.mktemp("cli-cases")
    conn = Redis.from_url(REDIS_URL)
    conn.flushdb()
    watched = (tmp_path_factory.getbasetemp(), SESSION_HOME)
    with FakeHub(token="hf_another_token") as hub:
        jobs = []
        for case in cases:
            w = Work(root / case.id)
            argv = case.act(Ctx(w))
            env = {
                **os.environ,
                "REDIS_URL": REDIS_URL,
                "ARTIFACTS_DIR": str(w.artifacts),
                "WORKBENCH_HOME": str(SESSION_HOME if case.demo else w.home),
                "HF_HUB_OFFLINE": "1",
                "HF_DATASETS_OFFLINE": "1",
                "PYTHONPATH": str(PROJECT_ROOT),
            }
            env.update({k: v.format(hub=hub.url) for k, v in case.env.items()})
            jobs.append((case, w, argv, env))
        escape_targets = _escape_targets()
        before = _snapshot(*watched)

        def run(job):
            case, w, argv, env = job
            try:
                proc = subprocess.run(
                    [sys.executable, "-m", "workers.cli", "submit", *argv],
                    env=env,
                    cwd=w.data,
                    capture_output=True,
                    text=True,
                    timeout=CLI_TIMEOUT,
                )
                return proc.returncode, proc.stdout, proc.stderr
            except subprocess.TimeoutExpired as err:
                return None, str(err.stdout or ""), f"timed out after {CLI_TIMEOUT} s: {err.stderr or ''}"

        with ThreadPoolExecutor(max_workers=CLI_PARALLEL) as pool:
            outcomes = list(pool.map(run, jobs))
        after = _snapshot(*watched)
    keys = _queue_keys(conn)
    conn.flushdb()
    changed = _changed(before, after, [])
    escape_targets_after = _escape_targets()
    results = {}
    for (case, w, argv, _env), (rc, out, err) in zip(jobs, outcomes):
        mine = [p for p in changed if Path(p).is_relative_to(w.root) or not Path(p).is_relative_to(root)]
        results[_case_id(case)] = CliResult(argv, rc, out, err, mine, keys, w, (escape_targets, escape_targets_after))
    return results


# ---------------------------------------------------------------------------------------------
# The test


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_bad_input_is_refused_clearly_and_leaves_nothing_behind(
    case, request, tmp_path, monkeypatch, capsys, redis, demo_folder
):
    if case.path == CLI:
        _check_cli_result(case, request.getfixturevalue("cli_results")[_case_id(case)])
        assert _queue_keys(redis) == []
        return

    w = Work(tmp_path / "case")
    monkeypatch.setenv("ARTIFACTS_DIR", str(w.artifacts))
    monkeypatch.setenv("WORKBENCH_HOME", str(SESSION_HOME if case.demo else w.home))
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.delenv("WORKBENCH_DATA_DIRS", raising=False)
    monkeypatch.chdir(w.data)  # relative paths ("../x") start from the user's data folder
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    if case.id.startswith("local-path"):
        monkeypatch.setenv("WORKBENCH_DATA_DIRS", str(w.data))
    watched = (tmp_path.parent, SESSION_HOME)
    ctx = Ctx(w, redis, monkeypatch)
    argv = case.act(ctx) if case.path == CLI_IN else None  # the user writes the spec file first
    escape_targets = _escape_targets()
    before = _snapshot(*watched)

    if case.path == CLI_IN:
        message = _cli_in_process(case, argv, capsys)
    else:
        message = _attempt(case, ctx)

    after = _snapshot(*watched)
    _check_message(case, message)
    assert _queue_keys(redis) == [], f"{case.id}: something was enqueued"
    allowed = (case.allow_new(w) if case.allow_new else []) + w.inputs
    _check_nothing_written(case, w, _changed(before, after, allowed))
    assert _escape_targets() == escape_targets, "a zip member was written outside its folder"
    RESULTS[_case_id(case)] = (case.path, _first_line(message))


def _attempt(case: Case, ctx: Ctx) -> str:
    """Do what the user does; return the refusal's message. Anything but a clear refusal fails the case."""
    try:
        outcome = case.act(ctx)
    except USER_ERRORS as err:
        assert isinstance(err, case.errors), (
            f"{case.id}: refused with {type(err).__name__}, expected one of {[e.__name__ for e in case.errors]}: {err}"
        )
        return str(err)
    except Exception as err:  # (b): a crash, not a refusal
        pytest.fail(f"{case.id}: crashed with {type(err).__name__}: {err}\n{traceback.format_exc()}")
    if case.kind is not None:  # check_model answers instead of raising
        assert isinstance(outcome, dict) and outcome.get("ok") is False, f"{case.id}: accepted: {outcome!r}"
        assert outcome["kind"] == case.kind, outcome
        return outcome["message"]
    pytest.fail(f"{case.id}: accepted ({outcome!r:.300}); it must be refused")


def _cli_in_process(case: Case, argv: list[str], capsys) -> str:
    """`workbench submit` through workers.cli.main in this process: its exit code and stderr."""
    from workers.cli import main

    capsys.readouterr()
    try:
        rc = main(["submit", *argv])
    except SystemExit as exit_:  # argparse
        rc = exit_.code
    except Exception as err:  # (b): main let an exception through: the user would see a traceback
        pytest.fail(f"{case.id}: workbench submit crashed with {type(err).__name__}: {err}\n{traceback.format_exc()}")
    out, err = capsys.readouterr()
    _check_cli_output(case, argv, rc, out, err)
    return err


def _check_cli_output(case: Case, argv: list[str], rc, stdout: str, stderr: str) -> None:
    where = (
        f"{case.id}: workbench submit {' '.join(a[-60:] for a in argv)}\nrc: {rc}\nstdout: {stdout}\nstderr: {stderr}"
    )
    assert rc == case.rc, where
    assert "Traceback" not in stderr, where
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error: "), where
    # One message: the error line, then (for a spec) one "  - field: fix" line per problem; nothing else.
    assert all(line.startswith("  - ") for line in lines[1:]), where
    assert not stdout.strip(), f"{case.id}: printed a study id?\n{where}"


def _check_cli_result(case: Case, res: CliResult) -> None:
    _check_cli_output(case, res.argv, res.rc, res.stdout, res.stderr)
    _check_message(case, res.stderr)
    assert res.keys == [], f"{case.id}: something was enqueued: {res.keys[:20]}"
    _check_nothing_written(case, res.w, res.changed)
    assert res.escape_targets[0] == res.escape_targets[1], "a zip member was written outside its folder"
    RESULTS[_case_id(case)] = (case.path, _first_line(res.stderr))
