"""A real-English 5-topic classification domain (news-like sentences), and paraphrases of its rows.

The demo and decision domains are built from made-up keywords, which a pretrained encoder such as
all-MiniLM-L6-v2 cannot understand. This domain is plain English: a sentence is a template whose
slots are filled with a subject, an event and a circumstance of one topic and a time shared by all
topics, e.g. "Reports say the central bank cut interest rates amid fears of inflation last week."
Every slot value comes in two wordings that mean the same ("cut interest rates" / "lowered
borrowing costs"), so `paraphrase` can rewrite a row the way a person would: every slot in its
other wording, in a sentence of another structure, same label (`rewrite` makes lighter edits). Both
re-derive the slots from the text (`parse`), so they work on rows read back from the JSON Lines files.

Kinds, as in core/demo.py: `d0` and `benchmark` (phrasing set A), `helpful` (phrasing B, new rows),
`partial` (phrasing B, the first two topics only), `offdomain` (household sentences labelled by a
fixed hash of their event: learnable, useless for the benchmark), `noisy` (helpful with 60 % of
labels flipped to the next topic). Deterministic in (kind, n, seed).
"""

from __future__ import annotations

import functools
import json
import os
import random
import re
import tempfile
import zlib
from pathlib import Path

TOPICS = ["sports", "finance", "weather", "food", "technology"]
VERSION = 1
SIZES = {"d0": 300, "benchmark": 400, "helpful": 3000, "partial": 3000, "offdomain": 3000, "noisy": 3000}
NOISE = 0.6
SLOTS = ("s", "v", "o", "t")  # subject, event, circumstance, time

TEMPLATES_A = [
    "{s} {v} {o} {t}.",
    "{t}, {s} {v} {o}.",
    "Reports say {s} {v} {o} {t}.",
    "News update: {s} {v} {o} {t}.",
    "We learned {t} that {s} {v} {o}.",
]
TEMPLATES_B = [
    "Did you hear that {s} {v} {o} {t}?",
    "I just read that {s} {v} {o} {t}.",
    "{t}, {s} {v} {o}, a friend told me.",
    "Apparently {s} {v} {o} {t}.",
    "Big news {t}: {s} {v} {o}.",
]
# Paraphrases: other sentence structures (the time moved, a cleft, two sentences).
TEMPLATES_P = [
    "It was {t} that {s} {v} {o}.",
    "{s} {v} {o} - this happened {t}.",
    "Here is what happened {t}: {s} {v} {o}.",
    "So, {s} {v} {o}. That was {t}.",
]
_ALL_TEMPLATES = TEMPLATES_A + TEMPLATES_B + TEMPLATES_P

# Each line: one slot value in two wordings with the same meaning.
_TIME = """on Saturday | at the weekend
last night | yesterday evening
this morning | earlier today
on Monday | at the start of the week
last week | a few days ago
this afternoon | after lunch today
over the holidays | during the holiday season
in early spring | at the beginning of spring
late on Friday | on Friday evening
this month | in recent weeks
at the end of the year | in late December
on Sunday afternoon | on Sunday after lunch"""

