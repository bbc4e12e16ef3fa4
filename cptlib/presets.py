"""LLaMA size presets for the testbed (no torch import: the config module validates names against these).

Sizes are chosen from measured CPU throughput (2 cores): `small` (~1M parameters) trains at ~10k tokens/s in
fp32, `base` (~4M) at ~3.5k; `large` is for GPU runs. tiny → base is the size ladder of Q1 / C5 (16.5× in
parameters; calibration log run 18).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SizePreset:
    hidden: int  # model width
    layers: int  # transformer blocks
    heads: int  # attention heads (head_dim = hidden / heads)
    intermediate: int  # MLP width (SwiGLU)


PRESETS: dict[str, SizePreset] = {
    "tiny": SizePreset(hidden=64, layers=2, heads=2, intermediate=192),  # ~0.25M params at vocab 2048
    "mini": SizePreset(hidden=96, layers=3, heads=3, intermediate=288),  # ~0.55M
    "small": SizePreset(hidden=128, layers=4, heads=4, intermediate=384),  # ~1.1M
    "medium": SizePreset(hidden=192, layers=4, heads=4, intermediate=576),  # ~2.3M
    "base": SizePreset(hidden=256, layers=4, heads=4, intermediate=768),  # ~3.9M
    "large": SizePreset(hidden=512, layers=8, heads=8, intermediate=1536),  # ~29M, GPU only
}
