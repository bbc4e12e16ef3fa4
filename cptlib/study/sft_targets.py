"""The SFT's own targets, for a profile that instruction-tunes its instruct model here (`models.instruct_v1: sft`,
the real pair; docs/calibration_log.md, run 21, fixed before any number): the SFT must teach instruction following
and must not break general ability.

    targets = table(profile)   # None unless models.instruct_v1 is sft; else one row per target

- IF(instruct_v1) − IF(base_v1) ≥ +0.30 on the held-out IFEval-format prompts (prompt-level strict);
- benchmark average(instruct_v1) − average(base_v1) ≥ −0.03, on the paper's benchmarks (notebook 07's subsets).

Each is judged as the calibration targets are, on the measured value; its 95% interval (paired by item; one SFT seed,
so it covers the items, not what another SFT seed would change) stands beside it. Only the two ancestors are
evaluated (cached stages the study reuses), so the targets can be read before any CPT exists
(bench/real_pair_sft_check.py). A missed target is a finding about the SFT recipe: run 21 changes the recipe, not the
target.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from cptlib.config import BENCH_NOTEBOOK, Profile
from cptlib.members import Member
from cptlib.study import stats

IF_GAIN = 0.30  # IF(instruct_v1) − IF(base_v1), at least
BENCH_LOSS = 0.03  # average(base_v1) − average(instruct_v1), at most
COLUMNS = ["target", "rule", "value", "lo", "hi", "met", "n_items", "models"]
MODELS = "instruct_v1 (SFT here, one seed) vs base_v1"


def applies(profile: Profile) -> bool:
    from cptlib.evaluation.suite import suite_for

    return suite_for(profile).trains_instruct()


def if_row(scores: pd.DataFrame) -> dict:
    """The IF target from the suite's scores of the two ancestors (Suite.scores: index the model, columns IF and
    eval), paired by prompt."""
    rows = scores.rename_axis("model").reset_index()[["model", "IF", "eval"]].assign(seed=0)
    e = stats.paired(rows, "model", Member.INSTRUCT_V1, Member.BASE_V1, "IF")
    n = stats._matrix(rows[rows.model == Member.BASE_V1], "IF")
    return {"target": "IF gain of the SFT: IF(instruct_v1) − IF(base_v1), held-out IFEval-format prompts",
            "rule": f"≥ +{IF_GAIN:.2f}", "value": e.mean, "lo": e.lo, "hi": e.hi, "met": e.mean >= IF_GAIN,
            "n_items": None if n is None else n.shape[1]}


def bench_row(items: dict[tuple[str, str], "object"], tasks) -> dict:
    """The benchmarks target from each ancestor's per-item scores ({(model, task): array}): the average over the
    benchmarks of instruct_v1 − base_v1, paired by item within each benchmark."""
    from cptlib.study.benchmarks import average_drop

    inst = [items[Member.INSTRUCT_V1, t][None] for t in tasks]
    base = [items[Member.BASE_V1, t][None] for t in tasks]
    mean, lo, hi = average_drop(inst, base)  # instruct − base
    return {"target": f"what the SFT costs the benchmarks: average over {len(tasks)} of instruct_v1 − base_v1",
            "rule": f"≥ −{BENCH_LOSS:.2f}", "value": mean, "lo": lo, "hi": hi, "met": mean >= -BENCH_LOSS,
            "n_items": sum(m.shape[1] for m in inst)}


def table(profile: Profile, benchmarks: bool | None = None) -> pd.DataFrame | None:
    """Every SFT target, or None where the profile's instruct model is a release (its SFT is not ours to judge).
    `benchmarks`: score the benchmarks target too (None: where the profile runs notebook 07, whose evaluations
    it then reuses)."""
    if not applies(profile):
        return None
    from cptlib.evaluation.suite import suite_for
    from cptlib.family import build_family

    family = build_family(profile, profile.train_seeds[0], other_family=False)
    models = {m: Path(family[m]) for m in (Member.BASE_V1, Member.INSTRUCT_V1)}
    rows = [if_row(suite_for(profile).scores(models, family["data"]))]
    if benchmarks is None:
        benchmarks = BENCH_NOTEBOOK in profile.notebooks
    if benchmarks:
        from cptlib.evaluation import benchmarks as B
        from cptlib.evaluation.real_suite import run_real_suite
        from cptlib.study import benchmarks as SB

        s = SB.settings(profile)
        items = {}
        for model, path in models.items():
            result = run_real_suite(path, s, generated=[B.task_folder()])
            items.update({(model, task): SB._items(result.name, task, s) for task in s.tasks})
        rows.append(bench_row(items, s.tasks))
    return pd.DataFrame([{**r, "models": MODELS} for r in rows], columns=COLUMNS)


def shown(targets: pd.DataFrame) -> pd.DataFrame:
    """The report's table: each target with its value, 95% interval and whether it is met."""
    return pd.DataFrame({"target": targets.target, "rule": targets.rule,
                         "measured [95% CI]": [f"{v:+.3f} [{lo:+.3f}, {hi:+.3f}]" for v, lo, hi
                                               in zip(targets.value, targets.lo, targets.hi)],
                         "met": ["met" if m else "missed" for m in targets.met], "items": targets.n_items,
                         "models": targets.models})
