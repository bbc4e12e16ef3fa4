"""The testbed suite: the testbed's own lm-eval tasks (YAMLs in `cptlib/evaluation/tasks/testbed/`) on its generated
data, one tidy table per model, cached by content.

    table = evaluate_model(DIR, DATA_DIR)   # model, task, metric, value, stderr, n, chat_template, version
    (command line: `cptlib eval`, in cptlib.evaluation.cli)

The tasks' data files are named relative to the data directory in the YAMLs and made absolute here. A model is
scored through the one lm-eval path (cptlib.evaluation.harness: one TaskRun per group below) as a content-addressed
stage keyed by the model's content, the data's content, the task versions, the settings and the lm-eval version.
"""
from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from cptlib.core.errors import InputError, MissingInputError
from cptlib.core.files import hash_file
from cptlib.core.provenance import library_versions
from cptlib.evaluation.harness import (ATTACH_FILE, TaskRun, attached_target, checkpoint_cap, evaluate,
                                       model_content_hash, read_table, samples)

if TYPE_CHECKING:
    import pandas as pd

TASKS_DIR = Path(__file__).resolve().parent / "tasks" / "testbed"
# The chat-template policy, recorded in every row: instruction tasks always go through the model's chat
# template (base models get the same prompts -- that is the comparison); log-likelihood tasks read plain
# text, the format the models were pre-trained on. lm-eval applies it per call, so one call per group.
TESTBED_GROUPS = {"testbed_chat": True, "testbed_plain": False}


@dataclass(frozen=True)
class EvalSettings:
    batch_size: int = 32  # sequences per forward pass (results agree across sizes up to float noise)
    max_gen_toks: int | None = None  # generation cap for the chat tasks; None = the task YAML's (192)
    limit: int | None = None  # items per task (None = all); only for quick checks
    dtype: str = "float32"
    device: str = "cpu"
    # torch intra-op threads while evaluating. The testbed models are too small to gain from a second thread,
    # and on a shared 2-core machine it waits on the busy core: measured 15x slower per step than one thread.
    threads: int = 1
    # The testbed tasks to run (None = all of TESTBED_GROUPS). The study scores most models on the tasks its
    # metrics read (cptlib.evaluation.suite.STUDY_TASKS) and intermediate checkpoints on those its panels show; the
    # calibration of the ancestors runs all of them. A task's scores agree whichever other tasks run with it up
    # to float noise (lm-eval batches the requests of a group's tasks together; one call per task instead
    # measured ~1.6x slower).
    tasks: tuple[str, ...] | None = None

    def spec(self) -> dict:
        """The settings as they enter a cache key (`tasks` only when set: full-suite keys stay as they were)."""
        out = asdict(self)
        if self.tasks is None:
            del out["tasks"]
        else:
            out["tasks"] = sorted(self.tasks)
        return out

    def covers(self, other: "EvalSettings") -> bool:
        """Whether a result under these settings holds every task `other` asks for, scored the same way."""
        mine, theirs = {**asdict(self), "tasks": None}, {**asdict(other), "tasks": None}
        wanted = set(other.tasks or all_tasks())
        return mine == theirs and wanted <= set(self.tasks or all_tasks())


class _TaskYamlLoader(yaml.SafeLoader):
    """Reads a task YAML without importing its `!function` targets (only names, files and versions are read)."""


_TaskYamlLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


@functools.lru_cache(maxsize=None)
def _task_yaml(name: str) -> dict:
    """A task YAML of the package, parsed once per process (read-only: callers build new dicts from it)."""
    return yaml.load((TASKS_DIR / f"{name}.yaml").read_text(), Loader=_TaskYamlLoader)


def group_members(group: str, tasks: tuple[str, ...] | None = None) -> list[str]:
    """A group's tasks (only those in `tasks`, when given)."""
    return [t for t in _task_yaml(group)["task"] if tasks is None or t in tasks]


def all_tasks() -> list[str]:
    return [t for g in TESTBED_GROUPS for t in group_members(g)]


def check_tasks(tasks: tuple[str, ...] | None) -> None:
    unknown = sorted(set(tasks or ()) - set(all_tasks()))
    if unknown or tasks == ():
        raise InputError(f"unknown testbed tasks {unknown or '(none given)'}; the tasks are {', '.join(all_tasks())}")


def data_files(group: str, data_dir: Path, tasks: tuple[str, ...] | None = None) -> dict[str, Path]:
    """{task: absolute data file} for a group's tasks; an error naming the file if one is missing."""
    root = Path(data_dir).resolve()
    out = {t: root / _task_yaml(t)["dataset_kwargs"]["data_files"]["test"] for t in group_members(group, tasks)}
    missing = [str(p) for p in out.values() if not p.is_file()]
    if missing:
        raise MissingInputError(f"testbed evaluation data not found: {missing}; build the testbed first "
                                f"(`cptlib build`) or pass the directory that holds eval/ with --data")
    return out


def task_versions(group: str, tasks: tuple[str, ...] | None = None) -> dict[str, float]:
    return {t: _task_yaml(t)["metadata"]["version"] for t in group_members(group, tasks)}


