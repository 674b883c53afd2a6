"""Files users hand to the dashboard: size-capped, stored by content, never outside their folder.

Data uploads land in `WORKBENCH_HOME/uploads/<sha256 prefix>/<safe name>`; a zip is extracted
next to it by `core.sources.extract_zip` (which refuses members that would escape, links and zip
bombs). Nothing uploaded is executed: files are only ever read by `datasets`' packaged builders.

Plain functions with no Streamlit import, so the Setup page stays thin and tests call them
directly (Streamlit's AppTest cannot upload files).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import yaml

from core.paths import workbench_home
from core.sources import FILE_BUILDERS, SUPPORTED_EXTENSIONS, SourceError, check_parquet_file, extract_zip
from core.spec import SpecError, StudySpec, parse_spec, syntax_error_detail

log = logging.getLogger(__name__)

DEFAULT_MAX_MB = 200
SPEC_EXTENSIONS = (".yaml", ".yml", ".json")
SPEC_MAX_BYTES = 1024**2  # a study spec is a few hundred bytes; anything near 1 MiB is not one
_NAME_MAX = 120
_CHUNK = 1 << 20


class UploadError(ValueError):
    """An upload that was refused; the message says what to do instead."""


@dataclass(frozen=True)
class Upload:
    """A stored upload. `path` is what a source's `path` should be: the file itself; for a zip,
    its one data file, or the extracted folder when it holds several (one file per split)."""

    path: Path
    stored: Path
    name: str
    sha256: str
    size: int


def max_upload_mb() -> int:
    """The upload cap in MB: WORKBENCH_UPLOAD_MAX_MB, default 200 (an invalid value is ignored)."""
    raw = os.environ.get("WORKBENCH_UPLOAD_MAX_MB", "").strip()
    if not raw:
        return DEFAULT_MAX_MB
    try:
        value = float(raw)
    except ValueError:
        value = -1
    if not (0 < value <= 1024**2) or math.isnan(value):
        log.warning("WORKBENCH_UPLOAD_MAX_MB=%r is not a positive number of MB; using %d", raw, DEFAULT_MAX_MB)
        return DEFAULT_MAX_MB
    return max(1, math.ceil(value))


def max_upload_bytes() -> int:
    return max_upload_mb() * 1024**2


def uploads_dir() -> Path:
    return workbench_home() / "uploads"


def safe_filename(name: str, default: str = "upload") -> str:
    """A file name that is only a name: no folders, no leading dots, letters/digits/._- only.

    'C:\\data\\../../etc/passwd.csv' -> 'passwd.csv'; 'ré sumé.csv' -> 're_sume.csv'.
    """
    base = re.split(r"[\\/]", str(name or ""))[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base)
    base = re.sub(r"_{2,}", "_", base).strip("._ -")
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    if ext and not re.fullmatch(r"[A-Za-z0-9]{1,10}", ext):
        stem, ext = base, ""
    stem = stem.strip("._ -") or default
    ext = f".{ext.lower()}" if ext else ""
    return stem[: _NAME_MAX - len(ext)] + ext


def _extension(name: str) -> str:
    return Path(name).suffix.lower()


def save_upload(
    filename: str, data: bytes | BinaryIO, *, max_bytes: int | None = None, root: Path | None = None
) -> Upload:
    """Store an uploaded data file (csv/jsonl/json/parquet/zip) and return where it lies.

    Refused with UploadError: other extensions, more than `max_bytes` (default: the
    WORKBENCH_UPLOAD_MAX_MB cap), empty files, text that is not UTF-8, Parquet files that are not
    readable (truncated) or have no rows, zips that are invalid, try to escape their folder, or
    hold no data file. A refused upload leaves nothing behind. The same bytes uploaded twice share one folder.
    """
    max_bytes = max_upload_bytes() if max_bytes is None else max_bytes
    root = (root or uploads_dir()).resolve()
    safe = safe_filename(filename)
    ext = _extension(safe)
    if ext not in SUPPORTED_EXTENSIONS:
        raise UploadError(
            f"'{_shown(filename)}' is not a supported file: upload {', '.join(SUPPORTED_EXTENSIONS)} "
            "(a zip holding one of those works too)"
        )
    root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=root)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in _chunks(data):
                size += len(chunk)
                if size > max_bytes:
                    raise UploadError(
                        f"'{_shown(filename)}' is larger than the {max_bytes / 1024**2:,.0f} MB upload limit; upload a "
                        "sample or a Parquet file, or load it from the Hub (operators: WORKBENCH_UPLOAD_MAX_MB)"
                    )
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise UploadError(f"'{_shown(filename)}' is empty; upload a file with a header and rows")
        sha = digest.hexdigest()
        folder = _inside(root, root / sha[:16])
        folder.mkdir(parents=True, exist_ok=True)
        stored = _inside(root, folder / safe)
        if stored.exists():
            tmp.unlink()
        else:
            os.replace(tmp, stored)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        if ext == ".zip":
            path = _unzip(stored, root, max_bytes)
        elif ext == ".parquet":
            check_parquet(stored, safe)
            path = stored
        else:
            if ext in (".csv", ".json", ".jsonl"):
                check_utf8(stored, safe)
            path = stored
    except UploadError:
        if ext == ".zip":  # what was extracted goes too
            shutil.rmtree(_extracted_dir(stored), ignore_errors=True)
        _discard(stored)  # a refused upload leaves nothing behind
        raise
    return Upload(path=path, stored=stored, name=safe, sha256=sha, size=size)


def _discard(stored: Path) -> None:
    stored.unlink(missing_ok=True)
    try:
        stored.parent.rmdir()  # only when empty: the same bytes may be stored under another name
    except OSError:
        pass


def _chunks(data: bytes | BinaryIO):
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        for i in range(0, len(view), _CHUNK):
            yield bytes(view[i : i + _CHUNK])
        return
    if hasattr(data, "seek"):
        try:
            data.seek(0)
        except (OSError, ValueError):
            pass
    while chunk := data.read(_CHUNK):
        yield chunk


def _inside(root: Path, path: Path) -> Path:
    """`path` resolved, refused unless it lies inside `root` (belt and braces after safe_filename)."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise UploadError(f"'{path.name}' would be stored outside the upload folder; rename the file")
    return resolved


