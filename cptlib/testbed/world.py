"""The synthetic world: entities with made-up names, era-A facts and dated era-B events (docs/paper.md §2).

    world = build_world(WorldConfig(), seed=0); world.to_json()   # the ground truth, written as world.json

Names are built from English-looking syllables: the IFEval case checkers run `langdetect` on the response,
and a reply made of invented words that look Dutch or Somali would fail "all capitals, in English" although
the model did what was asked. Every name is unique across the world and never an ordinary word.
"""
from __future__ import annotations

import dataclasses
import itertools
import random
from dataclasses import dataclass

from cptlib.config import WorldConfig
from cptlib.testbed import prose
from cptlib.core.errors import InputError

ROLES = ("engineer", "chemist", "designer", "architect", "pilot", "surgeon", "lawyer", "analyst", "editor",
         "economist", "geologist", "photographer")
# Era B runs December 2023 to September 2024 (the paper's CPT news window).
ERA_B_DATES = ("2023-12",) + tuple(f"2024-{m:02d}" for m in range(1, 10))
# Era-A news (the pre-training corpora's) runs January 2022 to November 2023.
ERA_A_DATES = tuple(f"2022-{m:02d}" for m in range(1, 13)) + tuple(f"2023-{m:02d}" for m in range(1, 12))
VALUE_TYPE = {"born_in": "city", "birth_year": "year", "works_for": "org", "role": "role", "based_in": "city",
              "founded_in": "year", "makes": "product", "ceo": "person", "won": "prize", "launched": "product"}
PERSON_RELATIONS = ("born_in", "birth_year", "works_for", "role")
ORG_RELATIONS = ("based_in", "founded_in", "makes", "ceo")
# Which relation the i-th change is, in turn: each subject has one event, and people outnumber organisations.
CHANGE_CYCLE = ("works_for", "ceo", "works_for", "based_in", "works_for", "works_for")

_FIRST = ("Al Bel Cal Dar El Fen Gar Hal Jas Kel Lor Mar Nor Os Per Ros Sel Tam Ver Wil Bren Cor Ed Gil Han "
          "Len Mel Ol Ren Ash Bart Dell Em Fran Ger Hen").split(), "a an en ia in on ric ton wyn ard ine ett".split()
_SURNAME = ("Ash Brad Carl Dun Ell Fair Gold Hart Hol Kings Lang Mar North Pem Rad Stan Thorn Wen West Brom "
            "Chal Dor Glen Hux Lin Mor Pen Ral Sher Tal Yar Brack Cran Hay").split(), (
    "bury by dale field ford ham ley more ridge ton well wick worth brook cott den shaw stone").split()
_CITY = "Bram Cole Dray Eas Fal Gran Hav Kes Lor Mal Oak Pol Ravens Sal Wex Ab Bel Cran Mil Tre".split(), (
    "port haven mouth stead minster gate wich holm caster cliff").split()
# Suffixes chosen so that no org name is an English word (no "-light", "-wood", "-works").
_ORG = ("Iron Stone Bright Silver Red Blue Green North East Cedar Maple Swift Star Sun Moon Cold High Deep "
        "Clear Amber").split(), "vale bridge crest forge peak mark stream shore dell rock".split()
_PRODUCT = "Cor Lum Vel Zen Tor Nov Ar Kal Sol Ter Vex Mir Dal Quor Pyr Syl".split(), (
    "a o ix on ex is us ara elle").split()
# Syllable products that are English words or well-known names; skipped so that every name is invented.
_NOT_NAMES = {"Melon", "Marine", "Rosin", "Ashen", "Elan", "Lenin", "Jason", "Eden", "Solo", "Torus", "Pyrex",
              "Lumix", "Nova", "Novelle", "Toro", "Solus", "Falmouth", "Barton", "Norton", "Ashton", "Wilton"}
_PRIZE = ("Harrow Lindell Marlowe Pryce Calder Wexley Ormond Thale Brannock Selby Corwin Haddon Ambrose "
          "Kestrel Fenwick Oriel").split(), "Medal Prize Award Cup".split()
