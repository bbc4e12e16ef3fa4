"""The paper's benchmark families on a profile's models (issue 33; notebook 07_benchmarks): C1's second number
(the average drop across tasks of an instruct model under CPT) and C2 on a base model (its average drop).

    res = results(profile)  # {"scores": model × seed × task, "per_model", "curve" (first seed), "drops"}

Models: instruct_v1 and base_v1 (where the profile has them) before CPT, and their CPT at every milestone of the
first training seed and at the final budget of every seed. Each is scored by lm-eval on the profile's
`eval.benchmarks` (cptlib.evaluation.benchmarks: lm-eval's own task definitions over packaged data), every model on
the same fixed random subset of items, as plain text (no chat template), lm-eval's default shots (zero).

Intervals (written down before the numbers, docs/calibration_log.md run 19): a model's accuracy on a task and a drop
on a task (before − after, paired by item) are the study's crossed seeds + items Student-t intervals
(cptlib.study.stats.crossed_t). The average drop over the K tasks, (1/K) Σ_t mean_i(before_ti − after_ti), is the
mean of K independent task means: its item variance is Σ_t s²_t / (K² n_t); with several seeds its seed variance is
that of the per-seed averages over S; degrees of freedom S − 1, or Σ_t (n_t − 1) with one seed (a t close to z).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from cptlib.config import Profile
from cptlib.core import paths
from cptlib.core.stages import read_manifest
from cptlib.evaluation import benchmarks as B
from cptlib.study.labels import CPT_B, CPT_I
from cptlib.study.restored import milestones
from cptlib.study.stats import CROSSED, Estimate, crossed_t, t975
from cptlib.members import Member

BEFORE_AFTER = {CPT_I: Member.INSTRUCT_V1, CPT_B: Member.BASE_V1}  # a CPT model -> the model it continued


def settings(profile: Profile):
    """lm-eval settings for the benchmarks: every benchmark with its fixed subset, plain text, lm-eval's shots."""
    from cptlib.evaluation.real_profile import real_suite_settings
    from cptlib.evaluation.real_suite import RealSuiteSettings

    base = real_suite_settings(profile)
    ids = B.sample_ids(dict(profile.eval.benchmarks), profile.eval.benchmark_seed)
    samples = {task: {leaf: tuple(v) for leaf, v in ids.items() if leaf in B.leaves(task)}
               for task in profile.eval.benchmarks}
    return RealSuiteSettings(tasks=tuple(profile.eval.benchmarks), samples=samples, batch_size=base.batch_size,
                             chat_template_tasks=(), device=base.device, dtype=base.dtype)


def models(profile: Profile) -> list[dict]:
    """Rows (seed, model, tokens, path): the members before CPT and their CPT at the milestones (first seed) and the
    final budget (every seed)."""
    from cptlib.family import resolve as fam

    rows = []
    for seed in profile.train_seeds:
        f = fam.build_family(profile, seed, other_family=False)
        first = seed == profile.train_seeds[0]
        for cpt_label, member in BEFORE_AFTER.items():
            if member not in f:
                continue
            rows.append({"seed": seed, "model": member, "tokens": 0, "path": f[member]})
            run = fam.cpt(profile, f[member], seed)
            final = read_manifest(run)["tokens"]
            rows += [{"seed": seed, "model": cpt_label, "tokens": tokens, "path": path}
                     for tokens, path in milestones(run).items() if first or tokens == final]
    return rows


def scores(profile: Profile, s) -> pd.DataFrame:
    """One row per model × seed × tokens × benchmark: acc (the benchmark's metric), n items, eval (the stage);
    `s`: settings(profile)."""
    from cptlib.evaluation.real_suite import run_real_suite

    folder, rows = B.task_folder(), []
    for m in models(profile):
        result = run_real_suite(Path(m["path"]), s, generated=[folder])
        for task in s.tasks:
            items = _items(result.name, task, s)
            rows.append({**{k: m[k] for k in ("seed", "model", "tokens")}, "task": task,
                         "label": B.BENCHMARKS[task].label, "acc": float(items.mean()), "n": len(items), "eval": result.name})
    return pd.DataFrame(rows)


def _items(eval_name: str, task: str, s) -> np.ndarray:
    from cptlib.evaluation.harness import item_scores

    return np.concatenate([item_scores(paths.stages_dir() / eval_name, leaf, B.BENCHMARKS[task].metric)
                           for leaf in s.samples[task]])


