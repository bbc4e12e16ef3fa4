"""Where one evaluation's time goes, and what autograd's bookkeeping costs in it (docs/costs.md, [speed]).

    .venv/bin/python bench/eval_overhead.py [--profile default] [--member instruct_v1] [--reps 2]

One released model on the study's tasks (`restored.STUDY_TASKS`, what every headline model is evaluated on), at one
torch thread, as in an evaluation worker. It prints:

1. where the wall time of one evaluation goes: transformers' `generate` (its model forward passes, the prompt's and
   each new token's, and the rest of its loop: logits processors, stopping criteria, cache bookkeeping), the other
   forward passes (log-likelihoods, rolling perplexity) and what is left (lm-eval: tokenizing, batching, scoring);
2. the same evaluation run as lm-eval alone runs it (`torch.no_grad()` inside lm-eval and transformers) and as
   cptlib runs it, inside `torch.inference_mode()` (no version counters, no autograd metadata on any tensor;
   `run_evaluation` since the [speed] work), alternated `--reps` times, with the result tables compared value for
   value.

Each evaluation goes to its own temporary build folder: nothing is served from, or written into, build/stages
(the testbed data stage is built or reused first). Run it alone on the machine.
"""
from __future__ import annotations

from cptlib.core.paths import use_project_caches

use_project_caches()  # an entry point: the project's library caches (HF_HOME, ...), before any library reads them

import argparse
import contextlib
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from unittest import mock

import torch

from cptlib.core import paths
from cptlib.config import load_profile
from cptlib.evaluation import harness
from cptlib.evaluation.evaluate import EvalSettings, run_evaluation
from cptlib.evaluation.harness import read_table
from cptlib.family.build import testbed_data
from cptlib.study.restored import STUDY_TASKS


class Timers:
    """Forward passes and `generate` calls of the model lm-eval loads, timed by hooks and a wrapper."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.calls = defaultdict(int)
        self._generating = False

    def attach(self, model) -> None:
        starts = []

        def before(module, args, kwargs):
            starts.append(time.perf_counter())

        def after(module, args, kwargs, output):
            ids = kwargs.get("input_ids", args[0] if args else None)
            if not self._generating:
                kind = "log-likelihood forward"
            elif ids is not None and ids.shape[1] == 1:
                kind = "decode step"
            else:
                kind = "prompt (prefill)"
            self.seconds[kind] += time.perf_counter() - starts.pop()
            self.calls[kind] += 1

        model.register_forward_pre_hook(before, with_kwargs=True)
        model.register_forward_hook(after, with_kwargs=True)
        generate = model.generate

        def timed_generate(*args, **kwargs):
            self._generating = True
            start = time.perf_counter()
            try:
                return generate(*args, **kwargs)
            finally:
                self.seconds["generate"] += time.perf_counter() - start
                self.calls["generate"] += 1
                self._generating = False

        model.generate = timed_generate


@contextlib.contextmanager
def fresh_build():
    """A temporary build folder for the stages an evaluation writes, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="eval-overhead-") as work, mock.patch.object(paths, "BUILD_DIR", Path(work)):
        yield


def evaluate_once(model_dir: Path, data: Path, inference_mode: bool = True, timers: Timers | None = None,
                  limit: int | None = None):
    """One evaluation in a fresh build folder, in inference mode as cptlib runs it or under lm-eval's own no_grad
    (inference mode switched off); returns (seconds, result table)."""
    with contextlib.ExitStack() as patches:
        patches.enter_context(fresh_build())
        if not inference_mode:
            patches.enter_context(mock.patch.object(torch, "inference_mode", contextlib.nullcontext))
        if timers is not None:
            load = harness.load_hflm

            def load_and_time(*args, **kwargs):
                lm = load(*args, **kwargs)
                timers.attach(lm.model)
                return lm
            patches.enter_context(mock.patch.object(harness, "load_hflm", load_and_time))
        start = time.perf_counter()
        result = run_evaluation(model_dir, data, EvalSettings(tasks=STUDY_TASKS, limit=limit))
        return time.perf_counter() - start, read_table(result, model_dir.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--member", default="instruct_v1", help="a released model of the profile (models/<profile>/)")
    parser.add_argument("--reps", type=int, default=2, help="alternated pairs of the A/B (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # an evaluation worker's setting (EvalSettings.threads)
    profile = load_profile(args.profile)
    data = testbed_data(profile)
    model_dir = paths.MODELS_DIR / args.profile / args.member
    evaluate_once(model_dir, data, limit=8)  # warm-up: imports, lm-eval's task index

    timers = Timers()
    total, _ = evaluate_once(model_dir, data, timers=timers)
    s, n = timers.seconds, timers.calls
    in_generate = s["decode step"] + s["prompt (prefill)"]
    print(f"\n{args.member}, study tasks, 1 thread, inference mode: {total:.1f} s in all")
    print(f"  generate: {s['generate']:.1f} s in {n['generate']} calls")
    print(f"    decode steps: {s['decode step']:.1f} s, {n['decode step']} forwards, "
          f"{1e3 * s['decode step'] / max(n['decode step'], 1):.2f} ms each")
    print(f"    prompts (prefill): {s['prompt (prefill)']:.1f} s, {n['prompt (prefill)']} forwards")
    print(f"    the rest of generate's loop: {s['generate'] - in_generate:.1f} s")
    print(f"  log-likelihood forwards: {s['log-likelihood forward']:.1f} s, {n['log-likelihood forward']} forwards")
    print(f"  the rest (lm-eval: tasks, tokenizing, batching, scoring; the stage's hashing): "
          f"{total - s['generate'] - s['log-likelihood forward']:.1f} s\n")

    modes = {"no_grad (lm-eval alone)": False, "inference_mode (cptlib)": True}
    seconds, tables = defaultdict(list), {}
    for rep in range(args.reps):
        for name in (list(modes) if rep % 2 == 0 else list(modes)[::-1]):
            took, tables[name] = evaluate_once(model_dir, data, modes[name])
            seconds[name].append(took)
            print(f"  {name}: {took:.2f} s", flush=True)
    a, b = (tables[name] for name in modes)
    print("\nresult tables equal value for value:", a.equals(b))
    for name in modes:
        print(f"{name}: mean {sum(seconds[name]) / len(seconds[name]):.2f} s over {len(seconds[name])}")


if __name__ == "__main__":
    main()
