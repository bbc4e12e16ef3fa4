"""Streaming residual engine vs `cp` vs the load-everything way, on synthetic LLaMA-shaped fp32 checkpoints:
`.venv/bin/python bench/residual.py` (about 6 minutes on 2 cores; writes bench/out/residual/results.json).

For each model size it writes base, instruct (= base + small noise) and cpt (= base + other noise) as sharded
safetensors directories with LLaMA's tensor names and shapes, then times, each in a child process whose peak
resident memory is read from os.wait4: extract + apply, restore, `cp` of the same input bytes, and the
straightforward way (three LlamaForCausalLM.from_pretrained, subtract, add, save_pretrained), and checks that
all outputs are bitwise equal. The page cache is warm and dirty pages are synced before each timed step.
"""
from __future__ import annotations

from cptlib.core.paths import use_project_caches

use_project_caches()  # an entry point: the project's library caches (HF_HOME, ...), before any library reads them

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cptlib.residual.checkpoint import Checkpoint  # noqa: E402
from cptlib.residual.writer import ShardWriter, TensorSpec, parse_size  # noqa: E402

PY = sys.executable
PEAK_ENV = "CPTLIB_BENCH_PEAK_FILE"


def llama_specs(layers: int, hidden: int, intermediate: int, vocab: int, kv_dim: int) -> list[TensorSpec]:
    """Tensor names and shapes of a LLaMA (grouped-query attention, untied lm_head), in save_pretrained order."""
    f32, specs = torch.float32, [TensorSpec("model.embed_tokens.weight", (vocab, hidden), torch.float32)]
    for i in range(layers):
        p = f"model.layers.{i}."
        specs += [TensorSpec(p + "input_layernorm.weight", (hidden,), f32),
                  TensorSpec(p + "self_attn.q_proj.weight", (hidden, hidden), f32),
                  TensorSpec(p + "self_attn.k_proj.weight", (kv_dim, hidden), f32),
                  TensorSpec(p + "self_attn.v_proj.weight", (kv_dim, hidden), f32),
                  TensorSpec(p + "self_attn.o_proj.weight", (hidden, hidden), f32),
                  TensorSpec(p + "post_attention_layernorm.weight", (hidden,), f32),
                  TensorSpec(p + "mlp.gate_proj.weight", (intermediate, hidden), f32),
                  TensorSpec(p + "mlp.up_proj.weight", (intermediate, hidden), f32),
                  TensorSpec(p + "mlp.down_proj.weight", (hidden, intermediate), f32)]
    return specs + [TensorSpec("model.norm.weight", (hidden,), f32), TensorSpec("lm_head.weight", (vocab, hidden), f32)]


def make_family(root: Path, args, layers: int) -> dict[str, Path]:
    """base ~ N(0, 0.02) (norm weights ~ 1), instruct = base + N(0, 0.002), cpt = base + N(0, 0.001); written
    one tensor at a time, so generating a model never holds more than a few tensors."""
    from transformers import LlamaConfig

    heads, kv_heads = args.hidden // 128, args.hidden // 512
    config = LlamaConfig(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                         tie_word_embeddings=False, dtype="float32")
    specs = llama_specs(layers, args.hidden, args.intermediate, args.vocab, kv_heads * 128)
    paths = {n: root / n for n in ("base", "instruct", "cpt")}
    writers = {}
    for name, path in paths.items():
        path.mkdir(parents=True)
        config.save_pretrained(path)
        writers[name] = ShardWriter(path, specs, parse_size(args.max_shard_size))
    gen = torch.Generator().manual_seed(0)
    for spec in writers["base"].order:
        base = torch.randn(spec.shape, generator=gen).mul_(0.02)
        if len(spec.shape) == 1:
            base.add_(1.0)
        writers["base"].write(spec.name, base)
        for name, scale in (("instruct", 0.002), ("cpt", 0.001)):
            writers[name].write(spec.name, torch.randn(spec.shape, generator=gen).mul_(scale).add_(base))
    for writer in writers.values():
        writer.close()
    return paths


