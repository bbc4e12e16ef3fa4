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
from cptlib.family import build_family, cpt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/out/calibration.csv"))
    parser.add_argument("--cpt-lrs", type=float, nargs="*", default=[],
                        help="also CPT base_v1 at these learning rates (the profile's own is always run)")
    args = parser.parse_args()
    profile = load_profile(args.profile)
    family = build_family(profile, args.seed, other_family=False)  # the members the targets speak of
    data = family["data"]
    models = {name: family[name] for name in ("base_v1", "instruct_v1", "base_v2", "instruct_v2")}
    models["cpt_base_v1"] = cpt(profile, family["base_v1"], args.seed)
    for lr in args.cpt_lrs:
        models[f"cpt_base_v1_lr{lr:g}"] = cpt(profile, family["base_v1"], args.seed, profile.cpt.model_copy(update={"lr": lr}))
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
