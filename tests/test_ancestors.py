"""The released testbed ancestors (cptlib.family.ancestors): rebuilt from scratch they equal the committed models/smoke/;
the study resolves them only after checking every hash, the recipe and the training data; every fault is one
error that names the file and `make ancestors`."""
import json
import shutil

import pytest
from safetensors.torch import load_file

from cptlib.core import paths

from cptlib.family import ancestors
from cptlib.family.ancestors import AncestorError
from cptlib.config import load_profile
from cptlib.family import build_family, cpt
from cptlib.core.provenance import cpu
from cptlib.core.stages import read_manifest

COMMITTED = paths.REPO_ROOT / "models" / "smoke"
# Across CPUs whose fp32 kernels differ (AVX2 vs AVX-512) training is not bitwise reproducible; the smoke
# recipe's few hundred steps then move weights by rounding-sized amounts. Bitwise is asserted on the machine
# kind that built the release (the CPU features recorded in each release.json).
CROSS_CPU_ATOL = 1e-3


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    """models/smoke/ built again from nothing: fresh stages, fresh export."""
    root = tmp_path_factory.mktemp("rebuild")
    mp = pytest.MonkeyPatch()
    mp.setattr(paths, "BUILD_DIR", root / "build")
    mp.setattr(paths, "MODELS_DIR", root / "models")
    profile = load_profile("smoke")
    data, stages = ancestors.train_members(profile)
    ancestors.export(profile, data, stages, "make ancestors PROFILE=smoke")
    yield profile, root / "models" / "smoke"
    mp.undo()


@pytest.fixture()
def release_copy(tmp_path, monkeypatch):
    """A writable copy of the committed smoke release, resolved from there (stages in tmp_path too)."""
    shutil.copytree(COMMITTED, tmp_path / "models" / "smoke")
    monkeypatch.setattr(paths, "MODELS_DIR", tmp_path / "models")
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path / "build")
    return load_profile("smoke"), tmp_path / "models" / "smoke"


@pytest.mark.slow
def test_rebuilt_smoke_ancestors_equal_the_committed_ones(rebuilt):
    profile, out = rebuilt
    members = ancestors.member_names(profile)
    assert "sizes/mini/base_v1" in members and "sizes/mini/instruct_v1" in members
    for member in members:
        new, old = (json.loads((d / member / "release.json").read_text()) for d in (out, COMMITTED))
        assert new["recipe"] == old["recipe"] and new["training_data"] == old["training_data"], member
        assert set(new["files"]) == set(old["files"]), member
        trained_on = old["trained"].get("reused_from", old)["built"]["cpu"]  # a re-export keeps who trained it
        if cpu()["features"] == trained_on["features"]:
            assert new["files"] == old["files"], f"{member}: not bitwise equal to the committed release"
        else:  # another machine kind: the same weights up to rounding
            a = load_file(str(out / member / "model.safetensors"))
            b = load_file(str(COMMITTED / member / "model.safetensors"))
            assert max((a[k] - b[k]).abs().max().item() for k in a) <= CROSS_CPU_ATOL, member


def test_release_records_hashes_recipe_data_and_who_built_it():
    index = json.loads((COMMITTED / "release.json").read_text())
    assert index["command"] == "make ancestors PROFILE=smoke"
    assert len(index["built"]["code_version"]) >= 12 and "-dirty" not in index["built"]["code_version"]
    assert {"model", "features"} <= set(index["built"]["cpu"])
    inst = json.loads((COMMITTED / "instruct_v1" / "release.json").read_text())
    assert inst["parent"] == "base_v1" and 0 < inst["trained"]["drift"]["total"] < 1
    assert set(inst["files"]) >= {"model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja",
                                  "generation_config.json"}
    assert inst["recipe"]["runtime"] == {"bf16": False, "compile": False}  # numerics pinned: fp32 everywhere


def test_no_released_checkpoint_carries_a_generation_cap_and_export_drops_a_stages_cap(tmp_path):
    """A checkpoint's `max_new_tokens` would win over lm-eval's `max_gen_toks` in transformers (issue 35): none of
    the committed members carries one, and a release made from a stage that still holds one drops it alone."""
    configs = sorted((paths.REPO_ROOT / "models").rglob("generation_config.json"))  # committed (not a fixture's copy)
    assert len(configs) >= 16
    capped = [str(c) for c in configs if "max_new_tokens" in json.loads(c.read_text())]
    assert not capped, capped
    config = tmp_path / "generation_config.json"
    config.write_text(json.dumps({"bos_token_id": 1, "do_sample": False, "max_new_tokens": 128}, indent=2))
    ancestors._drop_generation_cap(config)
    assert json.loads(config.read_text()) == {"bos_token_id": 1, "do_sample": False}


