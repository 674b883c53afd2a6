"""Mapping heterogeneous dataset rows onto one task schema.

Task schemas (every normalized row has exactly these keys):
- classification: {"text": str, "label": str}
- qa: {"question": str, "context": str, "answers": {"text": [str, ...], "answer_start": [int, ...]}}
- generative: {"prompt": str | [{"role": str, "content": str}, ...], "answer": str, "answer_full": str}
  `answer` is what evaluation compares (the extracted final answer with answer_extraction, e.g.
  GSM8K's "#### 42" -> "42"); `answer_full` is the original answer text, the completion to train on.

Label rules (classification): strings are stripped and kept; integers become names through
`src.label_names`, else the source's ClassLabel names, else their decimal string; booleans become
"false" / "true"; then `src.label_map` renames (keys are the names above; for an integer label the
decimal string also works). A study's label set (`labels`) makes any other label an error.

This runs over every row of every dataset in a study, so the loops are plain Python over lists
(no per-row validation models): >1M classification rows/s on one core.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from core.spec import SourceSpec

TASK_FIELDS: dict[str, tuple[str, ...]] = {
    "classification": ("text", "label"),
    "qa": ("question", "context", "answers"),
    "generative": ("prompt", "answer"),
}
# Fields a mapping may name beyond the required ones.
OPTIONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "classification": (),
    "qa": (),
    "generative": ("context",),  # folded into a string prompt: "<prompt>\n\n<context>" (e.g. Dolly)
}
# Source columns tried, in order, when a field is neither mapped nor present under its own name.
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "classification": {"text": ("sentence", "content", "review"), "label": ("labels", "class", "category", "intent")},
    "qa": {"answers": ("answer",)},
    "generative": {
        "prompt": ("question", "instruction", "problem", "messages"),
        "answer": ("solution", "response", "output"),
    },
}

_FP_CHUNK = 8192


class DataError(ValueError):
    """Rows that cannot be normalized; the message names the dataset, the column and the fix."""


@dataclass
class NormalizedData:
    name: str
    task: str
    rows: list[dict]
    labels: list[str] | None  # sorted label names seen (classification only)
    fingerprint: str  # sha256 of the task and the rows' compact JSON: a content key for caching
    dropped: int  # rows removed (empty text, no answer, answer not extractable), see notes
    notes: list[str] = field(default_factory=list)
    # Source row index of each kept row (LoadedSource.indices, minus the dropped rows).
    indices: list[int] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)  # task field -> source column actually used


def normalize(loaded: Any, task: str, src: SourceSpec, *, labels: list[str] | None = None) -> NormalizedData:
    """Map a LoadedSource's rows onto `task`'s schema, raising DataError with the fix on bad data."""
    if task not in TASK_FIELDS:
        raise DataError(f"{loaded.name}: unknown task '{task}'; choose one of {list(TASK_FIELDS)}")
    name = loaded.name
    rows = loaded.rows
    if not rows:
        raise DataError(f"{name}: the dataset has no rows; give a file or split with data")
    indices = list(loaded.indices) if len(getattr(loaded, "indices", ()) or ()) == len(rows) else list(range(len(rows)))
    columns = list(loaded.columns) or list(rows[0].keys())
    mapping = _resolve_columns(name, task, src, columns, rows)
    notes: list[str] = []
    if task == "classification":
        out, skipped, label_set = _classification(name, rows, mapping, src, loaded, labels, notes)
    elif task == "qa":
        out, skipped = _qa(name, rows, mapping, notes)
        label_set = None
    else:
        out, skipped = _generative(name, rows, mapping, src, notes)
        label_set = None
    dropped = len(rows) - len(out)
    if not out:
        raise DataError(
            f"{name}: no rows left after normalization ({dropped:,} dropped: {'; '.join(notes) or 'none usable'}); "
            "check the column mapping and the data"
        )
    if skipped:
        gone = set(skipped)
        indices = [idx for i, idx in enumerate(indices) if i not in gone]
    return NormalizedData(
        name=name,
        task=task,
        rows=out,
        labels=label_set,
        fingerprint=fingerprint_rows(out, task),
        dropped=dropped,
        notes=notes,
        indices=indices,
        columns=mapping,
    )


# ---------------------------------------------------------------------------------------------
# Column mapping


def _resolve_columns(name: str, task: str, src: SourceSpec, columns: list[str], rows: list[dict]) -> dict[str, str]:
    required = TASK_FIELDS[task]
    known = required + OPTIONAL_FIELDS[task]
    given = dict(src.columns)
    unknown = [f for f in given if f not in known]
    if unknown:
        raise DataError(
            f"{name}: columns maps unknown field(s) {unknown} for task '{task}'; the fields are {list(known)} "
            "(write columns: {field: <source column>})"
        )
    present = set(columns)
    mapping: dict[str, str] = {}
    for f in known:
        if f in given:
            col = given[f]
            if col not in present:
                raise DataError(
                    f"{name}: columns maps '{f}' to '{col}', which is not a column; the columns are {columns}; "
                    f"fix it with columns: {{{f}: <column>}}"
                )
            mapping[f] = col
        elif f in present:
            mapping[f] = f
        else:
            alias = next((a for a in ALIASES[task].get(f, ()) if a in present and a not in mapping.values()), None)
            if alias is not None:
                mapping[f] = alias
    missing = [f for f in required if f not in mapping]
    # A chat prompt whose last message is the assistant's carries its own answer.
    if missing == ["answer"] and task == "generative" and _looks_like_chat(rows, mapping["prompt"]):
        missing = []
    if missing:
        f = missing[0]
        raise DataError(
            f"{name}: no column for field '{f}' (task '{task}' needs {list(required)}); the columns are "
            f"{columns}; map it with columns: {{{f}: <column>}}"
            + ("; for closed-book questions use the 'generative' task" if task == "qa" and f == "context" else "")
        )
    return mapping


def _looks_like_chat(rows: list[dict], col: str) -> bool:
    for row in rows[:50]:
        v = row.get(col)
        if v is not None:
            return isinstance(v, list) and bool(v) and isinstance(v[-1], dict)
    return False


def _type_error(name: str, index: int, column: str, field_name: str, value: Any, want: str) -> DataError:
    return DataError(
        f"{name}: row {index}: column '{column}' (field '{field_name}') holds a {type(value).__name__}, not {want}; "
        f"map '{field_name}' to a {want.removeprefix('a ')} column with columns: {{{field_name}: <column>}} or fix that row"
    )


# ---------------------------------------------------------------------------------------------
# classification


def _classification(name, rows, mapping, src, loaded, labels, notes):
    tcol, lcol = mapping["text"], mapping["label"]
    texts = [r.get(tcol) for r in rows]
    raw_labels = [r.get(lcol) for r in rows]
    converter = _LabelConverter(name, lcol, src, getattr(loaded, "label_names", None), raw_labels)

    out: list[dict] = []
    skipped: list[int] = []  # row positions dropped (rare: cheaper to track than the kept ones)
    empty = 0
    convert = converter.cache
    append = out.append
    for i, (t, lab) in enumerate(zip(texts, raw_labels)):
        if t.__class__ is not str:
            if t is None:
                empty += 1
                skipped.append(i)
                continue
            raise _type_error(name, i, tcol, "text", t, "text (a string)")
        t = t.strip()
        if not t:
            empty += 1
            skipped.append(i)
            continue
        try:
            label = convert[lab]
        except KeyError:
            label = converter.convert(lab, i)
        except TypeError:  # unhashable: a list or dict
            raise _type_error(name, i, lcol, "label", lab, "a label (string or integer)") from None
        append({"text": t, "label": label})
    if empty:
        notes.append(f"{empty:,} rows with empty text dropped")
    seen = sorted({r["label"] for r in out})
    if labels is not None:
        allowed = set(labels)
        unknown = [lab for lab in seen if lab not in allowed]
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:10]) + (f" (and {len(unknown) - 10} more)" if len(unknown) > 10 else "")
            raise DataError(
                f"{name}: column '{lcol}' has labels outside the study's label set {sorted(allowed)}: {shown}; "
                "map them with label_map: {<source label>: <study label>} or remove those rows"
            )
    return out, skipped, seen


class _LabelConverter:
    """Raw label value -> study label, computed once per distinct value."""

    def __init__(self, name, column, src: SourceSpec, source_names, raw_labels):
        self.name = name
        self.column = column
        self.explicit_names = src.label_names
        self.names = src.label_names or source_names
        self.label_map = src.label_map
        self.cache: dict[Any, str] = {}
        kinds = set()
        for t in set(map(type, raw_labels)):
            if t is bool:
                kinds.add("bool")
            elif t is int or t is float:
                kinds.add("number")
            elif t is str:
                kinds.add("string")
        if len(kinds) > 1:
            examples = {}
            for v in raw_labels:
                k = "bool" if type(v) is bool else "number" if type(v) in (int, float) else "string" if type(v) is str else None
                if k and k not in examples:
                    examples[k] = v
            shown = ", ".join(f"{k} {v!r}" for k, v in examples.items())
            raise DataError(
                f"{name}: label column '{column}' mixes types ({shown}); make every label a name, or every label "
                "an integer with label_names: [...] to name them"
            )

    def convert(self, raw: Any, index: int) -> str:
        if raw is None or (raw.__class__ is float and math.isnan(raw)):
            raise DataError(
                f"{self.name}: row {index}: label column '{self.column}' is missing; fill in the label or remove "
                "rows without one"
            )
        if raw.__class__ is bool:
            name = "true" if raw else "false"
            label = self.label_map.get(name, name)
        elif raw.__class__ is float and raw.is_integer():
            label = self._from_int(int(raw), index)
        elif isinstance(raw, int) and raw.__class__ is not bool:
            label = self._from_int(raw, index)
        elif raw.__class__ is str:
            s = raw.strip()
            if not s:
                raise DataError(
                    f"{self.name}: row {index}: label column '{self.column}' is empty; fill in the label or remove "
                    "rows without one"
                )
            if self.explicit_names and s.isdigit():
                label = self._from_int(int(s), index)
            else:
                label = self.label_map.get(s, s)
        elif raw.__class__ is float:
            s = repr(raw)
            label = self.label_map.get(s, s)
        else:
            raise _type_error(self.name, index, self.column, "label", raw, "a label (string or integer)")
        self.cache[raw] = label
        return label

    def _from_int(self, i: int, index: int) -> str:
        if self.names is not None:
            if not 0 <= i < len(self.names):
                raise DataError(
                    f"{self.name}: row {index}: integer label {i} in column '{self.column}' has no name (label_names "
                    f"has {len(self.names)}: {self.names}); -1 usually marks an unlabeled test split: use a labeled "
                    "split, or remove those rows"
                )
            name = self.names[i]
            if name in self.label_map:
                return self.label_map[name]
            return self.label_map.get(str(i), name)
        s = str(i)
        return self.label_map.get(s, s)


# ---------------------------------------------------------------------------------------------
# qa


def _qa(name, rows, mapping, notes):
    qcol, ccol, acol = mapping["question"], mapping["context"], mapping["answers"]
    out: list[dict] = []
    skipped: list[int] = []  # row positions dropped (rare: cheaper to track than the kept ones)
    empty_q = no_answer = 0
    for i, row in enumerate(rows):
        q = row.get(qcol)
        c = row.get(ccol)
        a = row.get(acol)
        if q.__class__ is not str:
            if q is None:
                empty_q += 1
                skipped.append(i)
                continue
            raise _type_error(name, i, qcol, "question", q, "text (a string)")
        q = q.strip()
        if not q:
            empty_q += 1
            skipped.append(i)
            continue
        if c is None:
            c = ""
        elif c.__class__ is not str:
            raise _type_error(name, i, ccol, "context", c, "text (a string)")
        answers = _qa_answers(name, i, acol, a, c)
        if not answers["text"]:
            no_answer += 1
            skipped.append(i)
            continue
        out.append({"question": q, "context": c, "answers": answers})
    if empty_q:
        notes.append(f"{empty_q:,} rows with an empty question dropped")
    if no_answer:
        notes.append(f"{no_answer:,} rows without an answer dropped (e.g. SQuAD v2 unanswerable questions)")
    return out, skipped


def _qa_answers(name, i, col, a, context):
    if a is None:
        return {"text": [], "answer_start": []}
    if isinstance(a, dict):
        texts = a.get("text")
        starts = a.get("answer_start")
        if isinstance(texts, str):
            texts = [texts]
        if isinstance(starts, int):
            starts = [starts]
        if not isinstance(texts, list):
            raise _type_error(name, i, col, "answers", a, "SQuAD answers {text: [...], answer_start: [...]}")
        texts = [_answer_text(name, i, col, t) for t in texts]
        if not isinstance(starts, list) or len(starts) != len(texts):
            starts = [context.find(t) for t in texts]
        else:
            starts = [int(s) for s in starts]
        pairs = [(t, s) for t, s in zip(texts, starts) if t]
        return {"text": [t for t, _ in pairs], "answer_start": [s for _, s in pairs]}
    if isinstance(a, list):
        texts = [t for t in (_answer_text(name, i, col, t) for t in a) if t]
        return {"text": texts, "answer_start": [context.find(t) for t in texts]}
    t = _answer_text(name, i, col, a)
    if not t:
        return {"text": [], "answer_start": []}
    return {"text": [t], "answer_start": [context.find(t)]}


def _answer_text(name, i, col, t) -> str:
    if isinstance(t, str):
        return t.strip()
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        return str(t)
    raise _type_error(name, i, col, "answers", t, "answer text (a string)")


# ---------------------------------------------------------------------------------------------
# generative

_GSM8K_COMMA = re.compile(r"(?<=\d),(?=\d)")
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


def extract_gsm8k(text: str) -> str | None:
    """GSM8K's final answer: the text after the last '####', stripped, with thousands commas removed."""
    pos = text.rfind("####")
    if pos < 0:
        return None
    ans = _GSM8K_COMMA.sub("", text[pos + 4 :].strip())
    return ans or None


