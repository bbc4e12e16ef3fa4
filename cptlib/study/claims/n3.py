"""N3 (open): where in the network the residual lives."""
from __future__ import annotations

from cptlib.study import verdicts as V
from cptlib.study.claims.base import Claim, Results
from cptlib.study.claims.q3 import settings_text
from cptlib.members import Member


def answer(r: Results) -> str | None:
    return None if (ab := r.get("ablations")) is None else settings_text(ab, "modules")


def judge(ctx: V.Context) -> V.Verdict:
    return V.answered(ctx, CLAIM)  # each number says how many seeds it rests on


CLAIM = Claim(
    "N3", "(suggested check)", "open question: the module with the largest ‖Θr‖/‖θ_base‖, and IF with the "
    "attention-only and MLP-only residual.", judge, needs=(Member.BASE_V1, Member.INSTRUCT_V1), answer=answer)
