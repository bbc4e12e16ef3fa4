"""Run 10, era-B chat answers (new/old/other value) and held-out-phrasing MC: `.venv/bin/python bench/news_diagnosis.py`."""
from __future__ import annotations

from cptlib.core.paths import use_project_caches

use_project_caches()  # an entry point: the project's library caches (HF_HOME, ...), before any library reads them

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import pandas as pd

from cptlib.core import stages
from cptlib.config import load_profile
from cptlib.evaluation.evaluate import TASKS_DIR, EvalSettings, evaluation_spec, group_spec
from cptlib.evaluation.harness import item_scores, load_hflm, task_manager, torch_threads
from cptlib.evaluation.tasks.testbed.utils import answer_present
from cptlib.family import resolve as fam
from cptlib.study.experiments import families
from cptlib.study.labels import CPT_B, CPT_I, REST, SFT
from cptlib.study.restored import STUDY_TASKS, restored, result_settings
from cptlib.testbed import constraints as C
from cptlib.testbed import evalsets, instructions
from cptlib.testbed.world import VALUE_TYPE, build_world

OUT = Path(__file__).resolve().parent / "out"
CHAT_MODELS = ("instruct_v1", CPT_I, SFT, REST, CPT_B)  # instruct_v1: the ancestor, the old-value reference
KIND = {"changed": "changed", "new_entity": "new person", "new_fact": "new fact"}
TRAINING_FILES = ("corpus_a1.jsonl", "corpus_a2.jsonl", "corpus_b.jsonl", "sft_v1.jsonl", "sft_v2.jsonl")


def recipe_models(profile) -> tuple[Path, dict[tuple[int, str], tuple[Path, Path]]]:
    """(data dir, {(seed, recipe): (model dir, finished evaluation dir)}), resolved as experiments.recipes does,
    inside stages.probe(): an unfinished stage raises instead of training."""
    out = {}
    with stages.probe():
        for seed, f in families(profile).items():
            cpt_b = fam.cpt(profile, f["base_v1"], seed)
            models = {"base_v1": f["base_v1"], "instruct_v1": f["instruct_v1"], CPT_B: cpt_b,
                      CPT_I: fam.cpt(profile, f["instruct_v1"], seed),
                      SFT: fam.instruct(profile, cpt_b, f["data"], "v1", seed),
                      REST: restored(f["base_v1"], f["instruct_v1"], cpt_b)}
            for recipe, path in models.items():
                wanted = EvalSettings(tasks=STUDY_TASKS)
                settings = result_settings(path, f["data"], wanted)
                ev = stages.stage_dir("eval", evaluation_spec(path, f["data"], settings))
                assert stages.is_finished(ev), f"{recipe} seed {seed}: not evaluated; run `make reproduce` first"
                out[seed, recipe] = (path, ev)
    return f["data"], out


def chat_items(world, profile, data: Path) -> list[dict]:
    """eval/chat_knowledge.jsonl, each item with the era-B fact it asks about: the generator is re-run with its
    qa_task/constrain observed (prompt -> fact), and must give the file's items exactly."""
    seen, last = {}, {}
    qa, constrain = evalsets.qa_task, evalsets.constrain

    def qa_spy(w, fact, *a, **k):
        last["fact"] = fact
        return qa(w, fact, *a, **k)

    def constrain_spy(*a, **k):
        made = constrain(*a, **k)
        if made is not None:
            seen.setdefault(made[0], last["fact"])
        return made

    evalsets.qa_task, evalsets.constrain = qa_spy, constrain_spy
    try:
        kinds = tuple(profile.world.constraint_kinds or C.KINDS)
        items = [r for r, _ in evalsets.knowledge_items(world, profile.world.n_eval_knowledge, profile.world_seed, kinds)]
    finally:
        evalsets.qa_task, evalsets.constrain = qa, constrain
    on_disk = [json.loads(line) for line in open(data / "eval" / "chat_knowledge.jsonl")]
    assert items == on_disk, "the generator's chat items differ from eval/chat_knowledge.jsonl"
    out = []
    for item in items:
        fact = seen[item["prompt"]]
        assert fact.value == item["answer"] and fact.era == "B"
        wording = next(t for t in instructions.QUESTIONS[fact.relation]["train"]
                       if t.format(s=fact.subject) in item["prompt"])
        out.append({**item, "fact": fact, "wording": wording, "format": item["instruction_id_list"][0]})
    return out


