"""The study's notebooks: committed clean, parameters that match the profiles, and every notebook run under the
smoke profile through the papermill runner (one session fixture), with the figures, tables and report checked."""
import ast
import json
import os
import re
import shutil
import subprocess
import sys

import nbformat
import pandas as pd
import pytest

from cptlib.core import paths

from cptlib.study import notebooks
from cptlib.config import load_profile
from cptlib.study.notebooks import NOTEBOOKS, NotebookError

# 07_benchmarks scores the paper's benchmarks (minutes per model): tests/test_benchmarks.py runs it on its own
STUDIED = tuple(nb for nb in NOTEBOOKS if nb != "07_benchmarks")

VERDICTS = ("reproduced", "partly", "not reproduced", "inconclusive", "answered", "not testable", "not run")  # each may add "(why)"


def _read(name):
    return nbformat.read(paths.NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)


def _parameters_cell(nb):
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    return tagged[0]


def _calls(nb) -> list[str]:
    """The code cells after the parameters and setup cells."""
    cell = _parameters_cell(nb)
    return [c.source for c in nb.cells[nb.cells.index(cell) + 2:] if c.cell_type == "code"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_code_cell_is_one_call_of_the_study_and_none_is_conditional(name):
    """Issue 47: a notebook cell is one call of cptlib.study.Study (its result shows its table and figure), not
    analysis, plotting or `if RUN:` (a part that does not run shows why: its result's reason)."""
    from cptlib.study import Study

    calls = _calls(_read(name))
    assert calls, f"{name}: no cell after the setup cell"
    for source in calls:
        body = ast.parse(source).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Call), (name, source)
        assert "if RUN" not in source and not any(isinstance(n, ast.If) for n in ast.walk(body[0])), (name, source)
        method = re.fullmatch(r"study\.(\w+)\(\)(\.save\(\))?", source.strip())
        assert method and callable(getattr(Study, method[1], None)), (name, source)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_no_outputs_and_uses_the_cptlib_kernel(name):
    nb = _read(name)
    assert nb.metadata.kernelspec.name == "cptlib"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_and_setup_cells_are_the_same_in_every_notebook(name):
    nb = _read(name)
    cell = _parameters_cell(nb)
    assert cell.source == notebooks.PARAMETERS_SOURCE, "run `.venv/bin/cptlib notebook sync`"
    assert nb.cells[nb.cells.index(cell) + 1].source == notebooks.setup_source()
    names = [stmt.targets[0].id for stmt in ast.parse(cell.source).body]
    assert names == list(notebooks.PARAMETERS)
    assert notebooks.declared_parameters(paths.NOTEBOOKS_DIR / f"{name}.ipynb") == set(notebooks.PARAMETERS)


@pytest.mark.parametrize("profile", sorted(p.stem for p in paths.PARAMS_DIR.glob("*.yaml")))
def test_every_params_file_is_a_valid_notebook_profile(profile):
    assert notebooks.configure(profile).name == profile


def _stand_in(tmp_path, name, body='raise RuntimeError("boom from the notebook")', extra_parameter=None):
    """A notebook with the real parameters and setup cells and one code cell of its own."""
    src = notebooks.PARAMETERS_SOURCE + (f"\n{extra_parameter} = 1" if extra_parameter else "")
    params = nbformat.v4.new_code_cell(src)
    params.metadata["tags"] = ["parameters"]
    cells = [params, nbformat.v4.new_code_cell(notebooks.setup_source()), nbformat.v4.new_code_cell(body)]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "cptlib", "display_name": "cptlib",
                                                                        "language": "python"}})
    (tmp_path / "nbs").mkdir(exist_ok=True)
    nbformat.write(nb, tmp_path / "nbs" / f"{name}.ipynb")
    return tmp_path / "nbs" / f"{name}.ipynb"


