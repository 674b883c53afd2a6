"""generative: prompt -> answer, scored on greedy generations (exact match, token F1, math equivalence).

Rows: {"prompt": str | [{"role": str, "content": str}, ...], "answer": str, "answer_full": str}, plus
"info" (a dict) and "task" (a str) when the source has them (the `verifiers` library's schema).
`answer` is what evaluation compares (the extracted final answer with answer_extraction, e.g.
GSM8K's "#### 42" -> "42"); `answer_full` is the original answer text, the completion to train on.
`info` is the row's provenance, kept as is; `task` tags the row (the notes count rows per tag).
"""

from __future__ import annotations

import json
import re
from typing import Literal

from core.normalize import DataError, type_error
from core.tasks.base import EvalSettings, Task

_GSM8K_COMMA = re.compile(r"(?<=\d),(?=\d)")
_ANSWER_IS = re.compile(r"the (?:final )?answer is\s*:?\s*", re.IGNORECASE)
# How a source's final answer is found (SourceSpec.answer_extraction); _EXTRACTORS below does each.
AnswerExtraction = Literal["none", "gsm8k", "boxed", "answer_is"]
EXTRACTIONS: tuple[str, ...] = AnswerExtraction.__args__
_MARKERS = {"gsm8k": "'####'", "boxed": "\\boxed{...}", "answer_is": "'The answer is:'"}
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


