"""Figures and tables of the study, saved with the data they show and what produced them.

    fig, ax = new_figure()
    ...
    save_figure(fig, "forgetting", data, profile, caption="...")   # figures/<profile>/forgetting.{png,pdf,csv,json}
    save_table(table, "claims", profile)                           # figures/<profile>/claims.{csv,md}

PNG at 200 dpi, PDF without a creation date (a rerun is byte-stable), the CSV of exactly what is plotted, and
a provenance JSON (profile, its parameters, code and library versions). Every write is atomic.
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from cptlib.core import paths
from cptlib.config import Profile
from cptlib.core.files import atomic_file
from cptlib.core.provenance import code_version, library_versions
from cptlib.evaluation.suite import suite_for
from cptlib.study.labels import CPT_B, CPT_I, PEFT, REST, SFT
from cptlib.members import Member

DPI = 200
STYLE = {
    "figure.figsize": (6.4, 4.0), "figure.dpi": 100, "savefig.dpi": DPI, "savefig.bbox": "tight",
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "axes.grid": True,
    "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False, "lines.markersize": 4,
    "errorbar.capsize": 3, "svg.hashsalt": "cptlib", "pdf.fonttype": 42,
}
# One colour per model role, the same in every figure.
COLORS = {Member.INSTRUCT_V1: "#1b9e77", Member.INSTRUCT_V2: "#66a61e", Member.BASE_V1: "#7570b3", CPT_I: "#d95f02",
          CPT_B: "#666666", REST: "#e7298a", SFT: "#e6ab02", PEFT: "#a6761d"}


# Set by `make reproduce`: the run may write the committed figures of a shipped profile (if the tree is clean).
PUBLISH_ENV = "CPTLIB_PUBLISH"


@functools.lru_cache(maxsize=None)
def shipped_figures() -> frozenset[str]:
    """Profiles whose figures/<name>/ is committed (git ls-files); empty outside a git checkout."""
    try:
        listed = subprocess.run(["git", "ls-files", "--", "figures"], cwd=paths.REPO_ROOT, capture_output=True,
                                text=True, timeout=10, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(Path(f).parts[1] for f in listed if len(Path(f).parts) > 2)


@functools.lru_cache(maxsize=None)
def _redirect(name: str) -> str | None:
    """Why this run may not write figures/<name>/ (None: it may). Only `make reproduce` of a clean, committed tree
    writes a shipped profile's figures; any other run (JupyterLab, papermill, tests, a dirty tree) writes to
    build/<name>/figures/ instead, so the committed figures always come from one known code version."""
    if paths.FIGURES_DIR != paths.REPO_ROOT / "figures" or name not in shipped_figures():
        return None
    if os.environ.get(PUBLISH_ENV) != "1":
        return "only `make reproduce` writes a shipped profile's committed figures"
    version = code_version()
    if version == "unknown" or version.endswith("-dirty"):
        return f"the tree has uncommitted changes ({version}); commit them, then `make reproduce`"
    return None


def figures_dir(profile: Profile | str, create: bool = False) -> Path:
    """Where a profile's figures go: figures/<name>/, or build/<name>/figures/ when that folder holds committed
    figures this run may not overwrite (see _redirect; a note says so once). Created only with `create` (by the
    functions that write there), so a run that draws nothing leaves no empty folder."""
    name = profile if isinstance(profile, str) else profile.name
    out = paths.figures_dir(name)
    reason = _redirect(name)
    if reason:
        out = paths.profile_build_dir(name) / "figures"
        if name not in _noted:
            _noted.add(name)
            print(f"note: figures/{name}/ holds the committed figures and {reason}: this run writes them to {out}")
    if create:
        out.mkdir(parents=True, exist_ok=True)
    return out


_noted: set[str] = set()


def style():
    """The study's matplotlib style as a context (no global rcParams change): figure functions draw and save
    inside it."""
    return matplotlib.rc_context(STYLE)


def styled(draw):
    """Decorate a figure function so that it draws in the study's style."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with style():
            return draw(*args, **kwargs)
    return wrapper


