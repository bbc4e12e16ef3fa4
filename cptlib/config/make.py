"""What the Makefile asks of a profile (`python -m cptlib.config <profile> [--make OUT]`): its files and notebooks in
one line of tagged words."""
from __future__ import annotations

from pathlib import Path

from cptlib.config.load import load_profile, profile_files
from cptlib.core import paths


def _from_root(files: list[Path]) -> list[str]:
    return [str(p.relative_to(paths.REPO_ROOT)) if p.is_relative_to(paths.REPO_ROOT) else str(p) for p in files]


def make_info(source: str, out_dir: str) -> str:
    """What the Makefile needs of a profile, in one line of tagged words: its files (`file:`, what the notebooks are
    rerun for), the notebooks it runs in order (`nb:`) and those executed ones in `out_dir` that are not whole
    notebooks (`unfinished:`, rebuilt whatever their time stamps). Validates the profile (a ConfigError otherwise)."""
    import json

    cfg = load_profile(source)
    files = _from_root(profile_files(source))
    unfinished = []
    for name in cfg.notebooks:
        executed = Path(out_dir) / f"{name}.ipynb"
        try:
            whole = "cells" in json.loads(executed.read_bytes())
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            whole = False
        if not whole:
            unfinished.append(f"{out_dir}/{name}.ipynb")
    return " ".join([*(f"file:{f}" for f in files), *(f"nb:{n}" for n in cfg.notebooks),
                     *(f"unfinished:{u}" for u in unfinished)])
