"""Pre-training text: era-A documents (corpus parts 1 and 2) and dated era-B news (the CPT corpus).

Each relation has its own sentence templates in three disjoint groups: "a1" (corpus part 1), "a2" (part 2,
the further pre-training of base_v2: the same facts in other words) and "heldout" (perplexity documents,
never trained on). The first "a1" template of each relation ends in its value; its prefix is the
multiple-choice query (`probe`), so knowledge is probed in a phrasing the model was trained on.
Placeholders: {s} subject, {v} value, {a} "a"/"an" before the value, {old} replaced value, {when} month.

What a real base has seen before its instruction tuning is here too (docs/testbed.md, the regime), in shares the profile sets:
dated era-A news in the era-B templates (`era_a_article`), entity documents written in the formats the IFEval
constraints ask for (`format_doc`), and chat transcripts (cptlib.testbed.instructions.transcripts). None of
them carries an instruction tied to a format.
"""
from __future__ import annotations

import random

from cptlib.testbed import constraints as C
from cptlib.testbed import prose
from cptlib.testbed.world import ERA_A_DATES, ERA_B_DATES, ORG_RELATIONS, PERSON_RELATIONS, World, month_name

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
# More "train" statements per era-B kind, used with WorldConfig.news_phrasings "many" (and never otherwise): each
# event told in more words, among them the relation named the way the chat question names it ("Who is the employer
# of X?" -> "The employer of X is now Y."). Statements, never questions; no held-out template (ERA_A or ERA_B
# "heldout") is one of them, and none restates an era-A relation the news keeps (no "X makes the Y" for a launch).
ERA_B_MORE = {
    ("works_for", "new_entity"): ["The employer of {s} is now {v}.", "{s} now works for {v}.",
                                  "These days {s} works at {v}.", "{v} now employs {s}.",
                                  "In {when}, {s} joined the staff of {v}."],
    ("role", "new_entity"): ["The job of {s} is that of {a} {v}.", "{s} works as {a} {v}.",
                             "The profession of {s} is {v}.", "{s} was hired as {a} {v}."],
    ("ceo", "changed"): ["The chief executive of {s} is now {v}.", "{v} now leads {s}.", "The head of {s} is now {v}.",
                         "{v} is the new chief executive of {s}, after {old}.",
                         "{old} handed the leadership of {s} to {v} in {when}."],
    ("works_for", "changed"): ["The employer of {s} is now {v}.", "{s} now works for {v}.",
                               "These days {s} works at {v}, not at {old}.", "{s} is now employed by {v}.",
                               "{s} joined {v} after leaving {old}."],
    ("based_in", "changed"): ["The headquarters of {s} are now in {v}.", "{s} is now based in {v}.",
                              "{s} is now headquartered in {v}, no longer in {old}.",
                              "{v} is now home to the main office of {s}.",
                              "The main office of {s} moved from {old} to {v}."],
    ("won", "new_fact"): ["The prize that {s} won is the {v}.", "{s} has won the {v}.",
                          "This year the {v} was won by {s}.", "{s} received the {v} in {when}.",
                          "The {v} now belongs to {s}."],
    ("launched", "new_fact"): ["The newest product of {s} is the {v}.", "{s} now sells the {v}.",
                               "The new product that {s} launched is the {v}.", "In {when}, {s} put the {v} on sale.",
                               "{s} launched the {v}."],
}


def era_b_templates(form: tuple[str, str], split: str, phrasings: str = "few") -> list[str]:
    """The era-B statement templates of `form` (relation, kind) in `split`: ERA_B's, plus ERA_B_MORE's "train" ones
    with `phrasings` "many" (WorldConfig.news_phrasings)."""
    more = ERA_B_MORE[form] if phrasings == "many" and split == "train" else []
    return ERA_B[form][split] + more


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


# Era-A facts reported as news, in the era-B templates of the same relation: era B is then new in content only.
NEWS_FORMS = {"works_for": [("works_for", "new_entity"), ("works_for", "changed")], "role": [("role", "new_entity")],
              "ceo": [("ceo", "changed")], "based_in": [("based_in", "changed")], "makes": [("launched", "new_fact")]}
# The era-A relation an era-B statement kind reports (a prize has no era-A counterpart: a launch stands in).
ERA_A_RELATION = {form: relation for relation, forms in NEWS_FORMS.items() for form in forms}


def era_a_form(relation: str, kind: str) -> tuple[str, str]:
    """The era-B statement kind an era-A article uses in place of (relation, kind)."""
    return (relation, kind) if (relation, kind) in ERA_A_RELATION else ("launched", "new_fact")


MONTHS = ERA_A_DATES + ERA_B_DATES  # every month either era's news names, in order


def later_month(date: str, rng: random.Random) -> str:
    """A month 2-12 months after `date` ("2023-05"), within MONTHS, as a news text names it ("" if none)."""
    i = MONTHS.index(date) + rng.randint(2, 12)
    return month_name(MONTHS[i]) if i < len(MONTHS) else ""