def test_a_notebook_with_other_parameters_is_an_error_naming_it(tmp_path):
    nb = _stand_in(tmp_path, "01_forgetting", body="pass", extra_parameter="world_seed")
    with pytest.raises(NotebookError, match=r"01_forgetting.ipynb: its parameters are overrides, profile, run_name, "
                                            r"world_seed, expected profile, overrides, run_name; run `cptlib notebook sync`"):
        notebooks.check_parameters(nb)


def test_overrides_are_validated_and_name_their_own_run():
    cfg = notebooks.configure("smoke", {"cpt.lr": 3e-4, "study": {"alphas": [1.0]}})
    assert cfg.cpt.lr == 3e-4 and cfg.study.alphas == [1.0] and cfg.name.startswith("smoke-") and cfg.release == "smoke"
    assert cfg.name == notebooks.configure("smoke", {"cpt.lr": 3e-4, "study": {"alphas": [1.0]}}).name  # stable
    assert notebooks.configure("smoke", {"cpt.lr": 3e-4}, run_name="mine").name == "mine"
    with pytest.raises(NotebookError, match=r"smoke.yaml with overrides \{'cpt.lre': 0.0003\}: unknown key 'cpt.lre' \(did you mean 'cpt.lr'\?\)"):
        notebooks.configure("smoke", {"cpt.lre": 3e-4})
    with pytest.raises(NotebookError, match=r"run name 'default' is the name of the profile params/default.yaml"):
        notebooks.configure("smoke", {"cpt.lr": 3e-4}, run_name="default")
    with pytest.raises(NotebookError, match=r"profile keys extends, world .*-p profile <name>"):
        notebooks.configure("default", namespace={"extends": "default", "world": {"n_people": 3}, "model": "a loop var"})
    assert notebooks.configure("default", namespace={"model": "a loop variable of a later cell"}).name == "default"
    with pytest.raises(NotebookError, match="received the profile keys train_seeds as parameters"):
        notebooks.configure("smoke", namespace={"train_seeds": [1, 2]})  # papermill -f with top-level keys only


def test_a_truncated_notebook_is_one_error_naming_the_file(tmp_path):
    nb = _stand_in(tmp_path, "01_forgetting", body="pass")
    nb.write_text(nb.read_text()[:300])
    with pytest.raises(NotebookError, match=rf"{nb}: not a notebook \(invalid JSON: .*\); restore it with `git "
                                            r"checkout -- .*01_forgetting.ipynb`"):
        notebooks.check_parameters(nb)


