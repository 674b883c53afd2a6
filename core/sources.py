"""Reading a dataset (local file, zip upload, Hub-style folder, or Hub id) into plain Python rows.

Everything goes through `datasets.load_dataset`, so a local folder laid out like a Hub dataset repo
takes exactly the code path that a Hub id takes; tests exercise the Hub path on such folders.
Nothing from a dataset is ever executed: `trust_remote_code` is never passed (datasets 5 removed
loading scripts; a repo that still has one is reported, not run).

Every failure is a `SourceError` whose message names the dataset and says what to fix. Column
mapping and label handling are not done here: that is `core.normalize`.
"""

from __future__ import annotations

import ast
import codecs
import hashlib
import logging
import random
import re
import stat
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from core.spec import SourceSpec

# Local file extension -> `datasets` packaged builder.
FILE_BUILDERS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
SUPPORTED_EXTENSIONS = (*FILE_BUILDERS, ".zip")

# Zip uploads: total uncompressed size is capped at min(10 x the upload cap, 1 GiB); members that
# decompress more than ZIP_MAX_RATIO times their compressed size are refused as zip bombs.
ZIP_UPLOAD_CAP_BYTES = 100 * 1024**2
ZIP_MAX_TOTAL_BYTES = 1024**3
ZIP_MAX_RATIO = 100
ZIP_MAX_MEMBERS = 10_000
_RATIO_MIN_BYTES = 1024**2  # small members may compress very well; only check the ratio above this

# A Hub source with max_rows is streamed (seeded shuffle buffer + take) unless its known size is
# at most this many times max_rows, in which case downloading it whole is cheap and samples better.
STREAM_FACTOR = 5

_HUB_FIX = (
    "set HF_TOKEN if the dataset is private or gated, request access on its Hub page, check the id "
    "(owner/name), or, offline, download it elsewhere and give the local folder as 'path'"
)


class SourceError(ValueError):
    """A dataset that cannot be read; the message names the dataset and says what to fix."""


@dataclass
class LoadedSource:
    """Rows of one split of one dataset, as plain dicts, before column mapping."""

    name: str
    rows: list[dict]
    columns: list[str]
    label_names: list[str] | None = None  # names of the label column's ClassLabel feature, if any
    total_rows: int | None = None  # rows in the whole split, when known (not for most streams)
    origin: str = ""  # human description: file, folder or Hub id, config, split, sampling
    streamed: bool = False
    # Position of each row in the source split; for a streamed sample, its position in the
    # seeded sample (a stream has no stable row index).
    indices: list[int] = field(default_factory=list)
    class_labels: dict[str, list[str]] = field(default_factory=dict)  # every ClassLabel column


def load_source(
    src: SourceSpec,
    *,
    seed: int = 0,
    size_hint: int | None = None,
    streaming: bool | None = None,
    cache_dir: str | Path | None = None,
) -> LoadedSource:
    """Read one split of a dataset: a concrete source (a catalog entry is resolved by core.catalog first).

    `streaming`: None picks automatically (Hub ids with max_rows whose size, `size_hint`, is unknown
    or large are streamed), True streams any source (local ones too), False never streams. With
    max_rows, a deterministic seeded sample of that many rows is returned.
    """
    if src.catalog:
        raise ValueError(f"{src.display_name}: resolve catalog entries with core.catalog.resolve_source first")
    name = src.display_name
    cache = str(cache_dir) if cache_dir is not None else None
    if src.path:
        return _load_local(src, name, seed=seed, streaming=bool(streaming), cache_dir=cache)
    return _load_hub(src, name, seed=seed, streaming=streaming, size_hint=size_hint, cache_dir=cache)


# ---------------------------------------------------------------------------------------------
# Local files, zips and folders


