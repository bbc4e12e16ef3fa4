"""The one interface between the study and what it evaluates: the synthetic testbed, or a real profile's checkpoints.

    suite = suite_for(profile)             # TestbedSuite or RealSuite, by the kind of cptlib.family.kind.family_for
    table = suite.scores({"cpt": path}, data, tasks={"cpt": PANEL_TASKS})   # a row per model, a column per metric
    suite.metric_tasks()                   # study metric -> (lm-eval task, metric) whose items it averages
    item_source(table.eval[0], "IF")       # the same, for a row's own evaluation (the intervals' per-item scores)
    suite.labels(), suite.panels()         # what each metric is called, which the figures show side by side
    suite.why_not("sft")                   # None if that part of the study runs, else why not

The study (cptlib.study) asks the suite and never tests whether a profile is real. The two kinds differ in what is
scored (the testbed's own lm-eval tasks on its generated data; a real profile's lm-eval tasks mapped to the study's
metrics by `eval.metrics`), in what the figures call a metric, and in which parts can run (a real profile has no
instruction data to fine-tune on again, no calibration targets, no size presets; the testbed has no English
benchmarks). How models are found and continued is the family's (cptlib.family.resolve), below this layer.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from cptlib.config import Profile
from cptlib.core.errors import InputError, MissingInputError
from cptlib.members import Member
from cptlib.metrics import METRICS as STUDY

if TYPE_CHECKING:
    import pandas as pd

    from cptlib.evaluation.evaluate import EvalSettings

# The study's metrics (cptlib.metrics, the one map) as the testbed measures them: short name -> (lm-eval task, metric).
METRICS = {m.name: (m.task, m.metric) for m in STUDY.values()}
PANELS = tuple(m.name for m in STUDY.values() if m.panel)  # the accuracies the notebooks show side by side
# What the study evaluates: the tasks its metrics read (the calibration of the ancestors in notebook 00 runs
# every testbed task; era-A via chat and the era-A news perplexity are only its), and for intermediate
# checkpoints (milestones, N4 cells) the tasks the panels show.
STUDY_TASKS = tuple(dict.fromkeys(task for task, _ in METRICS.values()))
PANEL_TASKS = tuple(dict.fromkeys(METRICS[m][0] for m in PANELS))

# The members each part of the study needs beyond instruct_v1; a real profile may declare them absent (models:
# null, e.g. a released instruct model whose base is not available): those parts are then not run.
NEEDS = {"transfer": (Member.BASE_V1, Member.BASE_V2),
         **dict.fromkeys(("n4", "recipes", "ablations", "residual_norms", "sft", "drift"), (Member.BASE_V1,))}
# What a real profile cannot run, and why (printed by the notebooks, recorded in the claims table).
TESTBED_ONLY = {
    "calibration targets": "the targets are the synthetic testbed's (released checkpoints are not calibrated); "
                           "the table shows the members' scores",
    "sft": "CPT(base_v1)+SFT needs the family's original instruction data (v1), which is not public",
    "sizes": "the sizes are the testbed's model presets; for real models, run one profile per model size",
    "shift": "the data-shift ablation trains on the testbed's era-A and era-B corpora",
}
# The reverse: parts only a real profile runs.
REAL_ONLY = {"benchmarks": "the paper's benchmarks are English; the testbed's models read its synthetic language "
                           "(a real profile lists them in eval.benchmarks)"}


@dataclass(frozen=True)
class Suite:
    """What a profile's models are scored on and which parts of the study it can run; `suite_for` picks the kind."""
    profile: Profile
    kind: ClassVar[str]  # the figures' footer: "synthetic testbed" / "real models"
    cannot: ClassVar[dict[str, str]]  # the parts this kind never runs, with why

    def absent(self) -> set[str]:
        """Members the profile declares absent (models: null)."""
        return set()

    def why_not(self, part: str) -> str | None:
        """Why `part` of the study does not run (None: it runs): this kind cannot, or a member it needs is absent."""
        if part in self.cannot:
            return self.cannot[part]
        if part == "benchmarks" and not self.profile.eval.benchmarks:
            return "the profile lists no eval.benchmarks"
        missing = [m for m in NEEDS.get(part, ()) if m in self.absent()]
        if missing:
            return f"it needs {' and '.join(missing)}, which the profile declares absent (models: null)"
        return None

    def metric_tasks(self) -> dict[str, tuple[str, str]]:
        """study metric -> (lm-eval task, metric) whose per-item scores it averages."""
        raise NotImplementedError

    def labels(self) -> dict[str, str]:
        """Axis labels of the study metrics."""
        raise NotImplementedError

    def panels(self) -> list[str]:
        """The accuracy panels of the notebooks' figures (of PANELS, those this suite measures)."""
        return [m for m in PANELS if m in self.metric_tasks()]

    def scores(self, models: dict[str, Path], data: Path, tasks: dict[str, tuple[str, ...]] | None = None,
               settings: EvalSettings | None = None) -> pd.DataFrame:
        """One row per model (index: its label), one column per study metric (NaN where not measured) and `eval`
        (the evaluation's stage directory: its per-item scores). `tasks[label]` limits a model's tasks (the testbed:
        intermediate checkpoints on the panels' tasks)."""
        raise NotImplementedError

    def scope(self) -> str:
        """What the figures are of, one sentence for every caption."""
        raise NotImplementedError

    def trains_instruct(self) -> bool:
        """Whether the profile instruction-tunes its own instruct_v1 here (a real pair, `models.instruct_v1: sft`):
        its SFT then has targets of its own (cptlib.study.sft_targets). The testbed's SFT is calibrated instead."""
        return False