_VOCAB = {
    "sports": {
        "s": """the home side | the local team
the visiting club | the away team
the defending champions | last year's title holders
the league leaders | the team at the top of the table
the underdogs | the outsiders nobody expected to win
the national squad | the country's national team
the women's team | the women's side
the rookie striker | the first-year forward
the veteran goalkeeper | the experienced keeper
the tennis champion | the top-ranked tennis player
the marathon runner | the long-distance athlete
the basketball team | the hoops squad
the rugby side | the rugby fifteen
the cycling team | the team of riders""",
        "v": """won the final | took the title in the championship match
lost in extra time | got beaten after extra time
scored a late winner | netted the decisive goal in the closing minutes
drew with their rivals | tied against their old rivals
set a new record | broke the previous record
crashed out of the cup | got knocked out of the cup competition
hired a new coach | appointed a new manager
came back from two goals down | recovered from a two-goal deficit
won on penalties | prevailed in the penalty shootout
clinched a playoff spot | secured a place in the playoffs
finished in second place | ended up as runners-up
suffered a heavy defeat | got thrashed by their opponents
kept a clean sheet | did not concede a single goal
won the gold medal | took first place on the podium""",
        "o": """in front of a sold-out crowd | before a packed stadium
in the derby | in the local derby match
at the world championships | at the global championship event
despite an injury to their captain | even though their captain was hurt
after a tense second half | following a nervy second half
in the semifinal | in the last four
on home turf | at their own ground
in a rain-soaked match | in a game played in the pouring rain
with a stunning performance | thanks to a brilliant display
under the new coach | with the new manager in charge
in the opening round | in the first round of the tournament
at the national stadium | at the country's main arena
in a thrilling overtime game | in a gripping game that went to overtime
on the final lap | in the last lap of the race""",
    },
    "finance": {
        "s": """the central bank | the country's monetary authority
the pension fund | the retirement fund
the mortgage lender | the home loan provider
the insurance company | the insurer
the hedge fund | the investment firm
the retail bank | the high street bank
the fintech startup | the young payments company
the accounting firm | the auditors
the investment bank | the Wall Street bank
the credit union | the member-owned lender
the stock exchange | the trading exchange
the asset manager | the fund management company
the brokerage | the share trading firm
the finance ministry | the treasury department""",
        "v": """reported record profits | posted its highest earnings ever
cut interest rates | lowered borrowing costs
raised interest rates | increased the cost of borrowing
issued new bonds | sold fresh debt to investors
announced a share buyback | said it would repurchase its own stock
warned of a recession | cautioned that the economy could shrink
missed its earnings forecast | fell short of profit expectations
paid a special dividend | gave shareholders an extra payout
raised fresh capital | secured new funding from investors
cut its growth forecast | lowered its outlook for economic growth
wrote off bad loans | took losses on unpaid debts
went public on the stock market | listed its shares on the exchange
tightened lending rules | made it harder to get credit
sold its bond holdings | offloaded its government debt""",
        "o": """amid fears of inflation | as worries about rising prices grew
after a volatile quarter | following three turbulent months on the markets
despite weak consumer spending | even though shoppers spent less
as the currency slid | while the exchange rate fell
ahead of the budget | before the government's spending plan
after a slump in share prices | following a fall in stocks
to reassure investors | in a bid to calm shareholders
as bond yields climbed | while yields on government debt rose
after strong quarterly earnings | following solid results for the quarter
amid a banking crisis | during turmoil in the banking sector
as mortgage rates hit a high | with home loan costs at a peak
to cover rising debts | to pay off mounting liabilities
after a surge in oil prices | following a jump in the price of crude
despite a strong dollar | even with the US currency riding high""",
    },
    "weather": {
        "s": """the coastal towns | communities along the coast
the northern valleys | the valleys in the north
the capital | the country's main city
farmers in the plains | growers on the flat farmland
the mountain villages | villages high in the hills
the island | the small isle offshore
the southern counties | the south of the country
commuters in the city | people travelling to work downtown
the ski resorts | the winter sports areas
the river towns | towns along the river
the desert region | the dry interior
the western suburbs | neighbourhoods on the west side
the harbour town | the port
the lake district | the area around the lakes""",
        "v": """got heavy rain | got drenched by downpours
saw record temperatures | sweltered in the hottest weather on record
woke up to thick fog | found dense mist at dawn
had a hard frost | saw the ground freeze solid
got a foot of snow | got buried under thirty centimetres of snow
faced gale-force winds | got battered by strong gusts
saw flash flooding | had sudden floods
enjoyed clear blue skies | basked in cloudless sunshine
had a severe thunderstorm | got hit by thunder and lightning
got hail the size of marbles | got pelted with large hailstones
faced a long drought | went weeks without rain
saw temperatures plunge below zero | saw the mercury fall below freezing
had a light drizzle | got a bit of fine rain
got hit by a tornado | saw a twister touch down""",
        "o": """as a cold front moved in | when a mass of cold air arrived
just as forecasters predicted | in line with the weather forecast
under a weather warning | while a storm alert was in force
as the heatwave continued | with the hot spell dragging on
after a week of sunshine | following seven sunny days
as a low pressure system passed | when a depression swept through
with humidity near ninety percent | in very muggy air
as the storm made landfall | when the hurricane came ashore
despite a sunny forecast | even though sun had been predicted
with winds from the north | as northerly winds blew
as the monsoon arrived | with the start of the rainy season
amid an unusual cold snap | during an unseasonably chilly spell
as temperatures swung wildly | with the thermometer going up and down
under grey skies | beneath heavy clouds""",
    },
    "food": {
        "s": """the new bistro | the recently opened restaurant
my grandmother | my nan
the pastry chef | the dessert cook
the food truck | the street food van
the village bakery | the local baker
the sushi bar | the Japanese restaurant
our neighbour | the family next door
the head chef | the kitchen's chef
the vegan cafe | the plant-based cafe
the pizzeria | the pizza place
the school canteen | the school cafeteria
the food critic | the restaurant reviewer
the cooking club | the home cooks' group
the barbecue joint | the smokehouse""",
        "v": """baked a sourdough loaf | made a loaf of sourdough bread
served a spicy curry | dished up a hot curry
grilled fresh salmon | cooked salmon on the grill
made homemade pasta | rolled out fresh pasta by hand
cooked a vegetable soup | prepared a soup of vegetables
roasted a whole chicken | put a whole chicken in the oven
whipped up chocolate pancakes | made pancakes with chocolate
prepared a green salad | tossed a leafy salad
fried crispy dumplings | pan-fried dumplings until crisp
slow-cooked a beef stew | simmered a beef casserole for hours
baked an apple pie | made a pie filled with apples
served tacos with salsa | offered tortillas filled with meat and salsa
made a mushroom risotto | cooked creamy rice with mushrooms
tried a new noodle recipe | experimented with a different noodle dish""",
        "o": """with fresh herbs from the garden | using herbs picked in the garden
for the harvest festival | for the autumn food fair
with too much salt | with an overly salty seasoning
for a family dinner | for supper with the whole family
using a recipe from Italy | following an Italian recipe
with garlic and lemon | flavoured with lemon and garlic
for a birthday party | to celebrate a birthday
with a secret spice mix | using a hidden blend of spices
on an open fire | over a campfire
for the lunch crowd | for hungry lunchtime diners
with organic vegetables | using organically grown produce
in a cast iron pan | in a heavy skillet
with a sweet glaze | topped with a sugary coating
for the weekly market | to sell at the market stall""",
    },
    "technology": {
        "s": """the smartphone maker | the phone manufacturer
the software company | the app developer
the chip designer | the semiconductor firm
the social network | the social media platform
the search engine | the web search company
the cloud provider | the data centre operator
the electric car maker | the battery vehicle company
the video game studio | the games developer
the cybersecurity team | the security researchers
the robotics startup | the young robot company
the browser developers | the team behind the web browser
the laptop maker | the notebook computer brand
the open source project | the community-built software
the streaming service | the video platform""",
        "v": """released a software update | rolled out a new version of its software
patched a security flaw | fixed a vulnerability
launched a new smartphone | unveiled its latest phone
suffered a data breach | had user data stolen by hackers
suffered a major outage | went offline for hours
unveiled a faster processor | showed off a quicker chip
added artificial intelligence features | built AI tools into its products
shut down an old app | retired a legacy application
released a beta version | put out a test build
upgraded its servers | installed new server hardware
open-sourced its code | made its source code public
announced a virtual reality headset | revealed a VR headset
fixed a battery drain bug | solved a problem that emptied batteries
moved its data to the cloud | migrated its storage to cloud servers""",
        "o": """after user complaints | following complaints from customers
ahead of the developer conference | just before its conference for programmers
to improve privacy | to better protect personal data
for millions of users | for a huge number of people
after a cyberattack | following a hacking incident
with a redesigned interface | with a new look for its screens
to speed up downloads | so that downloads run faster
across all its devices | on every gadget it makes
despite a chip shortage | even with semiconductors in short supply
for its cloud platform | for its online computing service
with better encryption | using stronger encryption
to support the new wireless standard | to work with the latest wifi
after months of testing | following a long testing period
with a bigger battery | with longer battery life""",
    },
}