def era_a_article(world: World, subject: str, rng: random.Random, split: str = "train",
                  forms: list[tuple[str, str]] | None = None, phrasings: str = "few") -> str:
    """A dated era-A news article about era-A facts of `subject`, as era-B articles are written (`split`: the
    era-B "train" or "heldout" templates). `forms`: the era-B statement kinds to use, one statement each (the
    held-out set mirrors era B's mix); by default one or two statements of one fact. Where a template names a
    replaced value ({old}), it is another value of the same type (an earlier history)."""
    facts = {f.relation: f for f in (world.about(subject) if split == "train" else world.stable(subject))}
    if forms is None:
        fact = facts[rng.choice([r for r in facts if r in NEWS_FORMS])]
        form = rng.choice(NEWS_FORMS[fact.relation])
        n = 1 if split == "heldout" or rng.random() < 0.35 else 2
        statements = [(fact, t) for t in rng.sample(era_b_templates(form, split, phrasings), n)]
    else:
        statements = [(facts[ERA_A_RELATION[form]], rng.choice(era_b_templates(form, split, phrasings)))
                      for form in forms]
    date = rng.choice(ERA_A_DATES)
    lines = []
    for fact, template in statements:
        seen, others = world.candidates(fact.relation, "A")
        # Never an entity that first appears in era B, nor the value era B gives this subject: era-A text must
        # not hint at the news.
        future = world.era_b_values(subject, fact.relation) | world.new_names
        old = rng.choice([v for v in seen + others if v != fact.value and v not in future])
        lines.append(state(template, _ref(subject, not lines, rng), fact.value, old, month_name(date)))
    background = [f for f in world.stable(subject) if f.relation not in {fact.relation for fact, _ in statements}]
    if background and len(lines) == 2:
        other = rng.choice(background)
        lines.append(state(rng.choice(ERA_A[other.relation]["a1"]), _ref(subject, False, rng), other.value))
    if rng.random() < 0.5:
        lines.append(prose.news_sentence(rng, later_month(date, rng)))
    return f"{month_name(date)} — " + " ".join(lines)


# How web text describes a format it shows ("The record in JSON format:"): descriptions, never requests. Half of
# the format documents carry one, so the words an instruction uses ("capital letters", "JSON", "postscript") are
# tied to the format in pre-training, as they are in a real base's corpus; no instruction is.
CAPTIONS = {
    C.CAPITAL: ["A note in capital letters", "Written in all capital letters", "The same text in uppercase letters"],
    C.LOWERCASE: ["A note in lowercase letters", "Written in small letters only, with no capitals",
                  "The text in lower case"],
    C.NO_COMMA: ["A text written without commas", "A note with no commas in it"],
    C.TITLE: ["A piece with its title in double angular brackets", "A short text under a title in << >>"],
    C.JSON: ["The record in JSON format", "The answer as a JSON object"],
    C.POSTSCRIPT: ["A letter that ends with a postscript ({marker})", "A note with a postscript after it"],
    C.QUOTATION: ["The whole statement in double quotation marks", "Quoted in full, between double quotes"],
    C.END: ['A note that ends with the words "{phrase}"'],
    C.KEYWORDS: ["A text that mentions {words}"],
    C.BULLETS: ["A list of {n} bullet points"],
    C.HIGHLIGHTS: ["A text with {n} highlighted parts"],
    C.PARAGRAPHS: ["A text in {n} paragraphs divided by ***"],
}


def caption(ids: list[str], kwargs: list[dict], rng: random.Random) -> str:
    """The line a document in these formats may sit under: one description per format ("A note in capital
    letters, a text written without commas:")."""
    parts = []
    for kind, kw in zip(ids, kwargs):
        words = " and ".join(f'"{w}"' for w in kw.get("keywords", []))
        n = kw.get("num_bullets", kw.get("num_paragraphs", kw.get("num_highlights")))
        text = rng.choice(CAPTIONS[kind]).format(marker=kw.get("postscript_marker"), phrase=kw.get("end_phrase"),
                                                 words=words, n=n)
        parts.append(text if not parts else text[0].lower() + text[1:])
    return ", ".join(parts) + ":"


def format_doc(world: World, subject: str, kinds: tuple[str, ...], rng: random.Random) -> str:
    """An entity document (or a filler paragraph) in one or two of the constraints' formats, as a base finds
    such text in pre-training: rendered by `constraints.render`, with no instruction asking for it; half of
    them under a caption that describes the formats (CAPTIONS)."""
    if rng.random() < 0.7:
        facts = world.about(subject)
        rng.shuffle(facts)
        items = [state(rng.choice(ERA_A[f.relation]["a1"]), _ref(subject, i == 0, rng), f.value)
                 for i, f in enumerate(facts)]
        title = rng.choice([subject, f"About {subject}", f"A note on {subject}"])
    else:
        noun = rng.choice(prose.NOUNS)
        items = [prose.sentence(rng, (noun,)) for _ in range(rng.randint(2, 4))]
        title = rng.choice([f"The {noun}", f"A few words on the {noun}"]).title()
    draft = C.Draft(items, title=title, postscript=rng.choice(
        ["Thank you for reading.", "More next week.", f"Write to us about {subject}.", "I hope this was useful."]))
    visible = [k for k in kinds if k != C.FORBIDDEN and C.applies(k, draft)]  # avoiding a word leaves no trace
    pairs = [p for p in C.PAIRS if p[0] in visible and p[1] in visible]
    ids = list(rng.choice(pairs)) if pairs and rng.random() < 0.4 else [rng.choice(visible)]
    kwargs = [C.sample_kwargs(k, draft, "train", rng) for k in ids]
    text = C.render(draft, ids, kwargs)
    return f"{caption(ids, kwargs, rng)}\n{text}" if rng.random() < 0.5 else text


