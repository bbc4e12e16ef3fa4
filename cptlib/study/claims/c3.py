"""C3: CPT of the base model plus the instruction residual is about as good as the instruct model and keeps the
news."""
from __future__ import annotations

from cptlib.study import stats
from cptlib.study import verdicts as V
from cptlib.study.claims.base import Claim, Results
from cptlib.study.claims.measures import aggressive
from cptlib.study.criteria import EFFECT
from cptlib.study.effects import Quantity, row
from cptlib.study.labels import CPT_B, CPT_I, REST
from cptlib.members import Member

IF = Quantity("C3", "ΔIF vs instruct_v1")
IF_NAIVE = Quantity("C3", "ΔIF vs CPT(instruct_v1)")
NEWS_KEPT = Quantity("C3", "Δ era-B vs CPT(base_v1)")
NEWS_GAINED = Quantity("C3", "Δ era-B vs instruct_v1")
# Beside the default CPT, not judged (issue 30 step 5): the aggressive cell, cpt.lr at the N4 map's budget (first seed).
IF_AGGRESSIVE = Quantity("C3", "ΔIF vs instruct_v1 at the aggressive cell")
NEWS_AGGRESSIVE = Quantity("C3", "Δ era-B vs instruct_v1 at the aggressive cell")


def measure(r: Results) -> list[dict]:
    rows = []
    if "recipes" in r:
        rc = r["recipes"]
        rows += [row(IF, stats.paired(rc, "recipe", REST, Member.INSTRUCT_V1, "IF")),
                 row(IF_NAIVE, stats.paired(rc, "recipe", REST, CPT_I, "IF"))]
        if rc.era_b.notna().any():  # a real profile measures new knowledge only if it maps era_b to a task
            rows += [row(NEWS_KEPT, stats.paired(rc, "recipe", REST, CPT_B, "era_b")),
                     row(NEWS_GAINED, stats.paired(rc, "recipe", REST, Member.INSTRUCT_V1, "era_b"))]
    if "forgetting" in r and (cell := aggressive(r)) is not None and (cell.model == REST).any():
        rows.append(row(IF_AGGRESSIVE, stats.paired(cell, "model", REST, Member.INSTRUCT_V1, "IF")))
        if cell.era_b.notna().all():
            rows.append(row(NEWS_AGGRESSIVE, stats.paired(cell, "model", REST, Member.INSTRUCT_V1, "era_b")))
    return rows


def judge(ctx: V.Context) -> V.Verdict:
    if (gated := V.gate(ctx, CLAIM)) is not None:
        return gated
    dif = V.check(ctx, IF, "≥ −0.05", lambda e: e.mean >= -EFFECT)
    naive = V.check(ctx, IF_NAIVE, "≥ 0.05", lambda e: e.mean >= EFFECT)
    kept = V.check(ctx, NEWS_KEPT, "≥ −0.05", lambda e: e.mean >= -EFFECT)
    gained = V.check(ctx, NEWS_GAINED, "≥ 0.05", lambda e: e.mean >= EFFECT)
    if dif is None:
        return V.absent("C3")
    size = V.in_size(CLAIM.size[IF], dif.estimate)
    if kept is None:
        return V.Verdict("C3", V.Outcome.NOT_TESTABLE, V.measured(dif, naive), "no new-knowledge metric", size,
                         (dif, naive), "no new-knowledge metric: map era_b in eval.metrics")
    judged = (dif, naive, kept, gained)
    checks = judged + V.beside(ctx, IF_AGGRESSIVE, NEWS_AGGRESSIVE)
    out = V.grade(dif.passed and kept.passed and gained.passed, naive.passed and kept.passed)
    failed = [c.quantity.text for c in judged if not c.passed]
    why = "every check passes" if not failed else "fails: " + ", ".join(failed)
    return V.Verdict("C3", out, V.measured(*checks), why, size, checks, V.seeds(*checks))


CLAIM = Claim(
    "C3", "restored ≈ instruct, sometimes +4–5 pts IFEval, news kept",
    "ΔIF = IF(CPT(base_v1)+Θr) − IF(instruct_v1), ΔB = era-B acc(CPT(base_v1)+Θr) − era-B acc(CPT(base_v1)). "
    "reproduced: ΔIF ≥ −0.05, ΔB ≥ −0.05 and the restored model knows more news than instruct_v1 (era-B higher by "
    "≥ 0.05); partly: it beats CPT(instruct_v1) on IF by ≥ 0.05 and ΔB ≥ −0.05; else not.",
    judge, measure, needs=(Member.BASE_V1, Member.INSTRUCT_V1),
    size={IF: (0.0, 0.05, "range")})  # "about as good as, sometimes 4–5 points better"
