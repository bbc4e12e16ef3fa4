"""C5: models of at most 1.5B parameters benefit less from the residual (the trend of recovery over the size ladder,
calibration log run 18)."""
from __future__ import annotations

from cptlib.study import verdicts as V
from cptlib.study.claims.base import Claim, Results
from cptlib.study.effects import Quantity, get, ladder_rows

SLOPE = Quantity("C5", "slope of recovery per decade of parameters (valid sizes)")


def measure(r: Results) -> list[dict]:
    return ladder_rows(r["scaling"], "C5", lambda _: SLOPE) if "scaling" in r else []


def judge(ctx: V.Context) -> V.Verdict:
    """The OLS slope on log10 parameters of the valid sizes' mean recoveries, with its 95% t interval; the slope over
    every size is shown beside, not judged."""
    if (gated := V.gate(ctx, CLAIM)) is not None:
        return gated
    slope, beside = get(ctx.fx, SLOPE), get(ctx.fx, SLOPE.beside())
    shown = () if beside is None else (V.Check(SLOPE.beside(), beside, "not judged: sizes that miss their "
                                               "calibration included", V.Met.SHOWN),)
    also = "" if beside is None else f"; beside, over all {beside.n_seeds} sizes: {V.slope_text(beside)}"
    if slope is None or slope.n_seeds < 3:
        n = "< 2" if slope is None else str(slope.n_seeds)
        checks = () if slope is None else (V.Check(SLOPE, slope, "not judged: fewer than 3 valid sizes", V.Met.SHOWN),)
        measured = ("no trend: fewer than 2 sizes meet their calibration in this profile" if slope is None else
                    f"recovery slope {V.slope_text(slope)} per decade ({n} valid sizes)") + also
        return V.Verdict("C5", V.Outcome.NOT_TESTABLE, measured, V.ONE_SIZE, checks=checks + shown,
                         note=f"{n} valid sizes")
    check = V.Check(SLOPE, slope, "95% CI > 0 (recovery grows with size)", V.interval_met(slope, 0.0, True, True))
    why = ("recovery grows with size: the slope's interval lies above 0" if check.passed else
           "contradicted: recovery falls with size (the slope's interval lies at or below 0)"
           if check.met is V.Met.FAIL else "inconclusive: the slope's interval includes 0")
    return V.Verdict("C5", V.decide([check]),
                     f"recovery slope {V.slope_text(slope)} per decade ({slope.n_seeds} sizes){also}", why,
                     checks=(check, *shown), note=f"{slope.n_seeds} sizes")


CLAIM = Claim(
    "C5", "≤1.5B models benefit less / vary more",
    "recovery = IF(CPT(base_v1)+Θr) / IF(instruct_v1), the mean over each size's seeds, against log10 parameters "
    "over the sizes whose base and instruct models meet their calibration: the OLS slope per decade with its 95% t "
    "interval (k − 2 df). reproduced: the interval lies above 0 (recovery grows with size); not reproduced: it "
    "lies at or below 0 (contradicted); inconclusive: it includes 0; not testable with fewer than 3 valid sizes. 'Vary "
    "more' is shown (the seed spread per size), not judged (calibration log run 18).",
    judge, measure, part="sizes",
    old="'not reproduced' where the slope's interval includes 0 (calibration log run 22); before run 18, recovery "
        "non-decreasing over the valid sizes and smallest < largest by ≥ 0.05 (reproduced), smallest < "
        "largest (partly); before that, every size judged whether or not it met its calibration, the main size from "
        "its first seed")
