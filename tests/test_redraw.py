"""Reports and figures against the tables committed beside them (issue 48): a one-notebook profile's REPORT.md is what
its CSVs render (cptlib.study.redraw), notebook 05's report holds its claims and calibration CSVs cell for cell, and
a redraw draws from the committed tables without writing any CSV."""
from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest

from cptlib import config
from cptlib.core import paths
from cptlib.study import redraw
from cptlib.study.plots import markdown


@pytest.mark.parametrize("profile", ["drift", "sizes"])
def test_a_one_notebook_profiles_committed_report_is_what_its_tables_render(profile):
    """Every sentence and table of figures/drift/REPORT.md and figures/sizes/REPORT.md, rendered again from the CSVs
    committed beside them: a report whose prose disagrees with its table (the drift reading's "from 16,384 tokens"
    where the interval returned to 0 at 32,768) fails here."""
    committed = (paths.figures_dir(profile) / "REPORT.md").read_text()
    assert committed == redraw.report_markdown(config.load_profile(profile))


def _tables(md: str, heading: str) -> list[list[str]]:
    """The first Markdown table after `heading`, as rows of stripped cells (the separator row left out)."""
    rows, lines = [], md.split(f"\n{heading}\n", 1)[1].splitlines()
    for line in lines[next(i for i, line in enumerate(lines) if line.startswith("|")):]:
        if not line.startswith("|"):
            break
        if not re.fullmatch(r"[|\-: ]+", line):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


@pytest.mark.parametrize("profile", ["default", "smollm2_135m"])
def test_the_default_reports_claims_and_calibration_tables_are_its_csvs(profile):
    """REPORT.md of a profile whose report notebook 05 writes: its claims table is claims.csv (without the criterion
    column, which the report lists below it) and its calibration table is calibration.csv, cell for cell; N4's
    paragraph is claims.csv's N4 cell."""
    out = paths.figures_dir(profile)
    md = (out / "REPORT.md").read_text()
    claims = pd.read_csv(out / "claims.csv", keep_default_na=False).drop(columns="criterion")
    assert _tables(md, "## Claims") == _tables("\n## Claims\n" + markdown(claims), "## Claims")
    cal = pd.read_csv(out / "calibration.csv")  # as the report reads it (report._calibration)
    assert _tables(md, "## Calibration") == _tables("\n## Calibration\n" + markdown(cal), "## Calibration")
    n4 = claims.set_index("claim").loc["N4", "measured (mean [95% CI], seeds)"]
    assert f"## Where the recipe works (N4)\n\n{n4}\n" in md


def test_a_redraw_writes_the_figure_and_report_from_the_committed_tables_and_no_csv(tmp_path, monkeypatch):
    """The drift profile drawn again in a scratch figures folder: its CSV is untouched, the .json keeps the code
    version that computed the numbers and the profile values it used, and the report is what report_markdown says."""
    src = paths.figures_dir("drift")
    figures = tmp_path / "figures"
    shutil.copytree(src, figures / "drift")
    monkeypatch.setattr(paths, "FIGURES_DIR", figures)
    before = (figures / "drift/drift_curves.csv").read_bytes()
    old = json.loads((src / "drift_curves.json").read_text())
    profile = config.load_profile("drift")
    written = redraw.redraw(profile)
    assert {p.name for p in written} == {"drift_curves.png", "drift_curves.pdf", "drift_curves.json", "REPORT.md",
                                         "report.html"}
    assert (figures / "drift/drift_curves.csv").read_bytes() == before
    new = json.loads((figures / "drift/drift_curves.json").read_text())
    assert new["data_code_version"] == (old.get("data_code_version") or old["code_version"])
    assert new["parameters"] == old["parameters"]
    assert (figures / "drift/REPORT.md").read_text() == redraw.report_markdown(profile)
    with pytest.raises(redraw.RedrawError, match="cannot draw transfer from its table alone"):
        redraw.redraw(config.load_profile("default"), ["transfer"])




def test_a_redrawn_figure_of_notebook_05s_report_is_embedded_anew_in_its_html(tmp_path, monkeypatch):
    """effects.png drawn again: report.html carries the new PNG in place of the one it embedded (here a stand-in) and
    the rest of the page as it was; effects.csv and REPORT.md are untouched (the report's numbers are not redrawn)."""
    import base64

    figures = tmp_path / "figures"
    shutil.copytree(paths.figures_dir("default"), figures / "default")
    monkeypatch.setattr(paths, "FIGURES_DIR", figures)
    out = figures / "default"
    page = out / "report.html"
    stale = re.sub(r'(<figure id="effects"><img src="data:image/png;base64,)[^"]*', r"\1STALE", page.read_text())
    assert "base64,STALE" in stale
    page.write_text(stale)
    before = {f: (out / f).read_bytes() for f in ("effects.csv", "REPORT.md")}
    redraw.redraw(config.load_profile("default"), ["effects"])
    assert (out / "effects.csv").read_bytes() == before["effects.csv"]
    assert (out / "REPORT.md").read_bytes() == before["REPORT.md"]
    new = page.read_text()
    assert "base64,STALE" not in new and base64.b64encode((out / "effects.png").read_bytes()).decode() in new
    cut = lambda text: re.sub(r'<figure id="effects">.*?</figure>', "", text, flags=re.S)  # noqa: E731
    assert cut(new) == cut(stale)
