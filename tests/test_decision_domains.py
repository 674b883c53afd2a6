"""The decision benchmark's domains: deterministic per seed, and each candidate kind is what it claims."""

from __future__ import annotations

import re

import pytest

from bench.decision_domains import DOMAINS, NOISE, Vocabulary, clean_rows, domain_sets, ensure_domain, leaked_count
from bench.decisions import D0_SHARE, FAST, FULL


@pytest.fixture(scope="module")
def sets():
    return {name: domain_sets(cfg) for name, cfg in DOMAINS.items()}


def test_same_seed_same_data_and_domains_differ(sets, tmp_path):
    cfg = DOMAINS["mood3"]
    assert domain_sets(cfg) == sets["mood3"]
    folder = ensure_domain(cfg, tmp_path)
    assert (folder / "benchmark.jsonl").read_text().count("\n") == cfg.sizes["benchmark"]
    assert len({len(cfg.labels) for cfg in DOMAINS.values()}) == len(DOMAINS)  # different label counts
    words = {name: sorted(len(r["text"].split()) for r in s["benchmark"]) for name, s in sets.items()}
    assert len({w[len(w) // 2] for w in words.values()}) == len(DOMAINS)  # different text lengths


def test_d0_and_benchmark_are_disjoint_and_cover_every_label(sets):
    for name, s in sets.items():
        assert not {r["text"] for r in s["d0"]} & {r["text"] for r in s["benchmark"]}, name
        assert {r["label"] for r in s["benchmark"]} == set(DOMAINS[name].labels), name


def test_too_small_candidate_must_repeat_at_the_target_and_large_one_need_not(sets):
    for variant in (FAST, FULL):
        need = variant.target - round(variant.target * D0_SHARE)  # candidate rows of one run at the target
        for name, s in sets.items():
            small = len({r["text"] for r in s["indomain_small"]})
            assert need / small >= 5, (variant.name, name)
            assert len(s["indomain_large"]) >= need, (variant.name, name)


def test_noisy_candidates_flip_the_stated_share_of_the_clean_rows(sets):
    for name, s in sets.items():
        clean = clean_rows(DOMAINS[name], "indomain_large", DOMAINS[name].sizes["indomain_large"], seed=1)
        assert s["indomain_large"] == clean
        for kind, share in NOISE.items():
            assert [r["text"] for r in s[kind]] == [r["text"] for r in clean]
            flipped = sum(a["label"] != b["label"] for a, b in zip(s[kind], clean))
            assert flipped == round(share * len(clean)), (name, kind)


def test_partial_offdomain_contaminated_and_paraphrase_are_what_they_claim(sets):
    for name, s in sets.items():
        cfg = DOMAINS[name]
        assert {r["label"] for r in s["partial"]} == set(cfg.labels[: len(cfg.labels) // 2])
        vocab = Vocabulary(cfg)
        label_words = {w for words in vocab.words.values() for w in words}
        off_words = {w for r in s["offdomain"] for w in re.findall(r"[a-z]+", r["text"])}
        bench_words = {w for r in s["benchmark"] for w in re.findall(r"[a-z]+", r["text"])}
        # Off-domain rows carry no keyword of any label, and their keywords never occur in the benchmark.
        assert not off_words & label_words
        assert set(vocab.offdomain) & off_words and not set(vocab.offdomain) & bench_words
        bench_texts = {r["text"] for r in s["benchmark"]}
        assert sum(r["text"] in bench_texts for r in s["contaminated"]) == leaked_count(cfg)
        assert not {r["text"] for r in s["paraphrase"]} & bench_texts
        assert [r["label"] for r in s["paraphrase"]] == [r["label"] for r in s["benchmark"]]