def classify(response: str, fact, names: list[str]) -> str:
    """new / old / both (era-B and era-A value) / other value (another name of the asked type) / no value."""
    new = answer_present(fact.value, response)
    old = bool(fact.old_value) and answer_present(fact.old_value, response)
    if new or old:
        return "both" if new and old else "new" if new else "old"
    lower = response.lower()
    hit = any(n.lower() in lower and answer_present(n, response) for n in names)
    return "other value" if hit else "no value"


def chat_table(items, world, runs: dict) -> pd.DataFrame:
    """One row per (model, seed, item): what the answer names, and the task's own scores."""
    pool = {t: world.entities.get(t, []) + world.new_entities.get(t, []) for t in ("person", "org", "city")}
    rows = []
    for (seed, recipe), (_, ev) in runs.items():
        if recipe not in CHAT_MODELS:
            continue
        samples = [json.loads(line) for line in open(ev / "testbed_chat.samples.jsonl")]
        samples = sorted((s for s in samples if s["task"] == "testbed_chat_knowledge"), key=lambda s: s["doc_id"])
        assert len(samples) == len(items), f"{ev}: {len(samples)} chat-knowledge samples, {len(items)} items"
        for item, s in zip(items, samples):
            assert s["doc"]["prompt"] == item["prompt"], f"{ev}: item {s['doc_id']} is not the file's"
            response = s["filtered_resps"][0] if isinstance(s["filtered_resps"][0], str) else s["filtered_resps"][0][0]
            fact = item["fact"]
            rows.append({"model": recipe, "seed": seed, "kind": f"{KIND[fact.kind]}: {fact.relation}",
                         "wording": item["wording"], "format": item["format"],
                         "answer": classify(response, fact, pool[VALUE_TYPE[fact.relation]]),
                         # Whether the reply is about the asked subject at all (a person: full name or surname).
                         "names subject": float(answer_present(fact.subject, response)
                                                or answer_present(fact.subject.split()[-1], response)),
                         **{m: float(s[m]) for m in ("answer_acc", "format_acc", "knowledge_acc")}})
    return pd.DataFrame(rows)


def mc_items(make, *args) -> tuple[list[dict], list]:
    """A multiple-choice generator's items and the fact behind each (its `_mc` calls observed)."""
    facts, mc = [], evalsets._mc
    evalsets._mc = lambda item_id, query, world, fact, *a: facts.append(fact) or mc(item_id, query, world, fact, *a)
    try:
        return make(*args), facts
    finally:
        evalsets._mc = mc


