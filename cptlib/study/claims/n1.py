"""N1 (suggested check, expected to fail): a residual from another model family does not transfer."""
from __future__ import annotations

from cptlib.study import stats
from cptlib.study import verdicts as V
from cptlib.study.claims.base import Claim, Results
from cptlib.study.claims.c4 import cells
from cptlib.study.criteria import EFFECT
from cptlib.study.effects import Quantity, get, row
from cptlib.members import Member

OWN = Quantity("N1", "own-family residual's IF gain")
OTHER = Quantity("N1", "other family's residual's IF gain")


def measure(r: Results) -> list[dict]:
    if "transfer" not in r:
        return []
    tr = cells(r)
    rows = [row(OWN, stats.paired(tr, "cell", "v1→CPT(base_v1)", "none→CPT(base_v1)", "IF"))]
    if (tr.source == Member.OTHER_FAMILY).any():
        rows.append(row(OTHER, stats.paired(tr, "cell", "other_family→CPT(base_v1)", "none→CPT(base_v1)", "IF")))
    return rows


def judge(ctx: V.Context) -> V.Verdict:
    if (gated := V.gate(ctx, CLAIM)) is not None:
        return gated
    own, other = get(ctx.fx, OWN), get(ctx.fx, OTHER)
    if own is None:
        return V.absent("N1")
    if other is None:
        return V.Verdict("N1", V.Outcome.NOT_RUN, f"own-family IF gain {own.text()}; no other family in the profile "
                         "(models.other_family)", "no other family", "n/a (not run)")
    low = V.Check(OTHER, other, "< 0.05", V.met(other.mean < EFFECT))
    gap = V.Check(OWN, own, "above the other family's gain by ≥ 0.05", V.met(own.mean - other.mean >= EFFECT))
    out = V.grade(low.passed and gap.passed, gap.passed)
    return V.Verdict("N1", out, f"IF gain other-family {other.text()} vs own {own.text()}",
                     "the other family's residual " + ("does not transfer" if low.passed else "transfers"),
                     checks=(low, gap), note=V.seeds(low, gap))


CLAIM = Claim(
    "N1", "(suggested check; expected to fail)",
    "expected to fail. ΔIF = IF(CPT(base_v1)+Θr(other_family)) − IF(CPT(base_v1)). reproduced (it fails): ΔIF < 0.05 "
    "and below the own-family residual's gain by ≥ 0.05; partly: only the second; else not.",
    judge, measure, needs=(Member.BASE_V1, Member.INSTRUCT_V1, Member.OTHER_FAMILY, Member.OTHER_INSTRUCT))