def test_the_study_resolves_verified_members_as_released_checkpoints(release_copy):
    profile, _ = release_copy
    family = build_family(profile, seed=0)
    for member in ("base_v1", "instruct_v1", "base_v2", "instruct_v2", "other_family", "other_instruct"):
        m = read_manifest(family[member])
        assert m["kind"] == "resolved" and m["source"] == f"{paths.MODELS_DIR}/smoke/{member}"
        assert m["released"]["member"] == member
    assert read_manifest(family["instruct_v1"])["drift"]["total"] > 0  # the release's record, for the drift ratio
    # copies, not links: writing through a stage's files can never change the committed release
    assert not any(f.is_symlink() for m in ("base_v1", "instruct_v1") for f in family[m].iterdir())
    out = cpt(profile, family["base_v1"], seed=0)  # CPT from a resolved ancestor, as from a real checkpoint
    assert read_manifest(out)["parent"] == str(family["base_v1"])
    with pytest.raises(AncestorError, match=r"training seed 1 has no released ancestors.*add 1 to train_seeds"):
        build_family(profile, seed=1)  # a paired release: seed s's own ancestors, and smoke releases seed 0 only


def test_an_altered_weight_file_is_refused_naming_it_and_the_fix(release_copy):
    profile, release = release_copy
    weights = release / "instruct_v1" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(AncestorError, match=r"instruct_v1/model.safetensors does not match the sha256 in .*"
                                            r"release.json.*make ancestors PROFILE=smoke"):
        build_family(profile, seed=0)
    assert not list(paths.stages_dir().glob("lm-*"))  # nothing trained on it


def test_a_missing_member_is_refused_never_retrained(release_copy):
    profile, release = release_copy
    shutil.rmtree(release / "base_v2")
    with pytest.raises(AncestorError, match=r"released ancestor .*smoke/base_v2 is missing .*make ancestors "
                                            r"PROFILE=smoke.*released_ancestors: false"):
        build_family(profile, seed=0)
    assert not list(paths.stages_dir().glob("pretrain-*"))


def test_another_recipe_or_other_training_data_is_refused_naming_what_differs(release_copy):
    profile, _ = release_copy
    other = profile.model_copy(update={"sft": profile.sft.model_copy(update={"lr": 1e-2})})
    with pytest.raises(AncestorError, match=r"built from another recipe .*differs in: sft.lr\)"):
        build_family(other, seed=0)
    world = profile.model_copy(update={"world": profile.world.model_copy(update={"mentions_a1": 4})})
    with pytest.raises(AncestorError, match=r"differs in: testbed file corpus_a1.jsonl\)"):
        build_family(world, seed=0)


def test_a_profile_without_a_release_says_how_to_make_one(release_copy, monkeypatch):
    profile, _ = release_copy
    renamed = profile.model_copy(update={"name": "mine"})
    with pytest.raises(AncestorError, match=r"models/mine/base_v1 is missing .*make ancestors PROFILE=mine"):
        build_family(renamed, seed=0)


def test_a_profile_extending_a_released_one_is_told_to_name_its_release(release_copy, tmp_path):
    """A profile file of one's own that `extends: smoke` has no models/<its name>/: the hint names `release: smoke`
    (it advised only the hours-long `make ancestors` of the child before); with it, the child resolves smoke's."""
    child = tmp_path / "mine.yaml"
    child.write_text("extends: smoke\ncpt: {lr: 3.0e-4}\n")
    with pytest.raises(AncestorError, match=r"models/mine/base_v1 is missing.*its recipe is the one models/smoke/ was "
                                            r"released from: add `release: smoke` to the profile .*or rebuild them "
                                            r"with `make ancestors PROFILE=mine`"):
        ancestors.verify(load_profile(child), "base_v1")
    child.write_text("extends: smoke\nrelease: smoke\ncpt: {lr: 3.0e-4}\n")
    assert ancestors.verify(load_profile(child), "base_v1")["member"] == "base_v1"


def test_a_rebuild_with_reuse_trains_only_what_changed(release_copy):
    """`make ancestors REUSE=1`: the committed members become exactly the stages a from-scratch build reuses, so
    nothing trains; with a new SFT recipe the bases are reused and the first stage left to train is an SFT; the
    new release.json says which release each reused member came from."""
    from cptlib.family.build import testbed_data, tokenizer_stage
    from cptlib.core.stages import Unfinished, probe

    profile, folder = release_copy
    tokenizer_stage(profile, testbed_data(profile))  # data and tokenizer are rebuilt (seconds), never shipped
    assert ancestors.reuse_release(profile) == ancestors.member_names(profile)
    with probe():  # raises Unfinished for any stage that would have to be trained
        data, stages = ancestors.train_members(profile)
    for member, stage in stages.items():
        release = json.loads((folder / member / "release.json").read_text())
        assert read_manifest(stage)["key"] == release["trained"]["key"]
        assert read_manifest(stage)["reused_from"]["release"] == paths.shown(folder / member)
        assert load_file(stage / "model.safetensors").keys() == load_file(folder / member / "model.safetensors").keys()
    ancestors.export(profile, data, stages, "make ancestors PROFILE=smoke REUSE=1")
    base = json.loads((folder / "base_v1" / "release.json").read_text())
    assert base["trained"]["reused_from"]["release"] == paths.shown(folder / "base_v1")
    assert ancestors.reuse_release(profile) == []  # already stages: nothing to do

    other = profile.model_copy(update={"sft": profile.sft.model_copy(update={"lr": profile.sft.lr / 2})})
    with probe(), pytest.raises(Unfinished) as left:
        ancestors.train_members(other)
    assert left.value.kind == "sft"


