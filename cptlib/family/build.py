"""The testbed's model family trained here (docs/paper.md §2), each member a content-addressed stage.

    from cptlib.family import build_family, cpt                  # cptlib.family.resolve: the family's API
    family = build_family(load_profile("default"), seed=0)      # {"base_v1": Path, ...}
    cpt_base = cpt(load_profile("default"), family["base_v1"], seed=0)

base_v1 = pretrain(corpus A1); base_v2 = base_v1 further trained on A2; instruct_vN = SFT(base_vN);
other_family = same recipe as base_v1 from another initialisation and data order, other_instruct = its SFT with
the v1 recipe (the cross-family residual of the N1 check).
A real profile (`models:` set) resolves released checkpoints instead and runs CPT on its corpus (cptlib.family.released); the
released testbed ancestors are these members trained once and shipped (cptlib.family.ancestors).
Training runs in this process, or under torchrun when `runtime.nproc` > 1 (cptlib.training.launch).
"""
from __future__ import annotations

import json
from pathlib import Path

from cptlib import testbed
from cptlib.family import MEMBERS  # noqa: F401 -- the members, defined with the package (light)
from cptlib.config import Profile, TrainConfig, stable_dict
from cptlib.training.data import packed_lm_dataset, sft_dataset
from cptlib.models import llama_config, new_model
from cptlib.presets import PRESETS
from cptlib.core.files import hash_file, hash_json
from cptlib.core.stages import read_manifest, run_stage
from cptlib.tokenizer import load_tokenizer, save_tokenizer, train_tokenizer
from cptlib.training.train import runtime_spec
from cptlib.training.launch import run_causal_lm, run_sft
from cptlib.members import Member



def _source_hash(package_dir: Path) -> str:
    """Hash of a package's source: the testbed's data changes whenever its generator code does."""
    return hash_json({p.name: hash_file(p) for p in sorted(package_dir.glob("*.py"))})[:16]


def testbed_data(profile: Profile) -> Path:
    spec = {
        "world": stable_dict(profile.world),
        "world_seed": profile.world_seed,
        "generator": _source_hash(Path(testbed.__file__).parent),
    }
    return run_stage("testbed", spec, lambda work: {"manifest": testbed.build_testbed(profile.world, profile.world_seed, work)})


def _file_hash(data: Path, name: str) -> str:
    return read_manifest(data)["manifest"]["files"][name]["sha256"]


def _texts(data: Path, names: list[str]):
    for name in names:
        with open(data / name) as f:
            for line in f:
                row = json.loads(line)
                if "text" in row:
                    yield row["text"]
                else:
                    yield from (m["content"] for m in row["messages"])


def tokenizer_stage(profile: Profile, data: Path) -> Path:
    """Trained on the base's pre-training text (era A), as a real model's tokenizer is: not the era-B news, whose
    new names then split into known pieces, and not the instruction data, so that a new SFT mix (or its size)
    leaves the tokenizer and the pre-trained bases as they are."""
    sources = ["corpus_a1.jsonl", "corpus_a2.jsonl"]
    spec = {"tokenizer": stable_dict(profile.tokenizer), "data": {s: _file_hash(data, s) for s in sources}}

    def build(work: Path) -> dict:
        tok = train_tokenizer(_texts(data, sources), profile.tokenizer.vocab_size)
        save_tokenizer(tok, work)
        return {"vocab_size": len(tok)}

    return run_stage("tokenizer", spec, build)


def _model_spec(profile: Profile) -> dict:
    return {"size": profile.model.size, "preset": vars(PRESETS[profile.model.size]), "vocab": profile.tokenizer.vocab_size,
            "max_len": profile.model.max_len}


def pretrain(profile: Profile, data: Path, tok_dir: Path, seed: int, role: str) -> Path:
    cfg = profile.pretrain
    spec = {
        "role": role, "seed": seed, "model": _model_spec(profile), "train": stable_dict(cfg),
        "data": _file_hash(data, "corpus_a1.jsonl"), "tokenizer": read_manifest(tok_dir)["key"],
        "runtime": runtime_spec(profile),
    }

    def build(work: Path) -> dict:
        tok = load_tokenizer(tok_dir)
        config = llama_config(profile.model.size, len(tok), profile.model.max_len, tok.bos_token_id,
                              tok.eos_token_id, tok.pad_token_id)
        ds = packed_lm_dataset([data / "corpus_a1.jsonl"], tok, cfg.seq_len, seed)
        return {"role": role, "parent": None, **run_causal_lm(new_model(config, seed), ds, tok, cfg, profile.runtime, seed, work)}

    return run_stage("pretrain", spec, build)


