"""The claims' verdicts: one function per claim, its criterion as data, every verdict with the numbers it used.

    fx = effects.effects(results)                        # the measured effects (cptlib.study.effects)
    ctx = Context(fx, invalid=invalid_members(calib), n4=results.get("n4"), instruct_if=0.64)
    v = c3(ctx)          # Verdict(claim="C3", outcome=Outcome.NOT, checks=(...), why="...", ...)
    table = judge(ctx)   # every claim of CRITERIA, in order

A verdict is *in kind* (the direction of the paper's claim, by CRITERIA[claim].rule) and *in size* (against the
paper's number, SIZE). Each verdict carries its checks: the quantity, its estimate, the rule it had to meet and
whether it did; the claims table, the effects figure and the report all render these objects, so they cannot
disagree. A claim whose models miss their own calibration target (VALIDITY) is "not testable", not "not
reproduced". Criteria changed after the results were first seen say so (Criterion.old) and the report lists them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import Enum

import pandas as pd

from cptlib.study import effects as E
from cptlib.study.criteria import CRITERIA, EFFECT, FACTOR, SIZE, VALIDITY
from cptlib.study.n4 import n4_threshold, regime
from cptlib.study.stats import Estimate

class Outcome(str, Enum):
    REPRODUCED = "reproduced"
    PARTLY = "partly"
    NOT = "not reproduced"
    ANSWERED = "answered"  # an open question: the numbers are the answer
    NOT_TESTABLE = "not testable"  # a model it needs misses its calibration, or too few sizes / corpora
    NOT_RUN = "not run"


@dataclass(frozen=True)
class Check:
    quantity: E.Quantity
    estimate: Estimate
    rule: str
    passed: bool | None  # None: shown beside the verdict, not judged


@dataclass(frozen=True)
class Verdict:
    claim: str
    outcome: Outcome
    measured: str
    why: str
    in_size: str = "n/a (no number in the paper)"
    checks: tuple[Check, ...] = ()
    note: str = ""  # "1 seed", "testbed only", what is missing

    @property
    def label(self) -> str:
        return self.outcome.value + (f" ({self.note})" if self.note else "")


@dataclass
class Context:
    """What the verdicts read: the effects table and, where the profile has them, the rest."""
    fx: pd.DataFrame
    invalid: dict[str, list[str]] = field(default_factory=dict)  # ancestor -> its missed calibration targets
    n4: pd.DataFrame | None = None
    instruct_if: float = math.nan  # IF(instruct_v1), N4's reference
    main_size: str = "small"  # the profile's own size (its members are base_v1, instruct_v1 in the calibration)
    not_run: dict[str, tuple[str, str]] = field(default_factory=dict)  # claim -> (short note, why it was not run)
    texts: dict[str, str] = field(default_factory=dict)  # claim -> the numbers of an open question (Q2, Q3, N3)


def invalid_members(calibration: pd.DataFrame | None) -> dict[str, list[str]]:
    """Each ancestor that misses one of its VALIDITY targets -> those targets, as text (a real profile: none)."""
    if calibration is None or calibration.met.isna().all():
        return {}
    from cptlib.evaluation.calibration import ModelId, Role

    ancestor = [ModelId.parse(m).role is not Role.CPT for m in calibration.model]
    rows = calibration[calibration.metric.isin(VALIDITY) & pd.Series(ancestor, index=calibration.index)]
    out: dict[str, list[str]] = {}
    for row in rows[~rows.met.astype(bool)].itertuples():
        out.setdefault(row.model, []).append(f"{row.metric} {row.value:.3f}, target {row.target}")
    return out


def _in_size(quantity: E.Quantity, est: Estimate) -> str:
    low, high, how = SIZE[quantity]
    if how == "factor":
        times = est.mean / low
        ok = 1 / FACTOR <= times <= FACTOR
        return f"{'yes' if ok else 'no'} ({times:,.0f}× the paper's)" if times >= 10 else \
            f"{'yes' if ok else 'no'} ({times:.1f}× the paper's)"
    ok = low - EFFECT <= est.mean <= high + EFFECT
    return f"{'yes' if ok else 'no'} (paper {low:+.2f} to {high:+.2f})"


def _grade(full: bool, part: bool) -> Outcome:
    return Outcome.REPRODUCED if full else Outcome.PARTLY if part else Outcome.NOT


def _seeds(*checks: Check) -> str:
    """"1 seed" when every judged number rests on one seed (the verdict is indicative, not decided by seeds)."""
    judged = [c for c in checks if c.passed is not None]
    return "1 seed" if judged and all(c.estimate.n_seeds == 1 for c in judged) else ""


def _gate(ctx: Context, claim: str, members: tuple[str, ...] | None = None) -> Verdict | None:
    """The verdict a claim gets before its numbers are judged: not run, or not testable (a model it needs misses its
    calibration); None where it can be judged."""
    if claim in ctx.not_run:
        note, why = ctx.not_run[claim]
        return Verdict(claim, Outcome.NOT_RUN, why, why, "n/a (not run)", note=note)
    missed = [f"{m}: {'; '.join(ctx.invalid[m])}" for m in (members or CRITERIA[claim].needs) if m in ctx.invalid]
    if missed:
        return Verdict(claim, Outcome.NOT_TESTABLE, "; ".join(missed), "a model it needs misses its own calibration "
                       "target, so the test is not valid", note="model misses calibration")
    return None


def _other_seeds_missed(ctx: Context, claim: str) -> str:
    """Another ancestor seed's member (a paired release: "instruct_v1 (seed 2)") that the claim's numbers average
    over and that misses its own calibration: named beside the numbers, not gating them (docs/calibration_log.md,
    run 17: the first seed's members gate, the other seeds' are named)."""
    needs = CRITERIA[claim].needs
    return "; ".join(f"{m}: {'; '.join(why)}" for m, why in ctx.invalid.items()
                     if " (seed " in m and m.split(" (seed ")[0] in needs)


ABSENT = "needs a model the profile declares absent (models: null), e.g. the base of a released instruct model"


def _absent(claim: str) -> Verdict:
    return Verdict(claim, Outcome.NOT_RUN, ABSENT, "a model it needs is absent", "n/a (not run)", note="model absent")


def _check(ctx: Context, q: E.Quantity, rule: str, test) -> Check | None:
    est = E.get(ctx.fx, q)
    return None if est is None else Check(q, est, rule, None if test is None else bool(test(est)))


def _measured(*checks: Check) -> str:
    return "; ".join(f"{c.quantity.text} {c.estimate.text()}" for c in checks)


def _beside(ctx: Context, *quantities: E.Quantity) -> tuple[Check, ...]:
    """The aggressive cell's numbers, shown beside a claim's judged ones (passed None), where the study has them."""
    return tuple(c for q in quantities if (c := _check(ctx, q, "shown beside the default CPT, not judged", None)))


def c1(ctx: Context) -> Verdict:
    if (gated := _gate(ctx, "C1")) is not None:
        return gated
    d = _check(ctx, E.C1_DROP, "CI above 0 and Δ ≥ 0.05", lambda e: e.lo > 0 and e.mean >= EFFECT)
    bench = _check(ctx, E.C1_BENCH, "CI above 0", lambda e: e.lo > 0)
    if d is None:  # a profile of the benchmarks alone: their average is C1's one number
        if bench is None:
            return _absent("C1")
        return Verdict("C1", _grade(bench.passed, bench.estimate.mean > 0), _measured(bench),
                       f"CPT of instruct_v1 changes the benchmarks' average by {-bench.estimate.mean:+.3f}",
                       _in_size(E.C1_BENCH, bench.estimate), (bench,), _seeds(bench))
    g = _check(ctx, E.C1_GROWS, "below 0 (more tokens, more forgetting)", lambda e: e.mean < 0)
    grows = g is None or g.passed
    out = _grade(d.passed and grows and (bench is None or bench.passed), d.estimate.mean > 0)
    why = (f"CPT of instruct_v1 {'lowers' if d.estimate.mean > 0 else 'does not lower'} IF by {d.estimate.mean:+.3f}"
           + ("" if g is None else f"; from the first milestone to the final budget IF moves {g.estimate.mean:+.3f}")
           + ("" if bench is None else f"; the benchmarks' average drops by {bench.estimate.mean:+.3f} "
              f"({_in_size(E.C1_BENCH, bench.estimate)} in size)"))
    checks = tuple(c for c in (d, g, bench) if c is not None) + _beside(ctx, E.C1_AGGRESSIVE)
    return Verdict("C1", out, _measured(*checks), why, _in_size(E.C1_DROP, d.estimate), checks, _seeds(*checks))


def c2(ctx: Context) -> Verdict:
    if (gated := _gate(ctx, "C2")) is not None:
        return gated
    checks = tuple(c for q in (E.C2_DROP, E.C2_BENCH)
                   if (c := _check(ctx, q, "CI's upper end ≤ 0.05", lambda e: e.hi <= EFFECT)) is not None)
    if not checks:
        return _absent("C2")
    out = _grade(all(c.passed for c in checks), all(c.estimate.mean <= EFFECT for c in checks))
    why = "; ".join(f"CPT costs base_v1 {c.estimate.mean:+.3f} of "
                    f"{'era-A accuracy' if c.quantity == E.C2_DROP else 'the benchmarks average accuracy'}"
                    for c in checks)
    return Verdict("C2", out, _measured(*checks), why, checks=checks, note=_seeds(*checks))


def benchmarks_alone(drops: pd.DataFrame) -> list[Verdict]:
    """C1 and C2 of a profile that runs the benchmarks notebook alone: judged on the benchmarks' average drops
    (cptlib.study.benchmarks.drops); the claim whose model the profile lacks says it was not run."""
    ctx = Context(E.effects({"benchmarks": drops}))
    return [c1(ctx), c2(ctx)]


def c3(ctx: Context) -> Verdict:
    if (gated := _gate(ctx, "C3")) is not None:
        return gated
    dif = _check(ctx, E.C3_IF, "≥ −0.05", lambda e: e.mean >= -EFFECT)
    naive = _check(ctx, E.C3_IF_NAIVE, "≥ 0.05", lambda e: e.mean >= EFFECT)
    kept = _check(ctx, E.C3_NEWS_KEPT, "≥ −0.05", lambda e: e.mean >= -EFFECT)
    gained = _check(ctx, E.C3_NEWS_GAINED, "≥ 0.05", lambda e: e.mean >= EFFECT)
    if dif is None:
        return _absent("C3")
    if kept is None:
        return Verdict("C3", Outcome.NOT_TESTABLE, _measured(dif, naive), "no new-knowledge metric",
                       _in_size(E.C3_IF, dif.estimate), (dif, naive), "no new-knowledge metric: map era_b in eval.metrics")
    judged = (dif, naive, kept, gained)
    checks = judged + _beside(ctx, E.C3_IF_AGGRESSIVE, E.C3_NEWS_AGGRESSIVE)
    out = _grade(dif.passed and kept.passed and gained.passed, naive.passed and kept.passed)
    failed = [c.quantity.text for c in judged if not c.passed]
    why = "every check passes" if not failed else "fails: " + ", ".join(failed)
    return Verdict("C3", out, _measured(*checks), why, _in_size(E.C3_IF, dif.estimate), checks, _seeds(*checks))


def c4(ctx: Context) -> Verdict:
    if (gated := _gate(ctx, "C4")) is not None:
        return gated
    a = _check(ctx, E.C4_A, "mean ≥ 0 and CI's lower end > −0.05", lambda e: e.mean >= 0 and e.lo > -EFFECT)
    b = _check(ctx, E.C4_B, "≥ 0.05 and CI's lower end > 0", lambda e: e.mean >= EFFECT and e.lo > 0)
    b2 = _check(ctx, E.C4_B_SIZE, "(in size only)", None)
    if a is None:
        return _absent("C4")
    out = _grade(a.passed and b.passed, a.passed or b.passed)
    why = (f"(a) the v2 residual on base_v1 is {'at least as good as' if a.passed else 'not shown as good as'} "
           f"instruct_v1; (b) the v1 residual {'improves' if b.passed else 'does not improve'} base_v2")
    size = f"(a) {_in_size(E.C4_A, a.estimate)}; (b) {_in_size(E.C4_B_SIZE, b2.estimate)}"
    return Verdict("C4", out, _measured(a, b, b2), why, size, (a, b, b2), _seeds(a, b))


ONE_SIZE = ("the trend needs at least 3 model sizes that meet their calibration; the size ladder's study is "
            "`make reproduce PROFILE=sizes` (figures/sizes/)")


def _slope_text(e: Estimate) -> str:
    return e.text(digits=3).split(" (")[0]


def c5(ctx: Context) -> Verdict:
    """C5 from the trend of recovery over the size ladder (run 18): the OLS slope on log10 parameters of the valid
    sizes' mean recoveries, with its 95% t interval; the slope over every size is shown beside, not judged."""
    if (gated := _gate(ctx, "C5", ())) is not None:
        return gated
    slope = E.get(ctx.fx, E.C5_SLOPE)
    beside = E.get(ctx.fx, E.C5_SLOPE.beside())
    shown = () if beside is None else (Check(E.C5_SLOPE.beside(), beside, "not judged: sizes "
                                             "that miss their calibration included", None),)
    also = "" if beside is None else f"; beside, over all {beside.n_seeds} sizes: {_slope_text(beside)}"
    if slope is None or slope.n_seeds < 3:
        n = "< 2" if slope is None else str(slope.n_seeds)
        checks = () if slope is None else (Check(E.C5_SLOPE, slope, "not judged: fewer than 3 valid sizes", None),)
        measured = ("no trend: fewer than 2 sizes meet their calibration in this profile" if slope is None else
                    f"recovery slope {_slope_text(slope)} per decade ({n} valid sizes)") + also
        return Verdict("C5", Outcome.NOT_TESTABLE, measured, ONE_SIZE, checks=checks + shown, note=f"{n} valid sizes")
    check = Check(E.C5_SLOPE, slope, "95% interval above 0 (recovery grows with size)", slope.lo > 0)
    why = ("recovery grows with size: the slope's interval lies above 0" if slope.lo > 0 else
           "contradicted: recovery falls with size (the slope's interval lies below 0)" if slope.hi < 0 else
           "no trend shown: the slope's interval includes 0")
    return Verdict("C5", Outcome.REPRODUCED if slope.lo > 0 else Outcome.NOT,
                   f"recovery slope {_slope_text(slope)} per decade ({slope.n_seeds} sizes){also}", why,
                   checks=(check, *shown), note=f"{slope.n_seeds} sizes")


