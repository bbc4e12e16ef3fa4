"""Q1 (open): how the regime changes with model size — every ladder quantity's trend per decade of parameters."""
from __future__ import annotations

import pandas as pd

from cptlib.study import verdicts as V
from cptlib.study.claims import c5
from cptlib.study.claims.base import Claim, Results
from cptlib.study.effects import BESIDE, Quantity, get, ladder_rows
from cptlib.members import Member


def slope_quantity(quantity: str) -> Quantity:
    """The trend of a size-ladder quantity (cptlib.study.scaling), per decade of parameters."""
    return Quantity("Q1", f"slope of {quantity} per decade of parameters")


def measure(r: Results) -> list[dict]:
    return ladder_rows(r["scaling"], "Q1", slope_quantity) if "scaling" in r else []


def _ladder_order(slopes: pd.DataFrame) -> pd.DataFrame:
    """Q1's slopes and C5's (Q1 restates recovery's) in the ladder's order of quantities (scaling.QUANTITIES), each
    quantity's fit over the valid sizes before the one over every size."""
    from cptlib.study.scaling import QUANTITIES, RECOVERY

    def position(text: str) -> int:
        text = text.removesuffix(BESIDE)
        name = RECOVERY if text == c5.SLOPE.text else text.removeprefix("slope of ").removesuffix(
            " per decade of parameters")
        return QUANTITIES.index(name) if name in QUANTITIES else len(QUANTITIES)

    return slopes.iloc[sorted(range(len(slopes)), key=lambda i: position(slopes.quantity.iloc[i]))]


def judge(ctx: V.Context) -> V.Verdict:
    """Every ladder quantity's slope per decade over the valid sizes, with its interval; where fewer than 2 sizes are
    valid, the slopes over every size, shown beside and marked so."""
    if (gated := V.gate(ctx, CLAIM)) is not None:
        return gated
    slopes = _ladder_order(ctx.fx[(ctx.fx.claim == "Q1") | (ctx.fx.quantity.str.startswith(c5.SLOPE.text))])
    valid = slopes[~slopes.quantity.str.endswith(BESIDE)]
    rows = valid if len(valid) else slopes
    if rows.empty:
        return V.Verdict("Q1", V.Outcome.NOT_TESTABLE, "no trend: fewer than 2 sizes meet their calibration in this "
                         "profile", V.ONE_SIZE, note="< 2 valid sizes")
    checks = tuple(V.Check(q, get(ctx.fx, q), "the answer (not judged)", V.Met.SHOWN)
                   for q in (Quantity(r.claim, r.quantity) for r in rows.itertuples()))
    short = lambda q: q.removeprefix("slope of ").split(" per decade")[0]  # noqa: E731
    text = "; ".join(f"{short(c.quantity.text)}: {V.slope_text(c.estimate)}" for c in checks)
    n = checks[0].estimate.n_seeds
    if not len(valid):
        return V.Verdict("Q1", V.Outcome.NOT_TESTABLE, f"fewer than 2 sizes meet their calibration; beside, over all "
                         f"{n} sizes, slopes per decade of parameters: {text}", V.ONE_SIZE, checks=checks,
                         note="< 2 valid sizes")
    return V.Verdict("Q1", V.Outcome.ANSWERED, f"slopes per decade of parameters ({n} sizes): {text}",
                     "the trends are the answer", checks=checks)


CLAIM = Claim(
    "Q1", "(open)",
    "open question: the trend with size of every quantity of the regime (C1 and C3 ΔIF, news kept, era-B via chat, "
    "recovery, drift ratio, ‖Θr‖/‖θ_base‖, the overlap cos(Θr, θ_cpt − θ_base)): each one's OLS slope per decade of "
    "parameters over the valid sizes, with its 95% interval.", judge, measure,
    needs=(Member.BASE_V1, Member.INSTRUCT_V1), part="sizes")
