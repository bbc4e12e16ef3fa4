"""Size pilot (docs/calibration_log.md, run 7): base_v1 and instruct_v1 of another size preset, trained with the
default's recipes and data (not released: ordinary stages in build/stages, resumable), then the calibration
metrics of both, with IF split by the number of constraints (single constraints, held-out pairs).

    .venv/bin/python bench/size_pilot.py --size base        # ~3.9M parameters: ~45 min of pre-training on 2 cores

The released ladder (tiny, mini, small) answers the same question for the smaller sizes: `--size small` reuses
nothing of models/ but gives the same stages bitwise (the recipe is deterministic on one machine kind).
"""
from __future__ import annotations

from cptlib.core.paths import use_project_caches

use_project_caches()  # an entry point: the project's library caches (HF_HOME, ...), before any library reads them

import argparse
import time

from cptlib.config import load_with_overrides
from cptlib.evaluation.evaluate import ifeval_by_constraints, run_evaluation
from cptlib.evaluation.harness import read_table
from cptlib.family.build import testbed_data, train_size
from cptlib.presets import PRESETS
from cptlib.study.experiments import instruct_drift


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--size", required=True, choices=sorted(PRESETS))
    args = parser.parse_args()
    profile = load_with_overrides(args.profile, {"released_ancestors": False, "model.sizes": [args.size]},
                                  run_name=f"{args.profile}-size-{args.size}")
    start = time.perf_counter()
    base, inst = train_size(profile, args.size, profile.base_seed)
    print(f"trained (or reused) base_v1 and instruct_v1 of size {args.size} in {time.perf_counter() - start:.0f} s")
    data = testbed_data(profile)
    for name, model in (("base_v1", base), ("instruct_v1", inst)):
        evaluated = run_evaluation(model, data)
        t = read_table(evaluated, name).set_index(["task", "metric"]).value
        by_n, by_kind = ifeval_by_constraints(evaluated, data)
        print(f"{args.size} {name}: IF {t['testbed_ifeval', 'prompt_level_strict_acc']:.3f} "
              + " ".join(f"(n={n}: {acc:.3f} of {k})" for n, (k, acc) in by_n.items())
              + f", era-A {t['testbed_mc_old', 'acc']:.3f}, era-A via chat {t['testbed_chat_knowledge_a', 'knowledge_acc']:.3f}"
              + f", era-B {t['testbed_mc_new', 'acc']:.3f}")
        if name == "instruct_v1":
            print(f"  held-out pair kinds: { {k: round(v, 2) for k, v in by_kind.items()} }; residual / base norm {instruct_drift(base, inst):.3f}")


if __name__ == "__main__":
    main()
