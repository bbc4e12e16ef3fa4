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


def first_seed(r: Results) -> int:
    """The first seed: the one with every milestone, the N4 map's and the data shift's."""
    return r["forgetting"].seed.min()


def aggressive(r: Results) -> pd.DataFrame | None:
    """The aggressive cell (issue 30 step 5: cpt.lr at the N4 map's largest budget, first seed) beside instruct_v1 at
    0 tokens, as one table paired on the first seed; None where the N4 map has no cpt.lr cell."""
    n4 = r.get("n4")
    if n4 is None or "cpt_lr" not in n4 or not n4.cpt_lr.any():
        return None
    fg, s0 = r["forgetting"], first_seed(r)
    cell = n4[n4.cpt_lr & (n4.tokens == n4[n4.cpt_lr].tokens.max())]
    ref = fg[(fg.model == Member.INSTRUCT_V1) & (fg.seed == s0) & (fg.tokens == 0)]
    return pd.concat([ref, cell]).assign(seed=s0)


def cpt_instruct_first_seed(r: Results) -> pd.DataFrame:
    """CPT(instruct_v1) of the first seed at every milestone."""
    fg = r["forgetting"]
    return fg[(fg.model == CPT_I) & (fg.seed == first_seed(r))]