def test_two_runs_of_one_notebook_at_once_both_finish_and_keep_the_stage_log(tmp_path):
    """They used to delete each other's partial stage log (one shared name): `cptlib cost` then saw no stage."""
    body = ("from cptlib.core.stages import run_stage\nimport time\n"
            "run_stage('demo', {'n': 1}, lambda work: time.sleep(2) or {})\ntime.sleep(1)")
    _stand_in(tmp_path, "00_build", body=body)
    env = {**os.environ, "CPTLIB_NOTEBOOKS_DIR": str(tmp_path / "nbs"), "CPTLIB_BUILD_DIR": str(tmp_path / "build")}
    cmd = [sys.executable, "-m", "cptlib.cli", "notebook", "run", "00_build", "--profile", "smoke"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    out = tmp_path / "build" / "smoke" / "notebooks"
    events = [json.loads(line) for line in (out / "00_build.stages.jsonl").read_text().splitlines()]
    assert events and {e["event"] for e in events} <= {"built", "waited", "reused"}
    assert sorted(f.name for f in out.iterdir()) == ["00_build.ipynb", "00_build.stages.jsonl", "00_build.time.json"]


def test_a_notebook_shows_its_stages_prints_and_warnings_but_no_library_progress_bar(tmp_path):
    """A stage built in the kernel drew every library's progress bar (lm-eval's pass disable= explicitly) as red stderr
    text: ~100 stderr outputs per smoke run, where a warning would hide. Prints and warnings still show."""
    body = ("import sys\nsys.path.insert(0, %r)\nfrom _pool_jobs import chatty\nfrom cptlib.core import pool\n"
            "from tqdm.auto import tqdm\nfor _ in tqdm(range(3), desc='kernel bar'): pass\n"
            "pool.build([(chatty, ('a',))], processes=2)  # one stage to build: in this process" % str(paths.REPO_ROOT / "tests"))
    _stand_in(tmp_path, "00_build", body=body)
    env = {**os.environ, "CPTLIB_NOTEBOOKS_DIR": str(tmp_path / "nbs"), "CPTLIB_BUILD_DIR": str(tmp_path / "build")}
    proc = subprocess.run([sys.executable, "-m", "cptlib.cli", "notebook", "run", "00_build", "--profile", "smoke"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    nb = nbformat.read(tmp_path / "build" / "smoke" / "notebooks" / "00_build.ipynb", as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = {name: "".join(o.get("text", "") for o in outputs if o.get("name") == name) for name in ("stdout", "stderr")}
    assert "chatty a prints to stdout" in text["stdout"], text
    assert "UserWarning: chatty a warns" in text["stderr"], text  # a warning still shows
    assert "bar" not in text["stdout"] + text["stderr"] and "%|" not in text["stdout"] + text["stderr"], text
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)


def test_ctrl_c_during_make_is_one_line_naming_the_make_command_that_resumes(tmp_path):
    """Ctrl-C (SIGINT to make's process group) while a notebook's workers build: cptlib's line names the make command
    the user typed (it said "the same command", an inner `cptlib notebook run` the user never typed); no executed
    notebook and no worker process is left."""
    import signal
    import time

    body = ("import sys\nsys.path.insert(0, %r)\nfrom _pool_jobs import sleepy\nfrom cptlib.core import pool\n"
            "pool.build([(sleepy, ('a',)), (sleepy, ('b',))], processes=2)" % str(paths.REPO_ROOT / "tests"))
    _stand_in(tmp_path, "00_build", body=body)
    env = {**os.environ, "CPTLIB_NOTEBOOKS_DIR": str(tmp_path / "nbs")}
    env.pop("CPTLIB_RESUME", None)
    target = tmp_path / "build" / "smoke" / "notebooks" / "00_build.ipynb"
    proc = subprocess.Popen(["make", "-C", str(paths.REPO_ROOT), "reproduce", "PROFILE=smoke",
                             f"CPTLIB_BUILD_DIR={tmp_path / 'build'}"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    for line in proc.stdout:  # the kernel runs the cell that starts the workers
        if line.startswith("building 2 stages"):
            break
    time.sleep(3)
    assert proc.poll() is None, "make ended before the interrupt: the workers' start was seen too late to interrupt them"
    os.killpg(proc.pid, signal.SIGINT)
    started = time.time()
    _, stderr = proc.communicate(timeout=200)
    # The kernel's process group is killed at once (~1 s here, beside other jobs); a worker left sleeping would hold
    # make's output open for its 180 s (before: 16 s on a quiet machine, and once no end within 120 s under load).
    assert time.time() - started < 30
    assert proc.returncode != 0
    lines = [line for line in stderr.splitlines() if line.startswith("cptlib ")]
    assert lines == [f"cptlib notebook: interrupted; finished stages are kept, and `make reproduce PROFILE=smoke "
                     f"CPTLIB_BUILD_DIR={tmp_path / 'build'}` resumes from them"], stderr[-3000:]
    # Nothing else from the notebook machinery: no "Kernel died while waiting for execute reply" (the kill is ours),
    # no ipykernel warning about TCP (the kernel talks over local sockets of its own).
    noise = [line for line in stderr.splitlines() if "Kernel" in line or "Traceback" in line or "zmq" in line.lower()]
    assert noise == [], noise
    assert not target.exists() and not list(target.parent.glob("*.ipynb"))
    time.sleep(2)
    left = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split()
    assert left == [], left


@pytest.fixture
def stand_in_env(tmp_path, monkeypatch):
    _stand_in(tmp_path, "00_build")
    monkeypatch.setattr(paths, "NOTEBOOKS_DIR", tmp_path / "nbs")
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path / "build")
    return tmp_path


def test_failing_notebook_raises_and_leaves_no_executed_output(stand_in_env):
    with pytest.raises(NotebookError, match=r"00_build.ipynb failed for profile 'smoke' .*RuntimeError: boom") as err:
        notebooks.run("00_build", "smoke")
    assert "\x1b[" not in str(err.value) and "boom" in str(err.value).split("\n", 1)[1]  # the traceback, no colour codes
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
    return [notebooks.run(name, "smoke") for name in STUDIED]


@pytest.mark.slow
def test_every_notebook_runs_under_smoke(smoke_study):
    for path in smoke_study:
        nb = nbformat.read(path, as_version=4)
        assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
    assert set(notebooks.run_times("smoke")) == set(STUDIED)


@pytest.mark.slow
def test_every_figure_is_shown_where_it_is_drawn_and_no_cell_writes_to_stderr(smoke_study):
    """Each cell that saves a figure shows it (an image/png output, in the executed notebook as in JupyterLab), and
    a clean run prints no warning, traceback or library progress bar (no stderr stream): counted per executed
    notebook."""
    from cptlib.study import Study

    shown = {}
    for path in smoke_study:
        nb = nbformat.read(path, as_version=4)
        cells = [c for c in nb.cells if c.cell_type == "code"]
        drawing = [c for c in cells if re.search(rf"study\.({'|'.join(Study.FIGURES)})\(\)", c.source)]
        images = [c for c in drawing if any("image/png" in o.get("data", {}) for o in c.outputs)]
        stderr = [o.get("text", "")[:200] for c in cells for o in c.outputs if o.get("name") == "stderr"]
        assert stderr == [], (path.name, stderr)
        shown[path.stem] = (len(images), len(drawing))
    assert all(n == total for n, total in shown.values()), shown
    assert sum(n for n, _ in shown.values()) >= 9, shown  # forgetting, n4, recipes, costs, transfer, ablations, ...


@pytest.mark.slow
@pytest.mark.parametrize("figure", ["effects", "forgetting", "n4_map", "recipes", "costs", "transfer", "ablations",
                                    "sizes", "shift", "residual_norms"])
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
def test_every_interval_holds_its_mean_and_stays_in_range_and_every_score_names_its_evaluation(smoke_study):
    """The one aggregation rule: mean with a t-interval over seeds + items, never outside [0, 1]; each
    tidy table names the evaluation (stage) behind each row."""
    out = paths.figures_dir("smoke")
    for name in ["forgetting", "recipes", "transfer"]:
        data = pd.read_csv(out / f"{name}.csv")
        widths = []
        for m in ["IF", "era_a", "era_b"]:
            rows = data[data[m].notna()]
            assert (rows[f"{m}_lo"] <= rows[m] + 1e-12).all() and (rows[m] <= rows[f"{m}_hi"] + 1e-12).all(), (name, m)
            assert rows[f"{m}_lo"].between(0, 1).all() and rows[f"{m}_hi"].between(0, 1).all(), (name, m)
            widths += list(rows[f"{m}_hi"] - rows[f"{m}_lo"])
        assert max(widths) > 0, name  # the items give an interval even for 1 seed (smoke's IF is 0 everywhere)
    for name in ["n4_map", "ablations", "shift"]:  # the ablations' summary: one evaluation per seed, joined by ";"
        evals = [e for joined in pd.read_csv(out / f"{name}.csv")["eval"] for e in joined.split(";")]
        assert all((paths.stages_dir() / e / "cptlib_manifest.json").is_file() for e in evals), name
    effects = pd.read_csv(out / "effects.csv")
    assert {"claim", "quantity", "mean", "lo", "hi", "n_seeds", "rule", "met", "verdict", "paper_lo",
            "paper_hi"} <= set(effects.columns)
    assert {"C1", "C2", "C3", "C4", "C6", "N1"} <= set(effects.claim)


@pytest.mark.slow
def test_calibration_table_columns(smoke_study):
    table = pd.read_csv(paths.figures_dir("smoke") / "calibration.csv")
    assert list(table.columns) == ["metric", "model", "value", "target", "met", "n", "n_seeds"]
    assert set(table[table.model.str.startswith("cpt_")].n_seeds) == {len(load_profile("smoke").train_seeds)}
    assert {"base_v1", "instruct_v1", "cpt_base_v1", "other_family"} <= set(table.model)
    ladder = pd.read_csv(paths.figures_dir("smoke") / "ladder_calibration.csv")  # the other sizes: notebook 06's
    assert {"base_v1", "instruct_v1", "base_v1 (mini)", "instruct_v1 (mini)"} <= set(ladder.model)
    assert {"residual norm / base norm", "CPT drift / residual norm", "news register shift",
            "pretrain tokens / CPT tokens", "era-A via chat"} <= set(table.metric)


@pytest.mark.slow
def test_claims_table_covers_every_claim_with_a_verdict(smoke_study):
    table = pd.read_csv(paths.figures_dir("smoke") / "claims.csv")
    assert list(table.claim) == ["C1", "C2", "C3", "C4", "C5", "C6", "Q1", "Q2", "Q3", "N1", "N2", "N3", "N4"]
    assert all(label.split(" (")[0] in VERDICTS for label in table["in kind"]), list(table["in kind"])
    assert table.why.notna().all()
    assert table["in size"].notna().all()  # yes / no against the paper, or why it is not judged
    assert table.criterion.str.len().min() > 20


@pytest.mark.slow
def test_report_markdown_and_self_contained_html(smoke_study):
    out = paths.figures_dir("smoke")
    md = (out / "REPORT.md").read_text()
    assert re.search(r"\| in kind +\| in size +\|", md)  # the claims table (to_markdown pads its cells)
    for part in ["## Claims at a glance", "![effects](effects.png)", "## Headline figures", "## Claims",
                 "## Calibration", "## Run time per notebook", "reused stages' original build", "## Provenance",
                 "PyTorch kernels", "Synthetic testbed", "crossed"]:
        assert part in md
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') >= 4
    assert 'src="http' not in page and "src='http" not in page


@pytest.mark.slow
def test_second_run_of_a_notebook_trains_and_evaluates_nothing(smoke_study):
    before = set(paths.stages_dir().iterdir())
    notebooks.run("02_recipes", "smoke")
    assert set(paths.stages_dir().iterdir()) == before


def _papermill(nb, out, *args, env):
    """papermill's own command line, as a user would call it on a notebook."""
    exe = os.path.join(os.path.dirname(sys.executable), "papermill")
    return subprocess.run([exe, str(nb), str(out), "-k", "cptlib", *args], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_papermill_called_directly_with_a_profile_or_refused_with_its_file(tmp_path):
    nb = _stand_in(tmp_path, "00_build", body="print('RUN', study.profile.name, study.profile.world.n_people)")
    env = {**os.environ, "CPTLIB_BUILD_DIR": str(tmp_path / "build")}
    ok = _papermill(nb, tmp_path / "ok.ipynb", "-p", "profile", "smoke", env=env)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert f"RUN smoke {load_profile('smoke').world.n_people}" in (tmp_path / "ok.ipynb").read_text()
    bad = _papermill(nb, tmp_path / "bad.ipynb", "-f", str(paths.params_file("smoke")), env=env)
    assert bad.returncode != 0
    assert "received the profile keys" in bad.stdout + bad.stderr and "-p profile <name>" in bad.stdout + bad.stderr


@pytest.mark.slow
def test_a_run_with_changed_parameters_never_writes_the_committed_figures(tmp_path):
    """A user changing cpt.lr (as in JupyterLab, here through papermill) gets their own folder; a run of the shipped
    profile outside `make reproduce` writes to build/<profile>/figures/; figures/default/ stays byte-identical."""
    committed = paths.REPO_ROOT / "figures" / "default"
    before = {p.name: p.read_bytes() for p in committed.iterdir()}
    nb = _stand_in(tmp_path, "01_forgetting", body="import pandas as pd\nfrom cptlib.study import plots\n"
                   "print('OUT', plots.save_table(pd.DataFrame({'x': [1]}), 'probe', study.profile).parent)")
    env = {k: v for k, v in os.environ.items() if k != "CPTLIB_FIGURES_DIR"} | {"CPTLIB_BUILD_DIR": str(tmp_path / "build")}
    cfg = notebooks.configure("default", {"cpt.lr": 3e-4})
    own = paths.REPO_ROOT / "figures" / cfg.name
    try:
        changed = _papermill(nb, tmp_path / "a.ipynb", "-p", "profile", "default", "-y", "overrides: {cpt.lr: 0.0003}",
                             env=env | {"CPTLIB_PUBLISH": "1"})
        assert changed.returncode == 0, changed.stderr[-3000:]
        assert f"OUT {own}" in (tmp_path / "a.ipynb").read_text() and (own / "probe.csv").is_file()
        plain = _papermill(nb, tmp_path / "b.ipynb", "-p", "profile", "default", env=env)
        assert plain.returncode == 0, plain.stderr[-3000:]
        assert f"OUT {tmp_path / 'build' / 'default' / 'figures'}" in (tmp_path / "b.ipynb").read_text()
    finally:
        shutil.rmtree(own, ignore_errors=True)
    assert {p.name: p.read_bytes() for p in committed.iterdir()} == before


def test_an_unknown_kernel_is_one_error_listing_the_registered_ones():
    with pytest.raises(NotebookError, match=r"no Jupyter kernel named 'nope'; registered kernels: .*cptlib"):
        notebooks.run("00_build", "smoke", kernel="nope")


def test_describing_a_run_creates_no_folder(tmp_path, monkeypatch):
    """The setup cell names where outputs go; only writing a figure creates the folder (an override run that fails
    early left an empty figures/smoke-<hash>/ before)."""
    from cptlib.config import load_with_overrides
    from cptlib.study import plots

    monkeypatch.setattr(paths, "FIGURES_DIR", tmp_path / "figures")
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path / "build")
    cfg = load_with_overrides("smoke", {"cpt.lr": 1e-4})
    assert "figures: " in notebooks.describe(cfg)
    assert not (tmp_path / "figures").exists() and not (tmp_path / "build").exists()
    plots.save_table(pd.DataFrame({"a": [1]}), "demo", cfg)
    assert (tmp_path / "figures" / cfg.name / "demo.csv").is_file()


@pytest.mark.slow
def test_a_profile_of_the_ladder_alone_runs_06_and_reports_c5_and_q1(smoke_study):
    """params/sizes.yaml's shape (`notebooks: [06_sizes]`) on the smoke ladder: notebook 06 writes its own report
    with C5 and Q1, the trend figure, the calibration per size and the fits (cached stages: seconds)."""
    notebooks.run("06_sizes", "smoke", overrides={"notebooks": ["06_sizes"]}, run_name="smoke-ladder")
    out = paths.figures_dir("smoke-ladder")
    report = (out / "REPORT.md").read_text()
    assert "(the size ladder: Q1, C5)" in report and re.search(r"\| C5 +\|", report) and re.search(r"\| Q1 +\|", report)
    assert "![sizes](sizes.png)" in report and "Sizes left out of the primary fits: **tiny**" in report
    assert {"ladder", "scaling", "ladder_calibration", "ladder_claims", "sizes"} <= {p.stem for p in out.glob("*.csv")}
    fits = pd.read_csv(out / "scaling.csv")
    assert set(fits.fit_on) == {"all sizes"} and set(fits.claim) == {"C5", "Q1"}  # no smoke size meets calibration


def test_a_parameter_the_notebook_does_not_have_is_an_error_naming_the_close_one():
    """papermill injects `-p profil smoke` as a variable and only warns: the run went on with the default profile."""
    injected = ["", notebooks.PARAMETERS_SOURCE, '# Parameters\nprofil = "smoke"\nrun_name = "mine"\n']
    with pytest.raises(NotebookError) as err:
        notebooks.configure("default", namespace={"In": injected, "profil": "smoke"})
    assert str(err.value) == ("this notebook received the parameter 'profil' (did you mean 'profile'?), which it does "
                              "not have (papermill only warns, and the run would go on with profile 'default'); its "
                              "parameters are profile, overrides, run_name: e.g. `papermill <nb> <out> -p profile smoke`")
    assert notebooks.configure("smoke", namespace={"In": ["", notebooks.PARAMETERS_SOURCE,
                                                          '# Parameters\nprofile = "smoke"\n']}).name == "smoke"


def test_papermill_with_a_misspelt_parameter_stops_before_any_work(tmp_path):
    """The same through papermill's own command: it exits non-zero, the executed notebook shows the error in the setup
    cell, the notebook's own code never ran, and no stage or build folder of the default profile was started."""
    nb = _stand_in(tmp_path, "01_forgetting", body="print('the notebook ran for', study.profile.name)")
    env = {**os.environ, "CPTLIB_BUILD_DIR": str(tmp_path / "build")}
    proc = subprocess.run([str(paths.REPO_ROOT / ".venv" / "bin" / "papermill"), str(nb), str(tmp_path / "out.ipynb"),
                           "-p", "profil", "smoke", "-k", notebooks.KERNEL], capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 1
    assert "NotebookError: this notebook received the parameter 'profil' (did you mean 'profile'?)" in proc.stderr
    outputs = json.dumps([c.get("outputs") for c in json.loads((tmp_path / "out.ipynb").read_text())["cells"]])
    assert "the notebook ran for" not in outputs and "did you mean 'profile'" in outputs
    assert not (tmp_path / "build").exists()


def test_an_override_given_twice_with_two_values_is_refused():
    """`--set cpt.lr=3e-4 ... --set cpt.lr=1e-3` (an edited command line) ran with the last value, unnoticed."""
    with pytest.raises(NotebookError) as err:
        notebooks.parse_overrides(["cpt.lr=3e-4", "train_seeds=[0]", "cpt.lr=1e-3"])
    assert str(err.value) == "--set cpt.lr is given twice (0.0003, then 0.001); give it once"
    assert notebooks.parse_overrides(["cpt.lr=3e-4", "cpt.lr=3.0e-4"]) == {"cpt.lr": 3e-4}


@pytest.mark.slow
def test_the_drift_notebook_judges_the_claims_across_the_regime_on_item_level_evaluations(smoke_study, monkeypatch):
    """Notebook 08 writes the claims across the regime. smoke's grid lies outside the regime (its CPT drifts several
    times ‖Θr‖), so it judges no cell; with the bound lifted, every cell is judged on its real evaluations' items."""
    import math

    from cptlib.study import drift

    out = paths.figures_dir("smoke")
    assert pd.read_csv(out / "drift_across.csv").claim.tolist() == list(drift.REGIME_CLAIMS)
    table = pd.read_csv(out / "drift_cells.csv")
    assert set(table[table.tokens == 0].model) == set(drift.ANCESTORS)  # C2 reads base_v1 at every seed
    monkeypatch.setattr(drift, "REGIME_DRIFT", math.inf)
    per_cell = drift.regime(table, drift.validity(load_profile("smoke")))
    cells = table[table.lr.notna()][["lr", "tokens"]].drop_duplicates()
    assert len(per_cell) == 3 * len(cells) and per_cell.outcome.map(lambda o: o.startswith(VERDICTS)).all()
    c2 = per_cell[per_cell.claim == "C2"].measured
    assert c2.str.contains(r"Δ era-A = base_v1 − CPT\(base_v1\) [+-]\d\.\d{3} \[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]").all()