def _extracted_dir(stored: Path) -> Path:
    return stored.parent / (stored.stem + "_files")


def _unzip(stored: Path, root: Path, max_bytes: int) -> Path:
    dest = _inside(root, _extracted_dir(stored))
    if not dest.is_dir():
        staging = Path(tempfile.mkdtemp(prefix=".unzip-", dir=stored.parent))
        try:
            extract_zip(stored, staging, name=stored.name, upload_cap=max_bytes)
            os.replace(staging, dest)
        except SourceError as err:
            raise UploadError(str(err)) from None
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    files = [p for p in sorted(dest.rglob("*")) if p.is_file()]
    visible = [p for p in files if not _hidden(p.relative_to(dest))]
    data = [p for p in visible if p.suffix.lower() in FILE_BUILDERS]
    if not data:
        found = ", ".join(_shown(p.relative_to(dest).as_posix()) for p in visible[:20]) or "nothing"
        raise UploadError(
            f"'{stored.name}' holds no {'/'.join(FILE_BUILDERS)} file (found: {found}); put the data file in the zip"
        )
    for p in data:
        shown = f"{stored.name}:{_shown(p.relative_to(dest).as_posix())}"
        if p.suffix.lower() == ".parquet":
            check_parquet(p, shown)
        else:
            check_utf8(p, shown)
    return data[0] if len(data) == 1 else dest


def _hidden(rel: Path) -> bool:
    return rel.parts[0] == "__MACOSX" or any(part.startswith(".") for part in rel.parts)


def check_utf8(path: Path, shown: str) -> None:
    """Refuse text that is not UTF-8, saying where and how to re-save it."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as err:
                raise UploadError(
                    f"'{shown}' is not UTF-8 text (byte 0x{err.object[err.start : err.start + 1].hex()} near offset "
                    f"{offset + err.start:,}); re-save it as UTF-8 (spreadsheets: 'CSV UTF-8'; "
                    "or `iconv -f latin1 -t utf-8`)"
                ) from None
            if not chunk:
                return
            offset += len(chunk)


def check_parquet(path: Path, shown: str) -> None:
    """Refuse a .parquet upload that is not Parquet, lost its footer (truncated) or has no rows."""
    try:
        check_parquet_file(path, shown, shown)
    except SourceError as err:
        raise UploadError(str(err).removeprefix(f"{shown}: ")) from None


def allowed_roots() -> list[Path]:
    """Folders the dashboard may read local data from: its uploads, plus WORKBENCH_DATA_DIRS
    (os.pathsep-separated) that an operator opens for files already on the server."""
    roots = [uploads_dir().resolve()]
    for part in os.environ.get("WORKBENCH_DATA_DIRS", "").split(os.pathsep):
        if part.strip():
            roots.append(Path(part.strip()).expanduser().resolve())
    return roots


def check_local_path(path: str) -> Path:
    """A local data path typed or loaded into the form, refused unless it lies in an allowed root."""
    text = str(path or "").strip()
    if not text:
        raise UploadError("no file given; upload one")
    if "\x00" in text:
        raise UploadError("the path contains a NUL byte; upload the file instead")
    candidate = Path(text).expanduser()
    if not candidate.is_absolute():
        candidate = uploads_dir() / candidate
    resolved = candidate.resolve()
    roots = allowed_roots()
    if not any(resolved.is_relative_to(r) for r in roots):
        raise UploadError(
            f"'{_shown(text)}' is outside the folders this dashboard reads ({', '.join(str(r) for r in roots)}); "
            "upload the file instead (operators can open a folder with WORKBENCH_DATA_DIRS)"
        )
    if not resolved.exists():
        raise UploadError(f"'{_shown(text)}' does not exist; upload the file again")
    return resolved


def read_spec(data: bytes | str, filename: str = "spec.yaml") -> StudySpec:
    """A study spec from uploaded or pasted YAML/JSON text; SpecError with one line per fix."""
    shown = _shown(filename)
    ext = _extension(filename) or ".yaml"
    if ext not in SPEC_EXTENSIONS:
        raise SpecError([f"{shown}: a study spec is a .yaml, .yml or .json file"])
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > SPEC_MAX_BYTES:
        raise SpecError([f"{shown}: {len(data):,} bytes is too large for a study spec (limit {SPEC_MAX_BYTES:,})"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError([f"{shown}: not UTF-8 text; save the spec as UTF-8"]) from None
    if not text.strip():
        raise SpecError([f"{shown}: the spec is empty; write the study's fields (name, model, task, d0, ...)"])
    try:
        parsed = json.loads(text) if ext == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        kind = "JSON" if ext == ".json" else "YAML"
        raise SpecError([f"{shown}: not valid {kind}{syntax_error_detail(err)}; fix the syntax"]) from None
    return parse_spec(parsed)


def _shown(name: str, limit: int = 80) -> str:
    """A user-given name made safe to echo in a message: printable, short. A long path is cut in
    the middle, so the file name at its end stays visible."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(name))
    return text if len(text) <= limit else text[: limit // 2 - 1] + "…" + text[-(limit // 2) :]
