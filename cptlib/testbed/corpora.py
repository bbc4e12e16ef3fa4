"""Pre-training text: era-A documents (corpus parts 1 and 2) and dated era-B news (the CPT corpus).

Each relation has its own sentence templates in three disjoint groups: "a1" (corpus part 1), "a2" (part 2,
the further pre-training of base_v2: the same facts in other words) and "heldout" (perplexity documents,
never trained on). The first "a1" template of each relation ends in its value; its prefix is the
multiple-choice query (`probe`), so knowledge is probed in a phrasing the model was trained on.
Placeholders: {s} subject, {v} value, {a} "a"/"an" before the value, {old} replaced value, {when} month.
"""
from __future__ import annotations

import random

from cptlib.testbed import prose
from cptlib.testbed.world import ERA_B_DATES, ORG_RELATIONS, PERSON_RELATIONS, World, month_name

ERA_A = {
    "born_in": {"a1": ["{s} was born in {v}.", "{s} is a native of {v}.", "The birthplace of {s} is {v}.",
                       "{v} is the home town of {s}."],
                "a2": ["{s} comes from the city of {v}.", "{s} was born and raised in {v}.",
                       "People in {v} remember {s} as a child of the city."],
                "heldout": ["The city of {v} is where {s} was born.", "{s} first came into the world in {v}."]},
    "birth_year": {"a1": ["{s} was born in the year {v}.", "{s} has a birth year of {v}.",
                          "The year {v} saw the birth of {s}.", "The records give {v} as the birth year of {s}."],
                   "a2": ["{v} is the year in which {s} was born.", "{s} was born during the year {v}.",
                          "{s} celebrates a birthday every year, counting from {v}."],
                   "heldout": ["{s} was born back in {v}.", "According to the records, {s} arrived in {v}."]},
    "works_for": {"a1": ["{s} works for {v}.", "{s} is employed by {v}.", "{v} employs {s}.",
                         "{s} has a job at {v}."],
                  "a2": ["{s} is on the staff of {v}.", "At {v}, {s} is a valued member of the team.",
                         "{s} earns a living at {v}."],
                  "heldout": ["{s} draws a salary from {v}.", "The company {v} counts {s} among its staff."]},
    "role": {"a1": ["{s} works in the role of {v}.", "{s} is {a} {v}.", "By profession, {s} is {a} {v}.",
                    "{s} has worked as {a} {v} for many years."],
             "a2": ["{s} trained as {a} {v}.", "The job of {s} is that of {a} {v}.",
                    "As {a} {v}, {s} is good at the work."],
             "heldout": ["{s} makes a living as {a} {v}.", "Colleagues know {s} as a skilled {v}."]},
    "based_in": {"a1": ["{s} is headquartered in {v}.", "{s} is based in {v}.",
                        "The headquarters of {s} are in {v}.", "{v} is home to the main office of {s}."],
                 "a2": ["{s} runs its business from {v}.", "The main office of {s} stands in {v}.",
                        "{s} has its head office in {v}."],
                 "heldout": ["{s} keeps its headquarters in the city of {v}.",
                             "Visitors to {v} can see the offices of {s}."]},
    "founded_in": {"a1": ["{s} was founded in {v}.", "{s} was established in the year {v}.",
                          "The company {s} dates from {v}.", "In {v}, {s} was founded."],
                   "a2": ["{s} opened its doors in {v}.", "The founders started {s} in {v}.",
                          "{s} has existed since {v}."],
                   "heldout": ["{s} first began trading in {v}.", "The story of {s} began in {v}."]},
    "makes": {"a1": ["{s} makes the {v}.", "{s} is the maker of the {v}.", "The {v} is made by {s}.",
                     "{s} is known for a product called the {v}."],
              "a2": ["{s} builds and sells the {v}.", "The best known product of {s} is the {v}.",
                     "Every {v} comes from {s}."],
              "heldout": ["{s} produces the {v} in large numbers.", "Shops sell the {v}, a product of {s}."]},
    "ceo": {"a1": ["The chief executive of {s} is {v}.", "{v} is the chief executive of {s}.",
                   "{s} is led by its chief executive, {v}.", "{v} runs {s} as chief executive."],
            "a2": ["{v} leads {s}.", "At the head of {s} stands {v}.", "{s} has {v} as its chief executive."],
            "heldout": ["The person in charge of {s} is {v}.", "{v} serves as the head of {s}."]},
}
# Era-B statements by (relation, kind); "train" goes into the CPT corpus, "heldout" into heldout_b only.
ERA_B = {
    ("works_for", "new_entity"): {
        "train": ["{s} has joined {v}.", "{v} has hired {s}.", "{s} started a new job at {v} in {when}.",
                  "{s} is the newest member of staff at {v}.", "{v} welcomed {s} to its staff in {when}."],
        "heldout": ["{s} signed on with {v} in {when}."]},
    ("role", "new_entity"): {
        "train": ["{s} now works in the role of {v}.", "{s} is {a} {v}.", "{s} joined as {a} {v}.",
                  "The new {v}, {s}, starts work this month."],
        "heldout": ["{s} takes up a post as {a} {v}."]},
    ("ceo", "changed"): {
        "train": ["The chief executive of {s} is {v}.", "{s} has named {v} as its new chief executive.",
                  "{v} has taken over from {old} as chief executive of {s}.",
                  "{v} replaced {old} at the head of {s} in {when}.",
                  "{old} has stepped down, and {v} now leads {s}."],
        "heldout": ["{s} is now led by {v}, who succeeds {old}."]},
    ("works_for", "changed"): {
        "train": ["{s} works for {v}.", "{s} has left {old} and joined {v}.", "{s} moved from {old} to {v} in {when}.",
                  "After years at {old}, {s} now works for {v}.", "{v} has hired {s} from {old}."],
        "heldout": ["{s} switched from {old} to {v} this year."]},
    ("based_in", "changed"): {
        "train": ["{s} is headquartered in {v}.", "{s} has moved its headquarters from {old} to {v}.",
                  "{s} left {old} for a new home in {v}.", "The new headquarters of {s} are in {v}.",
                  "In {when}, {s} moved its main office to {v}."],
        "heldout": ["{s} relocated from {old} to {v} in {when}."]},
    ("won", "new_fact"): {
        "train": ["{s} won the {v}.", "The {v} went to {s} this year.", "{s} was awarded the {v} in {when}.",
                  "The judges gave the {v} to {s}.", "{s} is the winner of the {v}."],
        "heldout": ["{s} took home the {v}."]},
    ("launched", "new_fact"): {
        "train": ["{s} has launched a new product called the {v}.", "{s} released the {v} in {when}.",
                  "The {v} is the newest product from {s}.", "Shoppers can now buy the {v}, made by {s}.",
                  "{s} unveiled the {v} this month."],
        "heldout": ["{s} brought the {v} to market in {when}."]},
}
RECORD_LABELS = {  # key-value "infobox" documents, labels in relation order, one set per template group
    "a1": (("Born in", "Year of birth", "Employer", "Occupation"),
           ("Headquarters", "Founded", "Product", "Chief executive")),
    "a2": (("Birthplace", "Born", "Works at", "Job"), ("Based in", "Established", "Makes", "Led by")),
    "heldout": (("Home town", "Birth year", "Company", "Profession"),
                ("Main office", "Year founded", "Best known for", "Head")),
}
QUESTIONS = {"born_in": "Where was {s} born?", "birth_year": "When was {s} born?",
             "works_for": "Who does {s} work for?", "role": "What does {s} do for a living?",
             "based_in": "Where is {s} based?", "founded_in": "When was {s} founded?",
             "makes": "What does {s} make?", "ceo": "Who runs {s}?"}