def test_reuse_refuses_an_altered_member(release_copy):
    profile, folder = release_copy
    weights = folder / "instruct_v1" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(AncestorError, match="instruct_v1/model.safetensors does not match the sha256"):
        ancestors.reuse_release(profile)


def test_a_committed_member_altered_in_the_checkout_names_the_git_fix_for_what_changed(monkeypatch):
    """An edited release.json is named as the file to restore (not the weights it no longer matches); a deleted
    weight file too. The checkout's own models/smoke, restored by the test whatever happens."""
    from cptlib.config import load_profile
    from cptlib.family.ancestors import verify

    monkeypatch.setattr(paths, "MODELS_DIR", COMMITTED.parent)  # the checkout's own, tracked by git
    profile, folder = load_profile("smoke"), COMMITTED / "instruct_v1"
    release, weights = folder / "release.json", folder / "model.safetensors"
    text, data = release.read_text(), weights.read_bytes()
    try:
        record = json.loads(text)
        record["files"]["model.safetensors"]["sha256"] = "0" * 64
        release.write_text(json.dumps(record, indent=1))
        with pytest.raises(AncestorError, match=r"does not match the sha256.*`git checkout -- models/smoke/instruct_v1/"
                                                r"release.json` \(the committed release\)"):
            verify(profile, "instruct_v1")
        release.write_text(text)
        weights.unlink()
        with pytest.raises(AncestorError, match=r"model.safetensors is missing; restore it with `git checkout -- "
                                                r"models/smoke/instruct_v1/model.safetensors`"):
            verify(profile, "instruct_v1")
    finally:
        release.write_text(text)
        weights.write_bytes(data)
    verify(profile, "instruct_v1")


@pytest.mark.slow
def test_a_paired_release_gives_every_training_seed_its_own_ancestors(tmp_path, monkeypatch):
    """base_seed and instruct_seed null: each training seed's base_v1 ... instruct_v2 released (seeds/<s>/ beyond the
    first), and N1's other family too (issue 48), the study resolving seed s to ancestor seed s; the other sizes from
    the first seed only."""
    from cptlib.config import load_with_overrides

    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path / "build")
    monkeypatch.setattr(paths, "MODELS_DIR", tmp_path / "models")
    profile = load_with_overrides("smoke", {"base_seed": None, "instruct_seed": None, "train_seeds": [0, 1],
                                            "model.sizes": ["tiny"]}, run_name="paired")
    assert ancestors.paired(profile)
    data, stages = ancestors.train_members(profile)
    root = ancestors.export(profile, data, stages, "make ancestors PROFILE=paired")
    names = ancestors.member_names(profile)
    assert names == [*ancestors.MEMBERS, "seeds/1/base_v1", "seeds/1/base_v2", "seeds/1/instruct_v1",
                     "seeds/1/instruct_v2", "seeds/1/other_family", "seeds/1/other_instruct"]
    index = json.loads((root / "release.json").read_text())
    assert index["recipe"]["ancestor_seeds"] == [0, 1] and set(index["members"]) == set(names)
    assert json.loads((root / "seeds/1/instruct_v1/release.json").read_text())["parent"] == "seeds/1/base_v1"
    first, second = build_family(profile, seed=0), build_family(profile, seed=1)
    for member in ancestors.SEED_MEMBERS + ancestors.OTHER_MEMBERS:
        assert read_manifest(second[member])["released"]["member"] == f"seeds/1/{member}"
        assert index["members"][member]["sha256"] != index["members"][f"seeds/1/{member}"]["sha256"], member
    assert "other_family" not in build_family(profile, seed=1, other_family=False)
    with pytest.raises(AncestorError, match="first training seed only"):
        ancestors.seed_member(profile, 1, "sizes/tiny/base_v1")
    # a release made before issue 48 (the other family of the first seed only): seed 1's family resolves without it
    shutil.rmtree(root / "seeds/1/other_family"), shutil.rmtree(root / "seeds/1/other_instruct")
    assert "other_family" in first and "other_family" not in build_family(profile, seed=1)
    # a release without the second seed: its members go, the rest stays
    one = load_with_overrides("smoke", {"base_seed": None, "instruct_seed": None, "train_seeds": [0],
                                        "model.sizes": ["tiny"]}, run_name="paired")
    ancestors.export(one, data, {m: stages[m] for m in ancestors.member_names(one)}, "make ancestors PROFILE=paired")
    assert not (root / "seeds").exists() and (root / "base_v1" / "release.json").is_file()
    assert set(json.loads((root / "release.json").read_text())["members"]) == set(ancestors.member_names(one))


