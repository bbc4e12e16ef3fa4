"""The real-model path of the study (BRIEF §5): the same `build_family` / `cpt` / evaluation calls as the
testbed, for a profile whose `models:` names real checkpoints.

    family = build_family(load_profile("qwen2_0.5b"), seed=0)   # cptlib.family dispatches here
    cpt_base = cpt(profile, family["base_v1"], seed=0)           # stage dir with milestones/tokens-*/
    table = evaluate(profile, cpt_base, family["data"], "cpt_base")

Members are *resolved*, not trained: each becomes a `resolved` stage (a manifest plus links to the files of
the cached snapshot or local folder), so that CPT stages key on it as on a testbed stage. CPT runs on the
profile's corpus (`cpt_data`), prepared once into a `cptdata` stage. SFT is not part of the real path: it
would need each family's original instruction data (v1), which is not public; CPT(base)+SFT is a testbed-only
recipe. Every id is checked before any work starts, so an offline machine fails in seconds.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from cptlib.config import HELDOUT_TASK, STUDY_METRICS, Profile, TrainConfig, stable_dict
from cptlib.hub import _is_path, check_dataset, local_data_files, local_path, resolve_model
from cptlib.stages import read_manifest, run_stage, write_json_atomic

if TYPE_CHECKING:
    import pandas as pd

CORPUS, HELDOUT = "corpus.jsonl", "heldout.jsonl"
# The held-out CPT documents as an lm-eval task: the testbed's held-out-text task (rolling log-likelihood, bits
# per byte), included by lm-eval, on this corpus' heldout.jsonl.
HELDOUT_YAML = """task: {task}
include: {template}
dataset_kwargs:
  data_files:
    test: {data}
"""
# The notebooks' headline metrics -> (lm-eval task, metric as cptlib.evaluate.tidy names it) of the real suite.
# "New knowledge" has no public benchmark for the chosen news window, so none is claimed here.
HEADLINE_METRICS = {
    "instruction_following": ("ifeval", "prompt_level_strict_acc"),
    "instruction_following_loose": ("ifeval", "prompt_level_loose_acc"),
    "old_knowledge": ("mmlu", "acc"),
    "old_knowledge_pro": ("mmlu_pro", "exact_match,custom-extract"),
    "math": ("gsm8k", "exact_match,strict-match"),
    "winogrande": ("winogrande", "acc"),
    "hellaswag": ("hellaswag", "acc_norm"),
    "arc_easy": ("arc_easy", "acc_norm"),
    "piqa": ("piqa", "acc_norm"),
    "truthfulqa": ("truthfulqa_mc2", "acc"),
}
# Groups are reported by their leaf tasks only (tidy keeps leaves): these patterns pick a group's leaves,
# averaged weighted by items, as lm-eval aggregates a group.
GROUP_LEAVES = {"mmlu": re.compile(r"^mmlu_(?!pro_)"), "mmlu_pro": re.compile(r"^mmlu_pro_")}


def members(profile: Profile, other_family: bool = True) -> dict[str, str]:
    m = profile.models
    out = {"base_v1": m.base_v1, "base_v2": m.base_v2, "instruct_v1": m.instruct_v1, "instruct_v2": m.instruct_v2}
    if other_family and m.other_family:
        out["other_family"], out["other_instruct"] = m.other_family, m.other_instruct
    return out


def _local_version(path: Path) -> dict:
    """A local folder's identity without reading gigabytes: file names, sizes and modification times."""
    return {f.name: [f.stat().st_size, f.stat().st_mtime_ns] for f in sorted(path.iterdir()) if f.is_file()}


def resolved_member(role: str, source: str, revision: str | None = None, version: dict | None = None,
                    record: dict | None = None) -> Path:
    """A stage that stands for a real checkpoint: links to its files and a manifest (role, source, version).
    `version` identifies the content (e.g. the sha256 of each file of a released testbed ancestor); by default a
    hub snapshot's commit, or a local folder's file names, sizes and modification times. `record`: fields the
    checkpoint's release states (tokens, drift from its parent ...), copied into the manifest."""
    path = resolve_model(source, revision)
    # A hub snapshot's folder name is its commit hash, which fixes its content.
    version = version or (_local_version(path) if _is_path(source) else {"commit": path.name})
    spec = {"role": role, "source": source, "version": version}

    def build(work: Path) -> dict:
        from math import prod

        from cptlib.residual.checkpoint import read_header

        for f in sorted(path.iterdir()):
            if f.is_file():
                os.symlink(f.resolve(), work / f.name)
        config = json.loads((path / "config.json").read_text())
        # As a trained stage records it; from the safetensors headers (a tied head is stored, and counted, once).
        n_params = sum(prod(t.shape) for f in sorted(path.glob("*.safetensors")) for t in read_header(f).values())
        return {**(record or {}), "role": role, "source": source, "snapshot": str(path),
                "architecture": config.get("architectures"), "tie_word_embeddings": config.get("tie_word_embeddings"),
                "n_params": n_params}

    return run_stage("resolved", spec, build)


