"""core.sources: every format from real files, Hub code path on local Hub-style folders, every error."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

import datasets
import httpx2
import huggingface_hub
import pandas as pd
import pytest
from huggingface_hub import errors as hf_errors

from core.normalize import normalize
from core.sources import LoadedSource, SourceError, extract_zip, load_source
from core.spec import SourceSpec

ROWS = [{"text": f"example sentence number {i}", "label": ["neg", "pos"][i % 2]} for i in range(40)]


@pytest.fixture(autouse=True)
def _isolated_hf_cache(tmp_path, monkeypatch):
    """Keep the datasets cache of every test in its tmp folder; never touch the network."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def hub_folder(root: Path, n_train: int = 200, n_test: int = 20) -> Path:
    """A folder laid out like a Hub dataset repo: README with configs + ClassLabel info, data files."""
    for cfg in ("reviews", "tweets"):
        write_jsonl(root / cfg / "train.jsonl", [{"text": f"{cfg} train {i}", "label": i % 3} for i in range(n_train)])
        write_jsonl(root / cfg / "test.jsonl", [{"text": f"{cfg} test {i}", "label": i % 3} for i in range(n_test)])
    (root / "README.md").write_text(
        """---
license: cc0-1.0
configs:
- config_name: reviews
  default: true
  data_files:
  - split: train
    path: reviews/train.jsonl
  - split: test
    path: reviews/test.jsonl
- config_name: tweets
  data_files:
  - split: train
    path: tweets/train.jsonl
  - split: test
    path: tweets/test.jsonl
dataset_info:
- config_name: reviews
  features:
  - name: text
    dtype: string
  - name: label
    dtype:
      class_label:
        names:
          '0': negative
          '1': neutral
          '2': positive
- config_name: tweets
  features:
  - name: text
    dtype: string
  - name: label
    dtype:
      class_label:
        names:
          '0': sad
          '1': meh
          '2': happy
---
# A local stand-in for a Hub dataset
""",
        encoding="utf-8",
    )
    return root


def spec(**kw) -> SourceSpec:
    return SourceSpec(**kw)


# ---------------------------------------------------------------------------------------------
# Every format


def test_csv(tmp_path):
    p = tmp_path / "reviews.csv"
    pd.DataFrame(ROWS).to_csv(p, index=False)
    loaded = load_source(spec(path=str(p)))
    assert isinstance(loaded, LoadedSource)
    assert loaded.name == "reviews"
    assert loaded.columns == ["text", "label"]
    assert loaded.rows[:2] == ROWS[:2]
    assert loaded.total_rows == 40 and loaded.indices == list(range(40)) and not loaded.streamed
    assert "reviews.csv" in loaded.origin
    nd = normalize(loaded, "classification", spec(path=str(p)))
    assert nd.labels == ["neg", "pos"] and len(nd.rows) == 40


