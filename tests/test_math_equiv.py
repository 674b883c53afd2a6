"""math_equiv: answers graded by mathematical equivalence (math-verify), with a time limit per answer."""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest

from core.math_grading import grade
from core.metrics import compute_metrics
from core.study import run_study
from core.tasks.generative import extract_answer
from tests.specs import TINY_TRAINING, tiny_spec

# (gold, prediction, equal?) — each row is one verdict math_equiv must give.
PAIRS = [
    # fractions and decimals
    ("\\frac{1}{2}", "0.5", True),
    ("1/2", "0.5", True),
    ("\\dfrac12", "1/2", True),
    ("\\frac{3}{4}", "0.75", True),
    ("0.333", "1/3", False),
    ("12", "12.0", True),
    ("1.0", "1", True),
    ("-3", "3", False),
    ("42", "43", False),
    # thousands separators
    ("1,000", "1000", True),
    ("1,000,000", "1000000", True),
    ("1,5", "1.5", False),  # a list of two numbers, not a decimal comma
    # units, degrees, percent, currency
    ("5\\text{ cm}", "5", True),
    ("5 cm", "5", True),
    ("10^{\\circ}", "10", True),
    ("50\\%", "0.5", True),
    ("50\\%", "50", True),
    ("\\$10", "10", True),
    # LaTeX wrappers
    ("\\boxed{42}", "42", True),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})", True),
    ("x=3", "3", True),
    ("2\\sqrt{2}", "\\sqrt{8}", True),
    ("x^2+2x+1", "(x+1)^2", True),
    ("\\pi", "3.14159", False),
    # intervals
    ("[1,2)", "[1,2)", True),
    ("[1,2)", "[1,2]", False),
    ("(-\\infty, 3]", "(-\\infty,3]", True),
    ("(1,2)", "(2,1)", False),
    # multiple answers (order does not matter, every answer must be there)
    ("3, 5", "5, 3", True),
    ("\\{3,5\\}", "3,5", True),
    ("3,5", "3, 5, 7", False),
    ("2, -2", "-2, 2", True),
    # nothing to grade
    ("7", "", False),
    ("7", "seven apples", False),
]


def test_math_equiv_gives_the_expected_verdict_on_every_pair():
    verdicts = grade([p for _, p, _ in PAIRS], [[g] for g, _, _ in PAIRS])
    wrong = [(g, p, want) for (g, p, want), got in zip(PAIRS, verdicts) if got != want]
    assert not wrong, f"pairs graded against their expected verdict: {wrong}"
    assert len(PAIRS) >= 30


def test_a_prediction_is_right_when_it_equals_any_gold_answer():
    assert grade(["0.5", "2"], [["3", "1/2"], ["1", "3"]]) == [True, False]


def test_metric_reports_the_share_beside_exact_match():
    scores = compute_metrics(
        "generative",
        ["0.5", "1,000", "4", "x"],
        [["\\frac{1}{2}"], ["1000"], ["4"], ["y"]],
        ["math_equiv", "exact_match"],
    )
    assert scores["math_equiv"] == pytest.approx(0.75)
    # SQuAD normalization drops punctuation, so "1,000" matches too; "0.5" and "\frac{1}{2}" do not.
    assert scores["exact_match"] == pytest.approx(0.5)


def test_adversarial_latex_is_cut_off_at_the_time_limit_and_counts_as_wrong():
    started = time.monotonic()
    verdicts = grade(["9^{9^{9^{9}}}", "1/2"], [["1"], ["0.5"]], limit_s=1)
    assert verdicts == [False, True]
    assert time.monotonic() - started < 30  # one second per operation, not an endless power


def test_grading_works_from_a_thread_and_leaves_the_callers_alarm_alone():
    """The dashboard grades from a page thread; an RQ work horse's job timeout is a SIGALRM alarm."""
    fired = []

    def handler(*_):
        fired.append(True)

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 120)
    try:
        out: list = []
        worker = threading.Thread(target=lambda: out.append(grade(["\\frac{2}{4}"], [["0.5"]], limit_s=1)))
        worker.start()
        worker.join(60)
        assert out == [[True]]
        assert grade(["9^{9^{9^{9}}}"], [["1"]], limit_s=1) == [False]  # from the main thread too
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < remaining <= 120, "the caller's alarm was cancelled"
        assert signal.getsignal(signal.SIGALRM) is handler and not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_predictions_and_references_must_pair_up():
    with pytest.raises(ValueError, match="pair up"):
        grade(["1"], [])


@pytest.mark.parametrize(
    "text, method, want",
    [
        ("Half of 8 is 4. The answer is: 4", "answer_is", "4"),
        ("So x = 2.\nThe answer is: \\frac{1}{2}.", "answer_is", "\\frac{1}{2}"),
        ("The answer is 3. Then again, the final answer is 5", "answer_is", "5"),
        ("no marker here", "answer_is", None),
    ],
)
def test_answer_is_extraction_takes_the_last_marked_answer(text, method, want):
    assert extract_answer(text, method) == want


def test_a_math_study_ranks_by_math_equiv_where_string_match_sees_nothing(tmp_path, store):
    """The offline math demo: candidates answer in LaTeX fractions, the benchmark's gold answers are decimals."""
    spec = tiny_spec(
        task="generative",
        name="math",
        d0={"catalog": "demo/math_d0", "name": "d0"},
        benchmark={"catalog": "demo/math_benchmark", "name": "benchmark", "max_rows": 40},
        candidates=[
            {"catalog": "demo/math_helpful", "name": "helpful", "max_rows": 400},
            {"catalog": "demo/math_offdomain", "name": "offdomain", "max_rows": 400},
        ],
        sizes=[160],  # one size: the study ranks at it (3 runs, the suite's time)
        training={**TINY_TRAINING, "min_steps": 150, "max_new_tokens": 24},
    )
    assert spec.metrics == ["math_equiv", "exact_match", "f1", "loss"] and spec.primary_metric == "math_equiv"
    out = tmp_path / "out"
    run_study(spec, out, store=store)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["primary_metric"] == "math_equiv" and not metrics["failed_runs"]
    runs = metrics["runs"]
    assert all(r["metrics"]["exact_match"] == 0 for r in runs)  # "\frac{3}{4}" is never the string "0.75"
    best = max(runs, key=lambda r: r["metrics"]["math_equiv"])
    assert best["arm"] == "helpful" and best["metrics"]["math_equiv"] >= 0.8
    assert [r["candidate"] for r in metrics["ranking"]] == ["helpful", "offdomain"]
    # The benchmark's loss prefers the off-domain sums: only grading by equivalence sees the fractions learnt.
    assert metrics["ranking_by_metric"]["loss"]["ranking"][0]["candidate"] == "offdomain"
