"""The one lm-evaluation-harness path: both suites (the testbed's, cptlib.evaluation.evaluate; the real one,
cptlib.evaluation.real_suite) score a model through it, and read its results back through it.

    tm = task_manager(folder, ...)                       # lm-eval's index of the task YAMLs in these folders
    runs = [TaskRun("testbed_chat", (group,), chat=True), TaskRun("mmlu", ("mmlu",), num_fewshot=5)]
    result = evaluate(model_dir, spec, settings, runs, [folder])   # a cached stage: table.json + lm-eval's output
    table = read_table(result, "cpt")                    # model, task, metric, value, stderr, n, chat_template, version
    item_scores(result, "testbed_ifeval", "prompt_level_strict_acc")   # the per-item values behind a mean

A suite decides what to run and what keys its result (`spec`: model and data content, task versions, settings, the
lm-eval version); this module loads the model into lm-eval's HF wrapper, calls `simple_evaluate` once per TaskRun,
and keeps lm-eval's full output and its per-item samples beside the tidy table, in one content-addressed stage
(`cptlib.core.stages`).
"""
from __future__ import annotations

import functools
import json
import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cptlib.core.errors import InputError, MissingInputError
from cptlib.core.files import hash_file, hash_json, write_json_atomic
from cptlib.core.stages import MANIFEST, run_stage

if TYPE_CHECKING:
    import pandas as pd

TABLE = "table.json"
COLUMNS = ["model", "task", "metric", "value", "stderr", "n", "chat_template", "version"]
# Files that decide a model's outputs: weights, tokenizer (with its chat template), config, generation config.
MODEL_FILE_PATTERNS = ["*.safetensors", "*.safetensors.index.json", "tokenizer*", "special_tokens_map.json",
                       "chat_template.*", "vocab.*", "merges.txt", "added_tokens.json", "config.json",
                       "generation_config.json", "adapter_config.json"]
# A PEFT adapter directory that names the model it is attached to (cptlib.study.restored.attached): evaluated as
# `PeftModel.from_pretrained(target, adapter)` handed to lm-eval (attach_adapter), applied at load time, not merged.
ATTACH_FILE = "cptlib_attach.json"


# --- What is evaluated: a model directory, by content ------------------------------------------------------------

def attached_target(model_dir: Path) -> Path | None:
    """The model a PEFT adapter directory is attached to, or None for a plain model directory."""
    record = Path(model_dir) / ATTACH_FILE
    return Path(json.loads(record.read_text())["target"]) if record.is_file() else None


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


def checkpoint_cap(model_dir: Path) -> dict:
    """What a checkpoint's generation config would have imposed on lm-eval's generation cap, as it enters an
    evaluation's cache key: {} for a checkpoint without `max_new_tokens` (so its key is as it always was), and
    {"ignored_max_new_tokens": n} for one with it, whose results before this rule were cut at n tokens."""
    config = Path(model_dir) / "generation_config.json"
    cap = json.loads(config.read_text()).get("max_new_tokens") if config.is_file() else None
    return {} if cap is None else {"ignored_max_new_tokens": cap}


# --- lm-eval: its task index, its model wrapper, one call per TaskRun ----------------------------------------------

def task_manager(*folders: Path | str):
    """lm-eval's TaskManager over these folders of task YAMLs only (its own registry is not indexed: ~20 s), one per
    process for the same folders holding the same files (building one takes ~1 s; an evaluation worker reuses it for
    every model it scores; a folder whose YAMLs were rewritten since is indexed again)."""
    return _task_manager(tuple(str(f) for f in folders), _stamps(folders))


def _stamps(folders) -> tuple:
    return tuple((str(f), s.st_mtime_ns, s.st_size) for folder in folders for f in sorted(Path(folder).rglob("*.yaml"))
                 for s in [f.stat()])


@functools.lru_cache(maxsize=8)
def _task_manager(folders: tuple[str, ...], stamps: tuple):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=list(folders), include_defaults=False)


@dataclass(frozen=True)
class TaskRun:
    """One call of lm-eval's `simple_evaluate`: its tasks and how they are prompted (its arguments of these names).
    `chat`: through the model's chat template, few-shot examples as turns; a model without a template reads them as
    plain text, as lm-eval runs base models (each row records which: `chat_template`). lm-eval sets the chat
    template and the shots per call, so tasks that differ in either are different runs."""
    name: str  # the stem of its output files in the result: <name>.json, <name>.samples.jsonl
    tasks: tuple[str | dict, ...]  # task or group names, or config dicts (e.g. a group with its data files)
    chat: bool = False
    num_fewshot: int | None = None  # None: each task's own
    limit: int | float | None = None  # items per task (a fraction if < 1); None: all
    samples: dict[str, list[int]] | None = None  # task -> doc ids, instead of `limit`


