"""The verdicts (cptlib.study.verdicts) on hand-made effects tables: every outcome of every claim and each boundary,
so that changing a criterion fails a test. Numbers are chosen by hand; the rule each case hits is in its name."""
from __future__ import annotations

import math

import matplotlib
import pandas as pd
import pytest

from cptlib.study import claims as CL
from cptlib.study import effects as E
from cptlib.study import report
from cptlib.study import n4 as N4
from cptlib.study import verdicts as V
from cptlib.study.labels import CPT_I, REST

R, P, N = V.Outcome.REPRODUCED, V.Outcome.PARTLY, V.Outcome.NOT
SCALE = {"C5": "slope per decade", "Q1": "slope per decade", "C6": "cost ratio"}


def fx(values: dict[tuple[str, str], tuple]) -> pd.DataFrame:
    """quantity -> (mean, lo, hi[, n_seeds]) as an effects table (n_seeds 3 unless given)."""
    rows = []
    for (claim, q), v in values.items():
        mean, lo, hi, n = (*v, 3) if len(v) == 3 else v
        rows.append({"claim": claim, "quantity": q, "mean": mean, "lo": lo, "hi": hi, "n_seeds": n,
                     "ci": "point" if lo != lo else "t over seeds + items (crossed)", "scale": SCALE.get(claim, "Δ accuracy")})
    return pd.DataFrame(rows, columns=E.COLUMNS)


def ctx(values: dict, **kw) -> V.Context:
    return V.Context(fx(values), **kw)


# C1: reproduced = CI above 0, Δ >= 0.05 and IF falls from the first milestone to the final budget.
@pytest.mark.parametrize("drop, grows, expected", [
    ((0.218, 0.143, 0.297), (-0.21, -0.28, -0.14, 1), R),  # the committed default's numbers
    ((0.05, 0.01, 0.09), (-0.1, -0.2, 0.0, 1), R),  # Δ exactly at 0.05: counts
    ((0.0499, 0.01, 0.09), (-0.1, -0.2, 0.0, 1), P),  # just below 0.05
    ((0.10, -0.01, 0.21), (-0.1, -0.2, 0.0, 1), P),  # CI touches 0
    ((0.10, 0.02, 0.18), (0.01, -0.05, 0.07, 1), P),  # no more forgetting with more tokens
    ((-0.02, -0.08, 0.04), (-0.1, -0.2, 0.0, 1), N),  # IF does not fall
])
def test_c1(drop, grows, expected):
    assert CL.c1.judge(ctx({CL.c1.DROP: drop, CL.c1.GROWS: grows})).outcome == expected


def test_c1_on_one_seed_says_so():
    """A released model CPT'd once (SmolLM2): the verdict is marked as resting on one seed."""
    v = CL.c1.judge(ctx({CL.c1.DROP: (0.09, 0.01, 0.17, 1), CL.c1.GROWS: (-0.09, -0.17, -0.01, 1)}))
    assert v.label == "reproduced (1 seed)"


def test_c1_in_size_is_within_a_factor_3_of_5_7_points():
    """0.171 = 3.0 × 0.057: yes; 0.218 = 3.8×: no."""
    assert CL.c1.judge(ctx({CL.c1.DROP: (0.171, 0.1, 0.25)})).in_size == "yes (3.0× the paper's)"
    assert CL.c1.judge(ctx({CL.c1.DROP: (0.218, 0.1, 0.25)})).in_size == "no (3.8× the paper's)"


@pytest.mark.parametrize("drop, expected", [((0.01, -0.02, 0.05), R), ((0.04, 0.01, 0.07), P),
                                            ((0.0725, 0.048, 0.099), N)])
def test_c2_upper_end_of_the_ci_against_0_05(drop, expected):
    assert CL.c2.judge(ctx({CL.c2.DROP: drop})).outcome == expected


