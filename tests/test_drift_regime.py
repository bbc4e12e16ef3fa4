"""The claims across the regime (calibration log run 22 §5): C1-C3 judged at every cell of the drift grid inside the
regime by the claims' own rules, the validity rule applied per seed, and each claim's outcome across the regime."""
import math

import pandas as pd
import pytest

from cptlib.members import Member
from cptlib.study import drift, figures
from cptlib.study.labels import CPT_B, CPT_I, REST, SFT

LRS, BUDGETS, SEEDS = (1e-4, 1e-3), (1000, 2000), (0, 1, 2)


def _table(restored_if: float = 0.61, sft_news: float = 0.47) -> pd.DataFrame:
    """A grid of seed-level scores (no item-level evaluations: the intervals are t over seeds). Drift = lr × tokens,
    so lr 1e-4's cells (0.1, 0.2) lie inside the regime and lr 1e-3's (1.0, 2.0) outside."""
    rows = []
    for s in SEEDS:
        rows += [{"seed": s, "lr": math.nan, "tokens": 0, "model": Member.INSTRUCT_V1, "drift_ratio": 0.0,
                  "IF": 0.60 + 0.01 * s, "era_a": 0.90, "era_b": 0.25, "knowledge": 0.0},
                 {"seed": s, "lr": math.nan, "tokens": 0, "model": Member.BASE_V1, "drift_ratio": 0.0,
                  "IF": 0.10, "era_a": 0.92 + 0.005 * s, "era_b": 0.25, "knowledge": 0.0}]
        for lr in LRS:
            for tok in BUDGETS:
                cell = {"seed": s, "lr": lr, "tokens": tok, "drift_ratio": lr * tok * (1 + 0.01 * s)}
                rows += [{**cell, "model": CPT_B, "IF": 0.05, "era_a": 0.90 + 0.004 * s, "era_b": 0.5, "knowledge": 0.0},
                         {**cell, "model": CPT_I, "IF": 0.40 + 0.02 * s, "era_a": 0.9, "era_b": 0.5, "knowledge": 0.0},
                         {**cell, "model": REST, "IF": restored_if + 0.01 * s, "era_a": 0.9, "era_b": 0.48 + 0.01 * s,
                          "knowledge": 0.0}]
                if tok == BUDGETS[-1]:  # CPT(base_v1)+SFT at each learning rate's final budget only
                    rows.append({**cell, "model": SFT, "IF": 0.6, "era_a": 0.9, "era_b": sft_news + 0.01 * s,
                                 "knowledge": 0.9})
    return pd.DataFrame(rows)


def test_only_the_cells_inside_the_regime_are_judged_each_claim_by_its_own_rule():
    per_cell = drift.regime(_table())
    assert sorted(set(zip(per_cell.lr, per_cell.tokens))) == [(1e-4, 1000), (1e-4, 2000)]
    assert list(per_cell.claim) == ["C1", "C2", "C3"] * 2
    assert set(per_cell.outcome) == {"reproduced"}
    # C3 keeps the news against CPT(base_v1)+SFT where the cell has it, against CPT(base_v1) elsewhere; the news in
    # chat is not judged across the regime (run 22 §5), though CPT(base_v1)+SFT answers it far better here.
    c3 = per_cell[per_cell.claim == "C3"].set_index("tokens").measured
    assert "vs CPT(base_v1)+SFT" in c3[2000] and "vs CPT(base_v1) " in c3[1000] and "in chat" not in c3[2000]
    assert drift.across(per_cell)["across the regime"].tolist() == ["reproduced"] * 3


def test_a_seed_whose_instruct_model_misses_its_calibration_is_left_out_of_the_claims_that_need_it():
    misses = {(Member.INSTRUCT_V1, 2): ["instruct_v1 (seed 2): IF 0.587 < 0.60"]}
    per_cell = drift.regime(_table(), misses).set_index(["claim", "tokens"]).measured
    assert "(2 seeds) — seed 2 left out (instruct_v1 (seed 2): IF 0.587 < 0.60)" in per_cell["C1", 1000]
    assert "(3 seeds)" in per_cell["C2", 1000] and "left out" not in per_cell["C2", 1000]  # C2 needs base_v1 alone


def test_a_claim_reproduced_at_some_cells_is_partly_reproduced_across_the_regime_and_at_none_not():
    per_cell = drift.regime(_table(sft_news=0.60))  # CPT(base_v1)+SFT keeps the news 0.12 better at 2,000 tokens
    c3 = per_cell[per_cell.claim == "C3"].set_index("tokens").outcome
    assert c3[1000] == "reproduced" and c3[2000] == "not reproduced"
    assert drift.across(per_cell).set_index("claim").loc["C3", "across the regime"] == "partly"
    worse = drift.regime(_table(restored_if=0.40))  # Θr loses 0.2 of IF at every cell
    row = drift.across(worse).set_index("claim").loc["C3"]
    assert row["across the regime"] == "not reproduced" and row["outcomes"] == "not reproduced at 2"


def test_a_grid_with_no_cell_inside_the_regime_judges_nothing_and_says_so():
    table = _table()
    table = table[(table.lr != 1e-4)]
    per_cell = drift.regime(table)
    assert per_cell.empty
    assert drift.across(per_cell)["outcomes"].tolist() == ["no cell inside the regime"] * 3
    fig, _ = figures.drift_curves(drift.claim_curves(table), per_cell)
    assert "no claim is judged" in fig.axes[5].texts[0].get_text()


def test_the_drift_figure_draws_c2_at_matched_drift_and_each_claims_outcome_per_cell():
    table = _table(sft_news=0.60)
    curves, per_cell = drift.claim_curves(table), drift.regime(table)
    fig, _ = figures.drift_curves(curves, per_cell)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles[1].startswith("C2 Δ era-A") and titles[-1].startswith("Each claim at every cell inside the regime")
    c2 = fig.axes[1]
    assert len(c2.containers) == len(LRS)  # one line of error bars per learning rate
    panel = fig.axes[5]
    assert [t.get_text() for t in panel.get_yticklabels()] == ["C1", "C2", "C3"]
    assert len(panel.patches) == 6  # 3 claims × the 2 cells inside the regime
    assert [t.get_text() for t in panel.get_legend().get_texts()] == ["reproduced", "not reproduced"]
    assert figures.drift_caption(curves).startswith("C1, C2 and C3 over the drift")
    old = curves[curves.curve != "C2 Δ era-A"]  # a committed run from before C2's curve keeps its caption
    assert figures.drift_caption(old) == figures.DRIFT_CAPTION


@pytest.mark.parametrize("counts, expected", [({"reproduced": 3}, "reproduced"),
                                              ({"reproduced": 1, "inconclusive": 2}, "partly"),
                                              ({"inconclusive": 3}, "not reproduced"),
                                              ({"not testable": 3}, "not testable")])
def test_across_the_regime_reads_every_cell_as_run_22_wrote_it(counts, expected):
    rows = [{"claim": c, "lr": 1e-4, "tokens": i, "outcome": o} for c in drift.REGIME_CLAIMS
            for i, o in enumerate(o for o, n in counts.items() for _ in range(n))]
    out = drift.across(pd.DataFrame(rows)).set_index("claim")
    assert set(out["across the regime"]) == {expected}
    assert (out.cells == 3).all()
