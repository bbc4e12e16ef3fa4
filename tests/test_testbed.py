"""The synthetic testbed (cptlib.testbed): determinism, IFEval compliance by lm-eval's own checker, no era-B
leaks into era-A data, well-formed evaluation files, sizes from WorldConfig. A small world; ~45 s of CPU."""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cptlib.config import WorldConfig
from cptlib.testbed import build_testbed, corpora
from cptlib.testbed import constraints as C
from cptlib.testbed import evalsets, instructions
from cptlib.testbed.world import ERA_B_DATES, build_world, month_name

SMALL = WorldConfig(n_people=24, n_orgs=8, n_cities=8, n_prizes=4, n_news=10, news_mentions=3, mentions_a1=4,
                    mentions_a2=2, n_sft_v1=180, n_sft_v2=200, n_eval_ifeval=30, n_eval_knowledge=24,
                    n_eval_mc_old=40, n_eval_heldout_docs=20)
SEED = 7
BUILD = ("import sys, pathlib; from cptlib.config import WorldConfig; from cptlib.testbed import build_testbed; "
         "build_testbed(WorldConfig.model_validate_json(sys.argv[1]), int(sys.argv[2]), pathlib.Path(sys.argv[3]))")


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(autouse=True)
def seeded_langdetect(monkeypatch):
    """lm-eval's case checkers call an unseeded langdetect; seed 0 makes these tests deterministic. The
    generator only accepts case-constrained replies that read as English under seeds 0-7 (see
    constraints.reads_as_english), so under seed 0 they pass by construction and rarely fail unseeded."""
    from langdetect import DetectorFactory

    monkeypatch.setattr(DetectorFactory, "seed", 0)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("testbed")
    build_testbed(SMALL, SEED, out)
    return out


@pytest.fixture(scope="module")
def world():
    return build_world(SMALL, SEED)


def test_same_seed_is_byte_identical_in_another_process_with_another_hash_seed(built, tmp_path):
    # One subprocess against this process's build (not two subprocesses): `import cptlib.config` costs
    # ~10 s of CPU (it imports torch), which a second process would double.
    hash_seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    subprocess.run([sys.executable, "-c", BUILD, SMALL.model_dump_json(), str(SEED), str(tmp_path)], env=env,
                   check=True, timeout=120)
    assert _files(tmp_path) == _files(built)


def test_different_seed_changes_every_file(built, tmp_path):
    build_testbed(SMALL, SEED + 1, tmp_path)
    other, ours = _files(tmp_path), _files(built)
    assert other.keys() == ours.keys()
    assert [name for name in ours if other[name] == ours[name]] == []


def test_manifest_lists_every_file_with_count_and_hash(built):
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["seed"] == SEED and WorldConfig(**manifest["world"]) == SMALL
    names = sorted(set(_files(built)) - {"manifest.json"})
    assert sorted(manifest["files"]) == names
    for name in names:
        assert manifest["files"][name]["sha256"] == hashlib.sha256((built / name).read_bytes()).hexdigest()
        if name.endswith(".jsonl"):
            assert manifest["files"][name]["records"] == len(_read(built / name))