def heldout_mc(world, profile, data: Path, out_dir: Path) -> dict[str, list]:
    """eval/mc_new.jsonl (the news) and eval/mc_old.jsonl (era-A facts: the control) with each query in a held-out
    phrasing (same choices and gold), after checking that no training file holds any held-out query in any case
    (era B: without its dateline too). Returns {task: facts, in item order}."""
    docs = (json.loads(line) for name in TRAINING_FILES for line in open(data / name))
    text = "\n".join(d["text"] if "text" in d else "\n".join(m["content"] for m in d["messages"]) for d in docs).lower()
    stem = lambda q: q.split(" — ", 1)[-1].lower()  # noqa: E731  (the query without its dateline, any case)
    (out_dir / "eval").mkdir(parents=True, exist_ok=True)
    out = {}
    for task, make, args in (("testbed_mc_new", evalsets.mc_new, (world, profile.world_seed)),
                             ("testbed_mc_old", evalsets.mc_old, (world, profile.world.n_eval_mc_old, profile.world_seed))):
        name = task.replace("testbed_", "") + ".jsonl"
        items, facts = mc_items(make, *args)
        assert items == [json.loads(line) for line in open(data / "eval" / name)], f"{name} differs from the generator's"
        held = [{**item, "query": evalsets.heldout_query(f)} for item, f in zip(items, facts)]
        leaked = evalsets.leaked_queries(held, [text])
        assert not leaked, f"held-out queries found in training files: {leaked[:3]}"
        # The templates' own words, subject left out ("took home the"): how often training text has them at all.
        words = Counter(part.strip() for h, f in zip(held, facts) for part in stem(h["query"]).split(f.subject.lower())
                        if part.strip())
        print(f"{name}: 0 of {len(held)} held-out queries occur in {', '.join(TRAINING_FILES)} (any case; the "
              f"training phrasing: {sum(stem(i['query']) in text for i in items)} of {len(items)}); their words "
              "without the subject, occurrences there: " + ", ".join(f"'{w}' {text.count(w)}" for w in words))
        (out_dir / "eval" / name).write_text("".join(json.dumps(h, ensure_ascii=False) + "\n" for h in held))
        out[task] = facts
    return out


def mc_scores(model: Path, data: Path) -> dict[str, list[float]]:
    """{task: per-item accuracy} of lm-eval's testbed_mc_new and testbed_mc_old tasks on the files in `data`, run as
    cptlib.evaluation runs them (the same HFLM and task YAMLs, one thread), without caching a stage."""
    from lm_eval import simple_evaluate
    import torch

    with torch_threads(1), torch.inference_mode():
        lm = load_hflm(model, EvalSettings(threads=1), testbed=True)
        res = simple_evaluate(model=lm, tasks=[group_spec("testbed_plain", data, ("testbed_mc_new", "testbed_mc_old"))],
                              task_manager=task_manager(TASKS_DIR), apply_chat_template=False, log_samples=True)
    return {t: [float(s["acc"]) for s in sorted(res["samples"][t], key=lambda s: s["doc_id"])]
            for t in ("testbed_mc_new", "testbed_mc_old")}


