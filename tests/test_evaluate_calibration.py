"""Calibration targets (BRIEF §2) on hand-made evaluation tables, numbers worked out by hand."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from cptlib import calibration


def _table(values: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
    """model -> (IF prompt-level strict, era-A acc, era-B acc) as tidy rows."""
    keys = [("testbed_ifeval", "prompt_level_strict_acc"), ("testbed_mc_old", "acc"), ("testbed_mc_new", "acc")]
    return pd.DataFrame([{"model": m, "task": t, "metric": k, "value": v}
                         for m, vs in values.items() for (t, k), v in zip(keys, vs)])


def test_chance_level_and_margin_of_mixed_items(tmp_path):
    """k = 4, 4, 2: chance = (1/4 + 1/4 + 1/2) / 3 = 1/3; margin = 2 * sqrt(3/16 + 3/16 + 1/4) / 3 = 0.52705."""
    (tmp_path / "eval").mkdir()
    items = [{"choices": [" a"] * k} for k in (4, 4, 2)]
    (tmp_path / "eval" / "mc_new.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    chance, margin = calibration.chance_level(tmp_path)
    assert chance == pytest.approx(1 / 3)
    assert margin == pytest.approx(2 * math.sqrt(0.625) / 3) and margin == pytest.approx(0.52705, abs=1e-5)


def test_targets_by_role():
    table = _table({"base_v1": (0.05, 0.95, 0.30), "instruct_v1": (0.85, 0.88, 0.50), "cpt_base_v1": (0.0, 0.9, 0.92)})
    rows = calibration.judge(table, chance=0.25, margin=0.10)
    assert rows.values.tolist() == [
        ["IF prompt-level strict", "base_v1", 0.05, "<= 0.10", True],
        ["era-A accuracy", "base_v1", 0.95, ">= 0.90", True],
        ["era-B accuracy", "base_v1", 0.30, "<= 0.35 (chance 0.25 + 2 SE)", True],
        ["IF prompt-level strict", "instruct_v1", 0.85, ">= 0.80", True],
        ["era-A accuracy", "instruct_v1", 0.88, ">= 0.90", False],
        ["era-B accuracy", "instruct_v1", 0.50, "<= 0.35 (chance 0.25 + 2 SE)", False],
        ["era-B accuracy", "cpt_base_v1", 0.92, ">= 0.90", True],
    ]


def test_a_name_without_a_role_is_an_error_before_evaluation():
    with pytest.raises(ValueError, match=r"model name 'mystery' says neither base, instruct nor cpt"):
        calibration.calibration_table({"base_v1": "unused", "mystery": "unused"}, "unused")
