"""What produced an output: code version, library versions, CPU (content hashes: cptlib.core.files)."""
from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path

from cptlib.core import paths

LIBRARIES = ["torch", "transformers", "tokenizers", "safetensors", "accelerate", "datasets", "lm_eval", "peft"]


# Outputs, not inputs: a study run rewrites the committed figures as it goes, which must not make the code that
# produced them look modified (every figure of a clean run named a "-dirty" version before).
OUTPUT_PATHS = ("figures",)


def code_version() -> str:
    """`git describe` of the repository, with `-dirty` when a tracked file outside OUTPUT_PATHS differs from the
    commit; 'unknown' outside a git checkout."""
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", *args], cwd=paths.REPO_ROOT, capture_output=True, text=True, timeout=10,
                                  check=True).stdout.strip()

        version = git("describe", "--always", "--abbrev=12")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                      *[f":(exclude){p}" for p in OUTPUT_PATHS])
        return version + ("-dirty" if changed else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


# The instruction-set features that change float results or speed on a CPU (bf16 autocast is fast only with the
# last four; fp32 kernels differ between AVX2 and AVX-512 in the last bits).
CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


# The environment that makes PyTorch, oneDNN and MKL use AVX2 kernels on a CPU that has more (AVX-512, AMX): how
# one machine stands in for an AVX2-only one (tests/test_cpu_kernels.py, bench/cross_cpu.py).
AVX2_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def torch_capability() -> str:
    """The vector kernels PyTorch dispatches to on this CPU (e.g. AVX2, AVX512), as ATEN_CPU_CAPABILITY caps them."""
    try:
        import torch
    except ImportError:
        return "no torch"
    return torch.backends.cpu.get_cpu_capability()


def cpu() -> dict:
    """The CPU's model name, which of CPU_FEATURES it has (from /proc/cpuinfo; empty where there is none) and the
    kernels PyTorch uses on it."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"model": platform.processor(), "features": [], "torch_kernels": torch_capability()}
    first = info.split("\n\n", 1)[0]  # the first processor's block
    fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in first.splitlines() if ":" in line)}
    flags = set(fields.get("flags", "").split())
    return {"model": fields.get("model name", ""), "features": [f for f in CPU_FEATURES if f in flags],
            "torch_kernels": torch_capability()}


def provenance() -> dict:
    return {"code_version": code_version(), "libraries": library_versions(), "machine": platform.machine(),
            "cpu": cpu()}