def show_inline(shell) -> None:
    """In a Jupyter kernel (`shell`: its IPython shell), display a Figure a cell returns as a PNG in the study's style
    (the study draws plain Figures, which pyplot's inline backend would not show). Called by the notebooks' setup."""
    from IPython.core.pylabtools import select_figure_formats

    select_figure_formats(shell, {"png"}, dpi=100)


def new_figure(ncols: int = 1, width: float = 6.4, height: float = 4.0, nrows: int = 1):
    """A figure (a plain Figure, not pyplot's: a notebook shows it once, where its cell returns it) with one Axes, a
    row of them, or (nrows > 1) a grid, flattened. Call it inside `style()` or a @styled function."""
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    if nrows > 1:
        return fig, axes.ravel()
    return fig, axes[0, 0] if ncols == 1 else axes[0]


def fraction_axis(ax, label: str = "accuracy (fraction)") -> None:
    """An accuracy axis on the full 0-1 range, so panels and figures compare at a glance."""
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel(label)


def compact(value: float, _pos=None) -> str:
    """A tick label with 3 significant digits: 8.19k, 200k, 1.5M, 2.17T, 0.05, 2."""
    for div, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:.3g}{unit}"
    return f"{value:.3g}"


def log_axis(ax, label: str = "new CPT tokens (log scale)", axis: str = "x", ticks=None) -> None:
    """A log-scale axis (x: tokens by default) with compact labels (8.19k, 200k): at `ticks` (e.g. the milestones
    or model sizes plotted) where given, else at 1, 2 and 5 of each decade for spans up to ~2 decades and at the
    decades for wider ones, so every log axis has several readable ticks. Call it after plotting."""
    import math

    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter, NullLocator

    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    if ticks is not None:
        target.set_major_locator(FixedLocator(sorted({float(t) for t in ticks})))
        target.set_minor_locator(NullLocator())
        ax.tick_params(axis=axis, labelrotation=35 if axis == "x" else 0, labelsize=7)
    else:
        lo, hi = ax.get_xlim() if axis == "x" else ax.get_ylim()
        decades = math.log10(hi / lo) if lo > 0 and hi > lo else 1.0
        target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades <= 2.5 else (1.0,),
                                            numticks=12))
    target.set_major_formatter(FuncFormatter(compact))
    target.set_minor_formatter(NullFormatter())
    (ax.set_xlabel if axis == "x" else ax.set_ylabel)(label)


def legend_below(fig, ax=None, ncol: int = 3, handles=None, labels=None) -> None:
    """One legend for the figure, below the axes (it never covers data); the entries of `ax` (default: the first
    Axes), or the given handles and labels."""
    if handles is None:
        handles, labels = (ax or fig.axes[0]).get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=7, frameon=False)


# A frame around a heatmap cell that misses a criterion: red, the colour the figures give a miss (report.CHECK_COLORS
# gives a missed rule orange-red too); a cell that meets it is not framed.
MISS_FRAME = "#d62728"


def outline_cells(ax, mask, color: str = MISS_FRAME) -> None:
    """Draw a frame around each cell (i, j) of a seaborn heatmap (cell (i, j) spans [j, j+1] × [i, i+1]) where
    mask[i][j] is true (a criterion missed: red by default)."""
    import numpy as np
    from matplotlib.patches import Rectangle

    for (i, j), hit in np.ndenumerate(np.asarray(mask)):
        if hit:
            ax.add_patch(Rectangle((j, i), 1, 1, fill=False, edgecolor=color, lw=2))


def scope(profile: Profile) -> str:
    """What the figures are of: the synthetic testbed, or a real profile's checkpoints and corpus (its suite says)."""
    return suite_for(profile).scope()


def caption_for(profile: Profile, claims: str) -> str:
    return f"{scope(profile)} Tests {claims}."


