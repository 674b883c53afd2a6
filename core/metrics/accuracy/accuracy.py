"""Share of exact label matches, as a local `evaluate` module (the Hub's `accuracy` needs network)."""

import datasets
import evaluate

_DESCRIPTION = "Fraction of predictions equal to their reference label."

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str or int): predicted labels.
    references (list of str or int): gold labels, same length as predictions.
Returns:
    accuracy (float): in [0, 1].
"""

_FEATURE_OPTIONS = [
    datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
    datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
]


class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=_FEATURE_OPTIONS,
        )

    def _compute(self, predictions, references):
        if len(references) == 0:
            raise ValueError("accuracy needs at least one prediction/reference pair")
        hits = sum(1 for p, r in zip(predictions, references) if p == r)
        return {"accuracy": hits / len(references)}
