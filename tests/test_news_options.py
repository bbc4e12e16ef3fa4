"""The era-B options of run 11 (docs/calibration_log.md): mostly new content (second name pools), several phrasings
(`world.news_phrasings`), a chat probe over every era-B kind (`world.news_chat_relations`) — and that their defaults
leave the generated data byte for byte as it was. ~20 s of CPU."""
from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from cptlib.config import ConfigError, WorldConfig, from_dict
from cptlib.testbed import build_testbed, corpora, instructions
from cptlib.testbed import constraints as C
from cptlib.testbed import world as W
from cptlib.testbed.world import build_world

REGIME = dict(n_people=24, n_orgs=8, n_cities=8, n_prizes=4, n_news=10, news_mentions=3, mentions_a1=4, mentions_a2=2,
              n_sft_v1=180, n_sft_v2=200, n_eval_ifeval=30, n_eval_knowledge=24, n_eval_mc_old=40,
              n_eval_heldout_docs=20, news_a_share=0.3, format_share=0.6, chat_share=0.5)
# sha256 over the sorted {file: sha256} of REGIME's testbed (seed 7), computed with the generator of commit bd61bb5,
# before these options existed: their defaults must give the same bytes for every file of then (NEW_FILES came
# later and add to them). A deliberate change of the default generator updates this hash (and says so).
BEFORE = "e5bad1f248e2d683845432b9a4b227865cee2e4672a4b71e22c4042e919ee90b"
NEW_FILES = ("eval/mc_new_heldout.jsonl",)  # run 17: mc_new asked in held-out words
NEWS = dict(news_changed_frac=0.2, news_new_person_frac=0.45)
ALL_KINDS = ["works_for", "ceo", "based_in", "won", "launched"]
DEFAULT_SIZES = dict(n_people=340, n_orgs=120, n_cities=24, n_news=330)


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+|\n", text) if s]


@pytest.fixture(scope="module")
def news_built(tmp_path_factory) -> tuple[WorldConfig, Path]:
    cfg = WorldConfig(**REGIME, **NEWS, news_phrasings="many", news_chat_relations=ALL_KINDS)
    out = tmp_path_factory.mktemp("news")
    build_testbed(cfg, 7, out)
    return cfg, out


def test_the_options_defaults_give_the_data_of_before(tmp_path):
    cfg = WorldConfig(**REGIME)
    assert cfg.news_phrasings == "few" and cfg.news_chat_relations == ["works_for", "ceo", "based_in"]
    files = build_testbed(cfg, 7, tmp_path)["files"]
    digest = hashlib.sha256(json.dumps({k: v["sha256"] for k, v in sorted(files.items())
                                        if k not in NEW_FILES}).encode()).hexdigest()
    assert digest == BEFORE


def test_mostly_new_news_at_the_default_sizes_keeps_every_era_a_fact():
    before = build_world(WorldConfig(**DEFAULT_SIZES, n_prizes=12, news_changed_frac=0.92, news_new_person_frac=0.04), 0)
    after = build_world(WorldConfig(**DEFAULT_SIZES, n_prizes=60, **NEWS), 0)
    assert after.entities == before.entities and after.era("A") == before.era("A")
    kinds = Counter((f.kind, f.relation) for f in after.era("B"))
    assert kinds == {("changed", "works_for"): 44, ("changed", "ceo"): 11, ("changed", "based_in"): 11,
                     ("new_entity", "works_for"): 148, ("new_entity", "role"): 148,
                     ("new_fact", "won"): 58, ("new_fact", "launched"): 58}
    events = corpora.event_groups(after)
    assert len(events) == 330 and sum(e[0].kind != "changed" for e in events) / len(events) == 0.8
    # The first pools (16 prize names, ~430 first names, ~140 products) ran out; the second ones keep every name
    # unique, invented, and no prize named after a person's surname.
    names = [n for group in (after.entities, after.new_entities) for ns in group.values() for n in ns]
    assert len(after.new_entities["prize"]) == 60 and len(after.new_entities["person"]) == 11 + 148
    assert len({n.lower() for n in names}) == len(names)
    before_names = {n for group in (before.entities, before.new_entities) for ns in group.values() for n in ns}
    assert not {t for n in set(names) - before_names for t in n.split(" ")} & W._NOT_MORE
    surnames = {p.split(" ")[1] for p in after.entities["person"] + after.new_entities["person"]}
    assert not {p.split(" ")[0] for p in after.new_entities["prize"]} & surnames
    firsts = {p.split(" ")[0] for p in after.new_entities["person"]}
    assert firsts & {a + b for a in W._MORE["first"] for b in W._FIRST[1]}  # the second pool was drawn from


