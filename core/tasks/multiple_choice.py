"""multiple_choice: question (+ context) -> one of several choices, scored by each choice's log-likelihood.

Rows: {"question": str, "context": str, "choices": [str, ...], "answer": int} (answer indexes choices).

`choices` comes from a list column (MMLU's `choices`, HellaSwag's `endings`), a {text, label} column
(ARC's `choices`), several columns (option `choice_columns: [sol1, sol2]`, PIQA) or one fixed list
for every row (option `choices: [no, yes]`, BoolQ). `answer` may be an index, a letter (A, B, ...),
a choice label (ARC's answerKey), a digit string, the text of a choice, or a bool (False -> choice 0).

Each choice is scored as the continuation of the prompt, as OLMES does: `accuracy` picks the choice
with the best log-likelihood per character, `accuracy_raw` the best summed log-likelihood;
`gold_prob` is the softmax probability of the gold choice over the summed log-likelihoods (a
continuous score that moves before accuracy does); `loss` the mean token loss on the gold choice.
"""

from __future__ import annotations

import string

from core.normalize import DataError, text_value, type_error
from core.tasks.base import EvalSettings, Task, gold_probability


class MultipleChoice(Task):
    name = "multiple_choice"
    position = 3
    summary = "question (+ context) → one of several choices"
    fields = ("question", "choices", "answer")
    optional_fields = ("context",)
    aliases = {
        "question": ("goal", "ctx", "query"),
        "choices": ("endings", "options"),
        "answer": ("answerKey", "label", "gold"),
        "context": ("passage",),
    }
    field_help = {
        "question": "the question, or the text a choice continues (HellaSwag's ctx)",
        "choices": "a list of choice texts, or {text: [...], label: [...]} (ARC)",
        "answer": "the correct choice: index, letter, label, digit string, choice text, or bool",
        "context": "optional passage shown before the question (BoolQ's passage)",
    }
    metrics = {"accuracy": True, "accuracy_raw": True, "gold_prob": True, "loss": False}
    continuous_metric = "gold_prob"
    options = {
        "choice_columns": "columns holding one choice each, in order (PIQA: [sol1, sol2])",
        "choices": "the same choices for every row (BoolQ: [no, yes]; a bool answer picks no/yes)",
    }

    def check_options(self, options):
        super().check_options(options)
        for key, value in options.items():
            words = isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)
            if not words or len(value) < 2:
                # YAML 1.1 (spec files) reads no/yes as booleans.
                quote = isinstance(value, list) and bool in map(type, value)
                hint = "; quote words YAML reads as booleans: ['no', 'yes']" if quote else ""
                raise ValueError(
                    f"option {key} must be a list of at least two non-empty strings, e.g. [no, yes]; "
                    f"got {value!r}{hint}"
                )
        if len(options) > 1:
            raise ValueError("give one of the options choice_columns or choices, not both")

    def missing_fields(self, mapping, rows, src):
        missing = super().missing_fields(mapping, rows, src)
        return [f for f in missing if not (f == "choices" and src.options)]

    def normalize_rows(self, name, rows, mapping, src, loaded, labels, notes):
        qcol, ccol, acol = mapping["question"], mapping.get("context"), mapping["answer"]
        choices_of = _choice_reader(name, mapping, src.options, list(loaded.columns) or list(rows[0]))
        out: list[dict] = []
        skipped: list[int] = []
        empty_q = no_answer = bad_choices = 0
        for i, row in enumerate(rows):
            q = text_value(name, i, qcol, "question", row.get(qcol)).strip()
            if not q:
                empty_q += 1
                skipped.append(i)
                continue
            choices, keys = choices_of(i, row)
            if len(choices) < 2 or not all(choices):
                bad_choices += 1
                skipped.append(i)
                continue
            answer = _answer_index(name, i, acol, row.get(acol), choices, keys)
            if answer is None:
                no_answer += 1
                skipped.append(i)
                continue
            c = text_value(name, i, ccol, "context", row.get(ccol)) if ccol else ""
            out.append({"question": q, "context": c.strip(), "choices": choices, "answer": answer})
        for count, what in (
            (empty_q, "an empty question"),
            (bad_choices, "fewer than two choices or an empty one"),
            (no_answer, "no answer (e.g. an unlabeled test split)"),
        ):
            if count:
                notes.append(f"{count:,} rows with {what} dropped")
        return out, skipped

    def text(self, row: dict) -> str:
        return row["question"] + "\n" + row["context"]

    def prompt(self, row: dict, tokenizer=None) -> str:
        context = f"{row['context']}\n" if row["context"] else ""
        return f"{context}Question: {row['question']}\nAnswer:"

    def completion(self, row: dict, tokenizer=None) -> str:
        return f" {row['choices'][row['answer']]}"

    def evaluate(self, model, tokenizer, rows, metrics, settings: EvalSettings):
        from core.evaluation import score_sequences

        prompts, continuations, owner = [], [], []
        for i, row in enumerate(rows):
            prompt = self.prompt(row, tokenizer)
            for choice in row["choices"]:
                prompts.append(prompt)
                continuations.append(f" {choice}")
                owner.append(i)
        sums, counts = score_sequences(model, tokenizer, prompts, continuations, **settings.batching, eos=False)
        per_row: list[list[tuple[float, int, int]]] = [[] for _ in rows]
        for i, s, n, text in zip(owner, sums, counts, continuations):
            per_row[i].append((s, n, len(text)))
        return _scores(rows, per_row, metrics)


