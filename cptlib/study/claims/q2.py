"""Q2 (open): the horizon — IF of CPT(instruct_v1) and of the restored model at the first milestone and the final
budget."""
from __future__ import annotations

from cptlib.study import stats
from cptlib.study import verdicts as V
from cptlib.study.claims.base import Claim, Results
from cptlib.study.claims.measures import along_seeds
from cptlib.study.labels import CPT_I, REST
from cptlib.members import Member


def answer(r: Results) -> str | None:
    if "forgetting" not in r:
        return None
    fg, final = r["forgetting"], r["forgetting"].tokens.max()
    along = along_seeds(r)
    first = fg[(fg.model == CPT_I) & (fg.tokens > 0)].tokens.min()

    def at(model: str, tokens: int, seeds=None) -> str:
        rows = fg[(fg.model == model) & (fg.tokens == tokens) & (fg.seed.isin(seeds) if seeds else True)]
        return stats.estimate(rows, "IF").text(signed=False, digits=2)

    models = [CPT_I] + ([REST] if (fg.model == REST).any() else [])
    every = sorted(fg.seed.unique())
    text = "; ".join(f"{m}: {at(m, first, along)} → {at(m, final, along)} ({first:,} → {final:,} tokens)"
                     + (f", {at(m, final)} at {final:,} over every seed" if every != along else "") for m in models)
    return text + ("" if REST in models else "; restored: not run (no base model)")


def judge(ctx: V.Context) -> V.Verdict:
    return V.answered(ctx, CLAIM)


CLAIM = Claim(
    "Q2", "(open)",
    "open question: IF of CPT(instruct_v1) and of CPT(base_v1)+Θr at the first milestone and the final budget (the "
    "seeds with every milestone), and at the final budget over every seed.", judge,
    needs=(Member.BASE_V1, Member.INSTRUCT_V1), answer=answer)
