"""The `cptlib` command line: `cptlib --help` lists the commands, `cptlib <command> --help` explains one.

Each command lives beside the code it runs; a module that offers commands has a
`register(subparsers)` function that adds its parser(s) and sets `func` to the handler.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

# Each command, the module that registers it (with its options) and its line in `cptlib --help`, in the order
# `--help` lists them. Only the module of the command being run is imported: the others pull in torch,
# transformers or lm-eval, and `cptlib --help` stays fast (tests/test_cli.py checks this table against the
# modules' own parsers).
COMMANDS = {
    "build": ("cptlib.family.cli", "build the testbed data and resolve (or train) the model family of a profile"),
    "cpt": ("cptlib.family.cli", "continued pre-training of a family member on the era-B news"),
    "ancestors": ("cptlib.family.cli", "train and release the testbed ancestors into models/<profile>/, or check them"),
    "residual": ("cptlib.residual.cli", "extract, apply and inspect instruction residuals"),
    "eval": ("cptlib.evaluation.cli", "evaluate a model with lm-evaluation-harness (testbed or real suite)"),
    "notebook": ("cptlib.study.notebooks", "run the study's notebooks (papermill) for a profile"),
    "plan": ("cptlib.family.plan", "memory, GPUs and time of a profile's CPT (no GPU, no network needed)"),
    "cost": ("cptlib.study.costs", "the measured cost model of a profile's last run (per notebook and stage)"),
    "docs": ("cptlib.study.generated", "render the README's and docs' generated blocks from the committed results"),
    "clean-partial": ("cptlib.core.stages", "remove unfinished stages and idle lock files left by failed runs"),
}
# Set to 1 (or pass --debug) to see the traceback behind an error's one-line message.
DEBUG_ENV = "CPTLIB_DEBUG"
RESUME_ENV = "CPTLIB_RESUME"  # the command that resumes an interrupted run, when it is not this one (the Makefile's)
COMMAND_MODULES = list(dict.fromkeys(module for module, _ in COMMANDS.values()))


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`: the full parser of the command it names, one help line for every other command.
    With argv None, every module is imported and registered (the whole parser, as tests and docs read it)."""
    parser = argparse.ArgumentParser(
        prog="cptlib",
        description="Continued pre-training and the instruction residual: build the testbed, train, "
        "extract/apply residuals, evaluate.",
    )
    debug = os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")
    parser.add_argument("--debug", action="store_true", default=debug,
                        help=f"show the traceback of an error, not only its one-line message (or set {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = next((a for a in argv if not a.startswith("-")), None) if argv is not None else None
    modules = COMMAND_MODULES if argv is None else [COMMANDS[wanted][0]] if wanted in COMMANDS else []
    for name in modules:
        importlib.import_module(name).register(sub)
    for command, (_, help_line) in COMMANDS.items():
        if command not in sub.choices:
            sub.add_parser(command, help=help_line, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    from cptlib.core.paths import use_project_caches

    use_project_caches()  # the command is an entry point: library caches inside the project (cptlib.core.paths)
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    from cptlib.core.errors import CptlibError
    from cptlib.core.pool import env_threads

    try:
        _check_build_dir()
        env_threads()  # a bad CPTLIB_TORCH_THREADS is named before any work, not when training starts
        return args.func(args) or 0
    except CptlibError as err:
        # A failure the user can fix carries a message that says how; a traceback would bury it. Anything else is
        # a bug and keeps its traceback.
        if args.debug:
            raise
        print(f"cptlib {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Every stage writes into a temporary folder renamed only when complete: nothing half-written is kept. Under
        # make, the make command the user typed resumes (the Makefile exports it), not this inner one.
        resume = f"`{os.environ[RESUME_ENV]}`" if os.environ.get(RESUME_ENV, "").strip() else "the same command"
        print(f"cptlib {args.command}: interrupted; finished stages are kept, and {resume} resumes from them",
              file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - a full disk or a folder it may not write is one line; the rest re-raises
        from cptlib.core.stages import disk_full

        message = disk_full_message(err) if disk_full(err) else not_writable_message(err)
        if args.debug or message is None:
            raise
        print(f"cptlib {args.command}: error: {message}", file=sys.stderr)
        return 2


def _check_build_dir() -> None:
    """CPTLIB_BUILD_DIR naming a file: one line now, not a NotADirectoryError traceback from the first folder made."""
    from cptlib.core import paths
    from cptlib.core.errors import InputError

    if paths.BUILD_DIR.exists() and not paths.BUILD_DIR.is_dir():
        raise InputError(f"CPTLIB_BUILD_DIR={os.environ.get('CPTLIB_BUILD_DIR', paths.BUILD_DIR)} is a file, not a folder; "
                         "point it at a folder (it is created if missing), or unset it to build in build/")


def not_writable_message(err: BaseException) -> str | None:
    """A write refused by the file system (read-only, or permission denied): the machine's state, not a bug, wherever
    it happens (the build folder, HF_HOME, an output). None for any other error."""
    import errno

    while err is not None and not (isinstance(err, OSError) and err.errno in (errno.EACCES, errno.EPERM, errno.EROFS)):
        err = err.__cause__ or err.__context__  # a library's own error raised from the file system's
    if err is None:
        return None
    where = err.filename or "a file"
    return (f"cannot write {where}: {err.strerror}; make it writable, or point the command elsewhere (its --out, "
            "CPTLIB_BUILD_DIR for stages, HF_HOME for the Hugging Face cache): finished stages are kept")


def disk_full_message(err: BaseException) -> str:
    """Where the disk filled up and how much is free there, and what to do."""
    import shutil

    from cptlib.core import paths

    where = Path(getattr(err, "filename", None) or paths.stages_dir())
    folder = next((p for p in [where, *where.parents] if p.exists()), Path("/"))
    free = shutil.disk_usage(folder).free
    return (f"the disk is full writing {where} ({free / 1e6:,.1f} MB, {free:,} bytes, free on its disk); free some space there, or "
            "write to a larger disk (the command's output folder, or CPTLIB_BUILD_DIR for stages), and rerun: finished stages are kept, and nothing "
            "unfinished is taken as finished")


if __name__ == "__main__":
    sys.exit(main())
