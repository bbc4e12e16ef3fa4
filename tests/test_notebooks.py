"""The study's notebooks: committed clean, parameters that match the profiles, and every notebook run under the
smoke profile through the papermill runner (one session fixture), with the figures, tables and report checked."""
import ast
import json
import os
import subprocess

import nbformat
import pandas as pd
import pytest

from cptlib import notebooks, paths
from cptlib.config import Profile
from cptlib.notebooks import NOTEBOOKS, NotebookError

VERDICTS = {"reproduced", "partly", "not reproduced", "answered", "not tested (one size)", "not tested (one corpus)"}


def _read(name):
    return nbformat.read(paths.NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)


def _parameters_cell(nb):
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    return tagged[0]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_no_outputs_and_uses_the_cptlib_kernel(name):
    nb = _read(name)
    assert nb.metadata.kernelspec.name == "cptlib"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_cell_holds_plain_literals_of_every_profile_key(name):
    cell = _parameters_cell(_read(name))
    names = []
    for stmt in ast.parse(cell.source).body:
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
        ast.literal_eval(stmt.value)  # raises on anything but a plain value
        names.append(stmt.targets[0].id)
    assert names == list(Profile.model_fields)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_cell_defaults_are_the_default_profile(name):
    assert _parameters_cell(_read(name)).source == notebooks.parameters_source("default"), \
        "run `.venv/bin/cptlib notebook sync` after changing params/default.yaml"


@pytest.mark.parametrize("profile", sorted(p.stem for p in paths.PARAMS_DIR.glob("*.yaml")))
def test_every_key_of_every_params_file_is_a_notebook_parameter(profile):
    params, keys = notebooks.profile_parameters(profile)
    for name in NOTEBOOKS:
        notebooks.check_parameters(notebooks.notebook_path(name), keys | set(params))


def _stand_in(tmp_path, name, drop=(), body='raise RuntimeError("boom from the notebook")'):
    """A copy of a notebook's parameters cell (minus `drop`) and one code cell."""
    src = _parameters_cell(_read(name)).source
    kept = "\n".join(line for line in src.splitlines() if line.split(" = ")[0] not in drop)
    params = nbformat.v4.new_code_cell(kept)
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(body)],
                                  metadata={"kernelspec": {"name": "cptlib", "display_name": "cptlib", "language": "python"}})
    (tmp_path / "nbs").mkdir(exist_ok=True)
    nbformat.write(nb, tmp_path / "nbs" / f"{name}.ipynb")
    return tmp_path / "nbs" / f"{name}.ipynb"


def test_unknown_parameter_is_an_error_naming_key_and_notebook(tmp_path):
    nb = _stand_in(tmp_path, "01_forgetting", drop=("study",), body="pass")
    params, keys = notebooks.profile_parameters("smoke")
    with pytest.raises(NotebookError, match=r"01_forgetting.ipynb: unknown parameter 'study'"):
        notebooks.check_parameters(nb, keys | set(params))
    with pytest.raises(NotebookError, match=r"unknown parameter 'world_sed' \(did you mean 'world_seed'\?\)"):
        notebooks.check_parameters(notebooks.notebook_path("01_forgetting"), {"world_sed"})


@pytest.fixture
def stand_in_env(tmp_path, monkeypatch):
    _stand_in(tmp_path, "00_build")
    monkeypatch.setattr(paths, "NOTEBOOKS_DIR", tmp_path / "nbs")
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path / "build")
    return tmp_path


def test_failing_notebook_raises_and_leaves_no_executed_output(stand_in_env):
    with pytest.raises(NotebookError, match=r"00_build.ipynb failed for profile 'smoke' .*RuntimeError: boom"):
        notebooks.run("00_build", "smoke")
    out = stand_in_env / "build" / "smoke" / "notebooks"
    assert list(out.iterdir()) == []