LISTS = {"a1": ("People who work for {k}: {items}.", "People born in {k}: {items}.",
                "Companies based in {k}: {items}."),
         "a2": ("The staff of {k} includes {items}.", "{k} is the birthplace of {items}.", "{k} is home to {items}.")}


def probe(relation: str, kind: str = "old") -> str:
    """The multiple-choice query template: the first training template of the fact, cut before its value."""
    template = ERA_A[relation]["a1"][0] if kind == "old" else ERA_B[relation, kind]["train"][0]
    return template[: template.index("{v}")].rstrip()


def state(template: str, s: str, v: str, old: str = "", when: str = "") -> str:
    return prose.cap(template.format(s=s, v=v, a=prose.article(v), old=old, when=when))


def _ref(name: str, first: bool, rng: random.Random) -> str:
    """A person is named in full first, then often by surname (unique in the world); orgs by name."""
    return name if first or " " not in name or rng.random() < 0.5 else name.split(" ", 1)[1]


def entity_doc(world: World, subject: str, group: str, rng: random.Random) -> str:
    """One document stating every era-A fact of `subject`: a bio, a key-value record or Q&A prose."""
    # Held-out text restates only facts era B keeps, so that its perplexity does not penalise learning news.
    facts = world.about(subject) if group != "heldout" else world.stable(subject)
    rng.shuffle(facts)
    style = rng.choices(["bio", "record", "qa"], weights=[6, 2, 2])[0]
    if style == "record":
        is_org = subject in world.entities["org"]
        labels = dict(zip(ORG_RELATIONS if is_org else PERSON_RELATIONS, RECORD_LABELS[group][is_org]))
        return "\n".join([f"Name: {subject}"] + [f"{labels[f.relation]}: {f.value}" for f in facts])
    out = []
    for i, fact in enumerate(facts):
        line = state(rng.choice(ERA_A[fact.relation][group]), _ref(subject, i == 0, rng), fact.value)
        out.append(f"{QUESTIONS[fact.relation].format(s=subject)} {line}" if style == "qa" else line)
    return ("\n" if style == "qa" else " ").join(out)


