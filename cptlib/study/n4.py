"""N4 — where the recipe works: the threshold and the sentence the report prints, from the N4 map's table.

    t = n4_threshold(n4, instruct_if=0.64)   # bound, threshold, first_fail, kept, cells, slope, intercept, crossing
    text = regime(n4, 0.64)                  # "The recipe works ... in 0 of 24 budget × learning-rate cells; ..."

The map's table has a row per seed and cell; both read each cell's mean over its seeds (`cells`), against IF of
instruct_v1 over the same seeds (cptlib.study.experiments.reference_if).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cptlib.study.criteria import KEEP, KNOWS
from cptlib.study.labels import REST


CELL = ["lr", "cpt_lr", "tokens", "model"]
CELL_METRICS = ["drift_ratio", "IF", "knowledge", "era_a", "era_b"]


def cells(n4: pd.DataFrame) -> pd.DataFrame:
    """One row per cell (learning rate × budget × model): each metric's mean over the seeds the map has for it,
    and n_seeds."""
    keys = [k for k in CELL if k in n4]
    if "seed" not in n4:
        return n4.assign(n_seeds=1)
    metrics = [m for m in CELL_METRICS if m in n4]
    return n4.groupby(keys, sort=False, as_index=False).agg(**{m: (m, "mean") for m in metrics},
                                                            n_seeds=("seed", "nunique"))


def n4_threshold(n4: pd.DataFrame, instruct_if: float, keep: float = KEEP) -> dict:
    """N4's threshold from the grid: the largest drift ratio below which every cell keeps restored IF ≥ keep ×
    instruct_if (nan if the smallest drift already fails), the smallest failing drift, and the drift where a
    least-squares line of IF / instruct_if on log10(drift) crosses `keep` (nan if it does not fall)."""
    n4 = cells(n4)
    rest = n4[n4.model == REST].sort_values("drift_ratio")
    bound = keep * instruct_if
    fails = rest[rest.IF < bound]
    first_fail = float(fails.drift_ratio.min()) if len(fails) else math.inf
    below = rest[rest.drift_ratio < first_fail]
    fit = rest[rest.drift_ratio > 0]
    slope = intercept = crossing = math.nan
    # The line needs a reference to divide by and two distinct drifts (a smoke model may follow nothing: IF 0).
    if instruct_if > 0 and fit.drift_ratio.nunique() >= 2:
        slope, intercept = np.polyfit(np.log10(fit.drift_ratio.to_numpy(float)), fit.IF.to_numpy(float) / instruct_if, 1)
        crossing = 10 ** ((keep - intercept) / slope) if slope < 0 else math.nan
    return {"bound": bound, "threshold": float(below.drift_ratio.max()) if len(below) else math.nan,
            "first_fail": first_fail, "kept": int((rest.IF >= bound).sum()), "cells": len(rest),
            "slope": float(slope), "intercept": float(intercept), "crossing": float(crossing)}


def regime(n4: pd.DataFrame, instruct_if: float, keep: float = KEEP, knows: float = KNOWS) -> str:
    """N4 in one sentence: the cells where CPT(base)+Θr both follows instructions (IF ≥ keep × instruct_v1's) and
    knows the news (era-B ≥ knows), and the cells where IF is lost."""
    n4 = cells(n4)
    rest = n4[n4.model == REST]
    follows = rest.IF >= keep * instruct_if
    if rest.era_b.isna().all():  # a real profile without a new-knowledge metric: IF only
        text = (f"Restored IF ≥ {keep:.0%} of instruct_v1's in {int(follows.sum())} of {len(rest)} budget × learning-rate "
                f"cells" + (f", up to drift ratio {rest[follows].drift_ratio.max():.2f}" if follows.any() else ""))
        return text + "; whether the news is learned is not measured (no era_b metric)."
    works, broken = rest[follows & (rest.era_b >= knows)], rest[~follows]
    named = lambda t: ", ".join(f"{tok:,} tokens at lr {lr:g}" for tok, lr in zip(t.tokens, t.lr))  # noqa: E731
    text = (f"The recipe works (restored IF ≥ {keep:.0%} of instruct_v1's and era-B accuracy ≥ {knows:.2f}) in "
            f"{len(works)} of {len(rest)} budget × learning-rate cells")
    text += (f", at drift ratios {works.drift_ratio.min():.2f}–{works.drift_ratio.max():.2f} ({named(works)})"
             if len(works) else "")
    if len(broken):
        text += (f"; restored IF falls below {keep:.0%} of instruct_v1's in {len(broken)} cells, at drift ratios "
                 f"{broken.drift_ratio.min():.2f}–{broken.drift_ratio.max():.2f}")
    else:
        text += f"; restored IF never fell below {keep:.0%} of instruct_v1's (drift ratio up to {rest.drift_ratio.max():.2f})"
    early = rest[follows & (rest.era_b < knows)]
    if len(early):
        text += f"; in {len(early)} cells IF is kept but the news is not yet learned (drift ≤ {early.drift_ratio.max():.2f})"
    return text + "."
