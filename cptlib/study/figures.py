"""The study's figures, one function each, returning (Figure, the data it plots); notebooks call them and show `fig`.

    fig, data = forgetting(curve, PANELS, LABELS)
    plots.save_figure(fig, "forgetting", data, cfg, caption)   # PNG/PDF/CSV/JSON; the notebook cell returns `fig`

A number from fewer seeds is never joined into a line with more-seed points: the milestone curves are the mean over
the seeds with every milestone (experiments.part_seeds), the final budget over every seed a separate marker beside
them.
The claims figure lives with the verdicts it draws (cptlib.study.report.claims_figure).
"""
from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd
import seaborn as sns

from cptlib.study import plots, stats
from cptlib.study.criteria import EFFECT, KEEP
from cptlib.study.labels import CPT_B, CPT_I, REST, SFT
from cptlib.study.n4 import cells, n4_threshold
from cptlib.members import Member


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


# What the forgetting figure tests (its caption after plots.caption_for's scope).
FORGETTING_CAPTION = "C1 (CPT of an instruct model forgets IF), C2 (base abilities kept), Q2 (horizon)"

def forgetting(curve: pd.DataFrame, panels: list[str], labels: dict[str, str]):
    """Metric vs new CPT tokens (log x): one line per model over its milestones, the mean over the seeds that have
    every milestone (experiments.part_seeds), with the models before CPT over the same seeds as dashed references and
    their CI band; the final budget's mean over every seed as a separate diamond where there are more seeds.
    Without a news accuracy, held-out bits per byte show the news being learned (bpb_b) and other text kept (bpb_a).
    Returns the figure and the table it draws (forgetting.csv; forgetting_from_table draws the same from it)."""
    bpb = [m for m in ("bpb_b", "bpb_a") if curve[m].notna().any()] if "era_b" not in panels else []
    shown = panels + bpb
    final = curve.tokens.max()
    middle = curve[(curve.tokens > 0) & (curve.tokens < final)]
    along = sorted(middle.seed.unique()) if len(middle) else [curve.seed.min()]
    mine = curve[curve.seed.isin(along)]
    lines = stats.summarize(mine[mine.tokens > 0], ["model", "tokens"], shown)
    every = stats.summarize(curve[curve.tokens == final], ["model", "tokens"], shown)
    refs = stats.summarize(mine[mine.tokens == 0], ["model"], shown)
    # Where every seed has every milestone, the final budget's mean over every seed is the lines' last point.
    more = curve.seed.nunique() > len(along)
    data = pd.concat([lines.assign(seeds="along")] + ([every.assign(seeds="every")] if more else [])
                     + [refs.assign(tokens=0, seeds="along")])
    return forgetting_from_table(data, panels, labels), data


@plots.styled
def forgetting_from_table(data: pd.DataFrame, panels: list[str], labels: dict[str, str]):
    """The forgetting figure from its table (forgetting.csv): the lines, over the seeds with every milestone
    ("along"; "first" in tables written before issue 48), the final budget over every seed ("every", tokens > 0)
    and the models before CPT (tokens 0), over the lines' seeds."""
    bpb = [m for m in ("bpb_b", "bpb_a") if m in data and data[m].notna().any()] if "era_b" not in panels else []
    shown = panels + bpb
    first = data[data.seeds.isin(["along", "first"]) & (data.tokens > 0)]
    every = data[(data.seeds == "every") & (data.tokens > 0)]
    refs = data[data.tokens == 0]
    n_lines = int(first.n_seeds.max()) if len(first) else 1
    n_final = int(every.n_seeds.max()) if len(every) else n_lines
    fig, axes = plots.new_figure(len(shown), width=3.3 * max(len(shown), 2), height=3.8)
    for ax, m in zip(np.atleast_1d(axes), shown):
        for model, g in first.groupby("model", sort=False):
            ax.errorbar(g.tokens, g[m], yerr=stats.yerr(g, m), marker="o", label=f"{model} ({_seeds(n_lines)})",
                        color=plots.COLORS[model])
        if len(every):
            for model, g in every.groupby("model", sort=False):
                ax.errorbar(g.tokens * 1.12, g[m], yerr=stats.yerr(g, m), marker="D", ls="", mfc="white",
                            color=plots.COLORS[model], label=f"{model}, final budget ({_seeds(int(g.n_seeds.iloc[0]))})")
        for _, r in refs.iterrows():
            ax.axhline(r[m], ls="--", lw=1, color=plots.COLORS[r.model], label=f"{r.model} (before CPT; band: 95% CI)")
            if r[f"{m}_lo"] == r[f"{m}_lo"]:
                ax.axhspan(r[f"{m}_lo"], r[f"{m}_hi"], color=plots.COLORS[r.model], alpha=0.12, lw=0)
        plots.log_axis(ax, ticks=first.tokens)
        if m in bpb:
            ax.set_ylabel("bits per byte (lower: better predicted)")
        else:
            plots.fraction_axis(ax)
        ax.set_title("\n".join(textwrap.wrap(labels[m], 45)), fontsize=9)
    plots.legend_below(fig, np.atleast_1d(axes)[0], ncol=4)
    fig.suptitle("Forgetting during CPT — mean and 95% CI (t over seeds + items): lines and dashed references over "
                 f"{_seeds(n_lines)}" + (f", diamonds the final budget over {_seeds(n_final)}" if len(every) else ""))
    return fig