def q1(ctx: Context) -> Verdict:
    """Q1 (how the regime changes with size): every ladder quantity's slope per decade over the valid sizes, with
    its interval; where fewer than 2 sizes are valid, the slopes over every size, shown beside and marked so."""
    if (gated := _gate(ctx, "Q1", ())) is not None:
        return gated
    slopes = ctx.fx[(ctx.fx.claim == "Q1") | (ctx.fx.quantity.str.startswith(E.C5_SLOPE.text))]
    valid = slopes[~slopes.quantity.str.endswith(E.BESIDE)]
    rows = valid if len(valid) else slopes
    if rows.empty:
        return Verdict("Q1", Outcome.NOT_TESTABLE, "no trend: fewer than 2 sizes meet their calibration in this profile",
                       ONE_SIZE, note="< 2 valid sizes")
    checks = tuple(Check(q, E.get(ctx.fx, q), "the answer (not judged)", None)
                   for q in (E.Quantity(r.claim, r.quantity) for r in rows.itertuples()))
    short = lambda q: q.removeprefix("slope of ").split(" per decade")[0]  # noqa: E731
    text = "; ".join(f"{short(c.quantity.text)}: {_slope_text(c.estimate)}" for c in checks)
    n = checks[0].estimate.n_seeds
    if not len(valid):
        return Verdict("Q1", Outcome.NOT_TESTABLE, f"fewer than 2 sizes meet their calibration; beside, over all {n} "
                       f"sizes, slopes per decade of parameters: {text}", ONE_SIZE, checks=checks,
                       note="< 2 valid sizes")
    return Verdict("Q1", Outcome.ANSWERED, f"slopes per decade of parameters ({n} sizes): {text}",
                   "the trends are the answer", checks=checks)


