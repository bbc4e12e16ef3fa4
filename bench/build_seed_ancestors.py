"""Issue 30 step 4 (calibration log, run 17): train the ancestors of a pilot profile's study seeds through the
stages, one job after another (two workers side by side ran each 4-6x slower on the 2-core machine):

    OMP_NUM_THREADS=1 .venv/bin/python bench/build_seed_ancestors.py docs/calibration/run17.yaml family:0 family:1 family:2 other:0

Jobs: `family:S` (base_v1, base_v2, instruct_v1, instruct_v2 of seed S), `other:S` (other_family and
other_instruct too), `size:NAME:S` (base_v1 and instruct_v1 of another size preset). Every step is a cached
stage (a rerun trains nothing; an interrupted pre-training resumes from its checkpoint); `make ancestors` then
exports what these built.
"""
from __future__ import annotations

from cptlib.core.paths import use_project_caches

use_project_caches()

import argparse
import time

import torch

from cptlib.config import load_profile
from cptlib.family import build as fam


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("profile", help="a profile file or name")
    ap.add_argument("jobs", nargs="+", help="family:S, other:S or size:NAME:S, run in this order")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    prof = load_profile(args.profile)
    for job in args.jobs:
        kind, *rest = job.split(":")
        t0 = time.time()
        if kind in ("family", "other"):
            out = fam.train_family(prof, int(rest[0]), other_family=kind == "other")
        elif kind == "size":
            out = dict(zip(("base_v1", "instruct_v1"), fam.train_size(prof, rest[0], int(rest[1]))))
        else:
            raise SystemExit(f"unknown job {job!r}: family:S, other:S or size:NAME:S")
        print(f"[{time.strftime('%H:%M:%S')}] {job}: {time.time() - t0:.0f} s "
              + ", ".join(f"{k}={v.name}" for k, v in out.items() if k not in ("data", "tokenizer")), flush=True)


if __name__ == "__main__":
    main()
