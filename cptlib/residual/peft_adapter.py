"""The instruction residual Θr = θ_instruct − θ_base as a standard PEFT LoRA adapter directory
(`adapter_config.json` + `adapter_model.safetensors`), so that any tool that loads PEFT adapters attaches it to
a CPT'd base at load time:

    from peft import PeftModel
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("cpt_base"), "adapter")

How each tensor of the residual becomes part of an adapter (PEFT's LoRA adds B·A·(lora_alpha / r) to a weight):
- **Linear weights** (attention, MLP, an untied `lm_head`): the truncated SVD Θ ≈ (U·S)_r · Vh_r, written as
  `lora_B = (U·S)_r` (out × r) and `lora_A = Vh_r` (r × in) with `lora_alpha = r`, so PEFT's scale is exactly 1.
  These are the factors cptlib's own low-rank format stores (`cptlib.residual.lowrank`), bit for bit.
- **Embeddings**: PEFT's embedding delta is (B·A)ᵀ, so `lora_embedding_A = (U·S)_rᵀ`, `lora_embedding_B = Vh_rᵀ`.
  With tied embeddings the adapter sits on the input embeddings with `ensure_weight_tying`, and PEFT ties the
  output layer's adapter to it. `embeddings="drop"` leaves them out (the target keeps its own).
- **Rank per matrix**: `rank` where cptlib's low-rank format would factor the matrix (r·(m+n) < m·n); a matrix it
  stores whole gets its full rank min(m, n), which is exact. Without `rank`, every matrix has full rank: the
  adapter then equals the full residual up to float rounding. PEFT's `rank_pattern` / `alpha_pattern` hold the
  ranks that differ from `r`.
- **Vectors** (norm weights): LoRA has no vector delta (mergekit's extract-lora drops them, its #521). `vectors=
  "save"` writes them as PEFT `modules_to_save` holding the *instruct* model's value, so the target's norms are
  replaced by the instruct model's (what CPT did to the norms is lost); `"drop"` leaves the target's norms. Neither
  is θ_target + Θr; the study measures both (`docs/residual.md`).
- **Linear biases** are dropped (the target keeps its own): PEFT's `lora_bias` is one switch for every targeted
  layer, refused by embeddings and by Linear layers without a bias, which most models mix (Qwen2). The manifest
  records the share of ‖Θr‖ each dropped or replaced tensor carries.

Streaming as the rest of the engine: one tensor of each input at a time, and the output directory appears only
when complete. `adapter_manifest.json` records sources with hashes and the rank and relative error per matrix.
"""
from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

import cptlib
from cptlib.core.provenance import library_versions
from cptlib.residual import lowrank
from cptlib.residual.analysis import module_of, norm
from cptlib.residual.checkpoint import ResidualError, copy_chat_files
from cptlib.residual.stream import _sources, _with_hashes
from cptlib.residual.vector import ModelPair, Residual
from cptlib.residual.options import EMBEDDING_POLICIES, VECTOR_POLICIES
from cptlib.residual.writer import ShardWriter, TensorSpec, output_dir
from cptlib.core.errors import MissingInputError

ADAPTER_FILE = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_MANIFEST = "adapter_manifest.json"
PREFIX = "base_model.model."  # PEFT's key prefix for a causal LM's modules


@dataclass(frozen=True)
class Part:
    """What one tensor of the residual becomes: a LoRA pair, a saved module (the instruct value), or nothing."""
    tensor: str  # the model tensor, e.g. model.layers.0.self_attn.q_proj.weight
    module: str  # its module, e.g. model.layers.0.self_attn.q_proj
    kind: str  # "linear", "embedding", "save" (modules_to_save), "drop"
    rank: int | None = None
    why: str = ""


def module_types(config_dir: Path) -> dict[str, str]:
    """Module name -> "linear", "embedding" or its class name, from the model built on the meta device (no
    weight is read or allocated)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(config_dir)
    except Exception as err:  # noqa: BLE001 - transformers raises several kinds for an unreadable config
        raise ResidualError(f"{config_dir}: transformers cannot read its config.json ({err}); a PEFT adapter needs "
                            "the model's architecture to know which tensors are Linear or Embedding layers") from None
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    kinds = {}
    for name, module in model.named_modules():
        kinds[name] = ("linear" if isinstance(module, torch.nn.Linear)
                       else "embedding" if isinstance(module, torch.nn.Embedding) else type(module).__name__)
    return kinds


def plan_adapter(shapes: dict[str, tuple[int, ...]], kinds: dict[str, str], rank: int | None, vectors: str,
                 embeddings: str) -> list[Part]:
    """One Part per residual tensor, in the residual's order; refuses a tensor no adapter can hold."""
    parts = []
    for name, shape in shapes.items():
        module, _, leaf = name.rpartition(".")
        kind = kinds.get(module)
        if kind is None:
            raise ResidualError(f"tensor {name}: the model built from config.json has no module {module!r}; the "
                                "checkpoint does not match its config")
        if kind in ("linear", "embedding") and leaf == "weight":
            if kind == "embedding" and embeddings == "drop":
                parts.append(Part(name, module, "drop", why="embeddings='drop': the target keeps its own"))
                continue
            full = min(shape)
            r = rank if rank is not None and lowrank.factorizes(shape, rank) else full
            parts.append(Part(name, module, kind, min(r, full)))
        elif kind == "linear" and leaf == "bias":
            parts.append(Part(name, module, "drop", why="a Linear bias: LoRA holds no bias delta here"))
        elif len(shape) == 1:
            parts.append(Part(name, module, "save" if vectors == "save" else "drop",
                              why="modules_to_save: the instruct model's value" if vectors == "save"
                              else "vectors='drop': the target keeps its own"))
        else:
            raise ResidualError(f"tensor {name} {tuple(shape)} belongs to a {kind} module, whose delta PEFT's LoRA "
                                "cannot hold; extract it in cptlib's own format (without --format peft)")
    return parts