def group_spec(group: str, data_dir: Path, tasks: tuple[str, ...] | None = None) -> dict:
    """The group as an lm-eval config dict whose members are the registered YAML tasks (those in `tasks`), each
    with its data file made absolute (lm-eval merges member overrides over the member's YAML)."""
    files = data_files(group, data_dir, tasks)
    members = [{"task": t, "dataset_kwargs": {"data_files": {"test": str(f)}}} for t, f in files.items()]
    return {"group": group, "task": members}


def check_model_dir(model_dir: Path) -> None:
    """One error naming the file, before lm-eval starts: every safetensors header parses (the residual engine's
    reader, shared by every tool that opens a checkpoint), and the tokenizer is there."""
    from cptlib.residual.checkpoint import Checkpoint

    target = attached_target(model_dir)
    if target is not None:  # an adapter: its target is the model; the chat files are the adapter's
        if not (Path(model_dir) / "adapter_config.json").is_file():
            raise MissingInputError(f"no adapter_config.json in {model_dir}, which names {ATTACH_FILE}: rebuild it "
                                    "(cptlib.study.restored.attached)")
        Checkpoint(target)
        if not (target / "config.json").is_file():
            raise MissingInputError(f"no config.json in {target}, the target of the adapter {model_dir}")
    else:
        Checkpoint(model_dir)
    if target is None and not (Path(model_dir) / "config.json").is_file():
        raise MissingInputError(f"no config.json in {model_dir}: pass a model directory saved with save_pretrained "
                                "(a cptlib stage, a released ancestor in models/, or save_pretrained of the model)")
    if not (Path(model_dir) / "tokenizer.json").is_file():
        raise MissingInputError(f"no tokenizer.json in {model_dir}: pass a model directory saved with its tokenizer "
                                "(a cptlib stage, a released ancestor in models/, or save_pretrained of model and tokenizer)")


def evaluation_spec(model_dir: Path, data_dir: Path, settings: EvalSettings) -> dict:
    """What decides a testbed result, i.e. its cache key: model and data content, task versions, settings,
    lm-eval's version (its scoring code)."""
    check_tasks(settings.tasks)
    files = {t: f for g in TESTBED_GROUPS for t, f in data_files(g, data_dir, settings.tasks).items()}
    return {
        "suite": "testbed",
        "model_sha256": model_content_hash(model_dir),
        "data_sha256": {t: hash_file(f) for t, f in files.items()},
        "task_versions": {t: v for g in TESTBED_GROUPS for t, v in task_versions(g, settings.tasks).items()},
        "settings": settings.spec(),
        "lm_eval": library_versions()["lm_eval"],
        **checkpoint_cap(model_dir),
    }


def run_evaluation(model_dir: Path, data_dir: Path, settings: EvalSettings = EvalSettings()) -> Path:
    """Evaluate one model on the testbed suite; returns the cached result directory (table + lm-eval output)."""
    from cptlib.evaluation.punkt_data import check_punkt

    check_punkt()  # before any generation: IFEval scoring must not be able to fail after it
    check_model_dir(model_dir)
    spec = evaluation_spec(model_dir, data_dir, settings)

    # One run per group: lm-eval applies the chat template per call (TESTBED_GROUPS).
    runs = [TaskRun(group, (group_spec(group, data_dir, settings.tasks),), chat=chat, limit=settings.limit)
            for group, chat in TESTBED_GROUPS.items() if group_members(group, settings.tasks)]
    return evaluate(model_dir, spec, settings, runs, [TASKS_DIR], testbed=True,
                    record={"data_dir": str(data_dir)})


def ifeval_by_constraints(result_dir: Path, data_dir: Path) -> tuple[dict[int, tuple[int, float]], dict[str, float]]:
    """Where instruction following fails, from a finished testbed evaluation: IF prompt-level strict accuracy by
    the number of constraints a prompt carries ({n: (prompts, accuracy)}), and each constraint kind's
    instruction-level accuracy inside the two-constraint prompts (the held-out pairs)."""
    from statistics import fmean

    docs = [json.loads(line) for line in open(Path(data_dir) / "eval" / "ifeval.jsonl")]
    items = samples(str(result_dir)).get("testbed_ifeval", [])
    if len(items) != len(docs):
        raise InputError(f"{result_dir} holds {len(items)} IFEval items, {data_dir} has {len(docs)}: not its evaluation")
    by_n: dict[int, list[float]] = {}
    by_kind: dict[str, list[float]] = {}
    for doc, item in zip(docs, items):
        ids = doc["instruction_id_list"]
        by_n.setdefault(len(ids), []).append(float(item["prompt_level_strict_acc"]))
        if len(ids) == 2:
            for kind, ok in zip(ids, item["inst_level_strict_acc"]):
                by_kind.setdefault(kind.split(":")[1], []).append(float(ok))
    return {n: (len(v), fmean(v)) for n, v in sorted(by_n.items())}, {k: fmean(v) for k, v in by_kind.items()}


def evaluate_model(model_dir: Path, data_dir: Path, settings: EvalSettings = EvalSettings(),
                   name: str | None = None) -> pd.DataFrame:
    """The testbed suite for one model as a tidy table; `name` (default: the directory's name) fills `model`."""
    return read_table(run_evaluation(model_dir, data_dir, settings), name or Path(model_dir).name)
