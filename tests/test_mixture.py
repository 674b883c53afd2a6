"""Mixtures D0 ⊕ Dk: counts, determinism, nesting across sizes, repetition, provenance, decontamination."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from core.mixture import BASELINE, Mixture, MixturePart, build_mixture, decontaminate, split_counts


def cls_rows(prefix: str, n: int) -> list[dict]:
    """Normalized classification rows whose text says where they came from."""
    return [{"text": f"{prefix} row {i}", "label": "pos" if i % 2 else "neg"} for i in range(n)]


def provenance(m: Mixture, source: str | None = None) -> Counter:
    return Counter((s, i) for s, i in zip(m.sources, m.indices) if source is None or s == source)


def mix(d0, cand, *, size, share=0.3, seed=0, arm="cand", **kw) -> Mixture:
    return build_mixture(d0, cand, size=size, d0_share=share, seed=seed, arm=arm, **kw)


D0 = cls_rows("d0", 2000)
CAND = cls_rows("cand", 2000)


# ----------------------------------------------------------------------------- counts


@pytest.mark.parametrize("size", [1, 5, 7, 250, 999, 1000])
@pytest.mark.parametrize("share", [0.0, 0.1, 0.25, 0.3, 0.5, 0.9, 1.0])
def test_counts_follow_share(size, share):
    m = mix(D0, CAND, size=size, share=share)
    n_d0 = round(size * share)
    assert len(m.rows) == len(m.sources) == len(m.indices) == size
    counts = Counter(m.sources)
    assert counts["d0"] == n_d0
    assert counts["cand"] == size - n_d0
    assert set(counts) <= {"d0", "cand"}
    assert [p.source for p in m.parts] == ["d0", "cand"]
    assert [p.used for p in m.parts] == [n_d0, size - n_d0]
    assert [p.available for p in m.parts] == [len(D0), len(CAND)]
    assert (m.arm, m.size, m.seed, m.d0_share) == ("cand", size, 0, share)


def test_split_counts():
    assert split_counts(1000, 0.3, "cand") == (300, 700)
    assert split_counts(1000, 0.0, "cand") == (0, 1000)
    assert split_counts(1000, 1.0, "cand") == (1000, 0)
    assert split_counts(1000, 0.3, BASELINE) == (1000, 0)
    assert split_counts(10, 0.25, "cand") == (round(2.5), 10 - round(2.5))


def test_rows_are_interleaved_not_blocked():
    m = mix(D0, CAND, size=1000, share=0.3)
    first = m.sources[:300]
    assert "cand" in first and "d0" in first  # D0 rows are shuffled among candidate rows
    assert "d0" in m.sources[-300:]


def test_baseline_arm_is_all_d0():
    m = mix(D0, None, size=1000, share=0.3, arm=BASELINE)
    assert m.sources == ["d0"] * 1000
    assert all(r["text"].startswith("d0 ") for r in m.rows)
    assert len(set(m.indices)) == 1000  # no repetition: D0 has 2000 rows
    assert [(p.source, p.available, p.used) for p in m.parts] == [("d0", 2000, 1000)]
    assert m.arm == BASELINE


def test_baseline_ignores_candidate_rows_and_share():
    with_cand = mix(D0, CAND, size=500, share=0.0, arm=BASELINE)
    without = mix(D0, None, size=500, share=0.7, arm=BASELINE)
    assert with_cand.sources == ["d0"] * 500
    assert with_cand.rows == without.rows and with_cand.indices == without.indices


def test_share_zero_is_all_candidate():
    m = mix(D0, CAND, size=400, share=0.0)
    assert m.sources == ["cand"] * 400
    assert m.parts[0].used == 0 and m.parts[1].used == 400
    # D0 may even be empty when no D0 row is needed.
    m2 = mix([], CAND, size=400, share=0.0)
    assert m2.sources == ["cand"] * 400
    assert m2.parts[0] == MixturePart("d0", 0, 0)
    assert m2.parts[0].repetition == 0.0


def test_share_one_is_all_d0():
    m = mix(D0, CAND, size=400, share=1.0)
    assert m.sources == ["d0"] * 400
    assert m.parts[1].used == 0
    assert m.candidate_repetition == 0.0
    # A candidate with no rows is fine when none of its rows are needed.
    m2 = mix(D0, [], size=400, share=1.0)
    assert m2.sources == ["d0"] * 400


def test_names_used_for_provenance():
    m = mix(D0, CAND, size=100, share=0.5, arm="helpful", d0_name="support-d0")
    assert set(m.sources) == {"support-d0", "helpful"}
    assert [p.source for p in m.parts] == ["support-d0", "helpful"]


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_mixture():
    a = mix(D0, CAND, size=800, seed=3)
    b = mix(D0, CAND, size=800, seed=3)
    assert a.rows == b.rows
    assert a.sources == b.sources
    assert a.indices == b.indices
    assert a.manifest() == b.manifest()


def test_different_seeds_differ():
    a = mix(D0, CAND, size=800, seed=0)
    b = mix(D0, CAND, size=800, seed=1)
    assert a.rows != b.rows
    assert a.sources != b.sources  # interleaving differs
    assert provenance(a) != provenance(b)  # and so does the sample drawn from each source
    # Counts do not depend on the seed.
    assert Counter(a.sources) == Counter(b.sources)


def test_different_seeds_reorder_a_fully_used_source():
    small_d0, small_cand = cls_rows("d0", 30), cls_rows("cand", 70)
    a = mix(small_d0, small_cand, size=100, share=0.3, seed=0)
    b = mix(small_d0, small_cand, size=100, share=0.3, seed=1)
    assert provenance(a) == provenance(b)  # every row once in both
    assert a.rows != b.rows  # but in another order
    assert sorted(a.rows, key=lambda r: r["text"]) == sorted(b.rows, key=lambda r: r["text"])


def test_d0_draw_independent_of_candidate():
    """D0's rows for a seed and size do not depend on which candidate is mixed in."""
    a = mix(D0, CAND, size=1000, seed=5, arm="a")
    b = mix(D0, cls_rows("other", 37), size=1000, seed=5, arm="b")
    assert provenance(a, "d0") == provenance(b, "d0")
    base = mix(D0, None, size=300, seed=5, arm=BASELINE)
    assert provenance(base, "d0") == provenance(a, "d0")  # baseline at N·share = the arm's D0 part


