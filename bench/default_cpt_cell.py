"""Run 17's rule for the default CPT cell (docs/calibration_log.md), from drift alone:

    OMP_NUM_THREADS=1 .venv/bin/python bench/default_cpt_cell.py docs/calibration/run17.yaml

CPT(base_v1) of the first training seed at every N4 learning rate, to the final budget with its milestones (the N4
grid's cells); each cell's drift ratio ‖θ_cpt − θ_base‖/‖Θr‖ (weights only: nothing is evaluated). The default is
the eligible cell (drift ratio ≤ 0.50, pre-training / CPT tokens ≥ 40) with the largest drift ratio; none eligible:
the smallest-drift cell. Writes bench/out/run17/cpt_cell.csv and prints the table and the choice.
"""
from __future__ import annotations

from cptlib.core.paths import use_project_caches

use_project_caches()

import argparse
from pathlib import Path

import pandas as pd
import torch

from cptlib.config import load_profile, n4_cpt
from cptlib.core.stages import read_manifest
from cptlib.family import build as fam
from cptlib.study.experiments import instruct_drift
from cptlib.study.restored import drift, milestones

OUT = Path(__file__).resolve().parent / "out" / "run17"
DRIFT_MAX, TOKEN_RATIO_MIN = 0.50, 40.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("profile")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    prof = load_profile(args.profile)
    seed = prof.train_seeds[0]
    f = fam.train_family(prof, seed, other_family=False)
    r_norm = instruct_drift(f["base_v1"], f["instruct_v1"])
    pre_tokens = read_manifest(f["base_v1"])["tokens"]
    rows = []
    for lr in dict.fromkeys([prof.cpt.lr, *prof.study.n4_lrs]):
        cfg = n4_cpt(prof, lr)  # the N4 map's budget and milestones, as cptlib.study.experiments.n4_map trains them
        run = fam.continue_lm(prof, f["base_v1"], f["data"], "corpus_b.jsonl", cfg, seed, "cpt")
        for tokens, model in milestones(run).items():
            ratio = drift(model) / r_norm
            rows.append({"lr": lr, "tokens": tokens, "drift_ratio": ratio, "token_ratio": pre_tokens / tokens,
                         "eligible": ratio <= DRIFT_MAX and pre_tokens / tokens >= TOKEN_RATIO_MIN})
        print(pd.DataFrame(rows).tail(6).round(3).to_string(index=False), flush=True)
    table = pd.DataFrame(rows).sort_values(["lr", "tokens"])
    ok = table[table.eligible]
    choice = ok.loc[ok.drift_ratio.idxmax()] if len(ok) else table.loc[table.drift_ratio.idxmin()]
    table["chosen"] = table.index == choice.name
    OUT.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUT / "cpt_cell.csv", index=False)
    print(table.round(3).to_markdown(index=False))
    print(f"default CPT cell: lr {choice.lr:g}, {int(choice.tokens):,} tokens, drift ratio {choice.drift_ratio:.3f}"
          + ("" if len(ok) else " (no eligible cell: the smallest drift)"))


if __name__ == "__main__":
    main()
