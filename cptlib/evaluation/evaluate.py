"""Evaluation through lm-evaluation-harness: the testbed suite as one tidy table, cached by content.

    table = evaluate_model(DIR, DATA_DIR)   # model, task, metric, value, stderr, n, chat_template, version
    (command line: `cptlib eval`, in cptlib.evaluation.cli)

The testbed tasks are lm-eval YAML tasks in `cptlib/tasks/testbed/`, loaded with
`TaskManager(include_path=..., include_defaults=False)`; their data files are named relative to the data
directory in the YAMLs and made absolute here. Results are cached as a content-addressed stage
(`cptlib.core.stages`) keyed by the model's content, the data's content, the task versions, the settings and the
lm-eval version; lm-eval's full output and its samples are kept in the same directory as the table.
"""
from __future__ import annotations

import functools
import json
import logging
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from cptlib.core.files import hash_file, hash_json, write_json_atomic
from cptlib.core.provenance import library_versions
from cptlib.core.stages import MANIFEST, run_stage
from cptlib.core.errors import InputError, MissingInputError

if TYPE_CHECKING:
    import pandas as pd

TASKS_DIR = Path(__file__).resolve().parent / "tasks" / "testbed"
# The chat-template policy, recorded in every row: instruction tasks always go through the model's chat
# template (base models get the same prompts -- that is the comparison); log-likelihood tasks read plain
# text, the format the models were pre-trained on. lm-eval applies it per call, so one call per group.
TESTBED_GROUPS = {"testbed_chat": True, "testbed_plain": False}
TABLE = "table.json"
COLUMNS = ["model", "task", "metric", "value", "stderr", "n", "chat_template", "version"]
# Files that decide a model's outputs: weights, tokenizer (with its chat template), config, generation config.
MODEL_FILE_PATTERNS = ["*.safetensors", "*.safetensors.index.json", "tokenizer*", "special_tokens_map.json",
                       "chat_template.*", "vocab.*", "merges.txt", "added_tokens.json", "config.json",
                       "generation_config.json", "adapter_config.json"]
# A PEFT adapter directory that names the model it is attached to (cptlib.study.restored.attached): evaluated as
# `PeftModel.from_pretrained(target, adapter)` handed to lm-eval (attach_adapter), applied at load time, not merged.
ATTACH_FILE = "cptlib_attach.json"


def attached_target(model_dir: Path) -> Path | None:
    """The model a PEFT adapter directory is attached to, or None for a plain model directory."""
    record = Path(model_dir) / ATTACH_FILE
    return Path(json.loads(record.read_text())["target"]) if record.is_file() else None


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


def model_content_hash(model_dir: Path) -> str:
    """sha256 over the files that decide the model's outputs (weights, tokenizer, configs), by name; for an
    attached adapter, over the adapter's files and its target's hash."""
    model_dir = Path(model_dir)
    files = sorted({f for pattern in MODEL_FILE_PATTERNS for f in model_dir.glob(pattern) if f.is_file()})
    if not any(f.suffix == ".safetensors" for f in files):
        raise MissingInputError(f"no *.safetensors in {model_dir}: pass a `save_pretrained` model directory")
    hashes = {f.name: _adapter_config_hash(f) if f.name == "adapter_config.json" else hash_file(f) for f in files}
    target = attached_target(model_dir)
    return hash_json(hashes if target is None else {"adapter": hashes, "target": model_content_hash(target)})


def _adapter_config_hash(path: Path) -> str:
    """A PEFT adapter config's hash without what does not decide the attached adapter's outputs:
    `base_model_name_or_path` (where the base lay when the adapter was written, an absolute path different in every
    clone) and the order of `target_modules` (a set in PEFT, written in the process's hash order)."""
    config = json.loads(Path(path).read_text())
    config.pop("base_model_name_or_path", None)
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    return hash_json(config)


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


