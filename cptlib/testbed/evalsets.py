"""Held-out evaluation sets (docs/paper.md §4): multiple choice on old, new and updated facts, IFEval-format prompts,
chat questions about the news, and held-out documents for perplexity. Nothing here is trained on.

Multiple-choice queries are plain text (no chat template) ending where the value starts; each choice is
" " + value, scored by the log-likelihood of the choice given the query.
"""
from __future__ import annotations

import random

from cptlib.testbed import corpora, prose
from cptlib.testbed import constraints as C
from cptlib.testbed.instructions import (KNOWLEDGE_RELATIONS, MIX, constrain, ifeval_records, knowledge_formats, qa_task,
                                         split_pairs, task)
from cptlib.testbed.world import ERA_A_DATES, Fact, World, month_name
from cptlib.core.errors import InputError


def _mc(item_id: str, query: str, world: World, fact: Fact, era: str, rng: random.Random) -> dict:
    """Four choices of the answer's type: familiar values of the same relation first, then others."""
    seen, others = world.candidates(fact.relation, era)
    seen = [v for v in seen if v != fact.value]
    distractors = rng.sample(seen, 3) if len(seen) >= 3 else seen + rng.sample(others, 3 - len(seen))
    choices = distractors + [fact.value]
    rng.shuffle(choices)
    return {"id": item_id, "query": query, "choices": [" " + c for c in choices], "gold": choices.index(fact.value)}


def _dated(fact: Fact, relation_kind: str = "old") -> str:
    """An era-B query in the news register: dateline, then the fact's training phrasing up to its value."""
    return f"{month_name(fact.date)} — " + corpora.probe(fact.relation, relation_kind).format(s=fact.subject)


def mc_old(world: World, n: int, seed: int) -> list[dict]:
    """Era-A facts that era B leaves unchanged (the MMLU analogue): at most `n`, one per fact."""
    rng = random.Random(f"{seed}-eval-mc-old")
    facts = [f for s in world.entities["person"] + world.entities["org"] for f in world.stable(s)]
    facts = rng.sample(facts, min(n, len(facts)))
    return [_mc(f"old-{i}", corpora.probe(f.relation).format(s=f.subject), world, f, "A", rng)
            for i, f in enumerate(facts)]


def mc_new(world: World, seed: int) -> list[dict]:
    """Every era-B fact, asked in its news phrasing: new people's facts, prizes won, products launched, and the
    changes (whose era-A value may be among the distractors, so a model that only knows era A scores below chance)."""
    rng = random.Random(f"{seed}-eval-mc-new")
    facts = world.era("B")
    return [_mc(f"new-{i}", _dated(f, f.kind), world, f, "B", rng) for i, f in enumerate(facts)]


def heldout_query(fact: Fact) -> str:
    """The fact's query in a phrasing no training file uses: the first held-out template (era-B news, else era A)
    whose prefix before the value names the subject and nothing else, cut there; era B under its dateline, as
    mc_new's queries are."""
    era_b = corpora.ERA_B[fact.relation, fact.kind]["heldout"] if fact.era == "B" else []
    for template in era_b + corpora.ERA_A.get(fact.relation, {}).get("heldout", []):
        prefix = template[: template.index("{v}")].rstrip()
        if "{s}" in prefix and prefix.replace("{s}", "").count("{") == 0:
            query = prose.cap(prefix.format(s=fact.subject))
            return f"{month_name(fact.date)} — {query}" if fact.era == "B" else query
    raise InputError(f"no held-out template of {fact.relation}/{fact.kind} names the subject before the value: add one "
                     "to cptlib/testbed/corpora.py (ERA_B or ERA_A 'heldout')")


def mc_new_heldout(world: World, seed: int) -> list[dict]:
    """mc_new's items (the same choices and gold) with each query in a held-out phrasing (heldout_query): recall
    of the news from a question no training text contains, not of a training sentence (issue 30, step 3)."""
    return [{**item, "id": f"new-heldout-{i}", "query": heldout_query(f)}
            for i, (item, f) in enumerate(zip(mc_new(world, seed), world.era("B")))]


def leaked_queries(items: list[dict], training_texts) -> list[str]:
    """The items' queries (without an era-B dateline, in any case) that occur in the training texts."""
    text = "\n".join(training_texts).lower()
    return [item["query"] for item in items if item["query"].split(" — ", 1)[-1].lower() in text]


def mc_updated(world: World) -> list[dict]:
    """Every changed fact, asked in the era-A phrasing: does the model prefer the era-B value (gold 0)?"""
    return [{"id": f"updated-{i}", "query": _dated(f), "choices": [" " + f.value, " " + f.old_value], "gold": 0}
            for i, f in enumerate(f for f in world.era("B") if f.kind == "changed")]


