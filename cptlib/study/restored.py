"""Models derived from the family without training, and their scores: each a cached, content-addressed stage.

    from cptlib.study.restored import restored, scores
    model = restored(base, instruct, target, alpha=1.0)          # θ_target + α·(θ_instruct − θ_base)
    table = scores({"restored": model, "instruct_v1": inst}, data_dir, processes=2)   # one row per model

A rerun with the same inputs does no work: restored models are stages keyed by their inputs' keys, and
evaluations are cached by model content (cptlib.evaluation.evaluate).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd

from cptlib.config import MergeSpec
from cptlib.evaluation.evaluate import EvalSettings, evaluation_spec, model_content_hash, read_table, run_evaluation
from cptlib.core.stages import MANIFEST, is_finished, read_manifest, run_stage, stage_dir

# Short names of the metrics the study plots: (lm-eval task, metric).
METRICS = {
    "IF": ("testbed_ifeval", "prompt_level_strict_acc"),
    "knowledge": ("testbed_chat_knowledge", "knowledge_acc"),
    "era_a": ("testbed_mc_old", "acc"),
    "era_b": ("testbed_mc_new", "acc"),
    "era_b_heldout": ("testbed_mc_new_heldout", "acc"),
    "updated": ("testbed_mc_updated", "acc"),
    "bpb_a": ("testbed_ppl_a", "bits_per_byte"),
    "bpb_b": ("testbed_ppl_b", "bits_per_byte"),
}
LABELS = {
    "IF": "IFEval prompt-level strict accuracy", "knowledge": "era-B knowledge via chat (answer and format)",
    "era_a": "era-A fact accuracy (MC)", "era_b": "era-B news accuracy (MC)",
    "era_b_heldout": "era-B news accuracy, held-out phrasing (MC)", "updated": "prefers updated fact (MC)",
    "bpb_a": "era-A held-out bits per byte", "bpb_b": "era-B held-out bits per byte",
}


PANELS = ("IF", "knowledge", "era_a", "era_b")  # the accuracies the notebooks show side by side
# What the study evaluates: the tasks its metrics read (the calibration of the ancestors in notebook 00 runs
# every testbed task; era-A via chat and the era-A news perplexity are only its), and for intermediate
# checkpoints (milestones, N4 cells) the tasks the panels show.
STUDY_TASKS = tuple(dict.fromkeys(task for task, _ in METRICS.values()))
PANEL_TASKS = tuple(dict.fromkeys(METRICS[m][0] for m in PANELS))
# A real profile's metric is whatever lm-eval task eval.metrics maps to it; its label says what it stands for.
ROLES = {"IF": "instruction following", "knowledge": "new knowledge via chat", "era_a": "old knowledge",
         "era_b": "new knowledge", "era_b_heldout": "new knowledge, asked in new words", "updated": "prefers updated fact", "bpb_a": "old-text bits per byte",
         "bpb_b": "held-out CPT text bits per byte"}


def labels(profile) -> dict[str, str]:
    """Axis labels of the study metrics: the testbed's tasks, or a real profile's mapped tasks."""
    if profile.models is None:
        return dict(LABELS)
    from cptlib.evaluation.real_profile import study_metrics

    mapped = study_metrics(profile)
    return {m: f"{ROLES[m]}: {mapped[m][0]} {mapped[m][1]}" if m in mapped else f"{ROLES[m]} (not measured)"
            for m in METRICS}


def panels(profile) -> list[str]:
    """The accuracy panels of the notebooks' figures: PANELS, for a real profile those it measures (eval.metrics)."""
    return [m for m in PANELS if profile.models is None or m in profile.eval.metrics]


def model_key(model: Path) -> str:
    """What identifies a model's weights: its stage key, or its content hash (milestone checkpoints)."""
    model = Path(model)
    return read_manifest(model)["key"] if (model / MANIFEST).is_file() else model_content_hash(model)


def _into(work: Path, write) -> None:
    """Run `write(out)` (which refuses an existing `out`) and move its files into the stage's work dir."""
    out = work / "model"
    shutil.rmtree(out, ignore_errors=True)  # left by an interrupted earlier attempt
    write(out)
    for f in out.iterdir():
        f.rename(work / f.name)
    out.rmdir()


def residual_dir(base: Path, instruct: Path, rank: int | None = None) -> Path:
    """Θr = θ_instruct − θ_base stored as a residual directory (rank-r SVD factors if `rank`)."""
    from cptlib import residual

    spec = {"base": model_key(base), "instruct": model_key(instruct), "rank": rank}

    def build(work: Path) -> dict:
        _into(work, lambda out: residual.extract(base, instruct, out, rank=rank, progress=False))
        return {"bytes": sum(f.stat().st_size for f in work.glob("*.safetensors"))}

    return run_stage("residual", spec, build)


def restored(base: Path, instruct: Path, target: Path, alpha: float = 1.0, merge: MergeSpec | None = None,
             modules: str | None = None, rank: int | None = None) -> Path:
    """θ_target + α·Θr(base → instruct) as a model dir; `merge` a sparsifying method, `modules` a filter preset
    (cptlib.residual.FILTER_PRESETS), `rank` a low-rank residual."""
    from cptlib.residual import MergeMethod, ModuleFilter, Residual

    merge = merge or MergeSpec()
    spec = {"base": model_key(base), "instruct": model_key(instruct), "target": model_key(target), "alpha": alpha,
            "merge": merge.model_dump(), "modules": modules, "rank": rank}
    method = MergeMethod(name=merge.method, density=merge.density, drop_rate=merge.drop_rate, gamma=merge.gamma)
    options = {"method": method, "progress": False}
    if modules is not None:
        options["module_filter"] = ModuleFilter(presets=(modules,))

    def build(work: Path) -> dict:
        res = Residual.load(residual_dir(base, instruct, rank)) if rank else Residual.from_models(base, instruct)
        _into(work, lambda out: res.apply_to(target, out, alpha=alpha, **options))
        return {"role": "restored", "parent": str(target), "inputs": {"base": str(base), "instruct": str(instruct)}}

    return run_stage("restored", spec, build)


