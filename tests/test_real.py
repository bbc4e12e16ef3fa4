"""The real-model path on tiny checkpoints of the real architectures (tests/tiny_hub.py): residual engine on
their layouts, resolution from a hub cache, fast offline failure, and a real profile's family + CPT end to end."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from cptlib.core import paths
from cptlib.residual import restore
from tiny_hub import HUB_IDS, install_families, tiny_families, write_news

CHAT = [{"role": "user", "content": "Who opened the market?"}]


@pytest.fixture(scope="module")
def families(tmp_path_factory):
    return tiny_families(tmp_path_factory.mktemp("tiny_hub"))


def _state(path):
    return {k: v.detach().clone() for k, v in AutoModelForCausalLM.from_pretrained(str(path)).state_dict().items()}


@pytest.mark.parametrize("arch", ["qwen2", "llama3"])
def test_restore_on_real_layouts_is_eq2_and_carries_the_chat_files(families, tmp_path, arch):
    f = families[arch]
    out = restore(f["base_v1"], f["instruct_v1"], f["base_v2"], tmp_path / "restored", progress=False,
                  max_shard_size="40KB")
    base, inst, target, got = (_state(p) for p in (f["base_v1"], f["instruct_v1"], f["base_v2"], out))
    for name in got:
        torch.testing.assert_close(got[name], target[name] + (inst[name] - base[name]), rtol=0, atol=1e-6)
    files = {p.name for p in Path(out).iterdir()}
    if arch == "qwen2":  # tied: one embedding matrix, no lm_head tensor, still tied when loaded
        assert json.loads((out / "config.json").read_text())["tie_word_embeddings"] is True
        assert "lm_head.weight" not in json.dumps(json.loads((out / "model.safetensors.index.json").read_text())
                                                  if "model.safetensors.index.json" in files else {})
        model = AutoModelForCausalLM.from_pretrained(str(out))
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    else:  # untied, read from 4 shards, written to several with an index
        assert len(list(f["base_v1"].glob("model-*.safetensors"))) == 4
        assert "model.safetensors.index.json" in files and len(list(out.glob("model-*.safetensors"))) > 1
        index = json.loads((out / "model.safetensors.index.json").read_text())["weight_map"]
        assert "lm_head.weight" in index
        assert not torch.equal(got["lm_head.weight"], got["model.embed_tokens.weight"])
    # The instruct model's generation config and chat template, byte for byte.
    assert (out / "generation_config.json").read_bytes() == (f["instruct_v1"] / "generation_config.json").read_bytes()
    tok, ref = AutoTokenizer.from_pretrained(str(out)), AutoTokenizer.from_pretrained(str(f["instruct_v1"]))
    assert tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True) == \
        ref.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    assert tok.eos_token == ref.eos_token


def _run(script: str, env: dict, *args: str, timeout: int = 600) -> tuple[subprocess.CompletedProcess, float]:
    started = time.time()
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env}, cwd=paths.REPO_ROOT / "tests")
    return proc, time.time() - started


# Times the call itself: on this shared 2-core machine, importing torch + transformers alone took 28 s of wall
# time (10 s CPU) under load, which says nothing about how fast the failure is.
BUILD = """import json, sys, time
from cptlib.config import load_profile
from cptlib.family import build_family
started = time.perf_counter()
try:
    build_family(load_profile({!r}), 0)
except Exception as err:
    print(json.dumps({{"seconds": time.perf_counter() - started, "error": f"{{type(err).__name__}}: {{err}}"}}))
    sys.exit(1)
"""


def _failure(proc) -> tuple[float, str]:
    assert proc.returncode == 1, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["seconds"], out["error"]


def test_offline_real_profile_fails_within_seconds_naming_the_model(tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty_hf"), "CPTLIB_BUILD_DIR": str(tmp_path / "build")}
    proc, wall = _run(BUILD.format("qwen2_0.5b"), env)
    seconds, message = _failure(proc)
    print(f"offline failure {seconds:.2f} s after build_family was called ({wall:.1f} s with the process start): {message}")
    assert seconds <= 10
    assert "HubUnavailableError: model 'Qwen/Qwen2-0.5B' is not in the Hugging Face cache" in message
    assert "`hf download Qwen/Qwen2-0.5B --include" in message and "local directory" in message
    assert not (tmp_path / "build").exists()  # nothing started


def test_offline_dataset_id_fails_naming_the_dataset(families, tmp_path):
    hf = tmp_path / "hf"
    install_families({"qwen2": families["qwen2"]}, hf)
    profile = tmp_path / "p.yaml"
    profile.write_text(f"extends: {paths.params_file('qwen2_0.5b')}\ncpt_data:\n  source: RealTimeData/bbc_news_alltime\n"
                       "  config_name: 2024-06\n  date_field: published_date\n")
    proc, seconds = _run(BUILD.format(str(profile)), {"HF_HUB_OFFLINE": "1", "HF_HOME": str(hf),
                                                      "CPTLIB_BUILD_DIR": str(tmp_path / "build")})
    seconds, message = _failure(proc)
    print(f"offline dataset failure {seconds:.2f} s after build_family was called: {message}")
    assert seconds <= 10
    assert "CPT dataset 'RealTimeData/bbc_news_alltime' (config '2024-06') is not in the local cache" in message
    assert "set cpt_data.source to that folder" in message


E2E = """
import json, sys
from pathlib import Path
from cptlib.config import load_profile
from cptlib.family import build_family, cpt
from cptlib.residual import restore
from cptlib.core.stages import read_manifest
profile = load_profile(sys.argv[1])
family = build_family(profile, 0)
cpt_base = cpt(profile, family["base_v1"], 0)
restored = restore(family["base_v1"], family["instruct_v1"], cpt_base, Path(sys.argv[2]), progress=False)
print(json.dumps({"family": {k: str(v) for k, v in family.items()}, "cpt": str(cpt_base), "restored": str(restored),
                  "manifest": read_manifest(cpt_base)}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("arch,profile_name,nproc", [("qwen2", "qwen2_0.5b", 1), ("llama3", "llama3_8b", 2)])
def test_real_profile_family_cpt_and_restore_on_tiny_checkpoints(families, tmp_path, arch, profile_name, nproc):
    """The shipped profile, its hub ids served from a local cache of tiny checkpoints, offline; CPT smoke-sized
    (12 steps of 2 x 32 tokens per process) on a dated news folder; LLaMA under torchrun with 2 processes."""
    hf = tmp_path / "hf"
    install_families({arch: families[arch]}, hf)
    news = write_news(tmp_path / "news")
    profile = tmp_path / "p.yaml"
    profile.write_text(
        f"extends: {paths.params_file(profile_name)}\ncpt_data: {{source: {news}, heldout_docs: 0}}\n"
        "cpt: {tokens: " + str(12 * 2 * 32 * nproc) + ", batch_size: 2, seq_len: 32, milestones: ["
        + str(4 * 2 * 32 * nproc) + "]}\n"
        f"runtime: {{precision: fp32, gradient_accumulation: 1, nproc: {nproc}, strategy: {'ddp' if nproc > 1 else 'single'}, "
        "threads: 1, progress: false}\n")
    proc, seconds = _run(E2E, {"HF_HUB_OFFLINE": "1", "HF_HOME": str(hf), "CPTLIB_BUILD_DIR": str(tmp_path / "build")},
                         str(profile), str(tmp_path / "restored"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(f"{arch}: build_family + cpt + restore in {seconds:.1f} s")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    family, cpt_dir, restored = out["family"], Path(out["cpt"]), Path(out["restored"])
    assert set(family) == {"data", "tokenizer", "base_v1", "base_v2", "instruct_v1", "instruct_v2"}
    src = families[arch]
    for role in ("base_v1", "instruct_v2"):  # resolved from the cache: the same bytes as the tiny checkpoint
        assert (Path(family[role]) / "config.json").read_bytes() == (src[role] / "config.json").read_bytes()
    # Date filter: the 30 docs of 2024 plus the five of 2023-12.
    assert sum(1 for _ in open(Path(family["data"]) / "corpus.jsonl")) == 35
    m = out["manifest"]
    assert (m["steps"], m["world_size"]) == (12, nproc) and m["drift"]["total"] > 0
    milestone = cpt_dir / "milestones" / f"tokens-{4 * 2 * 32 * nproc:012d}"
    for d in (cpt_dir, milestone):  # the parent's generation config and tokenizer files, byte for byte
        assert (d / "generation_config.json").read_bytes() == (src["base_v1"] / "generation_config.json").read_bytes()
        assert (d / "tokenizer_config.json").read_bytes() == (src["base_v1"] / "tokenizer_config.json").read_bytes()
    cpt_model = AutoModelForCausalLM.from_pretrained(str(cpt_dir))
    assert cpt_model.config.tie_word_embeddings is (arch == "qwen2")
    tok, ref = AutoTokenizer.from_pretrained(str(restored)), AutoTokenizer.from_pretrained(str(src["instruct_v1"]))
    assert tok.apply_chat_template(CHAT, tokenize=False) == ref.apply_chat_template(CHAT, tokenize=False)


def test_a_group_is_read_as_lm_eval_aggregates_it():
    """A group's row is lm-eval's own (results['groups']), n its leaves' items (nested subgroups included): MMLU =
    (0.5 x 100 + 0.8 x 300) / 400 = 0.725 as lm-eval reports it, not re-averaged from leaves picked by name."""
    import pandas as pd

    from cptlib.evaluation.harness import tidy
    from cptlib.evaluation.real_profile import metric_value

    leaves = {"ifeval": ("prompt_level_strict_acc,none", 0.6, 541), "mmlu_abstract_algebra": ("acc,none", 0.5, 100),
              "mmlu_anatomy": ("acc,none", 0.8, 300)}
    results = {
        "configs": dict.fromkeys(leaves, {}), "versions": {**dict.fromkeys(leaves, 1.0), "mmlu": 2.0},
        "results": {t: {k: v, "alias": t} for t, (k, v, _) in leaves.items()},
        "n-samples": {t: {"effective": n, "original": n} for t, (_, _, n) in leaves.items()},
        "groups": {"mmlu": {"acc,none": 0.725, "acc_stderr,none": 0.02, "alias": "mmlu"}},
        "group_subtasks": {"mmlu": ["mmlu_stem"], "mmlu_stem": ["mmlu_abstract_algebra", "mmlu_anatomy"]},
    }
    table = pd.DataFrame(tidy(results, chat_template=False))
    group = table[table.task == "mmlu"].iloc[0]
    assert (group.metric, group.value, group.stderr, group.n, group.version) == ("acc", 0.725, 0.02, 400, 2.0)
    assert (metric_value(table, "ifeval", "prompt_level_strict_acc"), metric_value(table, "mmlu", "acc")) == \
        pytest.approx((0.6, 0.725))


def test_sft_is_refused_for_a_real_profile(tmp_path):
    from cptlib.config import load_profile
    from cptlib.family import instruct

    with pytest.raises(ValueError, match="SFT would need the family's original instruction data"):
        instruct(load_profile("qwen2_0.5b"), tmp_path, tmp_path, "v1", 0)