def _load_local(src: SourceSpec, name: str, *, seed: int, streaming: bool, cache_dir: str | None) -> LoadedSource:
    path = Path(src.path).expanduser()
    if not path.exists():
        raise SourceError(
            f"{name}: '{path}' does not exist; check the path (relative paths resolve against the "
            "spec file's folder) or upload the file again"
        )
    if path.is_dir():
        return _load_folder(path, src, name, seed=seed, streaming=streaming, cache_dir=cache_dir)
    ext = path.suffix.lower()
    if ext == ".zip":
        with tempfile.TemporaryDirectory(prefix="workbench-zip-") as tmp:
            root = Path(tmp) / "files"
            extracted = extract_zip(path, root, name=name)
            member = _single_data_file(extracted, root, path, name)
            # The datasets cache for a temporary file goes with it.
            return _load_file(
                member,
                src,
                name,
                seed=seed,
                streaming=streaming,
                cache_dir=str(Path(tmp) / "cache"),
                shown=f"{path.name}:{member.relative_to(root).as_posix()}",
            )
    if ext not in FILE_BUILDERS:
        raise SourceError(
            f"{name}: '{path.name}' has an unsupported extension '{ext or '(none)'}'; supported: "
            f"{', '.join(SUPPORTED_EXTENSIONS)} files, or a folder laid out like a Hub dataset repo"
        )
    return _load_file(path, src, name, seed=seed, streaming=streaming, cache_dir=cache_dir, shown=path.name)


def _load_file(
    path: Path, src: SourceSpec, name: str, *, seed: int, streaming: bool, cache_dir: str | None, shown: str
) -> LoadedSource:
    import datasets

    if src.split != "train":
        raise SourceError(
            f"{name}: '{shown}' is a single file and has one split ('train'), not '{src.split}'; remove "
            "'split', or give a folder with one file per split (e.g. data/train.jsonl, data/test.jsonl)"
        )
    if src.config:
        raise SourceError(
            f"{name}: '{shown}' is a single file and has no configs; remove 'config: {src.config}' "
            "(configs apply to Hub ids and Hub-style folders)"
        )
    ext = path.suffix.lower()
    builder = FILE_BUILDERS[ext]
    if path.stat().st_size == 0:
        raise SourceError(f"{name}: '{shown}' is empty; upload a file with a header and rows")
    if builder == "parquet":
        check_parquet_file(path, name, shown)
    else:
        _check_utf8_text(path, name, shown)
    where = f"'{shown}'"
    kwargs: dict[str, Any] = {"data_files": str(path), "split": "train", "cache_dir": cache_dir}
    ds = _call_datasets(lambda: datasets.load_dataset(builder, streaming=streaming, **kwargs), name, where, src, ext)
    if ext == ".json" and not streaming:
        field_name = _single_list_field(ds)
        if field_name:  # {"data": [{...}, ...]}: the rows are under one key
            ds = _call_datasets(
                lambda: datasets.load_dataset(builder, field=field_name, **kwargs), name, where, src, ext
            )
    origin = f"file {shown}"
    return _materialize(ds, src, name, seed=seed, origin=origin, where=where, ext=ext)


def _single_list_field(ds: Any) -> str | None:
    """The key of a JSON file shaped {"key": [{...}, ...]}, read by datasets as one row of one list."""
    import datasets

    if ds.num_rows != 1 or len(ds.column_names) != 1:
        return None
    col = ds.column_names[0]
    feat = ds.features[col]
    inner = getattr(feat, "feature", None)
    if not (isinstance(feat, (datasets.List, datasets.LargeList)) and isinstance(inner, dict)):
        return None
    # One row holding one chat ({"messages": [{"role", "content"}, ...]}) is a row, not a wrapper.
    if {"role", "content"} <= set(inner) or {"from", "value"} <= set(inner):
        return None
    return col


def _load_folder(
    path: Path, src: SourceSpec, name: str, *, seed: int, streaming: bool, cache_dir: str | None
) -> LoadedSource:
    import datasets

    if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
        raise SourceError(
            f"{name}: folder '{path.name}' was written by Dataset.save_to_disk, not laid out like a Hub "
            "repo; export it with ds.to_parquet('data/train.parquet') (one file per split) and give that folder"
        )
    where = f"folder '{path.name}'"
    cache_dir = _folder_cache(path, cache_dir)
    ds = _call_datasets(
        lambda: datasets.load_dataset(
            str(path), name=src.config, split=src.split, streaming=streaming, cache_dir=cache_dir
        ),
        name,
        where,
        src,
        None,
    )
    origin = f"folder {path}" + (f", config {src.config}" if src.config else "") + f", split {src.split}"
    return _materialize(ds, src, name, seed=seed, origin=origin, where=where, ext=None)


