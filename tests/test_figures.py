"""The figure defects of issue 48, each on hand-made data: what a figure draws is checked on its matplotlib objects
(frames, colours, markers, legends, titles), so a figure that draws the old way fails here."""
from __future__ import annotations

import math

import matplotlib
import matplotlib.legend
import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Rectangle

from cptlib.study import figures, plots, report, scaling
from cptlib.study.drift import reading
from cptlib.study.labels import CPT_B, CPT_I, REST, SFT
from cptlib.members import Member

matplotlib.use("Agg")


def _effect(claim, quantity, mean, lo, hi, scale, met="meets its rule"):
    return {"claim": claim, "quantity": quantity, "mean": mean, "lo": lo, "hi": hi, "n_seeds": 3,
            "ci": "t over seeds + items (crossed)", "scale": scale, "rule": "r", "met": met,
            "verdict": "reproduced", "paper_lo": math.nan, "paper_hi": math.nan}


def test_an_interval_past_the_effects_figures_log_axis_ends_in_an_arrow_at_the_edge_with_its_value():
    """C6's wall-time ratio, 3,567 [0, 11,865]: 0 is off a log axis, whose whisker ran off it; it now stops at the
    axis' left edge in an arrowhead, its end written beside, and the legend says what the arrow means. An interval
    inside its axis keeps a cap at each end and no arrow."""
    rows = pd.DataFrame([_effect("C1", "ΔIF", 0.097, 0.021, 0.172, "Δ accuracy"),
                         _effect("C6", "wall time SFT / add Θr", 3567.0, 0.0, 11865.0, "cost ratio")])
    fig = report.claims_figure(rows)
    acc, cost = fig.axes
    left = cost.get_xlim()[0]
    arrows = [line for line in cost.lines if line.get_marker() == "<"]
    assert len(arrows) == 1 and arrows[0].get_xdata()[0] == left and getattr(arrows[0], "clipped", False)
    assert any(t.get_text() == "CI to 0 (clipped)" for t in cost.texts)
    whisker = [line for line in cost.lines if line.get_marker() == "None" and len(line.get_xdata()) == 2][0]
    assert min(whisker.get_xdata()) == left  # drawn to the edge, not beyond it
    assert [line.get_marker() for line in cost.lines].count("|") == 1  # the right end's cap only
    assert not [line for line in acc.lines if line.get_marker() in "<>"]
    assert [line.get_marker() for line in acc.lines].count("|") == 2
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert any(label.startswith("interval past the axis") for label in labels)


def _n4(ifs: dict[tuple[float, int], float]) -> pd.DataFrame:
    rows = [{"model": REST, "lr": lr, "tokens": tok, "IF": v, "era_b": 0.3, "drift_ratio": lr * tok}
            for (lr, tok), v in ifs.items()]
    rows += [{"model": CPT_I, "lr": lr, "tokens": 2000, "IF": 0.4, "era_b": 0.3, "drift_ratio": math.nan}
             for lr in {lr for lr, _ in ifs}]
    return pd.DataFrame(rows)


def test_the_n4_map_frames_in_red_the_cells_that_miss_the_criterion_and_only_those():
    """instruct IF 0.60 -> the bound is 0.48: of the four cells, the two below it (0.40, 0.30) are framed in red; the
    two that keep IF (0.55, 0.50) are not framed at all (they were framed in red before, the colour of a miss)."""
    n4 = _n4({(1e-4, 1000): 0.55, (1e-4, 2000): 0.50, (1e-3, 1000): 0.40, (1e-3, 2000): 0.30})
    fig, _ = figures.n4_map(n4, 0.60, ["IF", "era_b"], {"IF": "IF", "era_b": "era-B"})
    heat = fig.axes[0]
    frames = [p for p in heat.patches if isinstance(p, Rectangle) and not p.get_fill()]
    assert all(matplotlib.colors.to_hex(p.get_edgecolor()) == plots.MISS_FRAME for p in frames)
    # Row 0 is the larger learning rate (lr up); a cell (i, j) spans x [j, j+1], y [i, i+1].
    assert sorted(p.get_xy() for p in frames) == [(0, 0), (1, 0)]
    assert "red frame: below 0.8 × IF(instruct_v1) = 0.480" in heat.get_title()


def _curves() -> pd.DataFrame:
    rows = []
    for lr in (1e-4, 1e-3):
        for k, tok in enumerate((1000, 2000, 4000)):
            drift = lr * tok
            for curve, value in (("C1 ΔIF", 0.1), ("C3 ΔIF", -0.02), ("C3 news kept", 0.0),
                                 (f"era-B via chat: {CPT_I}", 0.03), (f"era-B via chat: {REST}", 0.04)):
                rows.append({"curve": curve, "quantity": curve, "lr": lr, "tokens": tok, "drift_ratio": drift,
                             "drift_lo": drift * 0.9, "drift_hi": drift * 1.1, "value": value,
                             "lo": value - 0.05, "hi": value + 0.05, "n_seeds": 3, "ci": "t"})
        rows.append({**rows[-1], "curve": f"era-B via chat: {SFT}", "quantity": "sft"})
    return pd.DataFrame(rows)