# What the n4_map figure tests (its caption after plots.caption_for's scope).
N4_CAPTION = "N4 (when the residual works: budget × learning rate × drift)"

@plots.styled
def n4_map(n4: pd.DataFrame, instruct_if: float, panels: list[str], labels: dict[str, str]):
    """N4: heatmaps of the restored model's IF (framed in red: misses N4's criterion) and news accuracy over CPT
    budget × learning rate, and restored IF against the drift ratio with N4's threshold and fitted line: each cell's
    mean over the map's seeds (`instruct_if`: instruct_v1's over the same seeds)."""
    per_seed, n4 = n4, cells(n4)
    rest = n4[n4.model == REST]
    n_seeds = per_seed.seed.nunique() if "seed" in per_seed else 1
    maps = [m for m in ("IF", "era_b") if m in panels]  # a real profile without a news metric: IF only
    t = n4_threshold(n4, instruct_if)
    fig, axes = plots.new_figure(len(maps) + 1, width=5.2 * (len(maps) + 1), height=4.6)
    for ax, m in zip(axes[:-1], maps):
        grid = rest.pivot_table(index="lr", columns="tokens", values=m).sort_index(ascending=False)  # lr up
        grid.index = [f"{lr:g}" for lr in grid.index]
        grid.columns = [plots.compact(x) for x in grid.columns]
        sns.heatmap(grid, ax=ax, vmin=0, vmax=1, cmap="viridis", annot=True, fmt=".3f", annot_kws={"fontsize": 8},
                    cbar=False)
        ax.tick_params(axis="x", rotation=0); ax.tick_params(axis="y", rotation=0)
        ax.set_xlabel("CPT budget (tokens)"); ax.set_ylabel("CPT learning rate"); ax.grid(False)
        ax.set_title(f"restored: {labels[m]}" + (f"\n(red frame: below {KEEP:g} × IF(instruct_v1) = {t['bound']:.3f}, "
                                                 "missing N4's criterion)" if m == "IF" else ""), fontsize=9)
        if m == "IF":
            plots.outline_cells(ax, grid.values < t["bound"])  # NaN (a cell not run) is never framed
    fig.colorbar(axes[0].collections[0], ax=axes[:-1], label="accuracy (fraction)", shrink=0.8)
    ax = axes[-1]
    palette = lr_colors(rest.lr.unique())
    for lr, g in rest.groupby("lr"):
        ax.plot(g.drift_ratio, g.IF, marker="o", color=palette[lr], label=f"{REST}, lr {lr:g}")
    for _, r in n4[n4.model == CPT_I].iterrows():
        ax.axhline(r.IF, ls=":", lw=1.2, color=palette[r.lr], label=f"{CPT_I}, lr {r.lr:g}, {plots.compact(r.tokens)} tokens")
    ax.axhline(t["bound"], color="k", lw=1, ls="--", label=f"N4 criterion: {KEEP:g} × IF(instruct_v1) = {t['bound']:.3f}")
    if t["threshold"] == t["threshold"]:
        ax.axvline(t["threshold"], color="k", lw=1.5, label=f"N4 threshold: every cell below drift {t['threshold']:.3f} keeps it")
    if t["slope"] == t["slope"]:
        xs = np.geomspace(rest.drift_ratio.min(), rest.drift_ratio.max(), 50)
        crosses = f"crosses the criterion at {t['crossing']:.2f}" if t["crossing"] == t["crossing"] else "never falls to it"
        ax.plot(xs, instruct_if * (t["intercept"] + t["slope"] * np.log10(xs)), color="#444444", lw=1, ls=(0, (4, 2)),
                label=f"least-squares line of IF on log drift ({crosses})")
    ax.axvline(0.5, color="#999999", lw=1, ls="-.", label="the testbed's calibration target, drift ratio ≤ 0.5")
    plots.log_axis(ax, "drift ratio ‖θ_cpt − θ_base‖ / ‖Θr‖ (log scale)")
    plots.fraction_axis(ax, labels["IF"])
    ax.set_title(f"restored IF vs drift ratio (each cell: the mean over {n_seeds} seed{'s' if n_seeds > 1 else ''})",
                 fontsize=9)
    plots.legend_below(fig, ax, ncol=2)
    return fig, per_seed


LR_MARKERS = ("o", "s", "^", "D", "v", "P")
# What the drift figure tests (its caption after plots.caption_for's scope; notebook 08 and cptlib.study.redraw).
DRIFT_CAPTION = "C1 and C3 over the drift (issue 30, step 5): every N4 cell over every seed"


def drift_caption(curves: pd.DataFrame) -> str:
    """The drift figure's caption: what its panels hold (a run before C2's curve and the regime's verdicts, which
    come together: C1 and C3 alone)."""
    if "C2 Δ era-A" not in set(curves.curve):
        return DRIFT_CAPTION
    return ("C1, C2 and C3 over the drift (issue 30, step 5; issue 48): every N4 cell over every seed, and each claim "
            "judged at every cell inside the regime (calibration log run 22 §5)")