@dataclass(frozen=True)
class TestbedSuite(Suite):
    """The synthetic testbed: its own lm-eval tasks (cptlib/evaluation/tasks/testbed) on its generated data."""
    kind: ClassVar[str] = "synthetic testbed"
    cannot: ClassVar[dict[str, str]] = REAL_ONLY

    def metric_tasks(self) -> dict[str, tuple[str, str]]:
        return dict(METRICS)

    def labels(self) -> dict[str, str]:
        return {m.name: m.label for m in STUDY.values()}

    def scores(self, models, data, tasks=None, settings=None):
        from cptlib.evaluation.evaluate import EvalSettings

        return testbed_scores(models, data, self.profile.study.eval_processes,
                              settings or EvalSettings(tasks=STUDY_TASKS), tasks)

    def scope(self) -> str:
        return TESTBED


TESTBED = "Synthetic testbed (tiny LLaMA models on a generated world), not the paper's 8B models."


@dataclass(frozen=True)
class RealSuite(Suite):
    """A real profile (`models:` set): lm-eval's tasks of `eval.tasks`, mapped to the study's metrics by `eval.metrics`."""
    kind: ClassVar[str] = "real models"

    @property
    def cannot(self) -> dict[str, str]:
        """TESTBED_ONLY, but a profile that trains its own instruct model (models.instruct_v1: sft) has its
        instruction data, so it runs CPT(base_v1)+SFT (and C6) too."""
        return {k: v for k, v in TESTBED_ONLY.items() if not (self.trains_instruct() and k == "sft")}

    def trains_instruct(self) -> bool:
        from cptlib.config import TRAINED_HERE

        return self.profile.models.instruct_v1 == TRAINED_HERE

    def absent(self) -> set[str]:
        return set(self.profile.models.absent())

    def metric_tasks(self) -> dict[str, tuple[str, str]]:
        from cptlib.evaluation.real_profile import study_metrics

        return study_metrics(self.profile)

    def labels(self) -> dict[str, str]:
        mapped = self.metric_tasks()
        return {m.name: f"{m.role}: {mapped[m.name][0]} {mapped[m.name][1]}" if m.name in mapped
                else f"{m.role} (not measured)" for m in STUDY.values()}

    def scores(self, models, data, tasks=None, settings=None):
        from cptlib.evaluation.real_profile import scores

        table = scores(self.profile, models, data)  # the profile's eval.tasks, whatever the row
        record_sources(table["eval"], self.metric_tasks())
        return table

    def scope(self) -> str:
        from cptlib.family.pypi_gguf import dequantised, is_pypi

        from cptlib.config import TRAINED_HERE

        m = self.profile.models
        v1 = (f"{m.base_v1} / its SFT here on the world's in-context instruction data (v1)"
              if m.instruct_v1 == TRAINED_HERE else
              f"{m.base_v1} / {m.instruct_v1} (v1)" if m.base_v1 and m.instruct_v1 else
              f"{m.instruct_v1} (instruct only: no base model)" if m.instruct_v1 else
              f"{m.base_v1} (base only: no instruct model)")
        v2 = f", {m.base_v2} / {m.instruct_v2} (v2)" if m.base_v2 else ""
        deviation = "".join(f" {role} is {dequantised(getattr(m, role))}."
                            for role in (Member.BASE_V1, Member.INSTRUCT_V1, Member.BASE_V2, Member.INSTRUCT_V2)
                            if is_pypi(getattr(m, role)))
        return f"Real models: {v1}{v2}; CPT on {self.profile.cpt_data.source}.{deviation}"


# What a real evaluation's study metrics read, recorded as RealSuite.scores makes its rows: {stage: {study metric:
# (lm-eval task, metric)}}. A fact about a table's rows, not a setting: a mapping is never replaced (a different one
# for the same evaluation is an error), so no call order changes an interval.
_REAL_SOURCES: dict[str, dict[str, tuple[str, str]]] = {}


@functools.lru_cache(maxsize=4096)
def _suite_of(stage: str) -> str | None:
    """The `suite` a finished evaluation stage was run on (its manifest's spec: immutable once finished)."""
    from cptlib.core.stages import is_finished, read_manifest

    if not is_finished(Path(stage)):
        raise MissingInputError(f"the evaluation {Path(stage).name} named by the table is not finished in "
                                f"{Path(stage).parent}: score the models again (the study's notebooks do) or point "
                                "CPTLIB_BUILD_DIR at the build that scored them")
    return read_manifest(Path(stage))["spec"].get("suite")