def test_the_added_phrasings_are_statements_never_held_out_or_questions():
    heldout = {t for r in corpora.ERA_A.values() for t in r["heldout"]} | {t for r in corpora.ERA_B.values()
                                                                           for t in r["heldout"]}
    for form, more in corpora.ERA_B_MORE.items():
        assert form in corpora.ERA_B and len(more) == len(set(more)) >= 4
        assert not set(more) & (heldout | set(corpora.ERA_B[form]["train"]))
        assert all("{s}" in t and "{v}" in t and t.endswith(".") and "?" not in t and "<|" not in t for t in more)
        assert corpora.era_b_templates(form, "train") == corpora.ERA_B[form]["train"]
        assert corpora.era_b_templates(form, "heldout", "many") == corpora.ERA_B[form]["heldout"]
    # Each chat question kind has a news sentence that names the relation as the question does.
    assert "The employer of {s} is now {v}." in corpora.ERA_B_MORE["works_for", "new_entity"]
    assert "The chief executive of {s} is now {v}." in corpora.ERA_B_MORE["ceo", "changed"]
    assert "The headquarters of {s} are now in {v}." in corpora.ERA_B_MORE["based_in", "changed"]


def _templates_used(world, docs: list[str], phrasings: str) -> dict:
    """{era-B fact: the statement templates (of `phrasings`' pool) that some sentence of `docs` renders it in}."""
    sentences = [s for d in docs for s in _sentences(re.sub(r"^[A-Z][a-z]+ 20\d\d — ", "", d))]  # no dateline
    used = {}
    for fact in world.era("B"):
        mine = [s for s in sentences if fact.value in s]
        used[fact] = set()
        for template in corpora.era_b_templates((fact.relation, fact.kind), "train", phrasings):
            pattern = re.escape(template).replace(re.escape("{s}"), r"(?:\w+ )?\w+")
            pattern = pattern.replace(re.escape("{v}"), re.escape(fact.value))
            pattern = re.sub(r"\\\{(old|when|a)\\\}", r"[\\w ]+", pattern)
            if any(re.fullmatch(pattern, s) for s in mine):
                used[fact].add(template)
    return used


def test_many_phrasings_tell_each_event_in_more_templates(news_built):
    cfg, out = news_built
    world = build_world(cfg, 7)
    docs = [r["text"] for r in _read(out / "corpus_b.jsonl")]
    assert not [s for d in docs for s in _sentences(d) if s.endswith("?") or "<|" in s]
    many = _templates_used(world, docs, "many")
    few = _templates_used(world, corpora.era_b_corpus(world, cfg.news_mentions, cfg.news_filler_frac, 7, "few"), "few")
    # 3 articles per event: each fact in 4.9 distinct templates on average (at least 3), against 3.5 (at least 2)
    # with the 'few' pool, on the same world and seed.
    mean_many, mean_few = (sum(map(len, u.values())) / len(u) for u in (many, few))
    assert min(map(len, many.values())) >= 3 and mean_many > mean_few + 1.0, (mean_many, mean_few)
    # The added templates are used: 20 of the 29 of the kinds this world has (1-4 events per kind), each kind some.
    added = {(f.relation, f.kind, t) for f, u in many.items() for t in u if t in corpora.ERA_B_MORE[f.relation, f.kind]}
    forms = {(f.relation, f.kind) for f in world.era("B")}
    assert len(added) >= 18 and {(r, k) for r, k, _ in added} == forms
    # The era-A news reads the same: some of its statements use the added templates.
    added = [re.compile(re.sub(r"\\\{\w+\\\}", r"[\\w ]+", re.escape(t))) for ts in corpora.ERA_B_MORE.values() for t in ts]
    news = [s for r in _read(out / "corpus_a1.jsonl") if re.match(r"^[A-Z][a-z]+ 20\d\d — ", r["text"])
            for s in _sentences(re.sub(r"^[A-Z][a-z]+ 20\d\d — ", "", r["text"]))]
    assert len([s for s in news if any(a.fullmatch(s) for a in added)]) >= 5