@functools.lru_cache(maxsize=1)
def task_manager():
    """lm-eval's index of the testbed task YAMLs (~0.8 s to build), one per process: an evaluation worker reuses it
    for every model it scores."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(TASKS_DIR), include_defaults=False)


def group_leaves(subtasks: dict[str, list[str]], task: str) -> list[str]:
    """The leaf tasks of `task` under lm-eval's `group_subtasks` (subgroups expanded); [task] for a leaf."""
    return [leaf for sub in subtasks.get(task) or [] for leaf in group_leaves(subtasks, sub)] or [task]


def tidy(results: dict, chat_template: bool) -> list[dict]:
    """lm-eval's `results` as rows (task, metric, value, stderr, n, chat_template, version): every leaf task, then
    every group lm-eval aggregates (e.g. mmlu: its leaves' accuracy weighted by their items), n its leaves' items."""
    subtasks = results.get("group_subtasks", {})
    rows = []
    scored = [(t, results["results"][t], results["n-samples"][t]["effective"]) for t in sorted(results["configs"])]
    scored += [(g, metrics, sum(results["n-samples"][leaf]["effective"] for leaf in group_leaves(subtasks, g)))
               for g, metrics in sorted(results.get("groups", {}).items())]
    for task, metrics, n in scored:
        for key, value in metrics.items():
            name, _, filt = key.partition(",")
            if not filt or "_stderr" in name or not isinstance(value, (int, float)):
                continue
            stderr = metrics.get(f"{name}_stderr,{filt}")
            rows.append({
                "task": task, "metric": name if filt == "none" else key, "value": float(value),
                "stderr": float(stderr) if isinstance(stderr, (int, float)) else float("nan"), "n": n,
                "chat_template": chat_template, "version": results["versions"].get(task),
            })
    return rows


def save_lm_eval_output(results: dict, out_dir: Path, stem: str) -> None:
    """lm-eval's full output as `<stem>.json` and its per-item samples as `<stem>.samples.jsonl`."""
    from lm_eval.utils import handle_non_serializable

    samples = results.pop("samples", {})
    (out_dir / f"{stem}.json").write_text(json.dumps(results, indent=2, default=handle_non_serializable) + "\n")
    with open(out_dir / f"{stem}.samples.jsonl", "w") as f:
        for task in sorted(samples):
            for sample in samples[task]:
                f.write(json.dumps({"task": task, **sample}, default=handle_non_serializable) + "\n")


@contextmanager
def torch_threads(n: int):
    """torch's intra-op thread count set to `n` for the block, then restored (a notebook trains afterwards)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.lru_cache(maxsize=1)
def _environment_report_once() -> None:
    """lm-eval writes torch's environment report (`torch.utils.collect_env`) into every result; building it runs
    about ten subprocesses (pip list, lscpu, ...), ~0.3 s of CPU, twice per model (one simple_evaluate per group).
    The report cannot change within a process, so it is built once per process and reused: every result still
    holds it, word for word."""
    import torch.utils.collect_env as collect_env

    collect_env.get_pretty_env_info = functools.lru_cache(maxsize=1)(collect_env.get_pretty_env_info)


def load_hflm(model_dir: Path, settings, testbed: bool):
    """lm-eval's HF model wrapper over a local directory. For a testbed model the token before a document
    (rolling log-likelihood) is eos, the document boundary it was pre-trained with; real models keep
    lm-eval's defaults (their own tokenizer loading, bos before a document)."""
    from lm_eval.models.huggingface import HFLM

    from cptlib.tokenizer import load_tokenizer

    _environment_report_once()
    target = attached_target(model_dir)
    tok = load_tokenizer(model_dir) if testbed else (str(model_dir) if target else None)
    pretrained = str(model_dir) if target is None else attach_adapter(target, model_dir, settings)
    # A model object makes HFLM warn that arguments for loading one are ignored: they were used, above.
    with _quiet_logger("lm_eval.models.huggingface", quiet=target is not None):
        lm = HFLM(pretrained=pretrained, tokenizer=tok, device=settings.device, dtype=settings.dtype,
                  batch_size=settings.batch_size, prefix_token_id=tok.eos_token_id if testbed else None)
    check_finite(lm.model, model_dir)
    # lm-eval caps a generation by passing `max_length` (prompt + the task's max_gen_toks); transformers lets a
    # checkpoint's own `generation_config.max_new_tokens` win over it (lm-eval issues #2070, #2730). The task's
    # cap is the evaluation's, so the checkpoint's is dropped here (the key records it: `checkpoint_cap`).
    lm.model.generation_config.max_new_tokens = None
    return lm


