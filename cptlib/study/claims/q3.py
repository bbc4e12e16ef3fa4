"""Q3 (open): which merge method adds the residual best."""
from __future__ import annotations

import pandas as pd

from cptlib.study import stats
from cptlib.study import verdicts as V
from cptlib.study.claims.base import Claim, Results
from cptlib.members import Member


def settings_text(ab: pd.DataFrame, kind: str) -> str:
    """IF of every setting of one ablation (notebook 04's table, a row per seed and setting): the mean over the seeds
    with its 95% interval."""
    g = ab[ab.ablation == kind]
    return "; ".join(f"{setting} IF {stats.estimate(g[g.setting == setting], 'IF').text(signed=False, digits=2)}"
                     for setting in dict.fromkeys(g.setting))


def answer(r: Results) -> str | None:
    if (ab := r.get("ablations")) is None:
        return None
    means = ab[ab.ablation == "merge"].groupby("setting", sort=False).IF.mean()
    return f"{settings_text(ab, 'merge')} — best: {means.idxmax()}"


def judge(ctx: V.Context) -> V.Verdict:
    return V.answered(ctx, CLAIM)  # each number says how many seeds it rests on


CLAIM = Claim(
    "Q3", "(open)", "open question: IF and era-B acc of each merge method on CPT(base_v1); the best by IF is named.",
    judge, needs=(Member.BASE_V1, Member.INSTRUCT_V1), answer=answer)
