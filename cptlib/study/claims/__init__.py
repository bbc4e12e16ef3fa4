"""The study's claims, one module each, collected in CLAIMS: the claims table, the effects figure and the reports
iterate it, so a claim is added or changed in its own module (and, when added, one line below).

    fx = effects(results)                                # every claim's measured effects, one table
    ctx = Context(fx, invalid, n4, instruct_if, texts=answers(results))   # cptlib.study.verdicts.Context
    verdicts = judge(ctx)                                # one Verdict per claim, in CLAIMS' order
    table(verdicts)                                      # the claims table (claims.csv)

A claim (cptlib.study.claims.base.Claim) holds the paper's words and its rule, the ancestors and study part it rests
on, how its effects are measured from the study's tables (`measure`), how it is judged from them (`judge`) and, for an
open question, the sentence that answers it (`answer`).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

import pandas as pd

from cptlib.study import verdicts as V
from cptlib.study.claims import c1, c2, c3, c4, c5, c6, n1, n2, n3, n4, q1, q2, q3
from cptlib.study.claims.base import Claim, Results
from cptlib.study.effects import COLUMNS, Quantity, get

# In the order the claims table lists them: the paper's claims, the open questions, the suggested checks.
CLAIMS: dict[str, Claim] = {c.id: c for c in (
    c1.CLAIM, c2.CLAIM, c3.CLAIM, c4.CLAIM, c5.CLAIM, c6.CLAIM,
    q1.CLAIM, q2.CLAIM, q3.CLAIM,
    n1.CLAIM, n2.CLAIM, n3.CLAIM, n4.CLAIM,
)}


def effects(r: Results) -> pd.DataFrame:
    """Every effect a verdict uses: claim, quantity, mean, lo, hi (95% CI), n_seeds, ci (how), scale. A claim whose
    tables the results lack measures nothing."""
    return pd.DataFrame([row for c in CLAIMS.values() for row in c.measure(r)], columns=COLUMNS)


def answers(r: Results) -> dict[str, str]:
    """The numbers that answer the open questions (Q2, Q3, N3: Context.texts)."""
    return {c.id: text for c in CLAIMS.values() if (text := c.answer(r)) is not None}


def judge(ctx: V.Context, only: Iterable[str] | None = None) -> list[V.Verdict]:
    """Every claim's verdict (or those named in `only`), in CLAIMS' order. A claim that is not testable still shows
    its numbers (as checks that are not judged), so the table and the figure hold every measured effect; another
    ancestor seed's member that misses its calibration is named beside the numbers that average over it."""
    out = []
    for claim in (CLAIMS[k] for k in (CLAIMS if only is None else only)):
        v = claim.judge(ctx)
        shown = tuple(V.Check(Quantity(claim.id, q), get(ctx.fx, Quantity(claim.id, q)), "not judged", None)
                      for q in ctx.fx[ctx.fx.claim == claim.id].quantity)
        if v.outcome is V.Outcome.NOT_TESTABLE and not v.checks and shown:
            v = replace(v, measured=f"{V.measured(*shown)} — not judged: {v.measured}", checks=shown)
        if v.outcome is not V.Outcome.NOT_RUN and (named := V.other_seeds_missed(ctx, claim.needs)):
            v = replace(v, measured=f"{v.measured} — counted, though it misses its calibration: {named}")
        out.append(v)
    return out


def benchmarks_alone(drops: pd.DataFrame) -> list[V.Verdict]:
    """C1 and C2 of a profile that runs the benchmarks notebook alone: judged on the benchmarks' average drops
    (cptlib.study.benchmarks.drops); the claim whose model the profile lacks says it was not run."""
    return judge(V.Context(effects({"benchmarks": drops})), only=("C1", "C2"))


def table(verdicts: list[V.Verdict]) -> pd.DataFrame:
    """The claims table: claim, paper, measured, in kind, in size, why, criterion."""
    return pd.DataFrame([{"claim": v.claim, "paper (approx.)": CLAIMS[v.claim].paper,
                          "measured (mean [95% CI], seeds)": v.measured, "in kind": v.label, "in size": v.in_size,
                          "why": v.why, "criterion": CLAIMS[v.claim].rule} for v in verdicts])


def paper_number(quantity: Quantity) -> tuple[float, float, str] | None:
    """The paper's number for a quantity, (low, high, "factor" | "range"), where the paper states one."""
    return CLAIMS[quantity.claim].size.get(quantity) if quantity.claim in CLAIMS else None


def changed() -> list[tuple[str, str, str]]:
    """(claim, rule now, rule before) for every criterion changed after the results were first seen."""
    return [(c.id, c.rule, c.old) for c in CLAIMS.values() if c.old]


def not_run(cannot: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Claims a suite cannot test by design, each standing on a part it never runs (Suite.cannot: part -> why):
    {claim: ("testbed only", why)}."""
    return {c.id: ("testbed only", cannot[c.part]) for c in CLAIMS.values() if c.part in cannot}
