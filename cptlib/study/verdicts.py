"""What a verdict is, and the steps every claim's judge shares (cptlib/study/claims/ holds the claims themselves).

    ctx = Context(fx, invalid=invalid_members(calib), n4=results.get("n4"), instruct_if=0.64)
    v = claims.CLAIMS["C3"].judge(ctx)   # Verdict(claim="C3", outcome=Outcome.NOT, checks=(...), why="...", ...)
    verdicts = claims.judge(ctx)         # every claim of the registry, in order

A verdict is *in kind* (the direction of the paper's claim, by the claim's rule) and *in size* (against the paper's
number, the claim's `size`). Each verdict carries its checks: the quantity, its estimate, the rule it had to meet and
whether it did; the claims table, the effects figure and the report all render these objects, so they cannot
disagree. A claim whose models miss their own calibration target (VALIDITY) is "not testable", not "not
reproduced". Criteria changed after the results were first seen say so (Claim.old) and the report lists them.
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


def in_size(paper: tuple[float, float, str], est: Estimate) -> str:
    """Whether `est` is in size against the paper's (low, high, how): "factor" within ×/÷ FACTOR of it, "range"
    within the range widened by EFFECT on both sides."""
    low, high, how = paper
    if how == "factor":
        times = est.mean / low
        ok = 1 / FACTOR <= times <= FACTOR
        return f"{'yes' if ok else 'no'} ({times:,.0f}× the paper's)" if times >= 10 else \
            f"{'yes' if ok else 'no'} ({times:.1f}× the paper's)"
    ok = low - EFFECT <= est.mean <= high + EFFECT
    return f"{'yes' if ok else 'no'} (paper {low:+.2f} to {high:+.2f})"


def grade(full: bool, part: bool) -> Outcome:
    return Outcome.REPRODUCED if full else Outcome.PARTLY if part else Outcome.NOT


def seeds(*checks: Check) -> str:
    """"1 seed" when every judged number rests on one seed (the verdict is indicative, not decided by seeds)."""
    judged = [c for c in checks if c.passed is not None]
    return "1 seed" if judged and all(c.estimate.n_seeds == 1 for c in judged) else ""


def gate(ctx: Context, claim) -> Verdict | None:
    """The verdict a claim (its .id and .needs) gets before its numbers are judged: not run, or not testable (a model
    it needs misses its calibration); None where it can be judged."""
    members, claim = claim.needs, claim.id
    if claim in ctx.not_run:
        note, why = ctx.not_run[claim]
        return Verdict(claim, Outcome.NOT_RUN, why, why, "n/a (not run)", note=note)
    missed = [f"{m}: {'; '.join(ctx.invalid[m])}" for m in members if m in ctx.invalid]
    if missed:
        return Verdict(claim, Outcome.NOT_TESTABLE, "; ".join(missed), "a model it needs misses its own calibration "
                       "target, so the test is not valid", note="model misses calibration")
    return None


def other_seeds_missed(ctx: Context, needs: tuple[str, ...]) -> str:
    """Another ancestor seed's member (a paired release: "instruct_v1 (seed 2)") that the claim's numbers average
    over and that misses its own calibration: named beside the numbers, not gating them (docs/calibration_log.md,
    run 17: the first seed's members gate, the other seeds' are named)."""
    return "; ".join(f"{m}: {'; '.join(why)}" for m, why in ctx.invalid.items()
                     if " (seed " in m and m.split(" (seed ")[0] in needs)


ABSENT = "needs a model the profile declares absent (models: null), e.g. the base of a released instruct model"


def absent(claim: str) -> Verdict:
    return Verdict(claim, Outcome.NOT_RUN, ABSENT, "a model it needs is absent", "n/a (not run)", note="model absent")


def check(ctx: Context, q: E.Quantity, rule: str, test) -> Check | None:
    est = E.get(ctx.fx, q)
    return None if est is None else Check(q, est, rule, None if test is None else bool(test(est)))


def measured(*checks: Check) -> str:
    return "; ".join(f"{c.quantity.text} {c.estimate.text()}" for c in checks)


def beside(ctx: Context, *quantities: E.Quantity) -> tuple[Check, ...]:
    """The aggressive cell's numbers, shown beside a claim's judged ones (passed None), where the study has them."""
    return tuple(c for q in quantities if (c := check(ctx, q, "shown beside the default CPT, not judged", None)))


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
