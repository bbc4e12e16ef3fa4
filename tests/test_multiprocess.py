"""Multi-process training: torchrun with 2 CPU processes (gloo DDP) against 1 process, same global batch.

Same data, order, seed and global batch (1 x 8 sequences vs 2 x 4): the gradients differ only by floating-point
summation order (all-reduced as a sum of two half-batch means, halved). What DDP guarantees is that the update
is the global-batch one; the test checks that in fp32 with SGD, so that nothing but rounding separates the runs:
- fp32, pinned: `precision: auto` is bf16 autocast on CPUs with AVX-512-BF16/AMX, where a batch of 4 and one of
  8 round differently (measured: max |Δ weight| 1e-4 after one step). That is why the earlier version, written
  on an fp32-only machine, failed on a fresh clone of a bf16 one (loss diff 2.2e-5, max |Δ weight| 0.006).
- SGD, whose update is linear in the gradient: Adam's first steps divide each gradient by its own magnitude, so
  a near-zero gradient whose last bits differ can flip a whole lr-sized update.
Measured on this 2-core CPU (2026-12-01): final loss |Δ| = 2.4e-7, max |Δ weight| = 6e-8 (one process with 1 vs
2 threads: bitwise equal). A rank that skipped the all-reduce would step along its half-batch gradient instead:
max |Δ weight| of order lr·|g_half - g|, orders above the tolerance.
"""
import json
import time

import pytest
import torch
from safetensors.torch import load_file

from cptlib.config import RuntimeConfig, TrainConfig
from cptlib.training.data import packed_lm_dataset
from cptlib.models import llama_config, new_model
from cptlib.tokenizer import load_tokenizer
from cptlib.training.launch import run_causal_lm

LOSS_TOLERANCE = 1e-5  # absolute, on a loss of ~3.5 nats: 40x the measured difference
WEIGHT_TOLERANCE = 2e-6  # max |Δ| over all weights (O(0.02-1)): 30x the measured difference


def _train(tiny_corpus, out, nproc, batch):
    tok = load_tokenizer(tiny_corpus / "tokenizer")
    cfg = TrainConfig(tokens=12 * 8 * 32, lr=0.5, optim="sgd", batch_size=batch, seq_len=32,
                      milestones=[4 * 8 * 32])
    runtime = RuntimeConfig(progress=False, precision="fp32", threads=1, nproc=nproc, strategy="ddp" if nproc > 1 else "single")
    model = new_model(llama_config("tiny", len(tok), 32, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id), 0)
    ds = packed_lm_dataset([tiny_corpus / "corpus.jsonl"], tok, cfg.seq_len, seed=0)
    started = time.time()
    fields = run_causal_lm(model, ds, tok, cfg, runtime, 0, out)
    return fields, time.time() - started


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(tiny_corpus, tmp_path):
    one, t1 = _train(tiny_corpus, tmp_path / "one", nproc=1, batch=8)
    two, t2 = _train(tiny_corpus, tmp_path / "two", nproc=2, batch=4)
    assert (one["steps"], one["tokens"]) == (two["steps"], two["tokens"]) == (12, 12 * 8 * 32)
    assert two["world_size"] == 2
    diff = abs(one["final_loss"] - two["final_loss"])
    a, b = load_file(str(tmp_path / "one" / "model.safetensors")), load_file(str(tmp_path / "two" / "model.safetensors"))
    weight_diff = max((a[k] - b[k]).abs().max().item() for k in a)
    print(json.dumps({"loss_1proc": one["final_loss"], "loss_2proc": two["final_loss"], "loss_diff": diff,
                      "max_weight_diff": weight_diff, "seconds_1proc": round(t1, 1), "seconds_2proc": round(t2, 1)}))
    assert diff <= LOSS_TOLERANCE
    assert weight_diff <= WEIGHT_TOLERANCE
    # Rank 0 alone wrote the model, the milestone and the log; the job folder is cleaned up.
    assert (tmp_path / "two" / "milestones" / "tokens-000000001024" / "model.safetensors").is_file()
    assert not (tmp_path / "two" / "job").exists() and not (tmp_path / "two" / "checkpoints").exists()
    log = json.loads((tmp_path / "two" / "train_log.json").read_text())
    assert log[-1]["step"] == 12