def summarize(df: pd.DataFrame, by: list[str], cols: list[str]) -> pd.DataFrame:
    g = df.groupby(by, sort=False)
    return pd.concat([g.size().rename("n"), g[cols].mean().round(3)], axis=1).reset_index()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--profile", default="default", help="the profile whose finished `make reproduce` is read")
    ap.add_argument("--mc-models", nargs="*", default=["base_v1", CPT_B, REST],
                    help="recipes scored on the held-out MC (each seed; base_v1 and instruct_v1 once)")
    ap.add_argument("--out", type=Path, default=OUT, help="folder for news_diagnosis{,_mc}.csv and news_diagnosis.md")
    args = ap.parse_args()
    profile = load_profile(args.profile)
    data, runs = recipe_models(profile)
    world = build_world(profile.world, profile.world_seed)
    assert world.to_json() == json.loads((data / "world.json").read_text()), "world.json is not this profile's world"
    args.out.mkdir(parents=True, exist_ok=True)
    # The ancestors are shared by every seed: one evaluation each.
    runs = {k: v for k, v in runs.items() if k[1] not in ("base_v1", "instruct_v1") or k[0] == min(profile.train_seeds)}

    items = chat_items(world, profile, data)
    chat = chat_table(items, world, runs)
    chat = pd.concat([chat, pd.get_dummies(chat.answer).astype(float)], axis=1)
    answers = [a for a in ("new", "old", "both", "other value", "no value") if a in chat]
    cols = answers + ["names subject", "answer_acc", "format_acc", "knowledge_acc"]
    tables = [summarize(chat.assign(cell="all"), ["model", "cell"], cols).assign(split="all")]
    for split in ("kind", "wording", "format"):
        tables.append(summarize(chat.rename(columns={split: "cell"}), ["model", "cell"], cols).assign(split=split))
    chat_out = pd.concat(tables)[["split", "cell", "model", "n", *cols]]
    chat_out.to_csv(args.out / "news_diagnosis.csv", index=False)
    print(f"formats of the era-B chat questions: {dict(Counter(i['format'] for i in items))}")

    held_dir = args.out / "news_mc_heldout"
    facts = heldout_mc(world, profile, data, held_dir)
    changed = [f for f in world.era("B") if f.kind == "changed"]  # mc_updated's items, in its order (checked below)
    assert [[" " + f.value, " " + f.old_value] for f in changed] == [
        json.loads(line)["choices"] for line in open(data / "eval" / "mc_updated.jsonl")], "mc_updated is not its facts"
    mc_new = [json.loads(line) for line in open(data / "eval" / "mc_new.jsonl")]
    old_shown = sum(f.kind == "changed" and " " + f.old_value in item["choices"]
                    for f, item in zip(facts["testbed_mc_new"], mc_new))
    print(f"changed facts whose era-A value is one of mc_new's 4 choices: {old_shown} of {len(changed)}")
    cells = {"testbed_mc_new": [(KIND[f.kind], f.relation) for f in facts["testbed_mc_new"]],
             "testbed_mc_old": [("era A (control)", f.relation) for f in facts["testbed_mc_old"]],
             "testbed_mc_updated": [("changed: new vs old (2-way)", f.relation) for f in changed]}
    mc, started = [], time.time()
    for (seed, recipe), (model, ev) in runs.items():
        if recipe not in args.mc_models:
            continue
        held = mc_scores(model, held_dir)
        for task, cell in cells.items():
            # The training phrasing: the study's own evaluation. mc_updated (the change as a two-way choice, era-B
            # value against the era-A one it replaced, the study's `updated`) has no held-out variant.
            variants = {"training phrasing": item_scores(ev, task, "acc"), "held-out phrasing": held.get(task)}
            for variant, accs in variants.items():
                mc += [{"model": recipe, "seed": seed, "variant": variant, "kind": k, "relation": r, "acc": a}
                       for (k, r), a in zip(cell, accs or [])]
        print(f"{recipe} seed {seed}: scored ({time.time() - started:.0f} s)")
    # lm-eval through this path must reproduce the study's evaluation on the training phrasing (first model).
    (seed, recipe), (model, ev) = next((k, v) for k, v in runs.items() if k[1] in args.mc_models)
    assert mc_scores(model, data) == {t: item_scores(ev, t, "acc") for t in held}, "rescoring differs from the study's"
    mc = pd.DataFrame(mc)
    news = mc[mc.kind.isin(KIND.values())]
    mc_out = pd.concat([summarize(news.assign(kind="era B, all"), ["model", "variant", "kind"], ["acc"]),
                        summarize(mc, ["model", "variant", "kind"], ["acc"]),
                        summarize(news[news.model.isin([CPT_B, REST])].assign(kind="era B, all"),
                                  ["model", "variant", "kind", "seed"], ["acc"]),
                        summarize(mc, ["model", "variant", "kind", "relation"], ["acc"])])
    mc_out.to_csv(args.out / "news_diagnosis_mc.csv", index=False)

    md = ["## era-B chat answers (pooled over seeds; n = items × seeds)", "", chat_out.to_markdown(index=False), "",
          "## era-B multiple choice, training vs held-out phrasing", "", mc_out.to_markdown(index=False), ""]
    (args.out / "news_diagnosis.md").write_text("\n".join(md))
    pd.set_option("display.width", 200)
    print(chat_out[chat_out.split.isin(["all", "kind"])].to_string(index=False))
    print(mc_out.to_string(index=False))
    print(f"wrote news_diagnosis.csv, news_diagnosis_mc.csv and news_diagnosis.md in {args.out}")


if __name__ == "__main__":
    main()