def test_arms_of_one_seed_see_d0_rows_at_the_same_positions():
    """Paired design: candidates of one seed and size differ only in their own rows, not in D0's order."""
    a = mix(D0, CAND, size=1000, seed=5, arm="a")
    b = mix(D0, cls_rows("other", 37), size=1000, seed=5, arm="b")
    at = lambda m: [(pos, i) for pos, (src, i) in enumerate(zip(m.sources, m.indices)) if src == "d0"]  # noqa: E731
    assert at(a) == at(b) and len(at(a)) == 300


# ----------------------------------------------------------------------------- nesting


@pytest.mark.parametrize("seed", [0, 1, 42])
@pytest.mark.parametrize("n_cand", [2000, 300])  # large enough, and cycled
def test_smaller_mixture_nested_in_larger(seed, n_cand):
    cand = cls_rows("cand", n_cand)
    small = mix(D0, cand, size=500, seed=seed)
    large = mix(D0, cand, size=1000, seed=seed)
    small_c, large_c = provenance(small, "cand"), provenance(large, "cand")
    assert sum(small_c.values()) == 350 and sum(large_c.values()) == 700
    assert not (small_c - large_c), "candidate rows at 500 must be a sub-multiset of those at 1000"
    small_d, large_d = provenance(small, "d0"), provenance(large, "d0")
    assert not (small_d - large_d), "D0 rows at 500 must be a sub-multiset of those at 1000"
    # A chain of sizes nests all the way up.
    sizes = [250, 500, 1000, 2000, 4000]
    mixtures = [mix(D0, cand, size=n, seed=seed) for n in sizes]
    for lo, hi in zip(mixtures, mixtures[1:]):
        assert not (provenance(lo) - provenance(hi))


