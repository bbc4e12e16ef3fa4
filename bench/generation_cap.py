"""What the generation-cap fix costs (commit 2799619, docs/costs.md): the chat tasks of the testbed suite on released
models, once with a 128-token cap (what every testbed checkpoint's generation_config imposed before the fix; the
same cap now comes from `max_gen_toks=128`) and once with the tasks' own 192, timed in one warm process.

    .venv/bin/python bench/generation_cap.py [--profile default] [--members base_v1 instruct_v1 base_v2 instruct_v2]

The order of the two caps alternates from member to member, so that neither gains from running second. The
evaluations go to a temporary build folder: nothing is served from, or written into, build/stages. Run it alone
on the machine.
"""
from __future__ import annotations

from cptlib.core.paths import use_project_caches

use_project_caches()  # an entry point: the project's library caches (HF_HOME, ...), before any library reads them

import argparse
import tempfile
import time
from pathlib import Path

from cptlib.core import paths
from cptlib.config import load_profile
from cptlib.evaluation.evaluate import EvalSettings, run_evaluation
from cptlib.evaluation.harness import read_table
from cptlib.family.build import testbed_data

CHAT = ("testbed_ifeval", "testbed_chat_knowledge", "testbed_chat_knowledge_a")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--members", nargs="+", default=["base_v1", "instruct_v1", "base_v2", "instruct_v2"])
    args = parser.parse_args()
    profile = load_profile(args.profile)
    data = testbed_data(profile)  # the shared stage (seconds when cached), before the private build folder
    released = paths.MODELS_DIR / args.profile
    paths.BUILD_DIR = Path(tempfile.mkdtemp(prefix="generation-cap-"))
    run_evaluation(released / args.members[0], data, EvalSettings(tasks=CHAT, limit=8))  # warm-up: imports, lm-eval
    for i, member in enumerate(args.members):
        for cap in (128, None) if i % 2 == 0 else (None, 128):
            start = time.perf_counter()
            result = run_evaluation(released / member, data, EvalSettings(max_gen_toks=cap, tasks=CHAT))
            seconds = time.perf_counter() - start
            value = read_table(result, member).set_index(["task", "metric"]).value
            print(f"{member}, cap {cap or 192}: {seconds:.1f} s, IF prompt-level strict "
                  f"{value['testbed_ifeval', 'prompt_level_strict_acc']:.3f}", flush=True)


if __name__ == "__main__":
    main()
