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

from cptlib.config import Profile, TrainConfig, stable_dict
from cptlib.hub import _is_path, check_dataset, local_data_files, local_path, resolve_model
from cptlib.stages import read_manifest, run_stage, write_json_atomic

if TYPE_CHECKING:
    import pandas as pd

CORPUS = "corpus.jsonl"
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
        out["other_family"] = m.other_family
    return out


def _local_version(path: Path) -> dict:
    """A local folder's identity without reading gigabytes: file names, sizes and modification times."""
    return {f.name: [f.stat().st_size, f.stat().st_mtime_ns] for f in sorted(path.iterdir()) if f.is_file()}


def resolved_member(role: str, source: str, revision: str | None = None) -> Path:
    """A stage that stands for a real checkpoint: links to its files and a manifest (role, source, version)."""
    path = resolve_model(source, revision)
    # A hub snapshot's folder name is its commit hash, which fixes its content.
    version = _local_version(path) if _is_path(source) else {"commit": path.name}
    spec = {"role": role, "source": source, "version": version}

    def build(work: Path) -> dict:
        for f in sorted(path.iterdir()):
            if f.is_file():
                os.symlink(f.resolve(), work / f.name)
        config = json.loads((path / "config.json").read_text())
        return {"role": role, "source": source, "snapshot": str(path), "architecture": config.get("architectures"),
                "tie_word_embeddings": config.get("tie_word_embeddings")}

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
        chars = 0
        with open(work / CORPUS, "w") as f:
            for row in ds.select(range(n)):
                text = row[cfg.text_field]
                if text:
                    f.write(json.dumps({"text": text}) + "\n")
                    chars += len(text)
        return {"documents": n, "characters": chars}

    return run_stage("cptdata", spec, build)


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
    from cptlib.family import _runtime_spec

    cfg = cfg or profile.cpt
    if cfg.replay_frac > 0:
        raise ValueError("cpt.replay_frac > 0 replays the original pre-training data, which a real profile does not "
                         "have; set cpt.replay_frac: 0")
    data = corpus_stage(profile)
    spec = {"role": "cpt", "seed": seed, "parent": read_manifest(model)["key"], "train": stable_dict(cfg),
            "data": read_manifest(data)["key"], "runtime": _runtime_spec(profile)}

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
    from cptlib.real_suite import RealSuiteSettings

    e = profile.eval
    device = e.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    limit = int(e.limit) if e.limit is not None and e.limit >= 1 else e.limit
    return RealSuiteSettings(tasks=tuple(e.tasks), shots=dict(e.num_fewshot), limit=limit, batch_size=e.batch_size,
                             chat_template_tasks=tuple(e.chat_template_tasks), max_gen_toks=e.max_gen_toks,
                             device=device, dtype=e.dtype)


def evaluate(profile: Profile, model_dir: Path, data_dir: Path | None = None, name: str | None = None,
             settings=None) -> pd.DataFrame:
    """The profile's suite for one model, as the tidy table of cptlib.evaluate (model, task, metric, value, ...).
    testbed: `data_dir` is the testbed data (family["data"]), `settings` an EvalSettings; real: lm-eval's tasks
    with the profile's `eval:` settings (`data_dir` unused)."""
    if profile.eval.suite == "testbed":
        from cptlib.evaluate import EvalSettings, evaluate_model

        return evaluate_model(model_dir, data_dir, settings or EvalSettings(), name)
    from cptlib.real_suite import evaluate_real

    return evaluate_real(model_dir, settings or real_suite_settings(profile), name)


def headline(table: pd.DataFrame) -> dict[str, float]:
    """The headline metrics (HEADLINE_METRICS) present in a real-suite table, by name."""
    out = {}
    for key, (task, metric) in HEADLINE_METRICS.items():
        leaf = GROUP_LEAVES.get(task)
        rows = table[(table["metric"] == metric)
                     & (table["task"].str.match(leaf.pattern) if leaf else table["task"] == task)]
        if len(rows):
            out[key] = float((rows["value"] * rows["n"]).sum() / rows["n"].sum())
    return out
