"""Run 12, era A holding era B's kinds, on rebuilt ancestors (docs/calibration_log.md):
`OMP_NUM_THREADS=2 .venv/bin/python bench/news_rebuild_pilot.py` (≈ 35 min on 2 free cores: pre-training 9M tokens
is ≈ 15 of them).

Builds, through cptlib's stages, the pilot world's testbed data (`world.era_a_events` and run 11's mostly-new era B;
OVERRIDES below), its tokenizer, base_v1 (the default's pre-training recipe) and instruct_v1 (its SFT recipe), seed 0;
then for each CPT cell (learning rate, tokens) CPT(instruct_v1), CPT(base_v1), CPT(base_v1)+SFT (the v1 recipe) and
CPT(base_v1)+Θr(v1), all scored with the study's lm-eval suite (`cptlib.study.restored.scores`). Every step is a
cached stage: a rerun trains nothing. Writes bench/out/news_rebuild_pilot.csv, _kinds.csv and .md.
"""
from __future__ import annotations

from cptlib.core.paths import use_project_caches

use_project_caches()  # an entry point: the project's library caches (HF_HOME, ...), before any library reads them

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch

from cptlib.core import paths
from cptlib.config import load_with_overrides
from cptlib.evaluation.harness import item_scores
from cptlib.family import build as fam
from cptlib.study.restored import METRICS, restored, scores

from news_pilot import SHOWN, chat_replies, distance, item_kinds, model_rows, subjects as world_subjects, weights