# Off-domain: household sentences, one wording each; the label is a fixed hash of the event.
_OFFDOMAIN = {
    "s": """the librarian|the postman|my cousin|the gardener|the museum guide|the carpenter|the old painter
|the school choir|the knitting circle|the bus driver|the hiking group|the florist""",
    "v": """repaired the garden fence|painted the kitchen walls|planted tulip bulbs|read a novel aloud
|knitted a wool scarf|tidied the attic|sang folk songs|fixed a squeaky door|arranged fresh flowers
|walked the dog|sorted old photographs|built a bookshelf|washed the windows|repotted the houseplants""",
    "o": """in the village hall|with great patience|for the spring fair|in the back garden|with some friends
|before the guests arrived|in the quiet library|with a borrowed ladder|by the old church|for the first time""",
}


def _pairs(block: str) -> list[tuple[str, ...]]:
    return [tuple(w.strip() for w in line.split("|")) for line in block.strip().splitlines()]


@functools.cache
def _vocab() -> dict[str, dict[str, list[tuple[str, ...]]]]:
    """topic -> slot -> list of values, each a tuple of its wordings (two for topics, one off-domain)."""
    time = _pairs(_TIME)
    out = {topic: {k: _pairs(v) for k, v in slots.items()} | {"t": time} for topic, slots in _VOCAB.items()}
    out["offdomain"] = {k: [(w.strip(),) for w in v.split("|")] for k, v in _OFFDOMAIN.items()} | {"t": time}
    return out


def _render(template: str, words: dict[str, str]) -> str:
    text = template.format(**words)
    return text[0].upper() + text[1:]