def test_the_drift_curves_give_learning_rates_colours_no_recipe_has_and_each_legend_one_meaning():
    """lr 0.001 was drawn in CPT(base_v1)+Θr's pink under one shared legend: the learning rates now take blues that
    no model role uses, the legend below lists the learning rates alone, and the chat panel has its own legend of
    the recipes (colour) and learning rates (marker)."""
    fig, _ = figures.drift_curves(_curves())
    roles = {matplotlib.colors.to_hex(c) for c in plots.COLORS.values()}
    lr_lines = [line for ax in fig.axes[:3] for line in ax.lines if line.get_marker() not in ("None", "", None)]
    assert lr_lines and not {matplotlib.colors.to_hex(line.get_color()) for line in lr_lines} & roles
    below = [t.get_text() for t in fig.legends[0].get_texts()]
    assert below == ["CPT lr 0.0001", "CPT lr 0.001"]
    chat = fig.axes[3]
    legends = [a for a in chat.artists if isinstance(a, matplotlib.legend.Legend)] + [chat.get_legend()]
    inside = [[t.get_text() for t in legend.get_texts()] for legend in legends]
    assert inside == [[CPT_I, SFT, REST], ["lr 0.0001", "lr 0.001"]]  # recipes in drift.CURVES' order, then rates


def test_the_drift_reading_names_every_budget_so_an_interval_that_returns_to_zero_is_not_read_as_from_there_on():
    """C1's interval lies above 0 at 2,000 tokens but not at 4,000: the reading names both (it said "from 2,000")."""
    curves = _curves()
    c1 = (curves.curve == "C1 ΔIF") & (curves.lr == 1e-3)
    curves.loc[c1, "lo"] = [-0.01, 0.02, -0.03]
    line = next(x for x in reading(curves) if x.startswith("lr 0.001"))
    assert "C1's ΔIF interval lies above 0 at 1 of 3 budgets, 2,000 tokens (drift 2.00; +0.100 [+0.020, +0.150]); " \
           "not at 1,000 and 4,000 tokens." in line


def _ladder(valid: set[str]):
    sizes = {"tiny": 2.4e5, "mini": 5.6e5, "small": 1.1e6, "medium": 2.3e6}
    per_size = pd.DataFrame([{"size": s, "n_params": n, "quantity": "recovery", "mean": 0.8 + 0.05 * i,
                              "lo": 0.7 + 0.05 * i, "hi": 0.9 + 0.05 * i, "per_seed": "0.8 0.85 0.9"}
                             for i, (s, n) in enumerate(sizes.items())])
    invalid = {s: ["misses"] for s in sizes if s not in valid}
    return per_size, scaling.trends(per_size, valid), invalid


@pytest.mark.parametrize("valid, extrapolated", [({"small"}, False), ({"tiny", "mini", "small"}, True)])
def test_the_sizes_figure_draws_an_extrapolation_exactly_when_its_caption_says_so(valid, extrapolated):
    """One valid size: no fit on valid sizes, so no dashed line, no paper-size marks, an axis that ends at the ladder,
    and a caption and title that say nothing is extrapolated (the committed caption promised dashed extrapolations
    the figure did not draw). Three valid sizes: the dashed line and the prediction intervals at the paper's sizes."""
    per_size, fits, invalid = _ladder(valid)
    fig, _ = figures.sizes(per_size, fits, invalid)
    ax = fig.axes[0]
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    squares = [line for line in ax.lines if line.get_marker() == "s"]
    caption = figures.sizes_caption(fits)
    assert bool(dashed) == bool(squares) == extrapolated
    assert (ax.get_xlim()[1] > max(scaling.PAPER_SIZES.values())) == extrapolated
    assert ("nothing is extrapolated" in caption) == (not extrapolated)
    assert ("dashed, its extrapolation" in caption) == extrapolated
    assert ("nothing extrapolated" in fig.get_suptitle()) == (not extrapolated)


def test_the_recipes_figure_says_its_bars_are_each_recipes_own_interval_not_the_paired_differences():
    summary = pd.DataFrame([{"recipe": r, "IF": 0.5, "IF_lo": 0.4, "IF_hi": 0.6, "n_seeds": 3}
                            for r in (Member.INSTRUCT_V1, CPT_B, REST)])
    fig, _ = figures.recipes(summary, ["IF"], {"IF": "IF"}, 16384)
    title = fig.axes[0].get_title()
    assert "its own 95% CI" in title and "not the paired differences" in title and "effects.png" in title


def test_a_metric_read_from_the_testbeds_own_text_says_so_on_a_real_profile():
    """SmolLM2's bpb_a is the testbed's held-out era-A text (testbed_ppl_a): fictional text of the same invented world
    as the CPT news. Its label said "old-text bits per byte", which read as the model's own old text."""
    from cptlib import config
    from cptlib.study import restored

    labels = restored.labels(config.load_profile("smollm2_135m"))
    assert labels["bpb_a"].startswith("bits per byte on the testbed's own fictional era-A text")
    assert "old-text" not in " ".join(labels.values())
    assert np.all([isinstance(v, str) for v in labels.values()])
