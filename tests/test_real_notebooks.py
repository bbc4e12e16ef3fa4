"""A real profile end to end through the study's notebooks, unchanged (issue 7): the shipped qwen2_0.5b profile
with its hub ids served offline from a local cache of tiny Qwen2 checkpoints (tests/tiny_hub.py), CPT
smoke-sized on a dated news folder, and lm-eval tasks of the user's own (eval.include_path) mapped to the
study's metrics (eval.metrics) -- the real tasks' datasets live on the hub, which these machines cannot reach."""
import json
import os
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from cptlib import paths
from cptlib.config import ConfigError, load_profile
from cptlib.notebooks import NOTEBOOKS
from tiny_hub import install_families, tiny_family, write_local_tasks, write_news

PROFILE = """extends: {base}
cpt_data: {{source: {news}, heldout_docs: 5}}
cpt: {{tokens: 768, batch_size: 2, seq_len: 32, milestones: [256]}}
runtime: {{precision: fp32, gradient_accumulation: 1, nproc: 1, strategy: single, threads: 1, progress: false}}
eval:
  tasks: [local_ifeval, local_mc_old, local_mc_news]
  include_path: [{tasks}]
  metrics: {{IF: [local_ifeval, prompt_level_strict_acc], era_a: [local_mc_old, acc], era_b: [local_mc_news, acc]}}
  chat_template_tasks: [local_ifeval]
  max_gen_toks: 16
  batch_size: 4
  dtype: auto
study: {{n4_lrs: [1.0e-3], alphas: [0.0, 1.0], merges: [{{method: task_arithmetic}}, {{method: ties, density: 0.5}}],
         module_subsets: [attention], ranks: [2]}}
"""


