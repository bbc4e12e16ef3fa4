"""Measurements more than one claim makes from the study's tables (each claim's module holds the rest)."""
from __future__ import annotations

import pandas as pd

from cptlib.study import stats
from cptlib.study.claims.base import Results
from cptlib.study.labels import CPT_I
from cptlib.members import Member


def bench_drop(r: Results, model: str) -> stats.Estimate | None:
    """The average drop over the paper's benchmark families of `model` (cptlib.study.benchmarks.drops; C1, C2)."""
    if "benchmarks" not in r:
        return None
    b = r["benchmarks"]
    hit = b[(b.model == model) & (b.task == "average")]
    if not len(hit):
        return None
    x = hit.iloc[0]
    return stats.Estimate(float(x["drop"]), float(x.lo), float(x.hi), int(x.n_seeds), stats.CROSSED)


def endpoints(r: Results) -> pd.DataFrame:
    """The forgetting table at the ancestors (0 tokens) and the final budget."""
    fg = r["forgetting"]
    return fg[fg.tokens.isin([0, fg.tokens.max()])]


def along_seeds(r: Results) -> list[int]:
    """The seeds with every milestone (cptlib.study.experiments.part_seeds): those with a checkpoint between 0 tokens
    and the final budget, else the first."""
    fg = r["forgetting"]
    middle = fg[(fg.tokens > 0) & (fg.tokens < fg.tokens.max())]
    return sorted(int(s) for s in middle.seed.unique()) if len(middle) else [int(fg.seed.min())]


def aggressive(r: Results) -> pd.DataFrame | None:
    """The aggressive cell (issue 30 step 5: cpt.lr at the N4 map's largest budget) beside instruct_v1 at 0 tokens,
    for every seed the map has (paired by seed); None where the N4 map has no cpt.lr cell."""
    n4 = r.get("n4")
    if n4 is None or "cpt_lr" not in n4 or not n4.cpt_lr.any():
        return None
    fg = r["forgetting"]
    cell = n4[n4.cpt_lr & (n4.tokens == n4[n4.cpt_lr].tokens.max())]
    if "seed" not in cell:  # a map of one seed, written before issue 48
        cell = cell.assign(seed=fg.seed.min())
    ref = fg[(fg.model == Member.INSTRUCT_V1) & fg.seed.isin(cell.seed.unique()) & (fg.tokens == 0)]
    return pd.concat([ref, cell])


def cpt_instruct_along(r: Results) -> pd.DataFrame:
    """CPT(instruct_v1) at every milestone, of the seeds that have them all."""
    fg = r["forgetting"]
    return fg[(fg.model == CPT_I) & fg.seed.isin(along_seeds(r))]
