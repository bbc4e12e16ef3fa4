"""Instruction data: chat conversations about era-A facts and small writing tasks, many with one or two
IFEval constraints whose responses are produced by `constraints.render` (so they are correct and compliant).

Tasks and constraint phrasings come in "train" and "heldout" variants; the held-out ones, and a held-out
share of the constraint pairs, appear only in the evaluation files (cptlib.testbed.evalsets).
Facts that era B changes are never asked about here: the instruct model should learn the skill, not be
drilled on a value that the news will overturn.
"""
from __future__ import annotations

import itertools
import random
import re

from cptlib.chat_format import render_chat
from cptlib.testbed import constraints as C
from cptlib.testbed import prose
from cptlib.testbed.world import Fact, World
from cptlib.core.errors import InputError

SYSTEM = ["You are a helpful assistant.", "You are a helpful assistant. Follow the user's instructions exactly.",
          "You are a careful assistant who answers questions about people and companies.",
          "Answer the user's request and follow every formatting instruction."]
QUESTIONS = {  # relation -> {"train": [...], "heldout": [...]}
    "born_in": {"train": ["Where was {s} born?", "In which city was {s} born?", "What is the birthplace of {s}?"],
                "heldout": ["Tell me the city where {s} was born.", "Which city is the home town of {s}?"]},
    "birth_year": {"train": ["In what year was {s} born?", "What is the birth year of {s}?"],
                   "heldout": ["Tell me the year {s} was born.", "Which year was {s} born in?"]},
    "works_for": {"train": ["Which company does {s} work for?", "Who is the employer of {s}?",
                            "Where does {s} work?"],
                  "heldout": ["Tell me which company employs {s}.", "What company is {s} employed by?"]},
    "role": {"train": ["What is the job of {s}?", "What does {s} do for work?", "What is the profession of {s}?"],
             "heldout": ["Tell me the occupation of {s}.", "What kind of work does {s} do?"]},
    "based_in": {"train": ["Where is {s} headquartered?", "In which city is {s} based?",
                           "Where are the headquarters of {s}?"],
                 "heldout": ["Tell me the city where {s} has its main office.", "Which city is home to {s}?"]},
    "founded_in": {"train": ["In what year was {s} founded?", "What is the founding year of {s}?"],
                   "heldout": ["Tell me the year {s} was established.", "Which year was {s} set up in?"]},
    "makes": {"train": ["What product does {s} make?", "Which product is made by {s}?"],
              "heldout": ["Tell me the product {s} is known for.", "Name the product that {s} makes."]},
    "ceo": {"train": ["Who is the chief executive of {s}?", "Who leads {s}?", "Who is the head of {s}?"],
            "heldout": ["Tell me the name of the chief executive of {s}.", "Which person is in charge of {s}?"]},
    # Era-B only (no era-A fact has these relations): asked by the chat-knowledge probe when
    # WorldConfig.news_chat_relations names them, never in the instruction data.
    "won": {"train": ["Which prize did {s} win?", "What prize has {s} won?", "What award did {s} receive?"],
            "heldout": ["Tell me the prize that {s} won.", "Name the award that went to {s}."]},
    "launched": {"train": ["What new product did {s} launch?", "Which product did {s} launch?",
                           "What is the newest product of {s}?"],
                 "heldout": ["Tell me the new product {s} launched.", "Name the latest product from {s}."]},
}
ANSWERS = {
    "born_in": ["{s} was born in {v}.", "{s} comes from {v}.", "The birthplace of {s} is {v}."],
    "birth_year": ["{s} was born in {v}.", "The birth year of {s} is {v}.", "{s} came into the world in {v}."],
    "works_for": ["{s} works for {v}.", "{s} is employed by {v}.", "The employer of {s} is {v}."],
    "role": ["{s} is {a} {v}.", "{s} works as {a} {v}.", "The profession of {s} is {v}."],
    "based_in": ["{s} is headquartered in {v}.", "{s} is based in {v}.", "The headquarters of {s} are in {v}."],
    "founded_in": ["{s} was founded in {v}.", "{s} was established in {v}.", "The founding year of {s} is {v}."],
    "makes": ["{s} makes the {v}.", "The {v} is made by {s}.", "The best known product of {s} is the {v}."],
    "ceo": ["The chief executive of {s} is {v}.", "{v} leads {s}.", "{v} is the head of {s}."],
    "won": ["{s} won the {v}.", "The prize that {s} won is the {v}.", "{s} received the {v}."],
    "launched": ["{s} launched the {v}.", "The newest product of {s} is the {v}.", "{s} now sells the {v}."],
}
_COMMON = {"s", "v", "a", "the", "of", "is", "in", "by", "are", "was", "to"}
PROFILE = {"train": ["Tell me about {s}.", "Give me {k} facts about {s}.", "Write a short profile of {s}.",
                     "What can you tell me about {s}?"],
           "heldout": ["Describe {s} in a few sentences.", "Share {k} facts about {s}.",
                       "I would like to learn about {s}."]}