def evaluate(model_dir: Path, spec: dict, settings, runs: list[TaskRun], folders: list[Path],
             testbed: bool = False, record: dict[str, Any] | None = None) -> Path:
    """Score `model_dir` on `runs` (tasks of the YAML `folders`) as the stage keyed by `spec`, reused when finished;
    returns its directory: `table.json` (the tidy rows of every run) and each run's lm-eval output. `settings`: a
    suite's (device, dtype, batch_size, threads, max_gen_toks); `testbed`: a testbed model (its own tokenizer, eos
    before a document); `record`: more fields for the stage's manifest."""

    def build(work: Path) -> dict:
        import torch
        from lm_eval import simple_evaluate

        gen_kwargs = {"max_gen_toks": settings.max_gen_toks} if settings.max_gen_toks else None
        tm, rows = task_manager(*folders), []
        # Inference mode rather than lm-eval's and transformers' `no_grad`: the same kernels on the same inputs (the
        # numbers are equal, tests/test_evaluate.py), without autograd's per-op bookkeeping (version counters, views'
        # metadata). An evaluation is ~3% faster for it (bench/eval_overhead.py, docs/costs.md). Everything it
        # creates, the model included, is dropped when the build ends.
        with torch_threads(settings.threads), torch.inference_mode():
            lm = load_hflm(model_dir, settings, testbed)
            has_template = getattr(lm.tokenizer, "chat_template", None) is not None
            for run in runs:
                chat = run.chat and has_template
                results = simple_evaluate(
                    model=lm, tasks=list(run.tasks), task_manager=tm, num_fewshot=run.num_fewshot, limit=run.limit,
                    samples=run.samples, apply_chat_template=chat, fewshot_as_multiturn=chat, gen_kwargs=gen_kwargs,
                    log_samples=True,
                )
                rows += tidy(results, chat)
                save_lm_eval_output(results, work, run.name)
        write_json_atomic(work / TABLE, rows)
        return {"model_dir": str(model_dir), **(record or {}), "rows": len(rows)}

    return run_stage("eval", spec, build)


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


def check_finite(model, model_dir: Path) -> None:
    """Refuse a model with NaN or inf weights (e.g. a residual applied with a huge α): it would still produce
    answers, and scores that look plausible."""
    import torch

    for name, param in model.named_parameters():
        if not torch.isfinite(param).all():
            raise InputError(f"{model_dir}: weight {name} is not finite (NaN or inf); this checkpoint is broken, "
                             "rebuild it (e.g. `cptlib residual apply` with a finite, moderate --alpha)")


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
    about ten subprocesses (pip list, lscpu, ...), ~0.3 s of CPU, once per simple_evaluate call. The report cannot
    change within a process, so it is built once per process and reused: every result still holds it, word for
    word."""
    import torch.utils.collect_env as collect_env

    collect_env.get_pretty_env_info = functools.lru_cache(maxsize=1)(collect_env.get_pretty_env_info)


# --- lm-eval's results: the tidy table, its full output, the per-item samples --------------------------------------

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


def read_table(result_dir: Path, model: str) -> pd.DataFrame:
    """A finished evaluation's tidy rows, `model` in the model column."""
    import pandas as pd  # late: `cptlib --help` imports this module

    rows = json.loads((Path(result_dir) / TABLE).read_text())
    return pd.DataFrame([{"model": model, **r} for r in rows], columns=COLUMNS)


@functools.lru_cache(maxsize=4096)
def samples(result_dir: str) -> dict[str, list[dict]]:
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
    by_task = samples(str(result_dir))
    items = by_task.get(task) or [r for leaf in _leaves(str(result_dir), task) for r in by_task.get(leaf, [])]
    if not items:
        raise MissingInputError(f"no per-item samples of task {task!r} in {result_dir}: evaluate the model again "
                                "(`cptlib clean-partial` removes unfinished results; samples are written since lm-eval's log_samples)")
    if metric not in items[0]:
        raise KeyError(f"task {task!r} has no per-item metric {metric!r} in {result_dir} (it has {sorted(items[0])[1:]})")
    return [float(r[metric]) for r in items]
