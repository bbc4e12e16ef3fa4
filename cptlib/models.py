"""LLaMA-architecture model construction from the size presets (cptlib.presets), and weight drift."""
from __future__ import annotations

import re

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from cptlib.presets import PRESETS
from cptlib.core.errors import InputError



def llama_config(size: str, vocab_size: int, max_len: int, bos_id: int, eos_id: int, pad_id: int) -> LlamaConfig:
    if size not in PRESETS:
        raise InputError(f"unknown size preset {size!r}; known: {sorted(PRESETS)}")
    p = PRESETS[size]
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=p.hidden,
        num_hidden_layers=p.layers,
        num_attention_heads=p.heads,
        num_key_value_heads=p.heads,
        intermediate_size=p.intermediate,
        max_position_embeddings=max_len,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        # Tied like the small real models (Qwen2-0.5B); the residual engine handles both layouts.
        tie_word_embeddings=True,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )


def new_model(config: LlamaConfig, seed: int) -> LlamaForCausalLM:
    """A freshly initialised model; the seed alone decides the weights."""
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def n_params(model: torch.nn.Module) -> int:
    """Distinct parameters (a tied embedding counts once)."""
    return sum(p.numel() for p in model.parameters())


_MODULE_GROUPS = [
    ("embed", re.compile(r"embed_tokens")),
    ("lm_head", re.compile(r"lm_head")),
    ("attention", re.compile(r"self_attn\.")),
    ("mlp", re.compile(r"mlp\.")),
    ("norm", re.compile(r"norm")),
]


def module_group(name: str) -> str:
    for group, pattern in _MODULE_GROUPS:
        if pattern.search(name):
            return group
    return "other"


CHUNK_ROWS_ABOVE = 1 << 24  # elements: a larger tensor's drift is summed over row blocks (Gemma's 168M-entry embedding
#                             took ~5 GB of fp64 temporaries at once); smaller ones in one piece, as they always were


def _squares(p: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    """(Σ (p − ref)², Σ ref²) in fp64, over row blocks of at most CHUNK_ROWS_ABOVE elements for a large tensor."""
    if p.numel() <= CHUNK_ROWS_ABOVE:
        blocks = [(p, ref)]
    else:
        step = max(1, CHUNK_ROWS_ABOVE // p[0].numel())
        blocks = [(p[i:i + step], ref[i:i + step]) for i in range(0, p.shape[0], step)]
    d = r = 0.0
    for a, b in blocks:
        b = b.to(device=a.device, dtype=torch.float64)
        d += (a.detach().to(torch.float64) - b).pow(2).sum().item()
        r += b.pow(2).sum().item()
    return d, r


@torch.no_grad()
def _drift_of(pairs) -> dict[str, float]:
    """‖θ − θ_parent‖ / ‖θ_parent‖ overall and per module group, from (name, θ tensor, θ_parent tensor) pairs, in fp64."""
    diff_sq: dict[str, float] = {}
    ref_sq: dict[str, float] = {}
    for name, p, ref in pairs:
        if ref.shape != p.shape:
            raise ValueError(f"parameter {name!r}: shape {tuple(p.shape)} vs parent {tuple(ref.shape)}")
        group = module_group(name)
        d, r = _squares(p, ref)
        for key in (group, "total"):
            diff_sq[key] = diff_sq.get(key, 0.0) + d
            ref_sq[key] = ref_sq.get(key, 0.0) + r
    return {k: (diff_sq[k] / ref_sq[k]) ** 0.5 if ref_sq[k] > 0 else float("nan") for k in sorted(diff_sq)}


def weight_drift(model: torch.nn.Module, parent: dict[str, torch.Tensor]) -> dict[str, float]:
    """‖θ − θ_parent‖ / ‖θ_parent‖ overall and per module group (embed, attention, mlp, norm, lm_head).

    The residual recipe works only while CPT moves the weights little relative to the residual (docs/paper.md §2),
    so every stage records this. Computed in fp64 over the model's distinct parameters.
    """
    def pairs():
        for name, p in model.named_parameters():
            if name not in parent:
                raise KeyError(f"parameter {name!r} has no counterpart in the parent model")
            yield name, p, parent[name]

    return _drift_of(pairs())


def checkpoint_drift(model_dir, parent_dir) -> dict[str, float]:
    """weight_drift between two saved checkpoints, one tensor at a time: under FSDP no process holds the whole
    model, so the drift is read from the checkpoint rank 0 has just written and the parent's files."""
    from cptlib.residual.checkpoint import Checkpoint

    model, parent = Checkpoint(model_dir), Checkpoint(parent_dir)

    def pairs():
        for name in model.names:
            if name not in parent.tensors:
                raise KeyError(f"tensor {name!r} of {model_dir} has no counterpart in {parent_dir}")
            yield name, model.get(name), parent.get(name)

    return _drift_of(pairs())
