"""A claim of the study as one object: the paper's words and the in-kind rule, the study parts and ancestors it rests
on, how its effects are measured from the study's tables, how it is judged and, for an open question, the sentence
that answers it. Each claim is one module of this package; the registry (`cptlib.study.claims`) collects them."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from cptlib.study.effects import Quantity
from cptlib.study.verdicts import Context, Verdict

# The study's tables by part ("forgetting", "recipes", ...: cptlib.study.experiments.all_results).
Results = Mapping[str, pd.DataFrame]


def _nothing(r: Results) -> list[dict]:
    return []


def _no_answer(r: Results) -> str | None:
    return None


@dataclass(frozen=True)
class Claim:
    id: str  # "C1": the claims table's first column
    paper: str  # what the paper says (approximate: secondary sources, docs/paper.md §1)
    rule: str  # the in-kind rule, as the claims table and the report print it
    judge: Callable[[Context], Verdict]  # the verdict from the effects table (and ctx's other tables)
    measure: Callable[[Results], list[dict]] = _nothing  # its rows of the effects table (cptlib.study.effects.row)
    needs: tuple[str, ...] = ()  # the ancestors whose calibration the claim rests on
    old: str | None = None  # the rule before it was changed after some results were seen (and why: the text says)
    part: str | None = None  # the study part it stands on, where a suite may not run it (Suite.cannot): "not run"
    size: Mapping[Quantity, tuple[float, float, str]] = field(default_factory=dict)  # the paper's numbers (in size)
    answer: Callable[[Results], str | None] = _no_answer  # an open question's numbers: the report's sentence