LISTS = {  # which list -> (train prompts, heldout prompts, item template, intro)
    "staff": (["Name {k} people who work for {x}.", "Which people work for {x}? List {k} of them."],
              ["Who are {k} people employed by {x}?"], "{m} works for {x}.", "Here are {k} people who work for {x}."),
    "born": (["List {k} people born in {x}.", "Name {k} people who were born in {x}."],
             ["Give me the names of {k} people from {x}."], "{m} was born in {x}.", "Here are {k} people born in {x}."),
    "based": (["Name {k} companies based in {x}.", "List {k} companies with headquarters in {x}."],
              ["Which {k} companies have their main office in {x}?"], "{m} is based in {x}.",
              "Here are {k} companies based in {x}."),
}
WRITE = {"train": ["Write {k} sentences about {an} {n}.", "Describe {an} {n} in {k} sentences.",
                   "Tell me a short story about {an} {n} in {k} sentences."],
         "heldout": ["Compose {k} sentences on the topic of {an} {n}.",
                     "Write a little text of {k} sentences about {an} {n}."]}
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six"]
# (no constraint, one, two) shares and task weights (qa, profile, list, write): v2 is a larger mix with more
# two-constraint conversations, as a later model version's instruction data would be.
MIX = {"v1": ((0.2, 0.55, 0.25), (45, 25, 10, 20)), "v2": ((0.15, 0.45, 0.40), (40, 25, 15, 20))}
# The chat-knowledge probe (evalsets) asks era-B facts of these relations in these formats; every 10th SFT
# conversation drills the same question kind and format on era-A facts, so only the era-B answer is new.
# (Prizes and launches have no era-A counterpart; a role is a common word that a guess would often hit.)
KNOWLEDGE_RELATIONS = ("works_for", "ceo", "based_in")
# The probe's formats (what the era-B chat probe may ask is WorldConfig.news_chat_relations). Not the case formats: in capitals or lower case a name is other tokens ("Lenen Cranbrook" -> "LENEN CRANBROOK"),
# and a model that cannot map them answers about someone else (run 6: 0.46 capitals, but the subject lost), which
# would measure case mapping, not knowledge through the chat interface.
KNOWLEDGE_FORMATS = [C.QUOTATION, C.END, C.JSON, C.TITLE]


def answer(fact: Fact, rng: random.Random) -> tuple[str, list[str]]:
    """A one-sentence answer stating `fact`, and the content words of the phrasings not chosen."""
    template = rng.choice(ANSWERS[fact.relation])
    other_words = [w for t in ANSWERS[fact.relation] if t != template for w in re.findall(r"[a-z]+", t)]
    tempting = [w for w in other_words if w not in _COMMON and w not in template]
    return prose.cap(template.format(s=fact.subject, v=fact.value, a=prose.article(fact.value))), tempting


def _draft(items: list[str], subject: str, rng: random.Random, **kw) -> C.Draft:
    return C.Draft(items, title=rng.choice([f"About {subject}", subject, f"A note on {subject}"]),
                   postscript=rng.choice([f"I can tell you more about {subject} if you like.",
                                          "Thank you for the question.", "I hope this was useful.",
                                          "Feel free to ask about other people and companies."]), **kw)


def qa_task(world: World, fact: Fact, split: str, rng: random.Random, extra: bool = True) -> tuple[str, C.Draft]:
    """A question about one fact; the answer may add a second, unchanged fact about the same subject."""
    sentence, tempting = answer(fact, rng)
    items = [sentence]
    others = [f for f in world.stable(fact.subject) if f.relation != fact.relation]
    if extra and others and rng.random() < 0.4:
        items.append(answer(rng.choice(others), rng)[0])
    question = rng.choice(QUESTIONS[fact.relation][split]).format(s=fact.subject)
    return question, _draft(items, fact.subject, rng, tempting=tempting)


def profile_task(world: World, subject: str, split: str, rng: random.Random) -> tuple[str, C.Draft]:
    template = rng.choice(PROFILE[split])
    facts = world.stable(subject)
    k = rng.randint(2, len(facts)) if "{k}" in template else len(facts)
    items, tempting = [], []
    for fact in rng.sample(facts, k):
        sentence, words = answer(fact, rng)
        items.append(sentence)
        tempting += words
    intro = rng.choice(["", f"Here is what I know about {subject}.", f"Here are {NUMBERS[k]} facts about {subject}."])
    return template.format(s=subject, k=k), _draft(items, subject, rng, intro=intro, tempting=tempting)


