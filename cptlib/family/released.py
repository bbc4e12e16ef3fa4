"""Real checkpoints as the family (docs/paper.md §5): the same `build_family` / `cpt` calls as the testbed, for a profile
whose `models:` names released checkpoints (hub ids or local folders); their evaluation: cptlib.evaluation.real_profile.

    family = build_family(load_profile("qwen2_0.5b"), seed=0)   # cptlib.family.resolve dispatches here
    cpt_base = cpt(profile, family["base_v1"], seed=0)           # stage dir with milestones/tokens-*/

Members are *resolved*, not trained: each becomes a `resolved` stage (a manifest plus links to the files of
the cached snapshot or local folder), so that CPT stages key on it as on a testbed stage. CPT runs on the
profile's corpus (`cpt_data`), prepared once into a `cptdata` stage. SFT is not part of the real path: it
would need each family's original instruction data (v1), which is not public; CPT(base)+SFT is a testbed-only
recipe. Every id is checked before any work starts, so an offline machine fails in seconds.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from cptlib.config import TRAINED_HERE, Profile, TrainConfig, stable_dict
from cptlib.core.hub import (
    HubUnavailableError,
    _is_path,
    check_dataset,
    hub_reachable,
    local_data_files,
    local_path,
    resolve_model,
    unavailable_message,
)
from cptlib.family.pypi_gguf import converted, is_pypi, parse
from cptlib.core.stages import read_manifest, run_stage
from cptlib.core.errors import InputError, MissingInputError

CORPUS, HELDOUT = "corpus.jsonl", "heldout.jsonl"


def members(profile: Profile, other_family: bool = True) -> dict[str, str]:
    """{member: source} of the released members the profile has (a member it declares absent, null, or trains here,
    `sft`, is left out)."""
    m = profile.models
    out = {"base_v1": m.base_v1, "base_v2": m.base_v2, "instruct_v1": m.instruct_v1, "instruct_v2": m.instruct_v2}
    if other_family and m.other_family:
        out["other_family"], out["other_instruct"] = m.other_family, m.other_instruct
    return {k: v for k, v in out.items() if v is not None and v != TRAINED_HERE}


def _checkpoint(source: str, revision: str | None) -> Path:
    """The local folder of a member: a hub snapshot or folder (cptlib.core.hub), or a PyPI GGUF release converted once."""
    if is_pypi(source):
        return converted(source)
    return resolve_model(source, revision)


def _local_version(path: Path) -> dict:
    """A local folder's identity without reading gigabytes: file names, sizes and modification times."""
    return {f.name: [f.stat().st_size, f.stat().st_mtime_ns] for f in sorted(path.iterdir()) if f.is_file()}


def resolved_member(role: str, source: str, revision: str | None = None, version: dict | None = None,
                    record: dict | None = None, copy: bool = False) -> Path:
    """A stage that stands for a real checkpoint: links to its files and a manifest (role, source, version).
    `version` identifies the content (e.g. the sha256 of each file of a released testbed ancestor); by default a
    hub snapshot's commit, or a local folder's file names, sizes and modification times. `record`: fields the
    checkpoint's release states (tokens, drift from its parent ...), copied into the manifest. `copy`: copies
    instead of symbolic links, for the released testbed ancestors (a few MB, committed in models/): a stage's
    files must never write through into the repository (a real checkpoint's gigabytes stay linked to the cache
    they came from). Stages resolved before this rule keep their links (same key, same bytes)."""
    path = _checkpoint(source, revision)
    # A hub snapshot's folder name is its commit hash, which fixes its content; a converted release's stage key
    # (the wheel's sha256) does.
    version = version or (_local_version(path) if _is_path(source) else
                          {"stage": path.name} if is_pypi(source) else {"commit": path.name})
    spec = {"role": role, "source": source, "version": version}

    def build(work: Path) -> dict:
        from math import prod

        from cptlib.residual.checkpoint import read_header

        for f in sorted(path.iterdir()):
            if f.is_file() and copy:
                shutil.copyfile(f, work / f.name)
            elif f.is_file():
                os.symlink(f.resolve(), work / f.name)
        config = json.loads((path / "config.json").read_text())
        # As a trained stage records it; from the safetensors headers (a tied head is stored, and counted, once).
        n_params = sum(prod(t.shape) for f in sorted(path.glob("*.safetensors")) for t in read_header(f).values())
        converted_from = read_manifest(path) if is_pypi(source) else {}
        return {**(record or {}), "role": role, "source": source, "snapshot": str(path),
                **({"deviation": converted_from["deviation"]} if converted_from else {}),
                "architecture": config.get("architectures"), "tie_word_embeddings": config.get("tie_word_embeddings"),
                "n_params": n_params}

    return run_stage("resolved", spec, build)


TESTBED = "testbed:"  # cpt_data.source = testbed:<corpus>.jsonl: a corpus of the profile's synthetic testbed


def _testbed_corpus(profile: Profile) -> Path:
    from cptlib.family.build import testbed_data

    name = profile.cpt_data.source.removeprefix(TESTBED)
    path = testbed_data(profile) / name
    if not path.is_file():
        raise MissingInputError(f"cpt_data.source {profile.cpt_data.source!r}: the testbed has no corpus {name!r}; "
                                f"its corpora: {sorted(p.name for p in path.parent.glob('corpus_*.jsonl'))}")
    return path


