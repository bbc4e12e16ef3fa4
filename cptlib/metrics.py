"""The study's metrics: one map from each short name (a column of every scores table) to what it measures.

    from cptlib.metrics import METRICS
    METRICS["IF"].task, METRICS["IF"].metric     # the testbed's lm-eval task and metric: testbed_ifeval, prompt_level_strict_acc
    METRICS["era_b"].label                       # the testbed figures' axis label
    [m.name for m in METRICS.values() if m.per_item]   # the accuracies: means over an evaluation's items

Everything else derives from this map: the testbed's scores table (cptlib.evaluation.suite), the names a real profile
may map in `eval.metrics` (cptlib.config), the figures' labels and panels, and which metrics have intervals over items
(cptlib.study.stats). A new study metric is one entry here (and, for the testbed, its task YAML in
cptlib/evaluation/tasks/testbed/ with its group).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str  # the short name: a column of the scores tables, a key of a real profile's eval.metrics
    task: str  # the testbed's lm-eval task that measures it
    metric: str  # lm-eval's metric of that task
    label: str  # what the testbed's figures call it
    role: str  # what it stands for; a real profile's label is "<role>: <its mapped task> <metric>"
    per_item: bool  # an accuracy, the mean of per-item scores: its interval crosses seeds and the evaluation's items
    panel: bool = False  # one of the accuracies the notebooks' figures show side by side


METRICS: dict[str, Metric] = {m.name: m for m in (  # in the scores tables' column order
    Metric("IF", "testbed_ifeval", "prompt_level_strict_acc", "IFEval prompt-level strict accuracy",
           "instruction following", per_item=True, panel=True),
    Metric("knowledge", "testbed_chat_knowledge", "knowledge_acc", "era-B knowledge via chat (answer and format)",
           "new knowledge via chat", per_item=True, panel=True),
    Metric("era_a", "testbed_mc_old", "acc", "era-A fact accuracy (MC)", "old knowledge", per_item=True, panel=True),
    Metric("era_b", "testbed_mc_new", "acc", "era-B news accuracy (MC)", "new knowledge", per_item=True, panel=True),
    Metric("era_b_heldout", "testbed_mc_new_heldout", "acc", "era-B news accuracy, held-out phrasing (MC)",
           "new knowledge, asked in new words", per_item=True),
    Metric("updated", "testbed_mc_updated", "acc", "prefers updated fact (MC)", "prefers updated fact", per_item=True),
    Metric("bpb_a", "testbed_ppl_a", "bits_per_byte", "era-A held-out bits per byte", "old-text bits per byte",
           per_item=False),
    Metric("bpb_b", "testbed_ppl_b", "bits_per_byte", "era-B held-out bits per byte",
           "held-out CPT text bits per byte", per_item=False),
)}
