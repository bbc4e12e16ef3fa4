"""Training in one process or several: `python -m cptlib.training.launch JOB_DIR` runs the job saved there.

    fields = run_causal_lm(init, dataset, tokenizer, cfg, runtime, seed, out)   # in a stage's build()

With `runtime.nproc == 1` this is `cptlib.training.train.train_causal_lm` in this process. With more, the parent saves
the job (initial model, tokenized dataset, tokenizer, configs) under `out/job/`, starts
`torchrun --standalone --nproc_per_node N -m cptlib.training.launch out/job`, streams its output, and returns the
fields rank 0 wrote. The data pipeline and the stage machinery (content-addressed dir, `.partial`, lock) stay
in the parent, so the dataset, its order and the stage key do not depend on the number of processes; Trainer
shards each global batch over the ranks (DDP: gloo on a CPU, nccl on GPUs; or FSDP, `runtime.strategy`).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import deque
from pathlib import Path

from cptlib.config import RuntimeConfig, SFTConfig, TrainConfig
from cptlib.core.files import write_json_atomic


JOB_DIR = "job"
RESULT = "job_result.json"


class TrainJobError(RuntimeError):
    """A training subprocess failed; the message holds the end of its output."""


def run_causal_lm(init, dataset, tokenizer, cfg: TrainConfig, runtime: RuntimeConfig, seed: int, out: Path) -> dict:
    from cptlib.training.train import train_causal_lm

    if runtime.nproc == 1:
        return train_causal_lm(init, dataset, tokenizer, cfg, runtime, seed, out)
    return launch("lm", init, dataset, tokenizer, cfg, runtime, seed, out)


def run_sft(init, dataset, tokenizer, cfg: SFTConfig, runtime: RuntimeConfig, seed: int, out: Path) -> dict:
    from cptlib.training.train import train_sft

    if runtime.nproc == 1:
        return train_sft(init, dataset, tokenizer, cfg, runtime, seed, out)
    return launch("sft", init, dataset, tokenizer, cfg, runtime, seed, out)


def save_job(kind: str, init, dataset, tokenizer, cfg, runtime: RuntimeConfig, seed: int, out: Path) -> Path:
    """Everything a rank needs, on disk: a fresh model is saved so that every rank starts from its weights."""
    job = Path(out) / JOB_DIR
    shutil.rmtree(job, ignore_errors=True)
    job.mkdir(parents=True)
    if not isinstance(init, (str, Path)):
        init.save_pretrained(job / "init")
        init = job / "init"
    dataset.save_to_disk(str(job / "dataset"))
    tokenizer.save_pretrained(job / "tokenizer")
    write_json_atomic(job / "job.json", {
        "kind": kind, "init": str(init), "fresh": init == job / "init", "cfg": cfg.model_dump(mode="json"),
        "runtime": runtime.model_dump(mode="json"), "seed": seed, "out": str(Path(out).resolve()),
    })
    return job


def launch(kind: str, init, dataset, tokenizer, cfg, runtime: RuntimeConfig, seed: int, out: Path) -> dict:
    job = save_job(kind, init, dataset, tokenizer, cfg, runtime, seed, out)
    result = Path(out) / RESULT
    result.unlink(missing_ok=True)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={runtime.nproc}",
               "-m", "cptlib.training.launch", str(job)]
    stream(command)
    if not result.is_file():
        raise TrainJobError(f"{' '.join(command)} exited cleanly but wrote no {result}")
    fields = json.loads(result.read_text())
    shutil.rmtree(job)
    result.unlink()
    return fields


def stream(command: list[str]) -> None:
    """Run `command`, copying its output here as it comes (progress bars included); an error keeps the tail."""
    tail: deque[str] = deque(maxlen=40)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env) as proc:
        while chunk := os.read(proc.stdout.fileno(), 65536):
            text = chunk.decode(errors="replace")
            sys.stdout.write(text)
            sys.stdout.flush()
            tail.extend(text.splitlines())
    if proc.returncode != 0:
        raise TrainJobError(f"training under torchrun failed (exit {proc.returncode}): {' '.join(command)}\n"
                            + "\n".join(tail))


def run_rank(job: Path) -> None:
    """One rank of a saved job (under torchrun); rank 0 writes the result fields."""
    from datasets import load_from_disk
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cptlib.training.train import train_causal_lm, train_sft

    spec = json.loads((job / "job.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(str(job / "tokenizer"), local_files_only=True)
    dataset = load_from_disk(str(job / "dataset"))
    runtime = RuntimeConfig(**spec["runtime"])
    init = Path(spec["init"])
    if spec["fresh"]:  # a new model: start from its weights, but no parent to measure drift against
        init = AutoModelForCausalLM.from_pretrained(str(init), local_files_only=True)
    out = Path(spec["out"])
    if spec["kind"] == "lm":
        fields = train_causal_lm(init, dataset, tokenizer, TrainConfig(**spec["cfg"]), runtime, spec["seed"], out)
    else:
        fields = train_sft(init, dataset, tokenizer, SFTConfig(**spec["cfg"]), runtime, spec["seed"], out)
    if int(os.environ.get("RANK", "0")) == 0:
        write_json_atomic(out / RESULT, fields)


if __name__ == "__main__":
    from cptlib.core.shutdown import skip_final_collection

    skip_final_collection()  # torchrun, and the notebook behind it, wait for every rank to exit
    run_rank(Path(sys.argv[1]))
