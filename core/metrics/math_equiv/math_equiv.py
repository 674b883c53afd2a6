"""Math equivalence (math-verify), as a local `evaluate` module, reported in [0, 1].

A prediction is right when it equals one of its gold answers mathematically: `\\frac{1}{2}`, `0.5`
and `1/2` are one answer, `1,000` and `1000` too, `[1,2)` is not `[1,2]`. Grading runs in a child
process with a time limit per answer (core.math_grading says why); an answer that runs past it
counts as wrong.
"""

import datasets
import evaluate

from core.math_grading import grade

_DESCRIPTION = "Share of predictions mathematically equal to one of their gold answers (math-verify)."

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): one extracted final answer per example.
    references (list of list of str): all gold answers of each example.
Returns:
    math_equiv (float): in [0, 1].
"""


class MathEquiv(evaluate.Metric):
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
        # As in squad_em_f1: evaluate's own error for an empty batch is an IndexError.
        if predictions is not None and references is not None and len(predictions) == 0 and len(references) == 0:
            raise ValueError("math_equiv got empty inputs: no predictions and no references")
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def _compute(self, predictions, references):
        if len(references) == 0:
            raise ValueError("math_equiv needs at least one prediction/reference pair")
        verdicts = grade(predictions, references)
        return {"math_equiv": sum(verdicts) / len(verdicts)}
