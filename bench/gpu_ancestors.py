"""Wall time of the testbed's ancestors of every size of the size ladder, trained by cptlib's own stages.

    CPTLIB_BUILD_DIR=$(mktemp -d) python bench/gpu_ancestors.py --out DIR            # default profile, all sizes
    CPTLIB_BUILD_DIR=$(mktemp -d) python bench/gpu_ancestors.py --out DIR --deadline 450 --require-cuda
    CPTLIB_BUILD_DIR=$(mktemp -d) python bench/gpu_ancestors.py --out DIR --profile smoke   # CPU check, seconds

Written for a GPU machine (Trainer picks CUDA when there is one), runs anywhere. The main size's family first, as
`cptlib.family.build.train_family(profile, seed, other_family=False)` builds it (testbed data, tokenizer, base_v1,
base_v2, instruct_v1, instruct_v2), then base_v1 + instruct_v1 of every other size of `model.sizes`, smallest first,
as `train_size(profile, size, seed)` builds them. Each stage function of cptlib.family.build is called on its own,
in the order those two functions call them, so each is timed (time.perf_counter); afterwards train_family /
train_size themselves are called and must return the same stages with nothing left to build.

The precision is the profile's (the default pins fp32; its stage keys are then the CPU release's); progress bars
are turned off (not part of any stage key). TF32 is reported as torch has it, not changed. Each row of
DIR/gpu_ancestors.csv (written after every stage, so a run cut short keeps what it finished) is one stage: seconds,
steps, tokens (or SFT examples), tokens/s of the training loop, final loss, peak CUDA memory, and the same member
of the release in models/<profile>/ (release.json: the CPU build's seconds, loss and stage key) beside it.

With --deadline S the run stops cleanly: before each size it estimates that size's time from the main size's
(scaled by parameters, generously) and skips it, and every larger one, when it would end later than S seconds
after the start. A stage already built in CPTLIB_BUILD_DIR is reused and marked so: time a cold build dir.
"""
from __future__ import annotations

from cptlib.core.paths import use_project_caches

use_project_caches()  # an entry point: the project's library caches (HF_HOME, ...), before any library reads them

import argparse
import csv
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from cptlib.config import load_profile
from cptlib.core import paths
from cptlib.core.stages import read_manifest
from cptlib.family import build as fam
from cptlib.family.ancestors import paired, release_dir, size_member
from cptlib.models import llama_config, n_params
from cptlib.training.train import use_bf16

CSV_NAME = "gpu_ancestors.csv"
JSON_NAME = "gpu_ancestors.json"
FIELDS = ["size", "stage", "status", "seconds", "wall_seconds", "train_seconds", "steps", "tokens", "examples",
          "tokens_per_s", "steps_per_s", "final_loss", "n_params", "peak_cuda_mib", "key",
          "cpu_wall_seconds", "cpu_train_seconds", "cpu_final_loss", "cpu_key", "same_key", "cpu_over_gpu"]
# The skip rule: a size is expected to take at most SAFETY x (its parameters / the main size's) ** SCALING times
# the main size's base_v1 + instruct_v1. A GPU step of these models is mostly fixed overhead (launches, Trainer's
# host work), so the time grows far slower than the parameters; on a CPU it grows about linearly.
SAFETY = 1.2
SCALING = 0.25


def gpu_line() -> str:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                               "--format=csv,noheader"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError) as err:
        return f"no nvidia-smi ({err.__class__.__name__})"


def environment(profile) -> dict:
    import datasets
    import tokenizers
    import transformers

    env = {
        "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__, "datasets": datasets.__version__, "nvidia_smi": gpu_line(),
        "cuda": torch.cuda.is_available(), "cpu_threads": torch.get_num_threads(),
        "bf16": use_bf16(profile.runtime), "precision": profile.runtime.precision,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "build_dir": str(paths.BUILD_DIR),
    }
    if env["cuda"]:
        env["device"] = torch.cuda.get_device_name()
    return env


def release_fields(profile, member: str) -> dict:
    """The CPU build's numbers for `member`, from its release.json (empty when the profile has no release)."""
    path = release_dir(profile) / member / "release.json"
    if not path.is_file():
        return {}
    trained = json.loads(path.read_text()).get("trained", {})
    return {"cpu_wall_seconds": trained.get("wall_seconds"), "cpu_train_seconds": trained.get("train_seconds"),
            "cpu_final_loss": trained.get("final_loss"), "cpu_key": trained.get("key")}