def test_sizes_follow_world_config(built, world):
    data = json.loads((built / "world.json").read_text())
    assert [len(data["entities"][k]) for k in ("person", "org", "city")] == [24, 8, 8]
    assert len(data["new_entities"]["prize"]) == 4
    assert len(corpora.event_groups(world)) == SMALL.n_news
    era_b = [f for f in data["facts"] if f["era"] == "B"]
    assert sum(f["kind"] == "changed" for f in era_b) == round(10 * SMALL.news_changed_frac)
    assert all(f["date"] in ERA_B_DATES for f in era_b)
    a1 = [r["text"] for r in _read(built / "corpus_a1.jsonl")]
    for person in data["entities"]["person"]:  # own documents, plus lists and other entities' mentions
        assert sum(person in doc for doc in a1) >= SMALL.mentions_a1
    names = data["entities"]["person"] + data["entities"]["org"] + data["entities"]["city"]
    filler = sum(len(d.split()) for d in a1 if not any(n in d for n in names))
    assert SMALL.filler_frac <= filler / sum(len(d.split()) for d in a1) < SMALL.filler_frac + 0.05
    b = [r["text"] for r in _read(built / "corpus_b.jsonl")]
    for fact in era_b:
        assert sum(fact["subject"] in doc and fact["value"] in doc for doc in b) >= SMALL.news_mentions
    counts = {"sft_v1.jsonl": 180, "sft_v2.jsonl": 200, "eval/ifeval.jsonl": 30, "eval/chat_knowledge.jsonl": 24,
              "eval/mc_old.jsonl": 40, "eval/heldout_a.jsonl": 20, "eval/heldout_b.jsonl": 20,
              "eval/chat_knowledge_a.jsonl": 24, "eval/heldout_a_news.jsonl": 20,
              "eval/mc_new.jsonl": len(era_b),  # every era-B fact, changes included
              "eval/mc_updated.jsonl": sum(f["kind"] == "changed" for f in era_b)}
    assert {name: len(_read(built / name)) for name in counts} == counts


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_every_sft_response_passes_lm_eval_checker(built, version):
    rows = _read(built / f"sft_{version}.jsonl")
    failures = []
    for row in rows:
        roles = [m["role"] for m in row["messages"]]
        assert roles in (["user", "assistant"], ["system", "user", "assistant"])
        assert len(row["kwargs"]) == len(row["instruction_id_list"])
        if not all(C.check(row["messages"][-1]["content"], row["instruction_id_list"], row["kwargs"])):
            failures.append(row)
    assert failures == []
    assert sum(not r["instruction_id_list"] for r in rows) > 0, "some conversations carry no constraint"
    assert {i for r in rows for i in r["instruction_id_list"]} == set(C.KINDS)


def test_v2_mix_has_more_two_constraint_conversations_than_v1(built):
    share = {v: sum(len(r["instruction_id_list"]) == 2 for r in _read(built / f"sft_{v}.jsonl")) / n
             for v, n in (("v1", 180), ("v2", 200))}
    assert share["v2"] > share["v1"]


def test_ifeval_prompts_are_lm_eval_format_held_out_and_satisfiable(built, world):
    from lm_eval.tasks.ifeval import instructions_registry, utils

    rows = _read(built / "eval/ifeval.jsonl")
    sft = [r for v in ("v1", "v2") for r in _read(built / f"sft_{v}.jsonl")]
    sft_prompts = {m["content"] for r in sft for m in r["messages"] if m["role"] == "user"}
    sft_pairs = {tuple(sorted(r["instruction_id_list"])) for r in sft if len(r["instruction_id_list"]) == 2}
    for row in rows:
        assert list(row) == ["key", "prompt", "instruction_id_list", "kwargs"] and isinstance(row["key"], int)
        assert row["prompt"] not in sft_prompts
        assert tuple(sorted(row["instruction_id_list"])) not in sft_pairs
        for instruction_id, kwargs in zip(row["instruction_id_list"], row["kwargs"], strict=True):
            instructions_registry.INSTRUCTION_DICT[instruction_id](instruction_id).build_description(**kwargs)
    # A compliant reply exists for every prompt, by lm-eval's own strict scorer.
    for record, reference in evalsets.ifeval_items(world, SMALL.n_eval_ifeval, SEED):
        assert utils.test_instruction_following_strict(utils.InputExample(**record), reference).follow_all_instructions


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.?!])\s+|\n", text) if s]


def test_era_b_facts_never_appear_in_era_a_data(built, world):
    _assert_no_era_b_leak(built, world)


def test_era_b_facts_never_appear_in_era_a_news_formats_or_transcripts(regime_built, world):
    _assert_no_era_b_leak(regime_built, world)  # the same world (shares change only the corpora)