class Generative(Task):
    name = "generative"
    position = 2
    summary = "prompt → answer"
    fields = ("prompt", "answer")
    # context is folded into a string prompt: "<prompt>\n\n<context>" (e.g. Dolly); info and task are kept.
    optional_fields = ("context", "info", "task")
    aliases = {
        "prompt": ("question", "instruction", "problem", "messages"),
        "answer": ("solution", "response", "output"),
    }
    field_help = {
        "prompt": "the prompt: text, or chat messages [{role, content}] (the last assistant turn can be the answer)",
        "answer": "the answer text (answer_extraction takes the final answer from it)",
        "context": "optional text appended to a string prompt",
        "info": "optional per-row provenance: a dict (or its JSON text), kept with the row",
        "task": "optional per-row tag, e.g. the sub-task a row belongs to",
    }
    metrics = {"exact_match": True, "f1": True, "math_equiv": True, "loss": False}
    source_options = ("answer_extraction",)

    def default_metrics(self, math: bool = False) -> tuple[str, ...]:
        """Math benchmarks are graded by equivalence first; other studies do not pay for it."""
        plain = ("exact_match", "f1", "loss")
        return ("math_equiv", *plain) if math else plain

    def missing_fields(self, mapping, rows, src):
        missing = super().missing_fields(mapping, rows, src)
        # A chat prompt whose last message is the assistant's carries its own answer.
        if missing == ["answer"] and _looks_like_chat(rows, mapping["prompt"]):
            return []
        return missing

    def normalize_rows(self, name, rows, mapping, src, loaded, labels, notes):
        pcol, acol, ccol = mapping["prompt"], mapping.get("answer"), mapping.get("context")
        icol, tcol = mapping.get("info"), mapping.get("task")
        extract = _EXTRACTORS.get(src.answer_extraction)
        tags: dict[str, int] = {}
        out: list[dict] = []
        skipped: list[int] = []  # row positions dropped (rare: cheaper to track than the kept ones)
        counts = {"empty_prompt": 0, "no_answer": 0, "not_extracted": 0, "context_ignored": 0}
        for i, row in enumerate(rows):
            p = _prompt(name, i, pcol, row.get(pcol))
            if p is None:
                counts["empty_prompt"] += 1
                skipped.append(i)
                continue
            p, a = _answer(name, i, acol, row, p)
            if not a:
                counts["no_answer"] += 1
                skipped.append(i)
                continue
            if ccol is not None:
                p = _with_context(name, i, ccol, row.get(ccol), p, counts)
            final = extract(a) if extract is not None else a
            if final is None:
                counts["not_extracted"] += 1
                skipped.append(i)
                continue
            row_out = {"prompt": p, "answer": final, "answer_full": a}
            if icol is not None:
                info = _info(row.get(icol))
                if info:
                    row_out["info"] = info
            if tcol is not None:
                tag = row.get(tcol)
                if isinstance(tag, (int, float)) and not isinstance(tag, bool):
                    tag = str(tag)
                if tag is not None and not isinstance(tag, str):
                    raise type_error(name, i, tcol, "task", tag, "text (a string)")
                if tag and tag.strip():
                    row_out["task"] = tag.strip()
                    tags[row_out["task"]] = tags.get(row_out["task"], 0) + 1
            out.append(row_out)
        _notes(notes, counts, src.answer_extraction)
        if tags:
            top = sorted(tags.items(), key=lambda kv: -kv[1])
            shown = ", ".join(f"{t} {n:,}" for t, n in top[:8]) + (f", and {len(top) - 8} more" if len(top) > 8 else "")
            notes.append(f"rows by task tag: {shown}")
        return out, skipped

    def text(self, row: dict) -> str:
        return prompt_as_text(row["prompt"])

    def prompt(self, row: dict, tokenizer=None) -> str:
        prompt = row["prompt"]
        template = getattr(tokenizer, "chat_template", None) if tokenizer is not None else None
        if template:
            messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if isinstance(prompt, list):
            return _render_messages(prompt)
        return f"{prompt}\nAnswer:"

    def completion(self, row: dict, tokenizer=None) -> str:
        """Plain layouts put a space after the colon; chat templates do not."""
        answer = row.get("answer_full") or row["answer"]
        template = getattr(tokenizer, "chat_template", None) if tokenizer is not None else None
        return answer if template else f" {answer}"

    def turns(self, row: dict, tokenizer=None) -> list[tuple[str, bool]] | None:
        """Every assistant turn of a multi-turn chat is trained, not only the last one."""
        prompt = row["prompt"]
        if not isinstance(prompt, list) or not any(m["role"] == "assistant" for m in prompt):
            return None
        messages = [*prompt, {"role": "assistant", "content": row.get("answer_full") or row["answer"]}]
        if getattr(tokenizer, "chat_template", None) if tokenizer is not None else None:
            return _template_turns(messages, tokenizer)
        return _plain_turns(messages)

    def evaluate(self, model, tokenizer, rows, metrics, settings: EvalSettings):
        from core.evaluation import first_line, generate_and_score

        def clean(text: str) -> str:
            if settings.answer_extraction != "none":
                found = extract_answer(text.strip(), settings.answer_extraction)
                if found is not None:
                    return found
            return first_line(text)

        references = [[r["answer"]] for r in rows]
        return generate_and_score(self, model, tokenizer, rows, references, metrics, settings, clean=clean)

    def metric_inputs(self, predictions, references, labels):
        predictions = ["" if p is None else str(p) for p in predictions]
        references = [[r] if isinstance(r, str) else [str(g) for g in r] for r in references]
        return predictions, references, labels


def _prompt(name, i, col, p):
    """The stripped prompt text or chat messages; None when empty."""
    if p.__class__ is str:
        return p.strip() or None
    if isinstance(p, list):
        return _messages(name, i, col, p) or None
    if p is None:
        return None
    raise type_error(name, i, col, "prompt", p, "text or a list of chat messages")


def _answer(name, i, col, row, p):
    """(prompt, stripped answer); the answer is "" when there is none."""
    if col is None:
        # Chat rows carry the answer as the last assistant turn.
        if not isinstance(p, list) or p[-1]["role"] != "assistant" or len(p) < 2:
            return p, ""
        return p[:-1], p[-1]["content"].strip()
    a = row.get(col)
    if a is None:
        return p, ""
    if a.__class__ is not str:
        if isinstance(a, (int, float)) and not isinstance(a, bool):
            a = str(a)
        else:
            raise type_error(name, i, col, "answer", a, "text (a string)")
    return p, a.strip()


