"""The residual engine's four operations as functions (`from cptlib.residual import extract, apply, restore,
inspect`; cptlib.residual loads this module, and torch, when one of them is first used)."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from cptlib.residual.analysis import cosine, drift, relative_norms
from cptlib.residual.options import DEFAULT_SHARD_SIZE
from cptlib.residual.vector import Residual

def extract(base: str | Path, instruct: str | Path, out: str | Path, *, embed_policy: str = "error",
            dtype: torch.dtype = torch.float32, rank: int | None = None,
            max_shard_size: str | int = DEFAULT_SHARD_SIZE, progress: bool = True) -> Path:
    """Write Θr = θ_instruct − θ_base (rank-r SVD factors if `rank`) to a new residual directory `out`."""
    residual = Residual.from_models(base, instruct, embed_policy=embed_policy)
    return residual.save(out, dtype=dtype, rank=rank, max_shard_size=max_shard_size, progress=progress)


def apply(target: str | Path, residual: str | Path, out: str | Path, *, alpha: float = 1.0, **options) -> Path:
    """Write θ_target + α·Θr for a residual directory; options: method, module_filter, embed_policy,
    max_shard_size, progress (see `cptlib.residual.stream.apply_residual`)."""
    return Residual.load(residual).apply_to(target, out, alpha=alpha, **options)


def restore(base: str | Path, instruct: str | Path, target: str | Path, out: str | Path, *, alpha: float = 1.0,
            embed_policy: str = "error", **options) -> Path:
    """Eq. 2 in one pass: θ_target + α·(θ_instruct − θ_base), without writing the residual."""
    residual = Residual.from_models(base, instruct, embed_policy=embed_policy)
    return residual.apply_to(target, out, alpha=alpha, embed_policy=embed_policy, operation="restore", **options)


def inspect(residual: str | Path, against: str | Path | None = None, target: str | Path | None = None,
            base: str | Path | None = None, progress: bool = True) -> dict:
    """Relative norms ‖Θr‖/‖θ_base‖ (per tensor, layer, module, total); with `against`, the cosine similarity
    of the two residuals; with `target`, the drift ‖θ_T − θ_base‖/‖Θr‖ (docs/paper.md §1, N4)."""
    res = Residual.load(residual)
    manifest = res.terms[0][1].manifest
    report = {"residual": str(Path(residual).resolve()), "kind": manifest["kind"], "rank": manifest["rank"],
              "size": manifest["size"], "relative_norms": relative_norms(manifest)}
    if manifest["kind"] == "lowrank":
        sq = sum(m["residual_norm"] ** 2 for m in manifest["tensors"].values())
        err = sum((m.get("relative_error", 0.0) * m["residual_norm"]) ** 2 for m in manifest["tensors"].values())
        report["lowrank_relative_error"] = math.sqrt(err / sq) if sq > 0 else 0.0
    if against is not None:
        report["against"] = str(Path(against).resolve())
        report["cosine"] = cosine(res, Residual.load(against), progress=progress)
    if target is not None:
        report["target"] = str(Path(target).resolve())
        report["drift"] = drift(res, target, base=base, progress=progress)
    return report
