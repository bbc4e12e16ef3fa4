"""Instruction tuning of a real checkpoint on the profile's generated instruction data (`models.instruct_v1: sft`).

    instruct = sft_real(profile, family["base_v1"], seed=0)        # stage dir: a chat model of the real base
    cpt_sft = sft_real(profile, cpt_base, seed=0)                   # the paper's SFT baseline, CPT(base)+SFT

A real family's original instruction data is not public, so its instruct model cannot be re-made; what can be made
is an instruct model of the *same* base with instruction data of the project's (`sft_v1.jsonl` of the profile's
world, `world.instructions: in_context`): a real pair, whose residual Θr = instruct − base is full-rank, as the paper's.
A base release ships no chat template: the profile names the turn format (`models.chat_template`) and the tuned model
carries it, with its end-of-turn token as a stop token of its generation config.
"""
from __future__ import annotations

from pathlib import Path

from cptlib.config import Profile, stable_dict
from cptlib.core.errors import InputError
from cptlib.core.files import hash_file
from cptlib.core.stages import read_manifest, run_stage

SFT_FILE = "sft_v1.jsonl"


def _chat_tokenizer(parent: Path, template_name: str | None):
    """The parent's tokenizer with a chat template that marks the reply ({% generation %}), and the reply's stop
    token (None: the tokenizer's eos)."""
    from transformers import AutoTokenizer

    from cptlib.chat_format import TURN_FORMATS

    tok = AutoTokenizer.from_pretrained(str(parent), local_files_only=True)
    if template_name is not None:
        tok.chat_template, stop = TURN_FORMATS[template_name]
        return tok, stop
    if not tok.chat_template or "{% generation %}" not in tok.chat_template:
        raise InputError(f"{parent} has no chat template with {{% generation %}} markers, which SFT needs to train "
                         f"on the replies only; set models.chat_template (one of {sorted(TURN_FORMATS)}) in the profile")
    return tok, None


def sft_real(profile: Profile, parent: Path, seed: int) -> Path:
    """SFT of a resolved member or a CPT stage on the profile's `sft_v1.jsonl`, with profile.sft's recipe."""
    from cptlib.family.build import testbed_data
    from cptlib.training.train import runtime_spec

    cfg, data, template = profile.sft, testbed_data(profile), profile.models.chat_template
    spec = {"role": "sft", "seed": seed, "parent": read_manifest(parent)["key"], "train": stable_dict(cfg),
            "data": hash_file(data / SFT_FILE), "chat_template": template, "runtime": runtime_spec(profile)}

    def build(work: Path) -> dict:
        from transformers import GenerationConfig

        from cptlib.training.data import sft_dataset
        from cptlib.training.launch import run_sft

        tok, stop = _chat_tokenizer(Path(parent), template)
        ds = sft_dataset(data / SFT_FILE, tok, cfg.max_len, seed)
        fields = run_sft(Path(parent), ds, tok, cfg, profile.runtime, seed, work)
        tok.save_pretrained(work)  # the parent's tokenizer class and files, with the chat template
        if stop is not None:  # generation ends at the end of the turn, as well as at eos
            gen = GenerationConfig.from_pretrained(work)
            eos = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
            gen.eos_token_id = [*eos, tok.convert_tokens_to_ids(stop)]
            gen.save_pretrained(work)
        return {"role": "sft", "parent": str(parent), "chat_template": template, **fields}

    return run_stage("sft", spec, build)
