"""`cptlib residual {extract,apply,restore,inspect}`: the instruction residual from the command line.

    cptlib residual extract --base B --instruct I --out R [--rank 64]
    cptlib residual extract --base B --instruct I --out A --rank 16 --format peft   # a PEFT LoRA adapter
    cptlib residual apply --target T --residual R --out O [--alpha 1.0] [--method ties --density 0.2]
    cptlib residual restore --base B --instruct I --target T --out O [--alpha 1.0]
    cptlib residual inspect R [--against R2] [--target T] [--json report.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

# The parsers take their choices from options (no torch): `cptlib residual --help` answers in ~0.1 s; each command
# imports the engine (and torch) when it runs.
from cptlib.residual import methods
from cptlib.residual.options import (
    DEFAULT_SHARD_SIZE, DTYPES, EMBED_POLICIES, EMBEDDING_POLICIES, MODULE_SUBSETS, VECTOR_POLICIES,
)


def _dtype(name: str):
    import torch

    return getattr(torch, name)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("residual", help="extract, apply and inspect instruction residuals",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="residual_command", metavar="OPERATION", required=True)

    p = sub.add_parser("extract", help="write Θr = θ_instruct − θ_base to a residual directory")
    _models(p, base=True, instruct=True)
    p.add_argument("--dtype", choices=DTYPES, default="float32",
                   help="storage dtype of the residual (float64 makes apply(base, Θr) == instruct exact for "
                        "fp32 models; default: %(default)s)")
    p.add_argument("--rank", type=int, help="store each matrix as a rank-r truncated SVD (vectors stay whole)")
    p.add_argument("--format", choices=("cptlib", "peft"), default="cptlib",
                   help="cptlib: a residual directory for `apply`; peft: a PEFT LoRA adapter directory "
                        "(adapter_config.json, adapter_model.safetensors) for PeftModel.from_pretrained "
                        "(default: %(default)s)")
    g = p.add_argument_group("peft", "what LoRA cannot hold as a delta (docs/residual.md, 'PEFT adapters')")
    g.add_argument("--vectors", choices=VECTOR_POLICIES, default="save",
                   help="norm weights: save (modules_to_save with the instruct model's value) or drop (the "
                        "target keeps its own) (default: %(default)s)")
    g.add_argument("--embeddings", choices=EMBEDDING_POLICIES, default="lora",
                   help="embeddings (and a tied lm_head): lora (low-rank as any matrix) or drop "
                        "(default: %(default)s)")
    _common(p)
    p.set_defaults(func=_extract)

    p = sub.add_parser("apply", help="write θ_target + α·Θr for a residual directory")
    _models(p, target=True)
    p.add_argument("--residual", required=True, type=Path, help="residual directory from `extract`")
    _merge_options(p)
    _common(p)
    p.set_defaults(func=_apply)

    p = sub.add_parser("restore", help="Eq. 2 in one pass: θ_target + α·(θ_instruct − θ_base)")
    _models(p, base=True, instruct=True, target=True)
    _merge_options(p)
    _common(p)
    p.set_defaults(func=_restore)

    p = sub.add_parser("inspect", help="relative norms per tensor/layer/module, cosine, drift")
    p.add_argument("residual", type=Path, help="residual directory from `extract`")
    p.add_argument("--against", type=Path, help="a second residual: cosine similarity with the first")
    p.add_argument("--target", type=Path, help="a model: its drift ‖θ_T − θ_base‖ relative to ‖Θr‖")
    p.add_argument("--base", type=Path, help="the residual's base, if it moved since extraction (checked by hash)")
    p.add_argument("--tensors", action="store_true", help="also print one row per tensor")
    p.add_argument("--json", type=Path, help="write the full report here")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_inspect)


def _models(p: argparse.ArgumentParser, base=False, instruct=False, target=False) -> None:
    if base:
        p.add_argument("--base", required=True, type=Path, help="base model directory (θ_base)")
    if instruct:
        p.add_argument("--instruct", required=True, type=Path, help="instruct model directory (θ_instruct); "
                       "its tokenizer, chat template and generation config go into the output")
    if target:
        p.add_argument("--target", required=True, type=Path, help="model to add the residual to (e.g. CPT base)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="output directory (must not exist)")
    p.add_argument("--embed-policy", choices=EMBED_POLICIES, default="error",
                   help="when vocabulary rows differ: error, skip (keep the target's embeddings), slice (use the "
                        "shared rows) (default: %(default)s)")
    p.add_argument("--max-shard-size", default=DEFAULT_SHARD_SIZE, help="shard size cap (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _merge_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("merge", "θ = θ_target + α·merge(Θr); docs/residual.md defines the methods")
    g.add_argument("--alpha", type=_finite, default=1.0, help="scale α (λ for TIES) (default: %(default)s)")
    g.add_argument("--method", choices=methods.METHODS, default="task_arithmetic", help="default: %(default)s")
    for name, (kind, meta, default, takers) in _method_parameters().items():  # one option per parameter of any method
        bounds = f", {methods.bounds_text(meta['bounds'])}" if meta["bounds"] else ""
        g.add_argument(f"--{name.replace('_', '-')}", type=kind, default=argparse.SUPPRESS, dest=f"merge_{name}",
                       metavar=name.upper(), help=f"{', '.join(takers)}: {meta['help']}{bounds} (default: {default:g})")
    g.add_argument("--only", action="append", default=[], choices=MODULE_SUBSETS, dest="presets",
                   help="module filter preset (repeatable); tensors left out keep the target's value")
    g.add_argument("--include", action="append", default=[], metavar="PATTERN",
                   help="apply only to tensors matching a glob (or re:REGEX); repeatable")
    g.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                   help="never apply to tensors matching a glob (or re:REGEX); repeatable")


def _method_parameters() -> dict[str, tuple[type, dict, float, list[str]]]:
    """{parameter: (type, its metadata, default, the methods that have it)} over every registered merge method."""
    out: dict[str, tuple[type, dict, float, list[str]]] = {}
    for method, cls in methods.METHODS.items():
        for name, (kind, meta) in methods.parameters(cls).items():
            default = cls.__dataclass_fields__[name].default
            out.setdefault(name, (kind, meta, default, []))[3].append(method)
    return out


def _apply_options(args: argparse.Namespace) -> dict:
    from cptlib.residual import ModuleFilter

    params = {k.removeprefix("merge_"): v for k, v in vars(args).items() if k.startswith("merge_")}
    return {
        "method": methods.MergeMethod(args.method, **params),
        "module_filter": ModuleFilter(include=tuple(args.include), exclude=tuple(args.exclude),
                                      presets=tuple(args.presets)),
        "embed_policy": args.embed_policy,
        "max_shard_size": args.max_shard_size,
        "progress": not args.no_progress,
    }


def _two_models(base: str, instruct: str) -> None:
    """The same folder twice (a slip when editing a command) gives a residual of zeros, and a run that succeeds."""
    from cptlib.core.errors import InputError

    if Path(base).resolve() == Path(instruct).resolve():
        raise InputError(f"--base and --instruct are the same folder ({base}): the residual would be zero; pass the "
                         "instruct model's folder as --instruct")


def _extract(args: argparse.Namespace) -> int:
    from cptlib.residual import extract, inspect

    _two_models(args.base, args.instruct)
    if args.format == "peft":
        return _extract_peft(args)
    out = extract(args.base, args.instruct, args.out, embed_policy=args.embed_policy, dtype=_dtype(args.dtype),
                  rank=args.rank, max_shard_size=args.max_shard_size, progress=not args.no_progress)
    report = inspect(out, progress=False)
    size, total = report["size"], report["relative_norms"]["total"]["all"]
    line = f"wrote {out}: {size['stored_bytes'] / 1e6:.1f} MB"
    if args.rank is not None:
        line += (f" ({size['stored_bytes'] / size['full_bytes']:.1%} of the full {size['full_bytes'] / 1e6:.1f} MB; "
                 f"relative error {report['lowrank_relative_error']:.4g})")
    print(f"{line}; ‖Θr‖/‖θ_base‖ = {total['relative']:.4g}")
    return 0


def _extract_peft(args: argparse.Namespace) -> int:
    from cptlib.residual.analysis import format_table
    from cptlib.residual.peft_adapter import adapter_summary, extract_peft
    from cptlib.residual.peft_adapter import read_manifest as read_adapter_manifest

    from cptlib.core.errors import InputError

    if args.embed_policy != "error":
        raise InputError(f"--embed-policy {args.embed_policy} is for cptlib's own format; a PEFT adapter needs base "
                         "and instruct with one vocabulary (use --embeddings drop to leave the embeddings out)")
    out = extract_peft(args.base, args.instruct, args.out, rank=args.rank, vectors=args.vectors,
                       embeddings=args.embeddings, dtype=_dtype(args.dtype), progress=not args.no_progress)
    m = read_adapter_manifest(out)
    print(format_table(adapter_summary(m), ["module", "kind", "rank", "‖Θr‖ share", "relative error"]) + "\n")
    size = m["size"]
    print(f"wrote {out}: PEFT LoRA adapter, {size['adapter_bytes'] / 1e6:.2f} MB "
          f"({size['adapter_bytes'] / size['full_residual_bytes']:.1%} of the full residual's "
          f"{size['full_residual_bytes'] / 1e6:.2f} MB); relative error on the LoRA matrices "
          f"{m['lora_relative_error']:.4g}; {m['not_lora_norm_share']:.2%} of ‖Θr‖² is in tensors not added as a "
          "delta (saved or dropped)")
    print(f"attach it: PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(CPT_BASE), {str(out)!r})")
    return 0


def _apply(args: argparse.Namespace) -> int:
    from cptlib.residual import apply

    out = apply(args.target, args.residual, args.out, alpha=args.alpha, **_apply_options(args))
    print(f"wrote {out}")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from cptlib.residual import restore

    _two_models(args.base, args.instruct)
    options = _apply_options(args)
    out = restore(args.base, args.instruct, args.target, args.out, alpha=args.alpha, **options)
    print(f"wrote {out}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from cptlib.residual import inspect
    from cptlib.residual.analysis import format_table

    report = inspect(args.residual, against=args.against, target=args.target, base=args.base,
                     progress=not args.no_progress)
    levels = ["total", "module", "layer"] + (["tensor"] if args.tensors else [])
    for level in levels:
        rows = []
        for group, norms in report["relative_norms"][level].items():
            row = [group, norms["residual_norm"], norms["base_norm"], norms["relative"]]
            if "cosine" in report:
                row.append(report["cosine"][level][group])
            if "drift" in report:
                row += [report["drift"][level][group]["drift_norm"], report["drift"][level][group]["relative"]]
            rows.append(row)
        header = [level, "‖Θr‖", "‖θ_base‖", "‖Θr‖/‖θ_base‖"]
        header += ["cosine"] * ("cosine" in report) + ["‖θ_T−θ_base‖", "drift/‖Θr‖"] * ("drift" in report)
        print(format_table(rows, header) + "\n")
    if report["kind"] == "lowrank":
        print(f"rank {report['rank']}: {report['size']['stored_bytes'] / 1e6:.1f} MB of "
              f"{report['size']['full_bytes'] / 1e6:.1f} MB, relative error {report['lowrank_relative_error']:.4g}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _finite(text: str) -> float:
    """argparse type: a finite float (`nan`, `inf` and `1e400` are errors, not NaN weights)."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value
