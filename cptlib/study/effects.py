"""Every measured effect the verdicts use, as one tidy table (notebook 05; cptlib.study.verdicts judges it).

    fx = effects(results)           # results: the tables of cptlib.study.experiments.all_results, by name

One row per (claim, quantity): the mean over every seed the study has for it, its 95% interval and how it was
made (cptlib.study.stats), the number of seeds behind it, and the scale it is drawn on. The quantity names are the
constants below; the verdicts, the figure and the tests read them from here, never retyped.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import pandas as pd

from cptlib.study import stats
from cptlib.study.labels import CPT_B, CPT_I, REST

class Quantity(NamedTuple):
    """One measured effect: the claim it stands behind and its text, which the claims table, the figure and the
    effects table print. Code names the constants below and reads `.claim` / `.text`; the text is never retyped."""
    claim: str
    text: str

    def beside(self) -> Quantity:
        """The same quantity fitted over every size, shown beside the judged one (BESIDE)."""
        return Quantity(self.claim, self.text + BESIDE)


# The quantities, by claim.
C1_DROP = Quantity("C1", "ΔIF = IF(instruct_v1) − IF(CPT(instruct_v1))")
C1_GROWS = Quantity("C1", "IF(CPT(instruct_v1)) final − first milestone")
C2_DROP = Quantity("C2", "Δ era-A = base_v1 − CPT(base_v1)")
# The paper's benchmark families (notebook 07_benchmarks, a profile with eval.benchmarks): the average over tasks.
C1_BENCH = Quantity("C1", "Δ benchmarks (average over tasks) = instruct_v1 − CPT(instruct_v1)")
C2_BENCH = Quantity("C2", "Δ benchmarks (average over tasks) = base_v1 − CPT(base_v1)")
C3_IF = Quantity("C3", "ΔIF vs instruct_v1")
C3_IF_NAIVE = Quantity("C3", "ΔIF vs CPT(instruct_v1)")
C3_NEWS_KEPT = Quantity("C3", "Δ era-B vs CPT(base_v1)")
C3_NEWS_GAINED = Quantity("C3", "Δ era-B vs instruct_v1")
# Beside the default CPT, not judged (issue 30 step 5): the aggressive cell, cpt.lr at the N4 map's budget (first seed).
C1_AGGRESSIVE = Quantity("C1", "ΔIF at the aggressive cell (cpt.lr, N4 budget)")
C3_IF_AGGRESSIVE = Quantity("C3", "ΔIF vs instruct_v1 at the aggressive cell")
C3_NEWS_AGGRESSIVE = Quantity("C3", "Δ era-B vs instruct_v1 at the aggressive cell")
C4_A = Quantity("C4", "(a) IF(base_v1+Θr(v2)) − IF(instruct_v1)")
C4_B = Quantity("C4", "(b) IF(base_v2+Θr(v1)) − IF(base_v2)")
C4_B_SIZE = Quantity("C4", "(b) IF(base_v2+Θr(v1)) − IF(instruct_v2)")
C5_SLOPE = Quantity("C5", "slope of recovery per decade of parameters (valid sizes)")
C6_WALL = Quantity("C6", "wall time SFT / add Θr")
C6_FLOPS = Quantity("C6", "FLOPs SFT / add Θr (by construction)")
N1_OWN = Quantity("N1", "own-family residual's IF gain")
N1_OTHER = Quantity("N1", "other family's residual's IF gain")
COLUMNS = ["claim", "quantity", "mean", "lo", "hi", "n_seeds", "ci", "scale"]


def slope_quantity(quantity: str) -> Quantity:
    """Q1: the trend of a size-ladder quantity (cptlib.study.scaling), per decade of parameters."""
    return Quantity("Q1", f"slope of {quantity} per decade of parameters")


def shift_quantity(corpus: str, shift_bpb: float) -> Quantity:
    return Quantity("N2", f"ΔIF on {corpus.removesuffix('.jsonl')} (shift {shift_bpb:.2f} bpb)")


def _point(value: float, n_seeds: int) -> stats.Estimate:
    return stats.Estimate(value, math.nan, math.nan, n_seeds, "point")


def _cells(tr: pd.DataFrame) -> pd.DataFrame:
    """The transfer table with one label per (source, target) cell, for paired contrasts."""
    return tr.assign(cell=tr.source + "→" + tr.target)


def _cost_ratio(co: pd.DataFrame, column: str) -> stats.Estimate:
    """SFT / add-Θr `column` per seed: the mean ratio with its Student-t interval over seeds."""
    per_seed = co.pivot_table(index="seed", columns="step after CPT", values=column)
    ratios = per_seed["SFT"] / per_seed["add Θr"]
    if column == "flops":  # an exact count, the same for every seed
        return _point(float(ratios.mean()), len(ratios))
    return stats.over_seeds(ratios, 0.0, math.inf)


def effects(r: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every effect a verdict uses: claim, quantity, mean, lo, hi (95% CI), n_seeds, ci (how), scale."""
    rows = []

    def add(quantity: Quantity, est: stats.Estimate, scale: str = "Δ accuracy") -> None:
        rows.append({"claim": quantity.claim, "quantity": quantity.text, "mean": est.mean, "lo": est.lo, "hi": est.hi,
                     "n_seeds": est.n_seeds, "ci": est.method, "scale": scale})

    if "benchmarks" in r:  # the average drop over the paper's benchmark families (cptlib.study.benchmarks.drops)
        for quantity, model in ((C1_BENCH, CPT_I), (C2_BENCH, CPT_B)):
            row = r["benchmarks"][(r["benchmarks"].model == model) & (r["benchmarks"].task == "average")]
            if len(row):
                x = row.iloc[0]
                add(quantity, stats.Estimate(float(x["drop"]), float(x.lo), float(x.hi), int(x.n_seeds), stats.CROSSED))
    if "forgetting" not in r:  # a profile of the benchmarks alone (notebook 07 without 01-05)
        return pd.DataFrame(rows, columns=COLUMNS)
    fg, final = r["forgetting"], r["forgetting"].tokens.max()
    add(C1_DROP, stats.paired(fg[fg.tokens.isin([0, final])], "model", "instruct_v1", CPT_I, "IF"))
    s0 = fg.seed.min()
    cpt_i = fg[(fg.model == CPT_I) & (fg.seed == s0)]
    first = cpt_i[cpt_i.tokens > 0].tokens.min()
    if first != final:  # the horizon part of C1: the first seed is the one with every milestone
        both = cpt_i[cpt_i.tokens.isin([first, final])]
        add(C1_GROWS, stats.paired(both.assign(seed=s0), "tokens", final, first, "IF"))
    end = fg[fg.tokens.isin([0, final])]
    if (end.model == CPT_B).any():  # absent where the profile has no base model
        add(C2_DROP, stats.paired(end, "model", "base_v1", CPT_B, "era_a"))
    if "recipes" in r:
        rc = r["recipes"]
        add(C3_IF, stats.paired(rc, "recipe", REST, "instruct_v1", "IF"))
        add(C3_IF_NAIVE, stats.paired(rc, "recipe", REST, CPT_I, "IF"))
        if rc.era_b.notna().any():  # a real profile measures new knowledge only if it maps era_b to a task
            add(C3_NEWS_KEPT, stats.paired(rc, "recipe", REST, CPT_B, "era_b"))
            add(C3_NEWS_GAINED, stats.paired(rc, "recipe", REST, "instruct_v1", "era_b"))
    n4 = r.get("n4")
    if n4 is not None and "cpt_lr" in n4 and n4.cpt_lr.any():  # the aggressive cell beside the default
        cell = n4[n4.cpt_lr & (n4.tokens == n4[n4.cpt_lr].tokens.max())]
        ref = fg[(fg.model == "instruct_v1") & (fg.seed == s0) & (fg.tokens == 0)]
        both = pd.concat([ref, cell]).assign(seed=s0)
        if (both.model == CPT_I).any():
            add(C1_AGGRESSIVE, stats.paired(both, "model", "instruct_v1", CPT_I, "IF"))
        if (both.model == REST).any():
            add(C3_IF_AGGRESSIVE, stats.paired(both, "model", REST, "instruct_v1", "IF"))
            if both.era_b.notna().all():
                add(C3_NEWS_AGGRESSIVE, stats.paired(both, "model", REST, "instruct_v1", "era_b"))
    if "transfer" in r:
        tr = _cells(r["transfer"])
        add(C4_A, stats.paired(tr, "cell", "v2→base_v1", "native→instruct_v1", "IF"))
        add(C4_B, stats.paired(tr, "cell", "v1→base_v2", "none→base_v2", "IF"))
        add(C4_B_SIZE, stats.paired(tr, "cell", "v1→base_v2", "native→instruct_v2", "IF"))
    if "scaling" in r:  # the size ladder's trends on the sizes that meet their calibration (notebook 06)
        rows += ladder_effects(r["scaling"]).to_dict("records")
    co = r.get("costs")
    if co is not None and (co["step after CPT"] == "SFT").any():
        add(C6_WALL, _cost_ratio(co, "wall_seconds"), "cost ratio")
        add(C6_FLOPS, _cost_ratio(co, "flops"), "cost ratio")
    if "transfer" in r:
        add(N1_OWN, stats.paired(tr, "cell", "v1→CPT(base_v1)", "none→CPT(base_v1)", "IF"))
        if (tr.source == "other_family").any():
            add(N1_OTHER, stats.paired(tr, "cell", "other_family→CPT(base_v1)", "none→CPT(base_v1)", "IF"))
    if "shift" in r:
        sh = r["shift"][r["shift"].model == CPT_I].sort_values("shift_bpb")
        inst = fg[(fg.model == "instruct_v1") & (fg.seed == s0)]
        for row in sh.itertuples():
            both = pd.concat([inst.assign(arm="instruct_v1"), sh[sh.corpus == row.corpus].assign(arm="cpt", seed=s0)])
            add(shift_quantity(row.corpus, row.shift_bpb), stats.paired(both, "arm", "instruct_v1", "cpt", "IF"))
    return pd.DataFrame(rows, columns=COLUMNS)