def lr_colors(lrs) -> dict[float, tuple]:
    """One colour per CPT learning rate, light to dark blue in the rates' order: a scale of blues that no model role
    uses (plots.COLORS), so a learning rate never shares its colour with a recipe in the same figure."""
    from matplotlib import colormaps

    lrs = sorted(set(lrs))
    shades = np.linspace(0.4, 1.0, len(lrs)) if len(lrs) > 1 else [0.8]
    return {lr: colormaps["Blues"](x) for lr, x in zip(lrs, shades)}


@plots.styled
def drift_curves(curves: pd.DataFrame, per_cell: pd.DataFrame | None = None):
    """Issue 30's claims over the drift (notebook 08): C1 ΔIF, C2's era-A drop (where the table has it), C3 ΔIF and
    C3's news kept per learning rate (a colour and a marker per rate, one legend below), and era-B via chat of the
    three recipes (a colour per recipe, the rate's marker; its own legend in the panel), against each cell's drift
    ratio of CPT(base_v1). Each point: the mean over seeds (y: crossed seeds + items 95% CI; x: t over seeds), a line
    joining one learning rate's budgets. With `per_cell` (cptlib.study.drift.regime) a last panel shows each claim's
    outcome at every cell inside the regime."""
    from matplotlib.lines import Line2D

    from cptlib.study.drift import CURVES  # here: cptlib.study.drift imports the family's training code

    lrs = sorted(curves.lr.unique())
    color, marker = lr_colors(lrs), dict(zip(lrs, LR_MARKERS))
    deltas = [c for c in CURVES if c[3] is not None and c[0] in set(curves.curve)]
    chats = [c for c in CURVES if c[3] is None and c[0] in set(curves.curve)]
    n = len(deltas) + 1 + (per_cell is not None)
    fig, axes = plots.new_figure(2, width=11.5, height=4.2 * math.ceil(n / 2), nrows=math.ceil(n / 2))
    for ax in axes[n:]:
        ax.set_visible(False)

    def draw(ax, g, **style):
        g = g.sort_values("drift_ratio")
        ax.errorbar(g.drift_ratio, g.value, yerr=np.vstack([g.value - g.lo, g.hi - g.value]),
                    xerr=np.nan_to_num(np.vstack([g.drift_ratio - g.drift_lo, g.drift_hi - g.drift_ratio])),
                    capsize=2, elinewidth=0.8, ms=5, **style)

    for ax, (name, what, *_rest) in zip(axes, deltas):
        for lr, g in curves[curves.curve == name].groupby("lr"):
            draw(ax, g, color=color[lr], marker=marker[lr], label=f"CPT lr {lr:g}")
        ax.axhline(0, color="k", lw=0.8)
        for level in (EFFECT, -EFFECT):
            ax.axhline(level, color="#999999", lw=0.8, ls=":")
        ax.set_ylabel(what, fontsize=8)
        ax.set_title(f"{name} (dotted: ±{EFFECT:g}, the smallest effect the verdicts count)", fontsize=9)
    ax = axes[len(deltas)]
    for name, what, model, _b, _m in chats:
        for lr, g in curves[curves.curve == name].groupby("lr"):
            draw(ax, g, color=plots.COLORS[model], marker=marker[lr], ls="-" if model != SFT else "",
                 mfc="white" if model == SFT else None)
    plots.fraction_axis(ax, "era-B via chat (answer and format)")
    ax.set_title("era-B via chat of the three recipes (hollow: CPT(base_v1)+SFT, each lr's final budget)", fontsize=9)
    recipes = [Line2D([], [], color=plots.COLORS[model], marker="o", ls="-" if model != SFT else "",
                      mfc="white" if model == SFT else None, label=model) for _n, _w, model, _b, _m in chats]
    rates = [Line2D([], [], color="#777777", marker=marker[lr], ls="", label=f"lr {lr:g}") for lr in lrs]
    kinds = ax.legend(handles=recipes, loc="upper left", fontsize=7, frameon=False, title="colour: recipe",
                      title_fontsize=7)
    ax.add_artist(kinds)  # a second legend replaces the first unless the first is kept as an artist
    ax.legend(handles=rates, loc="upper center", fontsize=7, frameon=False, title="marker: CPT learning rate",
              title_fontsize=7)
    for ax in axes[:len(deltas) + 1]:
        ax.axvline(0.5, color="#999999", lw=1, ls="-.")
        plots.log_axis(ax, "drift ratio ‖θ_cpt − θ_base‖ / ‖Θr‖ of CPT(base_v1) (log scale)")
    if per_cell is not None:
        regime_panel(axes[len(deltas) + 1], per_cell)
    seeds = int(curves.n_seeds.max())
    fig.suptitle(f"The claims over the drift, every N4 cell over {_seeds(seeds)} (mean; 95% CI: y crossed seeds + "
                 "items, x t over seeds); dash-dot: the regime's drift ratio 0.5", fontsize=10)
    plots.legend_below(fig, axes[0], ncol=len(lrs))  # the learning rates of the curves' panels
    return fig, curves