def c6(ctx: Context) -> Verdict:
    if (gated := _gate(ctx, "C6")) is not None:
        return gated
    wall = _check(ctx, E.C6_WALL, "≥ 100", lambda e: e.mean >= 100)
    flops = _check(ctx, E.C6_FLOPS, "(by construction; not judged)", None)
    if wall is None:
        return _absent("C6")
    out = _grade(wall.passed, wall.estimate.mean >= 10)
    measured = f"wall time SFT / add Θr = {wall.estimate.text(signed=False, digits=0)}; FLOPs ratio " \
               f"{flops.estimate.mean:,.0f}× (by construction: 3 × the SFT tokens)"
    return Verdict("C6", out, measured, f"adding Θr takes {wall.estimate.mean:,.0f}× less wall time than SFT",
                   _in_size(E.C6_WALL, wall.estimate), (wall, flops))


def n1(ctx: Context) -> Verdict:
    if (gated := _gate(ctx, "N1")) is not None:
        return gated
    own, other = E.get(ctx.fx, E.N1_OWN), E.get(ctx.fx, E.N1_OTHER)
    if own is None:
        return _absent("N1")
    if other is None:
        return Verdict("N1", Outcome.NOT_RUN, f"own-family IF gain {own.text()}; no other family in the profile "
                       "(models.other_family)", "no other family", "n/a (not run)")
    low = Check(E.N1_OTHER, other, "< 0.05", other.mean < EFFECT)
    gap = Check(E.N1_OWN, own, "above the other family's gain by ≥ 0.05", own.mean - other.mean >= EFFECT)
    out = _grade(low.passed and gap.passed, gap.passed)
    return Verdict("N1", out, f"IF gain other-family {other.text()} vs own {own.text()}",
                   "the other family's residual " + ("does not transfer" if low.passed else "transfers"),
                   checks=(low, gap), note=_seeds(low, gap))


