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
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION, features=_FEATURE_OPTIONS
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predictions and references; an empty batch is an error."""
        # evaluate's own error for an empty batch is an IndexError from its feature inference,
        # and evaluate appends the inputs description to this docstring, so it must exist.
        if predictions is not None and references is not None and len(predictions) == 0 and len(references) == 0:
            raise ValueError("accuracy got empty inputs: no predictions and no references")
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def _compute(self, predictions, references):
        if len(references) == 0:
            raise ValueError("accuracy needs at least one prediction/reference pair")
        hits = sum(1 for p, r in zip(predictions, references) if p == r)
        return {"accuracy": hits / len(references)}
