"""Calibration targets (docs/paper.md §2) on hand-made evaluation tables, numbers worked out by hand."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from cptlib.evaluation import calibration


def _table(values: dict[str, tuple[float, ...]]) -> pd.DataFrame:
    """model -> (IF prompt-level strict, era-A acc, era-B acc, era-A via chat) as tidy rows, n = 300 items each."""
    keys = [("testbed_ifeval", "prompt_level_strict_acc"), ("testbed_mc_old", "acc"), ("testbed_mc_new", "acc"),
            ("testbed_chat_knowledge_a", "knowledge_acc")]
    return pd.DataFrame([{"model": m, "task": t, "metric": k, "value": v, "n": 300}
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
    table = _table({"base_v1": (0.15, 0.95, 0.30, 0.0), "instruct_v1": (0.85, 0.88, 0.50, 0.79),
                    "other_family": (0.2, 0.99, 0.2, 0.0), "instruct_v2": (0.9, 0.9, 0.3, 0.9),
                    "cpt_base_v1": (0.0, 0.9, 0.92, 0.0)})
    rows = calibration.judge(table, chance=0.25, margin=0.10)
    chance = "<= 0.35 (chance 0.25 + 2 SE)"
    assert rows.values.tolist() == [
        ["IF prompt-level strict", "base_v1", 0.15, "<= 0.15", True, 300],
        ["era-A accuracy", "base_v1", 0.95, ">= 0.95", True, 300],
        ["era-B accuracy", "base_v1", 0.30, chance, True, 300],
        ["IF prompt-level strict", "instruct_v1", 0.85, ">= 0.60 and >= base_v1 + 0.40", True, 300],
        ["era-A via chat", "instruct_v1", 0.79, ">= 0.80", False, 300],  # instruct_v1 only
        ["era-B accuracy", "instruct_v1", 0.50, chance, False, 300],
        ["IF prompt-level strict", "other_family", 0.2, "<= 0.15", False, 300],  # a base by its name
        ["era-A accuracy", "other_family", 0.99, ">= 0.95", True, 300],
        ["era-B accuracy", "other_family", 0.2, chance, True, 300],
        ["IF prompt-level strict", "instruct_v2", 0.9, ">= 0.60", True, 300],  # base_v2 not in the table
        ["era-B accuracy", "instruct_v2", 0.3, chance, True, 300],
        ["era-B accuracy", "cpt_base_v1", 0.92, ">= 0.90", True, 300],
    ]


def test_instruct_if_target_is_a_floor_and_a_gain_over_its_own_base():
    """Re-anchored target: IF >= 0.60 and >= base + 0.40. instruct_v1 0.64 over base_v1 0.11: met (0.64 >= 0.51);
    instruct_v2 0.62 over base_v2 0.25: missed (0.62 < 0.65); "instruct_v1 (tiny)" 0.58 over its base 0.10: missed
    (below the 0.60 floor); other_instruct (base: other_family) 0.70 over 0.20: met."""
    table = _table({"base_v1": (0.11, 0.98, 0.25, 0.0), "instruct_v1": (0.64, 0.9, 0.25, 0.88),
                    "base_v2": (0.25, 0.98, 0.25, 0.0), "instruct_v2": (0.62, 0.9, 0.25, 0.0),
                    "base_v1 (tiny)": (0.10, 0.98, 0.25, 0.0), "instruct_v1 (tiny)": (0.58, 0.9, 0.25, 0.0),
                    "other_family": (0.20, 0.98, 0.25, 0.0), "other_instruct": (0.70, 0.9, 0.25, 0.0)})
    rows = calibration.judge(table, chance=0.25, margin=0.10)
    ifs = rows[(rows.metric == "IF prompt-level strict") & rows.model.str.contains("instruct")]
    assert dict(zip(ifs.model, ifs.met)) == {"instruct_v1": True, "instruct_v2": False, "instruct_v1 (tiny)": False,
                                             "other_instruct": True}
    assert set(ifs[ifs.model == "other_instruct"].target) == {">= 0.60 and >= other_family + 0.40"}


def test_ratio_targets_worked_by_hand():
    """Residuals 0.08 and 0.12 of the base norm; CPT drift 0.03 of it -> 0.03 / 0.08 = 0.375 of instruct_v1's
    residual; bits per byte 2.6 on era-B news / 2.0 on era-A news = 1.3 (at the bound: met); 9,000,000
    pre-training tokens / 200,000 CPT tokens = 45."""
    rows = calibration.ratios({"instruct_v1": 0.08, "instruct_v2": 0.12}, 0.03 / 0.08, 200_000, 9_000_000, 2.6, 2.0, 200)
    got = [(r.metric, r.model, round(r.value, 6), r.target, r.met) for r in rows.itertuples()]
    assert got == [("residual norm / base norm", "instruct_v1", 0.08, "<= 0.10", True),
                   ("residual norm / base norm", "instruct_v2", 0.12, "<= 0.10", False),
                   ("CPT drift / residual norm", "cpt_base_v1", 0.375, "<= 0.50", True),
                   ("news register shift", "base_v1", 1.3, "<= 1.30", True),
                   ("pretrain tokens / CPT tokens", "base_v1", 45.0, ">= 40", True)]
    assert rows.n.tolist()[3] == 200


def test_issue_30_targets_news_via_chat_and_held_out_phrasing_per_seed():
    """Ancestors (every seed) at most 0.05 via chat; CPT(instruct_v1) and CPT(base_v1)+SFT at least 0.50; CPT(base_v1)
    at least 0.80 on the held-out phrasing; the SFT recipe is not judged on era-B MC (not a CPT target)."""
    extra = {("testbed_chat_knowledge", "knowledge_acc"): {"base_v1": 0.0, "instruct_v1": 0.04, "instruct_v1 (seed 1)":
                                                           0.06, "cpt_instruct_v1": 0.31, "cpt_base_v1+sft": 0.55,
                                                           "cpt_base_v1": 0.0},
             ("testbed_mc_new_heldout", "acc"): {"cpt_base_v1": 0.82}}
    table = _table({"base_v1": (0.1, 0.98, 0.25, 0.0), "instruct_v1": (0.7, 0.9, 0.25, 0.9),
                    "instruct_v1 (seed 1)": (0.65, 0.9, 0.25, 0.7), "cpt_instruct_v1": (0.6, 0.9, 0.95, 0.9),
                    "cpt_base_v1+sft": (0.6, 0.9, 0.80, 0.9), "cpt_base_v1": (0.1, 0.9, 0.95, 0.0)})
    table = pd.concat([table, pd.DataFrame([{"model": m, "task": t, "metric": k, "value": v, "n": 300}
                                            for (t, k), by in extra.items() for m, v in by.items()])])
    rows = calibration.judge(table, chance=0.25, margin=0.10)
    got = {(r.metric, r.model): (r.target, r.met) for r in rows.itertuples()}
    assert got[("era-B via chat", "instruct_v1")] == ("<= 0.05", True)
    assert got[("era-B via chat", "instruct_v1 (seed 1)")] == ("<= 0.05", False)
    assert got[("era-A via chat", "instruct_v1 (seed 1)")] == (">= 0.80", False)  # every seed's instruct_v1
    assert got[("era-B via chat", "cpt_instruct_v1")] == (">= 0.50", False)
    assert got[("era-B via chat", "cpt_base_v1+sft")] == (">= 0.50", True)
    assert got[("era-B accuracy (held-out phrasing)", "cpt_base_v1")] == (">= 0.80", True)
    assert ("era-B accuracy", "cpt_base_v1+sft") not in got and ("era-B via chat", "cpt_base_v1") not in got


def test_a_name_without_a_role_is_an_error_before_evaluation():
    with pytest.raises(ValueError, match=r"model 'mystery' has no calibration targets: the judged models are base_v1"):
        calibration.calibration_table({"base_v1": "unused", "mystery": "unused"}, "unused")


@pytest.mark.parametrize("label,member,seed,size", [
    ("base_v1", "base_v1", None, None), ("instruct_v1 (seed 2)", "instruct_v1", 2, None),
    ("base_v1 (tiny)", "base_v1", None, "tiny"), ("instruct_v1 (base) (seed 1)", "instruct_v1", 1, "base"),
    ("cpt_base_v1+sft", "cpt_base_v1+sft", None, None), ("other_instruct", "other_instruct", None, None),
])
def test_a_model_id_and_its_label_are_inverses(label, member, seed, size):
    mid = calibration.ModelId.parse(label)
    assert (mid.member, mid.seed, mid.size) == (member, seed, size) and mid.label == label


def test_a_role_comes_from_the_member_not_from_a_word_in_the_name():
    """The old rule read roles from substrings: "cpt" anywhere meant CPT, "base" a base. "base_v1 (seed 1)" and
    "instruct_v1 (base)" (the size called base) are what the member says; a near-miss name is an error."""
    ModelId, Role = calibration.ModelId, calibration.Role
    assert ModelId.parse("instruct_v1 (base)").role is Role.INSTRUCT
    assert ModelId.parse("other_family").role is Role.BASE and ModelId.parse("cpt_base_v1+sft").role is Role.CPT
    assert ModelId.parse("instruct_v2 (seed 1)").base() == ModelId("base_v2", seed=1)
    assert ModelId.parse("other_instruct").base().label == "other_family"
    for bad in ("my_cpt_model", "base_v1 (seed x)", "instruct_v1(seed 1)"):
        with pytest.raises(ValueError, match="calibration"):
            ModelId.parse(bad)
    with pytest.raises(ValueError, match="not an instruct model"):
        ModelId("base_v1").base()