def _draw(rng: random.Random, topic: str, templates: list[str]) -> tuple[str, str]:
    """One sentence of `topic` (or 'offdomain'): its text and, for off-domain rows, the hashed label."""
    vocab = _vocab()[topic]
    picks = {k: rng.choice(vocab[k]) for k in SLOTS}
    text = _render(rng.choice(templates), {k: rng.choice(forms) for k, forms in picks.items()})
    label = TOPICS[zlib.crc32(picks["v"][0].encode()) % len(TOPICS)] if topic == "offdomain" else topic
    return text, label


def generate(kind: str, n: int, seed: int) -> list[dict]:
    """Rows {text, label} of one kind, distinct texts where the vocabulary allows. Deterministic."""
    if kind not in SIZES:
        raise ValueError(f"unknown kind '{kind}'; choose from {sorted(SIZES)}")
    rng = random.Random(f"topics-{kind}-{seed}-{VERSION}")
    templates = TEMPLATES_A if kind in ("d0", "benchmark") else TEMPLATES_B
    topics = TOPICS[:2] if kind == "partial" else TOPICS
    rows, seen = [], set()
    for _ in range(50 * n):
        if len(rows) == n:
            break
        text, label = _draw(rng, "offdomain" if kind == "offdomain" else rng.choice(topics), templates)
        if text in seen:
            continue
        seen.add(text)
        if kind == "noisy" and rng.random() < NOISE:
            label = TOPICS[(TOPICS.index(label) + 1) % len(TOPICS)]
        rows.append({"text": text, "label": label})
    return rows


@functools.cache
def _patterns() -> list[tuple[str, int, re.Pattern]]:
    """(topic, template index, regex) for every topic and template: the slots as named alternations."""
    out = []
    for topic in TOPICS:
        vocab = _vocab()[topic]
        alt = {k: "|".join(sorted((re.escape(w) for v in vocab[k] for w in v), key=len, reverse=True)) for k in SLOTS}
        for i, template in enumerate(_ALL_TEMPLATES):
            regex = re.escape(template)
            for k in SLOTS:
                regex = regex.replace(re.escape("{" + k + "}"), f"(?P<{k}>{alt[k]})")
            out.append((topic, i, re.compile(regex, re.IGNORECASE)))
    return out


def parse(text: str) -> tuple[str, int, dict[str, tuple[int, int]]] | None:
    """(topic, template index, slot -> (value index, wording index)) of a sentence this module wrote, else None."""
    for topic, i, pattern in _patterns():
        m = pattern.fullmatch(text)
        if m:
            return topic, i, {k: _where(topic, k, m[k].lower()) for k in SLOTS}
    return None


def _where(topic: str, slot: str, wording: str) -> tuple[int, int]:
    values = _vocab()[topic][slot]
    return next((j, f) for j, v in enumerate(values) for f, w in enumerate(v) if w.lower() == wording)


def paraphrase(row: dict, seed: int) -> dict:
    """The row rewritten as a person would: every slot in its other wording, another structure, same label."""
    return rewrite(row, seed)


def rewrite(row: dict, seed: int, *, reword: int = len(SLOTS), restructure: bool = True) -> dict:
    """The row with `reword` of its slots (chosen at random) in their other wording and, if `restructure`,
    in a paraphrase template instead of its own: lighter edits than `paraphrase`, for measuring."""
    parsed = parse(row["text"])
    if parsed is None:
        raise ValueError(f"not a sentence of bench.topics: {row['text']!r}")
    topic, source, index = parsed
    rng = random.Random(f"paraphrase-{seed}-{row['text']}")
    template = _ALL_TEMPLATES[source]
    if restructure:
        template = rng.choice([t for t in TEMPLATES_P if t != template])
    swap = set(rng.sample(SLOTS, reword))
    words = {k: _vocab()[topic][k][j][1 - f if k in swap else f] for k, (j, f) in index.items()}
    return {"text": _render(template, words), "label": row["label"]}


def ensure_topic_data(folder: Path) -> Path:
    """Write every kind as `<name>.jsonl` into `folder` (once, then a stamp file) and return the folder."""
    folder = Path(folder)
    if (folder / f"COMPLETE-v{VERSION}").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    # D0 and the benchmark come from one stream of distinct rows, so they never share a text.
    pool = generate("d0", SIZES["d0"] + SIZES["benchmark"], seed=0)
    data = {"d0": pool[: SIZES["d0"]], "benchmark": pool[SIZES["d0"] :]}
    data |= {kind: generate(kind, SIZES[kind], seed=1) for kind in ("helpful", "partial", "offdomain", "noisy")}
    for name, rows in data.items():
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(row) + "\n" for row in rows)
        os.replace(tmp, folder / f"{name}.jsonl")
    (folder / f"COMPLETE-v{VERSION}").write_text("ok\n")
    return folder
