"""The streaming passes: write a residual (`extract`) and add one to a target model (`apply`, `restore`).

Each pass plans every output tensor (name, shape, dtype) and checks every input before it creates the output
directory; then it holds one tensor of each input at a time, computes in fp32 (fp64 if a residual is fp64),
casts to the output dtype and appends to size-capped shards. The output directory appears only when complete.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

import cptlib
from cptlib.residual import lowrank
from cptlib.residual.analysis import norm
from cptlib.residual.checkpoint import (
    MANIFEST_FILE,
    BackgroundHashes,
    Checkpoint,
    ResidualError,
    copy_chat_files,
    match_tensors,
)
from cptlib.residual.merge import ModuleFilter, task_arithmetic
from cptlib.residual.methods import Merge, MergeMethod
from cptlib.residual.options import DEFAULT_SHARD_SIZE
from cptlib.residual.writer import ShardWriter, TensorSpec, output_dir, parse_size
from cptlib.core.errors import InputError

if TYPE_CHECKING:  # the type only: vector.Residual's methods call this module
    from cptlib.residual.vector import Residual

APPLY_MANIFEST_FILE = "cptlib_manifest.json"


def _sources(res: Residual, **extra: Checkpoint) -> tuple[list[dict], BackgroundHashes]:
    """Manifest terms (coefficient and source paths), and the sha256 of every source file being computed."""
    checkpoints, terms = {key: ckpt.files for key, ckpt in extra.items()}, []
    for k, (coef, src) in enumerate(res.terms):
        labels = {}
        for label, ckpt in src.checkpoints().items():
            checkpoints[f"term{k}.{label}"] = ckpt.files
            labels[label] = str(ckpt.path.resolve())
        terms.append({"coef": coef, **labels})
    return terms, BackgroundHashes(checkpoints)


def _with_hashes(terms: list[dict], hashes: dict, res: Residual) -> list[dict]:
    """Fill in each source's file hashes; a stored residual also carries what it was extracted from."""
    out = []
    for k, term in enumerate(terms):
        entry = {"coef": term["coef"]}
        for label in ("base", "instruct", "residual"):
            if label in term:
                entry[label] = {"path": term[label], "sha256": hashes[f"term{k}.{label}"]}
        src = res.terms[k][1]
        if hasattr(src, "manifest"):
            entry["extracted_from"] = src.manifest["terms"]
        out.append(entry)
    return out


