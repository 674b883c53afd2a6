"""qa: extractive question answering, question + context -> an answer span, scored on generations.

Rows: {"question": str, "context": str, "answers": {"text": [str, ...], "answer_start": [int, ...]}}.
"""

from __future__ import annotations

from core.normalize import text_value, type_error
from core.tasks.base import EvalSettings, Task


class QA(Task):
    name = "qa"
    position = 1
    summary = "question + context → answer span"
    fields = ("question", "context", "answers")
    aliases = {"answers": ("answer",)}
    field_help = {
        "question": "the question",
        "context": "the passage holding the answer",
        "answers": "SQuAD answers {text: [...], answer_start: [...]}, a list of strings or one string",
    }
    missing_help = {"context": "; for closed-book questions use the 'generative' task"}
    metrics = {"exact_match": True, "f1": True, "loss": False}

    def normalize_rows(self, name, rows, mapping, src, loaded, labels, notes):
        qcol, ccol, acol = mapping["question"], mapping["context"], mapping["answers"]
        out: list[dict] = []
        skipped: list[int] = []  # row positions dropped (rare: cheaper to track than the kept ones)
        empty_q = no_answer = 0
        for i, row in enumerate(rows):
            q = text_value(name, i, qcol, "question", row.get(qcol)).strip()
            if not q:
                empty_q += 1
                skipped.append(i)
                continue
            c = text_value(name, i, ccol, "context", row.get(ccol))
            answers = _answers(name, i, acol, row.get(acol), c)
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

    def text(self, row: dict) -> str:
        return row["question"] + "\n" + row["context"]

    def prompt(self, row: dict, tokenizer=None) -> str:
        return f"Context: {row['context']}\nQuestion: {row['question']}\nAnswer:"

    def completion(self, row: dict, tokenizer=None) -> str:
        texts = row["answers"]["text"]
        return f" {texts[0] if texts else ''}"

    def evaluate(self, model, tokenizer, rows, metrics, settings: EvalSettings):
        from core.evaluation import first_line, generate_and_score

        references = [list(r["answers"]["text"]) or [""] for r in rows]
        return generate_and_score(self, model, tokenizer, rows, references, metrics, settings, clean=first_line)

    def metric_inputs(self, predictions, references, labels):
        predictions = ["" if p is None else str(p) for p in predictions]
        references = [[r] if isinstance(r, str) else [str(g) for g in r] for r in references]
        return predictions, references, labels


def _answers(name, i, col, a, context):
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
            raise type_error(name, i, col, "answers", a, "SQuAD answers {text: [...], answer_start: [...]}")
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
    raise type_error(name, i, col, "answers", t, "answer text (a string)")


TASK = QA()