def test_c3_the_committed_default_is_not_reproduced_and_says_which_checks_fail():
    v = CL.c3.judge(ctx({CL.c3.IF: (-0.087, -0.153, -0.020), CL.c3.IF_NAIVE: (0.131, 0.081, 0.183),
                  CL.c3.NEWS_KEPT: (-0.064, -0.103, -0.023), CL.c3.NEWS_GAINED: (0.341, 0.288, 0.397)}))
    assert v.outcome == N
    assert v.why == f"fails: {CL.c3.IF.text}, {CL.c3.NEWS_KEPT.text}"
    assert [c.passed for c in v.checks] == [False, True, False, True]  # the figure colours these
    assert v.in_size == "no (paper +0.00 to +0.05)"


@pytest.mark.parametrize("dif, naive, kept, gained, expected", [
    (-0.05, 0.0, -0.05, 0.05, R),  # every bound met exactly
    (-0.051, 0.05, -0.05, 0.3, P),  # IF just too low, but beats CPT(instruct) and keeps the news
    (-0.2, 0.05, -0.051, 0.3, N),  # loses the news
    (-0.2, 0.049, 0.0, 0.3, N),  # does not beat CPT(instruct) by 0.05
])
def test_c3_boundaries(dif, naive, kept, gained, expected):
    ci = lambda m: (m, m - 0.05, m + 0.05)  # noqa: E731
    v = CL.c3.judge(ctx({CL.c3.IF: ci(dif), CL.c3.IF_NAIVE: ci(naive), CL.c3.NEWS_KEPT: ci(kept), CL.c3.NEWS_GAINED: ci(gained)}))
    assert v.outcome == expected


def test_c3_without_a_news_metric_is_not_testable():
    v = CL.c3.judge(ctx({CL.c3.IF: (0.0, -0.1, 0.1), CL.c3.IF_NAIVE: (0.1, 0.0, 0.2)}))
    assert v.label == "not testable (no new-knowledge metric: map era_b in eval.metrics)"


def test_c4_a_loss_that_the_old_rule_passed_is_no_longer_at_least_as_good():
    """The committed default: (a) −0.027 [−0.077, +0.023] passed the old rule (mean ≥ −0.05) although the paper says
    the transferred residual *beats* the own instruct model; now (a) fails and C4 is partly (b holds), 1 seed."""
    v = CL.c4.judge(ctx({CL.c4.A: (-0.027, -0.077, 0.023, 1), CL.c4.B: (0.537, 0.477, 0.597, 1),
                  CL.c4.B_SIZE: (-0.033, -0.073, 0.007, 1)}))
    assert [c.passed for c in v.checks] == [False, True, None]
    assert v.label == "partly (1 seed)"


@pytest.mark.parametrize("a, b, expected", [
    ((0.0, -0.04, 0.04), (0.05, 0.01, 0.09), R),  # (a) mean exactly 0, CI above −0.05; (b) exactly 0.05
    ((0.01, -0.05, 0.07), (0.2, 0.1, 0.3), P),  # (a) CI reaches −0.05: a real loss is not excluded
    ((0.03, 0.0, 0.06), (0.2, 0.0, 0.4), P),  # (b) CI touches 0
    ((-0.01, -0.03, 0.01), (0.04, 0.01, 0.07), N),
])
def test_c4_boundaries(a, b, expected):
    assert CL.c4.judge(ctx({CL.c4.A: a, CL.c4.B: b, CL.c4.B_SIZE: (0.0, -0.1, 0.1)})).outcome == expected


# C5 (calibration log run 18): the OLS slope of recovery on log10 parameters over the valid sizes, its 95% interval.
@pytest.mark.parametrize("slope, expected, why", [
    ((0.06, 0.01, 0.11, 5), R, "grows with size"),
    ((0.06, -0.01, 0.13, 5), N, "no trend shown"),
    ((-0.08, -0.15, -0.01, 4), N, "contradicted"),
    ((0.0, 0.0, 0.0, 3), N, "no trend shown"),  # the interval's lower end exactly 0: not above it
])
def test_c5_is_read_from_the_slope_of_recovery(slope, expected, why):
    v = CL.c5.judge(ctx({CL.c5.SLOPE: slope}))
    assert v.outcome == expected and why in v.why
    assert f"({slope[3]} sizes)" in v.measured and v.checks[0].quantity == CL.c5.SLOPE