def test_baseline_nested_across_sizes():
    small = mix(D0, None, size=300, arm=BASELINE, seed=2)
    large = mix(D0, None, size=3000, arm=BASELINE, seed=2)  # cycles D0 (2000 rows)
    assert not (provenance(small) - provenance(large))


def test_nesting_does_not_hold_across_seeds():
    a = mix(D0, CAND, size=500, seed=0)
    b = mix(D0, CAND, size=1000, seed=1)
    assert provenance(a, "cand") - provenance(b, "cand")


# ----------------------------------------------------------------------------- repetition


def test_small_candidate_is_cycled_evenly():
    cand = cls_rows("cand", 300)
    m = mix(D0, cand, size=1000, share=0.3)  # needs 700 candidate rows from 300
    uses = Counter(i for s, i in zip(m.sources, m.indices) if s == "cand")
    assert set(uses) == set(range(300))  # every row used
    assert set(uses.values()) == {2, 3}  # floor(700/300) or ceil(700/300) times
    assert Counter(uses.values()) == {3: 100, 2: 200}
    part = m.parts[1]
    assert (part.source, part.available, part.used) == ("cand", 300, 700)
    assert part.repetition == pytest.approx(700 / 300, abs=1e-4)
    assert m.candidate_repetition == part.repetition
    assert m.parts[0].repetition == pytest.approx(300 / 2000)
    assert m.manifest()["parts"][1]["repetition"] == part.repetition


def test_exact_multiple_repetition():
    cand = cls_rows("cand", 100)
    m = mix(D0, cand, size=500, share=0.2)
    uses = Counter(i for s, i in zip(m.sources, m.indices) if s == "cand")
    assert set(uses.values()) == {4}
    assert m.candidate_repetition == 4.0


def test_small_d0_is_cycled():
    d0 = cls_rows("d0", 40)
    m = mix(d0, CAND, size=1000, share=0.3)  # needs 300 D0 rows from 40
    uses = Counter(i for s, i in zip(m.sources, m.indices) if s == "d0")
    assert set(uses) == set(range(40))
    assert set(uses.values()) == {7, 8}
    assert m.parts[0].repetition == 7.5
    assert m.candidate_repetition <= 1.0  # the candidate is not repeated


def test_no_repetition_when_large_enough():
    m = mix(D0, CAND, size=1000, share=0.3)
    assert max(provenance(m).values()) == 1
    assert m.candidate_repetition == pytest.approx(700 / 2000)
    assert m.candidate_repetition <= 1.0
    exact = mix(D0, cls_rows("cand", 700), size=1000, share=0.3)
    assert max(provenance(exact).values()) == 1
    assert exact.candidate_repetition == 1.0


def test_baseline_repetition_reports_d0():
    m = mix(cls_rows("d0", 200), None, size=500, arm=BASELINE)
    assert m.candidate_repetition == 2.5
    assert set(Counter(m.indices).values()) == {2, 3}


def test_candidate_repetition_when_candidate_shares_d0_name():
    # The candidate part is the second part whatever it is called.
    m = mix(D0, cls_rows("cand", 100), size=1000, share=0.3, arm="d0", d0_name="d0")
    assert m.candidate_repetition == 7.0


def test_mixture_part_repetition():
    assert MixturePart("x", 10, 25).repetition == 2.5
    assert MixturePart("x", 3, 1).repetition == 0.3333
    assert MixturePart("x", 0, 0).repetition == 0.0


# ----------------------------------------------------------------------------- provenance


@pytest.mark.parametrize("n_cand", [2000, 123])
def test_provenance_points_at_source_rows(n_cand):
    d0, cand = D0, cls_rows("cand", n_cand)
    m = mix(d0, cand, size=900, share=0.4, seed=9, arm="helpful", d0_name="base")
    pools = {"base": d0, "helpful": cand}
    assert len(m.rows) == len(m.sources) == len(m.indices) == 900
    for row, source, index in zip(m.rows, m.sources, m.indices):
        assert isinstance(index, int)
        assert row == pools[source][index]


