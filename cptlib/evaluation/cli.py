"""`cptlib eval`: evaluate one model with lm-evaluation-harness and write a tidy results table.

    cptlib eval --model DIR --suite testbed --data DATA_DIR --out results.json
    cptlib eval --model DIR --suite real --out results.json --tasks ifeval,mmlu --shots mmlu=5 --limit 200

`results.json` holds the rows (model, task, metric, value, stderr, n, chat_template, version), the cache
directory they came from and its key; lm-eval's full output and samples are copied beside it into
`results.lm_eval/`. Results are cached by content, so a second run of the same model is instant.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from cptlib.evaluation.evaluate import EvalSettings
from cptlib.core.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate a model with lm-evaluation-harness (testbed or real suite)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, help="a save_pretrained model directory")
    p.add_argument("--suite", choices=["testbed", "real"], default="testbed", help="default: %(default)s")
    p.add_argument("--data", type=Path, help="testbed data directory (the one holding eval/); for --suite testbed")
    p.add_argument("--out", required=True, type=Path, help="results JSON; lm-eval's output is copied beside it")
    p.add_argument("--name", help="model name in the table (default: the directory's name)")
    p.add_argument("--batch-size", help="sequences per forward pass (real suite: also 'auto'; default: the suite's)")
    p.add_argument("--limit", type=positive_int, help="items per task, for quick checks (default: all)")
    p.add_argument("--max-gen-toks", type=int, help="generation cap (default: each task's own; testbed 192)")
    p.add_argument("--device", default=EvalSettings.device, help="default: %(default)s")
    real = p.add_argument_group("real suite")
    real.add_argument("--tasks", help="comma-separated lm-eval task names (default: all nine)")
    real.add_argument("--shots", default="", help="few-shot examples per task, e.g. mmlu=5,gsm8k=8 (default: "
                      "each task's own)")
    real.add_argument("--chat-template-tasks", default="ifeval",
                      help="tasks run through the chat template (default: %(default)s; '' for none)")
    p.set_defaults(func=_run)


def _shots(text: str) -> dict[str, int]:
    shots = {}
    for item in filter(None, text.split(",")):
        task, _, n = item.partition("=")
        if not n.isdigit():
            raise InputError(f"--shots: {item!r} is not TASK=N (e.g. mmlu=5)")
        shots[task] = int(n)
    return shots


def _run(args: argparse.Namespace) -> int:
    from cptlib.evaluation.harness import read_table

    given = {"limit": args.limit, "device": args.device, "max_gen_toks": args.max_gen_toks}
    if args.suite == "testbed":
        from cptlib.evaluation.evaluate import run_evaluation

        if args.data is None:
            raise InputError("--suite testbed needs --data DATA_DIR (the testbed data directory that holds eval/)")
        if args.batch_size is not None:
            given["batch_size"] = int(args.batch_size)
        settings = EvalSettings(**{k: v for k, v in given.items() if v is not None})
        result_dir = run_evaluation(args.model, args.data, settings)
    else:
        from cptlib.evaluation.real_suite import RealSuiteSettings, run_real_suite

        given.update(shots=_shots(args.shots),
                     chat_template_tasks=tuple(filter(None, args.chat_template_tasks.split(","))))
        if args.tasks:
            given["tasks"] = tuple(args.tasks.split(","))
        if args.batch_size is not None:
            given["batch_size"] = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
        settings = RealSuiteSettings(**{k: v for k, v in given.items() if v is not None})
        result_dir = run_real_suite(args.model, settings)
    table = read_table(result_dir, args.name or args.model.name)
    write_out(table, result_dir, args.out)
    print(table.to_string(index=False))
    return 0


def write_out(table, result_dir: Path, out: Path) -> None:
    """`out` gets the rows, the cache directory and its key; lm-eval's output is copied to `<out>.lm_eval/`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    beside = out.with_name(out.stem + ".lm_eval")
    shutil.rmtree(beside, ignore_errors=True)
    shutil.copytree(result_dir, beside)
    manifest = json.loads((Path(result_dir) / "cptlib_manifest.json").read_text())
    out.write_text(json.dumps({"rows": json.loads(table.to_json(orient="records")), "cache_dir": str(result_dir),
                               "lm_eval_output": str(beside), "spec": manifest["spec"]}, indent=2) + "\n")


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (`--limit 0` or `-1` would fail deep inside lm-eval)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value} (omit --limit for every item)")
    return value
