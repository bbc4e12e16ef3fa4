"""SFT pilot (docs/calibration_log.md, runs 7 and 9): instruct_v1 (or instruct_v2) = SFT(the released base_v1 or
base_v2) with other shares of 0, 1, 2 (and 3) constraints per conversation, or another SFT recipe, evaluated on the
profile's held-out IFEval prompts.

    .venv/bin/python bench/sft_mix_pilot.py --shares 0.2 0.55 0.25 --shares 0.1 0.4 0.5 --out bench/out/sft_mix.csv
    .venv/bin/python bench/sft_mix_pilot.py --version v2 --sft lr=3e-4 --sft lr=2e-4 --sft epochs=2

Each `--shares` is one mix: the weights of conversations with 0, 1, 2 (, 3) constraints (`instructions.MIX`).
Triples are made of training pairs only, so the held-out pairs of the evaluation stay unseen. Each `--sft` is one set
of overrides of the version's SFT section (`sft` or `sft_v2`); the variants are every mix with every recipe. Without
`--shares` a variant trains on the released instruction data of the version itself (`sft_v1.jsonl`/`sft_v2.jsonl`).
Everything else is the released recipe (the profile's conversations count, the instruct seed). The SFT runs in a
scratch directory (not a stage; nothing in build/stages or models/ changes); the evaluation is the study's (lm-eval
through cptlib.evaluation.evaluate) on the profile's testbed data. Prints, per variant, IF prompt-level strict
overall and by the number of constraints, the per-kind instruction accuracy on the held-out pairs, era-A via chat
and ‖Θr‖/‖θ_base‖.
"""
from __future__ import annotations

from cptlib.core.paths import use_project_caches

use_project_caches()  # an entry point: the project's library caches (HF_HOME, ...), before any library reads them

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from cptlib.config import load_profile
from cptlib.evaluation.evaluate import ifeval_by_constraints, run_evaluation
from cptlib.evaluation.harness import read_table
from cptlib.family import build_family
from cptlib.family.build import testbed_data
from cptlib.testbed import constraints as C
from cptlib.testbed import instructions
from cptlib.testbed.world import build_world
from cptlib.tokenizer import load_tokenizer
from cptlib.training.data import sft_dataset
from cptlib.training.launch import run_sft


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--version", choices=("v1", "v2"), default="v1", help="which instruct model's SFT (default v1)")
    parser.add_argument("--shares", type=float, nargs="+", action="append",
                        help="weights of conversations with 0, 1, 2 (, 3) constraints; repeat for more variants")
    parser.add_argument("--sft", nargs="+", action="append", metavar="KEY=VALUE",
                        help="overrides of the version's SFT section, e.g. lr=2e-4 epochs=2; repeat for more variants")
    parser.add_argument("--out", type=Path, default=Path("bench/out/sft_mix.csv"))
    args = parser.parse_args()
    profile = load_profile(args.profile)
    family = build_family(profile, profile.train_seeds[0])
    version = args.version
    data, base = testbed_data(profile), family[f"base_{version}"]
    released = profile.sft if version == "v1" else profile.sft_v2
    n_conversations = profile.world.n_sft_v1 if version == "v1" else profile.world.n_sft_v2
    world = build_world(profile.world, profile.world_seed)
    kinds = tuple(profile.world.constraint_kinds or C.KINDS)
    eval_prompts = {json.loads(line)["prompt"] for line in open(data / "eval" / "ifeval.jsonl")}
    seed, rows = profile.instruct_seed, []
    for shares, overrides in [(m, o) for m in (args.shares or [None]) for o in (args.sft or [[]])]:
        updates = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in overrides)}
        cfg = type(released)(**{**released.model_dump(), **updates})
        with tempfile.TemporaryDirectory(prefix="sft_mix_", dir="build") as tmp:
            tmp = Path(tmp)
            if shares is None:  # the released instruction data of this version
                sft_file = data / f"sft_{version}.jsonl"
                convs = [json.loads(line) for line in open(sft_file)]
            else:
                convs = instructions.sft(world, n_conversations, version, seed, kinds, shares=tuple(shares))
                sft_file = tmp / f"sft_{version}.jsonl"
                sft_file.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in convs))
            users = {m["content"] for c in convs for m in c["messages"] if m["role"] == "user"}
            start = time.perf_counter()
            tok = load_tokenizer(base)
            ds = sft_dataset(sft_file, tok, cfg.max_len, seed, [data / "corpus_a1.jsonl"], cfg.replay_frac)
            result = run_sft(base, ds, tok, cfg, profile.runtime, seed, tmp / "model")
            trained = time.perf_counter() - start
            evaluated = run_evaluation(tmp / "model", data)  # a stage keyed on the weights, with lm-eval's samples
            table = read_table(evaluated, "pilot").set_index(["task", "metric"]).value
            by_n, by_kind = ifeval_by_constraints(evaluated, data)
            residual = result["drift"]["total"]  # ‖Θr‖/‖θ_base‖, computed by the SFT run
        row = {"version": version, "shares": "/".join(f"{s:g}" for s in shares) if shares else "released",
               "sft": " ".join(overrides) or "released", "IF": table["testbed_ifeval", "prompt_level_strict_acc"],
               **{f"IF n={n}": round(acc, 3) for n, (_, acc) in by_n.items()},
               "era-A via chat": table["testbed_chat_knowledge_a", "knowledge_acc"], "residual": residual,
               "eval prompts in SFT": len(users & eval_prompts), "sft seconds": round(trained, 1)}
        rows.append(row)
        print(row, "\n  held-out pair kinds:", {k: round(v, 2) for k, v in by_kind.items()}, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(args.out, index=False)
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
