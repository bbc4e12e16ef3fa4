"""C2: CPT of a base model degrades its base abilities a little (era-A knowledge, and the paper's benchmarks where
the profile scores them)."""
from __future__ import annotations

from cptlib.study import stats
from cptlib.study import verdicts as V
from cptlib.study.claims.base import Claim, Results
from cptlib.study.claims.measures import bench_drop, endpoints
from cptlib.study.criteria import EFFECT
from cptlib.study.effects import Quantity, row
from cptlib.study.labels import CPT_B
from cptlib.members import Member

DROP = Quantity("C2", "Δ era-A = base_v1 − CPT(base_v1)")
BENCH = Quantity("C2", "Δ benchmarks (average over tasks) = base_v1 − CPT(base_v1)")


def measure(r: Results) -> list[dict]:
    rows = [] if (bench := bench_drop(r, CPT_B)) is None else [row(BENCH, bench)]
    # absent where the profile has no base model, or maps no era-A task (a real profile: eval.metrics)
    if "forgetting" in r and (endpoints(r).model == CPT_B).any() and endpoints(r).era_a.notna().any():
        rows.append(row(DROP, stats.paired(endpoints(r), "model", Member.BASE_V1, CPT_B, "era_a")))
    return rows


def judge(ctx: V.Context) -> V.Verdict:
    if (gated := V.gate(ctx, CLAIM)) is not None:
        return gated
    checks = tuple(c for q in (DROP, BENCH) if (c := V.at_most(ctx, q, EFFECT)) is not None)
    if not checks:
        return V.absent("C2")
    why = "; ".join(f"CPT costs base_v1 {c.estimate.mean:+.3f} of "
                    f"{'era-A accuracy' if c.quantity == DROP else 'the benchmarks average accuracy'} ({c.met.value})"
                    for c in checks)
    return V.Verdict("C2", V.decide(checks), V.measured(*checks), why, checks=checks, note=V.seeds(*checks))


CLAIM = Claim(
    "C2", "small degradation of base abilities",
    "Δ = era-A acc(base_v1) − era-A acc(CPT(base_v1)) where the profile maps an era-A task, and where it scores the "
    "paper's benchmarks the average over them of acc(base_v1) − acc(CPT(base_v1)); each a headline check, Δ ≤ 0.05 "
    "judged on its 95% CI. reproduced: every CI at or below 0.05; not reproduced: one lies above; inconclusive: "
    "otherwise.", judge, measure, needs=(Member.BASE_V1,),
    old="reproduced: each CI's upper end ≤ 0.05; partly: each mean Δ ≤ 0.05; else not (calibration log run 22); "
        "before run 19, era-A only")
