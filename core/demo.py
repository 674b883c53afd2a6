"""The offline demo domain: customer-support intents, where the right answer is known by construction.

Six intents. Each has 20 real keywords and 150 made-up ones drawn with Zipf-skewed frequencies, so a
small D0 sees the head of each vocabulary and more in-domain data keeps uncovering the tail: the
metric keeps rising with data instead of saturating after a few steps. A message carries one or two
keywords of its intent, and a quarter of messages also carry a keyword of another intent.

D0 and the benchmark share one set of phrasings; candidates are written in another, and:
- `helpful`: the same intents and keyword distribution, new phrasings and new rows;
- `partial`: like helpful, but only three of the six intents;
- `offdomain`: the same label names on an unrelated domain (recipes and travel), whose keywords
  never occur in the benchmark: it teaches nothing useful and dilutes D0;
- `noisy`: like helpful, but 60 % of labels flipped to a fixed wrong intent (pair-flip noise), so
  the wrong label is the majority for every intent.

So the right ranking is helpful first, and offdomain and noisy below both helpful and the D0-only
baseline. Generation is deterministic: same code, same files, on every machine.

A small multiple-choice version of the same domain (`mc_*.jsonl`, for the multiple_choice task):
which team handles a message, with three intents offered and one right; `mc_d0` and `mc_benchmark`
in the first phrasing set, `mc_helpful` and `mc_offdomain` as above.

A small math domain (`math_*.jsonl`, for the generative task, answers in \\boxed{}): fractions named in
words ("three quarters") written as numbers. D0, `math_helpful` and `math_offdomain` (integer sums)
write answers in LaTeX (\\frac{3}{4}); `math_benchmark` writes the same values as decimals (0.75),
so only grading by equivalence (math_equiv) credits a model that learned the fractions.
"""

from __future__ import annotations

import json
import math
import os
import random
import tempfile
from pathlib import Path

from core.paths import demo_data_dir

INTENTS = ["billing", "shipping", "account", "technical", "refund", "cancel"]
DEMO_VERSION = 1
DEMO_SIZES = {"d0": 300, "benchmark": 600, "helpful": 9000, "partial": 9000, "offdomain": 9000, "noisy": 9000}
CANDIDATES = ("helpful", "partial", "offdomain", "noisy")
MC_DEMO_SIZES = {"mc_d0": 200, "mc_benchmark": 120, "mc_helpful": 2000, "mc_offdomain": 2000}
MC_CHOICES = 3
MATH_DEMO_SIZES = {"math_d0": 200, "math_benchmark": 60, "math_helpful": 1500, "math_offdomain": 1500}
_NUMERATORS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# Denominators whose fractions end as decimals, so the benchmark's gold answers are exact.
_DENOMINATORS = {2: ("half", "halves"), 4: ("quarter", "quarters"), 5: ("fifth", "fifths"), 8: ("eighth", "eighths")}
_MATH_TEMPLATES = {  # D0, the benchmark and the candidates each phrase the question their own way
    "math_d0": ["Write {w} as a number.", "What number is {w}?"],
    "math_benchmark": ["Express {w} as a number.", "Write {w} in digits."],
    "math_helpful": ["How much is {w}, as a number?", "Give {w} in numbers.", "Turn {w} into a number."],
}

_REAL = {
    "billing": "invoice charge payment bill card statement fee receipt tax subscription price amount debit "
    "overcharge billing balance paypal credit vat quote",
    "shipping": "parcel delivery package courier tracking shipment address dispatch postage carrier "
    "warehouse arrival transit label customs freight pickup doorstep van route",
    "account": "password login username profile email signin account verification twofactor settings "
    "avatar logout session security recovery locked register nickname preferences identity",
    "technical": "crash error bug freeze screen app update install loading timeout server sync "
    "glitch battery wifi firmware browser cache reboot driver",
    "refund": "refund reimbursement money back return chargeback compensation credit voucher "
    "repayment reversal damaged faulty broken exchange warranty rebate restitution",
    "cancel": "cancel cancellation unsubscribe terminate stop close end quit withdraw discontinue "
    "membership contract plan renewal opt leave deactivate abort revoke",
}
_OFFDOMAIN_REAL = (
    "recipe oven flour garlic pasta basil tomato onion butter simmer roast bake salad soup spice "
    "pepper lemon hotel flight beach museum passport train island mountain hiking castle ferry "
    "camping sunset harbor village"
)
_FILLER = (
    "please today again really still just now very quite kind of yesterday morning week soon "
    "maybe somehow thanks hello hi team support anyone"
).split()