def _matrix(table: pd.DataFrame, task: str, s) -> np.ndarray:
    """Seeds × items of one model's rows on one task (rows ordered by seed)."""
    rows = table[table.task == task].sort_values("seed")
    return np.stack([_items(e, task, s) for e in rows["eval"]])


def _estimate(point_lo_hi: tuple[float, float, float], n_seeds: int, low=-math.inf, high=math.inf) -> Estimate:
    m, lo, hi = point_lo_hi
    return Estimate(m, max(low, lo), min(high, hi), n_seeds, CROSSED)


def average_drop(befores: list[np.ndarray], afters: list[np.ndarray]) -> tuple[float, float, float]:
    """(mean, lo, hi) of the average over tasks of before − after; each list holds one seeds × items matrix per task
    (same seeds in every task, items paired within a task). See the module's docstring for the interval."""
    diffs = [b - a for b, a in zip(befores, afters)]
    k, n_seeds = len(diffs), diffs[0].shape[0]
    per_seed = np.mean([d.mean(axis=1) for d in diffs], axis=0)  # each seed's average over tasks
    point = float(per_seed.mean())
    items = sum(d.mean(axis=0).var(ddof=1) / d.shape[1] for d in diffs) / k ** 2
    seeds = per_seed.var(ddof=1) / n_seeds if n_seeds > 1 else 0.0
    dof = n_seeds - 1 if seeds > 0 else sum(d.shape[1] - 1 for d in diffs)
    half = t975(dof) * math.sqrt(seeds + items)
    return point, point - half, point + half


def drops(table: pd.DataFrame, s) -> pd.DataFrame:
    """Per CPT model (final budget, every seed): each task's drop before − after and the average over tasks, with
    their intervals; one row per (model, task), task "average" for the average."""
    rows = []
    final = table[table.tokens > 0].groupby("model").tokens.max()
    for cpt_label, member in BEFORE_AFTER.items():
        if cpt_label not in final:
            continue
        before = table[(table.model == member) & (table.tokens == 0)]
        after = table[(table.model == cpt_label) & (table.tokens == final[cpt_label])]
        seeds = sorted(set(before.seed) & set(after.seed))
        before, after = before[before.seed.isin(seeds)], after[after.seed.isin(seeds)]
        bs, as_ = [], []
        for task in s.tasks:
            b, a = _matrix(before, task, s), _matrix(after, task, s)
            bs.append(b), as_.append(a)
            e = _estimate(crossed_t([b, a], lambda x, y: x - y), len(seeds))
            rows.append({"model": cpt_label, "before": member, "task": task, "label": B.BENCHMARKS[task].label,
                         "before_acc": float(b.mean()), "after_acc": float(a.mean()), "drop": e.mean, "lo": e.lo,
                         "hi": e.hi, "n": b.shape[1], "n_seeds": len(seeds)})
        e = _estimate(average_drop(bs, as_), len(seeds))
        rows.append({"model": cpt_label, "before": member, "task": "average", "label": f"average of {len(bs)}",
                     "before_acc": float(np.mean([b.mean() for b in bs])), "after_acc": float(np.mean([a.mean() for a in as_])),
                     "drop": e.mean, "lo": e.lo, "hi": e.hi, "n": sum(b.shape[1] for b in bs), "n_seeds": len(seeds)})
    return pd.DataFrame(rows)


def per_model(table: pd.DataFrame, s) -> pd.DataFrame:
    """Every model's accuracy per task (mean over the seeds the table has for it) with its crossed interval."""
    rows = []
    for (model, tokens, task), g in table.groupby(["model", "tokens", "task"], sort=False):
        m = _matrix(g, task, s)
        e = _estimate(crossed_t([m], lambda x: x), len(g), 0.0, 1.0)
        rows.append({"model": model, "tokens": tokens, "task": task, "label": B.BENCHMARKS[task].label, "acc": e.mean,
                     "lo": e.lo, "hi": e.hi, "n": m.shape[1], "n_seeds": len(g)})
    return pd.DataFrame(rows)


def results(profile: Profile) -> dict[str, pd.DataFrame]:
    """The scores, every model's accuracy over its seeds (per_model: the milestones have the first seed only), the
    curve along CPT of the first seed alone (a line never joins numbers of different seed counts) and the drops."""
    s = settings(profile)
    table = scores(profile, s)
    first = table[table.seed == profile.train_seeds[0]]
    return {"scores": table, "per_model": per_model(table, s), "curve": per_model(first, s), "drops": drops(table, s)}