def record_sources(evaluations, mapped: dict[str, tuple[str, str]]) -> None:
    """Record that each real evaluation's study metrics read `mapped` (RealSuite.scores, as it makes the rows)."""
    mapped = {metric: tuple(source) for metric, source in mapped.items()}
    for name in evaluations:
        known = _REAL_SOURCES.setdefault(name, mapped)
        if known != mapped:
            raise InputError(f"the evaluation {name} was scored with the study metrics {known} and now with {mapped} "
                             "(two profiles with the same models and eval.tasks, different eval.metrics): score "
                             "each profile in its own process (`cptlib notebook run` does)")


def item_source(eval_name: str, metric: str) -> tuple[str, str] | None:
    """The lm-eval (task, metric) whose per-item scores the study metric `metric` of the evaluation stage
    `eval_name` (a table's `eval` column) averages; None where that evaluation does not measure it. Read from the
    evaluation itself: a testbed evaluation's metrics are METRICS; a real one's, the profile's eval.metrics it was
    scored under (RealSuite.scores in this process: a real evaluation is only ever read through its suite)."""
    from cptlib.core.paths import stages_dir

    if _suite_of(str(stages_dir() / eval_name)) == "testbed":
        return METRICS.get(metric)
    if eval_name not in _REAL_SOURCES:
        raise MissingInputError(f"the real evaluation {eval_name} was not scored in this process, so which task each "
                                "study metric reads is unknown: make the table with suite_for(profile).scores "
                                "(cptlib.study.scoring.scored) first")
    return _REAL_SOURCES[eval_name].get(metric)


def suite_for(profile: Profile) -> Suite:
    """The profile's suite: real checkpoints (`models:` set) or the synthetic testbed, by the kind of its family
    (cptlib.family.kind.family_for, the one place the kind is chosen)."""
    from cptlib.family.kind import RealFamily, TestbedFamily, family_for

    return {TestbedFamily: TestbedSuite, RealFamily: RealSuite}[type(family_for(profile))](profile)


def result_settings(model: Path, data: Path, wanted: EvalSettings) -> EvalSettings:
    """The settings to read `model`'s scores under: `wanted` if its evaluation is finished, else a finished one that
    holds every task `wanted` asks for (the full suite, as notebook 00 leaves for the ancestors and the two
    calibration CPT models, then STUDY_TASKS), else `wanted` itself (to be evaluated). The exact one first, so a
    table names the same evaluation whatever else (a pilot, a test) has been evaluated since."""
    from cptlib.core.stages import is_finished, stage_dir
    from cptlib.evaluation.evaluate import evaluation_spec

    for candidate in dict.fromkeys([wanted, replace(wanted, tasks=None), replace(wanted, tasks=STUDY_TASKS)]):
        if candidate.covers(wanted) and is_finished(stage_dir("eval", evaluation_spec(model, data, candidate))):
            return candidate
    return wanted


def testbed_scores(models: dict[str, Path], data: Path, processes: int = 1, settings: EvalSettings | None = None,
                   tasks: dict[str, tuple[str, ...]] | None = None) -> pd.DataFrame:
    """The testbed's scores (TestbedSuite.scores): each model runs the tasks of `settings` (by default STUDY_TASKS),
    or `tasks[label]` where given, unless a finished evaluation already holds them (result_settings). Models not yet
    evaluated run `processes` at a time, each worker single-threaded and taking the next model when free
    (cptlib.core.pool; 2 cores: ~1.7x the throughput of one process)."""
    import pandas as pd

    from cptlib.core import pool
    from cptlib.evaluation.evaluate import EvalSettings, run_evaluation
    from cptlib.evaluation.harness import read_table

    settings = settings or EvalSettings(tasks=STUDY_TASKS)
    wanted = {label: replace(settings, tasks=(tasks or {}).get(label, settings.tasks)) for label in models}
    chosen = {label: result_settings(Path(p), data, wanted[label]) for label, p in models.items()}
    pool.build([(run_evaluation, (Path(p), data, chosen[label])) for label, p in models.items()],
               processes, threads=settings.threads, what="evaluations")
    results = {label: run_evaluation(Path(p), data, chosen[label]) for label, p in models.items()}  # cached now
    tidy = pd.concat([read_table(d, label) for label, d in results.items()])
    wide = {}
    for short, (task, metric) in METRICS.items():
        wide[short] = tidy[(tidy.task == task) & (tidy.metric == metric)].set_index("model")["value"]
    out = pd.DataFrame(wide).reindex(list(models))[list(METRICS)]
    for label in models:  # a wider evaluation's other metrics are not reported: the table is what was asked for
        asked = wanted[label].tasks
        if asked is not None:
            out.loc[label, [m for m, (task, _) in METRICS.items() if task not in asked]] = float("nan")
    out["eval"] = [results[label].name for label in models]  # the result's stage: its per-item scores, its provenance
    return out