def attach_adapter(target: Path, adapter: Path, settings):
    """`PeftModel.from_pretrained(target, adapter)`, as lm-eval's `peft=` does, handed to HFLM as a model.

    Not through `peft=` itself: HFLM then calls `tie_weights()` on the wrapped model, and with tied embeddings
    transformers cannot re-tie through PEFT's LoRA wrapper of the output layer (KeyError "attribute 'weight'
    already exists", peft 0.21.2 + transformers 5.24 + lm-eval 0.4.13). The adapter ties its two halves itself
    (ensure_weight_tying), and the target was tied when it loaded, so the wrapper's tie_weights is a no-op here."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    dtype = settings.dtype if settings.dtype == "auto" else getattr(torch, settings.dtype)
    model = AutoModelForCausalLM.from_pretrained(target, dtype=dtype).to(settings.device)
    with warnings.catch_warnings():
        # The output layer's LoRA of a tied model is the embedding's, transposed: it has no keys of its own.
        warnings.filterwarnings("ignore", message=r"Found missing adapter keys.*lm_head\.lora_")
        warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)
        model = PeftModel.from_pretrained(model, adapter).eval()
    model.tie_weights = lambda *args, **kwargs: None
    return model


@contextmanager
def _quiet_logger(name: str, quiet: bool = True):
    """Raise a library logger to ERROR for the block (its warnings about a case this module handles)."""
    logger = logging.getLogger(name)
    level = logger.level
    if quiet:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def checkpoint_cap(model_dir: Path) -> dict:
    """What a checkpoint's generation config would have imposed on lm-eval's generation cap, as it enters an
    evaluation's cache key: {} for a checkpoint without `max_new_tokens` (so its key is as it always was), and
    {"ignored_max_new_tokens": n} for one with it, whose results before this rule were cut at n tokens."""
    config = Path(model_dir) / "generation_config.json"
    cap = json.loads(config.read_text()).get("max_new_tokens") if config.is_file() else None
    return {} if cap is None else {"ignored_max_new_tokens": cap}


def check_finite(model, model_dir: Path) -> None:
    """Refuse a model with NaN or inf weights (e.g. a residual applied with a huge α): it would still produce
    answers, and scores that look plausible."""
    import torch

    for name, param in model.named_parameters():
        if not torch.isfinite(param).all():
            raise InputError(f"{model_dir}: weight {name} is not finite (NaN or inf); this checkpoint is broken, "
                             "rebuild it (e.g. `cptlib residual apply` with a finite, moderate --alpha)")


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

    def build(work: Path) -> dict:
        import torch
        from lm_eval import simple_evaluate

        gen_kwargs = {"max_gen_toks": settings.max_gen_toks} if settings.max_gen_toks else None
        # Inference mode rather than lm-eval's and transformers' `no_grad`: the same kernels on the same inputs (the
        # numbers are equal, tests/test_evaluate.py), without autograd's per-op bookkeeping (version counters, views'
        # metadata). An evaluation is ~3% faster for it (bench/eval_overhead.py, docs/costs.md). Everything it
        # creates, the model included, is dropped when the build ends.
        with torch_threads(settings.threads), torch.inference_mode():
            lm = load_hflm(model_dir, settings, testbed=True)
            tm = task_manager()
            rows = []
            for group, chat in TESTBED_GROUPS.items():
                if not group_members(group, settings.tasks):
                    continue
                results = simple_evaluate(
                    model=lm, tasks=[group_spec(group, data_dir, settings.tasks)], task_manager=tm,
                    apply_chat_template=chat, limit=settings.limit, gen_kwargs=gen_kwargs, log_samples=True,
                )
                rows += tidy(results, chat)
                save_lm_eval_output(results, work, group)
        write_json_atomic(work / TABLE, rows)
        return {"model_dir": str(model_dir), "data_dir": str(data_dir), "rows": len(rows)}

    return run_stage("eval", spec, build)


def read_table(result_dir: Path, model: str) -> pd.DataFrame:
    import pandas as pd  # late: `cptlib --help` imports this module

    rows = json.loads((Path(result_dir) / TABLE).read_text())
    return pd.DataFrame([{"model": model, **r} for r in rows], columns=COLUMNS)


@functools.lru_cache(maxsize=4096)
def _samples(result_dir: str) -> dict[str, list[dict]]:
    """{task: its per-item records, by doc_id} of a finished result directory (lm-eval's samples, without the
    documents, prompts and responses: only the per-item metric values)."""
    out: dict[str, list[dict]] = {}
    for f in sorted(Path(result_dir).glob("*.samples.jsonl")):
        with open(f) as fh:
            for line in fh:
                rec = json.loads(line)
                keep = {k: rec[k] for k in rec.get("metrics", ())}
                out.setdefault(rec["task"], []).append({"doc_id": rec["doc_id"], **keep})
    return {t: sorted(rows, key=lambda r: r["doc_id"]) for t, rows in out.items()}


def ifeval_by_constraints(result_dir: Path, data_dir: Path) -> tuple[dict[int, tuple[int, float]], dict[str, float]]:
    """Where instruction following fails, from a finished testbed evaluation: IF prompt-level strict accuracy by
    the number of constraints a prompt carries ({n: (prompts, accuracy)}), and each constraint kind's
    instruction-level accuracy inside the two-constraint prompts (the held-out pairs)."""
    from statistics import fmean

    docs = [json.loads(line) for line in open(Path(data_dir) / "eval" / "ifeval.jsonl")]
    items = _samples(str(result_dir)).get("testbed_ifeval", [])
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


@functools.lru_cache(maxsize=4096)
def _leaves(result_dir: str, task: str) -> tuple[str, ...]:
    """A group's leaf tasks in a finished result directory (lm-eval's group_subtasks in its saved output), by name;
    (task,) for a task that is not a group."""
    subtasks: dict[str, list[str]] = {}
    for f in sorted(Path(result_dir).glob("*.json")):
        subtasks.update(json.loads(f.read_text()).get("group_subtasks", {}) if f.name not in (TABLE, MANIFEST) else {})
    return tuple(sorted(group_leaves(subtasks, task)))


def item_scores(result_dir: Path, task: str, metric: str) -> list[float]:
    """The per-item values of a mean-aggregated metric (an accuracy: 1.0 / 0.0 per item, by doc_id) in a finished
    evaluation; their mean is the table's value. For the intervals over the evaluation's items. A group (mmlu) is
    its leaves' items one after the other, leaves by name: their mean is lm-eval's item-weighted group value."""
    samples = _samples(str(result_dir))
    items = samples.get(task) or [r for leaf in _leaves(str(result_dir), task) for r in samples.get(leaf, [])]
    if not items:
        raise MissingInputError(f"no per-item samples of task {task!r} in {result_dir}: evaluate the model again "
                                "(`cptlib clean-partial` removes unfinished results; samples are written since lm-eval's log_samples)")
    if metric not in items[0]:
        raise KeyError(f"task {task!r} has no per-item metric {metric!r} in {result_dir} (it has {sorted(items[0])[1:]})")
    return [float(r[metric]) for r in items]


def evaluate_model(model_dir: Path, data_dir: Path, settings: EvalSettings = EvalSettings(),
                   name: str | None = None) -> pd.DataFrame:
    """The testbed suite for one model as a tidy table; `name` (default: the directory's name) fills `model`."""
    return read_table(run_evaluation(model_dir, data_dir, settings), name or Path(model_dir).name)
