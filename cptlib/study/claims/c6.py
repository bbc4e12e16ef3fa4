"""C6: adding the residual costs far less than instruction tuning again (measured wall time; the FLOPs ratio holds
by construction)."""
from __future__ import annotations

import math

import pandas as pd

from cptlib.study import stats
from cptlib.study import verdicts as V
from cptlib.study.claims.base import Claim, Results
from cptlib.study.effects import Quantity, point, row

WALL = Quantity("C6", "wall time SFT / add Θr")
FLOPS = Quantity("C6", "FLOPs SFT / add Θr (by construction)")


def _ratio(co: pd.DataFrame, column: str) -> stats.Estimate:
    """SFT / add-Θr `column` per seed: the mean ratio with its Student-t interval over seeds."""
    per_seed = co.pivot_table(index="seed", columns="step after CPT", values=column)
    ratios = per_seed["SFT"] / per_seed["add Θr"]
    if column == "flops":  # an exact count, the same for every seed
        return point(float(ratios.mean()), len(ratios))
    return stats.over_seeds(ratios, 0.0, math.inf)


def measure(r: Results) -> list[dict]:
    co = r.get("costs")
    if co is None or not (co["step after CPT"] == "SFT").any():
        return []
    return [row(WALL, _ratio(co, "wall_seconds"), "cost ratio"), row(FLOPS, _ratio(co, "flops"), "cost ratio")]


def judge(ctx: V.Context) -> V.Verdict:
    if (gated := V.gate(ctx, CLAIM)) is not None:
        return gated
    wall = V.check(ctx, WALL, "≥ 100", lambda e: e.mean >= 100)
    flops = V.check(ctx, FLOPS, "(by construction; not judged)", None)
    if wall is None:
        return V.absent("C6")
    out = V.grade(wall.passed, wall.estimate.mean >= 10)
    measured = f"wall time SFT / add Θr = {wall.estimate.text(signed=False, digits=0)}; FLOPs ratio " \
               f"{flops.estimate.mean:,.0f}× (by construction: 3 × the SFT tokens)"
    return V.Verdict("C6", out, measured, f"adding Θr takes {wall.estimate.mean:,.0f}× less wall time than SFT",
                     V.in_size(CLAIM.size[WALL], wall.estimate), (wall, flops))


CLAIM = Claim(
    "C6", "≈2000× fewer FLOPs than instruction tuning",
    "ratio = measured wall time of SFT after CPT / of adding Θr (mean over seeds). reproduced: ≥ 100; partly: ≥ 10; "
    "else not. The FLOPs ratio is shown, not judged: it is 3 × the SFT tokens by construction.",
    judge, measure, part="sft", old="the FLOPs ratio ≥ 100, which holds by construction",
    size={WALL: (2000.0, 2000.0, "factor")})  # "~2000× fewer FLOPs"
