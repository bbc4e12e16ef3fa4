"""The family's one resolver: every model the study starts from, and the CPT of any of them.

    from cptlib.family import build_family, cpt           # this module, through the package's lazy API
    family = build_family(load_profile("default"), seed=0)      # {"data": Path, "base_v1": Path, ...}
    cpt_base = cpt(load_profile("default"), family["base_v1"], seed=0)

A testbed profile's members come from its released ancestors (cptlib.family.ancestors, `released_ancestors:
true`) or are trained here (cptlib.family.build); a real profile's are resolved from its checkpoints
(cptlib.family.released). The testbed's building blocks are re-exported, so that this module is the family's API.
"""
from __future__ import annotations

from pathlib import Path

from cptlib.config import Profile, TrainConfig
from cptlib.family import MEMBERS  # noqa: F401 -- re-exported with the rest of the family's API
from cptlib.family.kind import family_for
from cptlib.family.build import (  # noqa: F401 -- re-exported: the family's API in one module
    continue_lm,
    pretrain,
    testbed_data,
    tokenizer_stage,
    train_family,
    train_size,
    with_size,
)

__all__ = ["MEMBERS", "build_family", "continue_lm", "cpt", "instruct", "pretrain", "size_members", "testbed_data",
           "tokenizer_stage", "train_family", "train_size", "with_size"]


def build_family(profile: Profile, seed: int, other_family: bool = True) -> dict[str, Path]:
    """The testbed data, tokenizer and family members for one training seed: resolved from the released ancestors
    (`profile.released_ancestors`, cptlib.family.ancestors), or trained (`train_family`); a real profile's are resolved
    from its checkpoints (cptlib.family.released). `other_family=False` leaves out the members only the cross-family check
    (N1) needs. The kind is chosen by cptlib.family.kind.family_for."""
    return family_for(profile).members(seed, other_family)


def size_members(profile: Profile, size: str, seed: int) -> tuple[Path, Path]:
    """(base_v1, instruct_v1) of `size` for the size ablation: released, or trained."""
    if profile.released_ancestors:
        from cptlib.family.ancestors import released_size

        return released_size(profile, size)
    return train_size(profile, size, seed)


def cpt(profile: Profile, model: Path, seed: int, cfg: TrainConfig | None = None) -> Path:
    """Continued pre-training of `model` on the era-B news corpus (profile.cpt unless `cfg` is given);
    for a real profile, on its `cpt_data` corpus."""
    return family_for(profile).cpt(model, seed, cfg)


def instruct(profile: Profile, parent: Path, data: Path, version: str, seed: int) -> Path:
    """SFT of `parent` on the testbed's instruction data of `version`; a real profile has none (an error)."""
    return family_for(profile).instruct(parent, data, version, seed)
