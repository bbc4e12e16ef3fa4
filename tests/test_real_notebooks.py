"""Real profiles end to end through the study's notebooks, unchanged (issue 7): the shipped llama3_8b profile
(torchrun, 2 DDP processes on CPU; it extends qwen2_0.5b) with its hub ids served offline from a local cache of
tiny checkpoints of the same architectures (tests/tiny_hub.py), CPT smoke-sized on a dated news folder, and
lm-eval tasks of the user's own (eval.include_path) mapped to the study's metrics (eval.metrics) -- the real
tasks' datasets live on the hub, which these machines cannot reach."""
import json
import os
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from cptlib.core import paths
from cptlib.config import ConfigError, load_profile
from cptlib.study.notebooks import NOTEBOOKS

# 07_benchmarks scores the paper's benchmarks (minutes per model): tests/test_benchmarks.py runs it on its own
STUDIED = tuple(nb for nb in NOTEBOOKS if nb != "07_benchmarks")
from tiny_hub import HUB_IDS, install_families, tiny_family, write_local_tasks, write_news

PROFILE = """extends: {base}
cpt_data: {{source: {news}, heldout_docs: 5}}
cpt: {{tokens: {tokens}, batch_size: 2, seq_len: 32, milestones: [{milestone}]}}
runtime: {{precision: fp32, gradient_accumulation: 1, nproc: {nproc}, strategy: {strategy}, threads: 1, progress: false}}
eval:
  tasks: [local_ifeval, local_mc_old, local_mc_news]
  include_path: [{tasks}]
  metrics: {{IF: [local_ifeval, prompt_level_strict_acc], era_a: [local_mc_old, acc], era_b: [local_mc_news, acc]}}
  chat_template_tasks: [local_ifeval]
  max_gen_toks: 16
  batch_size: 4
  dtype: auto
study: {{eval_processes: 1, n4_lrs: [1.0e-3], alphas: [0.0, 1.0], merges: [{{method: task_arithmetic}}, {{method: ties, density: 0.5}}],
         module_subsets: [attention], ranks: [2]}}
"""


# (architecture, shipped profile, training processes): 12 CPT steps of 2 x 32 tokens per process. LLaMA 3 alone: the
# one-process real path through the notebooks, with tied embeddings, is tests/test_released_model.py's (SmolLM2),
# and Qwen2's layout is tests/test_real.py's (restore, and its profile's family + CPT); a Qwen2 case here repeated
# both for ~75 s of every `make test`.
CASES = [("llama3", "llama3_8b", 2)]
N_PARAMS = {"qwen2": 28_416, "llama3": 38_112}  # Qwen2's tied head is stored (and counted) once


