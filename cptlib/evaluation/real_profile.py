"""A real profile's evaluation (docs/paper.md §5): its `eval:` section as lm-eval settings, the held-out CPT documents as
a task, and the study's metrics read from lm-eval's real tasks (`eval.metrics`).

    wide = scores(profile, {"cpt_base": cpt_base}, family["data"])    # one column per study metric
    settings = real_suite_settings(profile)                           # eval: as lm-eval settings
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cptlib.config import HELDOUT_TASK, Profile
from cptlib.family.released import HELDOUT
from cptlib.core.hub import _is_path, local_path
from cptlib.core.errors import MissingInputError
from cptlib.core.files import write_text_atomic
from cptlib.metrics import METRICS

if TYPE_CHECKING:
    import pandas as pd

# A testbed task on other data: lm-eval includes the task's own YAML and replaces only its data file, by absolute
# path (which a stage only has once built, so the file is written on first use). The text, with each path by its
# file's content, is part of a real evaluation's key (real_suite.include_key): a change here scores every real
# model again.
BOUND_TASK_YAML = """task: {task}
include: {template}
dataset_kwargs:
  data_files:
    test: {data}
"""


def bind_task(folder: Path, task: str, testbed_task: str, data: Path) -> None:
    """Write `folder`/<task>.yaml: the testbed task `testbed_task` on the data file `data` (rewritten where it
    differs)."""
    from cptlib.evaluation.evaluate import TASKS_DIR

    text = BOUND_TASK_YAML.format(task=task, template=TASKS_DIR / f"{testbed_task}.yaml", data=data)
    path = Path(folder) / f"{task}.yaml"
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(exist_ok=True)
        write_text_atomic(path, text)


def heldout_task(data: Path) -> Path:
    """A folder holding the `cpt_heldout` task of a corpus stage: the testbed's held-out-text task (rolling
    log-likelihood, bits per byte) on the corpus' heldout.jsonl."""
    folder = Path(data) / "tasks"
    bind_task(folder, HELDOUT_TASK, "testbed_ppl_b", Path(data).resolve() / HELDOUT)
    return folder


def real_suite_settings(profile: Profile):
    """The profile's `eval:` section as lm-eval settings, plus the task cpt_heldout when the profile holds CPT
    documents out (cpt_data.heldout_docs)."""
    from cptlib.evaluation.real_suite import RealSuiteSettings

    e = profile.eval
    device = e.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    limit = int(e.limit) if e.limit is not None and e.limit >= 1 else e.limit
    extra = (HELDOUT_TASK,) if profile.cpt_data.heldout_docs and HELDOUT_TASK not in e.tasks else ()
    return RealSuiteSettings(tasks=tuple(e.tasks) + extra, shots=dict(e.num_fewshot), limit=limit,
                             batch_size=e.batch_size, chat_template_tasks=tuple(e.chat_template_tasks),
                             max_gen_toks=e.max_gen_toks, device=device, dtype=e.dtype)


def testbed_tasks(profile: Profile) -> Path | None:
    """A folder of the testbed tasks the profile lists in eval.tasks (e.g. testbed_ifeval: IFEval-format prompts
    scored by lm-eval's IFEval code), bound to the data of the profile's synthetic testbed; None if it lists none.
    A released model is scored on them through the real suite, with its own chat template."""
    from cptlib.evaluation.evaluate import TESTBED_GROUPS, data_files

    files = {t: f for g in TESTBED_GROUPS for t, f in data_files(g, _testbed_dir(profile)).items()
             if t in profile.eval.tasks} if any(t.startswith("testbed_") for t in profile.eval.tasks) else {}
    if not files:
        return None
    folder = _testbed_dir(profile) / "real_suite_tasks"
    for task, data in files.items():
        bind_task(folder, task, task, data)
    return folder


def _testbed_dir(profile: Profile) -> Path:
    from cptlib.family.build import testbed_data

    return testbed_data(profile)


def include_path(profile: Profile, data: Path | None = None) -> list[Path]:
    """The profile's own task folders (eval.include_path), the testbed tasks it lists (testbed_tasks) and the corpus
    stage's cpt_heldout task."""
    folders = []
    for p in profile.eval.include_path:
        folder = local_path(p) if _is_path(p) else Path(p)
        if not folder.is_dir():
            raise MissingInputError(f"eval.include_path: {p!r} is not a folder (of lm-eval task YAMLs); fix the path "
                                    "in the profile (absolute, or relative to the repository root)")
        folders.append(folder)
    testbed = testbed_tasks(profile)
    return folders + ([testbed] if testbed else []) + (
        [heldout_task(data)] if data is not None and profile.cpt_data.heldout_docs else [])


def metric_value(table: pd.DataFrame, task: str, metric: str) -> float:
    """A task's metric from a tidy table (a group, e.g. mmlu, as lm-eval aggregates it); NaN when it has none."""
    rows = table[(table["metric"] == metric) & (table["task"] == task)]
    return float(rows["value"].iloc[0]) if len(rows) else float("nan")


def study_metrics(profile: Profile) -> dict[str, tuple[str, str]]:
    """The notebooks' metrics for a real profile: eval.metrics, and bpb_b = cpt_heldout's bits per byte when
    CPT documents are held out."""
    out = dict(profile.eval.metrics)
    if profile.cpt_data.heldout_docs:
        out.setdefault("bpb_b", (HELDOUT_TASK, "bits_per_byte"))
    return out


def scores(profile: Profile, models: dict[str, Path], data: Path) -> pd.DataFrame:
    """As cptlib.evaluation.suite.testbed_scores for the testbed (RealSuite.scores): one row per model (index: its label), one column per study
    metric (NaN where the profile maps none, eval.metrics) and `eval` (the result's stage directory). Models not yet
    evaluated run `study.eval_processes` at a time on a CPU, each worker single-threaded (cptlib.core.pool: a real
    model's evaluation there is ~30 min), one after the other on a GPU."""
    import pandas as pd

    from cptlib.core import pool
    from cptlib.evaluation.harness import read_table
    from cptlib.evaluation.real_suite import run_real_suite

    metrics = study_metrics(profile)
    settings = real_suite_settings(profile)
    tasks = include_path(profile, data)
    processes = 1 if settings.device != "cpu" else profile.study.eval_processes
    pool.build([(run_real_suite, (Path(path), settings, tasks)) for path in models.values()], processes, threads=1,
               what="evaluations")
    rows = {}
    for label, path in models.items():
        result = run_real_suite(Path(path), settings, tasks)
        table = read_table(result, label)
        rows[label] = {short: metric_value(table, task, metric) for short, (task, metric) in metrics.items()}
        rows[label]["eval"] = result.name  # the result's stage: its per-item scores (lm-eval samples), its provenance
    # Every study metric is a column (as in the testbed's table); one the profile does not map is NaN.
    return pd.DataFrame.from_dict(rows, orient="index", columns=[*METRICS, "eval"]).loc[list(models)]
