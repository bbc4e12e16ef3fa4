"""The headline numbers under two CPU instruction sets: does a machine with another CPU reproduce them?

    .venv/bin/python bench/cross_cpu.py [--profile default] [--seed 0] [--out bench/out/cross_cpu.json]

Machines of this kind differ in CPU (AVX2 only, AVX-512, AVX-512-BF16/AMX); with precision pinned to fp32 the
only difference left is which vector kernels PyTorch, oneDNN and MKL pick, which changes float results in the
last bits. This script runs, for each of the machine's own kernels and AVX2 (CAPS: PyTorch's
ATEN_CPU_CAPABILITY with oneDNN and MKL capped alike), in its own build directory: CPT of instruct_v1 and base_v1
at the profile's budget (first seed), CPT(base_v1)+Θr(v1), and their evaluation with the study's tasks, then
prints the weight difference of the CPT models and C1's and C3's effects with 95% intervals (bootstrap over
items) under both. The released ancestors are the committed files, the same bytes under both.
Takes ~4 minutes for the default profile on 2 cores (most of it the AVX2 run: the native one reuses build/).
"""
from __future__ import annotations

from cptlib.core.paths import use_project_caches

use_project_caches()  # an entry point: the project's library caches (HF_HOME, ...), before any library reads them

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from cptlib.core.provenance import AVX2_KERNELS

CAPS = {"native": {}, "avx2": AVX2_KERNELS}


def run_one(profile: str, seed: int) -> dict:
    """In this process (its environment sets the kernels): the models, their scores and the effects."""
    import torch

    from cptlib.config import load_profile
    from cptlib.family import build_family, cpt
    from cptlib.study import stats
    from cptlib.study.labels import CPT_B, CPT_I, REST
    from cptlib.study.restored import restored, scores

    p = load_profile(profile)
    f = build_family(p, seed)
    cpt_i, cpt_b = cpt(p, f["instruct_v1"], seed), cpt(p, f["base_v1"], seed)
    models = {"instruct_v1": f["instruct_v1"], "base_v1": f["base_v1"], CPT_I: cpt_i, CPT_B: cpt_b,
              REST: restored(f["base_v1"], f["instruct_v1"], cpt_b)}
    table = scores(models, f["data"], p.study.eval_processes).rename_axis("model").reset_index()
    effects = {"C1 ΔIF = IF(instruct_v1) − IF(CPT(instruct_v1))": stats.paired(table, "model", "instruct_v1", CPT_I, "IF"),
               "C3 ΔIF = IF(restored) − IF(instruct_v1)": stats.paired(table, "model", REST, "instruct_v1", "IF"),
               "C3 Δ era-B = era-B(restored) − era-B(CPT(base_v1))": stats.paired(table, "model", REST, CPT_B, "era_b")}
    return {"capability": torch.backends.cpu.get_cpu_capability(), "cpt_dirs": {CPT_I: str(cpt_i), CPT_B: str(cpt_b)},
            "scores": table.drop(columns="eval").set_index("model").to_dict("index"),
            "effects": {k: {"mean": e.mean, "lo": e.lo, "hi": e.hi, "text": e.text()} for k, e in effects.items()}}


def weight_difference(a: Path, b: Path) -> dict:
    from safetensors.torch import load_file

    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    num = sum(((wa[k] - wb[k]).double() ** 2).sum().item() for k in wa) ** 0.5
    den = sum((wa[k].double() ** 2).sum().item() for k in wa) ** 0.5
    return {"relative": num / den, "max_abs": max((wa[k] - wb[k]).abs().max().item() for k in wa)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/out/cross_cpu.json"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.profile, args.seed)))
        return
    results = {}
    with tempfile.TemporaryDirectory(prefix="cptlib-avx2-", dir=Path(__file__).resolve().parent / "out") as scratch:
        for name, env in CAPS.items():
            child_env = {**os.environ, **env}
            if env:  # a build directory of its own: stage keys do not name the kernels, the weights would be reused
                child_env["CPTLIB_BUILD_DIR"] = scratch
            print(f"[{name}] CPT and evaluation ...", file=sys.stderr, flush=True)
            out = subprocess.run([sys.executable, __file__, "--profile", args.profile, "--seed", str(args.seed), "--child"],
                                 env=child_env, check=True, capture_output=True, text=True).stdout
            results[name] = json.loads(out.strip().splitlines()[-1])
        native, avx2 = results["native"], results["avx2"]
        diff = {m: weight_difference(Path(native["cpt_dirs"][m]), Path(avx2["cpt_dirs"][m])) for m in native["cpt_dirs"]}
    report = {"profile": args.profile, "seed": args.seed, "runs": results, "cpt_weight_difference": diff}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"kernels: {native['capability']} vs {avx2['capability']}")
    for m, d in diff.items():
        print(f"{m}: ‖Δθ‖/‖θ‖ = {d['relative']:.2e}, max |Δθ| = {d['max_abs']:.2e}")
    for k in native["effects"]:
        print(f"{k}: {native['effects'][k]['text']} vs {avx2['effects'][k]['text']}")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