def test_c5_needs_three_valid_sizes():
    v = CL.c5.judge(ctx({CL.c5.SLOPE: (0.3, math.nan, math.nan, 2)}))
    assert v.outcome == V.Outcome.NOT_TESTABLE and v.checks[0].passed is None and v.label == "not testable (2 valid sizes)"
    one = CL.c5.judge(ctx({CL.c1.DROP: (0.2, 0.1, 0.3)}))  # the default: one size, no ladder in this profile
    assert one.outcome == V.Outcome.NOT_TESTABLE and "make reproduce PROFILE=sizes" in one.why


def test_q1_lists_every_slope_as_its_answer():
    from cptlib.study import scaling

    values = {CL.c5.SLOPE: (0.06, 0.01, 0.11, 5), CL.q1.slope_quantity(scaling.COS): (-0.1, -0.2, 0.0, 5)}
    v = CL.q1.judge(ctx(values))
    assert v.outcome == V.Outcome.ANSWERED and len(v.checks) == 2 and all(c.passed is None for c in v.checks)
    assert "cos(Θr, θ_cpt − θ_base): -0.100 [-0.200, +0.000]" in v.measured
    assert CL.q1.judge(ctx({CL.c1.DROP: (0.2, 0.1, 0.3)})).outcome == V.Outcome.NOT_TESTABLE


def test_ladder_effects_put_recovery_under_c5_and_the_rest_under_q1():
    from cptlib.study import scaling

    trends = pd.DataFrame([{"claim": c, "quantity": q, "fit_on": on, "k": 4, "dof": 2, "slope": 0.1, "slope_lo": 0.0,
                            "slope_hi": 0.2} for c, q in (("C5", scaling.RECOVERY), ("Q1", scaling.DRIFT))
                           for on in ("valid sizes", "all sizes")])
    fx = CL.effects({"scaling": trends})
    assert list(fx.claim) == ["C5", "C5", "Q1", "Q1"] and list(fx.quantity[:2]) == [CL.c5.SLOPE.text, CL.c5.SLOPE.text + E.BESIDE]
    assert fx.quantity.iloc[2] == CL.q1.slope_quantity(scaling.DRIFT)[1] and fx.ci.iloc[0] == "OLS on 4 size means, t with 2 df"
    assert set(fx.scale) == {"slope per decade"} and list(fx.n_seeds) == [4, 4, 4, 4]


@pytest.mark.parametrize("wall, expected, size", [(2365.0, R, "yes (1.2× the paper's)"), (100.0, R, "no (0.1× the paper's)"),
                                                  (99.0, P, "no (0.0× the paper's)"), (9.9, N, "no (0.0× the paper's)")])
def test_c6_is_judged_on_measured_wall_time_not_the_flops_count(wall, expected, size):
    """The FLOPs ratio (974,838×) would pass ≥ 100 whatever was measured; the wall-time ratio decides."""
    v = CL.c6.judge(ctx({CL.c6.WALL: (wall, wall * 0.9, wall * 1.1), CL.c6.FLOPS: (974838.0, math.nan, math.nan)}))
    assert (v.outcome, v.in_size) == (expected, size)
    assert "by construction" in v.measured and [c.passed for c in v.checks][1] is None


@pytest.mark.parametrize("other, own, expected", [(0.007, 0.35, R), (0.06, 0.35, P), (0.04, 0.08, N)])
def test_n1_other_family_residual_must_fail_to_transfer(other, own, expected):
    v = CL.n1.judge(ctx({CL.n1.OWN: (own, own - 0.05, own + 0.05, 1), CL.n1.OTHER: (other, 0.0, other + 0.01, 1)}))
    assert v.outcome == expected and v.note == "1 seed"


def test_n1_with_an_instruct_model_that_misses_its_calibration_is_not_testable():
    v = CL.n1.judge(ctx({CL.n1.OWN: (0.35, 0.3, 0.4), CL.n1.OTHER: (0.0, 0.0, 0.01)},
                 invalid={"other_instruct": ["IF prompt-level strict 0.583, target >= 0.60"]}))
    assert v.outcome == V.Outcome.NOT_TESTABLE and "other_instruct: IF prompt-level strict 0.583" in v.measured