# A claim's outcome at a cell (the regime panel): the colours of the checks' pass / fail / inconclusive, a lighter
# green for partly and grey where nothing could be judged.
OUTCOME_COLORS = {"reproduced": "#1b9e77", "partly": "#a6d8c4", "inconclusive": "#7570b3",
                  "not reproduced": "#d95f02", "not testable": "#bbbbbb"}


def regime_panel(ax, per_cell: pd.DataFrame) -> None:
    """Each claim (rows) at every cell inside the regime (columns, in order of drift), coloured by its outcome."""
    from matplotlib.patches import Patch, Rectangle

    ax.set_title("Each claim at every cell inside the regime (drift ratio's upper end ≤ 0.5)", fontsize=9)
    if per_cell.empty:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no cell of the grid lies inside the regime:\nno claim is judged across it",
                ha="center", va="center", transform=ax.transAxes, fontsize=9)
        return
    cells = per_cell.drop_duplicates(["lr", "tokens"]).sort_values("drift_ratio")
    claims = list(dict.fromkeys(per_cell.claim))
    col = {(r.lr, r.tokens): j for j, r in enumerate(cells.itertuples())}
    for r in per_cell.itertuples():
        i, j = claims.index(r.claim), col[(r.lr, r.tokens)]
        ax.add_patch(Rectangle((j, i), 1, 1, facecolor=OUTCOME_COLORS.get(r.outcome, "#ffffff"), edgecolor="white"))
    ax.grid(False)
    ax.set_xlim(0, len(cells))
    ax.set_ylim(len(claims), 0)
    ax.set_yticks([i + 0.5 for i in range(len(claims))], claims)
    ax.set_xticks([j + 0.5 for j in range(len(cells))],
                  [f"{r.lr:g}\n{plots.compact(r.tokens)}\n{r.drift_ratio:.2f}" for r in cells.itertuples()], fontsize=6)
    ax.set_xlabel("cell inside the regime: CPT lr, tokens, drift ratio (in order of drift)", fontsize=8)
    shown = [o for o in OUTCOME_COLORS if o in set(per_cell.outcome)]
    ax.legend(handles=[Patch(color=OUTCOME_COLORS[o], label=o) for o in shown], loc="upper center",
              bbox_to_anchor=(0.5, -0.22), ncol=len(shown), fontsize=7, frameon=False)


