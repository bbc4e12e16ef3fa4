"""Run 11, era B as real news on the released ancestors (docs/calibration_log.md): `OMP_NUM_THREADS=2 .venv/bin/python bench/news_pilot.py`.

For each variant of era B (world overrides of the default profile: `control` = today's, `new` = mostly new content,
`new+phrasings` = that told in several phrasings) and each CPT learning rate (the default recipe's, and --lrs), the
variant's testbed data are built through cptlib's stages, the released base_v1 / instruct_v1 (resolved and verified
under the default profile: the variant must not change an era-A fact, asserted on world.json) are CPT'd on the
variant's news (seed 0), and CPT(instruct_v1), CPT(base_v1), CPT(base_v1)+Θr(v1) and instruct_v1 are scored with the
study's lm-eval suite (`cptlib.study.restored.scores`). Everything is a cached stage: a rerun does no training.
Writes bench/out/news_pilot.csv (one row per variant × lr × model), news_pilot_kinds.csv (chat and MC by fact kind)
and news_pilot.md (the tables of run 11). `--variants new --lrs 3e-4` runs a part.
"""
from __future__ import annotations

from cptlib.core.paths import use_project_caches

use_project_caches()  # an entry point: the project's library caches (HF_HOME, ...), before any library reads them

import argparse
import json
import math
import time
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file

from cptlib.core import paths
from cptlib.config import load_profile, load_with_overrides
from cptlib.evaluation.harness import item_scores
from cptlib.family import resolve as fam
from cptlib.study.restored import METRICS, restored, scores

OUT = Path(__file__).resolve().parent / "out"
NEW = {"world.news_changed_frac": 0.2, "world.news_new_person_frac": 0.45, "world.n_prizes": 60,
       "world.news_chat_relations": ["works_for", "ceo", "based_in", "won", "launched"]}
VARIANTS = {"control": {}, "new": NEW, "new+phrasings": {**NEW, "world.news_phrasings": "many"}}
KIND = {"changed": "changed", "new_entity": "new person", "new_fact": "new fact"}
SHOWN = ("IF", "knowledge", "era_b", "era_a", "updated")


def norm(state: dict) -> float:
    return math.sqrt(sum(float((t.double() ** 2).sum()) for t in state.values()))


def weights(model: Path) -> dict:
    return load_file(str(Path(model) / "model.safetensors"))


def distance(a: dict, b: dict) -> float:
    return math.sqrt(sum(float(((a[k].double() - b[k].double()) ** 2).sum()) for k in a))


def era_a_of(data: Path) -> tuple:
    w = json.loads((data / "world.json").read_text())
    return w["entities"], [f for f in w["facts"] if f["era"] == "A"]


def item_kinds(data: Path) -> tuple[list[str], list[str]]:
    """(kind of each chat-knowledge item, kind of each mc_new item), from world.json: mc_new asks every era-B fact
    in order; a chat item's fact is the era-B fact with its answer whose subject the prompt names."""
    facts = [f for f in json.loads((data / "world.json").read_text())["facts"] if f["era"] == "B"]
    chat = []
    for line in open(data / "eval" / "chat_knowledge.jsonl"):
        item = json.loads(line)
        hits = {KIND[f["kind"]] for f in facts if f["value"] == item["answer"] and f["subject"] in item["prompt"]}
        assert len(hits) == 1, item
        chat.append(hits.pop())
    return chat, [KIND[f["kind"]] for f in facts]


def chat_replies(ev: Path) -> list[tuple[str, str, str]]:
    """(prompt, gold answer, reply) of each chat-knowledge item of a finished evaluation, by doc_id."""
    recs = [json.loads(line) for line in open(ev / "testbed_chat.samples.jsonl")]
    recs = sorted((r for r in recs if r["task"] == "testbed_chat_knowledge"), key=lambda r: r["doc_id"])
    return [(r["doc"]["prompt"], r["doc"]["answer"], r["resps"][0][0]) for r in recs]


def names_subject(prompt: str, reply: str, subjects: list[str]) -> bool:
    """The reply names the subject the prompt asks about (in full, or a person by surname)."""
    subject = max((s for s in subjects if s in prompt), key=len)
    return subject in reply or (" " in subject and subject.split(" ", 1)[1] in reply)


def se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-12) / n)


def subjects(data: Path) -> list[str]:
    return sorted({f["subject"] for f in json.loads((data / "world.json").read_text())["facts"]})


