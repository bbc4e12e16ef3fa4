"""The figures of notebooks 01 and 04 whose data mix seeds: each a function that returns (Figure, plotted data).

    fig, data = forgetting(curve, PANELS, LABELS)
    plots.save_figure(fig, "forgetting", data, cfg, caption)   # PNG/PDF/CSV/JSON; the notebook cell shows `fig`

A number from fewer seeds is never joined into a line with more-seed points: the milestone curves are the first
seed's (the one seed with every milestone), the final budget over every seed is a separate marker beside them.
"""
from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from cptlib.study import plots, stats
from cptlib.study.criteria import KEEP
from cptlib.study.experiments import CPT_I, REST
from cptlib.study.n4 import n4_threshold


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def forgetting(curve: pd.DataFrame, panels: list[str], labels: dict[str, str]):
    """Metric vs new CPT tokens (log x): one line per model over the first seed's milestones, the final budget's
    mean over every seed as a separate diamond, the models before CPT as dashed references with their CI band.
    Without a news accuracy, held-out bits per byte show the news being learned (bpb_b) and other text kept (bpb_a)."""
    bpb = [m for m in ("bpb_b", "bpb_a") if curve[m].notna().any()] if "era_b" not in panels else []
    shown = panels + bpb
    s0, final = curve.seed.min(), curve.tokens.max()
    first = stats.summarize(curve[(curve.tokens > 0) & (curve.seed == s0)], ["model", "tokens"], shown)
    every = stats.summarize(curve[curve.tokens == final], ["model", "tokens"], shown)
    refs = stats.summarize(curve[curve.tokens == 0], ["model"], shown)
    n_final = int(every.n_seeds.max())
    fig, axes = plots.new_figure(len(shown), width=3.3 * max(len(shown), 2), height=3.8)
    for ax, m in zip(np.atleast_1d(axes), shown):
        for model, g in first.groupby("model", sort=False):
            ax.errorbar(g.tokens, g[m], yerr=stats.yerr(g, m), marker="o", label=f"{model} (first seed)",
                        color=plots.COLORS[model])
        if n_final > 1:
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
    fig.suptitle("Forgetting during CPT — mean and 95% CI (bootstrap over seeds × items): lines the first seed at "
                 f"every milestone" + (f", diamonds the final budget over {_seeds(n_final)}" if n_final > 1 else ""))
    # With one seed the final budget's mean over every seed is the first seed's point: not listed twice.
    data = pd.concat([first.assign(seeds="first")] + ([every.assign(seeds="every")] if n_final > 1 else [])
                     + [refs.assign(tokens=0, seeds="every")])
    return fig, data


def n4_map(n4: pd.DataFrame, instruct_if: float, panels: list[str], labels: dict[str, str]):
    """N4: heatmaps of the restored model's IF (framed: meets N4's criterion) and news accuracy over CPT budget ×
    learning rate, and restored IF against the drift ratio with N4's threshold and fitted line (first seed)."""
    rest = n4[n4.model == REST]
    maps = [m for m in ("IF", "era_b") if m in panels]  # a real profile without a news metric: IF only
    t = n4_threshold(n4, instruct_if)
    fig, axes = plots.new_figure(len(maps) + 1, width=5.2 * (len(maps) + 1), height=4.6)
    for ax, m in zip(axes[:-1], maps):
        grid = rest.pivot_table(index="lr", columns="tokens", values=m)
        im = ax.imshow(grid.values, vmin=0, vmax=1, cmap="viridis", aspect="auto", origin="lower")
        ax.set_xticks(range(grid.shape[1]), [plots._compact(x) for x in grid.columns], rotation=0)
        ax.set_yticks(range(grid.shape[0]), [f"{lr:g}" for lr in grid.index])
        ax.set_xlabel("CPT budget (tokens)"); ax.set_ylabel("CPT learning rate"); ax.grid(False)
        ax.set_title(f"restored: {labels[m]}" + (f"\n(framed: ≥ {KEEP:g} × IF(instruct_v1) = {t['bound']:.3f}, N4's "
                                                 "criterion)" if m == "IF" else ""), fontsize=9)
        plots.heatmap_labels(ax, grid.values, [[f"{v:.3f}" for v in row] for row in grid.values], fontsize=8)
        if m == "IF":
            plots.outline_cells(ax, grid.values >= t["bound"])
    fig.colorbar(im, ax=axes[:-1], label="accuracy (fraction)", shrink=0.8)
    ax = axes[-1]
    palette = dict(zip(sorted(rest.lr.unique()), ["#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d"]))
    for lr, g in rest.groupby("lr"):
        ax.plot(g.drift_ratio, g.IF, marker="o", color=palette[lr], label=f"CPT(base_v1)+Θr(v1), lr {lr:g}")
    for _, r in n4[n4.model == CPT_I].iterrows():
        ax.axhline(r.IF, ls=":", lw=1.2, color=palette[r.lr], label=f"CPT(instruct_v1), lr {r.lr:g}, {plots._compact(r.tokens)} tokens")
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
    ax.set_title("restored IF vs drift ratio (first seed; 95% CI over items in the tables)", fontsize=9)
    plots.legend_below(fig, ax, ncol=2)
    return fig, n4


def sizes(sz: pd.DataFrame, recovery: pd.DataFrame, invalid: dict[str, list[str]], main_size: str,
          labels: dict[str, str]):
    """Q1 / C5: IF of each model by size (first seed), and recovery by size with every seed there is; a size whose
    base or instruct model misses its calibration is drawn hollow and named so."""
    by = stats.summarize(sz, ["size", "n_params", "model"], ["IF"])
    fig, axes = plots.new_figure(2, width=9.5, height=3.8)
    for model, g in by.groupby("model", sort=False):
        axes[0].errorbar(g.n_params, g.IF, yerr=stats.yerr(g, "IF"), marker="o", label=model, color=plots.COLORS.get(model))
    plots.log_axis(axes[0], "parameters (log scale)", ticks=recovery.n_params); plots.fraction_axis(axes[0], labels["IF"])
    axes[0].set_title("IF by model size (first seed)", fontsize=9)
    color = plots.COLORS[REST]
    for row in recovery.itertuples():
        members = ("base_v1", "instruct_v1") if row.size == main_size else (f"base_v1 ({row.size})", f"instruct_v1 ({row.size})")
        valid = not any(m in invalid for m in members)
        axes[1].errorbar([row.n_params], [row.mean], yerr=[[row.mean - row.lo], [row.hi - row.mean]], marker="o",
                         color=color, mfc=color if valid else "white")
        axes[1].annotate(f"{row.size} ({_seeds(row.n_seeds)})" + ("" if valid else "\nmisses calibration"),
                         (row.n_params, row.mean), fontsize=7, xytext=(4, 4), textcoords="offset points")
    axes[1].axhline(1.0, color="k", lw=0.8, ls="--")
    plots.log_axis(axes[1], "parameters (log scale)", ticks=recovery.n_params); axes[1].set_ylim(0, 1.2)
    axes[1].set_ylabel("recovery IF(CPT(base)+Θr) / IF(instruct)")
    axes[1].set_title("recovery by size (C5, Q1); hollow: not valid for C5", fontsize=9)
    plots.legend_below(fig, axes[0], ncol=4)
    fig.suptitle("Model size — 95% CI over seeds × items", fontsize=10)
    return fig, sz
