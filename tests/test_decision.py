"""Inconclusive decisions and the refinement they propose (core.decision)."""

from __future__ import annotations

from core.decision import assess, proposal_text


def _summary(first: dict, second: dict, **over) -> dict:
    runs = [
        {"size": n, "seed": s, "train": {"train_tokens": 50 * n}, "timings": {"total_seconds": 0.01 * n}}
        for n in (100, 200, 400)
        for s in (0, 1)
    ]
    rows = [
        {"candidate": "a", "rank": 1, "low": 0.70, "high": 0.74, "p_best": 0.9, "flags": [], "notes": []} | first,
        {"candidate": "b", "rank": 2, "low": 0.60, "high": 0.64, "p_best": 0.1, "flags": [], "notes": []} | second,
        {"candidate": "c", "rank": 3, "low": 0.10, "high": 0.20, "p_best": 0.0, "flags": [], "notes": []},
    ]
    return {"ranking": rows, "runs": runs, "seeds": [0, 1], "target_size": 3200} | over


def test_separated_intervals_and_a_sure_winner_are_settled():
    d = assess(_summary({}, {}))
    assert not d["inconclusive"] and d["reasons"] == []
    p = d["proposal"]  # offered anyway ("refine anyway")
    assert p == {"size": 800, "arms": ["a", "b"], "seeds": [0, 1], "runs": 4, "train_tokens": 160000, "seconds": 32.0}
    assert (
        proposal_text(p)
        == "4 runs of a and b at 800 rows (seeds 0, 1), about 32 s of run time at the pace of this study's runs"
    )


def test_overlap_crossing_and_a_low_p_best_each_make_it_inconclusive():
    overlap = assess(_summary({"low": 0.62}, {}))
    assert overlap["inconclusive"] and overlap["reasons"] == ["the 90% intervals of a and b at the target overlap"]
    crossing = assess(
        _summary(
            {
                "flags": ["crosses"],
                "notes": ["fitted curve crosses b's between the largest measured size and the target"],
            },
            {},
        )
    )
    assert crossing["reasons"] == [
        "the fitted curves of a and b cross between the largest measured size and the target"
    ]
    unsure = assess(_summary({"p_best": 0.55}, {}))
    assert unsure["reasons"] == ["a is best in only 55% of the bootstrap replicates"]


def test_the_next_size_stops_at_the_target_and_none_is_proposed_past_it():
    assert assess(_summary({}, {}, target_size=600))["proposal"]["size"] == 600
    assert assess(_summary({}, {}, target_size=400))["proposal"] is None
    assert assess({"ranking": [{"candidate": "a", "rank": 1}]}) == {
        "inconclusive": False,
        "reasons": [],
        "proposal": None,
    }


def test_a_step_floor_that_makes_small_sizes_train_more_passes_is_a_warned_regime():
    from core.study import training_regime
    from tests.specs import TINY_TRAINING, tiny_spec

    floor = dict(TINY_TRAINING, epochs=1, min_steps=100, batch_size=8)
    regime = training_regime(tiny_spec(training=floor, sizes=[200, 400, 800], target_size=6400))
    assert regime["passes"] == {200: 4.0, 400: 2.0, 800: 1.0} and regime["target_passes"] == 1.0
    assert regime["warning"].startswith("the smallest size trains 4 passes over its rows, the target 1 (min_steps 100)")
    same = training_regime(tiny_spec(training=dict(floor, min_steps=0), sizes=[200, 400, 800], target_size=6400))
    assert same["passes"] == {200: 1.0, 400: 1.0, 800: 1.0} and same["warning"] is None


def test_with_paired_replicates_the_gap_decides_not_the_overlap_of_two_intervals():
    overlapping = {"low": 0.62}  # a's and b's own intervals overlap
    sure = assess(_summary(overlapping, {}, top_gap={"value": 0.08, "low": 0.03, "high": 0.12}))
    assert not sure["inconclusive"]
    unsure = assess(_summary({}, {}, top_gap={"value": 0.08, "low": -0.01, "high": 0.15}))
    assert unsure["reasons"] == [
        "a's lead over b at the target is +0.080, and its 90% interval [-0.010, +0.150] includes no lead at all"
    ]


def test_one_measured_size_is_never_settled():
    summary = _summary({}, {})
    summary["runs"] = [dict(r, candidate=c) for r in summary["runs"] if r["size"] == 400 for c in ("a", "b")]
    d = assess(summary)
    assert d["inconclusive"] and d["reasons"] == [
        "a and b were measured at one size only: nothing shows how they move toward the target"
    ]