def model_rows(ev: Path, key: dict, chat_kinds: list[str], mc_kinds: list[str], names: list[str],
               shown=SHOWN) -> tuple[dict, list[dict]]:
    """One model's evaluation `ev` as (row: `key` plus each shown metric's mean, n and ±1.96 binomial SE; rows by
    fact kind: era-B via chat and MC, and whether a chat reply names the answer and the subject asked)."""
    row, kind_rows = dict(key), []
    key = {k: v for k, v in key.items() if k != "drift_ratio"}  # the kind rows name the model, not its drift
    for m in shown:
        task, metric = METRICS[m]
        items = item_scores(ev, task, metric)
        row[m], row[f"n_{m}"] = sum(items) / len(items), len(items)
        row[f"ci_{m}"] = 1.96 * se(row[m], len(items))
        if m in ("knowledge", "era_b"):
            for kind in KIND.values():
                sel = [s for s, k in zip(items, chat_kinds if m == "knowledge" else mc_kinds) if k == kind]
                if sel:
                    kind_rows.append({**key, "metric": m, "kind": kind, "n": len(sel), "acc": sum(sel) / len(sel)})
    # Beyond the metric: is the answer anywhere in the reply, and is the reply about the subject asked?
    replies = chat_replies(ev)
    for what, hits in (("answer named", [a.lower() in r.lower() for _, a, r in replies]),
                       ("subject named", [names_subject(p, r, names) for p, _, r in replies])):
        for kind in KIND.values():
            sel = [h for h, k in zip(hits, chat_kinds) if k == kind]
            if sel:
                kind_rows.append({**key, "metric": what, "kind": kind, "n": len(sel), "acc": sum(sel) / len(sel)})
    return row, kind_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--lrs", nargs="+", type=float, default=[3e-4, 1e-4], help="CPT learning rates besides the default's")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--processes", type=int, default=2, help="evaluations at a time (one thread each)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    OUT.mkdir(exist_ok=True)
    default = load_profile("default")
    family = fam.build_family(default, args.seed, other_family=False)  # verified against the default's data
    base, inst = family["base_v1"], family["instruct_v1"]
    wb, wi = weights(base), weights(inst)
    r_norm = distance(wi, wb)
    era_a = era_a_of(family["data"])
    rows, kind_rows, timing = [], [], {}
    for name in args.variants:
        t0 = time.time()
        prof = load_with_overrides("default", VARIANTS[name]) if VARIANTS[name] else default
        data = fam.testbed_data(prof)
        if era_a_of(data) != era_a:
            raise SystemExit(f"variant {name!r} changes era-A entities or facts: the ancestors did not learn it")
        chat_kinds, mc_kinds = item_kinds(data)
        for lr in [default.cpt.lr, *args.lrs]:
            cfg = default.cpt.model_copy(update={"lr": lr})
            cpt_i = fam.cpt(prof, inst, args.seed, cfg)
            cpt_b = fam.cpt(prof, base, args.seed, cfg)
            models = {"instruct_v1": inst, "CPT(instruct_v1)": cpt_i, "CPT(base_v1)": cpt_b,
                      "CPT(base_v1)+Θr": restored(base, inst, cpt_b)}
            table = scores(models, data, processes=args.processes)
            drifts = {"instruct_v1": 0.0, "CPT(instruct_v1)": distance(weights(cpt_i), wi) / r_norm,
                      "CPT(base_v1)": distance(weights(cpt_b), wb) / r_norm}
            drifts["CPT(base_v1)+Θr"] = drifts["CPT(base_v1)"]
            for label in models:
                ev = paths.stages_dir() / table.loc[label, "eval"]
                row, by_kind = model_rows(ev, {"variant": name, "lr": lr, "model": label, "drift_ratio": drifts[label]},
                                          chat_kinds, mc_kinds, subjects(data))
                rows.append(row)
                kind_rows += by_kind
            pd.DataFrame(rows).to_csv(OUT / "news_pilot.csv", index=False)
            pd.DataFrame(kind_rows).to_csv(OUT / "news_pilot_kinds.csv", index=False)
        timing[name] = time.time() - t0
        print(f"{name}: {timing[name]:.0f} s", flush=True)
    write_md(pd.DataFrame(rows), pd.DataFrame(kind_rows), timing)


def write_md(df: pd.DataFrame, kinds: pd.DataFrame, timing: dict) -> None:
    lines = ["| variant | CPT lr | model | drift / ‖Θr‖ | IF | era-B via chat | era-B MC | era-A MC | updated |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in df.itertuples():
        cells = [f"{getattr(r, m):.3f} ± {getattr(r, 'ci_' + m):.3f}" for m in SHOWN]
        lines.append(f"| {r.variant} | {r.lr:g} | {r.model} | {r.drift_ratio:.2f} | " + " | ".join(cells) + " |")
    n = df.drop_duplicates("variant").set_index("variant")[[f"n_{m}" for m in SHOWN]]
    lines += ["", "n per metric:", "", n.to_markdown(), ""]
    if len(kinds):
        wide = kinds.pivot_table(index=["variant", "lr", "model"], columns=["metric", "kind"], values="acc")
        lines += ["By fact kind (acc):", "", wide.round(3).to_markdown(), "",
                  "n by kind:", "", kinds.drop_duplicates(["variant", "metric", "kind"])
                  .pivot_table(index="variant", columns=["metric", "kind"], values="n").to_markdown(), ""]
    lines.append("Wall time per variant (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timing.items()))
    (OUT / "news_pilot.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