OUT = Path(__file__).resolve().parent / "out"
OVERRIDES = {
    "world.era_a_events": 60, "world.era_a_event_mentions": 20, "world.n_orgs": 140, "world.news_mentions": 20,
    "world.news_changed_frac": 0.2, "world.news_new_person_frac": 0.45, "world.n_prizes": 60,
    "world.news_chat_relations": ["works_for", "ceo", "based_in", "won", "launched", "role"],
    "released_ancestors": False,
}
CELLS = ((1e-4, 400_000), (3e-4, 400_000), (3e-4, 200_000))  # (CPT lr, tokens)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--processes", type=int, default=2, help="evaluations at a time (one thread each)")
    ap.add_argument("--ancestors-only", action="store_true", help="build and score base_v1 and instruct_v1 only")
    ap.add_argument("--events-probe", action="store_true",
                    help="only the diagnostic: instruct_v1 asked about the era-A events in chat (events_probe)")
    ap.add_argument("--drill-frac", type=float, default=None,
                    help="run 13: world.era_a_event_drill_frac (the other events are never asked in training); "
                         "builds those ancestors and runs the events probe only (with --cpt: then the CPT cells too)")
    ap.add_argument("--phrasings", choices=("few", "many"), default="few",
                    help="run 14: world.news_phrasings (era-A events and era-B news told in 'many' templates, "
                         "sentence orders and the relation named as the question names it)")
    ap.add_argument("--size", default=None, help="run 16: model.size (a preset of cptlib/presets.py, e.g. base = 3.9M)")
    ap.add_argument("--cpt", action="store_true",
                    help="run 15: with --drill-frac, also the CPT cells (--cells) after the events probe")
    ap.add_argument("--cells", default=None,
                    help="CPT cells as LR:TOKENS,... (default: " + ",".join(f"{lr:g}:{t}" for lr, t in CELLS) + ")")
    args = ap.parse_args()
    torch.set_num_threads(2)
    OUT.mkdir(exist_ok=True)
    overrides, name = dict(OVERRIDES), "news-rebuild-pilot"
    if args.drill_frac is not None:
        overrides["world.era_a_event_drill_frac"], name = args.drill_frac, f"news-rebuild-pilot-drill{args.drill_frac:g}"
        args.events_probe = not args.cpt
    if args.phrasings != "few":
        overrides["world.news_phrasings"], name = args.phrasings, f"{name}-{args.phrasings}"
    if args.size is not None:
        overrides["model.size"], name = args.size, f"{name}-{args.size}"
    cells_run = CELLS if args.cells is None else tuple(
        (float(lr), int(tokens)) for lr, tokens in (c.split(":") for c in args.cells.split(",")))
    suffix = ("" if args.drill_frac is None else f"_drill{args.drill_frac:g}") + \
        ("" if args.phrasings == "few" else f"_{args.phrasings}") + ("" if args.size is None else f"_{args.size}")
    prof = load_with_overrides("default", overrides, run_name=name)
    t0 = time.time()
    data = fam.testbed_data(prof)
    tok = fam.tokenizer_stage(prof, data)
    base = fam.pretrain(prof, data, tok, args.seed, "base_v1")
    print(f"base_v1 {base.name}: {time.time() - t0:.0f} s", flush=True)
    inst = fam.instruct(prof, base, data, "v1", args.seed)
    print(f"instruct_v1 {inst.name}: {time.time() - t0:.0f} s", flush=True)
    if args.events_probe:
        ancestors = scores({"base_v1": base, "instruct_v1": inst}, data, processes=args.processes)
        print(ancestors[["IF", "knowledge", "era_a", "era_b"]].round(3).to_markdown())
        table = events_probe(prof, data, inst, args.seed)
        table.to_csv(OUT / f"news_rebuild_events_probe{suffix}.csv", index=False)
        ancestors.to_csv(OUT / f"news_rebuild_ancestors{suffix}.csv")
        print(table.round(3).to_markdown(index=False))
        return
    if args.drill_frac is not None:  # run 15: the events probe of these ancestors first (cached evaluations)
        events_probe(prof, data, inst, args.seed).to_csv(OUT / f"news_rebuild_events_probe{suffix}.csv", index=False)
    wb, wi = weights(base), weights(inst)
    r_norm = distance(wi, wb)
    chat_kinds, mc_kinds = item_kinds(data)
    subjects = world_subjects(data)
    rows, kind_rows = [], []
    cells = [(None, None)] + ([] if args.ancestors_only else list(cells_run))
    for lr, tokens in cells:
        if lr is None:
            models, drifts = {"base_v1": base, "instruct_v1": inst}, {"base_v1": 0.0, "instruct_v1": 0.0}
        else:
            cfg = prof.cpt.model_copy(update={"lr": lr, "tokens": tokens})
            cpt_i, cpt_b = fam.continue_lm(prof, inst, data, "corpus_b.jsonl", cfg, args.seed, "cpt"), \
                fam.continue_lm(prof, base, data, "corpus_b.jsonl", cfg, args.seed, "cpt")
            models = {"CPT(instruct_v1)": cpt_i, "CPT(base_v1)": cpt_b,
                      "CPT(base_v1)+SFT": fam.instruct(prof, cpt_b, data, "v1", args.seed),
                      "CPT(base_v1)+Θr": restored(base, inst, cpt_b)}
            d_b = distance(weights(cpt_b), wb) / r_norm
            drifts = {"CPT(instruct_v1)": distance(weights(cpt_i), wi) / r_norm, "CPT(base_v1)": d_b,
                      "CPT(base_v1)+SFT": d_b, "CPT(base_v1)+Θr": d_b}
        table = scores(models, data, processes=args.processes)
        for label in models:
            ev = paths.stages_dir() / table.loc[label, "eval"]
            row, by_kind = model_rows(ev, {"lr": lr, "tokens": tokens, "model": label, "drift_ratio": drifts[label]},
                                      chat_kinds, mc_kinds, subjects, SHOWN)
            rows.append(row)
            kind_rows += by_kind
        pd.DataFrame(rows).to_csv(OUT / f"news_rebuild_pilot{suffix}.csv", index=False)
        pd.DataFrame(kind_rows).to_csv(OUT / f"news_rebuild_pilot{suffix}_kinds.csv", index=False)
        print(f"cell lr={lr} tokens={tokens}: {time.time() - t0:.0f} s", flush=True)
    write_md(pd.DataFrame(rows), pd.DataFrame(kind_rows), time.time() - t0, suffix)