def test_a_release_pairs_both_seeds_or_shares_both():
    from cptlib.config import ConfigError, load_with_overrides

    with pytest.raises(ConfigError, match="set both or neither"):
        load_with_overrides("smoke", {"base_seed": None, "instruct_seed": 0}, run_name="half-paired")


def test_the_ladder_can_be_released_in_bf16_and_a_storage_mismatch_is_refused(release_copy):
    """`ladder_storage: bfloat16` (the default's ladder, run 18): the other sizes' weights are exported in bf16 (the
    fp32 stage rounded to nearest), say so in release.json and config.json, and resolve; the family's own members
    stay fp32; a profile asking for another storage than the release has is refused, naming the key."""
    import torch

    from cptlib.family.build import testbed_data, tokenizer_stage
    from cptlib.core.stages import probe

    profile, folder = release_copy
    bf16 = profile.model_copy(update={"ladder_storage": "bfloat16"})
    with pytest.raises(AncestorError, match=r"storage \(float32 released, bfloat16 asked: ladder_storage\)"):
        ancestors.verify(bf16, "sizes/mini/base_v1")
    fp32 = load_file(str(folder / "sizes" / "mini" / "base_v1" / "model.safetensors"))
    tokenizer_stage(profile, testbed_data(profile))
    ancestors.reuse_release(profile)
    with probe():  # nothing trains: every member is a reused stage
        data, stages = ancestors.train_members(profile)
    ancestors.export(bf16, data, stages, "make ancestors PROFILE=smoke REUSE=1")
    member = folder / "sizes" / "mini" / "base_v1"
    stored = load_file(str(member / "model.safetensors"))
    assert {t.dtype for t in stored.values()} == {torch.bfloat16}
    assert all(torch.equal(stored[k], fp32[k].to(torch.bfloat16)) for k in fp32)
    assert json.loads((member / "release.json").read_text())["storage"] == "bfloat16"
    assert json.loads((member / "config.json").read_text())["dtype"] == "bfloat16"
    assert json.loads((folder / "base_v1" / "release.json").read_text())["storage"] == "float32"
    assert ancestors.verify(bf16, "sizes/mini/base_v1", data)["storage"] == "bfloat16"
    with pytest.raises(AncestorError, match="ladder_storage"):
        ancestors.verify(profile, "sizes/mini/instruct_v1")


def test_a_copy_of_a_shipped_profile_names_its_release_in_one_line_then_runs_with_it(tmp_path):
    """Issue 49, 4: a copy of params/smoke.yaml failed inside 00_build with a traceback ("models/mine/base_v1 is
    missing") and suggested `release: default`, which is refused. Now `cptlib notebook run` stops before the kernel
    starts, naming `release: smoke` (the release built from the copy's recipe); with that line the family builds."""
    import os
    import subprocess
    import sys

    copy = paths.PARAMS_DIR / "zz_copy_of_smoke.yaml"
    env = {**os.environ, "CPTLIB_BUILD_DIR": str(tmp_path / "build"), "CPTLIB_FIGURES_DIR": str(tmp_path / "figures")}
    cptlib = lambda *a: subprocess.run([sys.executable, "-m", "cptlib.cli", *a, "--profile", copy.stem], env=env,
                                       capture_output=True, text=True, timeout=300)
    try:
        copy.write_text((paths.PARAMS_DIR / "smoke.yaml").read_text())
        refused = cptlib("notebook", "run", "00_build")
        copy.write_text((paths.PARAMS_DIR / "smoke.yaml").read_text() + "release: smoke\n")
        built = cptlib("build")
    finally:
        copy.unlink(missing_ok=True)
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1, refused.stderr
    assert refused.stderr.startswith(
        f"cptlib notebook: error: profile {copy.stem!r} starts from released ancestors (released_ancestors: true), but "
        f"models/{copy.stem}/ holds no release (release.json); its recipe is the one models/smoke/ was released from: "
        "add `release: smoke` to the profile (a profile's release is its own name unless it names one); or rebuild")
    assert built.returncode == 0 and "seed 0  instruct_v1" in built.stdout, built.stderr[-3000:]
    assert not (tmp_path / "figures").exists() and not (paths.REPO_ROOT / "models" / copy.stem).exists()
