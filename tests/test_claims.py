"""The claims registry (cptlib.study.claims): a claim is one module's object, and the claims table, the effects
figure and the report iterate the registry. Adding a claim = its module plus one entry in CLAIMS; the toy claim
below is that module, written inside the test."""
from __future__ import annotations

import pandas as pd
import pytest

from cptlib.study import claims as CL
from cptlib.study import report, stats
from cptlib.study import verdicts as V
from cptlib.study.claims.base import Claim
from cptlib.study.effects import Quantity, row

# --- the toy claim: what a new claim's module holds (cptlib/study/claims/x1.py would be these lines) ---
GAP = Quantity("X1", "IF(instruct_v1) − IF(base_v1)")


def _measure(r):  # from a table of the results, here a new one ("ancestors")
    return [row(GAP, stats.paired(r["ancestors"], "model", "instruct_v1", "base_v1", "IF"))] if "ancestors" in r else []


def _judge(ctx):
    if (gated := V.gate(ctx, TOY)) is not None:
        return gated
    gap = V.check(ctx, GAP, "≥ 0.05", lambda e: e.mean >= 0.05)
    return V.Verdict("X1", V.grade(gap.passed, gap.estimate.mean > 0), V.measured(gap), "SFT teaches IF",
                     V.in_size(TOY.size[GAP], gap.estimate), (gap,))


TOY = Claim("X1", "instruction tuning teaches instruction following", "reproduced: ΔIF ≥ 0.05", _judge, _measure,
            needs=("instruct_v1",), size={GAP: (0.5, 0.5, "factor")})
# --- end of the toy claim ---


@pytest.fixture
def with_toy(monkeypatch):
    monkeypatch.setitem(CL.CLAIMS, "X1", TOY)  # the one line a new claim adds to CLAIMS


def _ancestors() -> pd.DataFrame:
    """Two seeds × (base_v1, instruct_v1), one row each (no per-item scores)."""
    return pd.DataFrame([{"model": m, "seed": s, "IF": v + 0.02 * s}
                         for s in (0, 1) for m, v in (("base_v1", 0.1), ("instruct_v1", 0.8))])


def test_a_claim_added_to_the_registry_reaches_the_table_the_figure_and_the_report(with_toy):
    fx = CL.effects({"ancestors": _ancestors()})
    assert list(fx.claim) == ["X1"]  # the study's claims find none of their tables here and measure nothing
    verdicts = CL.judge(V.Context(fx))
    toy = verdicts[-1]
    assert (toy.claim, toy.outcome, toy.in_size) == ("X1", V.Outcome.REPRODUCED, "yes (1.4× the paper's)")
    table = CL.table(verdicts)
    assert table.iloc[-1]["criterion"] == TOY.rule and table.iloc[-1]["paper (approx.)"] == TOY.paper
    rows = report.effect_rows(fx, verdicts)  # what the effects figure draws
    assert rows[rows.claim == "X1"][["met", "paper_lo"]].values.tolist() == [[V.Met.PASS.value, 0.5]]
    assert report.rules(CL.CLAIMS)[-1] == f"**X1**: {TOY.rule}"  # the report's list of criteria


def test_a_seed_whose_member_misses_calibration_is_left_out_of_the_claims_that_need_it(with_toy):
    """The validity rule (calibration log run 22): seed 1's instruct_v1 misses, so X1 (needs instruct_v1) is measured
    on seed 0 alone; with both seeds out X1 is not testable and still shows its numbers, unjudged."""
    r = {"ancestors": _ancestors()}
    misses = {("instruct_v1", 1): ["instruct_v1 (seed 1): IF prompt-level strict 0.500"]}
    left = CL.left_out(r, misses)
    assert left["X1"] == {1: misses[("instruct_v1", 1)]} and "C6" not in left  # C6 needs no instruct_v1
    fx = CL.effects(r, left)
    x1 = fx[fx.claim == "X1"].iloc[0]
    assert (x1["mean"], x1.n_seeds) == (pytest.approx(0.7), 1)  # seed 0: 0.8 − 0.1
    v = CL.judge(V.Context(fx, left_out=left, seeds=(0, 1)), only=["X1"])[0]
    assert v.measured.endswith("— seed 1 left out (instruct_v1 (seed 1): IF prompt-level strict 0.500)")
    both = {**misses, ("instruct_v1", 0): ["instruct_v1: IF prompt-level strict 0.400"]}
    left = CL.left_out(r, both)
    v = CL.judge(V.Context(CL.effects(r, left), left_out=left, seeds=(0, 1)), only=["X1"])[0]
    assert v.outcome is V.Outcome.NOT_TESTABLE


def test_without_drops_a_seed_and_the_first_seeds_tables_with_the_first_seed():
    r = {"ancestors": _ancestors(), "n4": pd.DataFrame({"lr": [1e-3]}), "benchmarks": pd.DataFrame({"drop": [0.1]})}
    assert set(CL.without(r, [1])) == {"ancestors", "n4", "benchmarks"} and set(CL.without(r, [1])["ancestors"].seed) == {0}
    assert set(CL.without(r, [0])) == {"ancestors", "benchmarks"}  # the N4 map is the first seed's
    assert CL.seeds_of(r) == (0, 1)


def test_the_registry_lists_the_study_claims_in_the_table_order():
    assert list(CL.CLAIMS) == ["C1", "C2", "C3", "C4", "C5", "C6", "Q1", "Q2", "Q3", "N1", "N2", "N3", "N4"]
    assert {c: CL.CLAIMS[c].part for c in CL.CLAIMS if CL.CLAIMS[c].part} == {
        "C5": "sizes", "C6": "sft", "Q1": "sizes", "N2": "shift"}
