"""Padding-free SFT batches, measured: the default's SFT recipe on the released base_v1, the same batches through
Trainer twice, once padded to the longest example (DataCollatorForSeq2Seq, what cptlib trains with) and once
flattened into one row with per-example position ids (transformers' DataCollatorWithFlattening; the attention
mask is then block-diagonal, one block per example). In exact arithmetic both give the same loss and gradient.

    .venv/bin/python bench/sft_padding_free.py [--steps 120] [--repeats 2]

Prints tokens per batch (real and padded), seconds per step of each (the best of `--repeats` alternating runs, the
one least disturbed by other work), and how far the per-step losses of the two drift apart. Nothing is cached or
written outside a temporary folder. Run it alone on the machine: two trainings side by side measure nothing.
"""
from __future__ import annotations

from cptlib.core.paths import use_project_caches

use_project_caches()  # an entry point: the project's library caches (HF_HOME, ...), before any library reads them

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening, PrinterCallback, Trainer, TrainerCallback

from cptlib.config import load_with_overrides
from cptlib.family.build import testbed_data
from cptlib.core.paths import REPO_ROOT
from cptlib.tokenizer import load_tokenizer
from cptlib.training.data import sft_dataset
from cptlib.training.train import _load_model, _training_args, configure_runtime


class _Clock(TrainerCallback):
    """When each step ended: the time per step is taken from the first step's end to the last's (no start-up)."""

    def __init__(self):
        self.stamps = []

    def on_step_end(self, args, state, control, **kwargs):
        self.stamps.append(time.perf_counter())


def _losses_and_seconds(base: Path, ds, tok, profile, collator, steps: int) -> tuple[list[float], float]:
    configure_runtime(profile.runtime)
    model, _ = _load_model(base, tok, profile.runtime)
    clock = _Clock()
    with tempfile.TemporaryDirectory() as out:
        args = _training_args(Path(out), profile.sft, profile.runtime, profile.base_seed, steps, profile.sft.batch_size)
        args.logging_steps, args.save_strategy = 1, "no"
        trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=collator, processing_class=tok,
                          callbacks=[clock])
        trainer.remove_callback(PrinterCallback)  # every step is logged (for the losses), not printed
        trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return losses, (clock.stamps[-1] - clock.stamps[0]) / (len(clock.stamps) - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    profile = load_with_overrides(args.profile, {"runtime.progress": False}, run_name=f"{args.profile}-padding-free-bench")
    base = REPO_ROOT / "models" / args.profile / "base_v1"
    data = testbed_data(profile)
    tok = load_tokenizer(base)
    cfg = profile.sft
    ds = sft_dataset(data / "sft_v1.jsonl", tok, cfg.max_len, profile.base_seed, [data / "corpus_a1.jsonl"], cfg.replay_frac)
    lengths = np.array([len(x) for x in ds["input_ids"]])
    rng = np.random.default_rng(0)
    batches = [rng.choice(lengths, cfg.batch_size, replace=False) for _ in range(2000)]
    real, padded = np.mean([b.sum() for b in batches]), np.mean([b.max() * len(b) for b in batches])
    print(f"{len(ds)} examples, {lengths.mean():.0f} tokens on average; a batch of {cfg.batch_size}: {real:.0f} real "
          f"tokens, {padded:.0f} when padded to its longest ({real / padded:.0%} real)")

    collators = {"padded": DataCollatorForSeq2Seq(tok, padding="longest", label_pad_token_id=-100),
                 "flattened": DataCollatorWithFlattening(return_position_ids=True)}
    best, losses = {}, {}
    for _ in range(args.repeats):
        for name, collator in collators.items():
            losses[name], sec = _losses_and_seconds(base, ds, tok, profile, collator, args.steps)
            best[name] = min(best.get(name, float("inf")), sec)
            print(f"  {name}: {sec * 1000:.0f} ms per step", flush=True)
    gap = np.abs(np.array(losses["padded"]) - np.array(losses["flattened"]))
    print(f"padded {best['padded'] * 1000:.0f} ms/step, flattened {best['flattened'] * 1000:.0f} ms/step: "
          f"{best['flattened'] / best['padded']:.2f}x the time ({args.steps} steps, best of {args.repeats}, "
          f"{profile.runtime.threads or 'all'} threads)")
    print(f"per-step loss, flattened - padded: first step {gap[0]:.2e}, largest over {len(gap)} steps {gap.max():.2e}, "
          f"final losses {losses['padded'][-1]:.4f} / {losses['flattened'][-1]:.4f}")


if __name__ == "__main__":
    main()