def _assert_no_era_b_leak(built, world):
    era_a_texts = [r["text"] for name in ("corpus_a1", "corpus_a2", "eval/heldout_a")
                   for r in _read(built / f"{name}.jsonl")]
    era_a_texts += [m["content"] for v in ("v1", "v2") for r in _read(built / f"sft_{v}.jsonl") for m in r["messages"]]
    era_a_texts += [r["prompt"] for r in _read(built / "eval/ifeval.jsonl")]
    era_a_sentences = [s for t in era_a_texts for s in _sentences(t)]
    new_names = [n for names in world.new_entities.values() for n in names]
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, new_names)) + r")\b")
    assert [s for s in era_a_sentences if pattern.search(s)] == []
    changed = [f for f in world.era("B") if f.kind == "changed"]
    surname = {f.subject: f.subject.split(" ")[-1] for f in changed}
    leaks = [s for f in changed for s in era_a_sentences if surname[f.subject] in s and f.value in s]
    assert leaks == []
    # The same search finds every changed fact in the CPT corpus, so it can see a leak.
    b_sentences = [s for r in _read(built / "corpus_b.jsonl") for s in _sentences(r["text"])]
    assert all(any(surname[f.subject] in s and f.value in s for s in b_sentences) for f in changed)


def test_mc_items_are_well_formed_and_gold_matches_world(built):
    data = json.loads((built / "world.json").read_text())
    truth = {}
    for f in data["facts"]:
        # Era-A facts and changed facts are asked in the era-A phrasing; era-B ones under their dateline.
        kind = "old" if f["kind"] == "changed" else f["kind"]
        query = corpora.probe(f["relation"], kind).format(s=f["subject"])
        truth[query if f["era"] == "A" else f"{month_name(f['date'])} — {query}"] = f["value"]
    for name, n_choices in (("mc_old", 4), ("mc_new", 4), ("mc_updated", 2)):
        for row in _read(built / f"eval/{name}.jsonl"):
            assert list(row) == ["id", "query", "choices", "gold"]
            assert len(row["choices"]) == len(set(row["choices"])) == n_choices
            assert all(c.startswith(" ") and not c.startswith("  ") for c in row["choices"])
            assert 0 <= row["gold"] < n_choices and row["choices"][row["gold"]] == " " + truth[row["query"]]
    old_of = {(f["subject"], f["relation"]): f["value"] for f in data["facts"] if f["era"] == "A"}
    for row, f in zip(_read(built / "eval/mc_updated.jsonl"), [f for f in data["facts"] if f["kind"] == "changed"]):
        assert row["choices"] == [" " + f["value"], " " + f["old_value"]] and row["gold"] == 0
        assert f["old_value"] == old_of[f["subject"], f["relation"]] != f["value"]


def test_chat_knowledge_needs_the_news_and_the_instruction_format(built, world):
    rows = _read(built / "eval/chat_knowledge.jsonl")
    era_b_values = {f.value for f in world.era("B")}
    sft = [r for r in _read(built / "sft_v1.jsonl") if len(r["instruction_id_list"]) == 1]
    references = evalsets.knowledge_items(world, SMALL.n_eval_knowledge, SEED)
    for row, (record, ideal) in zip(rows, references, strict=True):
        assert row == record and row["answer"] in era_b_values and "?" in row["prompt"]
        assert all(C.check(ideal, row["instruction_id_list"], row["kwargs"]))
        assert row["answer"].lower() in ideal.lower()
        # A plain continuation that states the news correctly still fails the format.
        fact = next(f for f in world.era("B") if f.value == row["answer"])
        plain = corpora.state(corpora.ERA_B[fact.relation, fact.kind]["train"][0], fact.subject, fact.value)
        assert not any(C.check(plain, row["instruction_id_list"], row["kwargs"]))
        # The instruct model sees the same format on era-A questions of the same kind in SFT.
        questions = [re.escape(q).replace(re.escape("{s}"), ".+")
                     for q in instructions.QUESTIONS[fact.relation]["train"]]
        assert any(r["instruction_id_list"] == row["instruction_id_list"]
                   and any(re.search(q, r["messages"][-2]["content"]) for q in questions) for r in sft)


def test_heldout_documents_are_new_text(built):
    training = [r["text"] for n in ("corpus_a1", "corpus_a2", "corpus_b") for r in _read(built / f"{n}.jsonl")]
    docs, sentences = set(training), {s for t in training for s in _sentences(t)}
    for name in ("heldout_a", "heldout_b"):
        for row in _read(built / f"eval/{name}.jsonl"):
            assert row["text"] not in docs
            assert any(s not in sentences for s in _sentences(row["text"])), row["text"]


