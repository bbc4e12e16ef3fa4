"""The study's claims, one module each, collected in CLAIMS: the claims table, the effects figure and the reports
iterate it, so a claim is added or changed in its own module (and, when added, one line below).

    out = left_out(results, misses)                      # {claim: {seed: why}}: seeds the validity rule drops
    fx = effects(results, out)                           # every claim's measured effects, one table
    ctx = Context(fx, n4=n4, texts=answers(results, out), left_out=out, seeds=seeds_of(results))
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


# Tables of the first seed alone (no seed column) in results written before issue 48: a claim that leaves the first
# seed out has none of them. The study's tables have a seed column now.
FIRST_SEED_TABLES = ("n4", "ablations", "shift")


def seeds_of(r: Results) -> tuple[int, ...]:
    """Every training seed the study's tables have."""
    return tuple(sorted({int(s) for t in r.values() if "seed" in t for s in t.seed.unique()}))


def left_out(r: Results, misses: Mapping[tuple[str, int], list[str]]) -> dict[str, dict[int, list[str]]]:
    """The validity rule (docs/calibration_log.md, run 22): for each claim, the seeds whose member it needs misses
    its own calibration target ({seed: why}); cptlib.study.verdicts.misses builds `misses` from the calibration."""
    out: dict[str, dict[int, list[str]]] = {}
    for c in CLAIMS.values():
        for (member, seed), why in misses.items():
            if member in c.needs:
                out.setdefault(c.id, {}).setdefault(seed, []).extend(why)
    return out


def without(r: Results, seeds: Iterable[int]) -> dict[str, pd.DataFrame]:
    """The results without `seeds`' rows; the first seed's tables (FIRST_SEED_TABLES) go with the first seed. Tables
    that are already means over seeds (the benchmarks' drops, the size ladder's trends) are kept: their profiles
    (real models, the ladder) have their own validity (no calibration targets; cptlib.study.scaling)."""
    seeds = set(seeds)
    if not seeds:
        return dict(r)
    first = min(seeds_of(r), default=None)
    out = {}
    for name, t in r.items():
        if "seed" in t:
            out[name] = t[~t.seed.isin(seeds)]
        elif name not in FIRST_SEED_TABLES or first not in seeds:
            out[name] = t
    return out


def kept(r: Results, out: Mapping[int, list[str]]) -> Results:
    """What a claim's numbers are measured on: the results without the seeds the validity rule leaves out; where it
    leaves every seed out, all of them, for numbers that are shown, not judged (the claim is not testable:
    cptlib.study.verdicts.gate)."""
    return r if out and set(seeds_of(r)) <= set(out) else without(r, out)


def _measured(c: Claim, r: Results, out: Mapping[int, list[str]]) -> list[dict]:
    return c.measure(kept(r, out))


def effects(r: Results, left: Mapping[str, Mapping[int, list[str]]] | None = None) -> pd.DataFrame:
    """Every effect a verdict uses: claim, quantity, mean, lo, hi (95% CI), n_seeds, ci (how), scale. A claim whose
    tables the results lack measures nothing; `left` ({claim: {seed: why}}, `left_out`) the seeds each claim's
    numbers leave out."""
    left = left or {}
    rows = [row for c in CLAIMS.values() for row in _measured(c, r, left.get(c.id, {}))]
    return pd.DataFrame(rows, columns=COLUMNS)


def answers(r: Results, left: Mapping[str, Mapping[int, list[str]]] | None = None) -> dict[str, str]:
    """The numbers that answer the open questions (Q2, Q3, N3: Context.texts), without the seeds `left` leaves out."""
    left = left or {}
    return {c.id: text for c in CLAIMS.values() if (text := c.answer(kept(r, left.get(c.id, {})))) is not None}


def judge(ctx: V.Context, only: Iterable[str] | None = None) -> list[V.Verdict]:
    """Every claim's verdict (or those named in `only`), in CLAIMS' order. A claim that is not testable still shows
    its numbers (as checks that are not judged), so the table and the figure hold every measured effect; the seeds
    the validity rule left out of a claim are named beside its numbers."""
    out = []
    for claim in (CLAIMS[k] for k in (CLAIMS if only is None else only)):
        v = claim.judge(ctx)
        shown = tuple(V.Check(Quantity(claim.id, q), get(ctx.fx, Quantity(claim.id, q)), "not judged", V.Met.SHOWN)
                      for q in ctx.fx[ctx.fx.claim == claim.id].quantity)
        if v.outcome is V.Outcome.NOT_TESTABLE and not v.checks and shown:
            v = replace(v, measured=f"{V.measured(*shown)} — not judged: {v.measured}", checks=shown)
        if v.outcome not in (V.Outcome.NOT_RUN, V.Outcome.NOT_TESTABLE) and (named := V.left_out_text(ctx, claim.id)):
            v = replace(v, measured=f"{v.measured} — {named}")
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
