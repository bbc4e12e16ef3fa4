"""C1: CPT of an instruct model forgets instruction following (at the final budget, more than at the first
milestone, and across the paper's benchmarks where the profile scores them)."""
from __future__ import annotations

from cptlib.study import stats
from cptlib.study import verdicts as V
from cptlib.study.claims.base import Claim, Results
from cptlib.study.claims.measures import aggressive, bench_drop, cpt_instruct_along, endpoints
from cptlib.study.effects import Quantity, row
from cptlib.study.labels import CPT_I
from cptlib.members import Member

DROP = Quantity("C1", "ΔIF = IF(instruct_v1) − IF(CPT(instruct_v1))")
GROWS = Quantity("C1", "IF(CPT(instruct_v1)) final − first milestone")
# The paper's benchmark families (notebook 07_benchmarks, a profile with eval.benchmarks): the average over tasks.
BENCH = Quantity("C1", "Δ benchmarks (average over tasks) = instruct_v1 − CPT(instruct_v1)")
# Beside the default CPT, not judged (issue 30 step 5): the aggressive cell, cpt.lr at the N4 map's budget.
AGGRESSIVE = Quantity("C1", "ΔIF at the aggressive cell (cpt.lr, N4 budget)")


def measure(r: Results) -> list[dict]:
    rows = [] if (bench := bench_drop(r, CPT_I)) is None else [row(BENCH, bench)]
    if "forgetting" not in r:  # a profile of the benchmarks alone (notebook 07 without 01-05)
        return rows
    rows.append(row(DROP, stats.paired(endpoints(r), "model", Member.INSTRUCT_V1, CPT_I, "IF")))
    final, cpt_i = r["forgetting"].tokens.max(), cpt_instruct_along(r)
    first = cpt_i[cpt_i.tokens > 0].tokens.min()
    if first != final:  # the horizon part of C1, paired by seed over the seeds with every milestone
        both = cpt_i[cpt_i.tokens.isin([first, final])]
        rows.append(row(GROWS, stats.paired(both, "tokens", final, first, "IF")))
    if (cell := aggressive(r)) is not None and (cell.model == CPT_I).any():
        rows.append(row(AGGRESSIVE, stats.paired(cell, "model", Member.INSTRUCT_V1, CPT_I, "IF")))
    return rows


def judge(ctx: V.Context) -> V.Verdict:
    if (gated := V.gate(ctx, CLAIM)) is not None:
        return gated
    d = V.at_least(ctx, DROP, 0.0, strict=True)
    bench = V.at_least(ctx, BENCH, 0.0, strict=True)
    if d is None:  # a profile of the benchmarks alone: their average is C1's one number
        if bench is None:
            return V.absent("C1")
        return V.Verdict("C1", V.decide([bench]), V.measured(bench),
                         f"CPT of instruct_v1 changes the benchmarks' average by {-bench.estimate.mean:+.3f}",
                         V.in_size(CLAIM.size[BENCH], bench.estimate), (bench,), V.seeds(bench))
    g = V.at_most(ctx, GROWS, 0.0, strict=True)  # more tokens, more forgetting
    supporting = tuple(c for c in (g, bench) if c is not None)
    why = (f"CPT of instruct_v1 lowers IF by {d.estimate.mean:+.3f} ({d.met.value})"
           + ("" if g is None else f"; from the first milestone to the final budget IF moves {g.estimate.mean:+.3f} "
              f"({g.met.value})")
           + ("" if bench is None else f"; the benchmarks' average drops by {bench.estimate.mean:+.3f} ({bench.met.value}"
              f"; {V.in_size(CLAIM.size[BENCH], bench.estimate)} in size)"))
    checks = (d, *supporting) + V.beside(ctx, AGGRESSIVE)
    return V.Verdict("C1", V.decide([d], supporting), V.measured(*checks), why,
                     V.in_size(CLAIM.size[DROP], d.estimate), checks, V.seeds(*checks))


CLAIM = Claim(
    "C1", "IFEval drops up to 5.7 pts after 100M tokens (avg 2.7 over tasks); ≈10 pts after 1B (secondary)",
    "Δ = IF(instruct_v1) − IF(CPT(instruct_v1)) at the final budget, every bound judged on its 95% CI. Headline: "
    "Δ > 0. Supporting: IF at the final budget below IF at the first milestone (the seeds with every milestone), and where the profile "
    "scores the paper's benchmarks (eval.benchmarks) their average drop > 0. reproduced: all met; partly: the "
    "headline met, a supporting check not; inconclusive: the headline's CI spans 0; not reproduced: its CI lies at or "
    "below 0.",
    judge, measure, needs=(Member.INSTRUCT_V1,),
    old="the CI of Δ above 0 and mean Δ ≥ 0.05 and the final budget's mean IF below the first milestone's (reproduced), "
        "mean Δ > 0 (partly), else not (calibration log run 22, 2026-12-07); before run 19, without the benchmarks",
    size={DROP: (0.057, 0.057, "factor"),  # "a maximum drop of 5.7 points" after 100M tokens
          BENCH: (0.027, 0.027, "factor")})  # "an average drop of 2.7 points" across its benchmark suite