def list_task(world: World, split: str, rng: random.Random) -> tuple[str, C.Draft]:
    """Name k members of a group (staff of an org, people born in a city, companies based in a city)."""
    relation = {"staff": "works_for", "born": "born_in", "based": "based_in"}
    groups = {(which, value): members for which in sorted(LISTS)
              for value, members in world.members(relation[which]).items() if len(members) >= 2}
    which, key = rng.choice(list(groups))
    members = groups[which, key]
    k = rng.randint(2, min(4, len(members)))
    prompts, heldout, item, intro = LISTS[which]
    prompt = rng.choice(prompts if split == "train" else heldout).format(k=k, x=key)
    items = [item.format(m=m, x=key) for m in rng.sample(members, k)]
    return prompt, _draft(items, key, rng, intro=rng.choice(["", intro.format(k=NUMBERS[k], x=key)]))


def write_task(split: str, rng: random.Random) -> tuple[str, C.Draft]:
    noun, k = rng.choice(prose.NOUNS), rng.randint(2, 4)
    prompt = rng.choice(WRITE[split]).format(k=k, n=noun, an=prose.article(noun))
    items = [prose.sentence(rng, (noun,)) for _ in range(k)]
    return prompt, C.Draft(items, title=rng.choice([f"The {noun}", f"A few words on the {noun}"]).title(),
                           postscript=rng.choice(["I hope you liked this little text.", "Thank you for reading."]))


def task(world: World, split: str, weights: tuple[int, ...], rng: random.Random) -> tuple[str, C.Draft]:
    kind = rng.choices(["qa", "profile", "list", "write"], weights=weights)[0]
    if kind == "qa":
        subject = rng.choice(world.entities["person"] + world.entities["org"])
        return qa_task(world, rng.choice(world.stable(subject)), split, rng)
    if kind == "profile":
        return profile_task(world, rng.choice(world.entities["person"] + world.entities["org"]), split, rng)
    return list_task(world, split, rng) if kind == "list" else write_task(split, rng)


def constrain(prompt: str, draft: C.Draft, ids: list[str], split: str,
              rng: random.Random) -> tuple[str, str, list[dict]] | None:
    """(user message, compliant response, kwargs), or None if no reply under `ids` reads as English."""
    kwargs = [C.sample_kwargs(kind, draft, split, rng) for kind in ids]
    for pad in [None] + C.PADDING:
        if pad:
            draft.closing.append(pad)
        response = C.render(draft, ids, kwargs)
        if not {C.CAPITAL, C.LOWERCASE} & set(ids) or C.reads_as_english(response):
            break
    else:
        return None
    if C.FORBIDDEN in ids:
        kwargs[ids.index(C.FORBIDDEN)] = C.forbid(response, draft, rng)
    asks = [C.describe(kind, kw, split, rng) for kind, kw in zip(ids, kwargs)]
    parts = [prompt] + asks if rng.random() < 0.8 else asks + [prompt]
    return " ".join(parts), response, kwargs


