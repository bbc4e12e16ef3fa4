"""The real pair's SFT against its targets (calibration log run 21), before any CPT result is looked at.

    .venv/bin/python bench/real_pair_sft_check.py --profile gemma3_270m_pair

Scores base_v1 and instruct_v1 through the profile's suite (IF on the held-out IFEval-format prompts, era-B multiple
choice, era-B in chat) and on its benchmarks (notebook 07's settings: the same fixed subsets, plain text), each a
cached evaluation stage that the study's notebooks reuse. Targets: IF(instruct_v1) >= IF(base_v1) + 0.30; benchmark
average(instruct_v1) >= average(base_v1) - 0.03. Paired item differences with 95% t-intervals over the items (one
SFT seed: the intervals do not cover what another SFT seed would change). Writes docs/calibration/run21_sft.csv.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

from cptlib.config import load_profile
from cptlib.core.paths import REPO_ROOT

IF_GAIN, BENCH_LOSS = 0.30, 0.03


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    from cptlib.study.stats import t975

    d = b - a
    half = t975(len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="gemma3_270m_pair")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "docs/calibration/run21_sft.csv")
    args = ap.parse_args()

    from cptlib.core import paths
    from cptlib.evaluation import benchmarks as B
    from cptlib.evaluation.harness import item_scores
    from cptlib.evaluation.real_suite import run_real_suite
    from cptlib.evaluation.suite import suite_for
    from cptlib.family import build_family
    from cptlib.study import benchmarks as SB

    profile = load_profile(args.profile)
    family = build_family(profile, profile.train_seeds[0], other_family=False)
    models = {m: family[m] for m in ("base_v1", "instruct_v1")}
    suite = suite_for(profile)
    table = suite.scores(models, family["data"])
    rows, items = [], {}
    for metric, (task, name) in suite.metric_tasks().items():
        if metric not in table:
            continue
        for model in models:
            items[model, metric] = np.array(item_scores(paths.stages_dir() / table.loc[model, "eval"], task, name))
            rows.append({"model": model, "metric": metric, "value": float(items[model, metric].mean()),
                         "n": len(items[model, metric])})
    s = SB.settings(profile)
    bench = {}
    for model, path in models.items():
        result = run_real_suite(Path(path), s, generated=[B.task_folder()])
        for task in s.tasks:
            bench[model, task] = SB._items(result.name, task, s)
            rows.append({"model": model, "metric": task, "value": float(bench[model, task].mean()),
                         "n": len(bench[model, task])})
    d, lo, hi = _paired(items["base_v1", "IF"], items["instruct_v1", "IF"])
    rows.append({"model": "instruct_v1 - base_v1", "metric": "IF", "value": d, "lo": lo, "hi": hi,
                 "n": len(items["base_v1", "IF"]), "target": f">= {IF_GAIN}", "met": d >= IF_GAIN})
    mean, lo, hi = SB.average_drop([bench["base_v1", t][None] for t in s.tasks],
                                   [bench["instruct_v1", t][None] for t in s.tasks])
    rows.append({"model": "instruct_v1 - base_v1", "metric": "benchmark average", "value": -mean, "lo": -hi,
                 "hi": -lo, "n": sum(len(bench["base_v1", t]) for t in s.tasks), "target": f">= -{BENCH_LOSS}",
                 "met": -mean >= -BENCH_LOSS})
    out = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out, index=False)
    print(out.to_string(index=False))


if __name__ == "__main__":
    main()