def test_candidate_index_maps_back_to_original_positions():
    original = cls_rows("cand", 500)
    benchmark = [{"text": original[i]["text"].upper() + "!", "label": "neg"} for i in range(0, 500, 5)]
    kept, kept_index, removed = decontaminate(original, benchmark, "classification")
    assert removed == 100 and len(kept) == 400
    m = mix(D0, kept, size=1000, share=0.3, candidate_index=kept_index)
    cand_indices = [i for s, i in zip(m.sources, m.indices) if s == "cand"]
    assert len(cand_indices) == 700
    assert all(i % 5 != 0 for i in cand_indices)  # no removed row is referenced
    assert max(cand_indices) >= 400  # they are original positions, not positions in `kept`
    for row, source, index in zip(m.rows, m.sources, m.indices):
        assert row == (D0 if source == "d0" else original)[index]
    # Without the index map, indices are positions in the kept list.
    plain = mix(D0, kept, size=1000, share=0.3)
    assert plain.rows == m.rows
    assert [kept_index[i] if s == "cand" else i for s, i in zip(plain.sources, plain.indices)] == m.indices


def test_manifest_is_json_and_complete():
    m = mix(D0, cls_rows("cand", 300), size=1000, share=0.3, seed=4, arm="helpful")
    manifest = m.manifest()
    loaded = json.loads(json.dumps(manifest))
    assert loaded == manifest
    assert (loaded["arm"], loaded["size"], loaded["seed"], loaded["d0_share"]) == ("helpful", 1000, 4, 0.3)
    assert loaded["parts"] == [
        {"source": "d0", "available": 2000, "used": 300, "repetition": 0.15},
        {"source": "helpful", "available": 300, "used": 700, "repetition": round(700 / 300, 4)},
    ]
    assert loaded["rows"] == [[s, i] for s, i in zip(m.sources, m.indices)]
    assert len(loaded["rows"]) == 1000


def test_baseline_manifest():
    manifest = mix(D0, None, size=10, arm=BASELINE).manifest()
    json.dumps(manifest)
    assert manifest["arm"] == BASELINE
    assert [p["source"] for p in manifest["parts"]] == ["d0"]
    assert all(s == "d0" for s, _ in manifest["rows"])


# ----------------------------------------------------------------------------- decontamination


def test_decontaminate_classification_normalized_matches():
    benchmark = [
        {"text": "How do I reset my password?", "label": "account"},
        {"text": "Where is my order", "label": "shipping"},
    ]
    rows = [
        {"text": "how do i reset my password", "label": "account"},  # case, punctuation
        {"text": "  HOW   do I reset\tmy password?!  ", "label": "billing"},  # whitespace; label ignored
        {"text": "How do I reset my email?", "label": "account"},  # different text
        {"text": "Where, is my order...", "label": "shipping"},  # punctuation
        {"text": "Where is my order now", "label": "shipping"},  # superset: kept
        {"text": "Thanks a lot", "label": "other"},
    ]
    kept, kept_index, removed = decontaminate(rows, benchmark, "classification")
    assert removed == 3
    assert kept_index == [2, 4, 5]
    assert kept == [rows[2], rows[4], rows[5]]


def test_decontaminate_nothing_to_remove():
    rows = cls_rows("cand", 50)
    kept, kept_index, removed = decontaminate(rows, cls_rows("bench", 20), "classification")
    assert removed == 0
    assert kept == rows and kept_index == list(range(50))
    assert decontaminate([], cls_rows("bench", 5), "classification") == ([], [], 0)
    assert decontaminate(rows, [], "classification") == (rows, list(range(50)), 0)


def test_decontaminate_everything():
    rows = cls_rows("x", 10)
    kept, kept_index, removed = decontaminate(rows, [dict(r) for r in rows], "classification")
    assert (kept, kept_index, removed) == ([], [], 10)


