"""The claims as curves over the drift (issue 30, step 5; notebook 08, `make reproduce PROFILE=drift`).

    table = cells(profile)     # one row per seed × learning rate × budget × model, scored on the panels' tasks
    curves = claim_curves(table)   # per cell: C1 ΔIF, C2's era-A drop, C3 ΔIF, C3's news kept, era-B via chat
    per_cell = regime(table, misses)   # C1-C3 judged at every cell inside the regime (drift ratio <= 0.5)
    verdicts = across(per_cell)        # each claim across the regime: reproduced at every such cell, some, none

Every cell of the N4 grid (the CPT learning rates × the milestones of a `study.n4_tokens` run) for *every* training
seed: CPT(instruct_v1), CPT(base_v1) and CPT(base_v1)+Θr at every milestone, CPT(base_v1)+SFT at each learning
rate's final budget (an SFT per cell; on this CPU one SFT costs ~110 s), instruct_v1 and base_v1 at 0 tokens. A cell's x is the
drift ratio ‖θ_cpt − θ_base‖ / ‖Θr‖ of its CPT(base_v1) (the regime's quantity), its mean over the seeds with a t
interval. Each y is a mean over the seeds and items with the study's crossed 95% interval, paired by seed and item
for a difference (cptlib.study.stats). The curves are shown; the claims are judged across the regime (`regime`,
`across`): C1-C3 by the claims' own rules (cptlib.study.claims) at every cell whose drift ratio's upper end is at most
0.5, the validity rule leaving out the seeds whose members miss their calibration. The designs were written down
before the numbers (docs/calibration_log.md, runs 20 and 22).
"""
from __future__ import annotations

import math

import pandas as pd

from cptlib.config import Profile, n4_cpt
from cptlib.core.stages import read_manifest
from cptlib.family import resolve as fam
from cptlib.study import claims, stats
from cptlib.study import verdicts as V
from cptlib.study.criteria import EFFECT
from cptlib.study.labels import CPT_B, CPT_I, REST, SFT
from cptlib.evaluation.suite import PANEL_TASKS
from cptlib.study.experiments import instruct_drift, why_not
from cptlib.study.restored import drift, milestones, restored
from cptlib.study.scoring import scored
from cptlib.members import Member

# The models every cell is compared with, at 0 tokens: C1 and C3 read instruct_v1, C2 base_v1.
ANCESTORS = (Member.INSTRUCT_V1, Member.BASE_V1)

# The curves, each (name, what it is, model a, model b or None, metric): a − b paired by seed and item, or a's mean.
CURVES = (
    ("C1 ΔIF", "IF(instruct_v1) − IF(CPT(instruct_v1))", Member.INSTRUCT_V1, CPT_I, "IF"),
    ("C2 Δ era-A", "era-A acc(base_v1) − era-A acc(CPT(base_v1))", Member.BASE_V1, CPT_B, "era_a"),
    ("C3 ΔIF", "IF(CPT(base_v1)+Θr) − IF(instruct_v1)", REST, Member.INSTRUCT_V1, "IF"),
    ("C3 news kept", "era-B acc(CPT(base_v1)+Θr) − era-B acc(CPT(base_v1))", REST, CPT_B, "era_b"),
    (f"era-B via chat: {CPT_I}", "era-B via chat of CPT(instruct_v1)", CPT_I, None, "knowledge"),
    (f"era-B via chat: {SFT}", "era-B via chat of CPT(base_v1)+SFT (each learning rate's final budget)", SFT, None,
     "knowledge"),
    (f"era-B via chat: {REST}", "era-B via chat of CPT(base_v1)+Θr", REST, None, "knowledge"),
)


