"""The model family's members by name: the released models the study starts from (docs/paper.md §2).

A StrEnum: each member is its own name as a string, so the tables, stage keys, file names and figures hold the plain
text ("instruct_v1"), while code names a member by its constant (Member.INSTRUCT_V1) and never retypes it.
"""
from __future__ import annotations

from enum import StrEnum


class Member(StrEnum):
    BASE_V1 = "base_v1"  # the base model of version 1 (the paper: LLaMA 3 8B)
    BASE_V2 = "base_v2"  # the next version's base (LLaMA 3.1 8B)
    INSTRUCT_V1 = "instruct_v1"  # base_v1 instruction-tuned (the v1 recipe)
    INSTRUCT_V2 = "instruct_v2"  # base_v2 instruction-tuned (the v2 recipe)
    OTHER_FAMILY = "other_family"  # another family's base (N1)
    OTHER_INSTRUCT = "other_instruct"  # and its instruct model
