"""The notebooks' API (cptlib.study.api) on the smoke profile, real stages and real figures: what a result holds,
what save() writes, how a cell shows it, and a part that does not run showing why instead of raising."""
import json

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from matplotlib.figure import Figure

from cptlib.core import paths
from cptlib.study import Study, experiments, figures, plots
from cptlib.study.api import Result
from cptlib.study.notebooks import NotebookError


@pytest.fixture(scope="module")
def study():
    return Study("smoke")


def _shown(result) -> list[dict]:
    """What a notebook cell whose last line is `result` displays: its outputs' data, as Jupyter receives them."""
    shell = InteractiveShell.instance()
    plots.show_inline(shell)  # as the notebook's kernel does: a Figure is shown as a PNG
    with capture_output() as captured:
        result._ipython_display_()
    return [o.data for o in captured.outputs]


@pytest.mark.slow
def test_a_result_holds_its_table_and_figure_and_saves_them_where_the_notebook_did(study):
    r = study.recipes()
    assert isinstance(r, Result) and r.ran and r.reason is None and study.recipes() is r  # computed once per Study
    assert isinstance(r.table, pd.DataFrame) and set(r.table.recipe) >= {"instruct_v1", "CPT(base_v1)+Θr(v1)"}
    assert {"IF", "IF_lo", "IF_hi", "n_seeds"} <= set(r.table.columns)
    assert isinstance(r.figure(), Figure) and r.figure() is r.figure()
    assert r.save() is r
    out = plots.figures_dir(study.profile)
    md = (out / "recipes.md").read_text()
    assert r.table_caption.startswith("C3 (CPT base + residual ≈ instruct, news kept); mean and 95% CI")
    assert md.startswith(plots.caption_for(study.profile, r.table_caption) + "\n\n")
    assert plots.markdown(r.table) in md  # the table as the notebook saved it, under its caption
    record = json.loads((out / "recipes.json").read_text())  # the figure's, written after the table's
    assert record["caption"] == plots.caption_for(study.profile, figures.RECIPES_CAPTION)
    assert record["parameters"]["cpt"]["lr"] == study.profile.cpt.lr and (out / "recipes.png").is_file()


@pytest.mark.slow
def test_costs_write_their_table_once_and_the_figure_beside_it(study):
    r = study.costs().save()
    out = plots.figures_dir(study.profile)
    saved = pd.read_csv(out / "costs.csv")
    assert list(saved["step after CPT"]) == list(r.table["step after CPT"]) and len(saved) == len(r.table)
    assert set(saved["step after CPT"]) == {"none", "SFT", "add Θr"}  # one row per recipe: the mean over seeds
    record = json.loads((out / "costs.json").read_text())
    assert record["table"] == "costs" and record["caption"].endswith(figures.COSTS_CAPTION + ".")


@pytest.mark.slow
def test_a_cell_whose_last_line_is_the_result_shows_its_notes_tables_and_figure(study):
    shown = _shown(study.calibration())
    assert "calibration targets met" in shown[0]["text/markdown"]  # the summary, then the missed rows and the table
    assert any("text/html" in d and "<table" in d["text/html"] for d in shown[1:])
    shown = _shown(study.forgetting())
    assert "text/html" in shown[0] and "image/png" in shown[-1]  # the curve, then the figure


def test_a_part_that_does_not_run_shows_its_reason_instead_of_raising(study):
    r = study.benchmark_scores()  # the paper's benchmarks: English, so a real profile's alone
    assert not r.ran and r.reason == experiments.why_not(study.profile, "benchmarks") and r.reason
    assert r.figure() is None and r.table.empty and r.save() is r
    assert not (plots.figures_dir(study.profile) / "benchmark_scores.csv").exists()
    shown = _shown(r)
    assert shown == [{"text/plain": "<IPython.core.display.Markdown object>",
                      "text/markdown": f"Not run for the profile 'smoke' (synthetic testbed): {r.reason}."}]
    assert r.reason in repr(r)
    # a part this profile reports elsewhere: its reason names where
    assert "05_report" in study.ladder_report().reason and not study.ladder_report().save().ran


def test_a_misspelt_override_is_one_error_naming_it_and_the_close_key():
    with pytest.raises(NotebookError, match=r"unknown key 'cpt.lre' \(did you mean 'cpt.lr'\?\)"):
        Study("smoke", {"cpt.lre": 3e-4})


def test_every_figure_method_draws_with_a_caption_from_the_package():
    """Study.FIGURES names real methods, and each notebook figure's caption is a constant of cptlib.study.figures (or
    the effects figure's of cptlib.study.report), not text in a notebook."""
    assert all(callable(getattr(Study, m, None)) for m in Study.FIGURES)
    for nb in paths.NOTEBOOKS_DIR.glob("*.ipynb"):
        assert "caption" not in nb.read_text(), nb.name
