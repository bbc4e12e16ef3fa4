"""Profiles: `params/<name>.yaml` parsed into typed, validated config objects.

    from cptlib.config import load_profile
    cfg = load_profile("default")          # or a path to a YAML file

A profile may start with `extends: <other profile>`; its keys are merged over the other's, section by
section. Every default lives in the models of `schema`; an unknown or mistyped key is a `ConfigError` that
names the file and the key (with a suggestion), never a silent default.

The package's modules, one job each:
- `schema`: every section as a pydantic model, its defaults and cross-field checks, the notebooks' names;
- `load`: the YAML file, its `extends` chain, overrides and run names, and validation errors as one message;
- `make`: what the Makefile asks of a profile (`python -m cptlib.config <profile> --make OUT`).
Everything a caller needs is importable from `cptlib.config` itself.
"""
from cptlib.config.load import (expand_overrides, from_dict, load_profile, load_with_overrides, profile_files,
                                resolve)
from cptlib.config.make import make_info
from cptlib.config.schema import (BENCH_NOTEBOOK, BENCHMARK_NAMES, DRIFT_NOTEBOOK, EXTRA_NOTEBOOKS, HELDOUT_TASK,
                                  MERGE_METHODS, MERGE_SPECS, MODULE_SUBSETS, RESERVED_NAMES, RUN_NAME, SIZES_NOTEBOOK,
                                  STUDY_NOTEBOOKS, TRAINED_HERE, ConfigError, CPTDataConfig, EvalConfig, MergeChoice,
                                  MergeSpec, ModelConfig, PlanConfig, Profile, RealModelsConfig, RuntimeConfig,
                                  Section, SFTConfig, StudyConfig, TokenizerConfig, TrainConfig, WorldConfig,
                                  _merge_spec, check_run_name, n4_cpt, stable_dict)

__all__ = [
    "BENCH_NOTEBOOK", "BENCHMARK_NAMES", "DRIFT_NOTEBOOK", "EXTRA_NOTEBOOKS", "HELDOUT_TASK", "MERGE_METHODS",
    "MERGE_SPECS", "MODULE_SUBSETS", "RESERVED_NAMES", "RUN_NAME", "SIZES_NOTEBOOK", "STUDY_NOTEBOOKS", "TRAINED_HERE",
    "ConfigError", "CPTDataConfig", "EvalConfig", "MergeChoice", "MergeSpec", "ModelConfig", "PlanConfig", "Profile",
    "RealModelsConfig", "RuntimeConfig", "Section", "SFTConfig", "StudyConfig", "TokenizerConfig", "TrainConfig",
    "WorldConfig", "check_run_name", "expand_overrides", "from_dict", "load_profile", "load_with_overrides",
    "make_info", "n4_cpt", "profile_files", "resolve", "stable_dict",
]