@pytest.fixture(scope="module")
def real_study(tmp_path_factory):
    """Runs the six notebooks of notebooks/ with `cptlib notebook run` (what `make reproduce` runs), offline."""
    root = tmp_path_factory.mktemp("real_study")
    install_families({"qwen2": tiny_family("qwen2", root / "src")}, root / "hf")
    profile = root / "real_smoke.yaml"
    profile.write_text(PROFILE.format(base=paths.params_file("qwen2_0.5b"), news=write_news(root / "news"),
                                      tasks=write_local_tasks(root / "tasks")))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(root / "hf"), "CPTLIB_BUILD_DIR": str(root / "build"),
           "CPTLIB_FIGURES_DIR": str(root / "figures")}
    runs = {}
    for name in NOTEBOOKS:
        proc = subprocess.run([str(paths.REPO_ROOT / ".venv" / "bin" / "cptlib"), "notebook", "run", name, "--profile",
                               str(profile)], env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{name}:\n{proc.stderr[-4000:]}"
        runs[name] = Path(proc.stdout.strip().splitlines()[-1])
    return {"runs": runs, "figures": root / "figures" / "real_smoke", "build": root / "build", "profile": profile}


def _outputs(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
    return "\n".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream")


@pytest.mark.slow
def test_every_notebook_runs_on_the_real_profile_and_skips_the_testbed_only_parts(real_study):
    runs = real_study["runs"]
    assert set(runs) == set(NOTEBOOKS) and all(p.is_file() for p in runs.values())
    assert "No calibration targets for real models" in _outputs(runs["00_build"])
    ablations = _outputs(runs["04_ablations"])
    assert "Not run for the real profile 'real_smoke': the sizes are the testbed's model presets" in ablations
    assert "Not run for the real profile 'real_smoke': the data-shift ablation" in ablations
    for name in ("01_forgetting", "02_recipes", "03_transfer", "05_report"):
        _outputs(runs[name])


@pytest.mark.slow
def test_real_profile_figures_and_tables(real_study):
    out = real_study["figures"]
    for figure in ("forgetting", "n4_map", "recipes", "costs", "transfer", "ablations", "residual_norms"):
        assert (out / f"{figure}.png").is_file() and (out / f"{figure}.csv").is_file()
        record = json.loads((out / f"{figure}.json").read_text())
        assert record["caption"].startswith("Real models: Qwen/Qwen2-0.5B / Qwen/Qwen2-0.5B-Instruct (v1)")
    assert not (out / "sizes.png").exists() and not (out / "shift.png").exists()
    family = pd.read_csv(out / "family.csv")
    assert list(family.member) == ["base_v1", "base_v2", "instruct_v1", "instruct_v2"]
    assert set(family.source) == {"Qwen/Qwen2-0.5B", "Qwen/Qwen2.5-0.5B", "Qwen/Qwen2-0.5B-Instruct",
                                  "Qwen/Qwen2.5-0.5B-Instruct"}
    assert (family.n_params == 28416).all()  # tied embeddings counted once, as the checkpoint stores them
    recipes = pd.read_csv(out / "recipes.csv")
    assert list(recipes.recipe) == ["base_v1", "instruct_v1", "CPT(instruct_v1)", "CPT(base_v1)+Θr(v1)"]  # no SFT
    calib = pd.read_csv(out / "calibration.csv")
    assert set(calib.metric) == {"IF", "era_a", "era_b", "bpb_b"}  # the mapped metrics + the held-out CPT text
    for metric in ("IF", "era_a", "era_b"):
        assert calib[calib.metric == metric].value.between(0, 1).all()
    bpb = calib[calib.metric == "bpb_b"].set_index("model").value
    assert (bpb > 0).all() and bpb.notna().all()


@pytest.mark.slow
def test_real_profile_scores_come_from_lm_eval_on_the_mapped_tasks(real_study):
    """The study's numbers are the lm-eval results of the mapped tasks (cached eval stages), not re-derived."""
    tables = [json.loads(p.read_text()) for p in (real_study["build"] / "stages").glob("eval-*/table.json")]
    tasks = {row["task"] for t in tables for row in t}
    assert tasks == {"local_ifeval", "local_mc_old", "local_mc_news", "cpt_heldout"}
    calib = pd.read_csv(real_study["figures"] / "calibration.csv")
    era_a = calib[(calib.metric == "era_a")].value
    values = {row["value"] for t in tables for row in t if row["task"] == "local_mc_old" and row["metric"] == "acc"}
    assert set(era_a) <= values


@pytest.mark.slow
def test_real_profile_claims_mark_the_testbed_only_ones(real_study):
    claims = pd.read_csv(real_study["figures"] / "claims.csv").set_index("claim")
    assert list(claims.index) == ["C1", "C2", "C3", "C4", "C5", "C6", "Q1", "Q2", "Q3", "N1", "N2", "N3", "N4"]
    for claim in ("C5", "C6", "Q1", "N2"):
        assert claims.loc[claim, "verdict"] == "not run (testbed only)"
    assert claims.loc["N1", "verdict"] == "not run"  # the profile names no other family
    report = (real_study["figures"] / "REPORT.md").read_text()
    assert "Real models: Qwen/Qwen2-0.5B" in report and "Synthetic testbed" not in report


def test_other_family_needs_its_instruct_model(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text(f"extends: {paths.params_file('qwen2_0.5b')}\nmodels: {{other_family: org/other-0.5B}}\n")
    with pytest.raises(ConfigError, match="other_family and models.other_instruct go together"):
        load_profile(profile)


@pytest.mark.parametrize("metrics,message", [
    ("{news: [ifeval, acc]}", r"unknown study metric\(s\) \['news'\]"),
    ("{era_b: [news_qa, acc]}", r"maps \{'era_b': 'news_qa'\} to task\(s\) not in eval.tasks"),
])
def test_eval_metrics_are_checked(tmp_path, metrics, message):
    profile = tmp_path / "p.yaml"
    profile.write_text(f"extends: {paths.params_file('qwen2_0.5b')}\neval: {{metrics: {metrics}}}\n")
    with pytest.raises(ConfigError, match=message):
        load_profile(profile)


def test_heldout_documents_are_not_trained_on(tmp_path, monkeypatch):
    """cpt_data.heldout_docs: the last N documents go to heldout.jsonl and the cpt_heldout task, not the corpus."""
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path / "build")
    from cptlib.real import CORPUS, HELDOUT, corpus_stage, heldout_task

    profile = tmp_path / "p.yaml"
    profile.write_text(f"extends: {paths.params_file('qwen2_0.5b')}\ncpt_data: {{source: {write_news(tmp_path / 'news')}, "
                       "heldout_docs: 5}\n")
    data = corpus_stage(load_profile(profile))
    train = [json.loads(line)["text"] for line in open(data / CORPUS)]
    held = [json.loads(line)["text"] for line in open(data / HELDOUT)]
    assert (len(train), len(held)) == (30, 5) and not set(train) & set(held)  # 35 docs in the date window
    task = (heldout_task(data) / "cpt_heldout.yaml").read_text()
    assert str((data / HELDOUT).resolve()) in task and "loglikelihood_rolling" in task
