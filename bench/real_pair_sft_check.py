"""The real pair's SFT against its targets (calibration log run 21), before any CPT result is looked at.

    .venv/bin/python bench/real_pair_sft_check.py --profile gemma3_270m_pair

Scores base_v1 and instruct_v1 alone — the suite (IF on the held-out IFEval-format prompts) and the paper's
benchmarks (notebook 07's fixed subsets) — each a cached evaluation stage the study's notebooks reuse, and judges
the SFT's targets with the study's own code (cptlib.study.sft_targets; the report renders the same table):
IF(instruct_v1) − IF(base_v1) ≥ +0.30 and the benchmarks' average of instruct_v1 − base_v1 ≥ −0.03, each with its
paired 95% interval over the items (one SFT seed). Writes docs/calibration/run21_sft.csv.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from cptlib.config import load_profile
from cptlib.core.paths import REPO_ROOT


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="gemma3_270m_pair", help="a profile whose models.instruct_v1 is sft")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "docs/calibration/run21_sft.csv")
    args = ap.parse_args()

    from cptlib.study import sft_targets

    profile = load_profile(args.profile)
    if not sft_targets.applies(profile):
        raise SystemExit(f"profile {args.profile!r} names a released instruct model (models.instruct_v1: "
                         f"{profile.models.instruct_v1}); the SFT's targets are for models.instruct_v1: sft")
    out = sft_targets.table(profile, benchmarks=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out, index=False)
    print(sft_targets.shown(out).to_string(index=False))


if __name__ == "__main__":
    main()