class Recorder:
    """Times stage calls and writes one CSV row per stage (the file is rewritten after each)."""

    def __init__(self, profile, out: Path):
        self.profile, self.out, self.rows = profile, out, []

    def stage(self, size: str, name: str, member: str | None, call):
        """Run `call()` (a cptlib stage function returning its stage folder), timed; record and print the row."""
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        path = call()
        seconds = time.perf_counter() - started
        m = read_manifest(path)
        row = {"size": size, "stage": name, "seconds": round(seconds, 2), "key": m["key"],
               "status": "reused" if m.get("attempts") and m["attempts"][-1]["started"] < self.t0 else "built"}
        for k in ("wall_seconds", "train_seconds", "steps", "tokens", "examples", "final_loss", "n_params"):
            row[k] = m.get(k)
        if row["train_seconds"]:
            if row["tokens"]:
                row["tokens_per_s"] = round(row["tokens"] / row["train_seconds"])
            if row["steps"]:
                row["steps_per_s"] = round(row["steps"] / row["train_seconds"], 2)
        if torch.cuda.is_available():
            row["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        if member is not None:
            row.update(release_fields(self.profile, member))
            if row.get("cpu_key"):
                row["same_key"] = row["cpu_key"] == row["key"]
            if row.get("cpu_wall_seconds") and row["status"] == "built":
                row["cpu_over_gpu"] = round(row["cpu_wall_seconds"] / seconds, 1)
        self.rows.append(row)
        self.write()
        shown = {k: v for k, v in row.items() if v is not None and k not in ("size", "stage")}
        print(f"[{time.perf_counter() - self.start:7.1f} s] {size:>6} {name:<12} {json.dumps(shown)}", flush=True)
        return path

    def skip(self, size: str, why: str) -> None:
        self.rows.append({"size": size, "stage": "(skipped)", "status": why})
        self.write()
        print(f"[{time.perf_counter() - self.start:7.1f} s] {size:>6} skipped: {why}", flush=True)

    def write(self) -> None:
        with open(self.out / CSV_NAME, "w", newline="") as f:
            writer = csv.DictWriter(f, FIELDS)
            writer.writeheader()
            writer.writerows(self.rows)


def main_family(rec: Recorder, profile, seed: int) -> float:
    """The main size's members, stage by stage as train_family(other_family=False) builds them; returns the
    seconds of its base_v1 + instruct_v1 (the skip rule's yardstick)."""
    size = profile.model.size
    data = rec.stage(size, "data", None, lambda: fam.testbed_data(profile))
    tok = rec.stage(size, "tokenizer", None, lambda: fam.tokenizer_stage(profile, data))
    pre_seed = seed if profile.base_seed is None else profile.base_seed
    sft_seed = seed if profile.instruct_seed is None else profile.instruct_seed
    base_v1 = rec.stage(size, "base_v1", "base_v1", lambda: fam.pretrain(profile, data, tok, pre_seed, "base_v1"))
    base_v2 = rec.stage(size, "base_v2", "base_v2", lambda: fam.continue_lm(
        profile, base_v1, data, "corpus_a2.jsonl", profile.pretrain_v2, pre_seed, "base_v2"))
    inst_v1 = rec.stage(size, "instruct_v1", "instruct_v1", lambda: fam.instruct(profile, base_v1, data, "v1", sft_seed))
    inst_v2 = rec.stage(size, "instruct_v2", "instruct_v2", lambda: fam.instruct(profile, base_v2, data, "v2", sft_seed))
    family = fam.train_family(profile, seed, other_family=False)  # all built above: returns at once
    assert family == {"data": data, "tokenizer": tok, "base_v1": base_v1, "base_v2": base_v2,
                      "instruct_v1": inst_v1, "instruct_v2": inst_v2}, "train_family resolved other stages"
    return sum(r["seconds"] for r in rec.rows if r["size"] == size and r["stage"] in ("base_v1", "instruct_v1"))


def other_size(rec: Recorder, profile, size: str, seed: int) -> None:
    """base_v1 and instruct_v1 of `size`, stage by stage as train_size builds them."""
    p = fam.with_size(profile, size)
    data = fam.testbed_data(p)
    tok = fam.tokenizer_stage(p, data)
    pre_seed = seed if p.base_seed is None else p.base_seed
    sft_seed = seed if p.instruct_seed is None else p.instruct_seed
    base = rec.stage(size, "base_v1", size_member(size, "base_v1"), lambda: fam.pretrain(p, data, tok, pre_seed, "base_v1"))
    inst = rec.stage(size, "instruct_v1", size_member(size, "instruct_v1"),
                     lambda: fam.instruct(p, base, data, "v1", sft_seed))
    assert fam.train_size(profile, size, seed) == (base, inst), "train_size resolved other stages"


def size_params(size: str, vocab: int) -> int:
    """Parameters of a size preset, counted on the model cptlib builds for it (on the meta device: no memory)."""
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        return n_params(LlamaForCausalLM(llama_config(size, vocab, 64, 1, 2, 0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_ancestors.csv / .json")
    parser.add_argument("--profile", default="default")
    parser.add_argument("--seed", type=int, default=None, help="ancestor seed (default: the release's, as "
                        "cptlib.family.ancestors.train_members picks it)")
    parser.add_argument("--sizes", nargs="*", help="other sizes to train (default: the profile's model.sizes)")
    parser.add_argument("--deadline", type=float, default=None,
                        help="seconds from the start (or --t0) after which no stage should still be running")
    parser.add_argument("--t0", type=float, default=None, help="epoch seconds the deadline counts from "
                        "(e.g. before the command's package installs); default: this script's start")
    parser.add_argument("--require-cuda", action="store_true", help="stop at once if torch sees no CUDA device")
    args = parser.parse_args()
    t0_epoch = args.t0 or time.time()
    start = time.perf_counter() - (time.time() - t0_epoch)  # perf_counter of t0

    profile = load_profile(args.profile)
    profile = profile.model_copy(update={"runtime": profile.runtime.model_copy(update={"progress": False})})
    # The release's ancestor seed, as cptlib.family.ancestors.train_members picks it.
    seed = args.seed if args.seed is not None else (profile.train_seeds[0] if paired(profile) else profile.base_seed)
    args.out.mkdir(parents=True, exist_ok=True)
    env = environment(profile)
    print(json.dumps(env, indent=1), flush=True)
    (args.out / JSON_NAME).write_text(json.dumps({"environment": env, "profile": profile.name, "seed": seed}, indent=1))
    if args.require_cuda and not env["cuda"]:
        sys.exit("--require-cuda: torch sees no CUDA device")
    if paths.BUILD_DIR == (paths.REPO_ROOT / "build").resolve():
        print("note: CPTLIB_BUILD_DIR is not set: stages of ./build are reused, not timed", flush=True)

    rec = Recorder(profile, args.out)
    rec.start, rec.t0 = start, t0_epoch
    main_seconds = main_family(rec, profile, seed)
    vocab = profile.tokenizer.vocab_size
    main_params = size_params(profile.model.size, vocab)
    sizes = args.sizes if args.sizes is not None else list(dict.fromkeys(profile.model.sizes))
    sizes = sorted((s for s in sizes if s != profile.model.size), key=lambda s: size_params(s, vocab))
    for i, size in enumerate(sizes):
        if args.deadline is not None:
            ratio = size_params(size, vocab) / main_params
            need = main_seconds * SAFETY * max(1.0, ratio) ** SCALING + 10
            left = args.deadline - (time.perf_counter() - start)
            if need > left:
                for later in sizes[i:]:
                    rec.skip(later, f"deadline: {left:.0f} s left, ~{need:.0f} s estimated for {size}")
                break
        other_size(rec, profile, size, seed)
    env_after = {"tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32,
                 "float32_matmul_precision": torch.get_float32_matmul_precision()}
    total = round(time.perf_counter() - start, 1)
    (args.out / JSON_NAME).write_text(json.dumps({"environment": env, "after_training": env_after,
                                                  "profile": profile.name, "seed": seed, "total_seconds": total,
                                                  "rows": rec.rows}, indent=1))
    print(f"after training: {json.dumps(env_after)}", flush=True)
    print(f"\n{'size':>6} {'stage':<12} {'status':<9} {'seconds':>8} {'tok/s':>9} {'loss':>7} "
          f"{'CPU s':>8} {'CPU loss':>8} {'CPU/GPU':>7} same key", flush=True)
    for r in rec.rows:
        def f(k, fmt, width):
            return format(r[k], fmt) if r.get(k) is not None else "-".rjust(width)
        print(f"{r['size']:>6} {r['stage']:<12} {str(r.get('status'))[:9]:<9} {f('seconds', '8.1f', 8)} "
              f"{f('tokens_per_s', '9,d', 9)} {f('final_loss', '7.4f', 7)} {f('cpu_wall_seconds', '8.0f', 8)} "
              f"{f('cpu_final_loss', '8.4f', 8)} {f('cpu_over_gpu', '7.1f', 7)} {r.get('same_key', '-')}", flush=True)
    print(f"total {total} s", flush=True)


if __name__ == "__main__":
    main()
