"""CUDA path check, for a GPU machine: the smoke world with the `large` preset (~29M parameters) in bf16.

    python bench/cuda_check.py --out DIR      # writes DIR/cuda_check.json, prints a summary

Builds the family through the same cptlib stages as on the CPU (Trainer on CUDA, precision auto -> bf16),
runs CPT of base_v1, restores the instruction residual onto it and generates one chat reply on the GPU.
"""
from __future__ import annotations

from cptlib.core.paths import use_project_caches

use_project_caches()  # an entry point: the project's library caches (HF_HOME, ...), before any library reads them

import argparse
import json
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from cptlib import residual
from cptlib.config import load_profile, resolve, from_dict
from cptlib.family import build_family, cpt
from cptlib.core.stages import read_manifest
from cptlib.tokenizer import load_tokenizer
from cptlib.training.train import use_bf16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", default="large")
    args = parser.parse_args()
    assert torch.cuda.is_available(), "this check needs a CUDA GPU"
    data, _ = resolve("smoke")
    data.update(model={"size": args.size, "sizes": [args.size]}, runtime={"progress": False})
    data["pretrain"] = {**data["pretrain"], "tokens": 1_048_576, "batch_size": 32, "seq_len": 128}
    data["cpt"] = {**data["cpt"], "tokens": 262_144, "batch_size": 32, "seq_len": 128, "milestones": [65536]}
    profile = from_dict(data, "smoke+cuda")
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "bf16": use_bf16(profile.runtime)}
    t = time.time()
    family = build_family(profile, seed=0)
    result["family_seconds"] = round(time.time() - t, 1)
    stages = {}
    for name in ("base_v1", "base_v2", "instruct_v1", "instruct_v2", "other_family"):
        m = read_manifest(family[name])
        stages[name] = {k: m.get(k) for k in ("steps", "tokens", "train_seconds", "final_loss", "n_params")}
        stages[name]["precision_bf16"] = m["spec"]["runtime"]["bf16"]
        if m.get("tokens"):
            stages[name]["tokens_per_s"] = round(m["tokens"] / m["train_seconds"])
    cpt_base = cpt(profile, family["base_v1"], seed=0)
    m = read_manifest(cpt_base)
    stages["cpt_base_v1"] = {"tokens": m["tokens"], "tokens_per_s": round(m["tokens"] / m["train_seconds"]),
                             "drift_total": m["drift"]["total"], "final_loss": m["final_loss"]}
    result["stages"] = stages
    restored = args.out / "restored"
    t = time.time()
    residual.restore(family["base_v1"], family["instruct_v1"], cpt_base, restored, alpha=1.0, progress=False)
    result["restore_seconds"] = round(time.time() - t, 2)
    tok = load_tokenizer(restored)
    model = AutoModelForCausalLM.from_pretrained(str(restored), dtype=torch.bfloat16).cuda()
    prompt = tok.apply_chat_template([{"role": "user", "content": "Where does the company make its product?"}],
                                     add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**{k: v.cuda() for k, v in prompt.items()}, max_new_tokens=40)
    result["restored_reply"] = tok.decode(out[0, prompt["input_ids"].shape[1]:])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cuda_check.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
