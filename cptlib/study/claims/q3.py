"""Q3 (open): which merge method adds the residual best."""
from __future__ import annotations

import pandas as pd

from cptlib.study import stats
from cptlib.study import verdicts as V
from cptlib.study.claims.base import Claim, Results
from cptlib.members import Member


def settings_text(ab: pd.DataFrame, kind: str) -> str:
    """IF of every setting of one ablation (notebook 04's table), first seed, with its interval over items."""
    g = ab[ab.ablation == kind]
    return "; ".join(f"{row.setting} IF {stats.estimate(g[g.setting == row.setting], 'IF').text(signed=False, digits=2)}"
                     for row in g.itertuples())


def answer(r: Results) -> str | None:
    if (ab := r.get("ablations")) is None:
        return None
    merges = ab[ab.ablation == "merge"]
    return f"{settings_text(ab, 'merge')} — best: {merges.loc[merges.IF.idxmax()].setting}"


def judge(ctx: V.Context) -> V.Verdict:
    return V.answered(ctx, CLAIM, note="1 seed")


CLAIM = Claim(
    "Q3", "(open)", "open question: IF and era-B acc of each merge method on CPT(base_v1); the best by IF is named.",
    judge, needs=(Member.BASE_V1, Member.INSTRUCT_V1), answer=answer)
