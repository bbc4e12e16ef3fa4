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


# --- every claim on every seed the validity rule keeps (issue 48 item 3) ---

def _calibration(missing: dict[str, float]) -> pd.DataFrame:
    """A calibration table shaped as notebook 00's: instruct_v1's IF at seeds 0–2 ("instruct_v1" is seed 0's),
    each met unless `missing` gives its value."""
    rows = []
    for label in ("instruct_v1", "instruct_v1 (seed 1)", "instruct_v1 (seed 2)"):
        value = missing.get(label, 0.65)
        rows.append({"metric": "IF prompt-level strict", "model": label, "value": value,
                     "target": ">= 0.60 and >= base_v1 + 0.40", "met": value >= 0.60, "n": 300, "n_seeds": 1})
    return pd.DataFrame(rows)


def test_the_parts_beyond_the_key_results_run_on_the_seeds_whose_ancestors_meet_their_calibration():
    from cptlib.study.experiments import seeds_meeting

    needs = ("base_v1", "instruct_v1")
    assert seeds_meeting(_calibration({}), [0, 1, 2], needs) == [0, 1, 2]
    assert seeds_meeting(_calibration({"instruct_v1 (seed 2)": 0.587}), [0, 1, 2], needs) == [0, 1]
    assert seeds_meeting(_calibration({"instruct_v1": 0.5}), [0, 1, 2], needs) == [1, 2]
    assert seeds_meeting(_calibration({"instruct_v1 (seed 2)": 0.587}), [0, 1, 2], ("base_v1",)) == [0, 1, 2]
    assert seeds_meeting(None, [0, 1], needs) == [0, 1]  # a real profile: no targets


def _forgetting(seeds_along=(0, 1), every=(0, 1, 2)) -> pd.DataFrame:
    """instruct_v1 at 0 tokens for every seed, CPT(instruct_v1) at the milestone (seeds_along) and the final budget."""
    rows = [{"seed": s, "tokens": 0, "model": "instruct_v1", "IF": 0.62 + 0.01 * s} for s in every]
    rows += [{"seed": s, "tokens": 100, "model": "CPT(instruct_v1)", "IF": 0.58 - 0.01 * s} for s in seeds_along]
    rows += [{"seed": s, "tokens": 400, "model": "CPT(instruct_v1)", "IF": 0.50 - 0.02 * s} for s in every]
    return pd.DataFrame(rows)


def test_c1_s_horizon_and_aggressive_cell_and_n2_pair_every_seed_the_tables_have():
    fg = _forgetting()
    n4 = pd.DataFrame([{"seed": s, "lr": 1e-3, "cpt_lr": True, "tokens": t, "model": "CPT(instruct_v1)",
                        "drift_ratio": 1.0, "IF": 0.3 + 0.1 * s} for s in (0, 1) for t in (800,)])
    shift = pd.DataFrame([{"seed": s, "corpus": c, "shift_bpb": b + 0.1 * s, "model": "CPT(instruct_v1)",
                           "IF": 0.6 - d - 0.01 * s}
                          for s in (0, 1) for c, b, d in (("corpus_b.jsonl", 1.5, 0.1), ("corpus_a2.jsonl", 2.3, 0.05))])
    fx = CL.effects({"forgetting": fg, "n4": n4, "shift": shift})
    grows = fx[fx.quantity == "IF(CPT(instruct_v1)) final − first milestone"].iloc[0]
    # seeds 0 and 1: (0.50 − 0.58) and (0.48 − 0.57): mean −0.085, over 2 seeds (seed 2 has no milestone)
    assert (grows["mean"], grows.n_seeds) == (pytest.approx(-0.085), 2)
    agg = fx[fx.quantity == "ΔIF at the aggressive cell (cpt.lr, N4 budget)"].iloc[0]
    assert (agg["mean"], agg.n_seeds) == (pytest.approx(((0.62 - 0.3) + (0.63 - 0.4)) / 2), 2)
    n2 = fx[fx.claim == "N2"]
    assert list(n2.n_seeds) == [2, 2]
    assert list(n2.quantity) == ["ΔIF on corpus_b (shift 1.55 bpb)", "ΔIF on corpus_a2 (shift 2.35 bpb)"]
    # corpus_b: seed 0 0.62 − 0.50, seed 1 0.63 − 0.49; corpus_a2: 0.62 − 0.55, 0.63 − 0.54 (paired by seed)
    assert n2["mean"].tolist() == pytest.approx([0.13, 0.08])


def test_n4_reads_each_cell_s_mean_over_the_map_s_seeds_and_says_how_many():
    from cptlib.study.n4 import cells

    n4 = pd.DataFrame([{"seed": s, "lr": 1e-3, "cpt_lr": True, "tokens": t, "model": "CPT(base_v1)+Θr(v1)",
                        "drift_ratio": d * (1 + 0.1 * s), "IF": i - 0.02 * s, "era_b": 0.3}
                       for s in (0, 1) for t, d, i in ((100, 0.2, 0.60), (200, 0.8, 0.40))])
    c = cells(n4)
    assert c.IF.tolist() == pytest.approx([0.59, 0.39]) and c.n_seeds.tolist() == [2, 2]
    v = CL.CLAIMS["N4"].judge(V.Context(CL.effects({}), n4=n4, instruct_if=0.6))
    assert "in 1 of 2 cells" in v.measured and "each cell the mean over 2 seeds" in v.measured and v.note == ""