@plots.styled
def sizes(per_size: pd.DataFrame, fits: pd.DataFrame, invalid: dict[str, list[str]]):
    """Q1 / C5: every size-ladder quantity against parameters (log axis). Dots: each seed's value; circles: the
    size's mean with its 95% interval (hollow: the size misses its calibration and is left out of the fit); line: OLS
    over the valid sizes with its 95% confidence band, continued dashed to the paper's sizes (dotted verticals), where
    the grey bars are 95% prediction intervals — an extrapolation, not a result. Where fewer than 2 sizes are valid
    there is no such line: nothing is extrapolated, the axis ends at the ladder, and the title says so
    (sizes_caption says the same in words)."""
    from cptlib.study.scaling import PAPER_SIZES, predict

    quantities = list(dict.fromkeys(per_size.quantity))
    ncols = 4
    nrows = -(-len(quantities) // ncols)
    fig, axes = plots.new_figure(ncols, width=15, height=3.1 * nrows, nrows=nrows)
    color = plots.COLORS[REST]
    extrapolated = _extrapolated(fits)
    top = math.log10(max(PAPER_SIZES.values()) * 2) if extrapolated else math.log10(per_size.n_params.max()) + 0.3
    for ax, q in zip(axes, quantities):
        g = per_size[per_size.quantity == q]
        valid = ~g["size"].isin(list(invalid))
        seeds = [(n, float(v)) for n, vals in zip(g.n_params, g.per_seed) for v in str(vals).split()]
        ax.plot([n for n, _ in seeds], [v for _, v in seeds], ".", color="#999999", ms=3, label="a seed's value")
        for ok in (True, False):
            h = g[valid == ok]
            if len(h):
                ax.errorbar(h.n_params, h["mean"], yerr=np.nan_to_num([h["mean"] - h.lo, h.hi - h["mean"]]), fmt="o",
                            color=color, mfc=color if ok else "white",
                            label="size mean, 95% CI" if ok else "misses calibration (not fitted)")
        every = fits[(fits.quantity == q) & (fits.fit_on == "all sizes")]
        if len(every) and (~valid).any():  # beside the primary fit: the line through every size, invalid ones too
            inside = np.linspace(np.log10(g.n_params.min()), np.log10(g.n_params.max()), 50)
            ax.plot(10 ** inside, predict(every.iloc[0].to_dict(), inside, prediction=False)[0], color="#777777",
                    lw=0.8, ls="-.", label="OLS on all sizes (beside)")
        f = fits[(fits.quantity == q) & (fits.fit_on == "valid sizes")]
        values = [v for v in [*(v for _, v in seeds), *g["mean"], *g.lo, *g.hi] if math.isfinite(v)] or [0.0]
        low, high = min(values), max(values)
        pad = 0.35 * (high - low or abs(high) or 1.0)
        title = textwrap.fill(q, 44)
        if len(f):
            f = f.iloc[0].to_dict()
            inside = np.linspace(np.log10(g.n_params.min()), np.log10(g.n_params.max()), 50)
            y, lo, hi = predict(f, inside, prediction=False)
            ax.plot(10 ** inside, y, color=color, lw=1.2, label="OLS on valid size means")
            ax.fill_between(10 ** inside, lo, hi, color=color, alpha=0.15, lw=0, label="95% confidence band")
            beyond = np.linspace(inside[-1], top, 50)
            ax.plot(10 ** beyond, predict(f, beyond, prediction=False)[0], color=color, lw=1, ls="--")
            for n in PAPER_SIZES.values():
                y0, lo0, hi0 = (float(v) for v in predict(f, math.log10(n), prediction=True))
                if lo0 == lo0:
                    ax.errorbar([n], [y0], yerr=[[y0 - lo0], [hi0 - y0]], fmt="s", color="#777777", ms=3, capsize=2,
                                label="extrapolation, 95% prediction interval")
            slope = "" if f["slope_lo"] != f["slope_lo"] else f" [{f['slope_lo']:+.3f}, {f['slope_hi']:+.3f}]"
            title += f"\nslope {f['slope']:+.3f}{slope} per decade ({int(f['k'])} sizes)"
        for label, n in PAPER_SIZES.items() if extrapolated else ():
            ax.axvline(n, color="#bbbbbb", lw=0.8, ls=":")
            ax.annotate(label, (n, 0.01), xycoords=("data", "axes fraction"), fontsize=6, ha="right", va="bottom",
                        rotation=90, color="#777777")
        ax.set_xscale("log")
        ax.set_xlim(10 ** (np.log10(g.n_params.min()) - 0.3), 10 ** top)
        if not extrapolated:  # a span of ~1 decade: the ladder's sizes as ticks, not crowded minor labels
            plots.log_axis(ax, "parameters (log scale)", ticks=g.n_params)
        ax.set_ylim(low - pad, high + pad)
        ax.set_title(title, fontsize=7.5)
        ax.set_xlabel("parameters (log scale)", fontsize=7)
    for ax in axes[len(quantities):]:
        ax.set_axis_off()
    handles, labels = axes[0].get_legend_handles_labels()
    keep = dict(zip(labels, handles))
    for ax in axes[1:len(quantities)]:  # a legend entry drawn in any panel (e.g. the hollow marker)
        for h, lab in zip(*ax.get_legend_handles_labels()):
            keep.setdefault(lab, h)
    plots.legend_below(fig, handles=list(keep.values()), labels=list(keep), ncol=4)
    fig.suptitle("Model size: the regime's quantities at the default CPT (95% CI over seeds × items per size; "
                 + ("the paper's sizes are extrapolations)" if extrapolated else
                    "fewer than 2 sizes meet their calibration: no fit on valid sizes, nothing extrapolated)"),
                 fontsize=10)
    return fig, per_size.merge(fits[fits.fit_on == "valid sizes"], on="quantity", how="left", suffixes=("", "_fit"))


def _extrapolated(fits: pd.DataFrame) -> bool:
    """Whether the sizes figure draws an extrapolation: some quantity has an OLS fit on the valid sizes."""
    return bool((fits.fit_on == "valid sizes").any())


def sizes_caption(fits: pd.DataFrame) -> str:
    """What the sizes figure tests and draws, in words: the fit on valid sizes and its dashed extrapolation with
    prediction intervals where there is one, else that nothing is fitted or extrapolated (the all-sizes line beside
    is shown, unjudged; its values at the paper's sizes are in scaling.csv)."""
    head = ("Q1 and C5 (smaller models benefit less): every quantity against parameters, 95% CI per size over seeds × "
            "items")
    if _extrapolated(fits):
        return (f"{head}, the OLS line over the valid sizes with its confidence band, and dashed, its extrapolation to "
                "the paper's sizes with 95% prediction intervals where 3 or more sizes are valid (not a result: four "
                "orders of magnitude beyond the data; the intervals that leave the axes are in scaling.csv)")
    return (f"{head}; fewer than 2 sizes meet their calibration, so there is no fit on valid sizes and nothing is "
            "extrapolated to the paper's sizes; the dash-dot line is the OLS over every size, shown beside, unjudged "
            "(its slopes and its values at the paper's sizes, with prediction intervals, are in scaling.csv)")


# What the recipes figure tests (its caption after plots.caption_for's scope).
RECIPES_CAPTION = "C3 (restored ≈ instruct while keeping the news)"

@plots.styled
def recipes(summary: pd.DataFrame, panels: list[str], labels: dict[str, str], tokens: int):
    """C3: grouped bars of every recipe's metrics at the final budget, mean and 95% CI, seeds in the legend. Each
    error bar is that recipe's own interval; the verdicts compare two recipes by their difference paired by seed and
    item, a narrower interval than two bars suggest: the title says so and points to the effects figure, which draws
    those differences (this figure's CSV, recipes.csv, is the bars' table)."""
    fig, ax = plots.new_figure(width=9, height=4.0)
    width = 0.8 / len(summary)
    for i, r in enumerate(summary.itertuples()):
        xs = np.arange(len(panels)) + (i - (len(summary) - 1) / 2) * width
        row = summary.iloc[[i]]
        ax.bar(xs, [getattr(r, m) for m in panels], width, yerr=np.hstack([stats.yerr(row, m) for m in panels]),
               label=f"{r.recipe} ({_seeds(r.n_seeds)})", color=plots.COLORS.get(r.recipe))
    ax.set_xticks(range(len(panels)), [labels[m].replace(" (", "\n(") for m in panels], fontsize=7)
    ax.set_ylabel("accuracy (fraction)"); ax.set_ylim(0, 1.05)
    ax.set_title(f"Recipes after {tokens:,} CPT tokens — each recipe's mean and its own 95% CI (t over seeds + items)"
                 "\nnot the paired differences (same seeds and items) the verdicts judge: those, with their narrower "
                 "intervals, are in effects.png", fontsize=9)
    plots.legend_below(fig, ax, ncol=3)
    return fig, summary


# What the costs figure tests (its caption after plots.caption_for's scope).
COSTS_CAPTION = "C6 (~2000x fewer FLOPs for the residual than SFT)"

@plots.styled
def costs(cost: pd.DataFrame, n_seeds: int):
    """C6: FLOPs and wall time of each recipe's step after CPT (log scale), mean over seeds; a recipe with no step
    after CPT (0 FLOPs) has no bar. Returns the figure and the whole table (costs.csv)."""
    shown = cost[cost.flops > 0]
    fig, axes = plots.new_figure(2, width=8, height=3.2)
    for ax, col, label in zip(axes, ["flops", "wall_seconds"], ["FLOPs after CPT (log scale)", "wall time after CPT (s, log scale)"]):
        bars = ax.bar(shown.recipe, shown[col], color=[plots.COLORS[r] for r in shown.recipe])
        ax.bar_label(bars, labels=[plots.compact(v) if col == "flops" else f"{v:.3g} s" for v in shown[col]], fontsize=7)
        plots.log_axis(ax, label, axis="y"); ax.tick_params(axis="x", labelsize=7); ax.margins(y=0.2)
    fig.suptitle(f"Cost of each recipe after CPT (mean over {_seeds(n_seeds)})", fontsize=10)
    return fig, cost


# What the transfer figure tests (its caption after plots.caption_for's scope).
TRANSFER_CAPTION = "C4 (transfer within a family) and N1 (across families)"

@plots.styled
def transfer(cells: pd.DataFrame, tr: pd.DataFrame, labels: dict[str, str]):
    """C4, N1: heatmap of target + residual IF (source × target, with CI and seeds), and the same as points beside
    each target without a residual and the released instruct models."""
    grid = cells.pivot_table(index="source", columns="target", values="IF", sort=False)
    lo, hi, n = (cells.pivot_table(index="source", columns="target", values=v, sort=False).reindex_like(grid)
                 for v in ("IF_lo", "IF_hi", "n_seeds"))
    fig, axes = plots.new_figure(2, width=11, height=4.2)
    texts = [[f"{grid.values[i, j]:.2f}\n[{lo.values[i, j]:.2f}, {hi.values[i, j]:.2f}]\n{_seeds(int(n.values[i, j]))}"
              for j in range(grid.shape[1])] for i in range(grid.shape[0])]
    sns.heatmap(grid.rename(index=lambda s: f"Θr({s})"), ax=axes[0], vmin=0, vmax=1, cmap="viridis",
                annot=np.array(texts, dtype=object), fmt="", annot_kws={"fontsize": 7},
                cbar_kws={"label": labels["IF"], "shrink": 0.8})
    axes[0].tick_params(axis="x", rotation=20); axes[0].tick_params(axis="y", rotation=0)
    axes[0].set_xlabel("target model"); axes[0].set_ylabel("residual source"); axes[0].grid(False)
    axes[0].set_title("IF of target + residual (mean [95% CI])", fontsize=9)
    ax, targets = axes[1], list(grid.columns)
    sources = list(cells.source.unique())
    for k, (src, g) in enumerate(cells.groupby("source", sort=False)):
        xs = [targets.index(t) + (k - (len(sources) - 1) / 2) * 0.18 for t in g.target]
        ax.errorbar(xs, g.IF, yerr=stats.yerr(g, "IF"), marker="o", ls="", label=f"target + Θr({src})")
    baseline = tr[tr.source == "none"].groupby("target", sort=False).IF.mean()
    ax.scatter([targets.index(t) for t in baseline.index], baseline.values, marker="_", s=400, color="k", lw=2,
               label="target without a residual", zorder=3)
    native = tr[tr.source == "native"].groupby("target", sort=False).IF.mean()
    for (tgt, v), ls in zip(native.items(), ["--", "-."]):
        ax.axhline(v, ls=ls, lw=1, color=plots.COLORS.get(tgt, "#999999"), label=f"{tgt} (released instruct model)")
    ax.set_xticks(range(len(targets)), targets, fontsize=7); ax.set_xlabel("target model")
    plots.fraction_axis(ax, labels["IF"]); ax.set_title("residual transfer (mean and 95% CI)", fontsize=9)
    plots.legend_below(fig, ax, ncol=3)
    return fig, cells


# What the ablations figure tests (its caption after plots.caption_for's scope).
ABLATIONS_CAPTION = "Q3 (merge method), N3 (modules), α sweep, low rank and the PEFT adapter"

@plots.styled
def ablations(ab: pd.DataFrame, panels: list[str], labels: dict[str, str], second: str):
    """Q3, N3, α and rank on CPT(base_v1) at the final budget, from ablation_summary's table (mean over seeds,
    95% CI over seeds + items)."""
    fig, axes = plots.new_figure(2, width=10, height=7.2, nrows=2)
    a = ab[ab.ablation == "alpha"]
    for m in panels:
        axes[0].errorbar(a.value, a[m], yerr=stats.yerr(a, m), marker="o", label=labels[m])
    axes[0].axvline(1.0, ls=":", lw=1, color="#999999", label="α = 1 (the paper's recipe)")
    axes[0].set_xlabel("residual scale α (θ_cpt + α·Θr)"); axes[0].set_title("α sweep", fontsize=9)
    for ax, kind, title in zip(axes[1:3], ["merge", "modules"], ["merge method (Q3)", "residual restricted to modules (N3)"]):
        g = ab[ab.ablation == kind]
        xs = np.arange(len(g))
        ax.bar(xs - 0.2, g.IF, 0.4, yerr=stats.yerr(g, "IF"), color="C0")
        ax.bar(xs + 0.2, g[second], 0.4, yerr=stats.yerr(g, second), color="C3" if second == "era_b" else "C2")
        ax.set_xticks(xs, g.setting, rotation=30, fontsize=7); ax.set_title(title, fontsize=9)
    r = ab[ab.ablation == "rank"]
    axes[3].errorbar(r.residual_mb, r.IF, yerr=stats.yerr(r, "IF"), marker="o", color="C0")
    for _, row in r.iterrows():
        axes[3].annotate(row.setting, (row.residual_mb, row.IF), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ad = ab[(ab.ablation == "adapter") & ab.adapter_mb.notna()] if "adapter_mb" in ab else ab.iloc[:0]
    if len(ad):  # the largest rank as a PEFT adapter attached at load time (issue 34): one marker per choice
        for (_, row), marker in zip(ad.iterrows(), ["D", "s", "v", "^"]):
            axes[3].errorbar([row.adapter_mb], [row.IF], yerr=stats.yerr(ad.loc[[row.name]], "IF"), marker=marker,
                             ls="none", color="C1", label="PEFT adapter, " + row.setting.split(", ", 1)[-1])
        axes[3].legend(loc="upper left", fontsize=6, frameon=False)
    plots.log_axis(axes[3], "size on disk (MB, log): residual (blue), PEFT adapter (orange)")
    axes[3].set_title("low-rank residual (IF)", fontsize=9)
    for ax in axes:
        plots.fraction_axis(ax)
    plots.legend_below(fig, axes[0], ncol=3)
    n = int(ab.n_seeds.max()) if "n_seeds" in ab else 1
    fig.suptitle(f"Ablations on CPT(base_v1) at the final budget (mean over {n} seed{'s' if n > 1 else ''}; error bars: "
                 f"95% CI over {'seeds + ' if n > 1 else ''}items); bars: IF (blue) and {labels[second]}", fontsize=10)
    return fig, ab


# What the shift figure tests (its caption after plots.caption_for's scope).
SHIFT_CAPTION = "N2 (shift between CPT and original data vs forgetting)"

@plots.styled
def shift(shift_table: pd.DataFrame, instruct_if: float, labels: dict[str, str]):
    """N2: IF after CPT on each corpus against the corpus' shift (base_v1's bits per byte, the mean over the seeds),
    the mean over the table's seeds with its 95% CI; `instruct_if`: instruct_v1's over the same seeds."""
    by = stats.summarize(shift_table, ["corpus", "model"], ["IF"]).merge(
        shift_table.groupby("corpus", as_index=False).shift_bpb.mean(), on="corpus")
    n = int(by.n_seeds.max())
    fig, ax = plots.new_figure(width=5.5, height=3.8)
    for model, g in by.groupby("model", sort=False):
        ax.errorbar(g.shift_bpb, g.IF, yerr=stats.yerr(g, "IF"), marker="o", label=model, color=plots.COLORS.get(model))
    for corpus, g in by.groupby("corpus", sort=False):  # each corpus named once, above its highest point
        ax.annotate(corpus.removesuffix(".jsonl"), (g.shift_bpb.iloc[0], g.IF.max()), fontsize=7, xytext=(4, 6),
                    textcoords="offset points")
    ax.axhline(instruct_if, ls="--", lw=1, color=plots.COLORS[Member.INSTRUCT_V1], label="instruct_v1 (before CPT)")
    ax.set_xlabel("shift: base_v1 bits per byte on the corpus' era"); plots.fraction_axis(ax, labels["IF"])
    ax.set_title(f"Data shift vs forgetting (mean over {n} seed{'s' if n > 1 else ''}; 95% CI over "
                 f"{'seeds + ' if n > 1 else ''}items)", fontsize=9)
    plots.legend_below(fig, ax, ncol=2)
    return fig, shift_table


# What the residual_norms figure tests (its caption after plots.caption_for's scope).
RESIDUAL_NORMS_CAPTION = "N3 (where in the network the residual lives)"

@plots.styled
def residual_norms(norms: pd.DataFrame):
    """N3: ‖Θr‖/‖θ_base‖ per layer and per module."""
    fig, axes = plots.new_figure(2, width=10, height=3.4)
    for ax, level in zip(axes, ["layer", "module"]):
        g = norms[norms.level == level]
        ax.bar(g.group, g.relative); ax.tick_params(axis="x", rotation=60, labelsize=6)
        ax.set_ylabel("‖Θr‖ / ‖θ_base‖ (ratio)"); ax.set_xlabel(level)
    return fig, norms


# What the benchmarks figure shows and tests; the profile's own note on the benchmarks (cptlib.study.report.bench_note)
# follows it.
BENCHMARKS_CAPTION = ("C1 and C2 across tasks: left, each benchmark's accuracy before CPT and along it (the first seed's "
                      "line; with more seeds, their mean before CPT and at the final budget as hollow markers), 95% CI over "
                      "seeds × items; right, the drop per benchmark and their average (large dot) at the final budget with "
                      "95% intervals over every seed, the paper's 2.7-point average dotted (an instruct model), C2's 0.05 "
                      "bound dashed (a base model). ")

@plots.styled
def benchmarks(curve: pd.DataFrame, per_model: pd.DataFrame, drops: pd.DataFrame):
    """C1 / C2 across tasks: left, each benchmark's accuracy before CPT (0 tokens) and along the CPT milestones, the
    first seed's line (its chance level in the legend), and where the study has more seeds their mean before CPT and
    at the final budget as hollow markers beside it, 95% CI over seeds × items; right, each task's drop before − after
    at the final budget and their average, with 95% intervals over every seed (the paper's average drop, 2.7 points,
    dotted, for an instruct model; C2's 0.05 bound, dashed, for a base model)."""
    from cptlib.evaluation.benchmarks import BENCHMARKS
    from cptlib.study.benchmarks import BEFORE_AFTER

    arms = [m for m in BEFORE_AFTER if m in set(curve.model)]
    tasks = list(dict.fromkeys(curve.task))
    palette = dict(zip(tasks, sns.color_palette("colorblind", len(tasks))))
    fig, axes = plots.new_figure(2, width=12, height=3.6 + 0.25 * len(tasks))
    ax = axes[0]
    several = per_model[per_model.n_seeds > 1]
    for arm in arms:
        for task in tasks:
            pick = lambda t: t[t.model.isin([arm, BEFORE_AFTER[arm]]) & (t.task == task)].sort_values("tokens")  # noqa: E731
            t = pick(curve)
            label = f"{BENCHMARKS[task].label} (chance {BENCHMARKS[task].chance:.2f})" + (f", {arm}" if len(arms) > 1 else "")
            ax.errorbar(t.tokens / 1e3, t.acc, yerr=np.nan_to_num([t.acc - t.lo, t.hi - t.acc]), marker="o", ms=3,
                        capsize=2, color=palette[task], ls="-" if arm == CPT_I else "--", label=label)
            if len(e := pick(several)):
                ax.errorbar(e.tokens / 1e3 + 1.0, e.acc, yerr=np.nan_to_num([e.acc - e.lo, e.hi - e.acc]), fmt="o",
                            mfc="white", ms=4, capsize=2, color=palette[task],
                            label=f"every seed ({int(e.n_seeds.max())}), before and at the final budget")
    ax.set_xlabel("CPT tokens (thousands; 0 = before CPT)")
    ax.set_ylabel("accuracy (lm-eval's metric)")
    ax.set_title("Benchmark accuracy along CPT (first seed; 95% CI over seeds × items)", fontsize=9)
    handles, labels = ax.get_legend_handles_labels()
    keep = dict(zip(labels, handles))  # the every-seed marker once
    plots.legend_below(fig, handles=list(keep.values()), labels=list(keep), ncol=min(5, len(keep)))
    ax = axes[1]
    d = drops.reset_index(drop=True)
    y = np.arange(len(d))[::-1]
    for yi, r in zip(y, d.itertuples()):
        ax.errorbar([r.drop], [yi], xerr=np.nan_to_num([[r.drop - r.lo], [r.hi - r.drop]]), fmt="o", capsize=2,
                    color=plots.COLORS.get(r.model, "#333333"), ms=7 if r.task == "average" else 4)
    ax.set_yticks(y, [f"{r.label} — {r.model}" if len(arms) > 1 else r.label for r in d.itertuples()], fontsize=7)
    ax.axvline(0, color="#999999", lw=0.8)
    marks = ([(0.027, ":", "paper: 2.7 points\n(C1's average)")] if CPT_I in arms else []) + \
        ([(0.05, "--", "C2's rule: upper\nend ≤ 0.05")] if CPT_B in arms else [])
    for x, ls, text in marks:
        ax.axvline(x, color="#999999", lw=0.8, ls=ls)
        ax.annotate(text, (x, 1.0), xycoords=("data", "axes fraction"), fontsize=7, ha="right", va="top",
                    color="#777777", xytext=(-3, -2), textcoords="offset points")
    ax.set_xlabel("drop: accuracy before − after CPT (final budget; 95% CI)")
    ax.set_title("Drop per benchmark and their average (large dot)", fontsize=9)
    return fig, drops
