"""The tensor arithmetic of the merge methods (docs/paper.md §1, Q3), and module filters: pure functions of fp32 tensors.

Each method takes the list of task vectors τ_1..τ_k of one tensor (k = 1 for a single residual) and returns
the merged τ; the caller adds α·τ to the target. The methods themselves, with their parameters, are the registered
classes of cptlib.residual.methods: `MergeMethod("ties", density=0.2)(name, taus)`.
"""
from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass, field

import torch

from cptlib.core.errors import InputError

# One filter per name of options.MODULE_SUBSETS, in its order (tests/test_config.py checks).
FILTER_PRESETS = {
    "attention": {"include": ("*.self_attn.*",), "exclude": ()},
    "mlp": {"include": ("*.mlp.*",), "exclude": ()},
    "no-embeddings": {"include": (), "exclude": ("*embed_tokens*", "*lm_head*")},
    "no-norms": {"include": (), "exclude": ("*norm*",)},  # what a PEFT adapter without its vectors changes
}


def keep_top(t: torch.Tensor, density: float) -> torch.Tensor:
    """Mask of the round(density·n) entries of largest magnitude (entries tied at the threshold all kept)."""
    return keep_band(t, top_drop=0.0, density=density)


def keep_band(t: torch.Tensor, top_drop: float, density: float) -> torch.Tensor:
    """Mask of the entries ranked (by magnitude, largest first) in [round(top_drop·n), round((top_drop+density)·n));
    entries tied at a threshold are all kept, so the count can exceed the target on exact ties."""
    a = t.abs().reshape(-1)
    n = a.numel()
    hi, lo = round(top_drop * n), min(n, round((top_drop + density) * n))
    if lo <= hi:
        return torch.zeros_like(t, dtype=torch.bool)
    # kthvalue counts from the smallest: the r-th largest is the (n - r + 1)-th smallest.
    mask = a >= a.kthvalue(n - lo + 1).values
    if hi > 0:
        mask &= a <= a.kthvalue(n - hi).values
    return mask.reshape(t.shape)


def ties(taus: list[torch.Tensor], density: float) -> torch.Tensor:
    """TIES (Yadav et al. 2023): trim each τ_t to its top-k% by magnitude, elect γ = sign(Σ_t τ̂_t) per entry,
    then average the τ̂_t whose sign agrees with γ (zeros do not count). Modifies the inputs."""
    if density < 1.0:
        for t in taus:
            t.mul_(keep_top(t, density))
    if len(taus) == 1:  # one vector always agrees with its own sign: election and mean are the identity
        return taus[0]
    elected = torch.sign(sum(taus))
    total = torch.zeros_like(taus[0])
    count = torch.zeros_like(taus[0])
    for t in taus:
        agree = (torch.sign(t) == elected) & (t != 0)
        total += t * agree
        count += agree
    return total.div_(count.clamp_(min=1))


def dare_seed(seed: int, name: str, term: int) -> int:
    """A generator seed from (seed, tensor name, term): masks do not depend on the order tensors are visited."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}:{term}".encode()).digest()[:8], "little") >> 1


def dare(taus: list[torch.Tensor], drop_rate: float, seed: int, name: str) -> torch.Tensor:
    """DARE (Yu et al. 2024): drop each entry with probability p, rescale survivors by 1/(1−p), sum the τ_t."""
    for term, t in enumerate(taus):
        gen = torch.Generator().manual_seed(dare_seed(seed, name, term))
        t.mul_(torch.rand(t.shape, generator=gen) >= drop_rate).div_(1.0 - drop_rate)
    return task_arithmetic(taus)


def breadcrumbs(taus: list[torch.Tensor], density: float, gamma: float) -> torch.Tensor:
    """Model Breadcrumbs (Davari & Belilovsky 2024): per τ_t drop the largest γ fraction by magnitude and the
    smallest, so that a fraction `density` remains; sum the τ_t."""
    for t in taus:
        t.mul_(keep_band(t, top_drop=gamma, density=density))
    return task_arithmetic(taus)


def task_arithmetic(taus: list[torch.Tensor]) -> torch.Tensor:
    """Task arithmetic (Ilharco et al. 2023): Σ_t τ_t, accumulated into the first tensor."""
    total = taus[0]
    for t in taus[1:]:
        total.add_(t)
    return total


def _matches(pattern: str, name: str) -> bool:
    """`re:<regex>` is searched in the name; anything else is a shell glob over the whole name."""
    if pattern.startswith("re:"):
        return re.search(pattern[3:], name) is not None
    return fnmatch.fnmatchcase(name, pattern)


@dataclass(frozen=True)
class ModuleFilter:
    """Which tensors receive the residual; the rest keep the target's value. Empty include = everything."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    presets: tuple[str, ...] = field(default=())

    def __post_init__(self):
        for preset in self.presets:
            if preset not in FILTER_PRESETS:
                raise InputError(f"module filter preset {preset!r}: choose one of {', '.join(FILTER_PRESETS)}")

    def _groups(self) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
        """(label, include, exclude) per preset and per user pattern: each must match some tensor."""
        groups = [(f"preset {p}", FILTER_PRESETS[p]["include"], FILTER_PRESETS[p]["exclude"]) for p in self.presets]
        groups += [(f"--include {p}", (p,), ()) for p in self.include]
        return groups + [(f"--exclude {p}", (), (p,)) for p in self.exclude]

    def selects(self, name: str) -> bool:
        groups = self._groups()
        includes = [p for _, inc, _ in groups for p in inc]
        excludes = [p for _, _, exc in groups for p in exc]
        return (not includes or any(_matches(p, name) for p in includes)) and not any(_matches(p, name) for p in excludes)

    def check(self, names: list[str]) -> None:
        """A pattern that matches nothing is a typo, not a request: refuse it, naming the pattern."""
        for label, inc, exc in self._groups():
            if not any(_matches(p, n) for p in inc + exc for n in names):
                raise InputError(f"module filter {label} matches no tensor (e.g. {names[0] if names else '-'}); "
                                 "patterns are globs over the full name, or re:<regex>")
        if not any(self.selects(n) for n in names):
            raise InputError(f"module filter {self.describe()} selects no tensor at all")

    def describe(self) -> dict:
        return {"presets": list(self.presets), "include": list(self.include), "exclude": list(self.exclude)}