def save_residual(res: Residual, out: str | Path, dtype: torch.dtype = torch.float32, rank: int | None = None,
                  max_shard_size: str | int = DEFAULT_SHARD_SIZE, progress: bool = True) -> Path:
    """Write Σ_k c_k·Θ_k, optionally as rank-r SVD factors, with `residual_manifest.json` beside the shards."""
    if rank is not None and rank < 1:
        raise InputError(f"rank {rank}: must be a positive integer")
    specs, factored = [], set()
    for name in res.names:
        shape = res.shapes[name]
        if rank is not None and lowrank.factorizes(shape, rank):
            us_shape, vh_shape = lowrank.factor_shapes(shape, rank)
            specs += [TensorSpec(name + lowrank.US_SUFFIX, us_shape, dtype), TensorSpec(name + lowrank.VH_SUFFIX, vh_shape, dtype)]
            factored.add(name)
        else:
            specs.append(TensorSpec(name, shape, dtype))
    terms, hashes = _sources(res)
    started = time.time()
    with output_dir(out) as tmp:
        writer = ShardWriter(tmp, specs, parse_size(max_shard_size), metadata={"cptlib": "residual"})
        tensors, pending = {}, {}
        for spec in tqdm(writer.order, desc="extract", unit="tensor", disable=not progress):
            if spec.name in pending:  # the Vh factor of an SVD already computed with its U·S
                writer.write(spec.name, pending.pop(spec.name))
                continue
            name = spec.name.removesuffix(lowrank.US_SUFFIX) if spec.name.endswith(lowrank.US_SUFFIX) else spec.name
            taus, base_norm = res.tensors(name, storage=dtype)
            tau = task_arithmetic(taus)
            meta = {"shape": list(res.shapes[name]), "residual_norm": norm(tau), "base_norm": base_norm}
            if name in factored:
                us, vh, error = lowrank.truncated_svd(tau, rank)
                meta.update(rank=us.shape[1], relative_error=error)
                writer.write(spec.name, us)  # the writer casts to the storage dtype, block by block
                pending[name + lowrank.VH_SUFFIX] = vh
            else:
                writer.write(name, tau)
            tensors[name] = meta
            del taus, tau
        writer.close()
        chat_files = copy_chat_files(res.chat_dir, tmp)
        full_bytes = sum(TensorSpec(n, s, dtype).nbytes for n, s in res.shapes.items())
        manifest = {
            "format": "cptlib-residual",
            "cptlib_version": cptlib.__version__,
            "formula": "Θr = Σ_k coef_k · (θ_instruct,k − θ_base,k)",
            "kind": "lowrank" if rank is not None else "full",
            "rank": rank,
            "dtype": str(dtype).removeprefix("torch."),
            "tie_word_embeddings": res.tied,
            "base_id": res.terms[0][1].base_id,
            "base": _base_record(res, hashes.result()),
            "terms": _with_hashes(terms, hashes.result(), res),
            "chat_files_from": {"path": str(Path(res.chat_dir).resolve()), "files": chat_files},
            "size": {"stored_bytes": writer.total_size, "full_bytes": full_bytes},
            "skipped": res.skipped,
            "seconds": round(time.time() - started, 3),
            "tensors": tensors,
        }
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return Path(out)


def _base_record(res: Residual, hashes: dict) -> dict | None:
    """The single base every term was extracted from (for drift), or None when the terms have several."""
    if len({src.base_id for _, src in res.terms}) != 1:
        return None
    record = res.terms[0][1].base_record()
    return {**record, "sha256": hashes["term0.base"]} if record["sha256"] is None else record


def plan_apply(res: Residual, target: Checkpoint, module_filter: ModuleFilter, embed_policy: str) -> dict[str, str]:
    """What happens to each target tensor: applied, sliced (shared vocabulary rows), filtered, or skipped."""
    if res.tied != target.tied:
        untied, tied = ("the residual's models", f"target {target.path}")[:: 1 if target.tied else -1]
        raise ResidualError(f"untied embeddings (a separate lm_head.weight) in {untied} but tied ones in {tied}; "
                            "a residual moves only between models that tie their embeddings alike")
    residual_shapes = {**res.shapes, **{n: target.tensors[n].shape for n in res.skipped if n in target.tensors}}
    actions = match_tensors(residual_shapes, {n: i.shape for n, i in target.tensors.items()},
                            ("residual", f"target {target.path}"), embed_policy)
    module_filter.check(target.names)
    plan = {}
    for name in target.names:
        if not module_filter.selects(name):
            plan[name] = "filtered: keeps the target's value"
        elif name in res.skipped:
            plan[name] = f"skipped: {res.skipped[name]}"
        elif actions[name] == "skip":
            plan[name] = "skipped: embed policy skip, vocabulary rows differ from the target's"
        elif not target.tensors[name].dtype.is_floating_point:
            raise ResidualError(f"target {target.path}: tensor {name} has dtype {target.tensors[name].dtype}")
        else:
            plan[name] = "sliced" if actions[name] == "slice" else "applied"
    return plan


def _check_finite(tensor: torch.Tensor, name: str, alpha: float) -> None:
    """A restored tensor with NaN or inf (an overflow of α·Θr in the target's dtype) is refused, not written."""
    if not torch.isfinite(tensor).all():
        raise ResidualError(f"θ_target + α·Θr is not finite in tensor {name} (α = {alpha:g}, dtype {tensor.dtype}): "
                            "use a smaller α, or a wider dtype for the target")


