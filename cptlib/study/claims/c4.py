"""C4: residuals transfer between versions of one model family."""
from __future__ import annotations

import pandas as pd

from cptlib.study import stats
from cptlib.study import verdicts as V
from cptlib.study.claims.base import Claim, Results
from cptlib.study.criteria import EFFECT
from cptlib.study.effects import Quantity, row
from cptlib.members import Member

A = Quantity("C4", "(a) IF(base_v1+Θr(v2)) − IF(instruct_v1)")
B = Quantity("C4", "(b) IF(base_v2+Θr(v1)) − IF(base_v2)")
B_SIZE = Quantity("C4", "(b) IF(base_v2+Θr(v1)) − IF(instruct_v2)")


def cells(r: Results) -> pd.DataFrame:
    """The transfer table with one label per (source, target) cell, for paired contrasts (C4, N1)."""
    tr = r["transfer"]
    return tr.assign(cell=tr.source + "→" + tr.target)


def measure(r: Results) -> list[dict]:
    if "transfer" not in r:
        return []
    tr = cells(r)
    return [row(A, stats.paired(tr, "cell", "v2→base_v1", "native→instruct_v1", "IF")),
            row(B, stats.paired(tr, "cell", "v1→base_v2", "none→base_v2", "IF")),
            row(B_SIZE, stats.paired(tr, "cell", "v1→base_v2", "native→instruct_v2", "IF"))]


def judge(ctx: V.Context) -> V.Verdict:
    if (gated := V.gate(ctx, CLAIM)) is not None:
        return gated
    a = V.at_least(ctx, A, -EFFECT)  # at least as good as instruct_v1 (non-inferior by 0.05)
    b = V.at_least(ctx, B, 0.0, strict=True)  # improves base_v2
    b2 = V.check(ctx, B_SIZE, "(in size only)", None)
    if a is None:
        return V.absent("C4")
    met = [c.met for c in (a, b)]
    out = (V.Outcome.REPRODUCED if all(m is V.Met.PASS for m in met) else V.Outcome.PARTLY if V.Met.PASS in met
           else V.Outcome.NOT if V.Met.FAIL in met else V.Outcome.INCONCLUSIVE)
    why = (f"(a) the v2 residual on base_v1 at least as good as instruct_v1: {a.met.value}; (b) the v1 residual "
           f"improves base_v2: {b.met.value}")
    size = f"(a) {V.in_size(CLAIM.size[A], a.estimate)}; (b) {V.in_size(CLAIM.size[B_SIZE], b2.estimate)}"
    return V.Verdict("C4", out, V.measured(a, b, b2), why, size, (a, b, b2), V.seeds(a, b))


CLAIM = Claim(
    "C4", "3.1 residual on 3 base beats 3 Instruct; 3 residual on 3.1 base below 3.1 Instruct, above base",
    "each judged on its 95% CI: (a) the v2 residual on base_v1 is at least as good as instruct_v1: Δ ≥ −0.05; (b) the "
    "v1 residual improves base_v2: Δ > 0. reproduced: both met; partly: one; not reproduced: neither met and one "
    "missed; inconclusive: neither met nor missed.",
    judge, measure, needs=(Member.BASE_V1, Member.INSTRUCT_V1, Member.BASE_V2, Member.INSTRUCT_V2),
    old="(a) mean Δ ≥ 0 and the CI's lower end > −0.05; (b) mean Δ ≥ 0.05 and the CI's lower end > 0; reproduced: "
        "both, partly: one, else not (calibration log run 22); before issue 29, (a) mean IF(base_v1+Θr(v2)) ≥ "
        "IF(instruct_v1) − 0.05 (it passed a loss of 0.027) and (b) mean gain ≥ 0.05",
    size={A: (0.0, 0.05, "range"),  # "beats 3 Instruct" by a few points
          B_SIZE: (-0.05, 0.0, "range")})  # "slightly below 3.1 Instruct"