def timed(cmd: list[str]) -> dict:
    """Wall seconds of one command and, for a `child` command, its peak resident memory.

    The peak is the kernel's high-water mark VmHWM, read by the child itself just before it exits. Not
    ru_maxrss from wait4/RUSAGE_CHILDREN: that also counts the pages the child inherited from this (large)
    process at fork, up to exec, so `cp` alone would show this script's ~400 MB.
    """
    os.sync()  # earlier steps' dirty pages must not be flushed on this step's clock
    peak_file = Path(tempfile.mkstemp(prefix="peak-")[1])
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, env={**os.environ, PEAK_ENV: str(peak_file)})
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    peak = peak_file.read_text()
    peak_file.unlink()
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(int(peak) / 1024, 1) if peak else None}


def child(kind: str, argv: list[str]) -> None:
    """Run one measured step in this fresh process, then record its VmHWM for `timed`."""
    if kind == "residual":
        # The residual sub-command alone: cptlib.cli would also import every other command module.
        from cptlib.residual.cli import register

        parser = argparse.ArgumentParser(prog="cptlib")
        register(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args(argv)
        args.func(args)
    elif kind == "import":  # what a command loads before it reads a tensor (the CLI itself no longer loads torch)
        import cptlib.residual.cli  # noqa: F401
        import cptlib.residual.api  # noqa: F401
    elif kind == "reference":
        base, instruct, cpt, out, max_shard_size = argv
        reference(base, instruct, cpt, out, max_shard_size)
    status = Path("/proc/self/status").read_text()
    peak_kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    Path(os.environ[PEAK_ENV]).write_text(peak_kb)


def cp(sources: list[Path], scratch: Path) -> dict:
    scratch.mkdir()
    result = timed(["cp", "-r", *map(str, sources), str(scratch)])
    shutil.rmtree(scratch)
    return result


def bitwise_equal(a: Path, b: Path) -> bool:
    ca, cb = Checkpoint(a), Checkpoint(b)
    return sorted(ca.names) == sorted(cb.names) and all(torch.equal(ca.get(n), cb.get(n)) for n in ca.names)


def reference(base: str, instruct: str, cpt: str, out: str, max_shard_size: str) -> None:
    """The straightforward way: three whole models in memory."""
    from transformers import LlamaForCausalLM

    models = [LlamaForCausalLM.from_pretrained(p, dtype=torch.float32) for p in (base, instruct, cpt)]
    b, i, c = (m.state_dict() for m in models)
    with torch.no_grad():
        for k in c:
            c[k].add_(i[k] - b[k])
    models[2].save_pretrained(out, max_shard_size=max_shard_size)


def bench_size(args, layers: int, start_seconds: float) -> dict:
    root = args.out / f"layers{layers}"
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    paths = make_family(root, args, layers)
    model = Checkpoint(paths["base"])
    largest = max(spec.nbytes for spec in llama_specs(layers, args.hidden, args.intermediate, args.vocab,
                                                       args.hidden // 512 * 128))
    cli = [PY, __file__, "--child", "residual", "residual"]
    flags = ["--no-progress", "--max-shard-size", args.max_shard_size]
    for path in paths.values():  # warm the page cache for every contestant alike
        subprocess.run(["cat", *map(str, Checkpoint(path).files)], stdout=subprocess.DEVNULL, check=True)
    r = {"layers": layers, "model_gb": round(model.nbytes() / 1e9, 3), "largest_tensor_mb": round(largest / 1e6, 1),
         "generate_seconds": round(time.perf_counter() - started, 1)}
    r["memory_goal_mb"] = round(3 * largest / 2**20 + 300, 1)
    r["cp_extract_inputs"] = cp([paths["base"], paths["instruct"]], root / "cp1")
    r["extract"] = timed([*cli, "extract", "--base", str(paths["base"]), "--instruct", str(paths["instruct"]),
                          "--out", str(root / "residual"), *flags])
    r["cp_apply_inputs"] = cp([root / "residual", paths["cpt"]], root / "cp2")
    r["apply"] = timed([*cli, "apply", "--target", str(paths["cpt"]), "--residual", str(root / "residual"),
                        "--out", str(root / "applied"), *flags])
    r["cp_restore_inputs"] = cp(list(paths.values()), root / "cp3")
    r["restore"] = timed([*cli, "restore", "--base", str(paths["base"]), "--instruct", str(paths["instruct"]),
                          "--target", str(paths["cpt"]), "--out", str(root / "restored"), *flags])
    if not args.skip_reference:
        r["reference"] = timed([PY, __file__, "--child", "reference", *map(str, paths.values()),
                                str(root / "reference"), args.max_shard_size])
    ours = r["extract"]["seconds"] + r["apply"]["seconds"]
    cp_seconds = r["cp_extract_inputs"]["seconds"] + r["cp_apply_inputs"]["seconds"]
    r["extract_apply_vs_cp"] = round(cp_seconds / ours, 3)
    # The same ratio without the two interpreter starts (python + torch import), a fixed cost per command.
    r["extract_apply_vs_cp_without_start"] = round(cp_seconds / (ours - 2 * start_seconds), 3)
    r["restore_vs_cp"] = round(r["cp_restore_inputs"]["seconds"] / r["restore"]["seconds"], 3)
    r["bitwise_equal_restore_vs_extract_apply"] = bitwise_equal(root / "restored", root / "applied")
    if "reference" in r:
        r["reference_vs_restore_speed"] = round(r["reference"]["seconds"] / r["restore"]["seconds"], 2)
        r["reference_vs_restore_memory"] = round(r["reference"]["peak_rss_mb"] / r["restore"]["peak_rss_mb"], 2)
        r["bitwise_equal_restore_vs_reference"] = bitwise_equal(root / "restored", root / "reference")
    if not args.keep:
        shutil.rmtree(root)
    return r


def table(results: list[dict]) -> str:
    def step(key, metric):
        return lambda r: r[key][metric] if key in r else None

    rows = [("model size (GB)", lambda r: r["model_gb"]), ("largest tensor (MB)", lambda r: r["largest_tensor_mb"])]
    for label, key in (("extract", "extract"), ("apply", "apply"), ("restore", "restore"),
                       ("load-everything reference", "reference")):
        rows += [(f"{label} s", step(key, "seconds")), (f"{label} peak RSS MB", step(key, "peak_rss_mb"))]
    rows += [
        ("cp extract+apply inputs s", lambda r: r["cp_extract_inputs"]["seconds"] + r["cp_apply_inputs"]["seconds"]),
        ("cp restore inputs s", step("cp_restore_inputs", "seconds")),
        ("memory goal 3×largest+300 MB", lambda r: r["memory_goal_mb"]),
        ("speed cp/(extract+apply), goal≥0.5", lambda r: r["extract_apply_vs_cp"]),
        ("  the same without interpreter start", lambda r: r["extract_apply_vs_cp_without_start"]),
        ("speed cp/restore", lambda r: r["restore_vs_cp"]),
        ("speed reference/restore", lambda r: r.get("reference_vs_restore_speed")),
        ("memory reference/restore", lambda r: r.get("reference_vs_restore_memory")),
        ("bitwise restore == extract+apply", lambda r: r["bitwise_equal_restore_vs_extract_apply"]),
        ("bitwise restore == reference", lambda r: r.get("bitwise_equal_restore_vs_reference")),
    ]
    lines = [f"{'':36}" + "".join(f"{r['layers']} layers".rjust(14) for r in results)]
    for label, get in rows:
        cells = [get(r) for r in results]
        lines.append(f"{label:36}" + "".join(("-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)).rjust(14)
                                             for v in cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", default="3,10", help="model sizes as LLaMA layer counts (default: %(default)s "
                        "= 1.1 GB and 2.3 GB in fp32 with the default widths)")
    parser.add_argument("--hidden", type=int, default=2048, help="hidden size (default: %(default)s)")
    parser.add_argument("--intermediate", type=int, default=5632, help="MLP size (default: %(default)s)")
    parser.add_argument("--vocab", type=int, default=32000, help="vocabulary (default: %(default)s)")
    parser.add_argument("--max-shard-size", default="1GB", help="shard cap of inputs and outputs (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "residual", help="scratch and results")
    parser.add_argument("--skip-reference", action="store_true", help="skip the load-everything baseline")
    parser.add_argument("--keep", action="store_true", help="keep the generated models and outputs")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], args.child[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    baseline = timed([PY, __file__, "--child", "import"])
    results = [bench_size(args, int(n), baseline["seconds"]) for n in args.layers.split(",")]
    print(table(results))
    print(f"\n(importing cptlib.residual alone: {baseline['peak_rss_mb']} MB peak RSS, {baseline['seconds']} s: "
          "the interpreter and torch, part of every step above)")
    info = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                        "torch": torch.__version__},
            "command": " ".join([Path(PY).name, *sys.argv]), "import_baseline": baseline,
            "widths": {"hidden": args.hidden, "intermediate": args.intermediate, "vocab": args.vocab},
            "results": results}
    (args.out / "results.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"wrote {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