def test_held_out_files_stay_held_out_with_many_phrasings(news_built):
    _, out = news_built
    training = [r["text"] for n in ("corpus_a1", "corpus_a2", "corpus_b") for r in _read(out / f"{n}.jsonl")]
    docs, sentences = set(training), {s for t in training for s in _sentences(t)}
    for name in ("heldout_a", "heldout_b", "heldout_a_news"):
        for row in _read(out / f"eval/{name}.jsonl"):
            assert row["text"] not in docs
            assert any(s not in sentences for s in _sentences(row["text"])), row["text"]


def test_held_out_mc_asks_the_news_in_words_no_training_file_holds(news_built):
    """eval/mc_new_heldout.jsonl: mc_new's items, choices and gold, each query in a held-out phrasing that no
    training file (the three corpora and both SFT mixes, any case) contains."""
    from cptlib.testbed import evalsets

    _, out = news_built
    new, held = _read(out / "eval/mc_new.jsonl"), _read(out / "eval/mc_new_heldout.jsonl")
    assert len(held) == len(new) > 0
    for a, b in zip(new, held):
        assert (a["choices"], a["gold"]) == (b["choices"], b["gold"]) and a["query"] != b["query"]
        assert a["query"].split(" — ")[0] == b["query"].split(" — ")[0]  # the same dateline
    training = [r["text"] for n in ("corpus_a1", "corpus_a2", "corpus_b") for r in _read(out / f"{n}.jsonl")] + \
        [m["content"] for v in ("v1", "v2") for c in _read(out / f"sft_{v}.jsonl") for m in c["messages"]]
    assert evalsets.leaked_queries(held, training) == []
    assert len(evalsets.leaked_queries(new, training)) > len(new) / 2  # the training phrasing is in the news


def test_a_held_out_query_that_training_holds_stops_the_build(tmp_path, monkeypatch):
    from cptlib.core.errors import InputError
    from cptlib.testbed import evalsets

    monkeypatch.setattr(evalsets, "heldout_query", lambda fact: evalsets._dated(fact, fact.kind))  # the training words
    with pytest.raises(InputError, match="held-out era-B queries occur in the training files"):
        build_testbed(WorldConfig(**REGIME, **NEWS), 7, tmp_path)


def test_chat_probe_asks_every_era_b_kind(news_built):
    cfg, out = news_built
    world = build_world(cfg, 7)
    rows = _read(out / "eval/chat_knowledge.jsonl")
    assert len(rows) == cfg.n_eval_knowledge == len({r["prompt"] for r in rows})
    asked = Counter()
    for row in rows:
        facts = [f for f in world.era("B") if f.value == row["answer"] and f.subject in row["prompt"]]
        assert len(facts) == 1, row
        fact = facts[0]
        asked[fact.kind, fact.relation] += 1
        questions = [q.format(s=fact.subject) for q in instructions.QUESTIONS[fact.relation]["train"]]
        assert any(q in row["prompt"] for q in questions) and row["instruction_id_list"][0] in instructions.KNOWLEDGE_FORMATS
    assert {r for _, r in asked} == set(ALL_KINDS) - ({"ceo", "based_in"} - {f.relation for f in world.era("B")})
    assert asked["new_fact", "won"] and asked["new_fact", "launched"] and asked["new_entity", "works_for"]
    # No training file holds a probe's prompt, and no question of the new kinds is ever trained on.
    training = "\n".join(m["content"] if "messages" in r else "" for v in ("v1", "v2") for r in
                         _read(out / f"sft_{v}.jsonl") for m in r["messages"])
    training += "\n".join(r["text"] for n in ("corpus_a1", "corpus_a2", "corpus_b") for r in _read(out / f"{n}.jsonl"))
    assert not [r["prompt"] for r in rows if r["prompt"] in training]
    new_questions = [q.split("{s}")[0] for r in ("won", "launched") for q in instructions.QUESTIONS[r]["train"]]
    assert not [q for q in new_questions if q in training]


def test_news_chat_relations_are_validated():
    with pytest.raises(ConfigError, match="news_chat_relations"):
        from_dict({"name": "x", "world": {"news_chat_relations": ["born_in"]}}, "test")
    with pytest.raises(ConfigError, match="news_chat_relations"):
        from_dict({"name": "x", "world": {"news_chat_relations": []}}, "test")
    with pytest.raises(ConfigError, match="news_phrasings"):
        from_dict({"name": "x", "world": {"news_phrasings": "lots"}}, "test")
    assert C.QUOTATION in instructions.KNOWLEDGE_FORMATS
