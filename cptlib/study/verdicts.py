"""What a verdict is, and the steps every claim's judge shares (cptlib/study/claims/ holds the claims themselves).

    ctx = Context(fx, n4=results.get("n4"), instruct_if=0.64, left_out={"C1": {2: ["instruct_v1 (seed 2): ..."]}},
                  seeds=(0, 1, 2))
    v = claims.CLAIMS["C3"].judge(ctx)   # Verdict(claim="C3", outcome=Outcome.NOT, checks=(...), why="...", ...)
    verdicts = claims.judge(ctx)         # every claim of the registry, in order

A verdict is *in kind* (the direction of the paper's claim, by the claim's rule) and *in size* (against the paper's
number, the claim's `size`). Each verdict carries its checks: the quantity, its estimate, the rule it had to meet and
whether it did; the claims table, the effects figure and the report all render these objects, so they cannot
disagree. Criteria changed after the results were first seen say so (Claim.old) and the report lists them.

The rules that apply to every claim (docs/calibration_log.md, run 22):
- a bound is judged on the 95% interval (`at_least`, `at_most`): a check passes when the whole interval lies on the
  claim's side, fails when it lies wholly on the other side, and is inconclusive when it spans the bound;
- a claim's outcome from its headline and supporting checks (`decide`): not reproduced when a headline check fails,
  inconclusive when one is inconclusive, reproduced when every check passes, partly otherwise;
- one validity rule (`misses`, cptlib.study.claims.effects): a seed whose member misses its own calibration target
  (VALIDITY) is left out of every claim that needs that member; a claim with no seed left is not testable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

import pandas as pd

from cptlib.study import effects as E
from cptlib.study.criteria import EFFECT, FACTOR, VALIDITY
from cptlib.study.stats import Estimate

class Outcome(str, Enum):
    REPRODUCED = "reproduced"
    PARTLY = "partly"
    NOT = "not reproduced"
    INCONCLUSIVE = "inconclusive"  # a headline check's interval spans its bound
    ANSWERED = "answered"  # an open question: the numbers are the answer
    NOT_TESTABLE = "not testable"  # a model it needs misses its calibration, or too few sizes / corpora
    NOT_RUN = "not run"


class Met(str, Enum):
    """How a check came out against its rule (the effects table's `met` column and the figure's colours)."""
    PASS = "meets its rule"
    FAIL = "misses its rule"
    INCONCLUSIVE = "inconclusive (the interval spans the bound)"
    SHOWN = "shown, not judged"


@dataclass(frozen=True)
class Check:
    quantity: E.Quantity
    estimate: Estimate
    rule: str
    met: Met

    @property
    def passed(self) -> bool:
        return self.met is Met.PASS

    @property
    def judged(self) -> bool:
        return self.met is not Met.SHOWN


def met(passed: bool | None) -> Met:
    """A rule that is a plain yes/no (a count, a point estimate), or None: shown, not judged."""
    return Met.SHOWN if passed is None else Met.PASS if passed else Met.FAIL


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
    n4: pd.DataFrame | None = None
    instruct_if: float = math.nan  # IF(instruct_v1), N4's reference
    main_size: str = "small"  # the profile's own size (its members are base_v1, instruct_v1 in the calibration)
    not_run: dict[str, tuple[str, str]] = field(default_factory=dict)  # claim -> (short note, why it was not run)
    texts: dict[str, str] = field(default_factory=dict)  # claim -> the numbers of an open question (Q2, Q3, N3)
    left_out: dict[str, dict[int, list[str]]] = field(default_factory=dict)  # claim -> {seed left out: why} (`misses`)
    seeds: tuple[int, ...] = ()  # every training seed the study has


def misses(calibration: pd.DataFrame | None, seeds: tuple[int, ...]) -> dict[tuple[str, int], list[str]]:
    """{(member, seed): its missed calibration targets} for the study's `seeds`: a member released per seed
    ("instruct_v1 (seed 2)"; the label without a seed is the first seed's) misses at its seed; a member released once
    for every seed (no "(seed k)" row, e.g. other_family) misses at every seed. The size ladder's other sizes are
    the size claims' business (cptlib.study.scaling) and are not listed."""
    from cptlib.evaluation.calibration import ModelId

    if calibration is None or not seeds:
        return {}
    ids = [ModelId.parse(m) for m in calibration.model.unique()]
    per_seed = {i.member for i in ids if i.seed is not None and i.size is None}
    out: dict[tuple[str, int], list[str]] = {}
    for label, why in invalid_members(calibration).items():
        mid = ModelId.parse(label)
        if mid.size is not None:
            continue
        at = [mid.seed] if mid.seed is not None else [seeds[0]] if mid.member in per_seed else list(seeds)
        for seed in at:
            out.setdefault((mid.member, seed), []).extend(f"{label}: {w}" for w in why)
    return out


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


def widened(low: float, high: float) -> tuple[float, float]:
    """A range the paper states ("about equal or a few points better") widened by EFFECT away from 0 only: it never
    accepts the opposite sign of the paper's (calibration log run 22; was ± EFFECT on both sides)."""
    return (low if low >= 0 else low - EFFECT), (high if high <= 0 else high + EFFECT)


def in_size(paper: tuple[float, float, str], est: Estimate) -> str:
    """Whether `est` is in size against the paper's (low, high, how): "factor" within ×/÷ FACTOR of it, "range"
    within the range widened by EFFECT away from 0 (`widened`)."""
    low, high, how = paper
    if how == "factor":
        times = est.mean / low
        ok = 1 / FACTOR <= times <= FACTOR
        return f"{'yes' if ok else 'no'} ({times:,.0f}× the paper's)" if times >= 10 else \
            f"{'yes' if ok else 'no'} ({times:.1f}× the paper's)"
    lo, hi = widened(low, high)
    ok = lo <= est.mean <= hi
    return f"{'yes' if ok else 'no'} (paper {low:+.2f} to {high:+.2f})"


def grade(full: bool, part: bool) -> Outcome:
    return Outcome.REPRODUCED if full else Outcome.PARTLY if part else Outcome.NOT


def decide(headline, supporting=()) -> Outcome:
    """A claim's outcome from its checks (run 22): not reproduced when a headline check fails, inconclusive when one
    is inconclusive, reproduced when every check passes, partly when the headline passes and a supporting check does
    not."""
    headline, supporting = list(headline), [c for c in supporting if c.judged]
    if any(c.met is Met.FAIL for c in headline):
        return Outcome.NOT
    if any(c.met is not Met.PASS for c in headline):
        return Outcome.INCONCLUSIVE
    return Outcome.REPRODUCED if all(c.passed for c in supporting) else Outcome.PARTLY


def seeds(*checks: Check) -> str:
    """"1 seed" when every judged number rests on one seed (the verdict is indicative, not decided by seeds)."""
    judged = [c for c in checks if c.judged]
    return "1 seed" if judged and all(c.estimate.n_seeds == 1 for c in judged) else ""


def gate(ctx: Context, claim) -> Verdict | None:
    """The verdict a claim (its .id) gets before its numbers are judged: not run, or not testable (every seed left
    out: a model it needs misses its calibration at each); None where it can be judged."""
    claim = claim.id
    if claim in ctx.not_run:
        note, why = ctx.not_run[claim]
        return Verdict(claim, Outcome.NOT_RUN, why, why, "n/a (not run)", note=note)
    out = ctx.left_out.get(claim, {})
    if out and ctx.seeds and set(ctx.seeds) <= set(out):
        missed = "; ".join(dict.fromkeys(w for why in out.values() for w in why))
        return Verdict(claim, Outcome.NOT_TESTABLE, missed, "a model it needs misses its own calibration target at "
                       "every seed, so the test is not valid", note="model misses calibration")
    return None


def left_out_text(ctx: Context, claim: str) -> str:
    """The seeds the validity rule left out of a claim's numbers, and why ("" where none)."""
    out = ctx.left_out.get(claim, {})
    return "; ".join(f"seed {s} left out ({'; '.join(why)})" for s, why in sorted(out.items()))


ABSENT = "needs a model the profile declares absent (models: null), e.g. the base of a released instruct model"


def absent(claim: str) -> Verdict:
    return Verdict(claim, Outcome.NOT_RUN, ABSENT, "a model it needs is absent", "n/a (not run)", note="model absent")


def check(ctx: Context, q: E.Quantity, rule: str, test) -> Check | None:
    """A yes/no rule on the estimate (test(est) -> bool; None: shown, not judged); None where q was not measured."""
    est = E.get(ctx.fx, q)
    return None if est is None else Check(q, est, rule, met(None if test is None else bool(test(est))))


def interval_met(est: Estimate, bound: float, above: bool, strict: bool) -> Met:
    """Whether the 95% interval lies on the claim's side of `bound` (above it, or below), wholly on the other side,
    or spans it (no interval: inconclusive)."""
    lo, hi = est.lo, est.hi
    if math.isnan(lo) or math.isnan(hi):
        return Met.INCONCLUSIVE
    if above:
        ok, bad = (lo > bound, hi <= bound) if strict else (lo >= bound, hi < bound)
    else:
        ok, bad = (hi < bound, lo >= bound) if strict else (hi <= bound, lo > bound)
    return Met.PASS if ok else Met.FAIL if bad else Met.INCONCLUSIVE


def _bound_text(sign: str, bound: float) -> str:
    return f"95% CI {sign} {bound:+g}".replace("-", "−")


def at_least(ctx: Context, q: E.Quantity, bound: float, strict: bool = False) -> Check | None:
    """q ≥ bound (q > bound if strict), judged on its interval (`interval_met`); None where q was not measured."""
    est = E.get(ctx.fx, q)
    return None if est is None else Check(q, est, _bound_text(">" if strict else "≥", bound),
                                          interval_met(est, bound, True, strict))


def at_most(ctx: Context, q: E.Quantity, bound: float, strict: bool = False) -> Check | None:
    """q ≤ bound (q < bound if strict), judged on its interval; None where q was not measured."""
    est = E.get(ctx.fx, q)
    return None if est is None else Check(q, est, _bound_text("<" if strict else "≤", bound),
                                          interval_met(est, bound, False, strict))


def measured(*checks: Check) -> str:
    return "; ".join(f"{c.quantity.text} {c.estimate.text()}" for c in checks)


def beside(ctx: Context, *quantities: E.Quantity, rule: str = "shown beside the default CPT, not judged") \
        -> tuple[Check, ...]:
    """Numbers shown beside a claim's judged ones (Met.SHOWN), where the study has them: the aggressive cell's."""
    return tuple(c for q in quantities if (c := check(ctx, q, rule, None)))


ONE_SIZE = ("the trend needs at least 3 model sizes that meet their calibration; the size ladder's study is "
            "`make reproduce PROFILE=sizes` (figures/sizes/)")


def slope_text(e: Estimate) -> str:
    return e.text(digits=3).split(" (")[0]


def answered(ctx: Context, claim, note: str = "") -> Verdict:
    """An open question whose answer is its numbers (ctx.texts, from the claim's `answer`)."""
    if claim.id not in ctx.texts:
        return gate(ctx, claim) or absent(claim.id)
    return gate(ctx, claim) or Verdict(claim.id, Outcome.ANSWERED, ctx.texts[claim.id], "the numbers are the answer",
                                       note=note)