def _atomic(path: Path, write) -> None:
    """`write(tmp)` writes the file, which then replaces `path` whole (cptlib.core.files.atomic_file)."""
    with atomic_file(path) as tmp:
        write(tmp)


def provenance_record(profile: Profile, **extra) -> dict:
    return {"profile": profile.name, "parameters": profile.model_dump(mode="json"), "code_version": code_version(),
            "libraries": {**library_versions(), "matplotlib": matplotlib.__version__, "pandas": pd.__version__},
            **extra}


def save_figure(fig, name: str, data: pd.DataFrame, profile: Profile, caption: str, write_data: bool = True,
                data_record: dict | None = None) -> Path:
    """Write <name>.png (200 dpi), .pdf, .csv (the plotted data) and .json (provenance, caption). `write_data=False`
    where save_table already wrote <name>.csv with the figure's data (one file, written once). `data_record`: the
    figure is drawn again from committed tables (cptlib.study.redraw), and this is the .json it replaces: no CSV is
    written, and the new .json keeps the profile values the numbers were computed with and records their code
    version as `data_code_version` beside this drawing's `code_version`."""
    out = figures_dir(profile, create=True)
    # The caption goes into the report and the .json beside the figure; the image names only what it is of.
    fig.text(1.0, 0.0, f"cptlib · profile {profile.name} · {suite_for(profile).kind}",
             ha="right", va="top", fontsize=6, color="#777777", transform=fig.transFigure)
    with style():
        _atomic(out / f"{name}.png", lambda p: fig.savefig(p, format="png", dpi=DPI, bbox_inches="tight",
                                                          metadata={"Software": None}))
        _atomic(out / f"{name}.pdf", lambda p: fig.savefig(p, format="pdf", bbox_inches="tight", metadata={
            "CreationDate": None, "Creator": None, "Producer": None}))
    if write_data and data_record is None:
        _atomic(out / f"{name}.csv", lambda p: data.to_csv(p, index=False))
    record = provenance_record(profile, figure=name, caption=caption, columns=list(data.columns),
                               **({} if write_data else {"table": name}))
    if data_record is not None:
        record.update({k: data_record[k] for k in ("parameters", "table") if k in data_record},
                      data_code_version=data_record.get("data_code_version") or data_record["code_version"])
    _write_record(out / f"{name}.json", record)
    return out / f"{name}.png"


def _write_record(path: Path, record: dict) -> None:
    _atomic(path, lambda p: p.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n"))


def markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub Markdown table (pandas' to_markdown, by tabulate); floats rounded to `digits` decimals, in
    scientific notation where that would hide them (≥ 1000 or < 0.001), missing values blank."""
    def cell(v):
        if isinstance(v, float):
            return "" if v != v else f"{v:.{digits}g}" if abs(v) >= 1000 or (v != 0 and abs(v) < 1e-3) else f"{v:.{digits}f}"
        if v is None or v is pd.NA:
            return ""
        return str(v).replace("|", "\\|")  # a pipe inside a cell would end it
    return table.map(cell).to_markdown(index=False, tablefmt="github", disable_numparse=True) + "\n"


def save_table(table: pd.DataFrame, name: str, profile: Profile, caption: str = "") -> Path:
    """Write <name>.csv, <name>.md (caption line, then the table) and <name>.json: its provenance, as a figure's —
    the code version, the libraries and the profile's every value (the CPT learning rate among them)."""
    out = figures_dir(profile, create=True)
    _atomic(out / f"{name}.csv", lambda p: table.to_csv(p, index=False))
    _write_record(out / f"{name}.json", provenance_record(profile, table=name, caption=caption,
                                                         columns=[str(c) for c in table.columns]))
    text = (f"{caption}\n\n" if caption else "") + markdown(table)
    _atomic(out / f"{name}.md", lambda p: p.write_text(text))
    return out / f"{name}.csv"