@pytest.mark.parametrize("drops, expected", [((0.28, 0.34), R), ((0.28, 0.30), P), ((0.30, 0.28), N)])
def test_n2_more_shift_more_forgetting(drops, expected):
    values = {CL.n2.shift_quantity(f"c{i}.jsonl", 1.0 + i): (d, d - 0.05, d + 0.05, 1) for i, d in enumerate(drops)}
    v = CL.n2.judge(ctx(values))
    assert v.outcome == expected and [c.passed for c in v.checks] == [None, expected == R]
    assert CL.n2.judge(ctx(dict(list(values.items())[:1]))).label == "not testable (one corpus)"


def test_n4_threshold_is_the_largest_drift_below_the_first_failing_cell():
    """instruct IF 0.64 -> bound 0.512. Drifts 0.1, 0.2 keep it; 0.6 and 0.9 fail; 1.2 keeps it again. Threshold
    0.2 (not 1.2), first failure 0.6, 3 of 5 cells kept. The line fitted to IF/0.64 on log10 drift falls."""
    n4 = pd.DataFrame({"model": [REST] * 5 + [CPT_I], "drift_ratio": [0.1, 0.2, 0.6, 0.9, 1.2, math.nan],
                       "IF": [0.64, 0.60, 0.50, 0.45, 0.52, 0.3], "era_b": [0.3, 0.4, 0.6, 0.7, 0.8, 0.8],
                       "tokens": [1, 2, 3, 4, 5, 5], "lr": [1e-4] * 6})
    t = N4.n4_threshold(n4, 0.64)
    assert (t["bound"], t["threshold"], t["first_fail"], t["kept"], t["cells"]) == (pytest.approx(0.512), 0.2, 0.6, 3, 5)
    assert t["slope"] < 0 and 0.2 < t["crossing"] < 1.2
    v = CL.n4.judge(V.Context(fx({}), n4=n4, instruct_if=0.64))
    assert "in 3 of 5 cells; every cell with drift ratio ≤ 0.200 keeps it, the first failing cell is at 0.600" in v.measured
    assert v.label == "answered (1 seed)"


def test_n4_threshold_without_a_reference_fits_no_line():
    """A smoke model that follows nothing (instruct IF 0): every cell keeps 0 ≥ 0, and no line is fitted."""
    n4 = pd.DataFrame({"model": [REST] * 3, "drift_ratio": [0.0, 0.1, 0.2], "IF": [0.0] * 3, "era_b": [0.3] * 3})
    t = N4.n4_threshold(n4, 0.0)
    assert (t["kept"], t["threshold"]) == (3, 0.2) and math.isnan(t["slope"]) and math.isnan(t["crossing"])


def test_a_claim_needing_a_model_that_misses_calibration_is_not_testable_and_names_it():
    v = CL.c1.judge(ctx({CL.c1.DROP: (0.2, 0.1, 0.3)}, invalid={"instruct_v1": ["IF prompt-level strict 0.500"]}))
    assert v.label == "not testable (model misses calibration)" and "instruct_v1: IF prompt-level strict 0.500" in v.measured


def test_not_run_claims_say_why():
    c = ctx({CL.c1.DROP: (0.2, 0.1, 0.3)}, not_run={"C5": ("testbed only", "sizes are the testbed's presets")})
    labels = {v.claim: v.label for v in CL.judge(c)}
    assert labels["C5"] == "not run (testbed only)"
    assert labels["C2"] == labels["C3"] == labels["C4"] == labels["N4"] == "not run (model absent)"
    assert list(CL.table(CL.judge(c)).claim) == list(CL.CLAIMS)


