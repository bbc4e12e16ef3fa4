"""Filler prose: a small template grammar over a fixed word list (the testbed's general "language").

Filler carries no entity names and no facts, so it can be mixed into any corpus, and its words form most of
the ~1000-word vocabulary that a 2048-entry BPE tokenizer keeps as single tokens. Everyday register for the
era-A corpora and the instruction data; a news register (dated, markets, weather, councils) for era B.
"""
from __future__ import annotations

import random

# Nouns with a regular plural (+s); no profession words, which are fact values (world.ROLES).
NOUNS = """garden river market road window table letter bridge field forest hill lake village farm school
station harbour tower street corner kitchen door wall roof chair lamp book paper story song picture horse
bird dog boat train car truck bottle basket coat hat shoe bell clock candle flower tree leaf stone cloud storm
island valley path gate fence cart wagon mill barn shop ship engine machine tool hammer rope ladder bucket
blanket pillow mirror painting poem map ticket coin bag box desk pencil notebook camera radio piano drum
violin guitar concert festival party dinner meal cake apple orange lemon potato carrot onion soup plate cup
kettle jar meadow orchard pond stream beach shell wave rock cliff cave tunnel castle palace temple library
museum theatre hotel restaurant bakery office factory warehouse garage cottage cabin tent fire
lantern bench statue fountain square park playground kite balloon puzzle game ball bicycle wheel
key lock envelope parcel stamp postcard diary journal recipe spoon fork knife bowl sandwich biscuit cookie
hedge puddle rainbow sunset shadow whistle button ribbon scarf glove sock umbrella""".split()
ADJECTIVES = """old new small large quiet busy bright dark warm cold green blue red yellow white black heavy
light long short narrow wide tall low soft hard clean dusty empty full simple strange gentle calm wild young
ancient modern rough smooth sweet bitter fresh tired happy sad kind proud brave careful lazy clever noisy
silent golden silver wooden rusty shiny plain pretty rich poor friendly lonely early late deep shallow
""".split()
VERBS_TRANSITIVE = """carried found opened closed painted built visited watched cleaned moved fixed sold bought
noticed followed pulled pushed lifted dropped filled washed cooked baked wrote drew played counted checked
shared borrowed packed covered climbed crossed planted picked gathered carved mended""".split()
VERBS_INTRANSITIVE = """waited rested slept laughed smiled shone stayed arrived wandered glowed trembled
turned faded paused sighed danced""".split()
SUBJECTS = ["an old man", "a young woman", "the children", "the neighbours", "a traveller", "the family",
            "a group of friends", "the villagers", "the visitors", "a little boy", "a little girl", "my uncle",
            "our teacher", "the baker", "a farmer", "the driver", "everyone", "nobody", "my sister", "her brother"]
TIMES = ["in the morning", "in the evening", "at night", "at noon", "after the rain", "before the storm",
         "during the winter", "in the spring", "in the summer", "in the autumn", "on a cold day",
         "on a warm day", "every week", "once a year", "later that day", "for a long time"]
PLACES = ["near the {}", "behind the {}", "beside the {}", "across the {}", "inside the {}", "under the {}",
          "next to the {}", "at the edge of the {}", "far from the {}"]
