"""Synthetic classification domains for the decision benchmark (bench/decisions.py).

Each domain is a labelled task the tiny model can learn from keywords: every label owns a vocabulary
of made-up words with Zipf-skewed frequencies (a few common words, a long tail), so more data keeps
uncovering the tail and the metric keeps rising with size. Domains differ in label count, text
length and difficulty (vocabulary size, how often a text carries a keyword of another label).

D0 and the benchmark share one phrasing set (templates "A"); candidates use another ("B") except
where a kind says otherwise. Candidate kinds, whose value at the target size is known in direction:
- `indomain_large`: the benchmark's distribution, enough unique rows for the target without repetition;
- `indomain_mid`: the same, with a quarter of the rows the target needs (repeated ~4x there);
- `indomain_small`: curated rows in the benchmark's phrasing with two keywords each, so they look best at
  small sizes, but too few unique rows for the target (repeated many times there): the usual cause of a
  wrong top-1 when small runs are ranked as they are;
- `partial`: in-domain rows of the first half of the labels only;
- `offdomain`: the same label names on an unrelated vocabulary (learnable, useless for the benchmark);
- `noisy_low` / `noisy_high`: `indomain_large`'s rows with exactly 20 % / 45 % of labels flipped to another
  label (uniformly), so the right label stays the plurality and the noise averages out with data;
- `contaminated`: in-domain rows plus a copy of some benchmark rows, which the product must remove;
- `paraphrase`: every benchmark row rewritten in another phrasing with the same keywords and label: a leak
  that exact-text decontamination cannot see.

Everything is deterministic in (domain, kind, seed): same code, same files, on every machine.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

GENERATOR_VERSION = 1
NOISE = {"noisy_low": 0.20, "noisy_high": 0.45}
CONTAMINATED_BENCH_SHARE = 0.5  # half the benchmark rows are copied into the contaminated candidate
KINDS = (
    "indomain_large",
    "indomain_mid",
    "indomain_small",
    "partial",
    "offdomain",
    "noisy_low",
    "noisy_high",
    "contaminated",
    "paraphrase",
)

_TEMPLATES_A = [
    "{w} about {k} {w}",
    "{k} {w} {k2}",
    "note: {k} and {k2} {w}",
    "{w} {w} {k}",
    "seen {k} then {k2}",
    "{k}, {w}, {k2}",
]
_TEMPLATES_B = [
    "report {k} {k2} {w}",
    "{w}: {k} again {k2}",
    "entry {k} with {w}",
    "{k2} near {k} {w}",
    "log {w} {k}",
    "{k} {w} end",
]
_ONSETS = ["b", "br", "d", "dr", "f", "g", "gl", "k", "kr", "l", "m", "n", "p", "pl", "r", "s", "st", "t", "v", "z"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou"]
_CODAS = ["", "n", "x", "r", "l", "m", "sk", "nt"]


@dataclass(frozen=True)
class DomainConfig:
    """What makes a domain easy or hard: labels, vocabulary, text length, distractors, and row counts."""

    name: str
    labels: tuple[str, ...]
    vocab_per_label: int  # longer tails keep more to learn at large sizes
    keywords: tuple[int, int]  # keywords of the row's label per text, min and max
    fillers: tuple[int, int]  # neutral words per text: longer texts, same signal
    distractor_rate: float  # share of texts that also carry a keyword of another label
    zipf: float  # the vocabulary's skew: higher means a shorter effective tail
    seed: int
    sizes: dict[str, int]  # rows per dataset (d0, benchmark, and every kind)


def _sizes(d0: int, bench: int, large: int, mid: int, small: int) -> dict[str, int]:
    rest = dict.fromkeys(("partial", "offdomain", "contaminated"), large)
    return {"d0": d0, "benchmark": bench, "indomain_large": large, "indomain_mid": mid, "indomain_small": small} | rest


# Row counts fit the full variant (target 8000, candidate share 0.7: 5600 candidate rows); the fast variant
# (target 4000) uses the same files.
DOMAINS = {
    "crops10": DomainConfig(
        name="crops10",
        labels=("wheat", "maize", "rice", "barley", "oats", "rye", "millet", "sorghum", "soy", "canola"),
        vocab_per_label=120,
        keywords=(1, 1),
        fillers=(0, 1),
        distractor_rate=0.15,
        zipf=1.0,
        seed=101,
        sizes=_sizes(d0=300, bench=400, large=6000, mid=1400, small=400),
    ),
    "mood3": DomainConfig(
        name="mood3",
        labels=("calm", "angry", "sad"),
        vocab_per_label=260,
        keywords=(1, 2),
        fillers=(2, 4),
        distractor_rate=0.35,
        zipf=0.9,
        seed=202,
        sizes=_sizes(d0=300, bench=400, large=6000, mid=1400, small=400),
    ),
    "genre5": DomainConfig(
        name="genre5",
        labels=("poetry", "drama", "satire", "mystery", "fable"),
        vocab_per_label=200,
        keywords=(1, 3),
        fillers=(4, 7),
        distractor_rate=0.5,
        zipf=0.95,
        seed=303,
        sizes=_sizes(d0=300, bench=400, large=6000, mid=1400, small=400),
    ),
}


class Vocabulary:
    """Per-label keyword lists with Zipf weights, off-domain keywords and fillers, all from the domain's seed."""

    def __init__(self, cfg: DomainConfig):
        rng = random.Random(f"vocab-{cfg.name}-{cfg.seed}-{GENERATOR_VERSION}")
        taken: set[str] = set(cfg.labels)
        self.words = {label: _made_up_words(rng, cfg.vocab_per_label, taken) for label in cfg.labels}
        self.offdomain = _made_up_words(rng, cfg.vocab_per_label, taken)
        self.fillers = _made_up_words(rng, 40, taken)
        self.weights = [1.0 / (r + 1) ** cfg.zipf for r in range(cfg.vocab_per_label)]