def test_invalid_members_reads_only_the_ancestors_validity_rows():
    calib = pd.DataFrame({"metric": ["era-A accuracy", "residual norm / base norm", "era-B accuracy", "era-A accuracy"],
                          "model": ["base_v1 (tiny)", "instruct_v2", "cpt_base_v1", "base_v1"],
                          "value": [0.655, 0.124, 0.66, 0.98], "target": [">= 0.95", "<= 0.10", ">= 0.90", ">= 0.95"],
                          "met": [False, False, False, True]})
    assert V.invalid_members(calib) == {"base_v1 (tiny)": ["era-A accuracy 0.655, target >= 0.95"]}
    assert V.invalid_members(calib.assign(met=None)) == {}  # a real profile has no targets


def test_effects_figure_colours_come_from_the_same_verdicts():
    """Each marker's colour is CHECK_COLORS[check.passed] of the verdict that uses it: C3's favourable ΔIF against
    CPT(instruct) is green although C3 is not reproduced; C6's FLOPs count is blue (not judged)."""
    matplotlib.use("Agg")
    c = ctx({CL.c1.DROP: (0.218, 0.143, 0.297), CL.c3.IF: (-0.087, -0.153, -0.02), CL.c3.IF_NAIVE: (0.131, 0.081, 0.183),
             CL.c3.NEWS_KEPT: (-0.064, -0.103, -0.023), CL.c3.NEWS_GAINED: (0.341, 0.288, 0.397),
             CL.c6.WALL: (2365.0, 2000.0, 2700.0), CL.c6.FLOPS: (974838.0, math.nan, math.nan)})
    verdicts = CL.judge(c)
    rows = report.effect_rows(c.fx, verdicts)
    fig = report.claims_figure(rows)
    drawn = []
    for ax, scale in zip(fig.axes, ["Δ accuracy", "cost ratio"]):
        g = rows[rows.scale == scale].iloc[::-1]
        colours = [line.get_color() for line in ax.lines if line.get_marker() == "o"]
        drawn += list(zip(g.quantity, colours))
    expected = {c.quantity[1]: report.CHECK_COLORS[c.passed] for v in verdicts for c in v.checks}
    assert dict(drawn) == expected
    assert expected[CL.c3.IF_NAIVE.text] == report.CHECK_COLORS[True] and expected[CL.c6.FLOPS.text] == report.CHECK_COLORS[None]
    assert set(rows[rows.claim == "C3"].verdict) == {"not reproduced"}


# The N4 regime sentence, on a hand-made map.
def test_regime_sentence_names_working_broken_and_early_cells():
    """instruct_v1 IF 0.80 -> a restored model keeps IF at >= 0.64. Cells (tokens, lr, IF, era-B, drift):
    (1k, 1e-4, 0.70, 0.50, 0.10) keeps IF, news not learned; (2k, 1e-4, 0.66, 0.95, 0.30) works;
    (1k, 1e-3, 0.40, 0.97, 0.50) and (2k, 1e-3, 0.20, 1.00, 0.90) break. The CPT(instruct) row is ignored."""
    n4 = pd.DataFrame({"model": [REST] * 4 + ["CPT(instruct_v1)"], "tokens": [1000, 2000, 1000, 2000, 2000],
                       "lr": [1e-4, 1e-4, 1e-3, 1e-3, 1e-3], "IF": [0.70, 0.66, 0.40, 0.20, 0.10],
                       "era_b": [0.50, 0.95, 0.97, 1.00, 0.90], "drift_ratio": [0.10, 0.30, 0.50, 0.90, float("nan")]})
    text = N4.regime(n4, 0.80)
    assert "in 1 of 4 budget × learning-rate cells, at drift ratios 0.30–0.30 (2,000 tokens at lr 0.0001)" in text
    assert "restored IF falls below 80% of instruct_v1's in 2 cells, at drift ratios 0.50–0.90" in text
    assert "in 1 cells IF is kept but the news is not yet learned (drift ≤ 0.10)" in text


def test_regime_sentence_when_nothing_breaks():
    n4 = pd.DataFrame({"model": [REST], "tokens": [1000], "lr": [1e-4], "IF": [0.9], "era_b": [0.95],
                       "drift_ratio": [0.2]})
    assert "never fell below 80% of instruct_v1's (drift ratio up to 0.20)" in N4.regime(n4, 0.8)