def n2(ctx: Context) -> Verdict:
    if (gated := _gate(ctx, "N2")) is not None:
        return gated
    drops = [Check(q, E.get(ctx.fx, q), "shown", None)
             for q in (E.Quantity("N2", text) for text in ctx.fx[ctx.fx.claim == "N2"].quantity)]
    if not drops:
        return _absent("N2")
    text = "; ".join(f"{c.quantity.text}: {c.estimate.text()}" for c in drops)
    if len(drops) < 2:
        return Verdict("N2", Outcome.NOT_TESTABLE, text, "one corpus", checks=tuple(drops), note="one corpus")
    lo, hi = drops[0].estimate.mean, drops[-1].estimate.mean  # sorted by shift
    out = _grade(hi - lo >= EFFECT, hi > lo)
    largest = replace(drops[-1], rule=f"≥ the smallest shift's ΔIF + {EFFECT:g}", passed=hi - lo >= EFFECT)
    one = all(c.estimate.n_seeds == 1 for c in drops)
    return Verdict("N2", out, text, f"the larger shift forgets {hi - lo:+.3f} more", checks=(*drops[:-1], largest),
                   note="1 seed" if one else "")


def n4(ctx: Context) -> Verdict:
    if (gated := _gate(ctx, "N4")) is not None:
        return gated
    if ctx.n4 is None:
        return _absent("N4")
    t = n4_threshold(ctx.n4, ctx.instruct_if)
    head = (f"restored IF ≥ {t['bound']:.3f} (0.8 × instruct_v1's {ctx.instruct_if:.3f}) in {t['kept']} of {t['cells']} "
            "cells; " + (f"every cell with drift ratio ≤ {t['threshold']:.3f} keeps it" if t["threshold"] == t["threshold"]
                         else "the smallest drift already fails")
            + (f", the first failing cell is at {t['first_fail']:.3f}" if t["first_fail"] < math.inf else ", none fails")
            + (f"; the fitted line crosses 0.8 at drift {t['crossing']:.2f}" if t["crossing"] == t["crossing"] else
               "; the fitted line does not fall below 0.8") + f" (slope {t['slope']:+.3f} per decade; 1 seed)")
    return Verdict("N4", Outcome.ANSWERED, f"{head}. {regime(ctx.n4, ctx.instruct_if)}", "the map is the answer",
                   note="1 seed")


