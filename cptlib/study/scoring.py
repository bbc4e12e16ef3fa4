"""A table of models, scored: each row's model evaluated (cached by content) and the study's metrics joined to it.

    table = scored([{"seed": 0, "model": "instruct_v1", "path": p}, ...], profile, data)   # + IF, knowledge, ...

Shared by the study's experiments (cptlib.study.experiments) and the size ladder (cptlib.study.scaling).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from cptlib.config import Profile
from cptlib.evaluation.suite import suite_for


def scored(rows: list[dict], profile: Profile, data: Path) -> pd.DataFrame:
    """Evaluate each row's `path` and join the metrics to the row (`path` and `tasks` are dropped). A row's
    `tasks` (testbed: PANEL_TASKS for an intermediate checkpoint) limits what it is evaluated on; the other
    metrics are NaN there."""
    labels = {str(i): r["path"] for i, r in enumerate(rows)}
    tasks = {str(i): r["tasks"] for i, r in enumerate(rows) if r.get("tasks")}
    metrics = suite_for(profile).scores(labels, data, tasks=tasks)
    return pd.DataFrame([{**{k: v for k, v in r.items() if k not in ("path", "tasks")}, **metrics.loc[str(i)].to_dict()}
                         for i, r in enumerate(rows)])