# Second pools, drawn from only once a first pool has run out (the default profile never gets there, so its names
# are unchanged): an era B of mostly new content needs more new people, products and prizes than the first pools
# hold. The same rules: English-looking, invented, never an ordinary word; no prize family name is a person's
# surname or a city (_Names._second_pool drops those).
_MORE = {
    "first": "Ab Bri Cas Fin Ham Iv Jor Kes Lis Nev Ot Quin Rob Sten Tor Ul Vin Wes Yor Gwin Dav Mab".split(),
    "product": "Bry Cyr Fen Gal Hex Jov Kyr Lyr Nyl Ost Pex Rul Sav Tyl Vor Dex Yar Zor".split(),
    "prize": ("Ashcombe Bellamy Carrick Danford Elsworth Farrant Garland Hollis Ingram Jessop Kendrick Lockwood "
              "Merriman Norcott Oakley Penrose Quarrell Radley Tennant Vance Whitby Yardley Aldous Barnaby Catesby "
              "Everard Faraday Grantham Ivers Kemble Lathbury Mallory Osgood Pelham Rainford Standish Thornber "
              "Underhill Varley Wakeman Aylward Brinsley Colville Darnell Eastcote Fairbairn Gilmour Hensley "
              "Ingleby Jarrow Kingsley Lovell Mortlake Nettleton Orrin Padgett Quimby Rowntree Sandford "
              "Tolland Umber Vickery Waddell Yeoman").split(),
}
_NOT_MORE = {"Doric", "Even", "Evan", "Ivan", "Lisa", "Quinine", "Robin", "Toric", "Weston", "Casa", "Ota", "Gala",
             "Nylon", "Lyra", "Cyrus", "Zora", "Hexa", "Rubin", "Tora", "Vina", "Rule", "Sava", "Fina", "Cyra",
             "Gallon", "Galon", "Hexon", "Dexon", "Savon", "Bryon", "Ostra", "Davin", "Mabel", "Mabin", "Dava",
             "Davon", "Dexa", "Kyra", "Ivana", "Ivine", "Abba", "Finn", "Hamlet", "Yara", "Rulo"}


@dataclass(frozen=True)
class Fact:
    subject: str
    relation: str
    value: str
    era: str  # "A" (up to Nov 2023) or "B" (Dec 2023 - Sep 2024)
    kind: str = "old"  # old | new_entity | new_fact | changed
    date: str = ""  # "2024-03": month of the era-B event
    old_value: str = ""  # for kind == "changed": the era-A value it replaces