@pytest.fixture(scope="module", params=CASES, ids=[c[1] for c in CASES])
def real_study(request, tmp_path_factory):
    """Runs the six notebooks of notebooks/ with `cptlib notebook run` (what `make reproduce` runs), offline."""
    arch, shipped, nproc = request.param
    root = tmp_path_factory.mktemp(f"real_study_{arch}")
    install_families({arch: tiny_family(arch, root / "src")}, root / "hf")
    name = f"real_smoke_{arch}"
    profile = root / f"{name}.yaml"
    profile.write_text(PROFILE.format(base=paths.params_file(shipped), news=write_news(root / "news"),
                                      tasks=write_local_tasks(root / "tasks"), tokens=12 * 64 * nproc,
                                      milestone=4 * 64 * nproc, nproc=nproc, strategy="ddp" if nproc > 1 else "single"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(root / "hf"), "CPTLIB_BUILD_DIR": str(root / "build"),
           "CPTLIB_FIGURES_DIR": str(root / "figures")}
    runs = {}
    for nb in STUDIED:
        proc = subprocess.run([str(paths.REPO_ROOT / ".venv" / "bin" / "cptlib"), "notebook", "run", nb, "--profile",
                               str(profile)], env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{nb}:\n{proc.stderr[-4000:]}"
        runs[nb] = Path(proc.stdout.strip().splitlines()[-1])
    return {"arch": arch, "nproc": nproc, "name": name, "runs": runs, "figures": root / "figures" / name,
            "build": root / "build"}


def _outputs(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
    # what the notebook shows as text: its prints, and its Markdown displays (a Study result's notes, or why a part
    # does not run for the profile)
    return "\n".join(o.get("text", "") if o.get("output_type") == "stream" else o.get("data", {}).get("text/markdown", "")
                     for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.slow
def test_every_notebook_runs_on_the_real_profile_and_skips_the_testbed_only_parts(real_study):
    runs = real_study["runs"]
    assert set(runs) == set(STUDIED) and all(p.is_file() for p in runs.values())
    assert "No calibration targets for real models" in _outputs(runs["00_build"])
    ablations = _outputs(runs["04_ablations"])
    name = real_study["name"]
    assert f"Not run for the profile '{name}' (real models): the sizes are the testbed's model presets" in _outputs(runs["06_sizes"])
    assert f"Not run for the profile '{name}' (real models): the data-shift ablation" in ablations
    forgetting = _outputs(runs["01_forgetting"])
    if real_study["nproc"] > 1:  # the torchrun job's Trainer logs, streamed into the notebook
        assert "'loss':" in forgetting and "'learning_rate':" in forgetting
    assert "CPT(base_v1)+SFT needs the family's original instruction data" in _outputs(runs["02_recipes"])
    for nb in ("03_transfer", "05_report"):
        _outputs(runs[nb])


@pytest.mark.slow
def test_real_profile_figures_and_tables(real_study):
    out, ids = real_study["figures"], HUB_IDS[real_study["arch"]]
    for figure in ("forgetting", "n4_map", "recipes", "costs", "transfer", "ablations", "residual_norms"):
        assert (out / f"{figure}.png").is_file() and (out / f"{figure}.csv").is_file()
        record = json.loads((out / f"{figure}.json").read_text())
        assert record["caption"].startswith(f"Real models: {ids['base_v1']} / {ids['instruct_v1']} (v1)")
    assert not (out / "sizes.png").exists() and not (out / "shift.png").exists()
    family = pd.read_csv(out / "family.csv")
    assert list(family.member) == ["base_v1", "base_v2", "instruct_v1", "instruct_v2"]
    assert list(family.source) == [ids[m] for m in family.member]
    assert (family.n_params == N_PARAMS[real_study["arch"]]).all()
    recipes = pd.read_csv(out / "recipes.csv")
    assert list(recipes.recipe) == ["base_v1", "instruct_v1", "CPT(base_v1)", "CPT(instruct_v1)", "CPT(base_v1)+Θr(v1)"]  # no SFT
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
    # LLaMA-3 base (and CPT of it) has no chat template: its IFEval prompts run as plain text, and say so.
    chat = {row["chat_template"] for t in tables for row in t if row["task"] == "local_ifeval"}
    assert chat == ({True, False} if real_study["arch"] == "llama3" else {True})


@pytest.mark.slow
def test_real_profile_claims_mark_the_testbed_only_ones(real_study):
    claims = pd.read_csv(real_study["figures"] / "claims.csv").set_index("claim")
    assert list(claims.index) == ["C1", "C2", "C3", "C4", "C5", "C6", "Q1", "Q2", "Q3", "N1", "N2", "N3", "N4"]
    for claim in ("C5", "C6", "Q1", "N2"):
        assert claims.loc[claim, "in kind"] == "not run (testbed only)"
    assert claims.loc["N1", "in kind"] == "not run"  # the profile names no other family
    report = (real_study["figures"] / "REPORT.md").read_text()
    assert f"Real models: {HUB_IDS[real_study['arch']]['base_v1']}" in report and "Synthetic testbed" not in report


def test_the_study_metrics_of_both_suites_are_the_one_map():
    from cptlib.evaluation.suite import METRICS
    from cptlib.metrics import METRICS as STUDY

    assert tuple(METRICS) == tuple(STUDY)  # the testbed's columns; a real profile's scores table has the same


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
    from cptlib.family.released import CORPUS, HELDOUT, corpus_stage
    from cptlib.evaluation.real_profile import heldout_task

    profile = tmp_path / "p.yaml"
    profile.write_text(f"extends: {paths.params_file('qwen2_0.5b')}\ncpt_data: {{source: {write_news(tmp_path / 'news')}, "
                       "heldout_docs: 5}\n")
    data = corpus_stage(load_profile(profile))
    train = [json.loads(line)["text"] for line in open(data / CORPUS)]
    held = [json.loads(line)["text"] for line in open(data / HELDOUT)]
    assert (len(train), len(held)) == (30, 5) and not set(train) & set(held)  # 35 docs in the date window
    from lm_eval.tasks._yaml_loader import load_yaml

    task = load_yaml(heldout_task(data) / "cpt_heldout.yaml", resolve_func=False)  # its includes resolved, as lm-eval
    assert str((data / HELDOUT).resolve()) in str(task["dataset_kwargs"]) and task["output_type"] == "loglikelihood_rolling"