def _documents(profile: Profile):
    """The corpus rows, date-filtered, as a `datasets.Dataset`."""
    import datasets

    cfg = profile.cpt_data
    if _is_path(cfg.source):
        files = [str(f) for f in local_data_files(local_path(cfg.source))]
        kind = "parquet" if files[0].endswith(".parquet") else "json"
        ds = datasets.load_dataset(kind, data_files=files, split="train")
    else:
        ds = datasets.load_dataset(cfg.source, cfg.config_name, split=cfg.split, revision=cfg.revision)
    missing = [c for c in (cfg.text_field, cfg.date_field) if c and c not in ds.column_names]
    if missing:
        raise ValueError(f"cpt_data {cfg.source!r} has no column(s) {missing}; its columns: {ds.column_names}")
    if cfg.date_field:
        def in_window(row) -> bool:  # ISO 8601 dates order as strings ("2024-01-05T10:00" >= "2024-01-01")
            date = str(row[cfg.date_field])
            return (not cfg.date_from or date >= cfg.date_from) and (not cfg.date_to or date < cfg.date_to)

        ds = ds.filter(in_window)
    return ds


def corpus_stage(profile: Profile) -> Path:
    """The CPT corpus as `corpus.jsonl` ({"text": ...} per document, in the source's order)."""
    cfg = profile.cpt_data
    check_dataset(cfg)
    source = {"local": _local_version_tree(local_path(cfg.source))} if _is_path(cfg.source) else {}
    spec = {"cpt_data": stable_dict(cfg), **source}

    def build(work: Path) -> dict:
        ds = _documents(profile)
        n = len(ds) if cfg.max_docs is None else min(cfg.max_docs, len(ds))
        if cfg.heldout_docs >= n:
            raise ValueError(f"cpt_data.heldout_docs={cfg.heldout_docs} leaves no document of {cfg.source!r} to train "
                             f"on ({n} after the date filter); lower it")
        chars = 0
        with open(work / CORPUS, "w") as train, open(work / HELDOUT, "w") as heldout:
            for i, row in enumerate(ds.select(range(n))):
                text = row[cfg.text_field]
                if text:
                    (heldout if i >= n - cfg.heldout_docs else train).write(json.dumps({"text": text}) + "\n")
                    chars += len(text)
        return {"documents": n - cfg.heldout_docs, "heldout_documents": cfg.heldout_docs, "characters": chars}

    return run_stage("cptdata", spec, build)


