"""C3: CPT of the base model plus the instruction residual is about as good as the instruct model and knows the news
(calibration log runs 21–22: an IF half and a news half per news metric, each judged on its 95% intervals)."""
from __future__ import annotations

from cptlib.study import stats
from cptlib.study import verdicts as V
from cptlib.study.claims.base import Claim, Results
from cptlib.study.claims.measures import aggressive
from cptlib.study.criteria import EFFECT
from cptlib.study.effects import Quantity, row
from cptlib.study.labels import CPT_B, CPT_I, PEFT, REST, SFT
from cptlib.members import Member

IF = Quantity("C3", "ΔIF vs instruct_v1")
IF_NAIVE = Quantity("C3", "ΔIF vs CPT(instruct_v1)")
# The news, each way the profile asks it: in multiple choice (era_b) and in chat (knowledge).
NEWS = {"era_b": "era-B MC", "knowledge": "era-B in chat"}


def kept(metric: str, reference: str = SFT) -> Quantity:
    """The restored model's news against the paper's baseline, CPT(base_v1)+SFT (CPT(base_v1) where a profile
    cannot run SFT)."""
    return Quantity("C3", f"Δ {NEWS[metric]} vs {reference}")


def gained(metric: str) -> Quantity:
    """The restored model's news against instruct_v1's, which never read it."""
    return Quantity("C3", f"Δ {NEWS[metric]} vs instruct_v1")


# Shown, not judged: the residual attached as a PEFT adapter against the merged one (study.peft_recipe).
IF_PEFT = Quantity("C3", "ΔIF PEFT adapter vs merged Θr")
NEWS_PEFT = Quantity("C3", "Δ era-B MC PEFT adapter vs merged Θr")
# Beside the default CPT, not judged (issue 30 step 5): the aggressive cell, cpt.lr at the N4 map's budget (its seeds).
IF_AGGRESSIVE = Quantity("C3", "ΔIF vs instruct_v1 at the aggressive cell")
NEWS_AGGRESSIVE = Quantity("C3", "Δ era-B vs instruct_v1 at the aggressive cell")


def measure(r: Results) -> list[dict]:
    rows = []
    if "recipes" in r:
        rc = r["recipes"]
        rows += [row(IF, stats.paired(rc, "recipe", REST, Member.INSTRUCT_V1, "IF")),
                 row(IF_NAIVE, stats.paired(rc, "recipe", REST, CPT_I, "IF"))]
        reference = SFT if (rc.recipe == SFT).any() else CPT_B
        for metric in NEWS:  # a real profile measures the news only where eval.metrics maps it to a task
            if metric in rc and rc[metric].notna().any():
                rows += [row(kept(metric, reference), stats.paired(rc, "recipe", REST, reference, metric)),
                         row(gained(metric), stats.paired(rc, "recipe", REST, Member.INSTRUCT_V1, metric))]
        if (rc.recipe == PEFT).any():
            rows.append(row(IF_PEFT, stats.paired(rc, "recipe", PEFT, REST, "IF")))
            if rc.era_b.notna().any():
                rows.append(row(NEWS_PEFT, stats.paired(rc, "recipe", PEFT, REST, "era_b")))
    if "forgetting" in r and (cell := aggressive(r)) is not None and (cell.model == REST).any():
        rows.append(row(IF_AGGRESSIVE, stats.paired(cell, "model", REST, Member.INSTRUCT_V1, "IF")))
        if cell.era_b.notna().all():
            rows.append(row(NEWS_AGGRESSIVE, stats.paired(cell, "model", REST, Member.INSTRUCT_V1, "era_b")))
    return rows


def half(checks: list[V.Check]) -> V.Met:
    """A half of the claim: met when each of its checks is, missed when one is missed, else inconclusive."""
    if all(c.passed for c in checks):
        return V.Met.PASS
    return V.Met.FAIL if any(c.met is V.Met.FAIL for c in checks) else V.Met.INCONCLUSIVE


def judge(ctx: V.Context) -> V.Verdict:
    if (gated := V.gate(ctx, CLAIM)) is not None:
        return gated
    dif = V.at_least(ctx, IF, -EFFECT)
    if dif is None:
        return V.absent("C3")
    naive = V.check(ctx, IF_NAIVE, "shown, not judged", None)
    size = V.in_size(CLAIM.size[IF], dif.estimate)
    news = {}
    for metric in NEWS:
        k = next((c for ref in (SFT, CPT_B) if (c := V.at_least(ctx, kept(metric, ref), -EFFECT))), None)
        g = V.at_least(ctx, gained(metric), 0.0, strict=True)
        if k is not None and g is not None:
            news[metric] = (k, g)
    if not news:
        return V.Verdict("C3", V.Outcome.NOT_TESTABLE, V.measured(dif, naive), "no new-knowledge metric", size,
                         (dif, naive), "no new-knowledge metric: map era_b or knowledge in eval.metrics")
    halves = {"IF": dif.met} | {NEWS[m]: half(list(cs)) for m, cs in news.items()}
    news_met = [halves[NEWS[m]] for m in news]
    if dif.met is V.Met.FAIL or all(h is V.Met.FAIL for h in news_met):
        out = V.Outcome.NOT
    elif all(h is V.Met.PASS for h in halves.values()):
        out = V.Outcome.REPRODUCED
    elif dif.passed and any(h is V.Met.PASS for h in news_met):
        out = V.Outcome.PARTLY
    else:
        out = V.Outcome.INCONCLUSIVE
    checks = ((dif, *[c for cs in news.values() for c in cs], naive) + V.beside(ctx, IF_AGGRESSIVE, NEWS_AGGRESSIVE)
              + V.beside(ctx, IF_PEFT, NEWS_PEFT, rule="the same residual attached as a PEFT adapter; not judged"))
    why = "; ".join(f"{name} half: {met.value}" for name, met in halves.items())
    return V.Verdict("C3", out, V.measured(*checks), why, size, checks, V.seeds(*checks))


CLAIM = Claim(
    "C3", "restored ≈ instruct, sometimes +4–5 pts IFEval, news kept",
    "Every bound judged on its 95% CI. IF half: IF(CPT(base_v1)+Θr) − IF(instruct_v1) ≥ −0.05. A news half for each "
    "way the profile asks the news (era-B in multiple choice; in chat): news(CPT(base_v1)+Θr) − news(CPT(base_v1)+SFT) "
    "≥ −0.05 (CPT(base_v1) where the profile cannot run SFT) and news(CPT(base_v1)+Θr) − news(instruct_v1) > 0; a "
    "half is met when its checks are, missed when one is missed. reproduced: every half met; not reproduced: the IF "
    "half missed, or every news half; partly: the IF half and a news half met; inconclusive: otherwise.",
    judge, measure, needs=(Member.BASE_V1, Member.INSTRUCT_V1),
    old="mean ΔIF ≥ −0.05, mean era-B(restored) − era-B(CPT(base_v1)) ≥ −0.05 and era-B(restored) − era-B(instruct_v1) "
        "≥ 0.05 (reproduced); it beats CPT(instruct_v1) on IF by ≥ 0.05 and the news is kept (partly); else not — all "
        "on means, the news in multiple choice only (calibration log run 22)",
    size={IF: (0.0, 0.05, "range")})  # "about as good as, sometimes 4–5 points better"
