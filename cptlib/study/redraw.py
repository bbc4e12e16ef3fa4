"""Figures drawn again from the tables committed beside them, training and evaluating nothing.

    redraw(profile, ["effects", "n4_map"])   # those figures of figures/<profile>/, from its CSVs; report.html re-embeds them
    redraw(load_profile("drift"))            # a profile of one notebook alone: its figure and its whole report
    report_markdown(profile)                 # the REPORT.md such a profile's committed tables render now

Each figure here is a function of its committed table(s) alone (FIGURES): the notebook draws it from exactly the
table it saves beside it. So a fix to the plotting code is drawn into the committed PNG in seconds, without the
notebook's hours and without a stage store built on another CPU, whose last bits would change the science CSVs.
No CSV is written. The figure's .json records the code version that computed its numbers (`data_code_version`, from
the .json it replaces) beside the one that drew it (`code_version`). report.html embeds its PNGs, so it embeds the
redrawn ones (report.reembed); the REPORT.md of a profile of one notebook alone (drift, sizes) is rendered from its
tables too, every sentence that states a number included (tests/test_docs.py compares the committed one).

Like every run, a redraw writes the committed figures/<profile>/ only under `make redraw` of a clean, committed tree
(CPTLIB_PUBLISH=1, cptlib.study.plots); any other call writes to build/<profile>/figures/ and says so.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from cptlib.config import DRIFT_NOTEBOOK, SIZES_NOTEBOOK, Profile
from cptlib.core import paths
from cptlib.core.errors import CptlibError


class RedrawError(CptlibError):
    """A figure that cannot be drawn from its committed tables alone, or a table that is missing."""


@dataclass(frozen=True)
class Redrawable:
    tables: tuple[str, ...]                                       # the CSVs of figures/<profile>/ it is drawn from
    draw: Callable[[Profile, dict[str, pd.DataFrame]], tuple]     # (profile, tables) -> (Figure, the data it plots)
    caption: Callable[[dict[str, pd.DataFrame]], str] | None = None  # its caption from the tables; None: kept as is


def _effects(profile, t):
    from cptlib.study.report import claims_figure

    return claims_figure(t["effects"].copy()), t["effects"]


def _n4_map(profile, t):
    from cptlib.members import Member
    from cptlib.study import figures, restored

    from cptlib.evaluation.calibration import ModelId

    # instruct_v1's IF over the map's seeds, as 01's experiments.reference_if: the first seed's label has no seed
    # ("instruct_v1"), another's does ("instruct_v1 (seed 1)"); a map written before issue 48 is the first seed's.
    n4, c = t["n4_map"], t["calibration"]
    seeds = sorted(n4.seed.unique()) if "seed" in n4 else [profile.train_seeds[0]]
    labels = [ModelId(Member.INSTRUCT_V1, seed=None if s == profile.train_seeds[0] else int(s)).label for s in seeds]
    rows = c[c.model.isin(labels) & (c.metric == "IF prompt-level strict")]
    if len(rows) != len(labels):
        raise RedrawError(f"calibration.csv lacks instruct_v1's IF for seeds {seeds} of n4_map.csv: redraw from the "
                          f"tables of one run (`make reproduce PROFILE={profile.name}`)")
    return figures.n4_map(n4, float(rows.value.mean()), restored.panels(profile), restored.labels(profile))


def _recipes(profile, t):
    from cptlib.study import figures, restored

    return figures.recipes(t["recipes"], restored.panels(profile), restored.labels(profile), profile.cpt.tokens)


def _forgetting(profile, t):
    from cptlib.study import figures, restored

    return figures.forgetting_from_table(t["forgetting"], restored.panels(profile), restored.labels(profile)), \
        t["forgetting"]


def _regime(profile) -> pd.DataFrame | None:
    """The claims judged at each cell inside the regime (drift_regime.csv), where the committed run has them."""
    path = paths.figures_dir(profile.name) / "drift_regime.csv"
    return pd.read_csv(path) if path.is_file() else None


def _drift(profile, t):
    from cptlib.study import figures

    return figures.drift_curves(t["drift_curves"], _regime(profile))


def _sizes(profile, t):
    from cptlib.study import figures

    res = ladder_results(profile, t)
    return figures.sizes(res["per_size"], res["trends"], res["invalid"])


def _drift_caption(t):
    from cptlib.study.figures import drift_caption

    return drift_caption(t["drift_curves"])


def _sizes_caption(t):
    from cptlib.study.figures import sizes_caption

    return sizes_caption(t["scaling"])


FIGURES = {
    "effects": Redrawable(("effects",), _effects),
    "n4_map": Redrawable(("n4_map", "calibration"), _n4_map),
    "recipes": Redrawable(("recipes",), _recipes),
    "forgetting": Redrawable(("forgetting",), _forgetting),
    "drift_curves": Redrawable(("drift_curves",), _drift, _drift_caption),
    "sizes": Redrawable(("ladder", "scaling", "ladder_calibration"), _sizes, _sizes_caption),
}
# A profile of one notebook alone: its figure, and its whole report from the same tables.
ALONE = {DRIFT_NOTEBOOK: "drift_curves", SIZES_NOTEBOOK: "sizes"}


def _alone(profile: Profile) -> str | None:
    return ALONE.get(profile.notebooks[0]) if len(profile.notebooks) == 1 else None


def _tables(profile: Profile, names) -> dict[str, pd.DataFrame]:
    """The committed tables, read from figures/<profile>/ (never the build folder a redraw may write to)."""
    folder = paths.figures_dir(profile.name)
    out = {}
    for name in names:
        path = folder / f"{name}.csv"
        if not path.is_file():
            raise RedrawError(f"{paths.shown(path)} is missing: restore it with `git checkout -- {paths.shown(path)}`, "
                              f"or write it with `make reproduce PROFILE={profile.name}`")
        out[name] = pd.read_csv(path)
    return out


def _record(profile: Profile, figure: str) -> dict:
    path = paths.figures_dir(profile.name) / f"{figure}.json"
    if not path.is_file():
        raise RedrawError(f"{paths.shown(path)} is missing: figures/{profile.name}/ has no committed {figure} figure to "
                          f"draw again; `make reproduce PROFILE={profile.name}` draws it")
    return json.loads(path.read_text())


def ladder_results(profile: Profile, t: dict[str, pd.DataFrame]) -> dict:
    """What notebook 06 passes to its figure and report (scaling.results' keys), from its committed tables."""
    from cptlib.study.scaling import invalid_sizes
    from cptlib.study.verdicts import invalid_members

    calib = t["ladder_calibration"].astype({"n": "Int64"})
    invalid, other_seeds = invalid_sizes(invalid_members(calib), profile.model.size)
    return {"calibration": calib, "per_size": t["ladder"], "trends": t["scaling"], "invalid": invalid,
            "other_seeds_missed": other_seeds}


def _report_blocks(profile: Profile, versions: tuple[str, str]) -> tuple[str, list]:
    """A one-notebook profile's report, (title, blocks), as the notebook's own calls make them."""
    from cptlib.study import claims, report, verdicts

    if _alone(profile) == "drift_curves":
        return report.drift_blocks(profile, _tables(profile, ["drift_curves"])["drift_curves"], versions,
                                   per_cell=_regime(profile))
    res = ladder_results(profile, _tables(profile, FIGURES["sizes"].tables))
    judged = claims.judge(verdicts.Context(claims.effects({"scaling": res["trends"]}), main_size=profile.model.size),
                          only=("C5", "Q1"))
    return report.ladder_blocks(profile, judged, res, versions)


def report_markdown(profile: Profile) -> str:
    """The REPORT.md a one-notebook profile's committed tables render now, with the code versions and libraries its
    committed figure's .json records."""
    from cptlib.study import plots, report

    figure = _alone(profile)
    if figure is None:
        raise RedrawError(f"profile '{profile.name}' runs {', '.join(profile.notebooks)}: its report is written by "
                          f"notebook 05 from its verdicts; only a profile of {' or '.join(ALONE)} alone renders its "
                          f"report from its tables")
    record = _record(profile, figure)
    versions = (record.get("data_code_version") or record["code_version"], record["code_version"])
    title, blocks = _report_blocks(profile, versions)
    order = list(plots.provenance_record(profile)["libraries"])  # the .json sorts its keys; the report does not
    libraries = {k: record["libraries"][k] for k in sorted(record["libraries"], key=lambda k: (k not in order,
                                                                                              order.index(k) if k in order else 0, k))}
    return report.markdown_report(report.alone_blocks(profile, title, blocks, libraries),
                                  paths.figures_dir(profile.name))


def redraw(profile: Profile, names: list[str] | None = None) -> list[Path]:
    """Draw `names` (default: every figure of FIGURES that figures/<profile>/ holds) again from the committed tables
    and save them; then the report: a one-notebook profile's whole report, else report.html's embedded PNGs."""
    from cptlib.core.provenance import code_version
    from cptlib.study import plots, report

    folder = paths.figures_dir(profile.name)
    names = names or [f for f in FIGURES if (folder / f"{f}.png").is_file()]
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise RedrawError(f"cannot draw {', '.join(unknown)} from its table alone; the figures that can: "
                          f"{', '.join(FIGURES)} (the others: `make reproduce PROFILE={profile.name}`)")
    written, versions = [], {}
    for name in names:
        spec, record = FIGURES[name], _record(profile, name)
        t = _tables(profile, spec.tables)
        fig, data = spec.draw(profile, t)
        caption = plots.caption_for(profile, spec.caption(t)) if spec.caption else record["caption"]
        versions[name] = record.get("data_code_version") or record["code_version"]
        png = plots.save_figure(fig, name, data, profile, caption, data_record=record)
        written += [png, png.with_suffix(".pdf"), png.with_suffix(".json")]
    out = plots.figures_dir(profile)
    alone = _alone(profile)
    if alone in names:
        written += report.write_alone(profile, _report_blocks(profile, (versions[alone], code_version()))).values()
    elif (page := report.reembed(out, names)) is not None:
        written.append(page)
    return written


def main(profile_name: str, names: list[str] | None = None) -> int:
    """`cptlib notebook redraw --profile P [--figure NAME]…` (registered by cptlib.study.notebooks)."""
    from cptlib import config

    for path in redraw(config.load_profile(profile_name), names):
        print(f"wrote {paths.shown(path)}")
    return 0