def test_check_agrees_with_hand_worked_cases():
    """Each case's verdict follows from lm-eval's checker definitions (e.g. end_checker strips quotes)."""
    cases = [
        ("THE CHIEF EXECUTIVE OF THE COMPANY IS A VERY BUSY PERSON.", [C.CAPITAL], [{}], [True]),
        ("The chief executive of the company is a very busy person.", [C.CAPITAL], [{}], [False]),
        ("one, two", [C.NO_COMMA], [{}], [False]),
        ('"It ends here. Any other questions?"', [C.END, C.QUOTATION], [{"end_phrase": "Any other questions?"}, {}],
         [True, True]),
        ("* a\n* b\n* c", [C.BULLETS], [{"num_bullets": 2}], [False]),
        ('{"answer": "x"}', [C.JSON, C.FORBIDDEN], [{}, {"forbidden_words": ["answer"]}], [True, False]),
        ("first\n***\nsecond", [C.PARAGRAPHS], [{"num_paragraphs": 2}], [True]),
        ("Text.\n\nP.P.S. more", [C.POSTSCRIPT], [{"postscript_marker": "P.P.S"}], [True]),
        ("   ", [C.TITLE], [{}], [False]),
    ]
    for response, ids, kwargs, expected in cases:
        assert C.check(response, ids, kwargs) == expected, response


def test_render_satisfies_every_kind_and_every_compatible_pair():
    for ids in [[k] for k in C.KINDS] + [list(p) for p in C.PAIRS]:
        for seed in range(3):  # different kwargs: fixed and invented end phrases, markers, counts
            rng = random.Random(seed)
            draft = C.Draft(["The old bridge near the river was quiet in the morning.",
                             "Many people walked across the bridge to the market every week.",
                             "The children liked the long walk more than the short one."], title="The bridge")
            made = instructions.constrain("Tell me about the bridge.", draft, ids, "train", rng)
            assert made is not None, ids
            _, response, kwargs = made
            assert all(C.check(response, ids, kwargs)), (ids, kwargs, response)


def test_world_that_cannot_hold_the_news_is_an_error():
    with pytest.raises(ValueError, match="not enough era-A orgs"):
        build_world(WorldConfig(n_orgs=4, n_news=40, news_changed_frac=0.6, news_new_person_frac=0.0), 0)


def test_train_phrasings_give_new_prompts_in_the_instruction_datas_wording(built, world):
    """eval_phrasings="train": the prompts reuse the training phrasings, but never an instruction-data prompt,
    and a compliant reply still exists for each (lm-eval's strict scorer)."""
    from lm_eval.tasks.ifeval import utils

    sft = [r for v in ("v1", "v2") for r in _read(built / f"sft_{v}.jsonl")]
    sft_prompts = {m["content"] for r in sft for m in r["messages"] if m["role"] == "user"}
    items = evalsets.ifeval_items(world, SMALL.n_eval_ifeval, SEED, "train", exclude=sft_prompts)
    train_phrasings = [p.split("{")[0] for k in C.KINDS for p in C.PHRASINGS[k]["train"]]
    for record, reference in items:
        assert record["prompt"] not in sft_prompts
        assert any(p in record["prompt"] for p in train_phrasings)
        assert utils.test_instruction_following_strict(utils.InputExample(**record), reference).follow_all_instructions
    with pytest.raises(ValueError, match="phrasings must be"):
        evalsets.ifeval_items(world, 3, SEED, "paraphrased")


def test_constraint_kinds_restrict_instruction_data_and_eval_prompts(world):
    kinds = (C.CAPITAL, C.NO_COMMA, C.TITLE, C.QUOTATION)
    sft = instructions.sft(world, 60, "v1", SEED, kinds)
    ifeval = evalsets.ifeval_items(world, 12, SEED, "train", kinds=kinds)
    knowledge = evalsets.knowledge_items(world, 8, SEED, kinds)
    used = {i for r in sft for i in r["instruction_id_list"]} | {i for r, _ in ifeval for i in r["instruction_id_list"]}
    assert used == set(kinds)
    assert {r["instruction_id_list"][0] for r, _ in knowledge} <= {C.CAPITAL, C.QUOTATION, C.TITLE}
    train_pairs, heldout_pairs = instructions.split_pairs(SEED, kinds)
    assert heldout_pairs and all(set(p) <= set(kinds) for p in train_pairs + heldout_pairs)