def continue_lm(profile: Profile, parent: Path, data: Path, corpus: str, cfg: TrainConfig, seed: int,
                role: str) -> Path:
    """Further causal-LM training of `parent` on `corpus` (base_v2's extra era-A text, or CPT on news),
    with `cfg.replay_frac` of era-A part-1 text mixed in."""
    spec = {
        "role": role, "seed": seed, "parent": read_manifest(parent)["key"], "train": stable_dict(cfg),
        "data": _file_hash(data, corpus), "replay": _file_hash(data, "corpus_a1.jsonl"),
        "runtime": runtime_spec(profile),
    }

    def build(work: Path) -> dict:
        tok = load_tokenizer(parent)
        ds = packed_lm_dataset([data / corpus], tok, cfg.seq_len, seed, [data / "corpus_a1.jsonl"], cfg.replay_frac)
        return {"role": role, "parent": str(parent), **run_causal_lm(parent, ds, tok, cfg, profile.runtime, seed, work)}

    return run_stage("lm", spec, build)


def instruct(profile: Profile, parent: Path, data: Path, version: str, seed: int) -> Path:
    """SFT of `parent` on the testbed's instruction data `sft_<version>.jsonl` (cptlib.family.resolve.instruct
    refuses a real profile, which has none)."""
    cfg = profile.sft if version == "v1" else profile.sft_v2
    sft_file = f"sft_{version}.jsonl"
    spec = {
        "role": f"instruct_{version}", "seed": seed, "parent": read_manifest(parent)["key"],
        "train": stable_dict(cfg), "data": _file_hash(data, sft_file), "replay": _file_hash(data, "corpus_a1.jsonl"),
        "runtime": runtime_spec(profile),
    }

    def build(work: Path) -> dict:
        tok = load_tokenizer(parent)
        ds = sft_dataset(data / sft_file, tok, cfg.max_len, seed, [data / "corpus_a1.jsonl"], cfg.replay_frac)
        return {"role": f"instruct_{version}", "parent": str(parent), **run_sft(parent, ds, tok, cfg, profile.runtime, seed, work)}

    return run_stage("sft", spec, build)


def train_family(profile: Profile, seed: int, other_family: bool = True) -> dict[str, Path]:
    """Build (or reuse) the testbed data, tokenizer and the family members for one training seed.

    With `profile.base_seed` set, the pre-trained bases come from that seed for every training seed (the
    paper, too, starts from one pre-trained model); `profile.instruct_seed` does the same for the instruct
    models. other_family and its instruct model other_instruct cost a whole pre-training and an SFT."""
    data = testbed_data(profile)
    tok = tokenizer_stage(profile, data)
    pre_seed = seed if profile.base_seed is None else profile.base_seed
    sft_seed = seed if profile.instruct_seed is None else profile.instruct_seed
    base_v1 = pretrain(profile, data, tok, pre_seed, Member.BASE_V1)
    base_v2 = continue_lm(profile, base_v1, data, "corpus_a2.jsonl", profile.pretrain_v2, pre_seed, Member.BASE_V2)
    family = {
        "data": data,
        "tokenizer": tok,
        Member.BASE_V1: base_v1,
        Member.BASE_V2: base_v2,
        Member.INSTRUCT_V1: instruct(profile, base_v1, data, "v1", sft_seed),
        Member.INSTRUCT_V2: instruct(profile, base_v2, data, "v2", sft_seed),
    }
    if other_family:
        other_seed = int(hash_json([Member.OTHER_FAMILY, pre_seed])[:8], 16)
        family[Member.OTHER_FAMILY] = pretrain(profile, data, tok, other_seed, Member.OTHER_FAMILY)
        family[Member.OTHER_INSTRUCT] = instruct(profile, family[Member.OTHER_FAMILY], data, "v1", sft_seed)
    return family


def with_size(profile: Profile, size: str) -> Profile:
    """The profile with another model size preset (the size ladder: same data, tokenizer and recipes)."""
    return profile.model_copy(update={"model": profile.model.model_copy(update={"size": size})})


def train_size(profile: Profile, size: str, seed: int) -> tuple[Path, Path]:
    """(base_v1, instruct_v1) of another size preset: the same data, tokenizer and recipes as the main size."""
    p = with_size(profile, size)
    data = testbed_data(p)
    pre_seed = seed if p.base_seed is None else p.base_seed
    sft_seed = seed if p.instruct_seed is None else p.instruct_seed
    base = pretrain(p, data, tokenizer_stage(p, data), pre_seed, Member.BASE_V1)
    return base, instruct(p, base, data, "v1", sft_seed)


