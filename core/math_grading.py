"""Math answers graded by equivalence (math-verify), with a time limit per answer that always holds.

math-verify bounds its sympy work with SIGALRM, which Python allows only in a process's main thread.
The dashboard runs page code in other threads, and in an RQ work horse the alarm is RQ's own job
timeout, which math-verify's `signal.alarm(0)` would cancel. So grading always runs in a child
process (`python -m core.math_grading`): its main thread is free for math-verify's alarm, the
caller's signals are untouched, and the caller also bounds the child's total time. The child starts
in about 0.5 s; docs/BENCHMARKS.md has the answers graded per second.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ANSWER_TIME_LIMIT_S = 5  # per parse and per comparison, as math-verify's default
_START_ALLOWANCE_S = 60  # the child's imports, on a loaded machine


class GradingError(RuntimeError):
    """The grading process failed or ran past its overall limit."""


def grade(
    predictions: Sequence[str], references: Sequence[Sequence[str]], *, limit_s: int = ANSWER_TIME_LIMIT_S
) -> list[bool]:
    """For each prediction, whether it equals one of its gold answers mathematically.

    An answer whose parsing or comparison runs past `limit_s` seconds counts as not equal.
    """
    if len(predictions) != len(references):
        raise ValueError(f"got {len(predictions)} predictions but {len(references)} references; they must pair up")
    if not predictions:
        return []
    pairs = [[str(p), [str(g) for g in golds]] for p, golds in zip(predictions, references)]
    # Each answer costs at most one parse per text and one comparison per gold answer.
    budget = _START_ALLOWANCE_S + sum((2 + 2 * len(g)) * limit_s for _, g in pairs)
    request = json.dumps({"limit_s": int(limit_s), "pairs": pairs})
    try:
        done = subprocess.run(
            [sys.executable, "-m", "core.math_grading"],
            input=request,
            capture_output=True,
            text=True,
            timeout=budget,
            cwd=Path(__file__).resolve().parent.parent,
        )
    except subprocess.TimeoutExpired:
        raise GradingError(f"math grading of {len(pairs)} answers ran past {budget} s and was stopped") from None
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        raise GradingError(f"math grading failed (exit {done.returncode}): {' | '.join(tail)}")
    verdicts = json.loads(done.stdout)
    return [bool(v) for v in verdicts]


# ---- the child process: math-verify in its own main thread ----


def _parse(text: str, limit_s: int):
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    config = [LatexExtractionConfig(), ExprExtractionConfig()]
    text = text.strip().replace("\\$", "")  # a currency sign is not part of the value
    if not text:
        return []
    # Our answers are already extracted (no $...$ around them): read them as LaTeX first, so that
    # "3, 5" is a set and "\frac12" a fraction, then as a plain expression.
    if "$" not in text and "\\boxed" not in text:
        found = parse(f"${text}$", extraction_config=config, parsing_timeout=limit_s)
        if found:
            return found
    return parse(text, extraction_config=config, parsing_timeout=limit_s)


def _equal(prediction: str, golds: list[str], limit_s: int) -> bool:
    from math_verify import verify

    predicted = _parse(prediction, limit_s)
    if not predicted:
        return False
    for gold in golds:
        parsed = _parse(gold, limit_s)
        if parsed and verify(parsed, predicted, timeout_seconds=limit_s):
            return True
    return False


def _main() -> None:
    import logging

    logging.disable(logging.WARNING)  # math-verify logs every timeout; the verdict says it
    request = json.load(sys.stdin)
    limit_s = request["limit_s"]
    json.dump([_equal(p, golds, limit_s) for p, golds in request["pairs"]], sys.stdout)


if __name__ == "__main__":
    _main()