def _open(claim: str):
    def judge_open(ctx: Context) -> Verdict:
        if claim not in ctx.texts:
            return _gate(ctx, claim) or _absent(claim)
        return _gate(ctx, claim) or Verdict(claim, Outcome.ANSWERED, ctx.texts[claim], "the numbers are the answer",
                                            note="1 seed" if claim in ("Q3", "N3") else "")
    return judge_open


JUDGES = {"C1": c1, "C2": c2, "C3": c3, "C4": c4, "C5": c5, "C6": c6, "Q1": q1,
          "Q2": _open("Q2"), "Q3": _open("Q3"), "N1": n1, "N2": n2, "N3": _open("N3"), "N4": n4}


def judge(ctx: Context) -> list[Verdict]:
    """Every claim's verdict, in the order of CRITERIA. A claim that is not testable still shows its numbers (as
    checks that are not judged), so the table and the figure hold every measured effect."""
    out = []
    for claim in CRITERIA:
        v = JUDGES[claim](ctx)
        shown = tuple(Check(E.Quantity(claim, q), E.get(ctx.fx, E.Quantity(claim, q)), "not judged", None)
                      for q in ctx.fx[ctx.fx.claim == claim].quantity)
        if v.outcome is Outcome.NOT_TESTABLE and not v.checks and shown:
            v = replace(v, measured=f"{_measured(*shown)} — not judged: {v.measured}", checks=shown)
        if v.outcome is not Outcome.NOT_RUN and (named := _other_seeds_missed(ctx, claim)):
            v = replace(v, measured=f"{v.measured} — counted, though it misses its calibration: {named}")
        out.append(v)
    return out


def table(verdicts: list[Verdict]) -> pd.DataFrame:
    """The claims table: claim, paper, measured, in kind, in size, why, criterion."""
    return pd.DataFrame([{"claim": v.claim, "paper (approx.)": CRITERIA[v.claim].paper,
                          "measured (mean [95% CI], seeds)": v.measured, "in kind": v.label, "in size": v.in_size,
                          "why": v.why, "criterion": CRITERIA[v.claim].rule} for v in verdicts])
