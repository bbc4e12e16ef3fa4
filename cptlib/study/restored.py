"""Models derived from the family without training (restored, low-rank, attached, milestones): cached stages.

    from cptlib.study.restored import restored
    model = restored(base, instruct, target, alpha=1.0)          # θ_target + α·(θ_instruct − θ_base)

A rerun with the same inputs does no work: restored models are stages keyed by their inputs' keys. Their scores are
the profile's suite's (cptlib.evaluation.suite: `suite_for(profile).scores(...)`), cached by model content.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from cptlib.core.stages import MANIFEST, read_manifest, run_stage
from cptlib.evaluation.harness import model_content_hash
from cptlib.evaluation.suite import suite_for


# The testbed's own held-out text, which a real profile may read a metric from (SmolLM2's bpb_a is testbed_ppl_a):
# fictional text of the testbed's invented world, the world the CPT news is about too. A label that called it
# "old text" read as the model's own pre-training text, whose falling bits per byte would mean nothing forgotten.
TESTBED_TEXT = {
    "testbed_ppl_a": "bits per byte on the testbed's own fictional era-A text (the invented world the CPT news is "
                     "also about; not the model's pre-training text)",
    "testbed_ppl_b": "bits per byte on the testbed's own fictional era-B news (held out)",
}


def labels(profile) -> dict[str, str]:
    """Axis labels of the study metrics: the testbed's tasks, or a real profile's mapped tasks (its suite's); a metric
    read from the testbed's own held-out text says so, whatever the profile (TESTBED_TEXT)."""
    suite = suite_for(profile)
    out = suite.labels()
    for metric, (task, measure) in suite.metric_tasks().items():
        if task in TESTBED_TEXT and metric in out:
            out[metric] = f"{TESTBED_TEXT[task]}: {task} {measure}"
    return out


def panels(profile) -> list[str]:
    """The accuracy panels of the notebooks' figures (its suite's): PANELS, for a real profile those it measures."""
    return suite_for(profile).panels()


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


# A restored model's key holds its merge method as profiles wrote it before the methods were classes: `method`,
# `density`, `drop_rate` and `gamma`, each at this default where the method has no such parameter, and any other
# parameter (dare's seed) only where it is not its default. So no key changed, and a new method's key is its own.
_KEYED_PARAMS = {"density": 1.0, "drop_rate": 0.0, "gamma": 0.0}


def merge_key(method) -> dict:
    """A merge method (cptlib.residual.methods) as it enters a restored model's key."""
    params = method.params()
    name = params.pop("name")
    defaults = {f.name: f.default for f in dataclasses.fields(method)}
    return {"method": name, **_KEYED_PARAMS,
            **{k: v for k, v in params.items() if k in _KEYED_PARAMS or v != defaults[k]}}


def restored(base: Path, instruct: Path, target: Path, alpha: float = 1.0, merge=None,
             modules: str | None = None, rank: int | None = None) -> Path:
    """θ_target + α·Θr(base → instruct) as a model dir; `merge` a merge method (cptlib.residual.methods, e.g. a
    profile's `study.merges[i].merge()`; None: task arithmetic), `modules` a filter preset
    (cptlib.residual.FILTER_PRESETS), `rank` a low-rank residual."""
    from cptlib.residual import MergeMethod, ModuleFilter, Residual

    method = merge or MergeMethod()
    spec = {"base": model_key(base), "instruct": model_key(instruct), "target": model_key(target), "alpha": alpha,
            "merge": merge_key(method), "modules": modules, "rank": rank}
    options = {"method": method, "progress": False}
    if modules is not None:
        options["module_filter"] = ModuleFilter(presets=(modules,))

    def build(work: Path) -> dict:
        res = Residual.load(residual_dir(base, instruct, rank)) if rank else Residual.from_models(base, instruct)
        _into(work, lambda out: res.apply_to(target, out, alpha=alpha, **options))
        return {"role": "restored", "parent": str(target), "inputs": {"base": str(base), "instruct": str(instruct)}}

    return run_stage("restored", spec, build)


TIMING_REPEATS = 20  # C6: adding Θr takes milliseconds on the testbed, so one timing is noise (calibration log run 22)


def restore_timing(base: Path, instruct: Path, target: Path, repeats: int = TIMING_REPEATS) -> dict:
    """How long adding Θr(base → instruct) to `target` takes, as `restored` does it (read the three models, add,
    write the result), timed `repeats` times into a scratch folder: {"seconds": [...], "median": s}. Cached as a
    stage keyed by the inputs, so a report's rerun shows the same timings."""
    import statistics
    import tempfile
    import time

    from cptlib.residual import Residual

    spec = {"base": model_key(base), "instruct": model_key(instruct), "target": model_key(target), "repeats": repeats}

    def build(work: Path) -> dict:
        seconds = []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory(dir=work) as scratch:
                start = time.perf_counter()
                Residual.from_models(base, instruct).apply_to(target, Path(scratch) / "model", progress=False)
                seconds.append(time.perf_counter() - start)
        return {"seconds": seconds, "median": statistics.median(seconds)}

    return read_manifest(run_stage("timing", spec, build))


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
    adapter's files and a record naming the target (cptlib.evaluation.harness.attach_adapter loads it for lm-eval)."""
    from cptlib.evaluation.harness import ATTACH_FILE

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
