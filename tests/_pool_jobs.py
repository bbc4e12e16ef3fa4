"""Stage-building jobs for test_pool.py, importable by cptlib.core.pool's spawned workers (tests/ is on their path)."""
from pathlib import Path

from cptlib.core import stages
from cptlib.config import RuntimeConfig, TrainConfig
from cptlib.training.data import packed_lm_dataset
from cptlib.models import llama_config, new_model
from cptlib.tokenizer import load_tokenizer
from cptlib.training.train import train_causal_lm


def train_tiny(data: Path, name: str) -> Path:
    """A short causal-LM training as a stage; threads: the profile default (0 = a worker's share, or every core)."""
    def build(work: Path) -> dict:
        tok = load_tokenizer(data / "tokenizer")
        cfg = TrainConfig(tokens=20 * 8 * 32, lr=3e-3, batch_size=8, seq_len=32)
        config = llama_config("tiny", len(tok), cfg.seq_len, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
        ds = packed_lm_dataset([data / "corpus.jsonl"], tok, cfg.seq_len, seed=0)
        import torch

        train_causal_lm(new_model(config, seed=0), ds, tok, cfg, RuntimeConfig(progress=False), 0, work)
        return {"threads": torch.get_num_threads()}

    return stages.run_stage("pooltest", {"name": name}, build)


def fail(name: str) -> Path:
    def build(work: Path) -> dict:
        raise ValueError(f"job {name} cannot run")

    return stages.run_stage("pooltest", {"name": name}, build)


def whoami(name: str) -> Path:
    """A stage that records which process built it."""
    import os

    return stages.run_stage("pooltest", {"name": name}, lambda work: {"pid": os.getpid()})


def chatty(name: str) -> Path:
    """A stage that prints a line, draws a progress bar the way lm-eval does (disable passed explicitly) and warns."""
    def build(work: Path) -> dict:
        import warnings

        from tqdm import tqdm

        print(f"chatty {name} prints to stdout")
        for _ in tqdm(range(3), desc=f"bar of {name}", disable=False):
            pass
        warnings.warn(f"chatty {name} warns")
        return {}

    return stages.run_stage("chatty", {"name": name}, build)


def sleepy(name: str) -> Path:
    """A stage that takes a while (a training, as far as an interruption can tell): long enough that an interrupt sent
    after its start is seen still reaches it on a loaded machine (60 s did not once, in a full `make test`)."""
    import time

    return stages.run_stage("sleepy", {"name": name}, lambda work: time.sleep(180) or {})