# D0 and the benchmark: one phrasing set.
_TEMPLATES_A = [
    "hi, i have a question about my {k}",
    "my {k} is not right, can you check {f}",
    "{f} i need help with the {k}",
    "there is something wrong with {k} and {k2}",
    "hello team, the {k} {f} again",
    "can someone look at my {k} please",
    "why is the {k} like this {f}",
    "problem: {k} {k2}",
    "i am writing about {k}, {f}",
    "{k} issue since yesterday",
]
# Candidates: another phrasing set.
_TEMPLATES_B = [
    "urgent: {k} needs attention",
    "regarding the {k}, what should i do {f}",
    "{f} struggling with {k} {k2}",
    "dear support, my {k} {f}",
    "quick one about {k}",
    "need assistance: {k} and also {k2}",
    "could you explain the {k} {f}",
    "{k} {k2} {f} thanks",
    "hey, {k} trouble here",
    "following up on {k}",
]


def _made_up_words(rng: random.Random, n: int, taken: set[str]) -> list[str]:
    onsets = [
        "b",
        "br",
        "d",
        "dr",
        "f",
        "g",
        "gl",
        "k",
        "kr",
        "l",
        "m",
        "n",
        "p",
        "pl",
        "r",
        "s",
        "st",
        "t",
        "tr",
        "v",
        "z",
    ]
    vowels = ["a", "e", "i", "o", "u", "ai", "ou"]
    codas = ["", "n", "x", "r", "l", "m", "sk", "nt"]
    words: list[str] = []
    while len(words) < n:
        w = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.choice([2, 2, 3]))) + rng.choice(codas)
        if w not in taken:
            taken.add(w)
            words.append(w)
    return words


def _zipf(n: int) -> list[float]:
    return [1.0 / (r + 1) ** 1.05 for r in range(n)]


class _Domain:
    """Keyword vocabularies and their Zipf weights, built once from a fixed seed."""

    def __init__(self) -> None:
        rng = random.Random(20261121)
        taken = set(" ".join(_REAL.values()).split()) | set(_OFFDOMAIN_REAL.split()) | set(_FILLER)
        self.vocab = {i: _REAL[i].split() + _made_up_words(rng, 150, taken) for i in INTENTS}
        self.offdomain_vocab = _OFFDOMAIN_REAL.split() + _made_up_words(rng, 170, taken)
        # Real words first (the most frequent), made-up ones in a shuffled tail.
        self.weights = {i: _zipf(len(words)) for i, words in self.vocab.items()}
        self.off_weights = _zipf(len(self.offdomain_vocab))


_DOMAIN: _Domain | None = None


def _domain() -> _Domain:
    global _DOMAIN
    if _DOMAIN is None:
        _DOMAIN = _Domain()
    return _DOMAIN


def _message(rng: random.Random, intent: str, templates: list[str], *, offdomain: bool = False) -> str:
    d = _domain()
    if offdomain:
        # Off-domain rows: unrelated vocabulary; the keyword's label is assigned by a fixed hash,
        # so the rows are learnable but teach associations the benchmark never uses.
        pick = lambda: rng.choices(d.offdomain_vocab, d.off_weights)[0]  # noqa: E731
    else:
        pick = lambda: rng.choices(d.vocab[intent], d.weights[intent])[0]  # noqa: E731
    k = pick()
    k2 = pick() if rng.random() < 0.5 else rng.choice(_FILLER)
    if not offdomain and rng.random() < 0.25:  # a distractor keyword from another intent
        other = rng.choice([i for i in INTENTS if i != intent])
        k2 = rng.choices(d.vocab[other], d.weights[other])[0]
    template = rng.choice(templates)
    return template.format(k=k, k2=k2, f=rng.choice(_FILLER))


def generate(kind: str, n: int, seed: int = 0) -> list[dict]:
    """Rows {text, label} of one demo dataset. Deterministic in (kind, n, seed)."""
    if kind not in DEMO_SIZES:
        raise ValueError(f"unknown demo dataset '{kind}'; choose from {sorted(DEMO_SIZES)}")
    rng = random.Random(f"{kind}-{seed}-{DEMO_VERSION}")
    rows = []
    intents = INTENTS[:3] if kind == "partial" else INTENTS
    templates = _TEMPLATES_A if kind in ("d0", "benchmark") else _TEMPLATES_B
    for _ in range(n):
        intent = rng.choice(intents)
        text = _message(rng, intent, templates, offdomain=kind == "offdomain")
        label = intent
        if kind == "noisy" and rng.random() < 0.6:
            label = INTENTS[(INTENTS.index(intent) + 1) % len(INTENTS)]
        rows.append({"text": text, "label": label})
    return rows


def tokenizer_corpus() -> list[str]:
    """Text the built-in tokenizer is trained on: the demo vocabulary in both phrasing sets."""
    d = _domain()
    lines = [" ".join(words) for words in d.vocab.values()] + [" ".join(d.offdomain_vocab)]
    lines += [t.replace("{", "").replace("}", "") for t in _TEMPLATES_A + _TEMPLATES_B]
    lines += [" ".join(_FILLER), " ".join(INTENTS), "Message: Intent:"]
    rng = random.Random(7)
    for _ in range(3000):
        lines.append(_message(rng, rng.choice(INTENTS), _TEMPLATES_A + _TEMPLATES_B))
    return lines


