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

matplotlib.use("Agg")  # files only; notebooks still display the returned figure inline
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from cptlib import paths  # noqa: E402
from cptlib.config import Profile  # noqa: E402
from cptlib.provenance import code_version, library_versions  # noqa: E402

DPI = 200
TESTBED = "Synthetic testbed (tiny LLaMA models on a generated world), not the paper's 8B models."
STYLE = {
    "figure.figsize": (6.4, 4.0), "figure.dpi": 100, "savefig.dpi": DPI, "savefig.bbox": "tight",
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "axes.grid": True,
    "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False, "lines.markersize": 4,
    "errorbar.capsize": 3, "svg.hashsalt": "cptlib", "pdf.fonttype": 42,
}
# One colour per model role, the same in every figure.
COLORS = {"instruct_v1": "#1b9e77", "instruct_v2": "#66a61e", "base_v1": "#7570b3", "CPT(instruct_v1)": "#d95f02",
          "CPT(base_v1)": "#666666", "CPT(base_v1)+Θr(v1)": "#e7298a", "CPT(base_v1)+SFT": "#e6ab02"}


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


def figures_dir(profile: Profile | str) -> Path:
    """Where a profile's figures go: figures/<name>/, or build/<name>/figures/ when that folder holds committed
    figures this run may not overwrite (see _redirect; a note says so once)."""
    name = profile if isinstance(profile, str) else profile.name
    out = paths.figures_dir(name)
    reason = _redirect(name)
    if reason:
        out = paths.profile_build_dir(name) / "figures"
        if name not in _noted:
            _noted.add(name)
            print(f"note: figures/{name}/ holds the committed figures and {reason}: this run writes them to {out}")
    out.mkdir(parents=True, exist_ok=True)
    return out


_noted: set[str] = set()


def new_figure(ncols: int = 1, width: float = 6.4, height: float = 4.0):
    plt.rcParams.update(STYLE)
    return plt.subplots(1, ncols, figsize=(width, height), layout="constrained")  # one Axes, or a row of them


def fraction_axis(ax, label: str = "accuracy (fraction)") -> None:
    """An accuracy axis on the full 0-1 range, so panels and figures compare at a glance."""
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel(label)


def log_axis(ax, label: str = "new CPT tokens (log scale)") -> None:
    """A log-scale x axis (tokens by default) with labels at the decades only (minor labels collide)."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(label)


def scope(profile: Profile) -> str:
    """What the figures are of: the synthetic testbed, or a real profile's checkpoints and corpus."""
    m = profile.models
    if m is None:
        return TESTBED
    return (f"Real models: {m.base_v1} / {m.instruct_v1} (v1), {m.base_v2} / {m.instruct_v2} (v2); "
            f"CPT on {profile.cpt_data.source}.")


def caption_for(profile: Profile, claims: str) -> str:
    return f"{scope(profile)} Tests {claims}."


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def provenance_record(profile: Profile, **extra) -> dict:
    return {"profile": profile.name, "parameters": profile.model_dump(mode="json"), "code_version": code_version(),
            "libraries": {**library_versions(), "matplotlib": matplotlib.__version__, "pandas": pd.__version__},
            **extra}


def save_figure(fig, name: str, data: pd.DataFrame, profile: Profile, caption: str) -> Path:
    """Write <name>.png (200 dpi), .pdf, .csv (the plotted data) and .json (provenance, caption)."""
    out = figures_dir(profile)
    fig.text(0.0, -0.02, caption, ha="left", va="top", fontsize=7, wrap=True, transform=fig.transFigure)
    _atomic(out / f"{name}.png", lambda p: fig.savefig(p, format="png", dpi=DPI, metadata={"Software": None}))
    _atomic(out / f"{name}.pdf", lambda p: fig.savefig(p, format="pdf", metadata={"CreationDate": None,
                                                                                  "Creator": None, "Producer": None}))
    _atomic(out / f"{name}.csv", lambda p: data.to_csv(p, index=False))
    record = provenance_record(profile, figure=name, caption=caption, columns=list(data.columns))
    _atomic(out / f"{name}.json", lambda p: p.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n"))
    return out / f"{name}.png"


def markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub Markdown table (no extra dependency), floats rounded to `digits`."""
    def cell(v):
        if isinstance(v, float):
            return "" if v != v else f"{v:.{digits}g}" if abs(v) >= 1000 or (v != 0 and abs(v) < 1e-3) else f"{v:.{digits}f}"
        return str(v).replace("|", "\\|")
    head = "| " + " | ".join(map(str, table.columns)) + " |\n| " + " | ".join("---" for _ in table.columns) + " |\n"
    return head + "".join("| " + " | ".join(cell(v) for v in row) + " |\n" for row in table.itertuples(index=False))


def save_table(table: pd.DataFrame, name: str, profile: Profile, caption: str = "") -> Path:
    """Write <name>.csv and <name>.md (caption line, then the table)."""
    out = figures_dir(profile)
    _atomic(out / f"{name}.csv", lambda p: table.to_csv(p, index=False))
    text = (f"{caption}\n\n" if caption else "") + markdown(table)
    _atomic(out / f"{name}.md", lambda p: p.write_text(text))
    return out / f"{name}.csv"


def errorbar_lines(ax, table: pd.DataFrame, x: str, y: str, by: str, label_by=None) -> None:
    """One line per `by` group, mean over seeds with 95% CI bars where a group has ≥ 2 seeds at an x."""
    from cptlib.study.stats import summarize

    for key, group in table.groupby(by, sort=False):
        s = summarize(group, [x], [y]).sort_values(x)
        ax.errorbar(s[x], s[y], yerr=s[f"{y}_ci95"].fillna(0), marker="o", label=label_by(key) if label_by else key,
                    color=COLORS.get(key))