def extract_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} (or \\fbox{...}), braces balanced; None if there is none."""
    best = -1
    for marker in ("\\boxed{", "\\fbox{"):
        pos = text.rfind(marker)
        if pos > best:
            best, start = pos, pos + len(marker)
    if best < 0:
        return None
    depth = 1
    for j in range(start, len(text)):
        ch = text[j]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                ans = text[start:j].strip()
                return ans or None
    return None


_EXTRACTORS = {"gsm8k": extract_gsm8k, "boxed": extract_boxed}


def extract_answer(text: str, method: str) -> str | None:
    """The final answer in `text` by `method` ("none": the stripped text; "gsm8k"; "boxed").

    Used on dataset answers here and on model generations by evaluation; None when not found.
    """
    if method == "none":
        return text.strip() or None
    try:
        return _EXTRACTORS[method](text)
    except KeyError:
        raise ValueError(f"unknown answer_extraction '{method}'; choose none, gsm8k or boxed") from None


def _messages(name, i, col, value) -> list[dict]:
    msgs = []
    for m in value:
        if not isinstance(m, dict):
            raise _type_error(name, i, col, "prompt", m, "a chat message {role, content}")
        role = m.get("role")
        content = m.get("content")
        if role is None and "from" in m:  # ShareGPT {from, value}
            role = _SHAREGPT_ROLES.get(m.get("from"), m.get("from"))
            content = m.get("value")
        if not isinstance(role, str) or not isinstance(content, str):
            raise DataError(
                f"{name}: row {i}: column '{col}' has a chat message without string 'role' and 'content' ({m!r:.120}); "
                "chat prompts must be lists of {role, content}"
            )
        msgs.append({"role": role, "content": content})
    return msgs


def _generative(name, rows, mapping, src, notes):
    pcol = mapping["prompt"]
    acol = mapping.get("answer")
    ccol = mapping.get("context")
    extract = _EXTRACTORS.get(src.answer_extraction)
    out: list[dict] = []
    skipped: list[int] = []  # row positions dropped (rare: cheaper to track than the kept ones)
    empty_prompt = no_answer = not_extracted = context_ignored = 0
    for i, row in enumerate(rows):
        p = row.get(pcol)
        if p.__class__ is str:
            p = p.strip()
            if not p:
                empty_prompt += 1
                skipped.append(i)
                continue
        elif isinstance(p, list):
            p = _messages(name, i, pcol, p)
            if not p:
                empty_prompt += 1
                skipped.append(i)
                continue
        elif p is None:
            empty_prompt += 1
            skipped.append(i)
            continue
        else:
            raise _type_error(name, i, pcol, "prompt", p, "text or a list of chat messages")
        if acol is None:
            # Chat rows carry the answer as the last assistant turn.
            if not isinstance(p, list) or p[-1]["role"] != "assistant" or len(p) < 2:
                no_answer += 1
                skipped.append(i)
                continue
            a = p[-1]["content"]
            p = p[:-1]
        else:
            a = row.get(acol)
            if a is None:
                no_answer += 1
                skipped.append(i)
                continue
            if a.__class__ is not str:
                if isinstance(a, (int, float)) and not isinstance(a, bool):
                    a = str(a)
                else:
                    raise _type_error(name, i, acol, "answer", a, "text (a string)")
        a = a.strip()
        if not a:
            no_answer += 1
            skipped.append(i)
            continue
        if ccol is not None:
            c = row.get(ccol)
            if c is not None and c.__class__ is not str:
                raise _type_error(name, i, ccol, "context", c, "text (a string)")
            if c and c.strip():
                if isinstance(p, str):
                    p = p + "\n\n" + c.strip()
                else:
                    context_ignored += 1
        if extract is not None:
            final = extract(a)
            if final is None:
                not_extracted += 1
                skipped.append(i)
                continue
        else:
            final = a
        out.append({"prompt": p, "answer": final, "answer_full": a})
    if empty_prompt:
        notes.append(f"{empty_prompt:,} rows with an empty prompt dropped")
    if no_answer:
        notes.append(f"{no_answer:,} rows without an answer dropped")
    if not_extracted:
        marker = "'####'" if src.answer_extraction == "gsm8k" else "\\boxed{...}"
        notes.append(
            f"{not_extracted:,} rows whose answer has no {marker} dropped (answer_extraction: {src.answer_extraction})"
        )
    if context_ignored:
        notes.append(f"context ignored on {context_ignored:,} chat-message prompts")
    return out, skipped


# ---------------------------------------------------------------------------------------------
# Keys and fingerprints


def fingerprint_rows(rows: list[dict], task: str) -> str:
    """sha256 over the task and the rows' compact JSON, in chunks (bounded memory, deterministic)."""
    h = hashlib.sha256(task.encode() + b"\n")
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for start in range(0, len(rows), _FP_CHUNK):
        h.update(dumps(rows[start : start + _FP_CHUNK]).encode("utf-8", "surrogatepass"))
        h.update(b"\n")
    return h.hexdigest()


