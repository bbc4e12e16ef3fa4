"""Every path the project uses, anchored at the repository root (never the working directory).

Caches (Hugging Face, torch inductor, NLTK, matplotlib) live inside the project, not in the home folder:
`use_project_caches()` points the libraries there. Entry points call it (the `cptlib` command, tests/conftest.py,
the bench scripts; the Makefile exports the same, so `make lab`'s kernels have them); `import cptlib` does not.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PARAMS_DIR = REPO_ROOT / "params"
# CPTLIB_NOTEBOOKS_DIR / CPTLIB_FIGURES_DIR: tests run stand-in notebooks and write figures elsewhere.
NOTEBOOKS_DIR = Path(os.environ.get("CPTLIB_NOTEBOOKS_DIR", REPO_ROOT / "notebooks")).resolve()
FIGURES_DIR = Path(os.environ.get("CPTLIB_FIGURES_DIR", REPO_ROOT / "figures")).resolve()
# CPTLIB_BUILD_DIR lets tests and scratch runs build elsewhere without touching the real build tree.
BUILD_DIR = Path(os.environ.get("CPTLIB_BUILD_DIR", REPO_ROOT / "build")).resolve()
# The released testbed ancestors (cptlib.family.ancestors); CPTLIB_MODELS_DIR lets the rebuild test write elsewhere.
MODELS_DIR = Path(os.environ.get("CPTLIB_MODELS_DIR", REPO_ROOT / "models")).resolve()
CACHE_DIR = REPO_ROOT / ".cache"
NLTK_DATA_DIR = CACHE_DIR / "nltk_data"


def stages_dir() -> Path:
    """Content-addressed stage outputs (testbed data, tokenizers, models), shared by all profiles."""
    return BUILD_DIR / "stages"


def profile_build_dir(profile: str) -> Path:
    """Per-profile outputs that are not content-addressed (executed notebooks, evaluation tables)."""
    return BUILD_DIR / profile


def figures_dir(profile: str) -> Path:
    return FIGURES_DIR / profile


def params_file(profile: str) -> Path:
    return PARAMS_DIR / f"{profile}.yaml"


def shown(path: Path | str) -> str:
    """A path as tables, stage keys and messages name it, the same in every clone: from the repository root
    (`./models/default/base_v1`, `./build/stages/...`), from a build directory elsewhere (`<build>/stages/...`), or
    whole when it lies outside both."""
    path = Path(path).resolve()
    if path.is_relative_to(REPO_ROOT):
        return f"./{path.relative_to(REPO_ROOT)}"
    if path.is_relative_to(BUILD_DIR):
        return f"<build>/{path.relative_to(BUILD_DIR)}"
    return str(path)


def project_cache_env() -> dict[str, str]:
    """The variables `use_project_caches` sets (the Makefile exports the same; tests/test_layout.py)."""
    return {"HF_HOME": str(CACHE_DIR / "huggingface"), "TORCHINDUCTOR_CACHE_DIR": str(CACHE_DIR / "torchinductor"),
            "NLTK_DATA": str(NLTK_DATA_DIR), "MPLCONFIGDIR": str(CACHE_DIR / "matplotlib")}


def use_project_caches() -> None:
    """Keep every library cache inside the project; explicit settings by the user win. Call it before the
    libraries are imported (huggingface_hub reads HF_HOME on import); child processes inherit the variables."""
    for name, value in project_cache_env().items():
        os.environ.setdefault(name, value)
