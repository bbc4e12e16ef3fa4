"""The real pair (params/gemma3_270m_pair.yaml, docs/real_pair.md) through its notebooks, on a tiny Gemma 3 base laid
out as its release (tests/tiny_hub.py), offline: SFT here in Gemma's turn format, CPT of base and instruct, the restored
model, CPT(base)+SFT, the suite's scores on the world's in-context probes, the claims and the report."""
import json
import os
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from transformers import AutoTokenizer

from cptlib.config import load_profile
from cptlib.core import paths
from tiny_hub import tiny_gemma_base

PROFILE = """extends: {base}
models: {{base_v1: {model}, instruct_v1: sft, base_v2: null, instruct_v2: null, chat_template: gemma}}
model: {{max_len: 2048}}
world: {{n_people: 8, n_orgs: 4, n_cities: 4, n_prizes: 4, n_news: 4, news_mentions: 3, n_sft_v1: 8, n_sft_v2: 1,
        n_eval_ifeval: 3, n_eval_knowledge: 3, n_eval_mc_old: 4, n_eval_heldout_docs: 2}}
sft: {{epochs: 1, batch_size: 4, max_len: 2048}}
cpt_data: {{source: 'testbed:corpus_b.jsonl', heldout_docs: 2}}
cpt: {{tokens: 512, batch_size: 2, seq_len: 64, milestones: [256]}}
eval: {{limit: 2, max_gen_toks: 16, benchmarks: {{bench_arc_easy: 4, bench_hellaswag: 4, bench_piqa: 4}}}}
runtime: {{precision: fp32, threads: 1, progress: false, sft_logits: labelled}}
study: {{eval_processes: 1}}
notebooks: [00_build, 01_forgetting, 02_recipes, 07_benchmarks, 05_report]
"""
CHAT = [{"role": "user", "content": "Who opened the market?"}]


@pytest.fixture(scope="module")
def pair_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("pair_study")
    profile = root / "pair_smoke.yaml"
    profile.write_text(PROFILE.format(base=paths.params_file("gemma3_270m_pair"), model=tiny_gemma_base(root / "hub")))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CPTLIB_BUILD_DIR": str(root / "build"),
           "CPTLIB_FIGURES_DIR": str(root / "figures")}
    runs = {}
    for nb in load_profile(profile).notebooks:
        proc = subprocess.run([str(paths.REPO_ROOT / ".venv" / "bin" / "cptlib"), "notebook", "run", nb, "--profile",
                               str(profile)], env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{nb}:\n{proc.stderr[-4000:]}"
        runs[nb] = Path(proc.stdout.strip().splitlines()[-1])
    return {"runs": runs, "figures": root / "figures" / "pair_smoke", "stages": root / "build" / "stages"}


@pytest.mark.slow
def test_the_pairs_instruct_model_chats_in_gemmas_turns_and_stops_at_the_end_of_a_turn(pair_study):
    """SFT of a base without a chat template writes the profile's turn format into the checkpoint, and its
    end-of-turn token becomes a stop token beside eos; CPT(base)+SFT and the restored model chat the same way."""
    sfts = [d for d in pair_study["stages"].glob("sft-*") if not d.name.endswith((".partial", ".lock"))]
    assert len(sfts) == 3  # instruct_v1, and CPT(base_v1)+SFT for each of the profile's two seeds
    for d in sfts:
        tok = AutoTokenizer.from_pretrained(str(d))
        assert tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True) == (
            "<bos><start_of_turn>user\nWho opened the market?<end_of_turn>\n<start_of_turn>model\n")
        eos = json.loads((d / "generation_config.json").read_text())["eos_token_id"]
        assert eos == [tok.convert_tokens_to_ids("<eos>"), tok.convert_tokens_to_ids("<end_of_turn>")]


@pytest.mark.slow
def test_the_real_pair_runs_the_sft_recipe_and_judges_c3_and_c6(pair_study):
    """A profile that trains its own instruct model runs CPT(base_v1)+SFT beside the restored model (C3's baseline)
    and costs it (C6), where a profile of released instruct models cannot."""
    for run in pair_study["runs"].values():
        nb = nbformat.read(run, as_version=4)
        assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
    out = pair_study["figures"]
    recipes = pd.read_csv(out / "recipes.csv")
    assert list(dict.fromkeys(recipes.recipe)) == ["base_v1", "instruct_v1", "CPT(base_v1)", "CPT(instruct_v1)",
                                                   "CPT(base_v1)+SFT", "CPT(base_v1)+Θr(v1)",
                                                   "CPT(base_v1)+Θr(v1) as PEFT adapter"]
    for metric in ("IF", "era_b", "knowledge"):
        assert recipes[metric].between(0, 1).all(), metric
    assert "SFT" in set(pd.read_csv(out / "costs.csv")["step after CPT"])
    effects = pd.read_csv(out / "effects.csv").set_index("quantity")
    # the full-rank adapter carries Θr (with the instruct model's norms): shown beside the merged model, not judged
    assert effects.loc["ΔIF PEFT adapter vs merged Θr", "met"] == "shown, not judged"
    for half in ("era-B MC", "era-B in chat"):  # C3's news halves (calibration log runs 21-22)
        assert f"Δ {half} vs CPT(base_v1)+SFT" in effects.index and f"Δ {half} vs instruct_v1" in effects.index
    claims = pd.read_csv(out / "claims.csv").set_index("claim")
    for claim in ("C1", "C3", "C6"):
        assert not claims.loc[claim, "in kind"].startswith(("not run", "not testable")), (claim, claims.loc[claim])
    assert "its SFT here on the world's in-context instruction data" in (out / "REPORT.md").read_text()


@pytest.mark.slow
def test_the_pairs_report_judges_the_sfts_own_targets_from_its_table(pair_study):
    """instruct_v1 trained here has run 21's targets: its IF gain over base_v1 and what it costs the benchmarks, each
    with its paired interval, saved as sft_targets.csv and rendered into the report from it."""
    out = pair_study["figures"]
    targets = pd.read_csv(out / "sft_targets.csv")
    assert targets.rule.tolist() == ["≥ +0.30", "≥ −0.03"]
    assert (targets.lo <= targets.value).all() and (targets.value <= targets.hi).all()
    assert targets.n_items.tolist()[1] == 12  # 4 items of each of the three benchmarks (the profile sets each)
    assert targets.met.tolist() == [v >= 0.30 for v in targets.value[:1]] + [targets.value[1] >= -0.03]
    report = (out / "REPORT.md").read_text()
    row = targets.iloc[0]
    assert "### The SFT's targets" in report and f"{row.value:+.3f} [{row.lo:+.3f}, {row.hi:+.3f}]" in report
