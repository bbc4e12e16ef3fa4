"""The keys of the study's evaluation and restored stages, computed without running any of them: a refactor of the
evaluation path or of the merge methods must leave every key as it was (a long study resumes from its cached
evaluations; a changed key would evaluate every model again).

    .venv/bin/python bench/stage_keys.py --out keys.json            # record (e.g. at the commit before a refactor)
    .venv/bin/python bench/stage_keys.py --out after.json --compare keys.json

Two kinds of keys, each by calling the code that makes the stage with `cptlib.core.stages.stage_dir` replaced by
one that raises the key it was asked for (so nothing is built, no model is loaded):
- profiles: for default, smoke and gemma3_270m_pair, the evaluations the study asks for (the testbed's settings
  variants on released models and their data; the real pair's suite and benchmarks through its own task folders)
  and the restored models of its merge methods and module subsets;
- cached: every finished testbed `eval-*` and `restored-*` stage in the build folder, its key recomputed from the
  inputs its manifest names; it must be its folder's name.
Compare two runs made in the same checkout with the same CPTLIB_BUILD_DIR (a real evaluation's key named the
checkout's and the build folder's paths before 24c9391; the stand-in models and the data are this checkout's).
"""
from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path

from cptlib.config import StudyConfig, load_profile
from cptlib.core import paths, stages
from cptlib.members import Member

PROFILES = ("default", "smoke", "gemma3_270m_pair")
MERGE_DEFAULTS = {"density": 1.0, "drop_rate": 0.0, "gamma": 0.0}


class _Key(Exception):
    pass


@contextmanager
def _capture():
    real = stages.stage_dir

    def raising(kind, spec):
        raise _Key(f"{kind}-{stages.stage_key(kind, spec)}")

    stages.stage_dir = raising
    try:
        yield
    finally:
        stages.stage_dir = real


def key_of(fn, *args, **kwargs) -> str:
    """The stage `fn(*args, **kwargs)` would run (or reuse), by kind and key, without running it."""
    with _capture():
        try:
            fn(*args, **kwargs)
        except _Key as k:
            return str(k)
    raise RuntimeError(f"{fn.__name__} asked for no stage")


def _merge(spec: dict):
    """A merge as a profile writes it (the method and the parameters it sets, their defaults left out), in the form
    `restored` takes (since issue 47 the engine's method, before it the profile's entry)."""
    return _taken(StudyConfig(merges=[{k: v for k, v in spec.items() if k == "method" or MERGE_DEFAULTS.get(k) != v}]).merges[0])


def _taken(entry):
    return entry.merge() if hasattr(entry, "merge") else entry


def restored_keys(profile, base: Path, inst: Path, target: Path) -> dict[str, str]:
    from cptlib.study.restored import restored

    out = {f"merge {i} {m.method}": key_of(restored, base, inst, target, merge=_taken(m))
           for i, m in enumerate(profile.study.merges)}
    out.update({f"modules {s}": key_of(restored, base, inst, target, modules=s) for s in profile.study.module_subsets})
    out.update({f"alpha {a}": key_of(restored, base, inst, target, alpha=a) for a in profile.study.alphas})
    out.update({f"rank {r}": key_of(restored, base, inst, target, rank=r) for r in profile.study.ranks})
    return out


def testbed_profile_keys(profile) -> dict[str, str]:
    from dataclasses import replace

    from cptlib.evaluation import suite
    from cptlib.evaluation.evaluate import EvalSettings, run_evaluation
    from cptlib.family.build import testbed_data
    from cptlib.study import scaling

    release = paths.MODELS_DIR / (profile.release or profile.name)
    data = testbed_data(profile)
    variants = {"full": EvalSettings(), "study": EvalSettings(tasks=suite.STUDY_TASKS),
                "panels": EvalSettings(tasks=suite.PANEL_TASKS), "capped": EvalSettings(max_gen_toks=64, limit=5)}
    variants.update({f"ladder {m}": EvalSettings(tasks=tuple(suite.METRICS[x][0] for x in metrics))
                     for m, metrics in scaling.TASKS.items()})
    variants.update({f"task {t}": replace(variants["full"], tasks=(t,)) for t in suite.STUDY_TASKS})
    out = {}
    for member in (Member.BASE_V1, Member.INSTRUCT_V1):
        out.update({f"eval {member} {name}": key_of(run_evaluation, release / member, data, s)
                    for name, s in variants.items()})
    out.update(restored_keys(profile, release / Member.BASE_V1, release / Member.INSTRUCT_V1, release / Member.BASE_V2))
    return out