def cells(profile: Profile) -> pd.DataFrame:
    """Every seed × learning rate × milestone of the N4 grid, each recipe's model scored on the panels' tasks."""
    with_sft = why_not(profile, "sft") is None  # a real profile has no instruction data to fine-tune on again
    rows = []
    for seed in profile.train_seeds:
        f = fam.build_family(profile, seed, other_family=False)
        inst_drift = instruct_drift(f[Member.BASE_V1], f[Member.INSTRUCT_V1])
        rows += [{"seed": seed, "lr": math.nan, "tokens": 0, "model": m, "drift_ratio": 0.0, "own_drift_ratio": 0.0,
                  "path": f[m], "tasks": PANEL_TASKS} for m in ANCESTORS]
        for lr in dict.fromkeys([profile.cpt.lr, *profile.study.n4_lrs]):
            cfg = n4_cpt(profile, lr)
            cpt_b, cpt_i = fam.cpt(profile, f[Member.BASE_V1], seed, cfg), fam.cpt(profile, f[Member.INSTRUCT_V1], seed, cfg)
            final = read_manifest(cpt_b)["tokens"]
            of_instruct = milestones(cpt_i)
            for tokens, model in milestones(cpt_b).items():
                cell = {"seed": seed, "lr": lr, "tokens": tokens, "drift_ratio": drift(model) / inst_drift,
                        "tasks": PANEL_TASKS}
                rows += [{**cell, "model": CPT_B, "own_drift_ratio": cell["drift_ratio"], "path": model},
                         {**cell, "model": REST, "own_drift_ratio": cell["drift_ratio"],
                          "path": restored(f[Member.BASE_V1], f[Member.INSTRUCT_V1], model)},
                         {**cell, "model": CPT_I, "own_drift_ratio": drift(of_instruct[tokens]) / inst_drift,
                          "path": of_instruct[tokens]}]
                if with_sft and tokens == final:
                    sft = fam.instruct(profile, cpt_b, f["data"], "v1", seed)
                    rows.append({**cell, "model": SFT, "own_drift_ratio": cell["drift_ratio"], "path": sft})
    return scored(rows, profile, f["data"])


def claim_curves(table: pd.DataFrame) -> pd.DataFrame:
    """Per curve and grid cell (learning rate × budget): the mean over seeds of the cell's drift ratio (with its t
    interval over seeds) and the curve's value, mean and crossed 95% interval, with the seeds it rests on."""
    rows = []
    reference = table[table.model.isin(ANCESTORS)].assign(lr=math.nan, tokens=0)
    for (lr, tokens), cell in table[~table.model.isin(ANCESTORS)].groupby(["lr", "tokens"], sort=True):
        x = stats.over_seeds(cell.drop_duplicates("seed").drift_ratio.reset_index(drop=True))
        both = pd.concat([cell, reference])
        for name, what, a, b, metric in CURVES:
            if a not in set(both.model) or (b is not None and b not in set(both.model)):
                continue  # SFT only at each learning rate's final budget; none for a real profile
            if both[metric].isna().all():
                continue  # a metric the profile does not measure (a real profile without era-B questions)
            est = (stats.paired(both, "model", a, b, metric) if b is not None
                   else stats.estimate(both[both.model == a], metric))
            rows.append({"curve": name, "quantity": what, "lr": lr, "tokens": tokens, "drift_ratio": x.mean,
                         "drift_lo": x.lo, "drift_hi": x.hi, "value": est.mean, "lo": est.lo, "hi": est.hi,
                         "n_seeds": est.n_seeds, "ci": est.method})
    return pd.DataFrame(rows)


# Run 20's reading, fixed before the numbers: per learning rate, the budgets at which each curve's interval says this.
READING = {
    "C1 ΔIF": ("C1's ΔIF interval lies above 0", lambda r: r.lo > 0),
    "C3 ΔIF": (f"C3's ΔIF interval lies below −{EFFECT:g}", lambda r: r.hi < -EFFECT),
}


def hits(curves: pd.DataFrame, curve: str, lr: float) -> tuple[pd.DataFrame, int]:
    """The rows (budgets, in order) of `curve` at `lr` whose interval meets READING's condition, and how many budgets
    that learning rate has."""
    rows = curves[(curves.curve == curve) & (curves.lr == lr)].sort_values("tokens")
    return rows[READING[curve][1](rows)], len(rows)


