"""math_equiv: answers graded per second, and what the time limit per answer costs on adversarial input.

Grading runs in a child process (core.math_grading), so each `grade` call pays the child's start
once. Three sets, each graded in one call, best of 3 rounds:
- typical: 2,000 (prediction, gold) pairs of the kinds the math sets hold: integers, fractions,
  decimals, thousands separators, LaTeX fractions and roots, intervals, sets of answers; half equal,
  half the same kind of answer for another value, drawn with a fixed seed (so every verdict is known);
- start only: 1 pair, to show the child's start-up cost;
- adversarial: 10 pairs with towers of powers (9^{9^{9^9}}) that sympy would evaluate for ever,
  at a 1 s limit: each costs about the limit, and the call still ends.
Also the same typical pairs graded by exact match (SQuAD-normalized strings) for scale.

Run: python -m bench.math_grading
"""

from __future__ import annotations

import random
import time
from importlib import metadata

from bench._common import print_table, setup_env, versions, write_result

N_TYPICAL = 2000
ROUNDS = 3


def _forms(a: int, b: int) -> list[tuple[str, str]]:
    """(gold, an equal prediction written another way) for each answer kind."""
    return [
        (f"{a * 1000:,}", f"{a * 1000}"),
        (f"\\frac{{{a}}}{{{b}}}", f"{a}/{b}"),
        (f"{a / 4:g}", f"\\frac{{{a}}}{{4}}"),
        (f"{a}\\sqrt{{2}}", f"\\sqrt{{{2 * a * a}}}"),
        (f"[{a}, {a + b})", f"[{a},{a + b})"),
        (f"{a}, {b}", f"{b}, {a}"),
        (f"x = {a}", f"{a}"),
    ]


def _typical_pairs(n: int, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    """Every other pair equal; the others predict the same kind of answer for a + 1."""
    rng = random.Random(seed)
    preds, golds = [], []
    for i in range(n):
        a, b = rng.randint(1, 99), rng.randint(2, 12)
        kind = i % len(_forms(a, b))
        gold, pred = _forms(a, b)[kind]
        if i % 2:
            pred = _forms(a + 1, b)[kind][1]
        preds.append(pred)
        golds.append([gold])
    return preds, golds


def _best(fn, rounds: int = ROUNDS) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(rounds):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    setup_env()
    from core.math_grading import grade
    from core.metrics import compute_metrics

    preds, golds = _typical_pairs(N_TYPICAL)
    start_s, _ = _best(lambda: grade(["1/2"], [["0.5"]]))
    typical_s, verdicts = _best(lambda: grade(preds, golds))
    exact_s, exact = _best(lambda: compute_metrics("generative", preds, golds, ["exact_match"]))
    adversarial = ["9^{9^{9^{9}}}", "(x+1)^{100000}", "10^{10^{8}}"] * 3 + ["2^{2^{2^{2^{2^{2}}}}}"]
    adv_s, adv_verdicts = _best(lambda: grade(adversarial, [["1"]] * len(adversarial), limit_s=1), rounds=1)
    equal_share = sum(verdicts) / len(verdicts)
    right_share = sum(v == (i % 2 == 0) for i, v in enumerate(verdicts)) / len(verdicts)
    result = {
        "params": {"typical_pairs": N_TYPICAL, "rounds": ROUNDS, "adversarial_pairs": len(adversarial)},
        "start_only_seconds": round(start_s, 3),
        "typical_seconds": round(typical_s, 3),
        "typical_answers_per_second": round(N_TYPICAL / typical_s, 1),
        "typical_answers_per_second_after_start": round(N_TYPICAL / max(typical_s - start_s, 1e-9), 1),
        "typical_equal_share": round(equal_share, 4),
        "typical_verdicts_right_share": round(right_share, 4),
        "exact_match_seconds": round(exact_s, 3),
        "exact_match_share": round(exact["exact_match"], 4),
        "adversarial_seconds": round(adv_s, 3),
        "adversarial_seconds_per_answer": round(adv_s / len(adversarial), 3),
        "adversarial_all_wrong": not any(adv_verdicts),
        "versions": {"math_verify": metadata.version("math-verify"), **versions("sympy")},
    }
    print_table(
        [
            ["start only", 1, f"{start_s:.2f}", ""],
            ["typical", N_TYPICAL, f"{typical_s:.2f}", f"{N_TYPICAL / typical_s:,.0f}"],
            ["adversarial (1 s limit)", len(adversarial), f"{adv_s:.2f}", f"{len(adversarial) / adv_s:.2f}"],
            ["exact match (typical)", N_TYPICAL, f"{exact_s:.2f}", f"{N_TYPICAL / exact_s:,.0f}"],
        ],
        ["set", "answers", "seconds", "answers/s"],
    )
    print(f"math_equiv equal share {equal_share:.3f} vs exact match {exact['exact_match']:.3f} on the same pairs")
    write_result("math_grading", result)


if __name__ == "__main__":
    main()