def _made_up_words(rng: random.Random, n: int, taken: set[str]) -> list[str]:
    words: list[str] = []
    while len(words) < n:
        syllables = rng.choice([2, 2, 3])
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)) + rng.choice(_CODAS)
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


def _text(rng: random.Random, cfg: DomainConfig, vocab: Vocabulary, label: str, templates, **how) -> str:
    """One row's text: the template's slots filled with keywords of `label` (or off-domain ones), plus fillers."""
    pool = vocab.offdomain if how.get("offdomain") else vocab.words[label]
    n_keys = max(rng.randint(*cfg.keywords), how.get("min_keywords", 1))
    keys = rng.choices(pool, vocab.weights, k=n_keys)
    if not how.get("offdomain") and rng.random() < cfg.distractor_rate:
        other = rng.choice([lb for lb in cfg.labels if lb != label])
        keys.append(rng.choices(vocab.words[other], vocab.weights)[0])
    fill = [rng.choice(vocab.fillers) for _ in range(rng.randint(*cfg.fillers))]
    template = rng.choice(templates)
    text = template.replace("{k}", keys[0], 1).replace("{k2}", keys[1] if len(keys) > 1 else rng.choice(fill or keys))
    text = text.replace("{w}", rng.choice(vocab.fillers))
    return " ".join([text] + keys[2:] + fill)