def reading(curves: pd.DataFrame) -> list[str]:
    """Run 20's reading (READING): per learning rate, the budgets at which C1's ΔIF interval lies above 0 and those at
    which C3's ΔIF interval lies below −EFFECT; the largest era-B via chat a recipe reaches, with its interval. Every
    budget is named, with or without the interval in question, so that a budget that has it is never read as "from
    there on" when a larger one does not (issue 48: lr 1e-3's C1 interval leaves 0 at 16,384 tokens and comes back to
    it at 32,768 and 65,536)."""

    def where(curve: str, lr: float) -> str:
        found, n = hits(curves, curve, lr)
        mine = curves[(curves.curve == curve) & (curves.lr == lr)]
        rest = mine[~mine.tokens.isin(found.tokens)].sort_values("tokens")
        if found.empty:
            return f"at none of its {n} budgets"
        at = [f"{r.tokens:,}{' tokens' if i == 0 else ''} (drift {r.drift_ratio:.2f}; {r.value:+.3f} [{r.lo:+.3f}, "
              f"{r.hi:+.3f}])" for i, r in enumerate(found.itertuples())]
        at = ", ".join(at[:-1]) + " and " + at[-1] if len(at) > 1 else at[0]
        return f"at {len(found)} of {n} budgets, {at}" + (f"; not at {_tokens(rest.tokens)}" if len(rest) else "")

    lines = []
    for lr in sorted(curves.lr.unique()):
        lines.append(f"lr {lr:g}: " + " ".join(f"{says} {where(curve, lr)}."
                                               for curve, (says, _rule) in READING.items()))
    for name in [c[0] for c in CURVES if c[3] is None]:
        g = curves[curves.curve == name]
        if g.empty:
            continue
        r = g.loc[g.value.idxmax()]
        lines.append(f"{name}: at most {r.value:.3f} [{r.lo:.3f}, {r.hi:.3f}] (lr {r.lr:g}, {r.tokens:,} tokens, "
                     f"drift {r.drift_ratio:.2f}; {int(r.n_seeds)} seeds).")
    return lines


def _tokens(values) -> str:
    """8,192, 16,384 and 32,768 tokens."""
    text = [f"{int(v):,}" for v in values]
    return (", ".join(text[:-1]) + " and " + text[-1] if len(text) > 1 else text[0]) + " tokens"


# The claims across the regime (docs/calibration_log.md, run 22 §5, written before any of these verdicts).
REGIME_DRIFT = 0.5  # a cell is inside the regime when the upper end of its drift ratio's interval is at most this
REGIME_CLAIMS = ("C1", "C2", "C3")
# What C3 reads at a cell of the grid: the IF half and the news in multiple choice (run 22 §5); era-B via chat is
# drawn as curves, not judged here.
REGIME_NEWS = "era_b"


def inside(table: pd.DataFrame) -> pd.DataFrame:
    """The grid's cells (lr, tokens, drift_ratio, drift_lo, drift_hi: CPT(base_v1)'s drift ratio over every seed, t
    interval) whose drift ratio's upper end is at most REGIME_DRIFT, in order of drift."""
    rows = []
    for (lr, tokens), cell in table[table.model == CPT_B].groupby(["lr", "tokens"], sort=True):
        x = stats.over_seeds(cell.drift_ratio.reset_index(drop=True))
        rows.append({"lr": lr, "tokens": tokens, "drift_ratio": x.mean, "drift_lo": x.lo, "drift_hi": x.hi})
    cells = pd.DataFrame(rows, columns=["lr", "tokens", "drift_ratio", "drift_lo", "drift_hi"])
    return cells[cells.drift_hi.fillna(cells.drift_ratio) <= REGIME_DRIFT].sort_values("drift_ratio", ignore_index=True)


