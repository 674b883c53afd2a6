"""classification: text -> label, scored by the log-likelihood of each label after the prompt.

Rows: {"text": str, "label": str}. `gold_prob` (the continuous metric every study measures) is the gold
label's probability normalized over the labels, mean over rows.

Label rules: strings are stripped and kept; integers become names through `src.label_names`, else
the source's ClassLabel names, else their decimal string; booleans become "false" / "true"; then
`src.label_map` renames (keys are the names above; for an integer label the decimal string also
works). A study's label set (`labels`) makes any other label an error.
"""

from __future__ import annotations

import math
from typing import Any

from core.normalize import DataError, type_error
from core.tasks.base import EvalSettings, Task, gold_probability


class Classification(Task):
    name = "classification"
    position = 0
    summary = "text → label"
    fields = ("text", "label")
    aliases = {"text": ("sentence", "content", "review"), "label": ("labels", "class", "category", "intent")}
    field_help = {"text": "the input text", "label": "its class: a name, an integer (named by label_names) or a bool"}
    metrics = {"macro_f1": True, "accuracy": True, "gold_prob": True, "loss": False}
    continuous_metric = "gold_prob"
    encoder_trains = True
    source_options = ("label_names", "label_map")

    def normalize_rows(self, name, rows, mapping, src, loaded, labels, notes):
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
                raise type_error(name, i, tcol, "text", t, "text (a string)")
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
                raise type_error(name, i, lcol, "label", lab, "a label (string or integer)") from None
            append({"text": t, "label": label})
        if empty:
            notes.append(f"{empty:,} rows with empty text dropped")
        if labels is not None:
            _check_label_set(name, lcol, self.labels(out), labels)
        return out, skipped

    def labels(self, rows: list[dict]) -> list[str]:
        return sorted({r["label"] for r in rows})

    def text(self, row: dict) -> str:
        return row["text"]

    def prompt(self, row: dict, tokenizer=None) -> str:
        return f"Text: {row['text']}\nLabel:"

    def completion(self, row: dict, tokenizer=None) -> str:
        return f" {row['label']}"

    def evaluate(self, model, tokenizer, rows, metrics, settings: EvalSettings):
        from core.metrics import compute_metrics

        labels = settings.labels
        if not labels:
            raise ValueError("classification evaluation needs the study's label names")
        scores, loss = self._label_scores(model, tokenizer, rows, labels, settings)
        predictions = [labels[max(range(len(labels)), key=lambda j: s[j])] for s in scores]
        results: dict[str, float] = {}
        gold = [labels.index(r["label"]) for r in rows]
        if "loss" in metrics:
            results["loss"] = loss(gold)
        if "gold_prob" in metrics:
            results["gold_prob"] = sum(gold_probability(s, g) for s, g in zip(scores, gold)) / max(len(rows), 1)
        references = [r["label"] for r in rows]
        scores_wanted = [m for m in metrics if m not in ("loss", "gold_prob")]
        results.update(compute_metrics(self.name, predictions, references, scores_wanted, labels=labels))
        return results, predictions

    def _label_scores(self, model, tokenizer, rows, labels, settings: EvalSettings):
        """Per row, a score for each label, and loss(gold ids) on the same forward passes.

        A causal LM scores each label's tokens after the prompt (loss: per gold-label token); an encoder
        classifier gives log-softmax over its head (loss: cross-entropy per row).
        """
        from core.encoder import is_classifier, label_log_probs

        if is_classifier(model):
            texts = [r["text"] for r in rows]
            scores = label_log_probs(model, tokenizer, texts, labels, **settings.batching)
            return scores, lambda gold: -sum(s[g] for s, g in zip(scores, gold)) / max(len(gold), 1)
        from core.label_scoring import score_labels

        prompts = [self.prompt(r, tokenizer) for r in rows]
        scores, counts = score_labels(model, tokenizer, prompts, labels, **settings.batching)

        def loss(gold):
            return -sum(s[g] for s, g in zip(scores, gold)) / max(sum(c[g] for c, g in zip(counts, gold)), 1)

        return scores, loss

    def metric_inputs(self, predictions, references, labels):
        """Labels are names (str) or ids (int); if both kinds appear, compare them as strings."""
        values = predictions + references + list(labels or [])
        if all(isinstance(v, str) for v in values) or all(_is_int(v) for v in values):
            return predictions, references, (list(labels) if labels is not None else None)
        as_str = lambda seq: [str(v) for v in seq]  # noqa: E731
        return as_str(predictions), as_str(references), (as_str(labels) if labels is not None else None)


def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and hasattr(value, "__index__")


def _check_label_set(name: str, column: str, seen: list[str], labels: list[str]) -> None:
    allowed = set(labels)
    unknown = [lab for lab in seen if lab not in allowed]
    if unknown:
        more = f" (and {len(unknown) - 10} more)" if len(unknown) > 10 else ""
        shown = ", ".join(repr(u) for u in unknown[:10]) + more
        raise DataError(
            f"{name}: column '{column}' has labels outside the study's label set {sorted(allowed)}: {shown}; "
            "map them with label_map: {<source label>: <study label>} or remove those rows"
        )


class _LabelConverter:
    """Raw label value -> study label, computed once per distinct value."""

    def __init__(self, name, column, src, source_names, raw_labels):
        self.name = name
        self.column = column
        self.explicit_names = src.label_names
        self.names = src.label_names or source_names
        self.label_map = src.label_map
        self.cache: dict[Any, str] = {}
        kinds = {_kind(v) for v in set(map(type, raw_labels))} - {None}
        if len(kinds) > 1:
            examples = {}
            for v in raw_labels:
                k = _kind(type(v))
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
            raise type_error(self.name, index, self.column, "label", raw, "a label (string or integer)")
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


def _kind(t: type) -> str | None:
    if t is bool:
        return "bool"
    if t is int or t is float:
        return "number"
    if t is str:
        return "string"
    return None


TASK = Classification()
