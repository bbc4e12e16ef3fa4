"""Training throughput: cptlib's Trainer path vs a bare PyTorch loop, per size preset, in one process.

    .venv/bin/python bench/train_throughput.py [--sizes tiny small base] [--steps 40] [--out bench/out/train.json]

Both paths train the same freshly initialised model (same seed) on the same packed batches (fixed order, no
shuffling), same precision, AdamW with the same settings, gradient clipping and schedule; each runs
`--repeats` times, alternating, and the best time counts (the least disturbed by other work on the machine).
Model FLOPs utilisation (MFU) = 6·N·tokens/s (+ attention) over a measured matmul peak of this machine in
the same precision. Runs on CUDA when a GPU is present (then bf16 where supported).
"""
from __future__ import annotations

from cptlib.core.paths import use_project_caches

use_project_caches()  # an entry point: the project's library caches (HF_HOME, ...), before any library reads them

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import torch
from datasets import Dataset
from torch.utils.data import DataLoader
from transformers import DataCollatorForLanguageModeling, TrainerCallback, get_scheduler

from cptlib.config import RuntimeConfig, TrainConfig
from cptlib.models import llama_config, new_model, n_params
from cptlib.presets import PRESETS
from cptlib.tokenizer import train_tokenizer
from cptlib.training.train import configure_runtime, train_causal_lm, use_bf16

SEQ_LEN, BATCH = 128, 32
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def matmul_peak_gflops(dtype: torch.dtype, repeats: int = 20) -> float:
    """Best of `repeats` square matrix products on DEVICE in the precision training uses."""
    n = 8192 if DEVICE == "cuda" else 1024
    a, b = torch.randn(n, n, device=DEVICE, dtype=dtype), torch.randn(n, n, device=DEVICE, dtype=dtype)
    torch.mm(a, b)
    best = math.inf
    for _ in range(repeats):
        _sync()
        t = time.perf_counter()
        torch.mm(a, b)
        _sync()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def flops_per_token(size: str, vocab: int) -> float:
    """6·N for the weight matmuls (forward + backward) plus the attention scores (PaLM appendix B)."""
    p = PRESETS[size]
    matmul_params = p.layers * (4 * p.hidden**2 + 3 * p.hidden * p.intermediate) + vocab * p.hidden
    return 6 * matmul_params + 12 * p.layers * p.hidden * SEQ_LEN


def batches(vocab: int, steps: int) -> Dataset:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(8, vocab, (steps * BATCH, SEQ_LEN), generator=g)
    return Dataset.from_dict({"input_ids": ids.tolist()})


class _Timer(TrainerCallback):
    """Times the optimisation steps only, as the bare loop does (not Trainer's set-up or the final save)."""

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        _sync()
        self.seconds = time.perf_counter() - self.start


def run_cptlib(size, tok, ds, cfg, runtime) -> float:
    model = new_model(llama_config(size, len(tok), SEQ_LEN, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id), 0)
    timer = _Timer()
    with tempfile.TemporaryDirectory() as out:
        # The bare loop does not shuffle; neither does this run (a Dataset sampler is still a random one,
        # but both see the same batch shapes and the cost per step does not depend on the order).
        train_causal_lm(model, ds, tok, cfg, runtime, 0, Path(out), callbacks=[timer])
    return timer.seconds


def run_bare(size, tok, ds, cfg, runtime) -> float:
    model = new_model(llama_config(size, len(tok), SEQ_LEN, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id), 0)
    model.to(DEVICE).train()
    if runtime.compile:
        model = torch.compile(model)
    steps = cfg.tokens // (BATCH * SEQ_LEN)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(0.9, 0.95), eps=1e-8)
    sched = get_scheduler(cfg.schedule, opt, num_warmup_steps=int(cfg.warmup_frac * steps), num_training_steps=steps)
    loader = DataLoader(ds, batch_size=BATCH, collate_fn=DataCollatorForLanguageModeling(tok, mlm=False))
    _sync()
    start = time.perf_counter()
    for batch in loader:
        batch = {k: v.to(DEVICE) for k, v in batch.items()}
        with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=use_bf16(runtime)):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    _sync()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small", "base"], choices=sorted(PRESETS))
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per run (32x128 tokens each)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per path; the best counts")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--compile", action="store_true", help="torch.compile both paths (runtime.compile)")
    parser.add_argument("--out", type=Path, default=Path("bench/out/train_throughput.json"))
    args = parser.parse_args()

    runtime = RuntimeConfig(progress=False, precision=args.precision, compile=args.compile)
    configure_runtime(runtime)
    tok = train_tokenizer((f"word{i} and word{i + 1}" for i in range(3000)), 2048)
    peak = matmul_peak_gflops(torch.bfloat16 if use_bf16(runtime) else torch.float32)
    ds = batches(len(tok), args.steps)
    tokens = args.steps * BATCH * SEQ_LEN
    cfg = TrainConfig(tokens=tokens, batch_size=BATCH, seq_len=SEQ_LEN, lr=1e-3, weight_decay=0.1)
    rows = []
    for size in args.sizes:
        times = {"cptlib": math.inf, "bare": math.inf}
        for _ in range(args.repeats):
            times["cptlib"] = min(times["cptlib"], run_cptlib(size, tok, ds, cfg, runtime))
            times["bare"] = min(times["bare"], run_bare(size, tok, ds, cfg, runtime))
        tps = {k: tokens / v for k, v in times.items()}
        n = n_params(new_model(llama_config(size, len(tok), SEQ_LEN, 1, 2, 0), 0))
        mfu = tps["cptlib"] * flops_per_token(size, len(tok)) / (peak * 1e9)
        rows.append({"size": size, "params": n, "cptlib_tok_s": round(tps["cptlib"]), "bare_tok_s": round(tps["bare"]),
                     "ratio": round(tps["cptlib"] / tps["bare"], 3), "mfu": round(mfu, 3)})
    result = {"device": torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu",
              "precision": "bf16" if use_bf16(runtime) else "fp32", "compile": runtime.compile,
              "threads": torch.get_num_threads(),
              "matmul_peak_gflops": round(peak, 1), "steps": args.steps, "tokens_per_step": BATCH * SEQ_LEN, "rows": rows}
    print(f"{result['device']}, {result['precision']}, {result['threads']} threads, "
          f"{result['precision']} matmul peak {peak:.1f} GFLOP/s")
    print(f"{'size':<6} {'params':>9} {'cptlib tok/s':>13} {'bare tok/s':>11} {'ratio':>6} {'MFU':>6}")
    for r in rows:
        print(f"{r['size']:<6} {r['params']:>9} {r['cptlib_tok_s']:>13} {r['bare_tok_s']:>11} {r['ratio']:>6.3f} {r['mfu']:>6.1%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