def test_regime_sentence_without_a_news_metric():
    """A real profile that maps no era_b task: the sentence is about IF only and says the news is not measured."""
    n4 = pd.DataFrame({"model": [REST] * 2, "tokens": [1000, 2000], "lr": [1e-5, 1e-5], "IF": [0.7, 0.3],
                       "era_b": [float("nan")] * 2, "drift_ratio": [0.1, 0.4]})
    text = N4.regime(n4, 0.8)
    assert text == ("Restored IF ≥ 80% of instruct_v1's in 1 of 2 budget × learning-rate cells, up to drift ratio "
                    "0.10; whether the news is learned is not measured (no era_b metric).")


def test_markdown_and_html_render_the_same_blocks():
    """One structure, two renderers: every heading, sentence and table cell reaches both."""
    blocks = [("h2", "Claims"), ("p", "C3 is **not** reproduced in `default`"), ("table", pd.DataFrame({"claim": ["C1"],
              "in kind": ["partly (1 seed)"]})), ("list", ["**C1**: rule"]), ("code", "libraries: {}")]
    md, page = report._markdown(blocks, {}), report._html(blocks, {}, None)
    assert md == ("## Claims\n\nC3 is **not** reproduced in `default`\n\n| claim   | in kind         |\n"
                  "|---------|-----------------|\n| C1      | partly (1 seed) |\n\n\n- **C1**: rule\n\n```\nlibraries: {}\n```\n")
    for part in ["<h2>Claims</h2>", "C3 is <b>not</b> reproduced in <code>default</code>", "<td>partly (1 seed)</td>",
                 "<li><b>C1</b>: rule</li>", "<pre>libraries: {}</pre>"]:
        assert part in page


def test_a_not_testable_claim_still_shows_its_numbers_unjudged():
    c = ctx({CL.c1.DROP: (0.2, 0.1, 0.3)}, invalid={"instruct_v1": ["IF prompt-level strict 0.500"]})
    v = CL.judge(c)[0]
    assert v.outcome == V.Outcome.NOT_TESTABLE and [ch.passed for ch in v.checks] == [None]
    assert v.measured.startswith(f"{CL.c1.DROP.text} +0.200 [+0.100, +0.300] (3 seeds) — not judged: instruct_v1")



def test_another_ancestor_seed_that_misses_calibration_is_named_beside_the_numbers_not_gating():
    """A paired release (run 17): the first seed's members gate a claim; another seed's miss is named beside the
    numbers that average over it, and only beside the claims that use that member."""
    c = ctx({CL.c1.DROP: (0.2, 0.1, 0.3)}, invalid={"instruct_v1 (seed 2)": ["IF prompt-level strict 0.587"]})
    verdicts = {v.claim: v for v in CL.judge(c)}
    assert verdicts["C1"].outcome == V.Outcome.REPRODUCED
    assert verdicts["C1"].measured.endswith("counted, though it misses its calibration: instruct_v1 (seed 2): "
                                            "IF prompt-level strict 0.587")
    assert "seed 2" not in verdicts["C6"].measured  # C6 compares SFT and adding Θr: no instruct_v1 in its needs


def test_with_no_valid_sizes_c5_and_q1_show_the_fit_over_every_size_beside_unjudged():
    from cptlib.study import scaling

    beside = {CL.c5.SLOPE.beside(): (0.19, 0.01, 0.37, 5),
              ("Q1", CL.q1.slope_quantity(scaling.DRIFT)[1] + E.BESIDE): (0.16, 0.13, 0.20, 5)}
    c5 = CL.c5.judge(ctx(beside))
    assert c5.outcome == V.Outcome.NOT_TESTABLE and "beside, over all 5 sizes: +0.190 [+0.010, +0.370]" in c5.measured
    assert [c.passed for c in c5.checks] == [None]
    q1 = CL.q1.judge(ctx(beside))
    assert q1.outcome == V.Outcome.NOT_TESTABLE and "over all 5 sizes" in q1.measured and len(q1.checks) == 2