def adapter_keys(part: Part) -> list[str]:
    """The adapter tensors a part writes, under PEFT's saved names (adapter name removed)."""
    key = PREFIX + part.module
    return {"linear": [f"{key}.lora_A.weight", f"{key}.lora_B.weight"],
            "embedding": [f"{key}.lora_embedding_A", f"{key}.lora_embedding_B"],
            "save": [PREFIX + part.tensor], "drop": []}[part.kind]


def _specs(parts: list[Part], shapes: dict[str, tuple[int, ...]], dtype: torch.dtype) -> list[TensorSpec]:
    specs = []
    for p in parts:
        m, n = shapes[p.tensor][0], shapes[p.tensor][-1]
        # Linear weight (out m × in n): A is r × in, B is out × r. Embedding weight (vocab m × dim n): PEFT's
        # delta is (B·A)ᵀ, so A is r × vocab and B is dim × r. A saved module keeps its tensor's shape.
        shape_of = {"linear": [(p.rank, n), (m, p.rank)], "embedding": [(p.rank, m), (n, p.rank)],
                    "save": [shapes[p.tensor]], "drop": []}[p.kind]
        specs += [TensorSpec(k, s, dtype) for k, s in zip(adapter_keys(p), shape_of)]
    return specs


def lora_config(parts: list[Part], base: Path, tied: bool):
    """The LoraConfig whose scaling (lora_alpha / r) is 1 for every module."""
    from peft import LoraConfig

    ranks = {p.module: p.rank for p in parts if p.kind in ("linear", "embedding")}
    if not ranks:
        raise ResidualError("no Linear or Embedding weight is left for the adapter (embeddings='drop' on a model "
                            "with nothing else?); nothing to write")
    r = Counter(ranks.values()).most_common(1)[0][0]
    # PEFT matches pattern keys as regular expressions against the end of a module name: escape the dots.
    pattern = {_exact(module): rank for module, rank in ranks.items() if rank != r}
    return LoraConfig(
        task_type="CAUSAL_LM", r=r, lora_alpha=r, rank_pattern=pattern, alpha_pattern=dict(pattern),
        target_modules=sorted(ranks), lora_dropout=0.0, bias="none",
        modules_to_save=sorted({p.module for p in parts if p.kind == "save"}) or None,
        ensure_weight_tying=tied and any(p.kind == "embedding" for p in parts),
        base_model_name_or_path=str(base.resolve()), inference_mode=True,
    )


def _exact(module: str) -> str:
    return module.replace(".", r"\.")