# Each pattern uses {n} (and {m}) for nouns so that a given keyword can be forced into a sentence.
PATTERNS = [
    "{Subj} {vt} the {adj} {n} {place}.",
    "The {adj} {n} {vi} {time}.",
    "{Time}, {subj} {vt} {a_adj} {n}.",
    "There was {a_adj} {n} {place}.",
    "The {n} was {adj} and {adj2}.",
    "{Subj} {vi} {place} {time}.",
    "Nobody knew why the {n} was so {adj}.",
    "It was {a_adj} day, and the {n} was {adj2}.",
    "{Subj} said that the {n} looked {adj}.",
    "The {n}s {place} were {adj}.",
    "{Subj} liked the {n} more than the {m}.",
    "When the {n} was {adj}, {subj} {vt} the {m}.",
    "The {n} and the {m} {vi} {time}.",
    "Everyone remembers the {adj} {n} {place}.",
    "{Subj} {vt} the {n} and then the {m}.",
]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
GOODS = ["bread", "coffee", "rice", "fuel", "steel", "paper", "cotton", "timber", "sugar", "milk", "wool", "salt"]
NEWS_PATTERNS = [
    "Prices of {good} rose by {pct} percent this month.",
    "Prices of {good} fell by {pct} percent over the last month.",
    "The city council met to discuss a new {n} for the old town.",
    "Weather experts expect a {adj} {season} across the region.",
    "Trading was {adj} as markets waited for new figures.",
    "Sales of {good} grew for the {ord} month in a row.",
    "Officials said the new {n} would open before the {season}.",
    "Traders reported {adj} demand for {good} in the north.",
    "Heavy rain closed several roads near the {n} for {num} days.",
    "A report said that exports of {good} reached a new high.",
    "Local schools will stay open through the {season}, the council said.",
    "The national bank kept its main rate unchanged this month.",
    "Train services were slower than usual after a {adj} week.",
    "Farmers expect a {adj} harvest of {good} this year.",
    "More visitors than ever came to the spring festival.",
]
# News looks ahead ("due in March 2024"): era-A news then names the months of era B too, as 2023 news names
# 2024, so that a dated era-B article is new in what it reports, not in how its dates read.
PLAN_PATTERNS = [
    "The council expects the new {n} to open in {later}.",
    "Work on the {n} should be finished by {later}.",
    "The next figures on {good} are due in {later}.",
    "A new {n} is planned for {later}, officials said.",
    "Traders expect prices of {good} to settle by {later}.",
]
SEASONS = ["winter", "spring", "summer", "autumn"]
ORDINALS = ["second", "third", "fourth", "fifth", "sixth"]


def article(word: str) -> str:
    """'a' or 'an' by the first letter (good enough for this word list)."""
    return "an" if word[0].lower() in "aeiou" else "a"


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def sentence(rng: random.Random, nouns: tuple[str, ...] = ()) -> str:
    """One filler sentence; `nouns` (at most two) are forced into its noun slots, in order."""
    pattern = rng.choice([p for p in PATTERNS if p.count("{n") + p.count("{m") >= len(nouns)] if nouns
                         else PATTERNS)
    picked = list(nouns) + rng.sample(NOUNS, 2)
    adj, adj2 = rng.sample(ADJECTIVES, 2)
    subj, time = rng.choice(SUBJECTS), rng.choice(TIMES)
    return pattern.format(
        n=picked[0], m=picked[1], adj=adj, adj2=adj2, a_adj=f"{article(adj)} {adj}",
        vt=rng.choice(VERBS_TRANSITIVE), vi=rng.choice(VERBS_INTRANSITIVE),
        subj=subj, Subj=cap(subj), time=time, Time=cap(time),
        place=rng.choice(PLACES).format(rng.choice(NOUNS)))


def paragraph(rng: random.Random, n_min: int = 3, n_max: int = 6) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(n_min, n_max)))


def news_sentence(rng: random.Random, later: str = "") -> str:
    """A news-register filler sentence; with `later` (a month, "March 2024") sometimes one that looks ahead to it."""
    patterns = PLAN_PATTERNS if later and rng.random() < 0.3 else NEWS_PATTERNS
    return rng.choice(patterns).format(
        good=rng.choice(GOODS), pct=rng.randint(2, 19), n=rng.choice(NOUNS), adj=rng.choice(ADJECTIVES),
        season=rng.choice(SEASONS), ord=rng.choice(ORDINALS), num=rng.randint(2, 9), later=later)


def words(text: str) -> list[str]:
    """Whitespace words, the unit the WorldConfig sizes and the manifest counts are in."""
    return text.split()
