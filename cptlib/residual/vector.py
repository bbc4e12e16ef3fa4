"""The instruction residual as a value, in the style of task_vectors: `r = Residual.from_models(base, instruct)`,
`r * 0.5`, `r1 + r2`, `-r`, `r.save(dir)`, `r.apply_to(target, out)`.

A `Residual` is a weighted list of terms, each either a pair of models (Θr = θ_instruct − θ_base, computed
on demand) or a residual directory written by `save`. Nothing is read until a tensor is asked for, and then
one tensor at a time; merge methods see the terms separately (TIES of r1 + r2 merges two task vectors).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from cptlib.residual import lowrank
from cptlib.residual.analysis import dot
from cptlib.residual.checkpoint import MANIFEST_FILE, Checkpoint, ResidualError, match_tensors
from cptlib.core.errors import MissingInputError



def compute_dtype(*dtypes: torch.dtype | None) -> torch.dtype:
    """fp32, or fp64 when an input is fp64 (an fp64 residual exists to make round trips exact)."""
    return torch.float64 if torch.float64 in dtypes else torch.float32


class Workspace:
    """One flat buffer that every tensor of a pass is computed into, in turn.

    Reusing it, instead of allocating (or copy-on-writing a memory map) per tensor, saves a page fault per
    4 KB of every tensor: about half the time of a pass. It holds the largest tensor seen so far.
    """

    def __init__(self):
        self._buffer: torch.Tensor | None = None

    def view(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        numel = math.prod(shape)
        if self._buffer is None or self._buffer.dtype != dtype or self._buffer.numel() < numel:
            self._buffer = None  # free the old one first: never two buffers at once
            self._buffer = torch.empty(numel, dtype=dtype)
        return self._buffer[:numel].view(shape)


class ModelPair:
    """Θr = θ_instruct − θ_base of two model directories."""

    def __init__(self, base: str | Path, instruct: str | Path, embed_policy: str = "error"):
        self.base, self.instruct = Checkpoint(base), Checkpoint(instruct)
        for ckpt in (self.base, self.instruct):
            for info in ckpt.tensors.values():
                if not info.dtype.is_floating_point:
                    raise ResidualError(f"{ckpt.path}: tensor {info.name} has dtype {info.dtype}; only "
                                        "floating-point weights have a residual")
        actions = match_tensors({n: i.shape for n, i in self.base.tensors.items()},
                                {n: i.shape for n, i in self.instruct.tensors.items()},
                                (f"base {self.base.path}", f"instruct {self.instruct.path}"), embed_policy)
        self.skipped = {n: "embed policy skip: vocabulary rows differ between base and instruct"
                        for n, a in actions.items() if a == "skip"}
        self.shapes = {}
        for name, info in self.base.tensors.items():
            if actions[name] == "slice":
                self.shapes[name] = (min(info.shape[0], self.instruct.tensors[name].shape[0]), *info.shape[1:])
            elif actions[name] == "same":
                self.shapes[name] = info.shape
        self.tied = self.base.tied
        self.chat_dir = self.instruct.path
        self.base_id = str(self.base.path.resolve())

    def load(self, name: str, out: Workspace, storage: torch.dtype | None = None) -> tuple[torch.Tensor, float]:
        """(Θr of one tensor, computed into `out`, ‖θ_base‖ of the rows it covers). fp32, or fp64 when an input
        or `storage` is fp64, so that an fp64 residual is the exact difference."""
        shape = self.shapes[name]
        dtype = compute_dtype(self.base.tensors[name].dtype, self.instruct.tensors[name].dtype, storage)
        delta, base_sq = out.view(shape, dtype), 0.0
        stop = shape[0] if shape else None  # embed policy "slice": only the vocabulary rows both models have
        for (rows, inst), (_, base) in zip(self.instruct.chunks(name, stop), self.base.chunks(name, stop)):
            base_sq += dot(base, base)
            torch.sub(inst.to(dtype), base.to(dtype), out=delta[rows])
        return delta, math.sqrt(base_sq)

    def checkpoints(self) -> dict[str, Checkpoint]:
        return {"base": self.base, "instruct": self.instruct}

    def base_record(self) -> dict:
        # No hashes: the base is read live, so there is nothing recorded that it could have drifted from.
        return {"path": str(self.base.path.resolve()), "sha256": None}


class StoredResidual:
    """A residual directory written by `Residual.save` (full or low-rank)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        manifest_path = self.path / MANIFEST_FILE
        if not manifest_path.is_file():
            raise MissingInputError(f"{self.path}: no {MANIFEST_FILE}, so not a residual directory; write one "
                                    "with `cptlib residual extract`")
        self.manifest = json.loads(manifest_path.read_text())
        self.ckpt = Checkpoint(self.path)
        self.shapes = {n: tuple(m["shape"]) for n, m in self.manifest["tensors"].items()}
        for name in self.shapes:
            if name not in self.ckpt.tensors and name + lowrank.US_SUFFIX not in self.ckpt.tensors:
                raise ResidualError(f"{self.path}: the manifest lists {name} but no shard holds it")
        self.skipped = self.manifest["skipped"]
        self.tied = self.manifest["tie_word_embeddings"]
        self.chat_dir = self.path
        self.base_id = self.manifest["base_id"]

    def load(self, name: str, out: Workspace, storage: torch.dtype | None = None) -> tuple[torch.Tensor, float | None]:
        """(Θr of one tensor, read or rebuilt from its SVD factors into `out`, the recorded ‖θ_base‖)."""
        base_norm = self.manifest["tensors"][name]["base_norm"]
        if name in self.ckpt.tensors:
            t = out.view(self.shapes[name], compute_dtype(self.ckpt.tensors[name].dtype, storage))
            for rows, block in self.ckpt.chunks(name):
                t[rows].copy_(block)
            return t, base_norm
        us, vh = self.ckpt.get(name + lowrank.US_SUFFIX), self.ckpt.get(name + lowrank.VH_SUFFIX)
        t = out.view(self.shapes[name], compute_dtype(us.dtype, storage))
        return lowrank.reconstruct(us, vh, out=t), base_norm

    def checkpoints(self) -> dict[str, Checkpoint]:
        return {"residual": self.ckpt}

    def base_record(self) -> dict:
        if self.manifest["base"] is None:
            raise ResidualError(f"{self.path} sums residuals of different bases; it has no single base")
        return self.manifest["base"]