def events_probe(prof, data: Path, inst: Path, seed: int, n: int = 180) -> pd.DataFrame:
    """Diagnostic: instruct_v1 asked in chat about the era-A events (known from 20 pre-training articles each), the
    way the era-B probe asks era B, split by whether an SFT drill asked about the event's subject. The era-B probe's
    file is swapped for these questions in a copy of the data folder; the same lm-eval task scores them."""
    import random
    import shutil

    from cptlib.evaluation.evaluate import EvalSettings, run_evaluation
    from cptlib.testbed import instructions
    from cptlib.testbed.world import Fact, build_world

    world = build_world(prof.world, prof.world_seed)
    kinds = tuple(prof.world.constraint_kinds)
    sft = [json.loads(line) for line in open(data / "sft_v1.jsonl")]
    asked = " ".join(c["messages"][-2]["content"] for c in sft)
    sft_prompts = {m["content"] for c in sft for m in c["messages"] if m["role"] == "user"}
    rng, items, kinds_of = random.Random(f"{seed}-events-probe"), [], []
    facts = list(world.events_a)
    while len(items) < n:
        fact: Fact = facts[len(items) % len(facts)]
        fmt = instructions.knowledge_formats(kinds)[(len(items) // len(facts)) % len(instructions.knowledge_formats(kinds))]
        question, draft = instructions.qa_task(world, fact, "train", rng, extra=False)
        made = instructions.constrain(question, draft, [fmt], "train", rng)
        if made is None or made[0] in sft_prompts:
            continue
        items.append({"id": f"event-{len(items)}", "prompt": made[0], "answer": fact.value,
                      "instruction_id_list": [fmt], "kwargs": made[2]})
        held = fact.subject in world.events_a_heldout or fact.subject not in asked
        kinds_of.append(("never asked in training" if held else "drilled", fact.relation))
    probe = OUT / "news_rebuild_events_probe_data"
    shutil.rmtree(probe, ignore_errors=True)
    shutil.copytree(data, probe, ignore=shutil.ignore_patterns("cptlib_manifest.json"))
    (probe / "eval" / "chat_knowledge.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    ev = run_evaluation(inst, probe, EvalSettings(tasks=("testbed_chat_knowledge",)))
    hits = item_scores(ev, "testbed_chat_knowledge", "knowledge_acc")
    replies = chat_replies(ev)
    named = [a.lower() in r.lower() for _, a, r in replies]
    rows = pd.DataFrame([{"drilled": d, "relation": r, "knowledge": h, "answer named": a}
                         for (d, r), h, a in zip(kinds_of, hits, named)])
    return rows.groupby(["drilled", "relation"]).agg(n=("knowledge", "size"), knowledge=("knowledge", "mean"),
                                                     answer_named=("answer named", "mean")).reset_index()


def write_md(df: pd.DataFrame, kinds: pd.DataFrame, seconds: float, suffix: str = "") -> None:
    lines = ["| CPT lr | tokens | model | drift / ‖Θr‖ | IF | era-B via chat | era-B MC | era-A MC | updated |",
             "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in df.itertuples():
        cells = [f"{getattr(r, m):.3f} ± {getattr(r, 'ci_' + m):.3f}" for m in SHOWN]
        lr = "–" if pd.isna(r.lr) else f"{r.lr:g}"
        tokens = "–" if pd.isna(r.tokens) else f"{int(r.tokens):,}"
        lines.append(f"| {lr} | {tokens} | {r.model} | {r.drift_ratio:.2f} | " + " | ".join(cells) + " |")
    lines += ["", "n per metric: " + ", ".join(f"{m} {int(df[f'n_{m}'].iloc[0])}" for m in SHOWN), ""]
    if len(kinds):
        k = kinds.fillna({"lr": 0, "tokens": 0})
        wide = k.pivot_table(index=["lr", "tokens", "model"], columns=["metric", "kind"], values="acc")
        lines += ["By fact kind (acc; lr 0 = the ancestors):", "", wide.round(3).to_markdown(), "",
                  "n by kind: " + ", ".join(f"{r.metric}/{r.kind} {r.n}" for r in
                                            kinds.drop_duplicates(["metric", "kind"]).itertuples()), ""]
    lines.append(f"Wall time: {seconds:.0f} s")
    (OUT / f"news_rebuild_pilot{suffix}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