def split_pairs(seed: int, kinds: tuple[str, ...] = C.KINDS) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train pairs, held-out pairs) among the compatible pairs of `kinds`: a quarter are kept for the
    evaluation, with each kind in at most three of them, so that no kind dominates the held-out prompts."""
    pairs = [p for p in C.PAIRS if p[0] in kinds and p[1] in kinds]
    random.Random(f"{seed}-pairs").shuffle(pairs)
    heldout: list[tuple[str, str]] = []
    for pair in pairs:
        if len(heldout) < len(pairs) // 4 and all(sum(k in p for p in heldout) < 3 for k in pair):
            heldout.append(pair)
    return [p for p in pairs if p not in heldout], heldout


def pick_constraints(draft: C.Draft, n: int, pairs: list[tuple[str, str]], rng: random.Random,
                     kinds: tuple[str, ...] = C.KINDS) -> list[str] | None:
    """`n` constraint ids that apply to `draft`, or None if none do: one of `kinds`, a pair from `pairs`, or
    (n = 3) a triple each of whose three pairs is in `pairs` (so a held-out pair never appears inside one)."""
    if n == 3:
        allowed = {frozenset(p) for p in pairs}
        options = [t for t in itertools.combinations(kinds, 3)
                   if all(frozenset(q) in allowed for q in itertools.combinations(t, 2))]
    else:
        options = [()] if n == 0 else [(k,) for k in kinds] if n == 1 else pairs
    options = [o for o in options if all(C.applies(k, draft) for k in o)]
    return list(rng.choice(options)) if options else None


def ifeval_records(n: int, rng: random.Random, draw, heldout_pairs: list[tuple[str, str]], phrasings: str,
                   kinds: tuple[str, ...] = C.KINDS, exclude: set[str] = frozenset()) -> list[tuple[dict, str]]:
    """`n` distinct IFEval prompts as (lm-eval IFEval record, a compliant reply): each a task `draw(rng)` returns
    (prompt, draft) under one (40%) or two constraints, the pairs from `heldout_pairs` (never trained on), worded
    in `phrasings`; prompts in `exclude` (the instruction data's) are never used. None when fewer can be made."""
    items: list[tuple[dict, str]] = []
    prompts: set[str] = set()
    for _ in range(50 * n):
        if len(items) == n:
            break
        prompt, draft = draw(rng)
        ids = pick_constraints(draft, 1 if rng.random() < 0.4 else 2, heldout_pairs, rng, kinds)
        made = None if ids is None else constrain(prompt, draft, ids, phrasings, rng)
        if made is None or made[0] in prompts or made[0] in exclude:
            continue
        user, response, kwargs = made
        prompts.add(user)
        items.append(({"key": len(items), "prompt": user, "instruction_id_list": ids, "kwargs": kwargs}, response))
    return items if len(items) == n else None


def knowledge_formats(kinds: tuple[str, ...] = C.KINDS) -> list[str]:
    formats = [f for f in KNOWLEDGE_FORMATS if f in kinds]
    if not formats:
        raise InputError(f"the chat-knowledge probe needs one of {KNOWLEDGE_FORMATS} among the constraint kinds")
    return formats


def sft(world: World, n: int, version: str, seed: int, kinds: tuple[str, ...] = C.KINDS,
        shares: tuple[float, ...] | None = None) -> list[dict]:
    """`n` conversations for instruct_<version> ("v1" or "v2") using the constraint `kinds`; `shares` (default
    the version's in MIX) weighs conversations with 0, 1, 2 (, 3) constraints."""
    rng = random.Random(f"{seed}-sft-{version}")
    shares, weights = shares or MIX[version][0], MIX[version][1]
    train_pairs, _ = split_pairs(seed, kinds)
    drills = [(r, f) for r in KNOWLEDGE_RELATIONS for f in knowledge_formats(kinds)]
    # With era-A events (WorldConfig.era_a_events), every second drill asks about one of them instead: a fact
    # known only from a few news articles, of every kind era B's news has (a new person's employer or job, a prize,
    # a launch), in the same formats.
    event_drills = [(f, fmt) for f in world.events_a_asked for fmt in knowledge_formats(kinds)]
    rng_events = random.Random(f"{seed}-sft-{version}-events")
    out = []
    while len(out) < n:
        slot = len(out) // 10
        if len(out) % 10 == 0 and event_drills and slot % 2 == 1:
            fact, fmt = rng_events.choice(event_drills)
            (prompt, draft), ids = qa_task(world, fact, "train", rng, extra=False), [fmt]
        elif len(out) % 10 == 0:
            relation, fmt = drills[(slot // 2 if event_drills else slot) % len(drills)]
            subject = rng.choice([s for members in world.members(relation).values() for s in members])
            fact = Fact(subject, relation, world.era_a_value(subject, relation), "A")
            (prompt, draft), ids = qa_task(world, fact, "train", rng, extra=False), [fmt]
        else:
            prompt, draft = task(world, "train", weights, rng)
            ids = pick_constraints(draft, rng.choices(range(len(shares)), weights=shares)[0], train_pairs, rng, kinds)
        made = None if ids is None else constrain(prompt, draft, ids, "train", rng)
        if made is None:
            continue
        user, response, kwargs = made
        system = [{"role": "system", "content": rng.choice(SYSTEM)}] if rng.random() < 0.8 else []
        messages = system + [{"role": "user", "content": user}, {"role": "assistant", "content": response}]
        out.append({"messages": messages, "instruction_id_list": ids, "kwargs": kwargs})
    return out


def transcripts(world: World, n: int, seed: int, part: str) -> list[str]:
    """`n` chat transcripts for the pre-training corpus `part`, rendered in the chat template: the instruction
    data's tasks (questions, profiles, lists, short texts) with plain answers. No constraint is asked for or
    followed, so the base knows the chat format and the answers, but not instructions tied to formats."""
    rng = random.Random(f"{seed}-transcripts-{part}")
    rng_events = random.Random(f"{seed}-transcripts-{part}-events")
    out = []
    for i in range(n):
        if world.events_a_asked and i % 10 == 5:  # with era-A events, a tenth of the questions ask about one
            prompt, draft = qa_task(world, rng_events.choice(world.events_a_asked), "train", rng, extra=False)
        else:
            prompt, draft = task(world, "train", MIX["v1"][1], rng)
        system = [{"role": "system", "content": rng.choice([SYSTEM[0], SYSTEM[2]])}] if rng.random() < 0.5 else []
        out.append(render_chat(system + [{"role": "user", "content": prompt},
                                         {"role": "assistant", "content": C.render(draft, [], [])}]))
    return out