def ifeval_items(world: World, n: int, seed: int, phrasings: str = "heldout",
                 exclude: set[str] = frozenset(), kinds: tuple[str, ...] = C.KINDS) -> list[tuple[dict, str]]:
    """(lm-eval IFEval record, a compliant reference reply). `phrasings` "heldout": task and constraint
    phrasings never seen in training; "train": the instruction data's phrasings (WorldConfig.eval_phrasings).
    Either way the subjects and values are drawn afresh and 60% of the prompts carry a constraint pair never
    seen in the instruction data. Prompts in `exclude` (the instruction data's) are never used."""
    if phrasings not in ("heldout", "train"):
        raise ValueError(f"phrasings must be 'heldout' or 'train', got {phrasings!r}")
    rng = random.Random(f"{seed}-eval-ifeval")
    _, heldout_pairs = split_pairs(seed, kinds)
    items = ifeval_records(n, rng, lambda r: task(world, phrasings, MIX["v2"][1], r), heldout_pairs, phrasings, kinds,
                           exclude)
    if items is None:
        raise InputError(f"cannot make {n} distinct IFEval prompts; lower n_eval_ifeval")
    return items


def knowledge_items(world: World, n: int, seed: int, kinds: tuple[str, ...] = C.KINDS, era: str = "B",
                    exclude: set[str] = frozenset(),
                    relations: tuple[str, ...] = KNOWLEDGE_RELATIONS) -> list[tuple[dict, str]]:
    """(chat question about an era-B fact -- or with `era` "A", an era-A fact that era B keeps -- with one
    format constraint, an ideal reply). Formats are ones a plain continuation never produces (capitals,
    lowercase, quotes, an end phrase, JSON, a title), drilled on era-A questions of the same kind in SFT;
    facts and formats are cycled so that each fact is asked in each format. Prompts in `exclude` (the
    instruction data's) are never used. `relations`: the era-B relations asked (WorldConfig.news_chat_relations;
    the era-A probe asks KNOWLEDGE_RELATIONS, the ones SFT drills)."""
    rng = random.Random(f"{seed}-eval-knowledge" + ("-a" if era == "A" else ""))
    if era == "B":
        facts = [f for f in world.era("B") if f.relation in relations]
    else:
        facts = [f for s in world.entities["person"] + world.entities["org"] for f in world.stable(s)
                 if f.relation in KNOWLEDGE_RELATIONS]
        rng.shuffle(facts)
    if not facts:
        raise InputError(f"no era-{era} fact suits a chat question; raise n_news or news_changed_frac")
    formats = knowledge_formats(kinds)
    items: list[tuple[dict, str]] = []
    prompts: set[str] = set()
    attempt = 0
    while len(items) < n:
        fact = facts[attempt % len(facts)]
        fmt = formats[(attempt // len(facts)) % len(formats)]
        attempt += 1
        if attempt > 50 * n:
            raise InputError(f"cannot make {n} distinct chat-knowledge prompts; lower n_eval_knowledge")
        question, draft = qa_task(world, fact, "train", rng, extra=False)
        made = constrain(question, draft, [fmt], "train", rng)
        if made is None or made[0] in prompts or made[0] in exclude:
            continue
        user, response, kwargs = made
        prompts.add(user)
        items.append(({"id": f"know-{era.lower()}-{len(items)}" if era == "A" else f"know-{len(items)}", "prompt": user, "answer": fact.value,
                       "instruction_id_list": [fmt], "kwargs": kwargs}, response))
    return items


def heldout_a(world: World, n: int, seed: int) -> list[str]:
    """Era-A documents in held-out phrasings and record labels, plus filler, in the corpora's proportion."""
    rng = random.Random(f"{seed}-heldout-a")
    subjects = world.entities["person"] + world.entities["org"]
    return [prose.paragraph(rng) if rng.random() < 0.2 else corpora.entity_doc(world, rng.choice(subjects),
                                                                               "heldout", rng) for _ in range(n)]


def heldout_b(world: World, n: int, seed: int) -> list[str]:
    """Era-B articles in held-out phrasings, plus news filler."""
    rng = random.Random(f"{seed}-heldout-b")
    events = corpora.event_groups(world)
    return [corpora.news_filler(rng) if rng.random() < 0.2 else corpora.article(world, rng.choice(events),
                                                                                "heldout", rng) for _ in range(n)]


def heldout_a_news(world: World, n: int, seed: int) -> list[str]:
    """Era-A news articles in the era-B held-out templates, plus era-A news filler: heldout_b's form with known
    content. Each article mirrors a randomly drawn era-B event's statement kinds (a change of employer, a new
    chief executive ...) on era-A facts that era B keeps, so base_v1's bits per byte on heldout_b over this --
    the news register shift -- compares like with like (1.0 = era B differs from era A in content only)."""
    rng = random.Random(f"{seed}-heldout-a-news")
    events = corpora.event_groups(world)
    subjects = world.entities["person"] + world.entities["org"]
    docs = []
    while len(docs) < n:
        if rng.random() < 0.2:
            docs.append(corpora.news_filler(rng, ERA_A_DATES))
            continue
        forms = list(dict.fromkeys(corpora.era_a_form(f.relation, f.kind) for f in rng.choice(events)))
        needed = {corpora.ERA_A_RELATION[form] for form in forms}
        fits = [s for s in subjects if needed <= {f.relation for f in world.stable(s)}]
        if fits:
            docs.append(corpora.era_a_article(world, rng.choice(fits), rng, "heldout", forms))
    return docs
