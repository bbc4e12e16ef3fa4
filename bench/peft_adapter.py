"""The instruction residual as a PEFT LoRA adapter, measured: `.venv/bin/python bench/peft_adapter.py`
(about a minute on 2 cores; writes bench/out/peft_adapter/results.json).

1. Equality. On tiny LLaMAs (untied and tied head; the test's family, tests/residual_helpers.py), for rank 1, 2 and
   full: the max |Δ| between `PeftModel.from_pretrained(cpt, adapter).merge_and_unload()` and cptlib's own
   `apply` of the same-rank residual (full: `restore`), over the attention and MLP matrices and over every tensor
   (norms left to the target on both sides, `--vectors drop`), and the max |Δ| of the logits of the adapter
   *attached* (not merged) against cptlib's merged model. Tied models merge with ensure_weight_tying off (PEFT
   0.21.2 adds the embedding delta twice otherwise; docs/residual.md).
2. Sizes and time. On the default family's released ancestors (models/default/base_v1 → instruct_v1): adapter
   bytes against cptlib's residual (full and rank r) and the extraction's wall time, per rank.
"""
from __future__ import annotations

from cptlib.core.paths import use_project_caches

use_project_caches()  # an entry point: the project's library caches (HF_HOME, ...), before any library reads them

import json
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from peft import LoraConfig, PeftModel  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

from cptlib.residual import ModuleFilter, apply, extract, inspect, restore  # noqa: E402
from cptlib.residual.peft_adapter import extract_peft, read_manifest  # noqa: E402
from residual_helpers import llama_family, read_model  # noqa: E402

MATRIX = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
NO_NORMS = ModuleFilter(exclude=("*norm*",))


def equality(root: Path, tied: bool, rank: int | None) -> dict:
    f = llama_family(root, tied=tied)
    adapter = extract_peft(f["base"], f["instruct"], root / "adapter", rank=rank, vectors="drop", progress=False)
    if rank is None:
        restore(f["base"], f["instruct"], f["cpt"], root / "ref", module_filter=NO_NORMS, progress=False)
    else:
        extract(f["base"], f["instruct"], root / "residual", rank=rank, progress=False)
        apply(f["cpt"], root / "residual", root / "ref", module_filter=NO_NORMS, progress=False)
    reference = read_model(root / "ref")
    ids = torch.randint(0, 48, (4, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref_logits = AutoModelForCausalLM.from_pretrained(root / "ref")(ids).logits
        attached = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(f["cpt"]), adapter)
        attached_diff = (attached(ids).logits - ref_logits).abs().max().item()
    config = LoraConfig.from_pretrained(adapter)
    config.ensure_weight_tying = False
    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(f["cpt"]), adapter, config=config)
    state = merged.merge_and_unload().state_dict()
    diffs = {n: (state[n] - t).abs().max().item() for n, t in reference.items()}
    return {"tied": tied, "rank": rank or "full",
            "max_abs_diff_matrices": max(d for n, d in diffs.items() if any(m in n for m in MATRIX)),
            "max_abs_diff_all": max(diffs.values()),
            "max_abs_diff_attached_logits": attached_diff}


def sizes(root: Path, ranks=(1, 4, 16, None)) -> list[dict]:
    base, inst = REPO / "models/default/base_v1", REPO / "models/default/instruct_v1"
    rows = []
    for rank in ranks:
        tag = rank or "full"
        t = time.perf_counter()
        m = read_manifest(extract_peft(base, inst, root / f"adapter-{tag}", rank=rank, progress=False))
        seconds = time.perf_counter() - t
        residual = inspect(extract(base, inst, root / f"residual-{tag}", rank=rank, progress=False), progress=False)
        rows.append({"rank": tag, "adapter_bytes": m["size"]["adapter_bytes"],
                     "cptlib_residual_bytes": residual["size"]["stored_bytes"],
                     "full_residual_bytes": m["size"]["full_residual_bytes"],
                     "lora_relative_error": m["lora_relative_error"],
                     "not_lora_norm_share": m["not_lora_norm_share"], "extract_seconds": round(seconds, 2)})
    return rows


def main() -> None:
    torch.set_num_threads(2)
    results = {"equality": [], "sizes": []}
    with tempfile.TemporaryDirectory() as tmp:
        for tied in (False, True):
            for rank in (1, 2, None):
                root = Path(tmp) / f"{tied}-{rank}"
                results["equality"].append(equality(root, tied, rank))
                print(json.dumps(results["equality"][-1]))
        results["sizes"] = sizes(Path(tmp) / "sizes")
        for row in results["sizes"]:
            print(json.dumps(row))
    out = REPO / "bench/out/peft_adapter"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