def clean_rows(cfg: DomainConfig, kind: str, n: int, seed: int) -> list[dict]:
    """Rows {text, label} of one kind before label noise or contamination: the 'clean generator'."""
    vocab = Vocabulary(cfg)
    rng = random.Random(f"{cfg.name}-{kind}-{seed}-{GENERATOR_VERSION}")
    labels = cfg.labels[: len(cfg.labels) // 2] if kind == "partial" else cfg.labels
    templates = _TEMPLATES_A if kind in ("d0", "benchmark", "indomain_small") else _TEMPLATES_B
    how = {"offdomain": kind == "offdomain", "min_keywords": 2 if kind == "indomain_small" else 1}
    return [
        {"text": _text(rng, cfg, vocab, label, templates, **how), "label": label}
        for label in (rng.choice(labels) for _ in range(n))
    ]


def flip_labels(rows: list[dict], labels: tuple[str, ...], share: float, seed: int) -> list[dict]:
    """A copy of rows with exactly round(share * n) labels flipped, each to another label chosen uniformly."""
    rng = random.Random(f"flip-{seed}-{GENERATOR_VERSION}")
    flipped = set(rng.sample(range(len(rows)), round(share * len(rows))))
    return [
        dict(row, label=rng.choice([lb for lb in labels if lb != row["label"]])) if i in flipped else dict(row)
        for i, row in enumerate(rows)
    ]


def paraphrase(rows: list[dict], cfg: DomainConfig, seed: int) -> list[dict]:
    """Each row's label keywords kept, its phrasing redrawn from the other template set (a near-duplicate)."""
    vocab = Vocabulary(cfg)
    rng = random.Random(f"paraphrase-{cfg.name}-{seed}-{GENERATOR_VERSION}")
    out = []
    for row in rows:
        keys = [w for w in row["text"].split() if w in set(vocab.words[row["label"]])] or [row["text"].split()[0]]
        template = rng.choice(_TEMPLATES_B)
        text = template.replace("{k}", keys[0], 1).replace("{k2}", keys[-1]).replace("{w}", rng.choice(vocab.fillers))
        out.append({"text": text, "label": row["label"]})
    return out


def domain_sets(cfg: DomainConfig) -> dict[str, list[dict]]:
    """Every dataset of one domain: d0, benchmark and one per candidate kind."""
    n = cfg.sizes
    # D0 and the benchmark come from one stream, deduplicated, so they never share a text.
    pool = _unique(clean_rows(cfg, "d0", 2 * (n["d0"] + n["benchmark"]), seed=0))
    d0, bench = pool[: n["d0"]], pool[n["d0"] : n["d0"] + n["benchmark"]]
    large = clean_rows(cfg, "indomain_large", n["indomain_large"], seed=1)
    data = {"d0": d0, "benchmark": bench, "indomain_large": large}
    for kind in ("indomain_mid", "indomain_small", "partial", "offdomain"):
        data[kind] = clean_rows(cfg, kind, n[kind], seed=1)
    for kind, share in NOISE.items():
        data[kind] = flip_labels(large, cfg.labels, share, seed=cfg.seed)
    data["contaminated"] = contaminated(cfg, bench)
    data["paraphrase"] = paraphrase(bench, cfg, seed=cfg.seed)
    return data


def contaminated(cfg: DomainConfig, bench: list[dict]) -> list[dict]:
    """In-domain rows with CONTAMINATED_BENCH_SHARE of the benchmark's rows mixed in verbatim."""
    leaked = bench[: round(CONTAMINATED_BENCH_SHARE * len(bench))]
    rows = clean_rows(cfg, "contaminated", cfg.sizes["contaminated"] - len(leaked), seed=1) + [dict(r) for r in leaked]
    random.Random(f"contaminated-{cfg.seed}").shuffle(rows)
    return rows


def leaked_count(cfg: DomainConfig) -> int:
    """How many benchmark rows the contaminated candidate carries: what decontamination must remove."""
    return round(CONTAMINATED_BENCH_SHARE * cfg.sizes["benchmark"])


def ensure_domain(cfg: DomainConfig, root: Path) -> Path:
    """Write a domain's datasets as `<root>/<domain>/v<version>/<name>.jsonl` (once) and return the folder."""
    folder = Path(root) / cfg.name / f"v{GENERATOR_VERSION}"
    if (folder / "COMPLETE").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in domain_sets(cfg).items():
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(row) + "\n" for row in rows)
        os.replace(tmp, folder / f"{name}.jsonl")
    (folder / "COMPLETE").write_text("ok\n")
    return folder


def _unique(rows: list[dict]) -> list[dict]:
    seen: set[str] = set()
    out = []
    for row in rows:
        if row["text"] not in seen:
            seen.add(row["text"])
            out.append(row)
    return out