class Residual:
    """Σ_k c_k·Θ_k over terms (c_k, source); arithmetic builds new residuals without reading anything."""

    def __init__(self, terms: list[tuple[float, ModelPair | StoredResidual]]):
        self.terms = tuple(terms)
        first = self.terms[0][1]
        for _, src in self.terms[1:]:
            match_tensors(first.shapes, src.shapes, ("one residual", "another"), "error")
            if src.tied != first.tied or src.skipped != first.skipped:
                raise ResidualError("the residuals differ in tied embeddings or skipped tensors; combine "
                                    "residuals of one architecture extracted with the same --embed-policy")
        self.names, self.shapes = list(first.shapes), first.shapes
        self.skipped, self.tied, self.chat_dir = first.skipped, first.tied, first.chat_dir
        # One per term, not per source: in r + r both terms read one source into different buffers.
        self._workspaces = [Workspace() for _ in self.terms]

    @classmethod
    def from_models(cls, base: str | Path, instruct: str | Path, embed_policy: str = "error") -> Residual:
        return cls([(1.0, ModelPair(base, instruct, embed_policy))])

    @classmethod
    def load(cls, path: str | Path) -> Residual:
        return cls([(1.0, StoredResidual(path))])

    def __add__(self, other: Residual) -> Residual:
        return Residual(self.terms + other.terms)

    def __sub__(self, other: Residual) -> Residual:
        return self + (-other)

    def __mul__(self, coef: float) -> Residual:
        return Residual([(c * float(coef), src) for c, src in self.terms])

    __rmul__ = __mul__

    def __neg__(self) -> Residual:
        return self * -1.0

    def __repr__(self) -> str:
        parts = [f"{c:g}·{type(s).__name__}({getattr(s, 'path', None) or s.instruct.path})" for c, s in self.terms]
        return f"Residual({' + '.join(parts)})"

    def tensors(self, name: str, storage: torch.dtype | None = None) -> tuple[list[torch.Tensor], float | None]:
        """(c_k·Θ_k of one tensor for every term, ‖θ_base‖ when all terms share one base, else None).

        The tensors live in this residual's workspaces: valid until the next call, and theirs to modify."""
        taus, base_norms = [], []
        for (coef, src), workspace in zip(self.terms, self._workspaces):
            t, base_norm = src.load(name, workspace, storage)
            taus.append(t if coef == 1.0 else t.mul_(coef))
            base_norms.append(base_norm)
        same_base = len({src.base_id for _, src in self.terms}) == 1
        return taus, base_norms[0] if same_base else None

    def tensor(self, name: str) -> torch.Tensor:
        """Σ_k c_k·Θ_k of one tensor (task arithmetic)."""
        taus, _ = self.tensors(name)
        return sum(taus[1:], taus[0])

    def base_record(self) -> dict:
        if len({src.base_id for _, src in self.terms}) != 1:
            raise ResidualError("this residual sums terms extracted from different bases; it has no single base")
        return self.terms[0][1].base_record()

    def save(self, out: str | Path, **options) -> Path:
        """Write Σ_k c_k·Θ_k as a residual directory; options of `cptlib.residual.stream.save_residual`."""
        from cptlib.residual.stream import save_residual

        return save_residual(self, out, **options)

    def apply_to(self, target: str | Path, out: str | Path, alpha: float = 1.0, **options) -> Path:
        """Write θ_target + α·merge(Θ_1..Θ_k) as a model; options of `cptlib.residual.stream.apply_residual`."""
        from cptlib.residual.stream import apply_residual

        return apply_residual(self, target, out, alpha=alpha, **options)
