"""What one seed of the real pair costs on this CPU: Gemma 3 270M training, generation and scoring throughput.

    .venv/bin/python bench/real_pair_cost.py --model build/stages/converted-<key> --threads 1

Measures, on random token ids (throughput does not depend on the text): an AdamW training step at batch 4 x 256 with
the output layer over every position and over 40% of them (the share an SFT batch has labels on), greedy generation
(batch 8, 64 new tokens after a 64-token prompt, the KV cache on) and a scoring forward (batch 4 x 128). Prints JSON.
"""
from __future__ import annotations

import argparse
import json
import time

import torch
from transformers import AutoModelForCausalLM


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up: allocations, first-call dispatch
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a transformers checkpoint folder (the converted Gemma stage)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, local_files_only=True)
    vocab = model.config.vocab_size
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    batch, seq = 4, 256
    ids = torch.randint(3, vocab, (batch, seq))
    keep = torch.rand(batch, seq) < 0.4

    def step(sparse: bool) -> None:
        opt.zero_grad()
        if sparse:  # the output layer only where a label is
            hidden = model.get_decoder()(input_ids=ids).last_hidden_state[:, :-1][keep[:, 1:]]
            logits = model.get_output_embeddings()(hidden)
            loss = torch.nn.functional.cross_entropy(logits, ids[:, 1:][keep[:, 1:]])
        else:
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()

    out = {"threads": args.threads, "n_params": sum(p.numel() for p in model.parameters())}
    t = _timed(lambda: step(False), args.repeats)
    out["train_tokens_per_s_full_logits"] = round(batch * seq / t, 1)
    t = _timed(lambda: step(True), args.repeats)
    out["train_tokens_per_s_logits_40pct"] = round(batch * seq / t, 1)
    model.eval()
    prompt = torch.randint(3, vocab, (8, 64))
    with torch.no_grad():
        t = _timed(lambda: model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=64,
                                          min_new_tokens=64, do_sample=False), 1)
        out["generate_new_tokens_per_s_batch8"] = round(8 * 64 / t, 1)
        score = torch.randint(3, vocab, (4, 128))
        t = _timed(lambda: model(input_ids=score), args.repeats)
        out["score_tokens_per_s_batch4"] = round(4 * 128 / t, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
