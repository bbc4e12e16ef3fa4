"""Calibration of the testbed (BRIEF §2): does the model family behave as the study needs it to?

    table = calibration_table({"base_v1": P1, "instruct_v1": P2, "base_v2": P3, "instruct_v2": P4}, DATA_DIR)
    # rows: metric, model, value, target, met

Targets, checked and shown in notebook 00 (never tuned towards the paper's conclusions):
- base models rarely follow the IF constraints: IFEval prompt-level strict accuracy <= 0.10;
- instruct models follow them: >= 0.80;
- era-A facts are known before CPT: accuracy >= 0.90;
- era-B facts are unknown before CPT: accuracy at chance, i.e. <= chance + 2 standard errors of a
  chance-level score over the items (the stated margin); and learned after CPT: >= 0.90;
- CPT moves the weights little next to the instruction residual: ‖θ_cpt − θ_base‖ / ‖Θr‖ <= 0.50 (the
  paper's regime, BRIEF §2), for a CPT model and an instruct model trained from the same base.
A model's role comes from its name: "cpt" in it means after CPT, else "instruct" or "base".
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from cptlib.evaluate import EvalSettings, evaluate_model
from cptlib.stages import MANIFEST

IF = ("testbed_ifeval", "prompt_level_strict_acc", "IF prompt-level strict")
ERA_A = ("testbed_mc_old", "acc", "era-A accuracy")
ERA_B = ("testbed_mc_new", "acc", "era-B accuracy")
DRIFT = "CPT drift / residual norm"
BASE_IF_MAX, INSTRUCT_IF_MIN, KNOWN_MIN, DRIFT_RATIO_MAX = 0.10, 0.80, 0.90, 0.50


def role(name: str) -> str:
    lowered = name.lower()
    for key in ("cpt", "instruct", "base"):
        if key in lowered:
            return key
    raise ValueError(f"model name {name!r} says neither base, instruct nor cpt; name it e.g. base_v1, "
                     f"instruct_v1 or cpt_base_v1 so its calibration targets are known")


def chance_level(data_dir: Path) -> tuple[float, float]:
    """(chance accuracy, margin) on the era-B items: the mean of 1/k over items with k choices, and two
    standard errors of that mean for a guessing model (sqrt(sum p(1-p)) / n)."""
    items = [json.loads(line) for line in (Path(data_dir) / "eval" / "mc_new.jsonl").read_text().splitlines() if line]
    if not items:
        raise ValueError(f"{data_dir}/eval/mc_new.jsonl holds no items")
    p = [1 / len(item["choices"]) for item in items]
    return sum(p) / len(p), 2 * math.sqrt(sum(q * (1 - q) for q in p)) / len(p)


def judge(table: pd.DataFrame, chance: float, margin: float) -> pd.DataFrame:
    """Calibration rows (metric, model, value, target, met) from a tidy evaluation table of several models."""
    def value(model: str, key: tuple) -> float:
        hit = table[(table.model == model) & (table.task == key[0]) & (table.metric == key[1])]
        if len(hit) != 1:
            raise ValueError(f"the table has {len(hit)} rows for {model} {key[0]} {key[1]}, expected 1")
        return float(hit.value.iloc[0])

    rows = []

    def row(model: str, key: tuple, op: str, bound: float, note: str = "") -> None:
        v = value(model, key)
        met = v <= bound if op == "<=" else v >= bound
        rows.append({"metric": key[2], "model": model, "value": v, "target": f"{op} {bound:.2f}{note}", "met": met})

    for model in dict.fromkeys(table.model):
        kind = role(model)
        if kind == "cpt":
            row(model, ERA_B, ">=", KNOWN_MIN)
            continue
        row(model, IF, *(("<=", BASE_IF_MAX) if kind == "base" else (">=", INSTRUCT_IF_MIN)))
        row(model, ERA_A, ">=", KNOWN_MIN)
        row(model, ERA_B, "<=", chance + margin, f" (chance {chance:.2f} + 2 SE)")
    return pd.DataFrame(rows, columns=["metric", "model", "value", "target", "met"])


def drift_ratio(cpt_dir: Path, instruct_dir: Path) -> float:
    """‖θ_cpt − θ_base‖ / ‖θ_instruct − θ_base‖ from the two stages' manifests (each records its drift
    relative to its parent's norm); both must have the same parent, the base the residual comes from."""
    from cptlib.stages import read_manifest

    cpt_m, inst_m = read_manifest(Path(cpt_dir)), read_manifest(Path(instruct_dir))
    if cpt_m.get("parent") != inst_m.get("parent"):
        raise ValueError(f"{cpt_dir} and {instruct_dir} have different parents ({cpt_m.get('parent')} vs "
                         f"{inst_m.get('parent')}); the drift ratio compares two children of one base")
    return cpt_m["drift"]["total"] / inst_m["drift"]["total"]


def calibration_table(models: dict[str, Path], data_dir: Path, settings: EvalSettings = EvalSettings(),
                      residual_from: str = "instruct_v1") -> pd.DataFrame:
    """Evaluate the testbed family (cached per model content) and judge it against the BRIEF's targets.
    Each CPT model trained from the same base as `models[residual_from]` also gets its drift-ratio row."""
    for name in models:
        role(name)  # a name without a role is an error before any evaluation runs
    table = pd.concat([evaluate_model(path, data_dir, settings, name=name) for name, path in models.items()])
    rows = judge(table, *chance_level(data_dir))
    extra = []
    for name, path in models.items():
        recorded = all((Path(m) / MANIFEST).is_file() for m in (path, models.get(residual_from, path)))
        if role(name) == "cpt" and residual_from in models and recorded:  # drift is recorded by stages only
            try:
                ratio = drift_ratio(path, models[residual_from])
            except ValueError:
                continue  # a CPT of another base: no residual to compare with
            extra.append({"metric": DRIFT, "model": name, "value": ratio, "target": f"<= {DRIFT_RATIO_MAX:.2f}",
                          "met": ratio <= DRIFT_RATIO_MAX})
    return pd.concat([rows, pd.DataFrame(extra, columns=rows.columns)], ignore_index=True) if extra else rows