def generate_multiple_choice(rows: list[dict], seed: int) -> list[dict]:
    """{text, label} rows as multiple-choice rows {question, choices, answer}: the label among other intents."""
    rng = random.Random(f"mc-{seed}-{DEMO_VERSION}")
    out = []
    for row in rows:
        choices = rng.sample([i for i in INTENTS if i != row["label"]], MC_CHOICES - 1) + [row["label"]]
        rng.shuffle(choices)
        out.append({"question": row["text"], "choices": choices, "answer": choices.index(row["label"])})
    return out


def generate_math(kind: str, n: int, seed: int = 0) -> list[dict]:
    """Rows {prompt, answer} of one math demo set, the answer a short solution ending in \\boxed{}."""
    if kind not in MATH_DEMO_SIZES:
        raise ValueError(f"unknown math demo dataset '{kind}'; choose from {sorted(MATH_DEMO_SIZES)}")
    rng = random.Random(f"{kind}-{seed}-{DEMO_VERSION}")
    templates = _MATH_TEMPLATES.get(kind, _MATH_TEMPLATES["math_helpful"])
    rows = []
    for _ in range(n):
        if kind == "math_offdomain":
            a, b = rng.randint(1, 9), rng.randint(1, 9)
            prompt = rng.choice(templates).format(w=f"{_NUMERATORS[a - 1]} plus {_NUMERATORS[b - 1]}")
            rows.append({"prompt": prompt, "answer": f"The answer is \\boxed{{{a + b}}}."})
            continue
        den = rng.choice(list(_DENOMINATORS))
        num = rng.choice([k for k in range(1, den) if math.gcd(k, den) == 1])  # fractions in lowest terms
        words = f"{_NUMERATORS[num - 1]} {_DENOMINATORS[den][num > 1]}"
        value = f"{num / den:g}" if kind == "math_benchmark" else f"\\frac{{{num}}}{{{den}}}"
        rows.append({"prompt": rng.choice(templates).format(w=words), "answer": f"The answer is \\boxed{{{value}}}."})
    return rows


def ensure_demo_data(folder: Path | None = None) -> Path:
    """Write the demo datasets as `<name>.jsonl` (once) and return their folder."""
    folder = Path(folder or demo_data_dir()) / f"v{DEMO_VERSION}"
    # One stamp per group, so a folder written before the multiple-choice sets existed gains them.
    groups = (("COMPLETE", _classification_sets), ("MC_COMPLETE", _multiple_choice_sets), ("MATH_COMPLETE", _math_sets))
    for stamp, make in groups:
        if not (folder / stamp).is_file():
            folder.mkdir(parents=True, exist_ok=True)
            _write(folder, make())
            (folder / stamp).write_text("ok\n")
    return folder


def _classification_sets() -> dict[str, list[dict]]:
    # D0 and benchmark come from one stream so they never share a row by accident.
    unique = _unique(generate("d0", DEMO_SIZES["d0"] + DEMO_SIZES["benchmark"] + 200, seed=0))
    data = {
        "d0": unique[: DEMO_SIZES["d0"]],
        "benchmark": unique[DEMO_SIZES["d0"] : DEMO_SIZES["d0"] + DEMO_SIZES["benchmark"]],
    }
    for kind in CANDIDATES:
        data[kind] = generate(kind, DEMO_SIZES[kind], seed=1)
    return data


def _multiple_choice_sets() -> dict[str, list[dict]]:
    n_d0, n_bench = MC_DEMO_SIZES["mc_d0"], MC_DEMO_SIZES["mc_benchmark"]
    unique = _unique(generate("d0", n_d0 + n_bench + 100, seed=2))
    return {
        "mc_d0": generate_multiple_choice(unique[:n_d0], seed=0),
        "mc_benchmark": generate_multiple_choice(unique[n_d0 : n_d0 + n_bench], seed=1),
        "mc_helpful": generate_multiple_choice(generate("helpful", MC_DEMO_SIZES["mc_helpful"], seed=3), seed=2),
        "mc_offdomain": generate_multiple_choice(generate("offdomain", MC_DEMO_SIZES["mc_offdomain"], seed=3), seed=3),
    }


def _math_sets() -> dict[str, list[dict]]:
    return {kind: generate_math(kind, n, seed=4) for kind, n in MATH_DEMO_SIZES.items()}


def _unique(rows: list[dict]) -> list[dict]:
    seen, out = set(), []
    for row in rows:
        if row["text"] not in seen:
            seen.add(row["text"])
            out.append(row)
    return out


def _write(folder: Path, data: dict[str, list[dict]]) -> None:
    for name, rows in data.items():
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
        os.replace(tmp, folder / f"{name}.jsonl")