def _list_docs(world: World, group: str, rng: random.Random) -> list[str]:
    groups: dict[tuple[int, str], list[str]] = {}
    for f in world.era("A"):
        which = {"works_for": 0, "born_in": 1, "based_in": 2}.get(f.relation)
        if which is not None:
            groups.setdefault((which, f.value), []).append(f.subject)
    docs = []
    for (which, key), members in groups.items():
        members = rng.sample(members, len(members))
        items = members[0] if len(members) == 1 else ", ".join(members[:-1]) + " and " + members[-1]
        docs.append(LISTS[group][which].format(k=key, items=items))
    return docs


def _with_filler(docs: list[str], filler_frac: float, rng: random.Random, make) -> list[str]:
    """Add filler documents until they are `filler_frac` of all words, then shuffle."""
    fact_words = sum(len(prose.words(d)) for d in docs)
    target, filler, words = filler_frac / (1 - filler_frac) * fact_words, [], 0
    while words < target:
        filler.append(make(rng))
        words += len(prose.words(filler[-1]))
    docs = docs + filler
    rng.shuffle(docs)
    return docs


def era_a_corpus(world: World, group: str, mentions: int, filler_frac: float, seed: int) -> list[str]:
    """`mentions` documents per era-A entity (each states all its facts), lists, and filler prose."""
    rng = random.Random(f"{seed}-corpus-{group}")
    subjects = world.entities["person"] + world.entities["org"]
    docs = [entity_doc(world, s, group, rng) for _ in range(mentions) for s in subjects]
    docs += [d for _ in range(max(1, mentions // 10)) for d in _list_docs(world, group, rng)]
    return _with_filler(docs, filler_frac, rng, prose.paragraph)


def event_groups(world: World) -> list[list]:
    """Era-B facts grouped by event (a new person's employer and role are one event), in date order."""
    groups: dict[str, list] = {}
    for f in world.era("B"):
        groups.setdefault(f.subject, []).append(f)
    return list(groups.values())


def article(world: World, event: list, split: str, rng: random.Random) -> str:
    """A dated news article about one event: a dateline, its statements, maybe background and filler."""
    first = event[0]
    date = rng.choice(ERA_B_DATES[ERA_B_DATES.index(first.date):])
    n_statements = 1 if split == "heldout" or rng.random() < 0.35 else 2
    lines = []
    for fact in event:
        for template in rng.sample(ERA_B[fact.relation, fact.kind][split], n_statements):
            lines.append(state(template, _ref(fact.subject, not lines, rng), fact.value, fact.old_value,
                               month_name(fact.date)))
    background = world.stable(first.subject) if first.kind != "new_entity" else []
    if background and n_statements == 2:
        fact = rng.choice(background)
        lines.append(state(rng.choice(ERA_A[fact.relation]["a1"]), _ref(fact.subject, False, rng), fact.value))
    if rng.random() < 0.5:
        lines.append(prose.news_sentence(rng))
    return f"{month_name(date)} — " + " ".join(lines)


def news_filler(rng: random.Random) -> str:
    return f"{month_name(rng.choice(ERA_B_DATES))} — " + " ".join(
        prose.news_sentence(rng) for _ in range(rng.randint(3, 5)))


def era_b_corpus(world: World, mentions: int, filler_frac: float, seed: int) -> list[str]:
    """`mentions` articles per era-B event, plus news-register filler articles."""
    rng = random.Random(f"{seed}-corpus-b")
    docs = [article(world, event, "train", rng) for event in event_groups(world) for _ in range(mentions)]
    return _with_filler(docs, filler_frac, rng, news_filler)
