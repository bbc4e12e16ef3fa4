"""C1: CPT of an instruct model forgets instruction following (at the final budget, more than at the first
milestone, and across the paper's benchmarks where the profile scores them)."""
from __future__ import annotations

from cptlib.study import stats
from cptlib.study import verdicts as V
from cptlib.study.claims.base import Claim, Results
from cptlib.study.claims.measures import aggressive, bench_drop, cpt_instruct_first_seed, endpoints, first_seed
from cptlib.study.criteria import EFFECT
from cptlib.study.effects import Quantity, row
from cptlib.study.labels import CPT_I
from cptlib.members import Member

DROP = Quantity("C1", "ΔIF = IF(instruct_v1) − IF(CPT(instruct_v1))")
GROWS = Quantity("C1", "IF(CPT(instruct_v1)) final − first milestone")
# The paper's benchmark families (notebook 07_benchmarks, a profile with eval.benchmarks): the average over tasks.
BENCH = Quantity("C1", "Δ benchmarks (average over tasks) = instruct_v1 − CPT(instruct_v1)")
# Beside the default CPT, not judged (issue 30 step 5): the aggressive cell, cpt.lr at the N4 map's budget (first seed).
AGGRESSIVE = Quantity("C1", "ΔIF at the aggressive cell (cpt.lr, N4 budget)")


def measure(r: Results) -> list[dict]:
    rows = [] if (bench := bench_drop(r, CPT_I)) is None else [row(BENCH, bench)]
    if "forgetting" not in r:  # a profile of the benchmarks alone (notebook 07 without 01-05)
        return rows
    rows.append(row(DROP, stats.paired(endpoints(r), "model", Member.INSTRUCT_V1, CPT_I, "IF")))
    final, cpt_i = r["forgetting"].tokens.max(), cpt_instruct_first_seed(r)
    first = cpt_i[cpt_i.tokens > 0].tokens.min()
    if first != final:  # the horizon part of C1: the first seed is the one with every milestone
        both = cpt_i[cpt_i.tokens.isin([first, final])]
        rows.append(row(GROWS, stats.paired(both.assign(seed=first_seed(r)), "tokens", final, first, "IF")))
    if (cell := aggressive(r)) is not None and (cell.model == CPT_I).any():
        rows.append(row(AGGRESSIVE, stats.paired(cell, "model", Member.INSTRUCT_V1, CPT_I, "IF")))
    return rows


def judge(ctx: V.Context) -> V.Verdict:
    if (gated := V.gate(ctx, CLAIM)) is not None:
        return gated
    d = V.check(ctx, DROP, "CI above 0 and Δ ≥ 0.05", lambda e: e.lo > 0 and e.mean >= EFFECT)
    bench = V.check(ctx, BENCH, "CI above 0", lambda e: e.lo > 0)
    if d is None:  # a profile of the benchmarks alone: their average is C1's one number
        if bench is None:
            return V.absent("C1")
        return V.Verdict("C1", V.grade(bench.passed, bench.estimate.mean > 0), V.measured(bench),
                         f"CPT of instruct_v1 changes the benchmarks' average by {-bench.estimate.mean:+.3f}",
                         V.in_size(CLAIM.size[BENCH], bench.estimate), (bench,), V.seeds(bench))
    g = V.check(ctx, GROWS, "below 0 (more tokens, more forgetting)", lambda e: e.mean < 0)
    grows = g is None or g.passed
    out = V.grade(d.passed and grows and (bench is None or bench.passed), d.estimate.mean > 0)
    why = (f"CPT of instruct_v1 {'lowers' if d.estimate.mean > 0 else 'does not lower'} IF by {d.estimate.mean:+.3f}"
           + ("" if g is None else f"; from the first milestone to the final budget IF moves {g.estimate.mean:+.3f}")
           + ("" if bench is None else f"; the benchmarks' average drops by {bench.estimate.mean:+.3f} "
              f"({V.in_size(CLAIM.size[BENCH], bench.estimate)} in size)"))
    checks = tuple(c for c in (d, g, bench) if c is not None) + V.beside(ctx, AGGRESSIVE)
    return V.Verdict("C1", out, V.measured(*checks), why, V.in_size(CLAIM.size[DROP], d.estimate), checks,
                     V.seeds(*checks))


CLAIM = Claim(
    "C1", "IFEval drops up to 5.7 pts after 100M tokens (avg 2.7 over tasks); ≈10 pts after 1B (secondary)",
    "Δ = IF(instruct_v1) − IF(CPT(instruct_v1)) at the final budget. reproduced: the CI of Δ above 0, Δ ≥ 0.05 and "
    "IF at the final budget below IF at the first milestone (first seed), and where the profile scores the paper's "
    "benchmarks (eval.benchmarks) the CI of their average drop above 0; partly: Δ > 0 but not all of these; else not.",
    judge, measure, needs=(Member.INSTRUCT_V1,),
    old="the same without the benchmarks' clause (added before any benchmark number after CPT, calibration log run "
        "19; a profile without eval.benchmarks is judged as before)",
    size={DROP: (0.057, 0.057, "factor"),  # "a maximum drop of 5.7 points" after 100M tokens
          BENCH: (0.027, 0.027, "factor")})  # "an average drop of 2.7 points" across its benchmark suite