def test_csv_with_utf8_bom(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes("\ufefftext,label\ncafé,1\n".encode("utf-8"))
    loaded = load_source(spec(path=str(p)))
    assert loaded.columns == ["text", "label"] and loaded.rows == [{"text": "café", "label": 1}]


def test_json_array_and_object_with_one_list(tmp_path):
    a = tmp_path / "array.json"
    a.write_text(json.dumps(ROWS), encoding="utf-8")
    assert load_source(spec(path=str(a))).rows == ROWS
    o = tmp_path / "object.json"
    o.write_text(json.dumps({"data": ROWS}), encoding="utf-8")
    loaded = load_source(spec(path=str(o)))
    assert loaded.rows == ROWS and loaded.columns == ["text", "label"]
    # one chat row is a row, not a wrapper
    chat = tmp_path / "chat.json"
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    chat.write_text(json.dumps([{"messages": msgs}]), encoding="utf-8")
    assert load_source(spec(path=str(chat))).rows == [{"messages": msgs}]


def test_jsonl(tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", ROWS)
    loaded = load_source(spec(path=str(p)))
    assert loaded.rows == ROWS


def test_parquet(tmp_path):
    p = tmp_path / "d.parquet"
    pd.DataFrame(ROWS).to_parquet(p)
    loaded = load_source(spec(path=str(p)))
    assert loaded.rows == ROWS
    nd = normalize(loaded, "classification", spec(path=str(p)))
    assert len(nd.rows) == 40


def test_zip_with_one_data_file(tmp_path):
    z = tmp_path / "upload.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("folder/data.jsonl", "".join(json.dumps(r) + "\n" for r in ROWS))
        zf.writestr("__MACOSX/folder/._data.jsonl", "junk")
        zf.writestr("folder/README.txt", "notes")
    loaded = load_source(spec(path=str(z)))
    assert loaded.rows == ROWS
    assert "upload.zip:folder/data.jsonl" in loaded.origin


def test_hub_style_folder_configs_splits_and_classlabel(tmp_path):
    root = hub_folder(tmp_path / "repo")
    train = load_source(spec(path=str(root)))  # default config, split train
    assert len(train.rows) == 200 and train.rows[0]["text"] == "reviews train 0"
    assert train.label_names == ["negative", "neutral", "positive"]
    assert train.class_labels == {"label": ["negative", "neutral", "positive"]}
    test = load_source(spec(path=str(root), config="tweets", split="test"))
    assert len(test.rows) == 20 and test.rows[0]["text"] == "tweets test 0"
    assert test.label_names == ["sad", "meh", "happy"]
    nd = normalize(test, "classification", spec(path=str(root), config="tweets", split="test"))
    assert nd.rows[0] == {"text": "tweets test 0", "label": "sad"}
    assert nd.labels == ["happy", "meh", "sad"]


def test_plain_data_folder_with_train_test_files(tmp_path):
    write_jsonl(tmp_path / "plain" / "train.jsonl", ROWS)
    write_jsonl(tmp_path / "plain" / "test.jsonl", ROWS[:5])
    assert len(load_source(spec(path=str(tmp_path / "plain"), split="test")).rows) == 5


# ---------------------------------------------------------------------------------------------
# Sampling and streaming


def test_local_max_rows_is_a_seeded_sample(tmp_path):
    p = write_jsonl(tmp_path / "big.jsonl", [{"text": f"t{i}", "label": "a"} for i in range(500)])
    a = load_source(spec(path=str(p), max_rows=50), seed=1)
    b = load_source(spec(path=str(p), max_rows=50), seed=1)
    c = load_source(spec(path=str(p), max_rows=50), seed=2)
    assert len(a.rows) == 50 and a.rows == b.rows and a.rows != c.rows
    assert a.total_rows == 500 and not a.streamed
    assert [r["text"] for r in a.rows] == [f"t{i}" for i in a.indices]
    assert len(set(a.indices)) == 50
    # max_rows above the size: everything, in order
    assert len(load_source(spec(path=str(p), max_rows=10_000)).rows) == 500


def test_streaming_a_local_hub_folder_is_deterministic_per_seed(tmp_path):
    root = hub_folder(tmp_path / "repo", n_train=300)
    src = spec(path=str(root), max_rows=25)
    a = load_source(src, seed=0, streaming=True)
    b = load_source(src, seed=0, streaming=True)
    c = load_source(src, seed=1, streaming=True)
    assert a.streamed and len(a.rows) == 25 and len(c.rows) == 25
    assert a.rows == b.rows
    assert a.rows != c.rows
    assert a.label_names == ["negative", "neutral", "positive"]  # features from the README
    assert "streamed sample of 25" in a.origin
    # a real sample: not just the first rows of the file
    assert {r["text"] for r in a.rows} != {f"reviews train {i}" for i in range(25)}


def test_streaming_a_single_local_jsonl(tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", [{"text": f"t{i}", "label": "a"} for i in range(100)])
    a = load_source(spec(path=str(p), max_rows=10), seed=3, streaming=True)
    assert (
        a.streamed
        and len(a.rows) == 10
        and a.rows == load_source(spec(path=str(p), max_rows=10), seed=3, streaming=True).rows
    )


class _HubRedirect:
    """Stands in for the Hub: sends load_dataset(hub_id, ...) to a local Hub-style folder, recording the call."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.calls: list[dict] = []
        self.real = datasets.load_dataset

    def __call__(self, path, name=None, **kw):
        self.calls.append({"path": path, "name": name, **kw})
        kw.pop("revision", None)
        return self.real(str(self.folder), name=name, **kw)


def test_hub_id_with_max_rows_streams_a_shuffled_sample(tmp_path, monkeypatch):
    hub = _HubRedirect(hub_folder(tmp_path / "repo", n_train=300))
    monkeypatch.setattr(datasets, "load_dataset", hub)
    src = spec(hub_id="someone/reviews", config="tweets", max_rows=30, revision="v1")
    a = load_source(src, seed=5)
    assert hub.calls[-1] == {
        "path": "someone/reviews",
        "name": "tweets",
        "split": "train",
        "revision": "v1",
        "streaming": True,
        "cache_dir": None,
    }
    assert a.streamed and len(a.rows) == 30 and a.name == "someone/reviews:tweets"
    assert a.label_names == ["sad", "meh", "happy"]
    assert a.rows == load_source(src, seed=5).rows
    assert a.rows != load_source(src, seed=6).rows
    # no max_rows: the split is downloaded whole
    full = load_source(spec(hub_id="someone/reviews", split="test"))
    assert hub.calls[-1]["streaming"] is False and len(full.rows) == 20 and full.total_rows == 20


def test_hub_catalog_entry_small_enough_is_downloaded_whole(tmp_path, monkeypatch):
    from core.catalog import Catalog, CatalogEntry, CatalogError, resolve_source

    hub = _HubRedirect(hub_folder(tmp_path / "repo", n_train=300))
    monkeypatch.setattr(datasets, "load_dataset", hub)
    cat = Catalog(
        [
            CatalogEntry(id="small", hub_id="x/small", task="classification", license="mit", size_hint=300),
            CatalogEntry(id="large", hub_id="x/large", task="classification", license="mit", size_hint=1_000_000),
        ],
        path=tmp_path / "cat.json",
    )
    resolved = resolve_source(spec(catalog="small", max_rows=100), cat)
    assert resolved.size_hint == 300
    small = load_source(resolved.spec, size_hint=resolved.size_hint)
    assert hub.calls[-1]["streaming"] is False and not small.streamed and len(small.rows) == 100
    assert small.total_rows == 300 and small.name == "small"
    resolved = resolve_source(spec(catalog="large", max_rows=100), cat)
    large = load_source(resolved.spec, size_hint=resolved.size_hint)
    assert hub.calls[-1]["streaming"] is True and large.streamed and len(large.rows) == 100
    # Another split than the entry's: its size is unknown, so it is streamed.
    assert resolve_source(spec(catalog="small", split="test", max_rows=100), cat).size_hint is None
    with pytest.raises(CatalogError, match="unknown catalog id 'smal'.*'small'"):
        resolve_source(spec(catalog="smal"), cat)
    with pytest.raises(ValueError, match="resolve_source"):
        load_source(spec(catalog="small"))


def test_trust_remote_code_is_never_passed(tmp_path, monkeypatch):
    hub = _HubRedirect(hub_folder(tmp_path / "repo"))
    monkeypatch.setattr(datasets, "load_dataset", hub)
    load_source(spec(hub_id="a/b"))
    assert all("trust_remote_code" not in c for c in hub.calls)


# ---------------------------------------------------------------------------------------------
# Errors: each names the dataset and says what to fix


def expect(src: SourceSpec, *needles: str, **kw) -> str:
    with pytest.raises(SourceError) as info:
        load_source(src, **kw)
    msg = str(info.value)
    assert msg.startswith(src.display_name + ":"), msg
    for n in needles:
        assert n in msg, f"{n!r} not in {msg!r}"
    return msg


def test_missing_file(tmp_path):
    expect(spec(path=str(tmp_path / "nope.csv"), name="my-d0"), "does not exist", "check the path")


def test_unsupported_extension(tmp_path):
    p = tmp_path / "data.xlsx"
    p.write_bytes(b"PK\x03\x04")
    expect(spec(path=str(p)), "unsupported extension '.xlsx'", ".csv", ".jsonl", ".parquet", ".zip")


@pytest.mark.parametrize("fname,content", [("e.csv", b""), ("e.jsonl", b"\n \n"), ("e.parquet", b"")])
def test_empty_file(tmp_path, fname, content):
    p = tmp_path / fname
    p.write_bytes(content)
    expect(spec(path=str(p)), "empty", "upload a file")


def test_header_only_csv_has_no_rows(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("text,label\n", encoding="utf-8")
    expect(spec(path=str(p)), "no rows")


@pytest.mark.parametrize(
    "fname,content,hint",
    [
        ("bad.csv", 'text,label\n"unterminated,1\nok,2\n', "quoting"),
        ("bad.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": \n', "one JSON object per line"),
        ("bad.json", "42", "list of objects"),
        ("bad.parquet", "PAR1 this is not parquet PAR1", "Parquet"),
    ],
)
def test_malformed_files(tmp_path, fname, content, hint):
    p = tmp_path / fname
    p.write_text(content, encoding="utf-8")
    expect(spec(path=str(p)), "could not be parsed", fname, hint)


def test_non_utf8_text(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes("text,label\ncafé au lait,1\n".encode("latin-1"))
    expect(spec(path=str(p)), "not UTF-8", "0xe9", "offset 14", "re-save it as UTF-8")


def test_non_utf8_inside_a_folder(tmp_path):
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "train.csv").write_bytes("text,label\ncafé,1\n".encode("latin-1"))
    expect(spec(path=str(tmp_path / "f")), "not UTF-8", "re-save it as UTF-8")


def test_unknown_split_lists_the_available_ones(tmp_path):
    root = hub_folder(tmp_path / "repo")
    for streaming in (False, True):
        expect(
            spec(path=str(root), split="validation"),
            "no split 'validation'",
            "['train', 'test']",
            "set 'split'",
            streaming=streaming,
        )


def test_split_on_a_single_file(tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", ROWS)
    expect(spec(path=str(p), split="test"), "single file", "remove 'split'")
    expect(spec(path=str(p), config="x"), "no configs", "remove 'config")


def test_unknown_config_lists_the_available_ones(tmp_path):
    root = hub_folder(tmp_path / "repo")
    expect(spec(path=str(root), config="nope"), "no config 'nope'", "['reviews', 'tweets']", "set 'config'")


def test_missing_config_when_several_and_no_default(tmp_path):
    root = hub_folder(tmp_path / "repo")
    readme = (root / "README.md").read_text().replace("  default: true\n", "").split("dataset_info:")[0] + "---\n"
    (root / "README.md").write_text(readme)
    expect(spec(path=str(root)), "several configs", "reviews", "set 'config'")


def test_folder_without_data_files(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.xyz").write_text("x")
    expect(spec(path=str(tmp_path / "empty")), "no supported data files", "data/train.jsonl")


def test_loading_script_is_refused_and_never_run(tmp_path):
    repo = tmp_path / "scripted"
    write_jsonl(repo / "train.jsonl", ROWS)
    marker = tmp_path / "SCRIPT_RAN"
    (repo / "scripted.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    expect(spec(path=str(repo)), "loading script", "never runs", "refs/convert/parquet")
    assert not marker.exists()


def test_save_to_disk_folder_is_explained(tmp_path):
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "saved"))
    expect(spec(path=str(tmp_path / "saved")), "save_to_disk", "to_parquet")


def test_hub_unreachable_offline_takes_the_real_code_path(tmp_path):
    msg = expect(spec(hub_id="nyu-mll/glue", config="sst2"), "could not reach the Hugging Face Hub", "offline", "local")
    assert "nyu-mll/glue" in msg
    # streamed too
    expect(spec(hub_id="nyu-mll/glue", config="sst2", max_rows=10), "could not reach")


def _response(status: int) -> httpx2.Response:
    return httpx2.Response(status, request=httpx2.Request("GET", "https://huggingface.co/api/datasets/x/y"))


@pytest.mark.parametrize(
    "exc,needles",
    [
        (
            lambda: hf_errors.RepositoryNotFoundError("404 not found", response=_response(404)),
            ["not found", "HF_TOKEN", "check the id"],
        ),
        (
            lambda: hf_errors.GatedRepoError("403 gated", response=_response(403)),
            ["gated", "request access", "HF_TOKEN"],
        ),
        (
            lambda: datasets.exceptions.DatasetNotFoundError("Dataset 'x/y' is a gated dataset on the Hub."),
            ["gated", "HF_TOKEN"],
        ),
        (
            lambda: datasets.exceptions.DatasetNotFoundError(
                "Dataset 'x/y' doesn't exist on the Hub or cannot be accessed."
            ),
            ["not found", "check the id", "local folder"],
        ),
        (lambda: hf_errors.RevisionNotFoundError("no rev", response=_response(404)), ["no revision 'v9'", "revision"]),
        (lambda: hf_errors.HfHubHTTPError("401", response=_response(401)), ["refused access", "HF_TOKEN"]),
        (lambda: ConnectionError("Couldn't reach 'x/y' on the Hub (ConnectError)"), ["could not reach", "offline"]),
        (lambda: httpx2.ConnectTimeout("timed out"), ["could not reach"]),
    ],
)
def test_hub_errors_say_what_to_do(monkeypatch, exc, needles):
    def fail(*a, **k):
        raise exc()

    monkeypatch.setattr(datasets, "load_dataset", fail)
    expect(spec(hub_id="x/y", revision="v9"), *needles)


def test_hub_error_while_streaming_rows_is_translated(tmp_path, monkeypatch):
    class Broken:
        def shuffle(self, **kw):
            return self

        def take(self, n):
            return self

        def __iter__(self):
            raise hf_errors.GatedRepoError("403", response=_response(403))

    broken = Broken.__new__(Broken)
    monkeypatch.setattr(datasets, "IterableDataset", Broken)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: broken)
    expect(spec(hub_id="x/y", max_rows=5), "gated")


# ---------------------------------------------------------------------------------------------
# Zip safety


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return path


@pytest.mark.parametrize(
    "evil", ["../evil.jsonl", "a/../../evil.jsonl", "/tmp/evil-abs.jsonl", "C:/evil.jsonl", "..\\evil.jsonl"]
)
def test_zip_path_traversal_is_refused_and_nothing_written(tmp_path, evil):
    up = tmp_path / "uploads"
    up.mkdir()
    z = _zip(up / "evil.zip", {"ok.jsonl": b'{"text": "a", "label": "x"}\n', evil: b"pwned"})
    expect(spec(path=str(z)), "unsafe path", "zip the data file")
    with pytest.raises(SourceError):
        extract_zip(z, tmp_path / "out")
    # refused before anything is written: not the evil member, not even the good one
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))
    assert not (tmp_path / "evil.jsonl").exists() and not Path("/tmp/evil-abs.jsonl").exists()
    assert not any("evil" in p.name and p.suffix == ".jsonl" for p in tmp_path.parent.rglob("*"))
    assert sorted(p.name for p in up.iterdir()) == ["evil.zip"]


def test_zip_symlink_member_is_refused(tmp_path):
    z = tmp_path / "link.zip"
    with zipfile.ZipFile(z, "w") as zf:
        info = zipfile.ZipInfo("data.jsonl")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    expect(spec(path=str(z)), "symbolic link")


def test_zip_bomb_by_ratio_is_refused(tmp_path):
    z = _zip(tmp_path / "bomb.zip", {"data.csv": b"text,label\n" + b"0" * (20 * 1024**2)})
    assert z.stat().st_size < 200_000
    expect(spec(path=str(z)), "zip bomb", "upload the data file itself")


def test_zip_total_size_cap(tmp_path):
    data = os.urandom(3 * 1024 * 1024)  # incompressible: passes the ratio check
    z = _zip(tmp_path / "big.zip", {"a.csv": data})
    with pytest.raises(SourceError, match="limit"):
        extract_zip(z, tmp_path / "out", upload_cap=100_000)  # 10 x 100 kB < 3 MiB
    assert not (tmp_path / "out" / "a.csv").exists()


def test_zip_header_that_lies_about_its_size_is_stopped(tmp_path):
    z = _zip(tmp_path / "liar.zip", {"d.jsonl": b'{"text": "a", "label": "x"}\n' * 1000})
    raw = bytearray(z.read_bytes())
    # Shrink the declared uncompressed size in the central directory record.
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24 : cd + 28] = (10).to_bytes(4, "little")
    z.write_bytes(bytes(raw))
    with pytest.raises(SourceError):
        extract_zip(z, tmp_path / "out")


def test_zip_with_several_or_no_data_files(tmp_path):
    many = _zip(tmp_path / "many.zip", {"a.csv": b"text,label\nx,1\n", "b.jsonl": b'{"text":"x","label":1}\n'})
    expect(spec(path=str(many)), "2 data files", "a.csv", "b.jsonl", "exactly one")
    none = _zip(tmp_path / "none.zip", {"notes.txt": b"hello", "img.png": b"\x89PNG"})
    expect(spec(path=str(none)), "no", "notes.txt", "img.png", "put one data file")


def test_not_a_zip(tmp_path):
    p = tmp_path / "fake.zip"
    p.write_bytes(b"this is not a zip")
    expect(spec(path=str(p)), "not a valid zip")


def test_zip_temp_folder_is_removed(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    z = _zip(tmp_path / "ok.zip", {"d.jsonl": b'{"text": "a", "label": "x"}\n'})
    load_source(spec(path=str(z)))
    assert list((tmp_path / "tmp").iterdir()) == []


def test_mixed_label_types_in_a_real_file_reach_normalize_as_a_data_error(tmp_path):
    from core.normalize import DataError

    p = write_jsonl(tmp_path / "mixed.jsonl", [{"text": "a", "label": 1}, {"text": "b", "label": "pos"}])
    loaded = load_source(spec(path=str(p)))
    with pytest.raises(DataError, match="mixed: label column 'label' mixes types"):
        normalize(loaded, "classification", spec(path=str(p)))


def test_folders_of_the_same_name_with_declared_configs_never_share_cached_rows(tmp_path):
    """datasets keys a folder whose README declares `configs` by name and patterns only; we key by content."""
    card = "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train.jsonl\n---\n"
    loaded = []
    for parent, label in (("a", "first"), ("b", "second"), ("c", "third")):
        folder = tmp_path / parent / "export"
        (folder / "data").mkdir(parents=True)
        (folder / "README.md").write_text(card)
        (folder / "data" / "train.jsonl").write_text(json.dumps({"text": f"{label} row", "label": "x"}) + "\n")
        loaded.append(load_source(SourceSpec(path=str(folder))).rows[0]["text"])
    assert loaded == ["first row", "second row", "third row"]
    # the same folder rewritten in place loads its new rows too
    (folder / "data" / "train.jsonl").write_text(json.dumps({"text": "rewritten, longer row", "label": "x"}) + "\n")
    assert load_source(SourceSpec(path=str(folder))).rows[0]["text"] == "rewritten, longer row"