def _info(value) -> dict | None:
    """A row's info: a dict as is, JSON text of an object parsed, empty or missing as None, anything
    else kept as {"value": ...} (provenance is never dropped, and never fails a load)."""
    if value is None or isinstance(value, dict):
        return value or None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed or None
    return {"value": value}


def _with_context(name, i, col, c, p, counts):
    if c is not None and c.__class__ is not str:
        raise type_error(name, i, col, "context", c, "text (a string)")
    if c and c.strip():
        if isinstance(p, str):
            return p + "\n\n" + c.strip()
        counts["context_ignored"] += 1
    return p


def _notes(notes, counts, extraction):
    if counts["empty_prompt"]:
        notes.append(f"{counts['empty_prompt']:,} rows with an empty prompt dropped")
    if counts["no_answer"]:
        notes.append(f"{counts['no_answer']:,} rows without an answer dropped")
    if counts["not_extracted"]:
        marker = _MARKERS[extraction]
        notes.append(
            f"{counts['not_extracted']:,} rows whose answer has no {marker} dropped (answer_extraction: {extraction})"
        )
    if counts["context_ignored"]:
        notes.append(f"context ignored on {counts['context_ignored']:,} chat-message prompts")


def _looks_like_chat(rows: list[dict], col: str) -> bool:
    for row in rows[:50]:
        v = row.get(col)
        if v is not None:
            return isinstance(v, list) and bool(v) and isinstance(v[-1], dict)
    return False


def _messages(name, i, col, value) -> list[dict]:
    msgs = []
    for m in value:
        if not isinstance(m, dict):
            raise type_error(name, i, col, "prompt", m, "a chat message {role, content}")
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


def _template_turns(messages: list[dict], tokenizer) -> list[tuple[str, bool]] | None:
    """Segments from the template's own rendering of each conversation prefix; None when the template
    rewrites earlier turns as the chat grows (then only the last turn is trained)."""
    segments: list[tuple[str, bool]] = []
    done = ""
    for k, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(messages[:k], tokenize=False, add_generation_prompt=True)
        through = tokenizer.apply_chat_template(messages[: k + 1], tokenize=False)
        if not before.startswith(done) or not through.startswith(before):
            return None
        segments += [(before[len(done) :], False), (through[len(before) :], True)]
        done = through
    return segments


def _plain_turns(messages: list[dict]) -> list[tuple[str, bool]]:
    """The plain layout of _render_messages, each assistant turn written out and trained."""
    segments: list[tuple[str, bool]] = []
    pending: list[str] = []
    for m in messages:
        if m["role"] == "assistant":
            head = "\n".join([*pending, "Assistant:"])
            segments += [(("\n" if segments else "") + head, False), (" " + m["content"], True)]
            pending = []
        else:
            pending.append(f"{m['role'].capitalize()}: {m['content']}")
    return segments


def _render_messages(messages: list[dict]) -> str:
    lines = [f"{m.get('role', 'user').capitalize()}: {m.get('content', '')}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"


def prompt_as_text(prompt: str | list[dict]) -> str:
    """A prompt as plain text: a string as is, chat messages' contents joined by newlines."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(m["content"] for m in prompt)


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


def extract_answer_is(text: str) -> str | None:
    """MetaMathQA's final answer: the rest of the line after the last "The answer is:" (no final period)."""
    found = list(_ANSWER_IS.finditer(text))
    if not found:
        return None
    ans = text[found[-1].end() :].split("\n", 1)[0].strip().rstrip(".").strip()
    return ans or None


_EXTRACTORS = {"gsm8k": extract_gsm8k, "boxed": extract_boxed, "answer_is": extract_answer_is}


def extract_answer(text: str, method: str) -> str | None:
    """The final answer in `text` by `method` ("none": the stripped text; "gsm8k"; "boxed"; "answer_is").

    Used on dataset answers when normalizing and on model generations when evaluating; None when not found.
    """
    if method == "none":
        return text.strip() or None
    try:
        return _EXTRACTORS[method](text)
    except KeyError:
        raise ValueError(f"unknown answer_extraction '{method}'; choose one of {', '.join(EXTRACTIONS)}") from None


TASK = Generative()
