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

R, P, N, I = V.Outcome.REPRODUCED, V.Outcome.PARTLY, V.Outcome.NOT, V.Outcome.INCONCLUSIVE
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


# C1 (run 22): headline Δ > 0 on its CI; supporting: IF falls from the first milestone (CI < 0), benchmarks (CI > 0).
@pytest.mark.parametrize("drop, grows, expected", [
    ((0.218, 0.143, 0.297), (-0.21, -0.28, -0.14, 1), R),  # the numbers of an earlier default
    ((0.03, 0.01, 0.05), (-0.1, -0.2, -0.01, 1), R),  # a small drop counts in kind (in size is judged apart)
    ((0.10, 0.0, 0.20), (-0.1, -0.2, -0.01, 1), I),  # CI touches 0: not above it
    ((0.098, -0.196, 0.392), (-0.1, -0.2, -0.01, 1), I),  # two seeds, t with 1 df: the CI spans 0
    ((0.10, 0.02, 0.18), (0.01, -0.05, 0.07, 1), P),  # more tokens: no more forgetting shown (inconclusive)
    ((0.10, 0.02, 0.18), (0.05, 0.01, 0.09, 1), P),  # more tokens, less forgetting (missed)
    ((-0.05, -0.09, 0.0), (-0.1, -0.2, -0.01, 1), N),  # CI at or below 0: IF does not fall
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


@pytest.mark.parametrize("drop, expected", [((0.01, -0.02, 0.05), R), ((0.04, 0.01, 0.07), I),
                                            ((0.104, 0.048, 0.160), I), ((0.0725, 0.051, 0.099), N)])
def test_c2_the_ci_against_0_05(drop, expected):
    assert CL.c2.judge(ctx({CL.c2.DROP: drop})).outcome == expected


def test_c2_every_ability_is_a_headline():
    """Era-A kept but the benchmarks clearly degraded: not reproduced."""
    v = CL.c2.judge(ctx({CL.c2.DROP: (0.0, -0.02, 0.02), CL.c2.BENCH: (0.12, 0.08, 0.16)}))
    assert v.outcome == N and [c.met for c in v.checks] == [V.Met.PASS, V.Met.FAIL]


def c3(dif, mc_kept=None, mc_gained=None, chat_kept=None, chat_gained=None, reference=None):
    """C3's effects: the IF half and the news halves given (MC: era_b; chat: knowledge)."""
    from cptlib.study.labels import SFT

    ref = reference or SFT
    values = {CL.c3.IF: dif, CL.c3.IF_NAIVE: (0.1, 0.05, 0.15)}
    for metric, kept, gained in (("era_b", mc_kept, mc_gained), ("knowledge", chat_kept, chat_gained)):
        if kept is not None:
            values[CL.c3.kept(metric, ref)], values[CL.c3.gained(metric)] = kept, gained
    return CL.c3.judge(ctx(values))


OK_IF, KEPT, GAINED = (0.0, -0.04, 0.04), (0.0, -0.03, 0.03), (0.3, 0.2, 0.4)


@pytest.mark.parametrize("halves, expected", [
    (dict(dif=OK_IF, mc_kept=KEPT, mc_gained=GAINED, chat_kept=KEPT, chat_gained=GAINED), R),
    (dict(dif=(-0.15, -0.2, -0.06), mc_kept=KEPT, mc_gained=GAINED, chat_kept=KEPT, chat_gained=GAINED), N),
    (dict(dif=OK_IF, mc_kept=KEPT, mc_gained=GAINED, chat_kept=KEPT, chat_gained=(0.0, -0.05, 0.05)), P),
    (dict(dif=(-0.05, -0.1, 0.0), mc_kept=KEPT, mc_gained=GAINED), I),  # the IF half spans −0.05
    (dict(dif=OK_IF, mc_kept=KEPT, mc_gained=(-0.01, -0.05, 0.0), chat_kept=KEPT, chat_gained=(0.0, -0.1, 0.0)), N),
    (dict(dif=OK_IF, mc_kept=(-0.05, -0.1, 0.0), mc_gained=GAINED, chat_kept=KEPT, chat_gained=(0.0, -0.1, 0.0)), I),
    (dict(dif=OK_IF, mc_kept=(-0.1, -0.15, -0.06), mc_gained=GAINED), N),  # the news lost against SFT
    (dict(dif=(-0.05, -0.05, 0.0), mc_kept=(-0.05, -0.05, 0.0), mc_gained=(0.01, 0.0001, 0.02)), R),  # bounds exactly met
])
def test_c3_halves(halves, expected):
    assert c3(**halves).outcome == expected


def test_c3_says_each_half_and_colours_each_check():
    v = c3(OK_IF, KEPT, GAINED, KEPT, (0.0, -0.05, 0.05))
    assert v.why == ("IF half: meets its rule; era-B MC half: meets its rule; era-B in chat half: inconclusive (the "
                     "interval spans the bound)")
    assert [c.met for c in v.checks] == [V.Met.PASS] * 4 + [V.Met.INCONCLUSIVE, V.Met.SHOWN]
    assert v.in_size == "yes (paper +0.00 to +0.05)"


def test_c3_news_against_cpt_base_where_the_profile_cannot_run_sft():
    from cptlib.study.labels import CPT_B

    v = c3(OK_IF, KEPT, GAINED, reference=CPT_B)
    assert v.outcome == R and CL.c3.kept("era_b", CPT_B).text in v.measured


def test_in_size_never_accepts_the_opposite_sign():
    """C3 ΔIF 'about equal, sometimes +5': −0.03 was in size under ±0.05 widening; now [0, +0.10]."""
    assert V.widened(0.0, 0.05) == (0.0, 0.10) and V.widened(-0.05, 0.0) == (-0.10, 0.0)
    assert c3((-0.03, -0.04, -0.02), KEPT, GAINED).in_size == "no (paper +0.00 to +0.05)"
    assert c3((0.09, 0.05, 0.13), KEPT, GAINED).in_size == "yes (paper +0.00 to +0.05)"


def test_c3_without_a_news_metric_is_not_testable():
    v = CL.c3.judge(ctx({CL.c3.IF: (0.0, -0.1, 0.1), CL.c3.IF_NAIVE: (0.1, 0.0, 0.2)}))
    assert v.label == "not testable (no new-knowledge metric: map era_b or knowledge in eval.metrics)"


def test_c4_a_loss_whose_interval_reaches_below_minus_0_05_is_inconclusive():
    """(a) −0.047 [−0.099, +0.006]: not shown non-inferior, not shown inferior; (b) holds: partly, 1 seed."""
    v = CL.c4.judge(ctx({CL.c4.A: (-0.047, -0.099, 0.006, 1), CL.c4.B: (0.450, 0.390, 0.510, 1),
                  CL.c4.B_SIZE: (-0.073, -0.123, -0.024, 1)}))
    assert [c.met for c in v.checks] == [V.Met.INCONCLUSIVE, V.Met.PASS, V.Met.SHOWN]
    assert v.label == "partly (1 seed)"


@pytest.mark.parametrize("a, b, expected", [
    ((0.0, -0.04, 0.04), (0.05, 0.01, 0.09), R),
    ((0.01, -0.05, 0.07), (0.2, 0.1, 0.3), R),  # (a) CI's lower end exactly −0.05: non-inferior
    ((0.01, -0.06, 0.07), (0.2, 0.1, 0.3), P),  # (a) inconclusive
    ((0.03, 0.0, 0.06), (0.2, 0.0, 0.4), P),  # (b) CI touches 0: inconclusive
    ((-0.1, -0.15, -0.06), (0.0, -0.05, 0.05), N),  # (a) missed, (b) inconclusive
    ((0.0, -0.08, 0.08), (0.0, -0.05, 0.05), I),
])
def test_c4_boundaries(a, b, expected):
    assert CL.c4.judge(ctx({CL.c4.A: a, CL.c4.B: b, CL.c4.B_SIZE: (0.0, -0.1, 0.1)})).outcome == expected


# C5 (calibration log run 18): the OLS slope of recovery on log10 parameters over the valid sizes, its 95% interval.
@pytest.mark.parametrize("slope, expected, why", [
    ((0.06, 0.01, 0.11, 5), R, "grows with size"),
    ((0.06, -0.01, 0.13, 5), I, "inconclusive"),
    ((-0.08, -0.15, -0.01, 4), N, "contradicted"),
    ((0.0, -0.1, 0.0, 3), N, "contradicted"),  # the interval's upper end exactly 0: at or below it
])
def test_c5_is_read_from_the_slope_of_recovery(slope, expected, why):
    v = CL.c5.judge(ctx({CL.c5.SLOPE: slope}))
    assert v.outcome == expected and why in v.why
    assert f"({slope[3]} sizes)" in v.measured and v.checks[0].quantity == CL.c5.SLOPE


def test_c5_needs_three_valid_sizes():
    v = CL.c5.judge(ctx({CL.c5.SLOPE: (0.3, math.nan, math.nan, 2)}))
    assert v.outcome == V.Outcome.NOT_TESTABLE and not v.checks[0].judged and v.label == "not testable (2 valid sizes)"
    one = CL.c5.judge(ctx({CL.c1.DROP: (0.2, 0.1, 0.3)}))  # the default: one size, no ladder in this profile
    assert one.outcome == V.Outcome.NOT_TESTABLE and "make reproduce PROFILE=sizes" in one.why


def test_q1_lists_every_slope_as_its_answer():
    from cptlib.study import scaling

    values = {CL.c5.SLOPE: (0.06, 0.01, 0.11, 5), CL.q1.slope_quantity(scaling.COS): (-0.1, -0.2, 0.0, 5)}
    v = CL.q1.judge(ctx(values))
    assert v.outcome == V.Outcome.ANSWERED and len(v.checks) == 2 and not any(c.judged for c in v.checks)
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


@pytest.mark.parametrize("wall, expected, size", [((2365.0, 2000.0, 2700.0), R, "yes (1.2× the paper's)"),
                                                  ((150.0, 100.0, 200.0), R, "no (0.1× the paper's)"),
                                                  ((186.0, 3.0, 10629.0), I, "no (0.1× the paper's)"),
                                                  ((50.0, 20.0, 99.0), N, "no (0.0× the paper's)")])
def test_c6_is_judged_on_the_wall_time_interval_not_the_flops_count(wall, expected, size):
    """The FLOPs ratio (974,838×) would pass ≥ 100 whatever was measured; the wall-time ratio's CI decides."""
    v = CL.c6.judge(ctx({CL.c6.WALL: wall, CL.c6.FLOPS: (974838.0, math.nan, math.nan)}))
    assert (v.outcome, v.in_size) == (expected, size)
    assert "by construction" in v.measured and not v.checks[1].judged


def test_c6_ratio_is_a_geometric_mean_with_a_log_interval_that_stays_above_0():
    """Three seeds' ratios 100, 1,000, 10,000: geometric mean 1,000; log10 ratios 2, 3, 4 (sd 1): t(2) 4.30 × 1/√3."""
    co = pd.DataFrame([{"seed": s, "step after CPT": step, "wall_seconds": w}
                       for s, sft in enumerate((100.0, 1000.0, 10000.0)) for step, w in (("SFT", sft), ("add Θr", 1.0))])
    est = CL.c6.wall_ratio(co)
    h = 4.302652729911275 / math.sqrt(3)
    assert est.mean == pytest.approx(1000.0) and est.n_seeds == 3
    assert (est.lo, est.hi) == (pytest.approx(10 ** (3 - h)), pytest.approx(10 ** (3 + h))) and est.lo > 0


@pytest.mark.parametrize("other, own, expected", [(0.007, 0.35, R), (0.06, 0.35, P), (0.04, 0.08, N)])
def test_n1_other_family_residual_must_fail_to_transfer(other, own, expected):
    v = CL.n1.judge(ctx({CL.n1.OWN: (own, own - 0.05, own + 0.05, 1), CL.n1.OTHER: (other, 0.0, other + 0.01, 1)}))
    assert v.outcome == expected and v.note == "1 seed"


def test_n1_whose_other_family_misses_at_every_seed_is_not_testable():
    why = ["other_family: IF prompt-level strict 0.153, target <= 0.15"]
    v = CL.n1.judge(ctx({CL.n1.OWN: (0.35, 0.3, 0.4), CL.n1.OTHER: (0.0, 0.0, 0.01)},
                 left_out={"N1": {0: why, 1: why, 2: why}}, seeds=(0, 1, 2)))
    assert v.outcome == V.Outcome.NOT_TESTABLE and v.measured == why[0]


@pytest.mark.parametrize("drops, expected", [((0.28, 0.34), R), ((0.28, 0.30), P), ((0.30, 0.28), N)])
def test_n2_more_shift_more_forgetting(drops, expected):
    values = {CL.n2.shift_quantity(f"c{i}.jsonl", 1.0 + i): (d, d - 0.05, d + 0.05, 1) for i, d in enumerate(drops)}
    v = CL.n2.judge(ctx(values))
    assert v.outcome == expected and [c.met for c in v.checks] == [V.Met.SHOWN, V.met(expected == R)]
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


def test_a_claim_whose_every_seed_is_left_out_is_not_testable_and_names_why():
    v = CL.c1.judge(ctx({CL.c1.DROP: (0.2, 0.1, 0.3)}, left_out={"C1": {0: ["instruct_v1: IF prompt-level strict 0.500"]}},
                        seeds=(0,)))
    assert v.label == "not testable (model misses calibration)" and "instruct_v1: IF prompt-level strict 0.500" in v.measured


@pytest.mark.parametrize("est, bound, above, strict, expected", [
    ((0.1, 0.0, 0.2), 0.0, True, True, V.Met.INCONCLUSIVE),  # > 0 with lo exactly 0
    ((0.1, 0.0, 0.2), 0.0, True, False, V.Met.PASS),  # ≥ 0 with lo exactly 0
    ((-0.1, -0.2, 0.0), 0.0, True, True, V.Met.FAIL),  # > 0 with hi exactly 0: wholly at or below
    ((-0.1, -0.2, 0.0), 0.0, True, False, V.Met.INCONCLUSIVE),  # ≥ 0: hi exactly 0 is not below it
    ((0.05, 0.0, 0.05), 0.05, False, False, V.Met.PASS),  # ≤ 0.05 with hi exactly 0.05
    ((0.1, 0.05, 0.2), 0.05, False, False, V.Met.INCONCLUSIVE),
    ((0.1, 0.06, 0.2), 0.05, False, False, V.Met.FAIL),
    ((0.1, math.nan, math.nan), 0.0, True, True, V.Met.INCONCLUSIVE),  # no interval: nothing is judged on a mean
])
def test_a_bound_is_judged_on_the_interval(est, bound, above, strict, expected):
    from cptlib.study.stats import Estimate

    assert V.interval_met(Estimate(*est, 3, "t"), bound, above, strict) is expected


def test_misses_puts_a_per_seed_release_at_its_seed_and_a_shared_release_at_every_seed():
    calib = pd.DataFrame({"metric": ["IF prompt-level strict"] * 5,
                          "model": ["instruct_v1", "instruct_v1 (seed 1)", "instruct_v1 (seed 2)", "other_family",
                                    "base_v1 (tiny)"],
                          "value": [0.62, 0.61, 0.587, 0.153, 0.0], "target": [">= 0.60"] * 3 + ["<= 0.15", ">= 0.6"],
                          "met": [True, True, False, False, False]})
    m = V.misses(calib, (0, 1, 2))
    assert sorted(m) == [("instruct_v1", 2), ("other_family", 0), ("other_family", 1), ("other_family", 2)]
    assert m[("instruct_v1", 2)] == ["instruct_v1 (seed 2): IF prompt-level strict 0.587, target >= 0.60"]
    assert V.misses(calib.assign(met=None), (0, 1, 2)) == {}  # a real profile has no targets


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
    """Each marker's colour is CHECK_COLORS[check.met] of the verdict that uses it: C3's news kept is green although
    C3 is not reproduced (its IF half is missed), its news gained purple (inconclusive); C6's FLOPs count blue."""
    from cptlib.study.labels import SFT

    matplotlib.use("Agg")
    c = ctx({CL.c1.DROP: (0.218, 0.143, 0.297), CL.c3.IF: (-0.187, -0.253, -0.12), CL.c3.IF_NAIVE: (0.131, 0.081, 0.183),
             CL.c3.kept("era_b", SFT): (0.0, -0.03, 0.03), CL.c3.gained("era_b"): (0.041, -0.01, 0.09),
             CL.c6.WALL: (2365.0, 2000.0, 2700.0), CL.c6.FLOPS: (974838.0, math.nan, math.nan)})
    verdicts = CL.judge(c)
    rows = report.effect_rows(c.fx, verdicts)
    fig = report.claims_figure(rows)
    drawn = []
    for ax, scale in zip(fig.axes, ["Δ accuracy", "cost ratio"]):
        g = rows[rows.scale == scale].iloc[::-1]
        colours = [line.get_color() for line in ax.lines if line.get_marker() == "o"]
        drawn += list(zip(g.quantity, colours))
    expected = {c.quantity[1]: report.CHECK_COLORS[c.met] for v in verdicts for c in v.checks}
    assert dict(drawn) == expected
    assert expected[CL.c3.kept("era_b", SFT).text] == report.CHECK_COLORS[V.Met.PASS]
    assert expected[CL.c3.gained("era_b").text] == report.CHECK_COLORS[V.Met.INCONCLUSIVE]
    assert expected[CL.c6.FLOPS.text] == report.CHECK_COLORS[V.Met.SHOWN]
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
    for part in ["<h2>Claims</h2>", "C3 is <strong>not</strong> reproduced in <code>default</code>",
                 "<td>partly (1 seed)</td>", "<li><strong>C1</strong>: rule</li>", "<pre><code>libraries: {}\n</code></pre>"]:
        assert part in page
    # markdown-it-py renders the sentences: raw HTML in one is shown as text, never parsed
    assert "<p>IF &lt; 0.5 &amp; <em>rising</em></p>" in report._html([("p", "IF < 0.5 & *rising*")], {}, None)


def test_a_not_testable_claim_still_shows_its_numbers_unjudged():
    c = ctx({CL.c1.DROP: (0.2, 0.1, 0.3)}, left_out={"C1": {0: ["instruct_v1: IF prompt-level strict 0.500"]}},
            seeds=(0,))
    v = CL.judge(c)[0]
    assert v.outcome == V.Outcome.NOT_TESTABLE and [ch.met for ch in v.checks] == [V.Met.SHOWN]
    assert v.measured.startswith(f"{CL.c1.DROP.text} +0.200 [+0.100, +0.300] (3 seeds) — not judged: instruct_v1")


def test_a_seed_left_out_is_named_beside_the_numbers_of_the_claims_that_need_its_member_only():
    """Run 22's validity rule: the other seeds are judged, and the verdict says which seed was left out and why."""
    why = ["instruct_v1 (seed 2): IF prompt-level strict 0.587"]
    c = ctx({CL.c1.DROP: (0.2, 0.1, 0.3, 2), CL.c6.WALL: (2365.0, 2000.0, 2700.0),
             CL.c6.FLOPS: (974838.0, math.nan, math.nan)}, left_out={"C1": {2: why}}, seeds=(0, 1, 2))
    verdicts = {v.claim: v for v in CL.judge(c)}
    assert verdicts["C1"].outcome == V.Outcome.REPRODUCED
    assert verdicts["C1"].measured.endswith("— seed 2 left out (instruct_v1 (seed 2): IF prompt-level strict 0.587)")
    assert "seed 2" not in verdicts["C6"].measured


def test_with_no_valid_sizes_c5_and_q1_show_the_fit_over_every_size_beside_unjudged():
    from cptlib.study import scaling

    beside = {CL.c5.SLOPE.beside(): (0.19, 0.01, 0.37, 5),
              ("Q1", CL.q1.slope_quantity(scaling.DRIFT)[1] + E.BESIDE): (0.16, 0.13, 0.20, 5)}
    c5 = CL.c5.judge(ctx(beside))
    assert c5.outcome == V.Outcome.NOT_TESTABLE and "beside, over all 5 sizes: +0.190 [+0.010, +0.370]" in c5.measured
    assert [c.met for c in c5.checks] == [V.Met.SHOWN]
    q1 = CL.q1.judge(ctx(beside))
    assert q1.outcome == V.Outcome.NOT_TESTABLE and "over all 5 sizes" in q1.measured and len(q1.checks) == 2
