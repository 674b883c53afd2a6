"""SQuAD exact match and token F1, as a local `evaluate` module, reported in [0, 1].

Follows the official SQuAD evaluation script: answers are normalized (lowercase, punctuation
removed, articles a/an/the removed, whitespace collapsed) and each prediction takes the best score
over all gold answers. An example with no gold answers is treated as unanswerable (gold ""), and
F1 between two empty token lists is 1 (the SQuAD v2 rule), so an empty prediction is right there.
Unlike the Hub's `squad` metric the scores are fractions, not percentages.
"""

import collections
import re
import string

import datasets
import evaluate

_DESCRIPTION = "SQuAD-normalized exact match and token F1, max over gold answers, averaged over examples."

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): one predicted answer per example.
    references (list of list of str): all gold answers of each example.
Returns:
    exact_match (float): in [0, 1].
    f1 (float): in [0, 1].
"""

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match_score(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1_score(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


class SquadEmF1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
            ),
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predictions and references; an empty batch is an error."""
        # evaluate's own error for an empty batch is an IndexError from its feature inference,
        # and evaluate appends the inputs description to this docstring, so it must exist.
        if predictions is not None and references is not None and len(predictions) == 0 and len(references) == 0:
            raise ValueError("squad_em_f1 got empty inputs: no predictions and no references")
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def _compute(self, predictions, references):
        if len(references) == 0:
            raise ValueError("squad_em_f1 needs at least one prediction/reference pair")
        em_total = 0.0
        f1_total = 0.0
        for prediction, golds in zip(predictions, references):
            golds = list(golds) or [""]
            em_total += max(exact_match_score(prediction, gold) for gold in golds)
            f1_total += max(token_f1_score(prediction, gold) for gold in golds)
        n = len(references)
        return {"exact_match": em_total / n, "f1": f1_total / n}
