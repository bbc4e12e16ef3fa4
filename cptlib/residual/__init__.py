"""The instruction residual Θr = θ_instruct − θ_base and its use θ = θ_target + α·Θr (arXiv 2410.10739, Eq. 1–2),
streamed tensor by tensor over Hugging Face safetensors directories. `cptlib residual --help` for the CLI.

    from cptlib.residual import Residual, extract, apply, restore, inspect
    r = Residual.from_models("base", "instruct")        # nothing is read yet
    (0.5 * r).apply_to("cpt_base", "restored")           # θ_cpt + 0.5·Θr, one tensor at a time
    extract("base", "instruct", "residual_dir"); apply("cpt_base", "residual_dir", "restored", alpha=1.0)
"""
import importlib

# Where each public name lives; importing cptlib.residual loads none of them (nor torch) until one is used, so that
# `cptlib residual --help` answers at once.
_API = {
    "extract": "api", "apply": "api", "restore": "api", "inspect": "api",
    "Residual": "vector", "MANIFEST_FILE": "vector", "APPLY_MANIFEST_FILE": "stream",
    "Checkpoint": "checkpoint", "ResidualError": "checkpoint", "MergeMethod": "methods", "ModuleFilter": "merge",
    "FILTER_PRESETS": "merge", "METHODS": "methods", "EMBED_POLICIES": "options", "DEFAULT_SHARD_SIZE": "options",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(f"cptlib.residual.{_API[name]}"), name)
    raise AttributeError(f"module 'cptlib.residual' has no attribute {name!r}")