def test_three_constraint_conversations_never_hold_a_held_out_pair(world):
    """The triples of the run-7 pilot (bench/sft_mix_pilot.py) are built of training pairs only, and their
    replies follow all three constraints by lm-eval's own strict scorer."""
    from lm_eval.tasks.ifeval import utils

    _, heldout = instructions.split_pairs(SEED, C.KINDS)
    convs = [c for c in instructions.sft(world, 40, "v1", SEED, shares=(0.0, 0.0, 0.0, 1.0))
             if len(c["instruction_id_list"]) == 3]
    assert len(convs) >= 30  # every 10th conversation is a one-format knowledge drill
    for c in convs:
        ids = c["instruction_id_list"]
        assert not any(set(pair) <= set(ids) for pair in heldout), ids
        record = {"key": 0, "prompt": c["messages"][-2]["content"], "instruction_id_list": ids, "kwargs": c["kwargs"]}
        assert utils.test_instruction_following_strict(utils.InputExample(**record),
                                                       c["messages"][-1]["content"]).follow_all_instructions, ids


def test_unknown_constraint_kind_is_a_config_error():
    from cptlib.config import ConfigError, from_dict, resolve

    data, path = resolve("smoke")
    data["world"]["constraint_kinds"] = ["change_case:english_capitol"]
    with pytest.raises(ConfigError, match=r"world: constraint_kinds: unknown \['change_case:english_capitol'\]"):
        from_dict(data, path)


# The regime (docs/testbed.md, the regime): the pre-training corpus holds the latent skills and the news register.
REGIME = SMALL.model_copy(update={"news_a_share": 0.5, "format_share": 0.5, "chat_share": 0.5})


@pytest.fixture(scope="module")
def regime_built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("regime")
    build_testbed(REGIME, SEED, out)
    return out


def test_chat_transcripts_render_exactly_as_the_tokenizer_template(tmp_path):
    from cptlib.chat_format import render_chat
    from cptlib.tokenizer import train_tokenizer

    tok = train_tokenizer(["a few words of text"], vocab_size=300)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where was Al Ash born?"},
                {"role": "assistant", "content": "Al Ash was born in Bramport."}]
    assert render_chat(messages) == tok.apply_chat_template(messages, tokenize=False)
    assert render_chat(messages[1:]) == ("<|bos|><|user|>\nWhere was Al Ash born?<|end|>\n<|assistant|>\n"
                                         "Al Ash was born in Bramport.<|end|>\n")


def test_pretraining_holds_transcripts_formats_and_era_a_news(regime_built):
    a1 = [r["text"] for r in _read(regime_built / "corpus_a1.jsonl")]
    transcripts = [d for d in a1 if d.startswith("<|bos|>") and "<|assistant|>\n" in d]
    assert len(transcripts) == round(REGIME.chat_share * REGIME.mentions_a1 * (REGIME.n_people + REGIME.n_orgs))
    news = [d for d in a1 if re.match(r"^[A-Z][a-z]+ 20\d\d — ", d)]
    assert news and all(d.split(" — ")[0] in {month_name(m) for m in corpora.ERA_A_DATES} for d in news)
    assert any("2024" in d for d in news)  # news looks ahead: era B's months are not new tokens
    bodies = [d.split("\n", 1)[1] if d.split("\n", 1)[0].endswith(":") else d for d in a1]
    assert any(b.isupper() and len(b) > 40 for b in bodies)  # capitals
    assert any(b.startswith("<<") for b in bodies)  # a title
    assert any("\nP.S." in b or "\nP.P.S." in b for b in bodies)  # a postscript
    assert any(_is_json(b) for b in bodies)
    assert any(b.startswith('"') and b.endswith('"') for b in bodies)  # quoted
    assert any(b.split("\n")[0] in {c + ":" for cs in corpora.CAPTIONS.values() for c in cs} for b in a1)
    stems = {c.split("{")[0].lower() for cs in corpora.CAPTIONS.values() for c in cs}
    assert any(sum(st in d.split("\n")[0].lower() for st in stems) == 2 for d in a1)  # a pair's caption


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
        return text.startswith("{")
    except ValueError:
        return False


