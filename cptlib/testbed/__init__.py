"""The synthetic testbed (docs/paper.md §2): a seeded fictional world and every data file generated from it.

    from cptlib.testbed import build_testbed
    manifest = build_testbed(profile.world, profile.world_seed, out_dir)   # out_dir exists and is empty

Same (WorldConfig, seed) -> byte-identical files: only sub-seeded `random.Random` streams, lists in
generation order, JSON with fixed key order. Writing to a temporary directory and caching are the caller's
(cptlib.family). Formats and examples: docs/testbed.md.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from cptlib.core.errors import InputError
from cptlib.config import WorldConfig, stable_dict
from cptlib.testbed import constraints as C
from cptlib.testbed import corpora, evalsets, incontext, instructions, prose
from cptlib.testbed.world import build_world


def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def build_testbed(world_cfg: WorldConfig, seed: int, out_dir: Path) -> dict:
    """Write world.json, the corpora, the SFT sets and eval/*.jsonl into `out_dir`; return the manifest."""
    cfg, out_dir = world_cfg, Path(out_dir)
    world = build_world(cfg, seed)
    kinds = tuple(cfg.constraint_kinds or C.KINDS)
    n_subjects = len(world.entities["person"]) + len(world.entities["org"])

    def era_a(part: str, mentions: int) -> list[str]:
        chats = instructions.transcripts(world, round(cfg.chat_share * mentions * n_subjects), seed, part)
        # The era-A events are news of base_v1's time: corpus part 1 only (base_v2 continues from base_v1).
        events = cfg.era_a_event_mentions if part == "a1" and world.events_a else 0
        return corpora.era_a_corpus(world, part, mentions, cfg.filler_frac, seed, cfg.news_a_share,
                                    cfg.format_share, kinds, chats, cfg.news_phrasings, events)

    texts = {
        "corpus_a1.jsonl": era_a("a1", cfg.mentions_a1),
        "corpus_a2.jsonl": era_a("a2", cfg.mentions_a2),
        "corpus_b.jsonl": corpora.era_b_corpus(world, cfg.news_mentions, cfg.news_filler_frac, seed,
                                               cfg.news_phrasings),
        "eval/heldout_a.jsonl": evalsets.heldout_a(world, cfg.n_eval_heldout_docs, seed),
        "eval/heldout_b.jsonl": evalsets.heldout_b(world, cfg.n_eval_heldout_docs, seed),
        "eval/heldout_a_news.jsonl": evalsets.heldout_a_news(world, cfg.n_eval_heldout_docs, seed),
    }
    records = {name: [{"text": t} for t in docs] for name, docs in texts.items()}
    # A real base model's instruction data and probes (incontext) or the testbed models' (instructions, evalsets).
    in_context = cfg.instructions == "in_context"
    make_sft = incontext.sft if in_context else instructions.sft
    sft = {v: make_sft(world, n, v, seed, kinds) for v, n in (("v1", cfg.n_sft_v1), ("v2", cfg.n_sft_v2))}
    sft_prompts = {m["content"] for convs in sft.values() for c in convs for m in c["messages"] if m["role"] == "user"}
    relations = tuple(cfg.news_chat_relations)
    ifeval = incontext.ifeval_items(world, cfg.n_eval_ifeval, seed, sft_prompts, kinds) if in_context else \
        evalsets.ifeval_items(world, cfg.n_eval_ifeval, seed, cfg.eval_phrasings, exclude=sft_prompts, kinds=kinds)
    chat = incontext.chat_items(world, cfg.n_eval_knowledge, seed, relations, kinds) if in_context else \
        evalsets.knowledge_items(world, cfg.n_eval_knowledge, seed, kinds, relations=relations)
    records.update({
        "sft_v1.jsonl": sft["v1"],
        "sft_v2.jsonl": sft["v2"],
        "eval/ifeval.jsonl": [r for r, _ in ifeval],
        "eval/chat_knowledge.jsonl": [r for r, _ in chat],
        "eval/chat_knowledge_a.jsonl": [r for r, _ in evalsets.knowledge_items(world, cfg.n_eval_knowledge, seed, kinds,
                                                                               "A", exclude=sft_prompts)],
        "eval/mc_old.jsonl": evalsets.mc_old(world, cfg.n_eval_mc_old, seed),
        "eval/mc_new.jsonl": evalsets.mc_new(world, seed),
        "eval/mc_new_heldout.jsonl": evalsets.mc_new_heldout(world, seed),
        "eval/mc_updated.jsonl": evalsets.mc_updated(world),
    })
    training = [t for name in ("corpus_a1.jsonl", "corpus_a2.jsonl", "corpus_b.jsonl") for t in texts[name]] + \
        [m["content"] for convs in sft.values() for c in convs for m in c["messages"]]
    leaked = evalsets.leaked_queries(records["eval/mc_new_heldout.jsonl"], training)
    if leaked:  # a template edit that made a held-out phrasing a training one: the metric would be recall again
        raise InputError(f"{len(leaked)} held-out era-B queries occur in the training files, e.g. {leaked[:2]}: keep "
                         "the 'heldout' templates of cptlib/testbed/corpora.py out of every 'train' list")
    contents = {"world.json": json.dumps(world.to_json(), ensure_ascii=False, indent=1) + "\n"}
    contents.update({name: _jsonl(recs) for name, recs in records.items()})
    (out_dir / "eval").mkdir(exist_ok=True)
    files = {}
    for name, text in contents.items():
        data = text.encode("utf-8")
        (out_dir / name).write_bytes(data)
        files[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        if name in records:
            files[name]["records"] = len(records[name])
        if name in texts:
            distinct = {w for doc in texts[name] for w in re.findall(r"[a-z]+", doc.lower())}
            files[name].update(words=sum(len(prose.words(doc)) for doc in texts[name]), distinct_words=len(distinct))
    manifest = {"seed": seed, "world": stable_dict(cfg), "files": files}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest
