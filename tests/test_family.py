"""The smoke profile's family end to end, as `make ancestors` trains it: every member a complete model directory
with its provenance; trained again from scratch, it equals the released ancestors committed in models/smoke/."""
import json

import pytest
from transformers import AutoModelForCausalLM

from cptlib.core import paths
from cptlib.config import load_profile
from cptlib.family import MEMBERS, cpt, train_family
from cptlib.tokenizer import load_tokenizer

MODEL_FILES = {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
               "tokenizer_config.json", "chat_template.jinja", "cptlib_manifest.json"}


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    build = tmp_path_factory.mktemp("build")
    mp = pytest.MonkeyPatch()
    mp.setattr(paths, "BUILD_DIR", build)
    profile = load_profile("smoke")
    yield profile, train_family(profile, seed=0)
    mp.undo()


@pytest.mark.slow
def test_every_member_is_a_complete_model_directory(family):
    _, members = family
    for name in MEMBERS:
        files = {p.name for p in members[name].iterdir()}
        assert MODEL_FILES <= files, (name, MODEL_FILES - files)
        AutoModelForCausalLM.from_pretrained(str(members[name]), local_files_only=True)


@pytest.mark.slow
def test_manifests_record_parent_data_tokens_drift_and_versions(family):
    profile, members = family
    manifest = {n: json.loads((members[n] / "cptlib_manifest.json").read_text()) for n in MEMBERS}
    assert manifest["base_v1"]["parent"] is None and manifest["base_v1"]["drift"] is None
    assert manifest["base_v1"]["tokens"] == profile.pretrain.tokens
    assert manifest["base_v2"]["parent"] == str(members["base_v1"])
    assert manifest["instruct_v1"]["parent"] == str(members["base_v1"])
    assert manifest["instruct_v2"]["parent"] == str(members["base_v2"])
    assert manifest["instruct_v1"]["spec"]["train"] == profile.sft.model_dump(mode="json")
    for name in ("base_v2", "instruct_v1", "instruct_v2"):
        assert 0 < manifest[name]["drift"]["total"] < 10
    for m in manifest.values():
        assert len(m["spec"]["data"]) == 64  # sha256 of the training file
        assert {"code_version", "libraries"} <= set(m["provenance"])
        assert m["provenance"]["libraries"]["transformers"]
    # other_family: same recipe as base_v1, another initialisation and data order.
    assert manifest["other_family"]["spec"]["seed"] != manifest["base_v1"]["spec"]["seed"]
    assert manifest["other_family"]["spec"]["train"] == manifest["base_v1"]["spec"]["train"]
    assert manifest["other_instruct"]["parent"] == str(members["other_family"])
    assert manifest["other_instruct"]["spec"]["train"] == manifest["instruct_v1"]["spec"]["train"]


@pytest.mark.slow
def test_rebuilding_reuses_every_stage_and_cpt_saves_milestones(family):
    profile, members = family
    assert train_family(profile, seed=0) == members
    out = cpt(profile, members["base_v1"], seed=0)
    milestones = sorted(p.name for p in (out / "milestones").iterdir())
    assert milestones == [f"tokens-{t:012d}" for t in profile.cpt.milestones]
    tok = load_tokenizer(out)
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                   add_generation_prompt=True).endswith("<|assistant|>\n")


@pytest.mark.slow
def test_base_seed_shares_the_bases_and_varies_sft(family):
    profile, members = family
    shared = profile.model_copy(update={"base_seed": 0, "instruct_seed": None})  # each seed its own SFT
    seed1 = train_family(shared, seed=1)
    for name in ("base_v1", "base_v2", "other_family"):
        assert seed1[name] == members[name]  # reused: no pre-training ran
    assert seed1["instruct_v1"] != members["instruct_v1"]
    assert json.loads((seed1["instruct_v1"] / "cptlib_manifest.json").read_text())["spec"]["seed"] == 1


@pytest.mark.slow
def test_instruct_seed_shares_the_instruct_models_too(family):
    profile, members = family
    shared = profile.model_copy(update={"base_seed": 0, "instruct_seed": 0})
    assert train_family(shared, seed=2) == members  # the paper's setting: one base, one instruct model
