"""N4 (our question; the paper's regime is small drift): up to which drift the recipe works."""
from __future__ import annotations

import math

from cptlib.study import verdicts as V
from cptlib.study.claims.base import Claim
from cptlib.study.n4 import n4_threshold, regime
from cptlib.members import Member


def judge(ctx: V.Context) -> V.Verdict:
    if (gated := V.gate(ctx, CLAIM)) is not None:
        return gated
    if ctx.n4 is None:
        return V.absent("N4")
    t = n4_threshold(ctx.n4, ctx.instruct_if)  # each cell's mean over the map's seeds
    n = ctx.n4.seed.nunique() if "seed" in ctx.n4 else 1
    seeds = f"each cell the mean over {n} seeds" if n > 1 else "1 seed"
    head = (f"restored IF ≥ {t['bound']:.3f} (0.8 × instruct_v1's {ctx.instruct_if:.3f}) in {t['kept']} of {t['cells']} "
            "cells; " + (f"every cell with drift ratio ≤ {t['threshold']:.3f} keeps it" if t["threshold"] == t["threshold"]
                         else "the smallest drift already fails")
            + (f", the first failing cell is at {t['first_fail']:.3f}" if t["first_fail"] < math.inf else ", none fails")
            + (f"; the fitted line crosses 0.8 at drift {t['crossing']:.2f}" if t["crossing"] == t["crossing"] else
               "; the fitted line does not fall below 0.8") + f" (slope {t['slope']:+.3f} per decade; {seeds})")
    return V.Verdict("N4", V.Outcome.ANSWERED, f"{head}. {regime(ctx.n4, ctx.instruct_if)}", "the map is the answer",
                     note="1 seed" if n == 1 else "")


CLAIM = Claim(
    "N4", "(our question; paper's regime = small drift)",
    "open question: the threshold is the largest drift ratio ‖θ_cpt − θ_base‖/‖Θr‖ below which every cell of the "
    "budget × learning-rate grid keeps restored IF ≥ 0.8 × IF(instruct_v1), beside the drift where a least-squares "
    "line of IF / IF(instruct_v1) on log10 drift crosses 0.8.", judge, needs=(Member.BASE_V1, Member.INSTRUCT_V1),
    old="the largest drift ratio of any cell that kept the criterion, though smaller drifts failed")