def _documents(profile: Profile):
    """The corpus rows, date-filtered, as a `datasets.Dataset`."""
    import datasets

    cfg = profile.cpt_data
    if cfg.source.startswith(TESTBED):
        return datasets.load_dataset("json", data_files=[str(_testbed_corpus(profile))], split="train")
    if _is_path(cfg.source):
        files = [str(f) for f in local_data_files(local_path(cfg.source))]
        kind = "parquet" if files[0].endswith(".parquet") else "json"
        ds = datasets.load_dataset(kind, data_files=files, split="train")
    else:
        ds = datasets.load_dataset(cfg.source, cfg.config_name, split=cfg.split, revision=cfg.revision)
    missing = [c for c in (cfg.text_field, cfg.date_field) if c and c not in ds.column_names]
    if missing:
        raise InputError(f"cpt_data {cfg.source!r} has no column(s) {missing}; its columns: {ds.column_names}")
    if cfg.date_field:
        def in_window(row) -> bool:  # ISO 8601 dates order as strings ("2024-01-05T10:00" >= "2024-01-01")
            date = str(row[cfg.date_field])
            return (not cfg.date_from or date >= cfg.date_from) and (not cfg.date_to or date < cfg.date_to)

        ds = ds.filter(in_window)
    return ds


def corpus_stage(profile: Profile) -> Path:
    """The CPT corpus as `corpus.jsonl` ({"text": ...} per document, in the source's order)."""
    cfg = profile.cpt_data
    if cfg.source.startswith(TESTBED):
        from cptlib.core.files import hash_file

        source = {"testbed_sha256": hash_file(_testbed_corpus(profile))}
    else:
        check_dataset(cfg)
        source = {"local": _local_version_tree(local_path(cfg.source))} if _is_path(cfg.source) else {}
    spec = {"cpt_data": stable_dict(cfg), **source}

    def build(work: Path) -> dict:
        ds = _documents(profile)
        n = len(ds) if cfg.max_docs is None else min(cfg.max_docs, len(ds))
        if cfg.heldout_docs >= n:
            raise InputError(f"cpt_data.heldout_docs={cfg.heldout_docs} leaves no document of {cfg.source!r} to train "
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


def _local_version_tree(folder: Path) -> dict:
    return {str(f.relative_to(folder)): [f.stat().st_size, f.stat().st_mtime_ns] for f in local_data_files(folder)}


def check_sources(profile: Profile, other_family: bool = True) -> None:
    """`preflight` without resolving anything: each member is a local folder with config.json or in the hub cache,
    else the hub must answer, and the corpus likewise. Imports no torch, so the command line and the notebook
    runner fail in about a second, before a kernel or a stage starts (RealFamily.check_sources)."""
    from huggingface_hub import try_to_load_from_cache

    missing = []
    for role, source in members(profile, other_family).items():
        if is_pypi(source):
            parse(source)  # malformed: an error now; the wheel itself is fetched (or found cached) when resolved
            continue
        if _is_path(source):
            resolve_model(source)  # a folder: it must hold config.json
            continue
        revision = profile.models.revisions.get(role)
        if not isinstance(try_to_load_from_cache(source, "config.json", revision=revision), str):
            missing.append((source, revision))
    if missing and not hub_reachable():
        raise HubUnavailableError(unavailable_message(*missing[0]) + (
            f" (also missing: {', '.join(s for s, _ in missing[1:])})" if len(missing) > 1 else ""))
    if not profile.cpt_data.source.startswith(TESTBED):
        check_dataset(profile.cpt_data)


def preflight(profile: Profile, other_family: bool = True) -> dict[str, Path]:
    """Resolve every member and check the corpus before anything trains: offline, this is where it fails."""
    revisions = profile.models.revisions
    family = {role: resolved_member(role, src, revisions.get(role)) for role, src in members(profile, other_family).items()}
    if not profile.cpt_data.source.startswith(TESTBED):
        check_dataset(profile.cpt_data)
    return family


def build_real_family(profile: Profile, seed: int, other_family: bool = True) -> dict[str, Path]:
    """{"data", "tokenizer", "base_v1", "base_v2", "instruct_v1", "instruct_v2"[, "other_family"]}, without the
    members the profile declares absent; the members do not depend on `seed` (they are released checkpoints),
    CPT does."""
    family = preflight(profile, other_family)
    if profile.models.instruct_v1 == TRAINED_HERE:  # one instruct model for every CPT seed, as the paper has
        from cptlib.family.real_sft import sft_real

        sft_seed = seed if profile.instruct_seed is None else profile.instruct_seed
        family["instruct_v1"] = sft_real(profile, family["base_v1"], sft_seed)
    return {"data": corpus_stage(profile), "tokenizer": family.get("base_v1") or family["instruct_v1"], **family}


def cpt_real(profile: Profile, model: Path, seed: int, cfg: TrainConfig | None = None) -> Path:
    """CPT of a resolved member (or a CPT stage) on the profile's corpus; milestones as in the testbed."""
    from cptlib.training.train import runtime_spec

    cfg = cfg or profile.cpt
    if cfg.replay_frac > 0:
        raise InputError("cpt.replay_frac > 0 replays the original pre-training data, which a real profile does not "
                         "have; set cpt.replay_frac: 0")
    data = corpus_stage(profile)
    spec = {"role": "cpt", "seed": seed, "parent": read_manifest(model)["key"], "train": stable_dict(cfg),
            "data": read_manifest(data)["key"], "runtime": runtime_spec(profile)}

    def build(work: Path) -> dict:
        from transformers import AutoTokenizer

        from cptlib.training.data import packed_lm_dataset
        from cptlib.residual.checkpoint import copy_chat_files
        from cptlib.training.train import MILESTONES
        from cptlib.training.launch import run_causal_lm

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