def real_profile_keys(profile) -> dict[str, str]:
    """A real profile's evaluations as RealSuite.scores and notebook 07 make them, on stand-in models (the smoke
    profile's released members: the key's model hash is theirs, the rest is the profile's)."""
    from cptlib.evaluation import benchmarks as B
    from cptlib.evaluation.real_profile import include_path, real_suite_settings
    from cptlib.evaluation.real_suite import run_real_suite
    from cptlib.family.released import corpus_stage
    from cptlib.study import benchmarks

    data = corpus_stage(profile)
    settings, tasks = real_suite_settings(profile), include_path(profile, data)
    stand_in = paths.MODELS_DIR / "smoke"
    out = {}
    for member in (Member.BASE_V1, Member.INSTRUCT_V1):
        out[f"eval {member} suite"] = key_of(run_real_suite, stand_in / member, settings, tasks)
        if profile.eval.benchmarks:
            out[f"eval {member} benchmarks"] = key_of(run_real_suite, stand_in / member, benchmarks.settings(profile),
                                                      generated=[B.task_folder()])
    out.update(restored_keys(profile, stand_in / Member.BASE_V1, stand_in / Member.INSTRUCT_V1, stand_in / Member.BASE_V2))
    return out


def _here(path: str, roots: dict[str, Path]) -> Path:
    """A path a copied build's manifest names, in this checkout (the build folder and models/ moved with it)."""
    for old, new in roots.items():
        if path.startswith(old + "/"):
            return new / path[len(old) + 1:]
    return Path(path)


def cached_keys(roots: dict[str, Path]) -> tuple[int, list[str]]:
    """Every finished testbed evaluation and restored model in the build folder, its key recomputed from its
    manifest's inputs: (how many, those whose key is not their folder's name)."""
    from cptlib.evaluation.evaluate import EvalSettings, run_evaluation
    from cptlib.study.restored import restored

    checked, wrong = 0, []
    for stage in sorted(paths.stages_dir().glob("*-*")):
        if not stages.is_finished(stage) or stage.name.split("-")[0] not in ("eval", "restored"):
            continue
        m = stages.read_manifest(stage)
        spec = m["spec"]
        if m["kind"] == "eval" and spec.get("suite") == "testbed":
            s = dict(spec["settings"])
            s["tasks"] = tuple(s["tasks"]) if "tasks" in s else None
            key = key_of(run_evaluation, _here(m["model_dir"], roots), _here(m["data_dir"], roots), EvalSettings(**s))
        elif m["kind"] == "restored":
            key = key_of(restored, _here(m["inputs"]["base"], roots), _here(m["inputs"]["instruct"], roots),
                         _here(m["parent"], roots), alpha=spec["alpha"], merge=_merge(spec["merge"]),
                         modules=spec["modules"], rank=spec["rank"])
        else:  # a real evaluation: its generated task folders name the checkout that made it (the profiles cover it)
            continue
        checked += 1
        if key != stage.name:
            wrong.append(f"{stage.name} -> {key}")
    return checked, wrong


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--compare", type=Path, help="keys recorded before: every one must be the same")
    p.add_argument("--profiles", nargs="*", default=list(PROFILES))
    p.add_argument("--moved-from", default=str(paths.REPO_ROOT),
                   help="the checkout a copied build folder was made in (default: this one)")
    args = p.parse_args()
    record = {}
    for name in args.profiles:
        profile = load_profile(name)
        record[name] = (real_profile_keys if profile.models is not None else testbed_profile_keys)(profile)
        print(f"{name}: {len(record[name])} keys", flush=True)
    old = args.moved_from
    checked, wrong = cached_keys({f"{old}/build": paths.BUILD_DIR, f"{old}/models": paths.MODELS_DIR})
    record["cached"] = {"checked": checked, "wrong": wrong}
    print(f"cached stages: {checked} keys recomputed, {len(wrong)} differ from their folder" +
          "".join(f"\n  {w}" for w in wrong))
    args.out.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    if args.compare:
        before = json.loads(args.compare.read_text())
        diff = [f"{prof} {what}: {k} -> {record.get(prof, {}).get(what)}" for prof, keys in before.items()
                if prof != "cached" for what, k in keys.items() if record.get(prof, {}).get(what) != k]
        print(f"compared with {args.compare}: {sum(len(v) for k, v in before.items() if k != 'cached')} keys, "
              f"{len(diff)} differ" + "".join(f"\n  {d}" for d in diff))
        return 1 if diff or wrong else 0
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
