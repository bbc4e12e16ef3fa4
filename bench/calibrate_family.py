"""Calibration table of a profile's family (BRIEF §2 targets), with the evaluation time per model.

    .venv/bin/python bench/calibrate_family.py [--profile default] [--seed 0] [--out bench/out/calibration.csv]

Builds (or reuses) base_v1, base_v2, instruct_v1, instruct_v2 and a CPT of base_v1, evaluates each through cptlib.evaluate (lm-eval), prints
the calibration rows and how long each model's testbed evaluation took.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from cptlib.calibration import calibration_table
from cptlib.config import load_profile
from cptlib.evaluate import evaluate_model
from cptlib.family import continue_lm, cpt, instruct, pretrain, testbed_data, tokenizer_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/out/calibration.csv"))
    args = parser.parse_args()
    profile = load_profile(args.profile)
    seed = args.seed
    # The family members the targets speak of (not other_family), built as cptlib.family.build_family does.
    data = testbed_data(profile)
    tok = tokenizer_stage(profile, data)
    pre_seed = seed if profile.base_seed is None else profile.base_seed
    base_v1 = pretrain(profile, data, tok, pre_seed, "base_v1")
    base_v2 = continue_lm(profile, base_v1, data, "corpus_a2.jsonl", profile.pretrain_v2, pre_seed, "base_v2")
    models = {"base_v1": base_v1, "instruct_v1": instruct(profile, base_v1, data, "v1", seed),
              "base_v2": base_v2, "instruct_v2": instruct(profile, base_v2, data, "v2", seed),
              "cpt_base_v1": cpt(profile, base_v1, seed)}
    for name, path in models.items():  # timed one by one; calibration_table below reads the cache
        start = time.perf_counter()
        evaluate_model(path, data, name=name)
        print(f"evaluated {name:<12} in {time.perf_counter() - start:6.1f} s")
    table = calibration_table(models, data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
