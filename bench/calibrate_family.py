"""Calibration table of a profile's family (the [regime] targets, cptlib.evaluation.calibration), with the evaluation time
per model.

    .venv/bin/python bench/calibrate_family.py [--profile default] [--seed 0] [--out bench/out/calibration.csv]

Resolves the released ancestors (or trains the family), runs CPT of base_v1 and instruct_v1 at the profile's
budget, evaluates each model through cptlib.evaluation.evaluate (lm-eval) and prints the calibration rows and how long each
model's testbed evaluation took; `--cpt-lrs` adds CPT(base_v1) at other learning rates with their drift ratio.
"""
from __future__ import annotations

from cptlib.core.paths import use_project_caches

use_project_caches()  # an entry point: the project's library caches (HF_HOME, ...), before any library reads them

import argparse
import time
from pathlib import Path

from cptlib.config import load_profile
from cptlib.evaluation.evaluate import evaluate_model
from cptlib.family import build_family, cpt
from cptlib.core.stages import read_manifest
from cptlib.study.experiments import calibration, instruct_drift


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/out/calibration.csv"))
    parser.add_argument("--cpt-lrs", type=float, nargs="*", default=[],
                        help="also CPT base_v1 at these learning rates (the profile's own is always run)")
    args = parser.parse_args()
    profile = load_profile(args.profile)
    family = build_family(profile, args.seed)
    data = family["data"]
    residual = instruct_drift(family["base_v1"], family["instruct_v1"])
    for lr in args.cpt_lrs:
        model = cpt(profile, family["base_v1"], args.seed, profile.cpt.model_copy(update={"lr": lr}))
        scores = evaluate_model(model, data, name="cpt").set_index(["task", "metric"]).value
        print(f"CPT(base_v1) lr {lr:g}: era-B {scores['testbed_mc_new', 'acc']:.3f}, drift / residual "
              f"{read_manifest(model)['drift']['total'] / residual:.3f}")
    for name in ("base_v1", "instruct_v1", "base_v2", "instruct_v2"):  # timed one by one; the table reads the cache
        start = time.perf_counter()
        evaluate_model(family[name], data, name=name)
        print(f"evaluated {name:<12} in {time.perf_counter() - start:6.1f} s")
    table = calibration(profile, {args.seed: family})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