def test_pretraining_never_holds_an_instruction_or_an_evaluation_prompt(regime_built):
    """Formats and chats are latent skills: no constraint phrasing (train or held-out), no IFEval or chat-knowledge
    prompt, ever appears in the era-A corpora."""
    text = "\n".join(r["text"] for name in ("corpus_a1.jsonl", "corpus_a2.jsonl")
                     for r in _read(regime_built / name))
    stems = {p.split("{")[0].strip() for kinds in C.PHRASINGS.values() for ps in kinds.values() for p in ps}
    assert not [s for s in stems if len(s) > 12 and s in text]
    for name in ("eval/ifeval.jsonl", "eval/chat_knowledge.jsonl", "eval/chat_knowledge_a.jsonl"):
        assert not [r["prompt"] for r in _read(regime_built / name) if r["prompt"] in text], name


def test_heldout_era_a_news_mirrors_era_b_in_form_with_known_content(regime_built, world):
    docs = [r["text"] for r in _read(regime_built / "eval" / "heldout_a_news.jsonl")]
    b = [r["text"] for r in _read(regime_built / "eval" / "heldout_b.jsonl")]
    a1 = {r["text"] for r in _read(regime_built / "corpus_a1.jsonl")}
    assert len(docs) == REGIME.n_eval_heldout_docs and not a1 & set(docs)
    assert all(d.split(" — ")[0] in {month_name(m) for m in corpora.ERA_A_DATES} for d in docs)
    # The same held-out templates as era B's articles: e.g. a change of employer reads the same in both.
    assert any("switched from" in d for d in docs) and any("switched from" in d for d in b)


IN_CONTEXT = SMALL.model_copy(update={"instructions": "in_context", "news_phrasings": "many", "news_chat_relations":
                                      ["works_for", "ceo", "based_in", "won", "launched", "role"]})


@pytest.fixture(scope="module")
def in_context_built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("in_context")
    build_testbed(IN_CONTEXT, SEED, out)
    return out


def test_in_context_sft_answers_only_from_the_prompt_and_passes_lm_evals_checker(in_context_built):
    """A real base never read the world: every fact an SFT reply states about the world is in its prompt (the note),
    so SFT teaches the format and the turn-taking, not invented answers; and every reply is compliant."""
    world = build_world(IN_CONTEXT, SEED)
    names = [s for kind in ("person", "org") for s in world.entities[kind]]
    rows = _read(in_context_built / "sft_v1.jsonl")
    for row in rows:
        prompt, reply = row["messages"][-2]["content"], row["messages"][-1]["content"]
        named = [n for n in names if n.lower() in reply.lower()]
        assert all(n.lower() in prompt.lower() for n in named), (prompt, reply)
        for fact in (f for n in named for f in world.stable(n)):
            if fact.value.lower() in reply.lower():
                assert fact.value.lower() in prompt.lower(), (fact, prompt, reply)
        assert all(C.check(reply, row["instruction_id_list"], row["kwargs"]))
    assert {i for r in rows for i in r["instruction_id_list"]} == set(C.KINDS)


def test_in_context_chat_probe_asks_era_b_in_a_wording_no_training_file_holds(in_context_built):
    """The news asked in chat (eval/chat_knowledge.jsonl): every question is about an era-B fact, with no note, in a
    held-out wording; none of those wordings (their words around the subject) occurs in the SFT set or the CPT
    corpus, so answering is recall of the news through the instruction interface, not of a training sentence."""
    world = build_world(IN_CONTEXT, SEED)
    era_b = {(f.subject, f.value) for f in world.era("B")}
    items = _read(in_context_built / "eval/chat_knowledge.jsonl")
    assert len(items) == IN_CONTEXT.n_eval_knowledge
    training = "\n".join([m["content"] for r in _read(in_context_built / "sft_v1.jsonl") for m in r["messages"]]
                         + [r["text"] for r in _read(in_context_built / "corpus_b.jsonl")]).lower()
    for item in items:
        assert any(s in item["prompt"] and v == item["answer"] for s, v in era_b), item
    for relation, wordings in instructions.QUESTIONS.items():
        for wording in wordings["heldout"]:
            for part in (p.strip(" ?.").lower() for p in wording.split("{s}")):
                if len(part.split()) >= 3:
                    assert part not in training, (relation, part)