def extract_peft(base: str | Path, instruct: str | Path, out: str | Path, *, rank: int | None = None,
                 vectors: str = "save", embeddings: str = "lora", dtype: torch.dtype = torch.float32,
                 progress: bool = True) -> Path:
    """Write Θr = θ_instruct − θ_base as a PEFT LoRA adapter directory `out` (see the module docstring)."""
    if rank is not None and rank < 1:
        raise ResidualError(f"rank {rank}: must be a positive integer")
    if vectors not in VECTOR_POLICIES or embeddings not in EMBEDDING_POLICIES:
        raise ResidualError(f"vectors={vectors!r}, embeddings={embeddings!r}: choose vectors from {VECTOR_POLICIES} "
                            f"and embeddings from {EMBEDDING_POLICIES}")
    pair = ModelPair(base, instruct)  # refuses mismatched shapes or vocabularies, as restore does
    res = Residual([(1.0, pair)])
    parts = plan_adapter(res.shapes, module_types(pair.instruct.path), rank, vectors, embeddings)
    config = lora_config(parts, pair.base.path, res.tied)
    specs = _specs(parts, res.shapes, dtype)
    terms, hashes = _sources(res)
    started, tensors = time.time(), {}
    with output_dir(out) as tmp:
        writer = ShardWriter(tmp, specs, max_shard_bytes=2**62, metadata={"cptlib": "peft-adapter"})
        first_keys = {adapter_keys(p)[0]: p for p in parts if p.kind != "drop"}
        pending: dict[str, torch.Tensor] = {}
        for spec in tqdm(writer.order, desc="extract (peft)", unit="tensor", disable=not progress):
            if spec.name in pending:  # the second factor of an SVD computed with the first
                writer.write(spec.name, pending.pop(spec.name))
                continue
            part = first_keys[spec.name]
            tau = res.tensor(part.tensor)
            meta = {"kind": part.kind, "shape": list(res.shapes[part.tensor]), "residual_norm": norm(tau)}
            if part.kind == "save":
                writer.write(spec.name, pair.instruct.get(part.tensor))
                meta["kind"] = "modules_to_save: the instruct model's value"
            else:
                us, vh, error = lowrank.truncated_svd(tau, part.rank)
                meta.update(rank=part.rank, relative_error=error)
                first, second = adapter_keys(part)
                factors = [vh, us] if part.kind == "linear" else [us.T.contiguous(), vh.T.contiguous()]
                writer.write(first, factors[0])
                pending[second] = factors[1]
            tensors[part.tensor] = meta
            del tau
        writer.close()
        (tmp / "model.safetensors").rename(tmp / ADAPTER_FILE)
        config.save_pretrained(tmp)
        chat_files = copy_chat_files(res.chat_dir, tmp)
        for p in parts:
            if p.kind == "drop":
                tensors[p.tensor] = {"kind": "dropped", "why": p.why, "residual_norm": norm(res.tensor(p.tensor))}
        total_sq = sum(m["residual_norm"] ** 2 for m in tensors.values())
        sq = sum(m["residual_norm"] ** 2 for m in tensors.values() if "relative_error" in m)
        err = sum((m["relative_error"] * m["residual_norm"]) ** 2 for m in tensors.values() if "relative_error" in m)
        manifest = {
            "format": "cptlib-peft-adapter",
            "cptlib_version": cptlib.__version__,
            "peft_version": library_versions()["peft"],
            "formula": "merge: θ_target + B·A (scale lora_alpha / r = 1) ≈ θ_target + Θr on every LoRA module",
            "rank": rank, "vectors": vectors, "embeddings": embeddings,
            "dtype": str(dtype).removeprefix("torch."),
            "tie_word_embeddings": res.tied,
            "terms": _with_hashes(terms, hashes.result(), res),
            "chat_files_from": {"path": str(Path(res.chat_dir).resolve()), "files": chat_files},
            "size": {"adapter_bytes": writer.total_size,
                     "full_residual_bytes": sum(TensorSpec(n, s, dtype).nbytes for n, s in res.shapes.items())},
            # ‖Θr − adapter‖/‖Θr‖ over the LoRA matrices, and the share of ‖Θr‖² in tensors not added as a delta
            "lora_relative_error": math.sqrt(err / sq) if sq > 0 else 0.0,
            "not_lora_norm_share": (total_sq - sq) / total_sq if total_sq > 0 else 0.0,
            "seconds": round(time.time() - started, 3),
            "tensors": tensors,
        }
        (tmp / ADAPTER_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return Path(out)


def adapter_summary(manifest: dict) -> list[list]:
    """One row per module kind (e.g. self_attn.q_proj over every layer): kind, ranks, share of ‖Θr‖², and the
    relative error ‖Θr − B·A‖/‖Θr‖ over its LoRA matrices (None where it is saved or dropped)."""
    groups: dict[str, dict] = {}
    total = sum(t["residual_norm"] ** 2 for t in manifest["tensors"].values())
    for name, t in manifest["tensors"].items():
        g = groups.setdefault(module_of(name), {"kinds": set(), "ranks": set(), "sq": 0.0, "err": 0.0})
        g["kinds"].add(t["kind"].split(":")[0])
        g["sq"] += t["residual_norm"] ** 2
        if "rank" in t:
            g["ranks"].add(t["rank"])
            g["err"] += (t["relative_error"] * t["residual_norm"]) ** 2
    rows = []
    for module, g in groups.items():
        ranks = "-" if not g["ranks"] else "/".join(str(r) for r in sorted(g["ranks"]))
        error = math.sqrt(g["err"] / g["sq"]) if g["ranks"] and g["sq"] > 0 else None
        rows.append([module, ", ".join(sorted(g["kinds"])), ranks, g["sq"] / total if total else 0.0, error])
    return rows


def read_manifest(adapter: str | Path) -> dict:
    path = Path(adapter) / ADAPTER_MANIFEST
    if not path.is_file():
        raise MissingInputError(f"{adapter}: no {ADAPTER_MANIFEST}; write the adapter with "
                                "`cptlib residual extract --format peft`")
    return json.loads(path.read_text())


__all__ = ["ADAPTER_CONFIG", "ADAPTER_FILE", "EMBEDDING_POLICIES", "VECTOR_POLICIES", "adapter_summary", "extract_peft",
           "module_types", "plan_adapter", "read_manifest"]