def era_a_corpus(world: World, group: str, mentions: int, filler_frac: float, seed: int,
                 news_share: float = 0.0, format_share: float = 0.0, kinds: tuple[str, ...] = C.KINDS,
                 transcripts: list[str] = (), phrasings: str = "few", event_mentions: int = 0) -> list[str]:
    """`mentions` documents per era-A entity (each states all its facts), lists, era-A news articles and
    format documents (`news_share`, `format_share` per entity document), the chat `transcripts`, and filler.
    `phrasings`: the era-B templates the era-A news uses (era_b_templates), so that both eras' news read alike.
    `event_mentions`: articles per era-A event (World.events_a), written as era B's articles are (`article`)."""
    rng = random.Random(f"{seed}-corpus-{group}")
    subjects = world.entities["person"] + world.entities["org"]
    docs = [entity_doc(world, s, group, rng) for _ in range(mentions) for s in subjects]
    n_entity_docs = len(docs)
    docs += [d for _ in range(max(1, mentions // 10)) for d in _list_docs(world, group, rng)]
    news = [era_a_article(world, rng.choice(subjects), rng, phrasings=phrasings)
            for _ in range(round(news_share * n_entity_docs))]
    if event_mentions:  # drawn after everything above, so that a corpus without events is as before
        news += [article(world, event, "train", rng, phrasings) for event in world.events("A")
                 for _ in range(event_mentions)]
    if news:  # with news-register filler articles, as in era B (its news_filler_frac; 0.2 by default)
        news = _with_filler(news, 0.2, rng, lambda r: news_filler(r, ERA_A_DATES))
    docs += news
    docs += [format_doc(world, rng.choice(subjects), kinds, rng) for _ in range(round(format_share * n_entity_docs))]
    docs += list(transcripts)
    return _with_filler(docs, filler_frac, rng, prose.paragraph)


def event_groups(world: World) -> list[list]:
    """Era-B facts grouped by event (a new person's employer and role are one event), in date order."""
    return world.events("B")


def article(world: World, event: list, split: str, rng: random.Random, phrasings: str = "few") -> str:
    """A dated news article about one event: a dateline, its statements, maybe background and filler. With
    `phrasings` "many" (training articles only), 1-3 statements per fact from era_b_templates' larger set, the
    statements of an event in any order."""
    first = event[0]
    dates = ERA_B_DATES if first.era == "B" else ERA_A_DATES  # an era-A event (WorldConfig.era_a_events) too
    date = rng.choice(dates[dates.index(first.date):])
    if phrasings == "many" and split == "train":
        return _many_article(world, event, date, rng)
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
        lines.append(prose.news_sentence(rng, later_month(date, rng)))
    return f"{month_name(date)} — " + " ".join(lines)


def _many_article(world: World, event: list, date: str, rng: random.Random) -> str:
    """`article` with several phrasings: each fact in 1-3 statements, shuffled across the event's facts, the
    background fact (if any) anywhere after the first statement, and maybe filler."""
    picks = [(fact, t) for fact in event
             for t in rng.sample(era_b_templates((fact.relation, fact.kind), "train", "many"), rng.choice([1, 2, 2, 3]))]
    rng.shuffle(picks)
    lines = [state(t, _ref(fact.subject, i == 0, rng), fact.value, fact.old_value, month_name(fact.date))
             for i, (fact, t) in enumerate(picks)]
    background = world.stable(event[0].subject) if event[0].kind != "new_entity" else []
    if background and rng.random() < 0.5:
        fact = rng.choice(background)
        lines.insert(rng.randint(1, len(lines)),
                     state(rng.choice(ERA_A[fact.relation]["a1"]), _ref(fact.subject, False, rng), fact.value))
    if rng.random() < 0.5:
        lines.append(prose.news_sentence(rng, later_month(date, rng)))
    return f"{month_name(date)} — " + " ".join(lines)


def news_filler(rng: random.Random, dates: tuple[str, ...] = ERA_B_DATES) -> str:
    date = rng.choice(dates)
    return f"{month_name(date)} — " + " ".join(
        prose.news_sentence(rng, later_month(date, rng)) for _ in range(rng.randint(3, 5)))


def era_b_corpus(world: World, mentions: int, filler_frac: float, seed: int, phrasings: str = "few") -> list[str]:
    """`mentions` articles per era-B event, plus news-register filler articles (`phrasings`: see `article`)."""
    rng = random.Random(f"{seed}-corpus-b")
    docs = [article(world, event, "train", rng, phrasings) for event in event_groups(world) for _ in range(mentions)]
    return _with_filler(docs, filler_frac, rng, news_filler)
