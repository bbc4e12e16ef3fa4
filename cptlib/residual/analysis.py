"""Where the residual lives and how far a model drifted (docs/paper.md §1, N3, N4): `cptlib residual inspect R`.

Relative norms ‖Θr‖/‖θ_base‖ per tensor, layer and module come from the residual's manifest (no tensor is
read); cosine similarity between two residuals and the drift ‖θ_T − θ_base‖/‖Θr‖ stream the tensors.
A group's norm is the norm of its tensors concatenated: sqrt(Σ ‖·‖²).
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

from cptlib.core.files import hash_file
from cptlib.residual.checkpoint import Checkpoint, ResidualError

CHUNK = 1 << 22  # entries per partial sum: fp32 BLAS within a chunk, fp64 across chunks


def dot(a: torch.Tensor, b: torch.Tensor) -> float:
    """Σ a·b with fp64 accumulation across chunks (an fp32 sum over 10⁸ entries loses digits)."""
    a, b = a.reshape(-1), b.reshape(-1)
    if a.dtype != b.dtype:
        a, b = a.double(), b.double()
    return sum(float(torch.dot(a[i : i + CHUNK], b[i : i + CHUNK])) for i in range(0, a.numel(), CHUNK))


def norm(t: torch.Tensor) -> float:
    return math.sqrt(dot(t, t))


def layer_of(name: str) -> str:
    match = re.search(r"\.layers\.(\d+)\.", name)
    return f"layer {int(match[1]):>3}" if match else name.removeprefix("model.").removesuffix(".weight")


def module_of(name: str) -> str:
    """`model.layers.7.self_attn.q_proj.weight` → `self_attn.q_proj`; non-layer tensors keep their own name."""
    return re.sub(r"^.*\.layers\.\d+\.", "", name).removeprefix("model.").removesuffix(".weight")


def grouped(squares: dict[str, dict[str, float]], key) -> dict[str, dict[str, float]]:
    """Sum per-tensor squared quantities into groups named by key(name)."""
    groups: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for name, values in squares.items():
        for k, v in values.items():
            groups[key(name)][k] += v
    return {g: dict(v) for g, v in sorted(groups.items())}


LEVELS = (("tensor", lambda n: n), ("layer", layer_of), ("module", module_of), ("total", lambda n: "all"))


def summarize(squares: dict[str, dict[str, float]], finish) -> dict:
    """{level: {group: finish(summed squares)}} for the levels tensor, layer, module and total."""
    return {level: {g: finish(v) for g, v in grouped(squares, key).items()} for level, key in LEVELS}


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def relative_norms(manifest: dict) -> dict:
    """‖Θr‖/‖θ_base‖ per tensor, layer, module and overall, from the norms the manifest recorded."""
    squares = {name: {"r": m["residual_norm"] ** 2, "b": (m.get("base_norm") or 0.0) ** 2}
               for name, m in manifest["tensors"].items()}
    return summarize(squares, lambda v: {"residual_norm": math.sqrt(v["r"]), "base_norm": math.sqrt(v["b"]),
                                         "relative": _ratio(math.sqrt(v["r"]), math.sqrt(v["b"]))})


def cosine(a, b, progress: bool = True) -> dict:
    """cos(Θa, Θb) per tensor, layer, module and overall; a, b are `Residual`s with the same tensors."""
    if sorted(a.names) != sorted(b.names):
        raise ResidualError(f"the residuals hold different tensors (e.g. {sorted(set(a.names) ^ set(b.names))[:3]})")
    squares = {}
    for name in tqdm(a.names, desc="cosine", unit="tensor", disable=not progress):
        ta, tb = a.tensor(name), b.tensor(name)
        if ta.shape != tb.shape:
            raise ResidualError(f"tensor {name}: shape {list(ta.shape)} in one residual, {list(tb.shape)} in the other")
        squares[name] = {"ab": dot(ta, tb), "aa": dot(ta, ta), "bb": dot(tb, tb)}
    return summarize(squares, lambda v: _ratio(v["ab"], math.sqrt(v["aa"] * v["bb"])))


def drift(residual, target: str | Path, base: str | Path | None = None, progress: bool = True) -> dict:
    """‖θ_T − θ_base‖ / ‖Θr‖ (docs/paper.md §1, N4) per tensor, layer, module and overall.

    θ_base is the base the residual was extracted from; its files must hash as the manifest recorded, so a
    drift is never measured from the wrong base by accident. `base` overrides the recorded path.
    """
    recorded = residual.base_record()
    base_ckpt = Checkpoint(base if base is not None else recorded["path"])
    if recorded["sha256"] is not None and {f.name: hash_file(f) for f in base_ckpt.files} != recorded["sha256"]:
        raise ResidualError(f"{base_ckpt.path} is not the base this residual was extracted from (its files hash "
                            "differently from the manifest); pass --base with the right model")
    target_ckpt = Checkpoint(target)
    squares = {}
    for name in tqdm(residual.names, desc="drift", unit="tensor", disable=not progress):
        if name not in target_ckpt.tensors:
            raise ResidualError(f"tensor {name} is in the residual but not in target {target_ckpt.path}")
        t_shape, b_shape = target_ckpt.tensors[name].shape, base_ckpt.tensors[name].shape
        if t_shape != b_shape:
            raise ResidualError(f"tensor {name}: shape {list(t_shape)} in target but {list(b_shape)} in base")
        d_sq = 0.0
        for (_, t), (_, b) in zip(target_ckpt.chunks(name), base_ckpt.chunks(name)):
            d = t.double() - b.double()
            d_sq += dot(d, d)
        r = residual.tensor(name)
        squares[name] = {"d": d_sq, "r": dot(r, r)}
    return summarize(squares, lambda v: {"drift_norm": math.sqrt(v["d"]), "residual_norm": math.sqrt(v["r"]),
                                         "relative": _ratio(math.sqrt(v["d"]), math.sqrt(v["r"]))})


def format_table(rows: list[list], header: list[str]) -> str:
    cells = [[f"{c:.4g}" if isinstance(c, float) else ("-" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in cells]
    return "\n".join(lines)
