"""The effects table: every measured effect the verdicts use, one row per (claim, quantity).

    fx = claims.effects(results)    # cptlib.study.claims: each claim measures its own quantities
    est = get(fx, c1.DROP)          # the Estimate of one quantity, None where it was not measured

A row holds the mean over every seed the study has for the quantity, its 95% interval and how it was made
(cptlib.study.stats), the number of seeds behind it and the scale it is drawn on. The quantities are constants of
the claims that measure them (cptlib/study/claims/); code names them, never retypes their text.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import pandas as pd

from cptlib.study import stats

COLUMNS = ["claim", "quantity", "mean", "lo", "hi", "n_seeds", "ci", "scale"]
BESIDE = " (all sizes, beside: not judged)"  # the fit over every size, those that miss calibration too


class Quantity(NamedTuple):
    """One measured effect: the claim it stands behind and its text, which the claims table, the figure and the
    effects table print. Code names the claims' constants and reads `.claim` / `.text`; the text is never retyped."""
    claim: str
    text: str

    def beside(self) -> Quantity:
        """The same quantity fitted over every size, shown beside the judged one (BESIDE)."""
        return Quantity(self.claim, self.text + BESIDE)


def row(quantity: Quantity, est: stats.Estimate, scale: str = "Δ accuracy") -> dict:
    """One row of the effects table."""
    return {"claim": quantity.claim, "quantity": quantity.text, "mean": est.mean, "lo": est.lo, "hi": est.hi,
            "n_seeds": est.n_seeds, "ci": est.method, "scale": scale}


def point(value: float, n_seeds: int) -> stats.Estimate:
    """An exact number (no interval), e.g. a count that is the same for every seed."""
    return stats.Estimate(value, math.nan, math.nan, n_seeds, "point")


def ladder_rows(trends: pd.DataFrame, claim: str, quantity) -> list[dict]:
    """The size ladder's effects of one claim (cptlib.study.scaling.trends): each quantity's OLS slope per decade of
    parameters with its 95% interval over the valid sizes (the primary fit), and over every size with BESIDE in its
    name; n_seeds is the sizes behind it. `quantity(name)` is the claim's Quantity of a ladder quantity."""
    return [{"claim": claim, "quantity": quantity(r.quantity).text + ("" if r.fit_on == "valid sizes" else BESIDE),
             "mean": r.slope, "lo": r.slope_lo, "hi": r.slope_hi, "n_seeds": int(r.k),
             "ci": f"OLS on {int(r.k)} size means, t with {int(r.dof)} df", "scale": "slope per decade"}
            for r in trends.itertuples() if r.claim == claim]


def rows_of(fx: pd.DataFrame, quantity: Quantity) -> pd.DataFrame:
    """The effects table's row of one quantity (empty where it was not measured)."""
    claim, text = quantity
    return fx[(fx.claim == claim) & (fx.quantity == text)]


def get(fx: pd.DataFrame, quantity: Quantity) -> stats.Estimate | None:
    """The estimate of one quantity from the effects table (None where it was not measured)."""
    hit = rows_of(fx, quantity)
    if hit.empty:
        return None
    r = hit.iloc[0]
    return stats.Estimate(float(r["mean"]), float(r.lo), float(r.hi), int(r.n_seeds), r.ci)
