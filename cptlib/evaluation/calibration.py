"""Calibration of the testbed: is the model family in the paper's regime (docs/testbed.md, the regime)?

    table = calibration_table({"base_v1": P1, "instruct_v1": P2, ..., "cpt_base_v1": P5}, DATA_DIR)
    # rows: metric, model, value, target, met, n   (n = items behind the value; empty for ratios)

Targets, fixed before looking at the claims (C1-C4) and never tuned towards them:
- IF prompt-level strict (held-out IFEval prompts): bases <= 0.15; instruct models >= 0.60 and >= their base's
  + 0.40 (re-anchored in issue 30 on real instruct models' IFEval, 0.71-0.77 at 7-8B; it was >= 0.85);
- era-A accuracy (MC): bases >= 0.95;          era-A via chat (answer and format): instruct_v1 >= 0.80;
- era-B accuracy (MC): every ancestor at chance (<= chance + 2 standard errors of a guessing model over the
  items), CPT(base_v1) and CPT(instruct_v1) >= 0.90 at the default budget;
- era-B accuracy (held-out phrasing; MC whose query no training file contains): CPT(base_v1) >= 0.80;
- era-B via chat (answer and format): every ancestor <= 0.05; CPT(instruct_v1) and CPT(base_v1)+SFT
  ("cpt_base_v1+sft") >= 0.50 at the default CPT (issue 30, step 3: an assistant that knows the news);
- residual norm / base norm ‖Θr‖/‖θ_base‖: instruct_v1, instruct_v2 <= 0.10 (post-training is a small change);
- CPT drift / residual norm ‖θ_cpt − θ_base‖/‖Θr‖: CPT(base_v1) <= 0.50;
- news register shift: base_v1's bits per byte on held-out era-B news / on held-out era-A news <= 1.3;
- pretrain tokens / CPT tokens: base_v1 >= 40 (pre-training >> CPT).
Which targets a model has follows from what it is, a `ModelId`: a family member or a CPT model (ROLES: base,
instruct or CPT), of another ancestor seed of a paired release or another model size. Its label, "instruct_v1
(seed 1)", "base_v1 (tiny)", is what the tables print; `ModelId.parse` is its exact inverse, and an unknown model
is an error, never guessed from a word in its name.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

import pandas as pd

from cptlib.evaluation.evaluate import EvalSettings, evaluate_model
from cptlib.core.errors import InputError
from cptlib.members import Member

IF = ("testbed_ifeval", "prompt_level_strict_acc", "IF prompt-level strict")
ERA_A = ("testbed_mc_old", "acc", "era-A accuracy")
ERA_A_CHAT = ("testbed_chat_knowledge_a", "knowledge_acc", "era-A via chat")
ERA_B = ("testbed_mc_new", "acc", "era-B accuracy")
ERA_B_HELD = ("testbed_mc_new_heldout", "acc", "era-B accuracy (held-out phrasing)")
ERA_B_CHAT = ("testbed_chat_knowledge", "knowledge_acc", "era-B via chat")
CPT_BASE, CPT_INSTRUCT, CPT_SFT = "cpt_base_v1", "cpt_instruct_v1", "cpt_base_v1+sft"  # the CPT models judged
BPB_B, BPB_A_NEWS = ("testbed_ppl_b", "bits_per_byte"), ("testbed_ppl_a_news", "bits_per_byte")
RESIDUAL, DRIFT = "residual norm / base norm", "CPT drift / residual norm"
REGISTER, TOKENS = "news register shift", "pretrain tokens / CPT tokens"
BASE_IF_MAX, INSTRUCT_IF_MIN, ERA_A_MIN, CHAT_A_MIN, KNOWN_MIN = 0.15, 0.60, 0.95, 0.80, 0.90
HELD_MIN, CHAT_B_MIN, CHAT_B_MAX = 0.80, 0.50, 0.05
INSTRUCT_IF_GAIN = 0.40  # an instruct model follows instructions at least this much better than its base
RESIDUAL_MAX, DRIFT_RATIO_MAX, REGISTER_MAX, TOKEN_RATIO_MIN = 0.10, 0.50, 1.3, 40.0
COLUMNS = ["metric", "model", "value", "target", "met", "n"]  # n: items behind the value (empty for a ratio)


class Role(str, Enum):
    BASE = "base"
    INSTRUCT = "instruct"
    CPT = "cpt"  # after continued pre-training (CPT(base_v1)+SFT included)


ROLES = {Member.BASE_V1: Role.BASE, Member.BASE_V2: Role.BASE, Member.OTHER_FAMILY: Role.BASE,
         Member.INSTRUCT_V1: Role.INSTRUCT, Member.INSTRUCT_V2: Role.INSTRUCT, Member.OTHER_INSTRUCT: Role.INSTRUCT,
         CPT_BASE: Role.CPT, CPT_INSTRUCT: Role.CPT, CPT_SFT: Role.CPT}
BASE_OF = {Member.INSTRUCT_V1: Member.BASE_V1, Member.INSTRUCT_V2: Member.BASE_V2,
           Member.OTHER_INSTRUCT: Member.OTHER_FAMILY}
_LABEL = re.compile(r"(?P<member>\S+)(?: \((?P<size>[a-z0-9_]+)\))?(?: \(seed (?P<seed>\d+)\))?")


@dataclass(frozen=True)
class ModelId:
    """A model the calibration judges: `member` (a family member or a CPT model, ROLES) of ancestor seed `seed`
    (None: the first, or one release shared by every seed) at model size `size` (None: the profile's own)."""
    member: str
    seed: int | None = None
    size: str | None = None

    def __post_init__(self) -> None:
        if self.member not in ROLES:
            raise InputError(f"model {self.member!r} has no calibration targets: the judged models are "
                             f"{', '.join(ROLES)}")

    @property
    def role(self) -> Role:
        return ROLES[self.member]

    @property
    def label(self) -> str:
        """What the tables print: "instruct_v1", "base_v1 (tiny)", "instruct_v1 (seed 2)"."""
        return self.member + (f" ({self.size})" if self.size else "") + (f" (seed {self.seed})" if self.seed is not None else "")

    def base(self) -> ModelId:
        """The base an instruct model was tuned from (of the same seed and size)."""
        if self.member not in BASE_OF:
            raise InputError(f"{self.label} is not an instruct model: it has no base")
        return replace(self, member=BASE_OF[self.member])

    @classmethod
    def parse(cls, label: str) -> ModelId:
        """The model a table's label names (the inverse of .label)."""
        m = _LABEL.fullmatch(label)
        if m is None:
            raise InputError(f"{label!r} is not a calibration model's label (e.g. base_v1, instruct_v1 (seed 1), "
                             f"base_v1 (tiny))")
        return cls(m["member"], None if m["seed"] is None else int(m["seed"]), m["size"])


def chance_level(data_dir: Path) -> tuple[float, float]:
    """(chance accuracy, margin) on the era-B items: the mean of 1/k over items with k choices, and two
    standard errors of that mean for a guessing model (sqrt(sum p(1-p)) / n)."""
    items = [json.loads(line) for line in (Path(data_dir) / "eval" / "mc_new.jsonl").read_text().splitlines() if line]
    if not items:
        raise InputError(f"{data_dir}/eval/mc_new.jsonl holds no items")
    p = [1 / len(item["choices"]) for item in items]
    return sum(p) / len(p), 2 * math.sqrt(sum(q * (1 - q) for q in p)) / len(p)


def _row(metric: str, model: str, value_n: tuple[float, int | None], op: str, bound: float, note: str = "") -> dict:
    value, n = value_n
    met = value <= bound if op == "<=" else value >= bound
    return {"metric": metric, "model": model, "value": value, "target": f"{op} {bound:.2f}{note}", "met": bool(met),
            "n": n}


def _instruct_if(model: str, value_n: tuple[float, int | None], base: str, base_if: float | None) -> dict:
    """instruct IF >= INSTRUCT_IF_MIN and >= its base's (`base`, a label) + INSTRUCT_IF_GAIN (the floor alone where
    the base is not in the table)."""
    row = _row(IF[2], model, value_n, ">=", INSTRUCT_IF_MIN)
    if base_if is not None:
        row["met"] = row["met"] and value_n[0] >= base_if + INSTRUCT_IF_GAIN - 1e-12
        row["target"] += f" and >= {base} + {INSTRUCT_IF_GAIN:.2f}"
    return row


def judge(table: pd.DataFrame, chance: float, margin: float) -> pd.DataFrame:
    """The evaluation targets (IF, era-A, era-A via chat, era-B) from a tidy table of several models."""
    def lookup(model: str, key: tuple) -> tuple[float, int | None]:
        hit = table[(table.model == model) & (table.task == key[0]) & (table.metric == key[1])]
        if len(hit) != 1:
            raise ValueError(f"the table has {len(hit)} rows for {model} {key[0]} {key[1]}, expected 1")
        n = hit.n.iloc[0] if "n" in hit else None
        return float(hit.value.iloc[0]), None if n is None or pd.isna(n) else int(n)

    def has(model: str, key: tuple) -> bool:  # a task the table holds (a table of an older suite may lack one)
        return bool(((table.model == model) & (table.task == key[0]) & (table.metric == key[1])).any())

    rows = []
    for model in dict.fromkeys(table.model):
        mid = ModelId.parse(model)
        if mid.role is Role.CPT:
            if mid.member != CPT_SFT:
                rows.append(_row(ERA_B[2], model, lookup(model, ERA_B), ">=", KNOWN_MIN))
            if mid.member == CPT_BASE and has(model, ERA_B_HELD):
                rows.append(_row(ERA_B_HELD[2], model, lookup(model, ERA_B_HELD), ">=", HELD_MIN))
            if mid.member in (CPT_INSTRUCT, CPT_SFT) and has(model, ERA_B_CHAT):
                rows.append(_row(ERA_B_CHAT[2], model, lookup(model, ERA_B_CHAT), ">=", CHAT_B_MIN))
            continue
        if mid.role is Role.BASE:
            rows.append(_row(IF[2], model, lookup(model, IF), "<=", BASE_IF_MAX))
        else:
            base = mid.base().label
            base_if = lookup(base, IF)[0] if (table.model == base).any() else None
            rows.append(_instruct_if(model, lookup(model, IF), base, base_if))
        if mid.role is Role.BASE:
            rows.append(_row(ERA_A[2], model, lookup(model, ERA_A), ">=", ERA_A_MIN))
        elif mid.member == Member.INSTRUCT_V1:  # every seed's and size's
            rows.append(_row(ERA_A_CHAT[2], model, lookup(model, ERA_A_CHAT), ">=", CHAT_A_MIN))
        rows.append(_row(ERA_B[2], model, lookup(model, ERA_B), "<=", chance + margin, f" (chance {chance:.2f} + 2 SE)"))
        if has(model, ERA_B_CHAT):
            rows.append(_row(ERA_B_CHAT[2], model, lookup(model, ERA_B_CHAT), "<=", CHAT_B_MAX))
    return pd.DataFrame(rows, columns=COLUMNS)


def residual_rows(residual: dict[str, float]) -> pd.DataFrame:
    """The residual-norm target for each instruct model: {model: ‖Θr‖/‖θ_base‖} -> rows."""
    return pd.DataFrame([_row(RESIDUAL, m, (r, None), "<=", RESIDUAL_MAX) for m, r in residual.items()], columns=COLUMNS)


def ratios(residual: dict[str, float], drift_ratio: float, cpt_tokens: int, pretrain_tokens: int,
           bpb_b: float, bpb_a_news: float, n_heldout: int | None = None) -> pd.DataFrame:
    """The regime's ratio targets. `residual`: instruct model -> ‖Θr‖/‖θ_base‖ of its residual; `drift_ratio`:
    ‖θ_cpt − θ_base‖/‖Θr‖ of CPT(base_v1) at the default budget (with several seeds, the mean of each seed's
    drift over its own residual); bits per byte of base_v1."""
    rows = residual_rows(residual).to_dict("records")
    rows.append(_row(DRIFT, CPT_BASE, (drift_ratio, None), "<=", DRIFT_RATIO_MAX))
    rows.append(_row(REGISTER, Member.BASE_V1, (bpb_b / bpb_a_news, n_heldout), "<=", REGISTER_MAX))
    rows.append({**_row(TOKENS, Member.BASE_V1, (pretrain_tokens / cpt_tokens, None), ">=", TOKEN_RATIO_MIN),
                 "target": f">= {TOKEN_RATIO_MIN:.0f}"})
    return pd.DataFrame(rows, columns=COLUMNS)


def calibration_table(models: dict[str, Path], data_dir: Path, settings: EvalSettings = EvalSettings()) -> pd.DataFrame:
    """Evaluate the models (cached per content) and judge them against the evaluation targets; the ratio
    targets need the family's stages (cptlib.study.calibration adds them)."""
    for name in models:
        ModelId.parse(name)  # a model without calibration targets is an error before any evaluation runs
    table = pd.concat([evaluate_model(path, data_dir, settings, name=name) for name, path in models.items()])
    return judge(table, *chance_level(data_dir))


def bits_per_byte(table: pd.DataFrame, model: str) -> tuple[float, float, int]:
    """(era-B news, era-A news) held-out bits per byte of `model` and the items behind the era-A figure."""
    def get(key):
        hit = table[(table.model == model) & (table.task == key[0]) & (table.metric == key[1])]
        return float(hit.value.iloc[0]), int(hit.n.iloc[0])

    (b, _), (a, n) = get(BPB_B), get(BPB_A_NEWS)
    return b, a, n