def cell_results(table: pd.DataFrame, lr: float, tokens: int) -> dict[str, pd.DataFrame]:
    """One cell of the grid as the study's results (the tables the claims measure, cptlib.study.claims): the
    forgetting table holds the ancestors at 0 tokens and the cell's CPT models as its final budget; the recipes
    table every recipe of the cell (CPT(base_v1)+SFT only at a learning rate's final budget: elsewhere C3 keeps the
    news against CPT(base_v1), as for a profile without SFT) with the news in multiple choice alone."""
    ancestors = table[table.model.isin(ANCESTORS)]
    cell = table[(table.lr == lr) & (table.tokens == tokens)]
    forgetting = pd.concat([ancestors, cell[cell.model.isin([CPT_I, CPT_B])]], ignore_index=True)
    recipes = pd.concat([ancestors[ancestors.model == Member.INSTRUCT_V1], cell], ignore_index=True)
    recipes = recipes.rename(columns={"model": "recipe"})
    news = [m for m in claims.c3.NEWS if m != REGIME_NEWS and m in recipes]
    return {"forgetting": forgetting, "recipes": recipes.assign(**{m: math.nan for m in news})}


def regime(table: pd.DataFrame, misses: dict[tuple[str, int], list[str]] | None = None) -> pd.DataFrame:
    """C1-C3 judged at every cell inside the regime, each by its claim's own rule and intervals (cptlib.study.claims;
    `misses`, cptlib.study.verdicts.misses: the seeds the validity rule leaves out of a claim). One row per claim and
    cell: claim, lr, tokens, drift_ratio (with drift_lo, drift_hi), outcome, measured, why."""
    rows = []
    for c in inside(table).itertuples(index=False):
        r = cell_results(table, c.lr, c.tokens)
        out = claims.left_out(r, misses or {})
        ctx = V.Context(claims.effects(r, out), left_out=out, seeds=claims.seeds_of(r))
        for v in claims.judge(ctx, only=REGIME_CLAIMS):
            rows.append({"claim": v.claim, **c._asdict(), "outcome": v.outcome.value, "measured": v.measured,
                         "why": v.why})
    return pd.DataFrame(rows, columns=["claim", "lr", "tokens", "drift_ratio", "drift_lo", "drift_hi", "outcome",
                                       "measured", "why"])


def across(per_cell: pd.DataFrame) -> pd.DataFrame:
    """Each claim across the regime (run 22 §5): reproduced if reproduced at every cell inside it, partly if at some,
    not reproduced if at none; not testable where no cell could be judged. Beside it how many cells came out each
    way, so a claim reproduced at none is seen to be inconclusive there or contradicted."""
    rows = []
    for claim in REGIME_CLAIMS:
        mine = per_cell[per_cell.claim == claim]
        counts = mine.outcome.value_counts()
        n, hits = len(mine), int(counts.get(V.Outcome.REPRODUCED.value, 0))
        if n == 0 or counts.get(V.Outcome.NOT_TESTABLE.value, 0) == n:
            outcome = V.Outcome.NOT_TESTABLE
        elif hits == n:
            outcome = V.Outcome.REPRODUCED
        else:
            outcome = V.Outcome.PARTLY if hits else V.Outcome.NOT
        at = ", ".join(f"{k} at {v}" for k, v in counts.items())
        rows.append({"claim": claim, "across the regime": outcome.value, "cells": n,
                     "reproduced at": hits, "outcomes": at or "no cell inside the regime"})
    return pd.DataFrame(rows, columns=["claim", "across the regime", "cells", "reproduced at", "outcomes"])


def validity(profile: Profile) -> dict[tuple[str, int], list[str]]:
    """{(member, seed): the calibration targets it misses} for the grid's seeds (cptlib.study.verdicts.misses): the
    validity rule's input, from the same calibration the claims table uses (cached evaluations: seconds)."""
    from cptlib.study.experiments import calibration, families

    by_seed = families(profile)
    return V.misses(calibration(profile, by_seed), tuple(by_seed))
