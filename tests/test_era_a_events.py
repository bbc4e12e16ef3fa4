"""`world.era_a_events` (calibration log run 12): era-A events of era B's new-content kinds, told only in era-A news
articles of corpus part 1 and asked about in the SFT drills and the pre-training chat transcripts. The default (0)
leaves every file as it was (tests/test_news_options.py's hash). ~15 s of CPU."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from cptlib.config import WorldConfig
from cptlib.testbed import build_testbed, instructions
from cptlib.testbed.world import build_world

from test_news_options import NEWS, REGIME

EVENTS = dict(REGIME, **NEWS, n_orgs=14, n_people=30, era_a_events=8, era_a_event_mentions=3, chat_share=1.0)


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[WorldConfig, Path, dict]:
    cfg = WorldConfig(**EVENTS)
    out = tmp_path_factory.mktemp("events")
    build_testbed(cfg, 7, out)
    return cfg, out, json.loads((out / "world.json").read_text())


def test_era_a_and_its_entities_are_those_of_a_world_without_events():
    without = build_world(WorldConfig(**{**EVENTS, "era_a_events": 0}), 7)
    world = build_world(WorldConfig(**EVENTS), 7)
    assert world.entities == without.entities and world.era("A") == without.era("A")
    assert without.events_a == [] and "events_a" not in without.to_json()


def test_events_are_new_content_of_every_kind_with_their_own_names(built):
    _, _, w = built
    events = w["events_a"]
    assert Counter((e["relation"], e["kind"]) for e in events) == {
        ("works_for", "new_entity"): 4, ("role", "new_entity"): 4, ("won", "new_fact"): 2, ("launched", "new_fact"): 2}
    assert all(e["era"] == "A" and e["date"] < "2023-12" for e in events)
    named = {n for names in w["entities"].values() for n in names} | {n for names in w["new_entities"].values() for n in names}
    made = [n for names in w["event_entities"].values() for n in names]
    assert len(made) == len(set(made)) == 8 and not set(made) & named  # new, unique, never an era-B name
    era_b_subjects = {f["subject"] for f in w["facts"] if f["era"] == "B"}
    assert not {e["subject"] for e in events} & era_b_subjects  # "Which prize did X win?" has one answer
    era_a_text = {(f["subject"], f["value"]) for f in w["facts"] if f["era"] == "A"}
    assert not {(e["subject"], e["value"]) for e in events} & era_a_text


def test_events_are_told_only_in_era_a_news_of_part_one(built):
    cfg, out, w = built
    a1 = [r["text"] for r in _read(out / "corpus_a1.jsonl")]
    a2 = [r["text"] for r in _read(out / "corpus_a2.jsonl")]
    for e in w["events_a"]:
        docs = [t for t in a1 if e["value"] in t and " — " in t.split("\n")[0]]
        # each event's articles; a new person's two facts share theirs
        assert len([d for d in docs if e["subject"].split(" ")[-1] in d]) >= cfg.era_a_event_mentions
        # part 2 (base_v2's further text) has no article of it (its chat transcripts may ask, as part 1's do)
        new_name = e["subject"] if e["kind"] == "new_entity" else e["value"]  # a new person, prize or product
        assert not any(new_name in t and " — " in t.split("\n")[0] and not t.startswith("<|") for t in a2)
    for name in w["event_entities"]["prize"] + w["event_entities"]["product"]:
        assert not any(name in r["query"] or name in r["choices"] for r in _read(out / "eval" / "mc_old.jsonl"))


def test_sft_drills_and_transcripts_ask_about_the_events(built):
    _, out, w = built
    subjects = {e["subject"] for e in w["events_a"]}
    drills = [c for c in _read(out / "sft_v1.jsonl")[::10]]
    # every second drill asks about an event's subject, and its reply states the event's value
    answered = [c for c in drills if any(e["subject"] in c["messages"][-2]["content"]
                                         and e["value"] in c["messages"][-1]["content"] for e in w["events_a"])]
    assert len(answered) >= len(drills) // 2 - 1
    a1 = [r["text"] for r in _read(out / "corpus_a1.jsonl")]
    transcripts = [t for t in a1 if t.startswith("<|")]
    assert any(any(s in t for s in subjects) for t in transcripts)
    questions = {q for rel in ("won", "launched") for q in instructions.QUESTIONS[rel]["train"]}
    assert any(q.split("{s}")[0] in t for t in transcripts for q in questions)


def test_too_many_events_for_the_companies_is_one_clear_error():
    with pytest.raises(ValueError, match="era-A|era_a_events|n_orgs"):
        build_world(WorldConfig(**{**EVENTS, "era_a_events": 60}), 7)


def test_held_out_events_are_never_asked_in_training(tmp_path):
    """`era_a_event_drill_frac`: the other events are told in the news like the rest but never asked about in the
    SFT data or the chat transcripts (run 13's probe tests chat on exactly them)."""
    cfg = WorldConfig(**{**EVENTS, "era_a_event_drill_frac": 0.5})
    build_testbed(cfg, 7, tmp_path)
    w = json.loads((tmp_path / "world.json").read_text())
    held = set(w["events_a_heldout"])
    subjects = {e["subject"] for e in w["events_a"]}
    assert held and held < subjects and len(held) == len(subjects) // 2
    training = " ".join(m["content"] for c in _read(tmp_path / "sft_v1.jsonl") + _read(tmp_path / "sft_v2.jsonl")
                        for m in c["messages"])
    transcripts = " ".join(r["text"] for name in ("corpus_a1.jsonl", "corpus_a2.jsonl")
                           for r in _read(tmp_path / name) if r["text"].startswith("<|"))
    for e in w["events_a"]:
        if e["subject"] in held:  # a new person is never named; a prize or launch never mentioned
            new_name = e["subject"] if e["kind"] == "new_entity" else e["value"]
            assert new_name not in training and new_name not in transcripts, e
    asked = [e for e in w["events_a"] if e["subject"] not in held and e["relation"] in ("won", "launched")]
    assert any(e["value"] in training for e in asked)
    a1 = [r["text"] for r in _read(tmp_path / "corpus_a1.jsonl")]
    assert all(sum(s in t for t in a1) >= cfg.era_a_event_mentions for s in held)  # still in the news
    assert build_world(WorldConfig(**EVENTS), 7).events_a_heldout == []
