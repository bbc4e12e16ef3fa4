"""Tiny model directories for the residual tests, written and read directly with safetensors and transformers
(never with the code under test), so a bug in cptlib's reader or writer cannot hide itself."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file


def write_model(path: Path, tensors: dict[str, torch.Tensor], shards: int = 1, config: dict | bool = True) -> Path:
    """A model directory: one `model.safetensors`, or `shards` files plus the standard index, and a config.json
    (`config`; True: a minimal one, False: none)."""
    path.mkdir(parents=True)
    if shards == 1:
        save_file(tensors, path / "model.safetensors", metadata={"format": "pt"})
    else:
        names = list(tensors)
        weight_map = {}
        for i in range(shards):
            file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
            part = {n: tensors[n] for n in names[i::shards]}
            save_file(part, path / file, metadata={"format": "pt"})
            weight_map.update(dict.fromkeys(part, file))
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (path / "model.safetensors.index.json").write_text(json.dumps(index))
    if config is not False:
        (path / "config.json").write_text(json.dumps({"model_type": "cptlib-test"} if config is True else config))
    return path


def read_model(path: Path) -> dict[str, torch.Tensor]:
    files = sorted(path.glob("model*.safetensors"))
    tensors = {}
    for file in files:
        with safe_open(file, framework="pt") as f:
            tensors.update({name: f.get_tensor(name).clone() for name in f.keys()})
    return tensors


def llama_family(root: Path, tied: bool, vocab: int = 48, shard: str | None = None, dtype=torch.float32) -> dict:
    """base, instruct (base + a small update, as a fine-tune), cpt (base + another update) tiny LLaMAs, saved
    with transformers' save_pretrained, sharded by `shard` (a max_shard_size) when given."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=tied)
    torch.manual_seed(0)
    base = LlamaForCausalLM(config).to(dtype)
    paths = {}
    for i, name in enumerate(["base", "instruct", "cpt"]):
        model = LlamaForCausalLM(config).to(dtype)
        model.load_state_dict(base.state_dict())
        if name != "base":
            gen = torch.Generator().manual_seed(i)
            with torch.no_grad():
                for p in model.parameters():
                    p.add_((0.01 * torch.randn(p.shape, generator=gen)).to(dtype))
        paths[name] = root / name
        model.save_pretrained(paths[name], **({"max_shard_size": shard} if shard else {}))
    return paths