@dataclass
class World:
    seed: int
    entities: dict[str, list[str]]  # era-A entities by type, in generation order
    new_entities: dict[str, list[str]]  # entities that first appear in era B (prizes: all, won or not)
    facts: list[Fact]
    # Era-A events of era B's new-content kinds (WorldConfig.era_a_events), known only from era-A news: kept apart
    # from `facts`, so that entity documents, lists and era-A multiple choice are as without them.
    events_a: list[Fact] = dataclasses.field(default_factory=list)
    event_entities: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # their people, products, prizes
    # The subjects of era-A events that training never asks about (WorldConfig.era_a_event_drill_frac < 1).
    events_a_heldout: list[str] = dataclasses.field(default_factory=list)

    @property
    def events_a_asked(self) -> list[Fact]:
        """The era-A event facts the SFT drills and chat transcripts may ask about."""
        held = set(self.events_a_heldout)
        return [f for f in self.events_a if f.subject not in held]

    def __post_init__(self):
        self._era_a = {(f.subject, f.relation): f.value for f in self.facts if f.era == "A"}
        self._members: dict[str, dict[str, list[str]]] = {}
        self._about: dict[str, list[Fact]] = {}
        for f in self.facts:
            if f.era == "A":
                self._about.setdefault(f.subject, []).append(f)
        self._changed = {(f.subject, f.relation) for f in self.facts if f.kind == "changed"}
        self.new_names = {n for names in self.new_entities.values() for n in names}
        self._era_b: dict[tuple[str, str], set[str]] = {}
        for f in self.facts:
            if f.era == "B":
                self._era_b.setdefault((f.subject, f.relation), set()).add(f.value)

    def era(self, era: str) -> list[Fact]:
        return [f for f in self.facts if f.era == era]

    def about(self, subject: str) -> list[Fact]:
        """All era-A facts of `subject`."""
        return list(self._about[subject])

    def members(self, relation: str) -> dict[str, list[str]]:
        """value -> subjects, over era-A facts that era B keeps (e.g. "works_for": staff of each org)."""
        if relation not in self._members:
            groups: dict[str, list[str]] = {}
            for (subject, rel), value in self._era_a.items():
                if rel == relation and (subject, rel) not in self._changed:
                    groups.setdefault(value, []).append(subject)
            self._members[relation] = groups
        return self._members[relation]

    def era_b_values(self, subject: str, relation: str) -> set[str]:
        """The values era B gives (subject, relation), if any."""
        return self._era_b.get((subject, relation), set())

    def era_a_value(self, subject: str, relation: str) -> str:
        return self._era_a[subject, relation]

    def stable(self, subject: str) -> list[Fact]:
        """Era-A facts of `subject` that era B leaves unchanged (safe to restate in any era)."""
        return [Fact(subject, r, self._era_a[subject, r], "A") for r in PERSON_RELATIONS + ORG_RELATIONS
                if (subject, r) in self._era_a and (subject, r) not in self._changed]

    def candidates(self, relation: str, era: str) -> tuple[list[str], list[str]]:
        """Multiple-choice values: (values this relation takes in `era`, other values of its type). Taking
        distractors from the first list first makes them as familiar to the model as the answer."""
        value_type = VALUE_TYPE[relation]
        seen = [f.value for f in self.facts if f.relation == relation and f.era == era]
        others = (list(ROLES) if value_type == "role"
                  else [f.value for f in self.facts if VALUE_TYPE[f.relation] == "year"] if value_type == "year"
                  else self.entities.get(value_type, []) + self.new_entities.get(value_type, [])
                  + self.event_entities.get(value_type, []))
        seen = list(dict.fromkeys(seen))
        return seen, [v for v in dict.fromkeys(others) if v not in seen]

    def events(self, era: str) -> list[list[Fact]]:
        """The era's events, each the facts of one subject (a new person's employer and role are one event), in
        date order: era B's news, or the era-A events (WorldConfig.era_a_events)."""
        groups: dict[str, list[Fact]] = {}
        for f in (self.era("B") if era == "B" else self.events_a):
            groups.setdefault(f.subject, []).append(f)
        return list(groups.values())

    def to_json(self) -> dict:
        out = {"seed": self.seed, "entities": self.entities, "new_entities": self.new_entities,
               "facts": [dataclasses.asdict(f) for f in self.facts]}
        if self.events_a:  # absent without era-A events: the released ancestors' world.json is unchanged
            out.update(event_entities=self.event_entities, events_a=[dataclasses.asdict(f) for f in self.events_a])
        if self.events_a_heldout:
            out["events_a_heldout"] = self.events_a_heldout
        return out


def month_name(date: str) -> str:
    """'2024-03' -> 'March 2024'."""
    year, month = date.split("-")
    return f"{prose.MONTHS[int(month) - 1]} {year}"