def _folder_cache(path: Path, cache_dir: str | None) -> str:
    """A datasets cache folder for this folder's exact files.

    When a folder's README declares `configs`, datasets keys its cache by the folder's name and the
    relative file patterns only, so another folder of the same name (or this one, rewritten) would
    load the rows cached from the first. Keying by path, names, sizes and mtimes prevents that.
    """
    import datasets

    stamp = [str(path.resolve())]
    for f in sorted(p for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts):
        st = f.stat()
        stamp.append(f"{f.relative_to(path).as_posix()}:{st.st_size}:{st.st_mtime_ns}")
    key = hashlib.sha256("\n".join(stamp).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return str(Path(cache_dir or datasets.config.HF_DATASETS_CACHE) / "workbench-folders" / key)


def extract_zip(
    zip_path: str | Path,
    dest: str | Path,
    *,
    name: str | None = None,
    upload_cap: int = ZIP_UPLOAD_CAP_BYTES,
    max_total: int = ZIP_MAX_TOTAL_BYTES,
    max_ratio: float = ZIP_MAX_RATIO,
) -> list[Path]:
    """Extract a zip into `dest` without letting it escape `dest` or fill the disk.

    Refused before anything is written: members with absolute paths, drive letters or '..'
    components, symlinks, encrypted members, more than ZIP_MAX_MEMBERS members, a declared total
    above min(10 x upload_cap, max_total), and members above 1 MiB that decompress more than
    `max_ratio` times their compressed size. While extracting, the bytes actually produced are
    counted too, so a zip whose headers lie is stopped. Returns the extracted files.
    """
    zip_path = Path(zip_path)
    name = name or zip_path.stem
    limit = min(10 * upload_cap, max_total)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as err:
        raise SourceError(f"{name}: '{zip_path.name}' is not a valid zip file ({err}); re-create the archive") from None
    with zf:
        members = _checked_members(zf, zip_path, name, limit=limit, max_ratio=max_ratio)
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        written_total = 0
        out: list[Path] = []
        for info, rel in members:
            target = (root / Path(*rel.parts)).resolve()
            if not target.is_relative_to(root):  # belt and braces after _safe_member_path
                raise SourceError(
                    f"{name}: '{zip_path.name}' member '{_printable(info.filename)}' would be written outside "
                    "the upload folder"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            written_total = _extract_member(zf, info, target, zip_path, name, written_before=written_total, limit=limit)
            out.append(target)
    return out


def _checked_members(
    zf: zipfile.ZipFile, zip_path: Path, name: str, *, limit: int, max_ratio: float
) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """The zip's files with their safe relative paths, or a SourceError before anything is written."""
    infos = zf.infolist()
    if len(infos) > ZIP_MAX_MEMBERS:
        raise SourceError(f"{name}: '{zip_path.name}' holds {len(infos):,} members; put one data file in the zip")
    total = 0
    members: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
    for info in infos:
        rel = _safe_member_path(info.filename, zip_path, name)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise SourceError(
                f"{name}: '{zip_path.name}' contains a symbolic link '{_printable(info.filename)}'; "
                "zips with links are refused"
            )
        if info.flag_bits & 0x1:
            raise SourceError(
                f"{name}: '{zip_path.name}' member '{_printable(info.filename)}' is encrypted; "
                "upload an unencrypted zip"
            )
        if info.is_dir():
            continue
        if info.file_size > _RATIO_MIN_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
            raise SourceError(
                f"{name}: '{zip_path.name}' looks like a zip bomb: '{_printable(info.filename)}' expands "
                f"{info.file_size / max(info.compress_size, 1):,.0f}x (limit {max_ratio:g}x); "
                "upload the data file itself"
            )
        total += info.file_size
        members.append((info, rel))
    if total > limit:
        raise SourceError(
            f"{name}: '{zip_path.name}' expands to {total / 1024**2:,.0f} MiB, above the {limit / 1024**2:,.0f} MiB "
            "limit; upload a smaller sample or a Parquet file"
        )
    return members


def _extract_member(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    target: Path,
    zip_path: Path,
    name: str,
    *,
    written_before: int,
    limit: int,
) -> int:
    """Write one member, counting the bytes actually produced (headers may lie); returns the zip's total so far."""
    written = 0
    written_total = written_before
    try:
        with zf.open(info) as fin, open(target, "xb") as fout:
            while chunk := fin.read(1 << 20):
                written += len(chunk)
                written_total += len(chunk)
                if written > info.file_size or written_total > limit:
                    raise SourceError(
                        f"{name}: '{zip_path.name}' member '{_printable(info.filename)}' expands beyond its "
                        "declared size or the size limit (a zip bomb?); upload the data file itself"
                    )
                fout.write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, EOFError, OSError, NotImplementedError) as err:
        raise SourceError(
            f"{name}: cannot extract '{_printable(info.filename)}' from '{zip_path.name}' ({err}); "
            "re-create the archive"
        ) from None
    return written_total


def _printable(text: str, limit: int = 120) -> str:
    """A name from inside an archive, made safe to echo: no control characters (a terminal would
    run an escape sequence), and a long name cut in the middle."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(text))
    return text if len(text) <= limit else text[: limit // 2 - 1] + "…" + text[-(limit // 2) :]


def _safe_member_path(filename: str, zip_path: Path, name: str) -> PurePosixPath:
    norm = filename.replace("\\", "/")
    rel = PurePosixPath(norm)
    unsafe = (
        norm.startswith("/")
        or rel.is_absolute()
        or ".." in rel.parts
        or (rel.parts and ":" in rel.parts[0])  # a Windows drive, e.g. C:
        or "\x00" in norm
    )
    if unsafe:
        raise SourceError(
            f"{name}: '{zip_path.name}' has a member with an unsafe path '{_printable(filename)}' (absolute or "
            "with '..'); "
            "zip the data file from its own folder"
        )
    return rel


def _single_data_file(files: list[Path], root: Path, zip_path: Path, name: str) -> Path:
    def ignored(p: Path) -> bool:
        rel = p.relative_to(root)
        return rel.parts[0] == "__MACOSX" or any(part.startswith(".") for part in rel.parts)

    visible = [p for p in files if not ignored(p)]
    data = [p for p in visible if p.suffix.lower() in FILE_BUILDERS]
    found = ", ".join(_printable(p.relative_to(root).as_posix(), 80) for p in visible[:20]) or "nothing"
    if len(data) == 1:
        return data[0]
    if not data:
        raise SourceError(
            f"{name}: '{zip_path.name}' holds no {'/'.join(FILE_BUILDERS)} file (found: {found}); "
            "put one data file in the zip"
        )
    raise SourceError(
        f"{name}: '{zip_path.name}' holds {len(data)} data files ({found}); put exactly one in the zip, "
        "or unzip it and give the folder as 'path'"
    )


def _check_utf8_text(path: Path, name: str, shown: str) -> None:
    """Refuse non-UTF-8 and blank text files with a precise message (one streaming pass)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    blank = True
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            final = not chunk
            try:
                text = decoder.decode(chunk, final=final)
            except UnicodeDecodeError as err:
                bad = err.object[err.start : err.start + 1]
                raise SourceError(
                    f"{name}: '{shown}' is not UTF-8 text (byte 0x{bad.hex() or '??'} at offset "
                    f"{offset + err.start:,}); "
                    "re-save it as UTF-8 (spreadsheets: 'CSV UTF-8'; or `iconv -f latin1 -t utf-8`)"
                ) from None
            if blank and text.strip():
                blank = False
            if final:
                break
            offset += len(chunk)
    if blank:
        raise SourceError(f"{name}: '{shown}' is empty (only whitespace); upload a file with rows")


def check_parquet_file(path: Path, name: str, shown: str) -> None:
    """Refuse a file that is not Parquet (or lost its footer: a truncated upload) and one with no rows.

    Reads only the footer, so it is cheap on a large file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = pq.read_metadata(path).num_rows
    except (pa.ArrowException, OSError) as err:
        detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise SourceError(
            f"{name}: '{shown}' could not be parsed: not a readable Parquet file ({detail}); a truncated "
            "upload? export it again"
        ) from None
    if rows == 0:
        raise SourceError(f"{name}: '{shown}' has no rows (a Parquet file with only a schema); give a file with data")


# ---------------------------------------------------------------------------------------------
# Hub ids


def _load_hub(
    src: SourceSpec, name: str, *, seed: int, streaming: bool | None, size_hint: int | None, cache_dir: str | None
) -> LoadedSource:
    import datasets

    if streaming is None:
        streaming = src.max_rows is not None and (size_hint is None or size_hint > STREAM_FACTOR * src.max_rows)
    where = f"Hub dataset '{src.hub_id}'"
    ds = _call_datasets(
        lambda: datasets.load_dataset(
            src.hub_id,
            name=src.config,
            split=src.split,
            revision=src.revision,
            streaming=streaming,
            cache_dir=cache_dir,
        ),
        name,
        where,
        src,
        None,
    )
    origin = (
        f"Hub {src.hub_id}"
        + (f", config {src.config}" if src.config else "")
        + f", split {src.split}"
        + (f", revision {src.revision}" if src.revision else "")
    )
    return _materialize(ds, src, name, seed=seed, origin=origin, where=where, ext=None)


# ---------------------------------------------------------------------------------------------
# Rows out of a Dataset / IterableDataset


def _materialize(
    ds: Any, src: SourceSpec, name: str, *, seed: int, origin: str, where: str, ext: str | None
) -> LoadedSource:
    import datasets

    max_rows = src.max_rows
    if isinstance(ds, datasets.IterableDataset):
        streamed = True
        if max_rows:
            buffer = min(10_000, max(1000, 10 * max_rows))
            ds = ds.shuffle(seed=seed, buffer_size=buffer).take(max_rows)
            origin += f", streamed sample of {max_rows:,} (seed {seed}, shuffle buffer {buffer:,})"
        else:
            origin += ", streamed"
        rows = _call_datasets(lambda: list(ds), name, where, src, ext)
        indices = list(range(len(rows)))
        total = _split_size(ds, src.split)
    else:
        streamed = False
        total = ds.num_rows
        if max_rows and total > max_rows:
            indices = random.Random(seed).sample(range(total), max_rows)
            rows = ds.select(indices).to_list()
            origin += f", random sample of {max_rows:,} of {total:,} rows (seed {seed})"
        else:
            indices = list(range(total))
            rows = ds.to_list()
    if not rows:
        raise SourceError(f"{name}: {where} has no rows in split '{src.split}'; give a file or split with data")
    features = ds.features or {}
    columns = list(ds.column_names or features or rows[0].keys())
    class_labels = {col: list(feat.names) for col, feat in features.items() if isinstance(feat, datasets.ClassLabel)}
    label_col = src.columns.get("label", "label")
    label_names = class_labels.get(label_col)
    if label_names is None and len(class_labels) == 1 and label_col not in columns:
        label_names = next(iter(class_labels.values()))
    return LoadedSource(
        name=name,
        rows=rows,
        columns=columns,
        label_names=label_names,
        total_rows=total,
        origin=origin,
        streamed=streamed,
        indices=indices,
        class_labels=class_labels,
    )


def _split_size(ds: Any, split: str) -> int | None:
    splits = getattr(getattr(ds, "info", None), "splits", None) or {}
    info = splits.get(split) if hasattr(splits, "get") else None
    return getattr(info, "num_examples", None) or None


# ---------------------------------------------------------------------------------------------
# Turning library exceptions into messages a user can act on

_LIST_RE = re.compile(r"\[(.*?)\]")


def _listed(message: str) -> list[str]:
    m = _LIST_RE.search(message)
    if not m:
        return []
    try:
        value = ast.literal_eval("[" + m.group(1) + "]")
    except (ValueError, SyntaxError):
        return []
    return [str(v) for v in value]


def _chain(err: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = err
    while cur is not None and cur not in seen and len(seen) < 20:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def _format_hint(ext: str | None) -> str:
    return {
        ".csv": "check the quoting and that every line has the same number of fields as the header (export as "
        "UTF-8 CSV)",
        ".json": "a .json file must hold a list of objects, or one object per line",
        ".jsonl": "a .jsonl file must hold one JSON object per line",
        ".parquet": "the file is not a readable Parquet file (truncated upload?); export it again",
    }.get(ext or "", "check that every data file is well formed and that all files have the same columns")


# `datasets` logs a file it cannot read at ERROR level and then raises; the raise becomes a
# SourceError carrying the same detail, so while `_call_datasets` runs (in this thread) those log
# lines are dropped: a CLI user sees one error, not three versions of it.
_DATASETS_FILE_LOGGERS = (
    "datasets.packaged_modules.csv.csv",
    "datasets.packaged_modules.json.json",
    "datasets.packaged_modules.parquet.parquet",
)
_translating = threading.local()
_filter_lock = threading.Lock()
_filter_installed = False


class _DropWhileTranslating(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_translating, "depth", 0)


def _install_log_filter() -> None:
    global _filter_installed
    with _filter_lock:
        if not _filter_installed:
            for logger_name in _DATASETS_FILE_LOGGERS:
                logging.getLogger(logger_name).addFilter(_DropWhileTranslating())
            _filter_installed = True


def _call_datasets(fn, name: str, where: str, src: SourceSpec, ext: str | None):
    """Run a `datasets` call, turning whatever it raises into a SourceError that says what to fix."""
    _install_log_filter()
    _translating.depth = getattr(_translating, "depth", 0) + 1
    try:
        return fn()
    except SourceError:
        raise
    except Exception as err:  # noqa: BLE001 - translated below, re-raised if unknown
        translated = _translate(err, name, where, src, ext)
        if translated is None:
            raise
        raise translated from err
    finally:
        _translating.depth -= 1


def _translate(err: Exception, name: str, where: str, src: SourceSpec, ext: str | None) -> SourceError | None:
    """A SourceError saying what to fix, or None for an exception nobody has explained yet (re-raised as is)."""
    chain = _chain(err)
    for explain in (_layout_problem, _hub_access_problem, _content_problem, _network_problem, _parse_problem):
        problem = explain(err, chain, where, src, ext)
        if problem is not None:
            return SourceError(f"{name}: {problem}")
    return None


def _layout_problem(
    err: Exception, chain: list[BaseException], where: str, src: SourceSpec, ext: str | None
) -> str | None:
    """A loading script (never run), a split or config that is not there, no rows."""
    msg = str(err)
    if isinstance(err, RuntimeError) and "scripts are no longer supported" in msg:
        return (
            f"{where} is defined by a Python loading script, which the workbench never runs "
            "(datasets 5 cannot either); use its Parquet conversion (revision: refs/convert/parquet) "
            "or a copy of the data files"
        )
    if isinstance(err, ValueError) and ("Unknown split" in msg or "Bad split" in msg):
        avail = _listed(msg)
        return f"{where} has no split '{src.split}'; available splits: {avail or msg}; set 'split' to one of them"
    if isinstance(err, ValueError) and "BuilderConfig" in msg and "not found" in msg:
        avail = _listed(msg)
        return f"{where} has no config '{src.config}'; available configs: {avail or msg}; set 'config' to one of them"
    if isinstance(err, ValueError) and "Config name is missing" in msg:
        avail = _listed(msg)
        return f"{where} has several configs {avail or ''}; set 'config' to one of them"
    if "corresponds to no data" in msg:
        return f"{where} has no rows (only a header?); give a file or split with data"
    return None


def _hub_access_problem(
    err: Exception, chain: list[BaseException], where: str, src: SourceSpec, ext: str | None
) -> str | None:
    """A gated dataset, a revision that is not there, a dataset not found."""
    from datasets.exceptions import DatasetNotFoundError
    from huggingface_hub import errors as hf_errors

    msg = str(err)
    gated = next((e for e in chain if isinstance(e, hf_errors.GatedRepoError)), None)
    if gated is not None or (isinstance(err, DatasetNotFoundError) and "gated" in msg):
        return (
            f"{where} is gated: request access on https://huggingface.co/datasets/{src.hub_id or ''} "
            "and set HF_TOKEN in the worker's environment; offline: use a local folder"
        )
    revision = next((e for e in chain if isinstance(e, hf_errors.RevisionNotFoundError)), None)
    if revision is not None or (isinstance(err, DatasetNotFoundError) and "Revision" in msg):
        return f"{where} has no revision '{src.revision}'; check 'revision' (a branch, tag or commit)"
    not_found = next(
        (e for e in chain if isinstance(e, (hf_errors.RepositoryNotFoundError, DatasetNotFoundError))), None
    )
    if not_found is not None:
        return f"{where} was not found or cannot be accessed; {_HUB_FIX}"
    return None


def _content_problem(
    err: Exception, chain: list[BaseException], where: str, src: SourceSpec, ext: str | None
) -> str | None:
    """No supported data files, or text that is not UTF-8."""
    from datasets.exceptions import DataFilesNotFoundError

    if isinstance(err, DataFilesNotFoundError) or type(err).__name__ == "EmptyDatasetError":
        return (
            f"{where} holds no supported data files ({', '.join(FILE_BUILDERS)}); "
            "put the data in it (e.g. data/train.jsonl) or give the file itself as 'path'"
        )
    for e in chain:
        if isinstance(e, UnicodeDecodeError):
            return (
                f"{where} is not UTF-8 text ({e.reason} at byte {e.start}); re-save it as UTF-8 "
                "(spreadsheets: 'CSV UTF-8'; or `iconv -f latin1 -t utf-8`)"
            )
    return None


def _network_problem(
    err: Exception, chain: list[BaseException], where: str, src: SourceSpec, ext: str | None
) -> str | None:
    """An HTTP error from the Hub, offline mode, no network, a Hub file not found."""
    from huggingface_hub import errors as hf_errors

    http = next((e for e in chain if isinstance(e, hf_errors.HfHubHTTPError)), None)
    if http is not None:
        status = getattr(getattr(http, "response", None), "status_code", None)
        if status in (401, 403):
            return f"{where} refused access (HTTP {status}); {_HUB_FIX}"
        if status == 404:
            return f"{where} was not found (HTTP 404); {_HUB_FIX}"
        return f"the Hub answered HTTP {status} for {where}; retry later, or {_HUB_FIX}"
    if any(isinstance(e, hf_errors.OfflineModeIsEnabled) or "OfflineModeIsEnabled" in str(e) for e in chain):
        return (
            f"could not reach the Hugging Face Hub for {where}: offline mode is on (HF_HUB_OFFLINE=1 or "
            "HF_DATASETS_OFFLINE=1); unset it where the network is available, or offline: download the dataset "
            "elsewhere and give the local folder as 'path'"
        )
    if any(isinstance(e, (ConnectionError, TimeoutError)) or _is_network_error(e) for e in chain):
        return (
            f"could not reach the Hugging Face Hub for {where} ({type(err).__name__}: {str(err)[:200]}); "
            "check the network or HF_ENDPOINT, or offline: download the dataset elsewhere and give the local "
            "folder as 'path'"
        )
    if src.hub_id is not None and isinstance(err, FileNotFoundError):
        return f"{where} was not found; {_HUB_FIX}"
    return None


def _parse_problem(
    err: Exception, chain: list[BaseException], where: str, src: SourceSpec, ext: str | None
) -> str | None:
    """Malformed data: the parser's first line of complaint and a hint for the file's format."""
    parse = next((e for e in chain if _is_parse_error(e)), None)
    if parse is not None or type(err).__name__ in ("DatasetGenerationError", "DatasetGenerationCastError"):
        detail = str(parse if parse is not None else err).strip().splitlines()[0][:300]
        return f"{where} could not be parsed ({detail}); {_format_hint(ext)}"
    return None


def _is_network_error(e: BaseException) -> bool:
    mod = type(e).__module__ or ""
    return mod.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2", "aiohttp", "requests", "urllib3") and (
        "Connect" in type(e).__name__ or "Timeout" in type(e).__name__ or "Network" in type(e).__name__
    )


def _is_parse_error(e: BaseException) -> bool:
    import json

    import pyarrow as pa

    if isinstance(e, (pa.ArrowInvalid, pa.ArrowTypeError, json.JSONDecodeError)):
        return True
    name = type(e).__name__
    return name in ("ParserError", "EmptyDataError", "CastError", "SchemaInferenceError")