def test_failing_notebook_fails_make_and_leaves_no_output(stand_in_env):
    env = {**os.environ, "CPTLIB_NOTEBOOKS_DIR": str(stand_in_env / "nbs"), "CPTLIB_BUILD_DIR": str(stand_in_env / "build")}
    target = stand_in_env / "build" / "smoke" / "notebooks" / "00_build.ipynb"
    proc = subprocess.run(["make", "-C", str(paths.REPO_ROOT), str(target), "PROFILE=smoke"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "boom from the notebook" in proc.stderr
    assert not target.exists() and not list(target.parent.glob("*.ipynb"))


@pytest.fixture(scope="session")
def smoke_study():
    """Every notebook, in order, under the smoke profile (cached stages make a rerun quick)."""
    return [notebooks.run(name, "smoke") for name in NOTEBOOKS]


@pytest.mark.slow
def test_every_notebook_runs_under_smoke(smoke_study):
    for path in smoke_study:
        nb = nbformat.read(path, as_version=4)
        assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
    assert set(notebooks.run_times("smoke")) == set(NOTEBOOKS)


@pytest.mark.slow
@pytest.mark.parametrize("figure", ["forgetting", "n4_map", "recipes", "costs", "transfer", "ablations", "sizes",
                                    "shift", "residual_norms"])
def test_figure_has_png_200dpi_pdf_without_date_csv_and_provenance(smoke_study, figure):
    from PIL import Image

    out = paths.figures_dir("smoke")
    assert Image.open(out / f"{figure}.png").info["dpi"][0] >= 199.9
    assert b"CreationDate" not in (out / f"{figure}.pdf").read_bytes()
    data = pd.read_csv(out / f"{figure}.csv")
    assert len(data) > 0
    prov = json.loads((out / f"{figure}.json").read_text())
    assert prov["profile"] == "smoke" and prov["code_version"] and "torch" in prov["libraries"]
    assert prov["parameters"]["name"] == "smoke" and "Synthetic testbed" in prov["caption"]
    assert prov["columns"] == list(data.columns)


@pytest.mark.slow
def test_accuracies_in_the_figures_are_fractions(smoke_study):
    out = paths.figures_dir("smoke")
    for name in ["forgetting", "recipes", "transfer", "n4_map", "ablations"]:
        data = pd.read_csv(out / f"{name}.csv")
        for m in ["IF", "knowledge", "era_a", "era_b"]:
            if m in data:
                assert data[m].between(0, 1).all(), (name, m)


@pytest.mark.slow
def test_calibration_table_columns(smoke_study):
    table = pd.read_csv(paths.figures_dir("smoke") / "calibration.csv")
    assert list(table.columns) == ["metric", "model", "value", "target", "met", "n"]
    assert {"base_v1", "instruct_v1", "cpt_base_v1", "other_family", "base_v1 (mini)"} <= set(table.model)
    assert {"residual norm / base norm", "CPT drift / residual norm", "news register shift",
            "pretrain tokens / CPT tokens", "era-A via chat"} <= set(table.metric)


@pytest.mark.slow
def test_claims_table_covers_every_claim_with_a_verdict(smoke_study):
    table = pd.read_csv(paths.figures_dir("smoke") / "claims.csv")
    assert list(table.claim) == ["C1", "C2", "C3", "C4", "C5", "C6", "Q1", "Q2", "Q3", "N1", "N2", "N3", "N4"]
    assert set(table.verdict) <= VERDICTS
    assert table.criterion.str.len().min() > 20


@pytest.mark.slow
def test_report_markdown_and_self_contained_html(smoke_study):
    out = paths.figures_dir("smoke")
    md = (out / "REPORT.md").read_text()
    for part in ["## Headline figures", "## Claims", "## Calibration", "## Run time per notebook", "Synthetic testbed"]:
        assert part in md
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') >= 4
    assert 'src="http' not in page and "src='http" not in page


@pytest.mark.slow
def test_second_run_of_a_notebook_trains_and_evaluates_nothing(smoke_study):
    before = set(paths.stages_dir().iterdir())
    notebooks.run("02_recipes", "smoke")
    assert set(paths.stages_dir().iterdir()) == before