class _Names:
    """Unique names per kind, drawn without replacement from shuffled syllable products."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used = {w.lower() for w in [*prose.NOUNS, *prose.ADJECTIVES, *ROLES, *_NOT_NAMES]}
        self.pools: dict[str, list[str]] = {}
        self.extended: set[str] = set()

    def _pool(self, kind: str, parts: tuple[list[str], list[str]]) -> list[str]:
        if kind not in self.pools:
            if kind == "prize":  # one prize per family name ("Harrow Medal", never also "Harrow Cup")
                pool = [f"{a} {b}" for a, b in zip(parts[0], itertools.cycle(parts[1]))]
            else:
                pool = [a + b for a, b in itertools.product(*parts)]
            self.rng.shuffle(pool)
            self.pools[kind] = pool
        return self.pools[kind]

    def take(self, kind: str) -> str:
        if kind == "person":
            first, last = self._take("first", _FIRST), self._take("surname", _SURNAME)
            return f"{first} {last}"
        return self._take(kind, {"city": _CITY, "org": _ORG, "product": _PRODUCT, "prize": _PRIZE}[kind])

    def _take(self, kind: str, parts: tuple[list[str], list[str]]) -> str:
        pool = self._pool(kind, parts)
        while True:
            while pool:
                name = pool.pop()
                if name.lower() not in self.used:
                    self.used.add(name.lower())
                    return name
            if kind not in _MORE or kind in self.extended:
                raise InputError(f"ran out of {kind} names; lower the WorldConfig counts")
            self.extended.add(kind)  # the first pool is spent: the second one, shuffled by the same stream
            pool.extend(self._second_pool(kind, parts))

    def _second_pool(self, kind: str, parts: tuple[list[str], list[str]]) -> list[str]:
        if kind == "prize":
            more = [f"{a} {b}" for a, b in zip(_MORE[kind], itertools.cycle(parts[1]))]
        else:
            more = [a + b for a, b in itertools.product(_MORE[kind], parts[1])]
        taken = {a + b for parts in (_SURNAME, _CITY) for a, b in itertools.product(*parts)}
        more = [n for n in more if n not in _NOT_MORE and n.split(" ")[0] not in taken]
        self.rng.shuffle(more)
        return more


def build_world(cfg: WorldConfig, seed: int) -> World:
    rng = random.Random(f"{seed}-world")
    names = _Names(rng)
    ent = {kind: [names.take(kind) for _ in range(n)] for kind, n in
           (("city", cfg.n_cities), ("org", cfg.n_orgs), ("product", cfg.n_orgs), ("person", cfg.n_people))}
    facts: list[Fact] = []
    # Every org has at least one employee, so that it has a CEO who works there.
    employers = ent["org"] + [rng.choice(ent["org"]) for _ in range(cfg.n_people - cfg.n_orgs)]
    rng.shuffle(employers)
    for person, org in zip(ent["person"], employers):
        facts += [Fact(person, "born_in", rng.choice(ent["city"]), "A"),
                  Fact(person, "birth_year", str(rng.randint(1950, 1999)), "A"),
                  Fact(person, "works_for", org, "A"), Fact(person, "role", rng.choice(ROLES), "A")]
    for org, product in zip(ent["org"], ent["product"]):
        staff = [f.subject for f in facts if f.relation == "works_for" and f.value == org]
        facts += [Fact(org, "based_in", rng.choice(ent["city"]), "A"),
                  Fact(org, "founded_in", str(rng.randint(1900, 2015)), "A"),
                  Fact(org, "makes", product, "A"), Fact(org, "ceo", rng.choice(staff), "A")]
    era_a = {(f.subject, f.relation): f.value for f in facts}
    events_a, event_entities = _events_a(cfg, rng, names, ent, era_a) if cfg.era_a_events else ([], {})
    new_entities = {"person": [], "product": [], "prize": [names.take("prize") for _ in range(cfg.n_prizes)]}
    taken = {f.subject for f in events_a}
    facts += _events(cfg, rng, names, ent, new_entities, era_a, taken)
    heldout = []
    if events_a and cfg.era_a_event_drill_frac < 1:  # its own stream: the world above is as with every event asked
        subjects = list(dict.fromkeys(f.subject for f in events_a))
        random.Random(f"{seed}-events-heldout").shuffle(subjects)
        heldout = sorted(subjects[round(cfg.era_a_event_drill_frac * len(subjects)):])
    return World(seed, ent, new_entities, facts, events_a, event_entities, heldout)


# The era-A events' kinds, in turn: era B's new-content kinds (no change of a fact: era A has no earlier state).
EVENT_A_CYCLE = ("new_person", "won", "new_person", "launched")


def _events_a(cfg: WorldConfig, rng: random.Random, names: _Names, ent: dict[str, list[str]],
              era_a: dict[tuple[str, str], str]) -> tuple[list[Fact], dict[str, list[str]]]:
    """Era-A events, one subject each: people who join an era-A company (employer and role), prizes won by era-A
    people and companies, products launched by era-A companies; each prize and product new and used once."""
    kinds = [EVENT_A_CYCLE[i % len(EVENT_A_CYCLE)] for i in range(cfg.era_a_events)]
    rng.shuffle(kinds)
    ceos = {era_a[o, "ceo"] for o in ent["org"]}
    free = {"org": list(ent["org"]), "person": [p for p in ent["person"] if p not in ceos]}
    for pool in free.values():
        rng.shuffle(pool)
    made: dict[str, list[str]] = {"person": [], "product": [], "prize": []}

    def new(kind: str) -> str:
        made[kind].append(names.take(kind))
        return made[kind][-1]

    def subject(kind: str) -> str:
        if not free[kind]:
            raise InputError(f"not enough era-A {kind}s for {cfg.era_a_events} era-A events; lower era_a_events")
        return free[kind].pop()

    facts = []
    for kind in kinds:
        date = rng.choice(ERA_A_DATES)
        if kind == "new_person":
            person = new("person")
            facts += [Fact(person, "works_for", rng.choice(ent["org"]), "A", "new_entity", date),
                      Fact(person, "role", rng.choice(ROLES), "A", "new_entity", date)]
        elif kind == "won":
            facts.append(Fact(subject(rng.choice(["org", "person"])), "won", new("prize"), "A", "new_fact", date))
        else:
            facts.append(Fact(subject("org"), "launched", new("product"), "A", "new_fact", date))
    facts.sort(key=lambda f: f.date)
    return facts, made


def _events(cfg: WorldConfig, rng: random.Random, names: _Names, ent: dict[str, list[str]],
            new_entities: dict[str, list[str]], era_a: dict[tuple[str, str], str],
            taken: set[str] = frozenset()) -> list[Fact]:
    """Era-B events, one subject each: changed facts, new people, and new facts (prizes, launches). `taken`: the
    subjects of era-A events, never an era-B event's (a second prize would make "Which prize did X win?" ambiguous)."""
    n_changed = round(cfg.n_news * cfg.news_changed_frac)
    n_people = round(cfg.n_news * cfg.news_new_person_frac)
    if n_changed + n_people > cfg.n_news:
        raise InputError("news_changed_frac + news_new_person_frac must not exceed 1")
    kinds = ([CHANGE_CYCLE[i % len(CHANGE_CYCLE)] for i in range(n_changed)] + ["new_person"] * n_people
             + ["won" if i % 2 == 0 and i // 2 < cfg.n_prizes else "launched"
                for i in range(cfg.n_news - n_changed - n_people)])
    dates = sorted(rng.choice(ERA_B_DATES) for _ in kinds)
    rng.shuffle(kinds)
    ceos = {era_a[o, "ceo"] for o in ent["org"]}
    free = {"org": [o for o in ent["org"] if o not in taken],
            "person": [p for p in ent["person"] if p not in ceos and p not in taken]}
    for pool in free.values():
        rng.shuffle(pool)
    prizes = iter(new_entities["prize"])

    def subject(kind: str) -> str:
        if not free[kind]:
            raise InputError(f"not enough era-A {kind}s for {cfg.n_news} news events; raise n_{kind}s")
        return free[kind].pop()

    def new(kind: str) -> str:
        new_entities[kind].append(names.take(kind))
        return new_entities[kind][-1]

    facts = []
    for kind, date in zip(kinds, dates):
        if kind == "ceo":
            org = subject("org")
            facts.append(Fact(org, "ceo", new("person"), "B", "changed", date, era_a[org, "ceo"]))
        elif kind == "works_for":
            person = subject("person")
            old = era_a[person, "works_for"]
            facts.append(Fact(person, "works_for", rng.choice([o for o in ent["org"] if o != old]), "B",
                              "changed", date, old))
        elif kind == "based_in":
            org = subject("org")
            old = era_a[org, "based_in"]
            facts.append(Fact(org, "based_in", rng.choice([c for c in ent["city"] if c != old]), "B", "changed",
                              date, old))
        elif kind == "new_person":
            person = new("person")
            facts.append(Fact(person, "works_for", rng.choice(ent["org"]), "B", "new_entity", date))
            facts.append(Fact(person, "role", rng.choice(ROLES), "B", "new_entity", date))
        elif kind == "won":
            facts.append(Fact(subject(rng.choice(["org", "person"])), "won", next(prizes), "B", "new_fact", date))
        else:
            facts.append(Fact(subject("org"), "launched", new("product"), "B", "new_fact", date))
    return facts
