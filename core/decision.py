"""Is the study's decision settled, and if not, the cheapest next step that could settle it.

The top two candidates are too close to call when the 90 % interval of the gap between them at the
target includes zero (paired: errors common to both cancel; without replicates, when their own
intervals overlap), when their fitted curves cross between the largest measured size and the
target, when they were measured at one size only, or when the first one is best in under 70 % of the
bootstrap replicates. The proposal is to measure the contenders (those two) at the next size, twice
the largest (the target at most), with the study's seeds: more points where the curves must be told
apart. `workbench refine STUDY` and the Results page's Refine button enqueue exactly those runs as
more runs of the same study (workers.client.refine); `refine: auto` in the spec does it within a budget.
"""

from __future__ import annotations

from typing import Any

P_BEST_SETTLED = 0.7
NEXT_SIZE_FACTOR = 2


def assess(summary: dict[str, Any]) -> dict[str, Any]:
    """The decision of a study summary (metrics.json): inconclusive or not, why, and the refinement proposal."""
    ranking = sorted(summary.get("ranking") or [], key=lambda r: r["rank"])
    out: dict[str, Any] = {"inconclusive": False, "reasons": [], "proposal": None}
    if len(ranking) < 2:
        return out
    first, second = ranking[0], ranking[1]
    reasons = []
    gap = summary.get("top_gap")
    if gap and gap.get("low") is not None and gap["low"] <= 0:
        reasons.append(
            f"{first['candidate']}'s lead over {second['candidate']} at the target is {gap['value']:+.3f}, and its 90% "
            f"interval [{gap['low']:+.3f}, {gap['high']:+.3f}] includes no lead at all"
        )
    elif not gap and _overlap(first, second):
        reasons.append(f"the 90% intervals of {first['candidate']} and {second['candidate']} at the target overlap")
    if "crosses" in (first.get("flags") or []) and _crosses(first, second["candidate"]):
        reasons.append(
            f"the fitted curves of {first['candidate']} and {second['candidate']} cross between the largest "
            "measured size and the target"
        )
    sizes = {
        int(r["size"])
        for r in summary.get("runs") or []
        if r.get("candidate") in (first["candidate"], second["candidate"])
    }
    if len(sizes) == 1:
        reasons.append(
            f"{first['candidate']} and {second['candidate']} were measured at one size only: nothing shows how "
            "they move toward the target"
        )
    if first.get("p_best") is not None and first["p_best"] < P_BEST_SETTLED:
        reasons.append(f"{first['candidate']} is best in only {first['p_best']:.0%} of the bootstrap replicates")
    out["inconclusive"] = bool(reasons)
    out["reasons"] = reasons
    out["proposal"] = proposal(summary, [first["candidate"], second["candidate"]])
    return out


def _overlap(a: dict, b: dict) -> bool:
    if None in (a.get("low"), a.get("high"), b.get("low"), b.get("high")):
        return False
    return a["low"] <= b["high"] and b["low"] <= a["high"]


def _crosses(row: dict, other: str) -> bool:
    return any("crosses" in note and other in note for note in row.get("notes") or [])


def proposal(summary: dict[str, Any], arms: list[str]) -> dict[str, Any] | None:
    """Runs of `arms` at the next size (2x the largest measured, the target at most), with their estimated cost."""
    runs = summary.get("runs") or []
    measured = [int(r["size"]) for r in runs if r.get("size")]
    target = int(summary.get("target_size") or 0)
    if not measured or not target:
        return None
    largest = max(measured)
    size = min(NEXT_SIZE_FACTOR * largest, target)
    if size <= largest:
        return None  # already measured at the target: nothing bigger to run
    seeds = list(summary.get("seeds") or sorted({int(r["seed"]) for r in runs}))
    count = len(arms) * len(seeds)
    # Per row at the largest size: smaller runs carry fixed costs (a step floor, start-up) that do not scale.
    at_largest = [r for r in runs if int(r.get("size") or 0) == largest]
    tokens = [r["train"]["train_tokens"] / largest for r in at_largest if (r.get("train") or {}).get("train_tokens")]
    seconds = [
        r["timings"]["total_seconds"] / largest for r in at_largest if (r.get("timings") or {}).get("total_seconds")
    ]
    per_row = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    return {
        "size": size,
        "arms": arms,
        "seeds": seeds,
        "runs": count,
        "train_tokens": round(per_row(tokens) * size * count) if tokens else None,
        "seconds": round(per_row(seconds) * size * count, 1) if seconds else None,
    }


def proposal_text(p: dict[str, Any]) -> str:
    """'4 runs of helpful and noisy at 2,000 rows (seeds 0, 1), about 3 min of training'."""
    secs = p.get("seconds")
    took = f"{secs:.0f} s" if secs is not None and secs < 90 else f"{(secs or 0) / 60:.0f} min"
    cost = f", about {took} of run time at the pace of this study's runs" if secs else ""
    seeds = ("seeds " if len(p["seeds"]) > 1 else "seed ") + ", ".join(str(s) for s in p["seeds"])
    return f"{p['runs']} runs of {' and '.join(p['arms'])} at {p['size']:,} rows ({seeds}){cost}"