def test_decontaminate_duplicates_all_removed():
    benchmark = [{"text": "Same text", "label": "a"}]
    rows = [{"text": "same text", "label": "a"}] * 3 + [{"text": "other", "label": "a"}]
    kept, kept_index, removed = decontaminate(rows, benchmark, "classification")
    assert removed == 3 and kept_index == [3]


def qa_row(question: str, context: str, answer: str) -> dict:
    return {
        "question": question,
        "context": context,
        "answers": {"text": [answer], "answer_start": [max(context.find(answer), 0)]},
    }


def test_decontaminate_qa_uses_question_and_context():
    context = "The Eiffel Tower is in Paris. It was built in 1889."
    benchmark = [qa_row("Where is the Eiffel Tower?", context, "Paris")]
    rows = [
        qa_row(
            "where is the eiffel tower", "the eiffel tower is in paris it was built in 1889", "paris"
        ),  # same after normalization
        qa_row("WHERE is the Eiffel   Tower?", context, "in Paris"),  # answer differs: still a leak
        qa_row("Where is the Eiffel Tower?", "The Eiffel Tower stands in Paris, France.", "Paris"),  # other context
        qa_row("When was the Eiffel Tower built?", context, "1889"),  # other question
    ]
    kept, kept_index, removed = decontaminate(rows, benchmark, "qa")
    assert removed == 2
    assert kept_index == [2, 3]
    assert kept == rows[2:]


def gen_row(prompt, answer: str) -> dict:
    return {"prompt": prompt, "answer": answer, "answer_full": f"Reasoning... #### {answer}"}


def test_decontaminate_generative_prompts():
    benchmark = [
        gen_row("Tom has 3 apples and buys 4 more. How many apples does he have?", "7"),
        gen_row([{"role": "user", "content": "Name the capital of France."}], "Paris"),
    ]
    rows = [
        gen_row("tom has 3 apples, and buys 4 more; how many apples does he have", "7"),  # normalized equal
        gen_row("Tom has 3 apples and buys 5 more. How many apples does he have?", "8"),  # different numbers
        gen_row(
            [{"role": "user", "content": "Tom has 3 apples and buys 4 more.  How many apples does he have?"}], "seven"
        ),  # chat form
        gen_row("NAME THE CAPITAL OF FRANCE", "paris"),  # string form of a chat benchmark prompt
        gen_row([{"role": "user", "content": "Name the capital of Spain."}], "Madrid"),
    ]
    kept, kept_index, removed = decontaminate(rows, benchmark, "generative")
    assert removed == 3
    assert kept_index == [1, 4]
    assert kept == [rows[1], rows[4]]


def test_decontaminate_is_per_task_field():
    # For classification only the text counts; the same words in a qa row's answer do not.
    benchmark = [qa_row("What is it?", "A red ball.", "ball")]
    rows = [qa_row("What is it", "A red ball", "a ball"), qa_row("What is it?", "A blue ball.", "ball")]
    kept, kept_index, removed = decontaminate(rows, benchmark, "qa")
    assert (kept_index, removed) == ([1], 1)


# ----------------------------------------------------------------------------- errors


def test_empty_d0_is_an_error():
    with pytest.raises(ValueError, match="D0 is empty"):
        mix([], CAND, size=100, share=0.3)
    with pytest.raises(ValueError, match="D0 is empty"):
        mix([], None, size=100, arm=BASELINE)


def test_missing_candidate_for_arm_is_an_error():
    with pytest.raises(ValueError, match="arm 'helpful' needs candidate rows"):
        mix(D0, None, size=100, arm="helpful")


def test_empty_candidate_is_an_error():
    with pytest.raises(ValueError, match="candidate 'helpful' has no rows"):
        mix(D0, [], size=100, share=0.3, arm="helpful")
    with pytest.raises(ValueError, match="decontamination"):
        mix(D0, [], size=100, share=0.0, arm="helpful")
