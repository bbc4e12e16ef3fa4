"""The `cptlib` command line: `cptlib --help` lists the commands, `cptlib <command> --help` explains one.

Each command lives beside the code it runs; a module that offers commands has a
`register(subparsers)` function that adds its parser(s) and sets `func` to the handler.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute sub-commands, in the order `--help` lists them.
COMMAND_MODULES = [
    "cptlib.family.cli",
    "cptlib.residual.cli",
    "cptlib.evaluation.cli",
    "cptlib.study.notebooks",
    "cptlib.training.plan",
    "cptlib.study.costs",
    "cptlib.stages",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cptlib",
        description="Continued pre-training and the instruction residual: build the testbed, train, "
        "extract/apply residuals, evaluate.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        # Known failure modes carry a message that says what to fix; a traceback would bury it.
        print(f"cptlib {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