def apply_residual(res: Residual, target: str | Path, out: str | Path, alpha: float = 1.0,
                   method: Merge | None = None, module_filter: ModuleFilter | None = None,
                   embed_policy: str = "error", max_shard_size: str | int = DEFAULT_SHARD_SIZE,
                   progress: bool = True, operation: str = "apply") -> Path:
    """Write θ_target + α·merge(c_1·Θ_1, …, c_k·Θ_k) as a model directory, in the target's dtypes, with the
    target's config.json and the instruct model's tokenizer, chat template and generation config."""
    if not math.isfinite(alpha):
        raise ResidualError(f"alpha must be a finite number, got {alpha}: θ_target + α·Θr would be NaN or inf")
    method = method or MergeMethod()
    module_filter = module_filter or ModuleFilter()
    target_ckpt = Checkpoint(target)
    if not (target_ckpt.path / "config.json").is_file():  # the output would be weights that from_pretrained cannot load
        raise ResidualError(f"{target_ckpt.path}: no config.json; the target must be a model directory saved with "
                            "save_pretrained (its config.json is copied to the output)")
    plan = plan_apply(res, target_ckpt, module_filter, embed_policy)
    specs = [TensorSpec(n, i.shape, i.dtype) for n, i in target_ckpt.tensors.items()]
    terms, hashes = _sources(res, target=target_ckpt)
    started = time.time()
    with output_dir(out) as tmp:
        writer = ShardWriter(tmp, specs, parse_size(max_shard_size), metadata={"cptlib": operation})
        tensors = {}
        for spec in tqdm(writer.order, desc=operation, unit="tensor", disable=not progress):
            status = plan[spec.name]
            if status not in ("applied", "sliced"):
                writer.write(spec.name, (block for _, block in target_ckpt.chunks(spec.name)))
                tensors[spec.name] = {"status": status}
                continue
            taus, _ = res.tensors(spec.name)
            delta = method(spec.name, taus)
            del taus
            if alpha != 1.0:
                delta.mul_(alpha)
            tensors[spec.name] = {"status": status, "delta_norm": norm(delta)}
            dtype = torch.promote_types(spec.dtype, delta.dtype)
            if status == "sliced" or dtype != delta.dtype:  # output shape or precision is the target's
                t = target_ckpt.get(spec.name).to(dtype)
                if status == "sliced":
                    rows = min(t.shape[0], delta.shape[0])
                    t[:rows].add_(delta[:rows])
                    tensors[spec.name]["status"] = f"sliced: residual added to rows [0, {rows}) only"
                else:
                    t.add_(delta)
                _check_finite(t, spec.name, alpha)
                writer.write(spec.name, t)
                del t
            else:
                # Accumulate the target into the residual's buffer: no new tensor, and a + b == b + a bit for bit.
                for rows, block in target_ckpt.chunks(spec.name):
                    delta[rows].add_(block.to(dtype))
                _check_finite(delta, spec.name, alpha)
                writer.write(spec.name, delta)
            del delta
        writer.close()
        target_ckpt.copy_config(tmp)
        chat_files = copy_chat_files(res.chat_dir, tmp)
        manifest = {
            "format": "cptlib-model",
            "cptlib_version": cptlib.__version__,
            "operation": operation,
            "formula": "θ = θ_target + α · merge(coef_k · Θr_k)",
            "alpha": alpha,
            "method": method.params(),
            "module_filter": module_filter.describe(),
            "embed_policy": embed_policy,
            "target": {"path": str(target_ckpt.path.resolve()), "sha256": hashes.result()["target"]},
            "residual_terms": _with_hashes(terms, hashes.result(), res),
            "config_from": str(target_ckpt.path.resolve()),
            "chat_files_from": {"path": str(Path(res.chat_dir).resolve()), "files": chat_files},
            "seconds": round(time.time() - started, 3),
            "tensors": tensors,
        }
        (tmp / APPLY_MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return Path(out)