def heldout_task(data: Path) -> Path:
    """A folder holding the `cpt_heldout` task of a corpus stage (written on first use: lm-eval needs the data
    file's absolute path, which the stage only has once built)."""
    from cptlib.evaluate import TASKS_DIR

    folder, data = Path(data) / "tasks", Path(data).resolve()
    yaml = HELDOUT_YAML.format(task=HELDOUT_TASK, template=TASKS_DIR / "testbed_ppl_b.yaml", data=data / HELDOUT)
    path = folder / f"{HELDOUT_TASK}.yaml"
    if not path.is_file() or path.read_text() != yaml:
        folder.mkdir(exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(yaml)
        os.replace(tmp, path)
    return folder


def _local_version_tree(folder: Path) -> dict:
    return {str(f.relative_to(folder)): [f.stat().st_size, f.stat().st_mtime_ns] for f in local_data_files(folder)}


def preflight(profile: Profile, other_family: bool = True) -> dict[str, Path]:
    """Resolve every member and check the corpus before anything trains: offline, this is where it fails."""
    revisions = profile.models.revisions
    family = {role: resolved_member(role, src, revisions.get(role)) for role, src in members(profile, other_family).items()}
    check_dataset(profile.cpt_data)
    return family


def build_real_family(profile: Profile, seed: int, other_family: bool = True) -> dict[str, Path]:
    """{"data", "tokenizer", "base_v1", "base_v2", "instruct_v1", "instruct_v2"[, "other_family"]}; the
    members do not depend on `seed` (they are released checkpoints), CPT does."""
    family = preflight(profile, other_family)
    return {"data": corpus_stage(profile), "tokenizer": family["base_v1"], **family}


def cpt_real(profile: Profile, model: Path, seed: int, cfg: TrainConfig | None = None) -> Path:
    """CPT of a resolved member (or a CPT stage) on the profile's corpus; milestones as in the testbed."""
    from cptlib.family import runtime_spec

    cfg = cfg or profile.cpt
    if cfg.replay_frac > 0:
        raise ValueError("cpt.replay_frac > 0 replays the original pre-training data, which a real profile does not "
                         "have; set cpt.replay_frac: 0")
    data = corpus_stage(profile)
    spec = {"role": "cpt", "seed": seed, "parent": read_manifest(model)["key"], "train": stable_dict(cfg),
            "data": read_manifest(data)["key"], "runtime": runtime_spec(profile)}

    def build(work: Path) -> dict:
        from transformers import AutoTokenizer

        from cptlib.data import packed_lm_dataset
        from cptlib.residual.checkpoint import copy_chat_files
        from cptlib.train import MILESTONES
        from cptlib.train_job import run_causal_lm

        tok = AutoTokenizer.from_pretrained(str(model), local_files_only=True)
        if tok.pad_token is None:  # LLaMA 3 has none; packed blocks need no padding, the collator wants one
            tok.pad_token = tok.eos_token
        ds = packed_lm_dataset([data / CORPUS], tok, cfg.seq_len, seed)
        fields = run_causal_lm(Path(model), ds, tok, cfg, profile.runtime, seed, work)
        # The parent's own tokenizer files, chat template and generation config, byte for byte.
        for out in [work, *sorted((work / MILESTONES).glob("tokens-*"))]:
            copy_chat_files(Path(model), out)
        return {"role": "cpt", "parent": str(model), **fields}

    return run_stage("lm", spec, build)


def real_suite_settings(profile: Profile):
    """The profile's `eval:` section as lm-eval settings, plus the task cpt_heldout when the profile holds CPT
    documents out (cpt_data.heldout_docs)."""
    from cptlib.real_suite import RealSuiteSettings

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


def include_path(profile: Profile, data: Path | None = None) -> list[Path]:
    """The profile's own task folders (eval.include_path) and the corpus stage's cpt_heldout task."""
    folders = []
    for p in profile.eval.include_path:
        folder = local_path(p) if _is_path(p) else Path(p)
        if not folder.is_dir():
            raise FileNotFoundError(f"eval.include_path: {p!r} is not a folder (of lm-eval task YAMLs); fix the path "
                                    "in the profile (absolute, or relative to the repository root)")
        folders.append(folder)
    return folders + ([heldout_task(data)] if data is not None and profile.cpt_data.heldout_docs else [])


def evaluate(profile: Profile, model_dir: Path, data_dir: Path | None = None, name: str | None = None,
             settings=None) -> pd.DataFrame:
    """The profile's suite for one model, as the tidy table of cptlib.evaluate (model, task, metric, value, ...).
    testbed: `data_dir` is the testbed data (family["data"]), `settings` an EvalSettings; real: lm-eval's tasks
    with the profile's `eval:` settings, plus cpt_heldout when `data_dir` (family["data"]) holds held-out text."""
    if profile.eval.suite == "testbed":
        from cptlib.evaluate import EvalSettings, evaluate_model

        return evaluate_model(model_dir, data_dir, settings or EvalSettings(), name)
    from cptlib.real_suite import evaluate_real

    return evaluate_real(model_dir, settings or real_suite_settings(profile), name,
                         include_path(profile, data_dir))


def metric_value(table: pd.DataFrame, task: str, metric: str) -> float:
    """A task's metric from a tidy table; a group (mmlu, mmlu_pro) is its leaves averaged weighted by items,
    as lm-eval aggregates it. NaN when the table has no such row."""
    leaf = GROUP_LEAVES.get(task)
    rows = table[(table["metric"] == metric) & (table["task"].str.match(leaf.pattern) if leaf else table["task"] == task)]
    return float((rows["value"] * rows["n"]).sum() / rows["n"].sum()) if len(rows) else float("nan")


def study_metrics(profile: Profile) -> dict[str, tuple[str, str]]:
    """The notebooks' metrics for a real profile: eval.metrics, and bpb_b = cpt_heldout's bits per byte when
    CPT documents are held out."""
    out = dict(profile.eval.metrics)
    if profile.cpt_data.heldout_docs:
        out.setdefault("bpb_b", (HELDOUT_TASK, "bits_per_byte"))
    return out


def scores(profile: Profile, models: dict[str, Path], data: Path) -> pd.DataFrame:
    """As cptlib.derived.scores for the testbed: one row per model (index: its label), one column per study
    metric (NaN where the profile maps none, eval.metrics); models run one after the other (on the GPU)."""
    import pandas as pd

    metrics = study_metrics(profile)
    settings = real_suite_settings(profile)
    rows = {}
    for label, path in models.items():
        table = evaluate(profile, Path(path), data, label, settings)
        rows[label] = {short: metric_value(table, task, metric) for short, (task, metric) in metrics.items()}
    # Every study metric is a column (as in the testbed's table); one the profile does not map is NaN.
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(STUDY_METRICS)).loc[list(models)]


def headline(table: pd.DataFrame) -> dict[str, float]:
    """The headline metrics (HEADLINE_METRICS) present in a real-suite table, by name."""
    values = {key: metric_value(table, task, metric) for key, (task, metric) in HEADLINE_METRICS.items()}
    return {k: v for k, v in values.items() if v == v}