def _scores(rows: list[dict], per_row: list[list[tuple[float, int, int]]], metrics: list[str]):
    """Metrics from each row's (summed log-likelihood, tokens, characters) per choice; predictions are choice texts."""
    correct = correct_raw = gold_prob = nll = 0.0
    tokens = 0
    predictions = []
    for row, scored in zip(rows, per_row):
        gold = row["answer"]
        sums = [s for s, _, _ in scored]
        by_char = max(range(len(scored)), key=lambda j: scored[j][0] / max(scored[j][2], 1))
        correct += by_char == gold
        correct_raw += max(range(len(sums)), key=sums.__getitem__) == gold
        gold_prob += gold_probability(sums, gold)
        nll -= sums[gold]
        tokens += scored[gold][1]
        predictions.append(row["choices"][by_char])
    n = max(len(rows), 1)
    values = {
        "accuracy": correct / n,
        "accuracy_raw": correct_raw / n,
        "gold_prob": gold_prob / n,
        "loss": nll / max(tokens, 1),
    }
    return {m: values[m] for m in metrics}, predictions


def _choice_reader(name: str, mapping: dict[str, str], options: dict, columns: list[str]):
    """A function row -> (choice texts, choice labels or None), from the options or the choices column."""
    if "choices" in options:
        fixed = [c.strip() for c in options["choices"]]
        return lambda i, row: (fixed, None)
    if "choice_columns" in options:
        cols = options["choice_columns"]
        absent = [c for c in cols if c not in columns]
        if absent:
            raise DataError(f"{name}: choice_columns names {absent}, which are not columns; the columns are {columns}")
        return lambda i, row: ([_text(name, i, c, row.get(c)) for c in cols], None)
    col = mapping["choices"]

    def read(i: int, row: dict):
        value = row.get(col)
        if isinstance(value, dict) and isinstance(value.get("text"), list):
            keys = value.get("label")
            texts = [_text(name, i, col, t) for t in value["text"]]
            return texts, [str(k).strip() for k in keys] if isinstance(keys, list) and len(keys) == len(texts) else None
        if isinstance(value, list):
            return [_text(name, i, col, t) for t in value], None
        if value is None:
            return [], None
        raise type_error(name, i, col, "choices", value, "a list of choices or {text: [...], label: [...]}")

    return read


def _text(name: str, i: int, col: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise type_error(name, i, col, "choices", value, "choice text (a string)")


def _answer_index(name: str, i: int, col: str, value, choices: list[str], keys: list[str] | None) -> int | None:
    """The index of the gold choice; None when the row has no answer."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        index = int(value)
    elif isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        index = int(value)
    elif isinstance(value, str):
        index = _index_of(value.strip(), choices, keys)
        if index is None:
            raise DataError(
                f"{name}: row {i}: answer {value!r} in column '{col}' is not a choice index, letter, label or text "
                f"(choices: {choices}); map 'answer' to the column holding the correct choice"
            )
    else:
        raise type_error(name, i, col, "answer", value, "an answer (index, letter or choice text)")
    if not 0 <= index < len(choices):
        raise DataError(
            f"{name}: row {i}: answer {value!r} in column '{col}' is out of range for {len(choices)} choices; "
            "-1 usually marks an unlabeled test split: use a labeled split, or remove those rows"
        )
    return index


def _index_of(answer: str, choices: list[str], keys: list[str] | None) -> int | None:
    if keys and answer in keys:
        return keys.index(answer)
    if len(answer) == 1 and answer in string.ascii_uppercase:
        return string.ascii_uppercase.index(answer)
    if answer.lstrip("-").isdigit():
        return int(answer)
    return choices.index(answer) if answer in choices else None


TASK = MultipleChoice()