_PUNCT = re.compile(r"[^\w\s]|_")
# The same deletion for ASCII text, done by bytes.translate (several times faster than the regex).
_ASCII_DELETE = bytes(c for c in range(128) if not (chr(c).isalnum() or chr(c).isspace()))


def normalize_text(text: str) -> str:
    """Lowercase, punctuation removed, whitespace collapsed: the text that contamination compares."""
    text = text.lower()
    if text.isascii():
        return " ".join(text.encode().translate(None, _ASCII_DELETE).decode().split())
    return " ".join(_PUNCT.sub("", text).split())


def prompt_text(prompt: str | list[dict]) -> str:
    """A prompt as plain text: a string as is, chat messages' contents joined by newlines."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(m["content"] for m in prompt)


def text_key(row: dict, task: str) -> str:
    """Hash of a normalized row's input text, for finding benchmark rows inside candidate data.

    classification: the text; qa: question and context; generative: the prompt as text.
    """
    if task == "classification":
        text = row["text"]
    elif task == "qa":
        text = row["question"] + "\n" + row["context"]
    else:
        text = prompt_text(row["prompt"])
    return hashlib.blake2b(normalize_text(text).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def text_keys(rows: list[dict], task: str) -> list[str]:
    return [text_key(r, task) for r in rows]