def adapter(base: Path, instruct: Path, rank: int | None = None, vectors: str = "save",
            embeddings: str = "lora") -> Path:
    """Θr(base → instruct) as a PEFT LoRA adapter directory (cptlib.residual.peft_adapter)."""
    from cptlib.residual.peft_adapter import ADAPTER_FILE, extract_peft

    spec = {"base": model_key(base), "instruct": model_key(instruct), "rank": rank, "vectors": vectors,
            "embeddings": embeddings}

    def build(work: Path) -> dict:
        _into(work, lambda out: extract_peft(base, instruct, out, rank=rank, vectors=vectors, embeddings=embeddings,
                                             progress=False))
        return {"bytes": (work / ADAPTER_FILE).stat().st_size}

    return run_stage("adapter", spec, build)


def attached(base: Path, instruct: Path, target: Path, rank: int | None = None, vectors: str = "save",
             embeddings: str = "lora") -> Path:
    """The PEFT adapter of Θr(base → instruct) attached to `target` at load time, as a model to evaluate: the
    adapter's files and a record naming the target (cptlib.evaluation.evaluate.attach_adapter loads it for lm-eval)."""
    from cptlib.evaluation.evaluate import ATTACH_FILE

    source = adapter(base, instruct, rank, vectors, embeddings)
    spec = {"adapter": read_manifest(source)["key"], "target": model_key(target)}

    def build(work: Path) -> dict:
        for f in source.iterdir():
            if f.is_file() and f.name != MANIFEST and not f.name.endswith(".lock"):
                shutil.copy2(f, work / f.name)
        (work / ATTACH_FILE).write_text(json.dumps({"target": str(Path(target).resolve())}, indent=2) + "\n")
        return {"role": "attached adapter", "adapter": str(source), "parent": str(target)}

    return run_stage("attached", spec, build)


def milestones(cpt_dir: Path) -> dict[int, Path]:
    """{tokens: model dir} of a CPT stage: its milestone checkpoints and the final model."""
    found = {json.loads((d / "milestone.json").read_text())["tokens"]: d
             for d in sorted((Path(cpt_dir) / "milestones").glob("tokens-*")) if (d / "milestone.json").is_file()}
    found[read_manifest(cpt_dir)["tokens"]] = Path(cpt_dir)
    return dict(sorted(found.items()))


def drift(model: Path) -> float:
    """‖θ − θ_parent‖ / ‖θ_parent‖ of a trained stage or a milestone checkpoint."""
    model = Path(model)
    record = json.loads((model / "milestone.json").read_text()) if (model / "milestone.json").is_file() else read_manifest(model)
    return record["drift"]["total"]


def result_settings(model: Path, data: Path, wanted: EvalSettings) -> EvalSettings:
    """The settings to read `model`'s scores under: `wanted` if its evaluation is finished, else a finished one that
    holds every task `wanted` asks for (the full suite, as notebook 00 leaves for the ancestors and the two
    calibration CPT models, then STUDY_TASKS), else `wanted` itself (to be evaluated). The exact one first, so a
    table names the same evaluation whatever else (a pilot, a test) has been evaluated since."""
    for candidate in dict.fromkeys([wanted, replace(wanted, tasks=None), replace(wanted, tasks=STUDY_TASKS)]):
        if candidate.covers(wanted) and is_finished(stage_dir("eval", evaluation_spec(model, data, candidate))):
            return candidate
    return wanted


def scores(models: dict[str, Path], data: Path, processes: int = 1,
           settings: EvalSettings = EvalSettings(tasks=STUDY_TASKS),
           tasks: dict[str, tuple[str, ...]] | None = None) -> pd.DataFrame:
    """One row per model (index: its label), one column per METRICS entry (NaN where the model's tasks do not
    include the metric's) and `eval`, the name of the evaluation's stage directory (its per-item scores). Each model runs the tasks of `settings` (by default STUDY_TASKS), or `tasks[label]`
    where given, unless a finished evaluation already holds them (result_settings). Models not yet evaluated
    run `processes` at a time, each worker single-threaded and taking the next model when free (cptlib.core.pool;
    2 cores: ~1.7x the throughput of one process)."""
    from cptlib.core import pool

    wanted = {label: replace(settings, tasks=(tasks or {}).get(label, settings.tasks)) for label in models}
    chosen = {label: result_settings(Path(p), data, wanted[label]) for label, p in models.items()}
    pool.build([(run_evaluation, (Path(p), data, chosen[label])) for label, p in models.items()],
               processes, threads=settings.threads, what="evaluations")
    results = {label: run_evaluation(Path(p), data, chosen[label]) for label, p in models.items()}  # cached now
    tidy = pd.concat([read_table(d, label) for label, d in results.items()])
    wide = {}
    for short, (task, metric) in METRICS.items():
        hit = tidy[(tidy.task == task) & (tidy.metric == metric)].set_index("model")["value"]
        wide[short] = hit
    out = pd.DataFrame(wide).reindex(list(models))[list(METRICS)]
    for label in models:  # a wider evaluation's other metrics are not reported: the table is what was asked for
        asked = wanted[label].tasks
        if asked is not None:
            out.loc[label, [m for m, (task, _) in METRICS.items() if task not in asked]] = float("nan")
    out["eval"] = [results[label].name for label in models]  # the result's stage: its per-item scores, its provenance
    return out
