"""Macro-averaged F1 over class labels, as a local `evaluate` module.

Shipped with the workbench because `evaluate.load("f1")` fetches its script from the Hub, which an
air-gapped GPU box cannot reach. Labels may be strings (label names) or ints.
"""

import datasets
import evaluate
from sklearn.metrics import f1_score

_DESCRIPTION = """Unweighted mean of per-class F1. The classes are the labels present in the references
or the predictions, or the `labels` list when given (so a class the model never predicts and that is
absent from a small benchmark can still be counted as 0 by passing it explicitly)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str or int): predicted labels.
    references (list of str or int): gold labels, same length as predictions.
    labels (list, optional): the classes to average over; default: sorted union of both inputs.
Returns:
    macro_f1 (float): in [0, 1]; a class with no predicted and no gold rows scores 0.
"""

_FEATURE_OPTIONS = [
    datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
    datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
]


class MacroF1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION, features=_FEATURE_OPTIONS
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predictions and references; an empty batch is an error."""
        # evaluate's own error for an empty batch is an IndexError from its feature inference,
        # and evaluate appends the inputs description to this docstring, so it must exist.
        if predictions is not None and references is not None and len(predictions) == 0 and len(references) == 0:
            raise ValueError("macro_f1 got empty inputs: no predictions and no references")
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def _compute(self, predictions, references, labels=None):
        if len(references) == 0:
            raise ValueError("macro_f1 needs at least one prediction/reference pair")
        if labels is None:
            labels = sorted(set(references) | set(predictions))
        score = f1_score(references, predictions, labels=list(labels), average="macro", zero_division=0)
        return {"macro_f1": float(score)}