BESIDE = " (all sizes, beside: not judged)"  # the fit over every size, those that miss calibration too


def ladder_effects(trends: pd.DataFrame) -> pd.DataFrame:
    """C5 and Q1's effects from the size ladder's trends (cptlib.study.scaling.trends): each quantity's OLS slope per
    decade of parameters with its 95% interval over the valid sizes (the primary fit), and over every size with
    BESIDE in its name; n_seeds is the sizes behind it."""
    rows = [{"claim": r.claim, "quantity": (C5_SLOPE.text if r.claim == "C5" else slope_quantity(r.quantity).text)
             + ("" if r.fit_on == "valid sizes" else BESIDE),
             "mean": r.slope, "lo": r.slope_lo, "hi": r.slope_hi, "n_seeds": int(r.k),
             "ci": f"OLS on {int(r.k)} size means, t with {int(r.dof)} df", "scale": "slope per decade"}
            for r in trends.itertuples()]
    return pd.DataFrame(rows, columns=COLUMNS)


def rows_of(fx: pd.DataFrame, quantity: Quantity) -> pd.DataFrame:
    """The effects table's row of one quantity (empty where it was not measured)."""
    claim, text = quantity
    return fx[(fx.claim == claim) & (fx.quantity == text)]


def get(fx: pd.DataFrame, quantity: Quantity) -> stats.Estimate | None:
    """The estimate of one quantity from the effects table (None where it was not measured)."""
    hit = rows_of(fx, quantity)
    if hit.empty:
        return None
    row = hit.iloc[0]
    return stats.Estimate(float(row["mean"]), float(row.lo), float(row.hi), int(row.n_seeds), row.ci)
