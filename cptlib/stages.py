"""Content-addressed stages: an output directory keyed by a hash of everything that determines it.

    path = run_stage("pretrain", spec, build)   # build(work_dir) -> dict of manifest fields

- finished (`<dir>/cptlib_manifest.json` exists): reused, nothing runs;
- interrupted: the work happens in `<dir>.partial/`, which `build` may resume from (Trainer checkpoints);
- failed: `<dir>.partial/` stays for resuming but never counts as finished — only the final rename does.
A lock file keeps two processes (e.g. `make -j`) from building the same stage at once.

Where the environment names a stage log (`CPTLIB_STAGE_LOG`, set by `cptlib notebook run` for each notebook), every
call appends one JSON line: the stage, whether it was built or reused, when it ran and for how long (a reused
stage with the seconds its build took). `cptlib cost` turns those lines into the run's cost model.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from cptlib import paths
from cptlib.provenance import hash_json, provenance

# Bump when a stage's code changes what it produces, so stale outputs are not reused.
STAGE_VERSION = 1
MANIFEST = "cptlib_manifest.json"
STAGE_LOG_ENV = "CPTLIB_STAGE_LOG"
# Manifest fields copied into the stage log: what a stage did (tokens trained, rows evaluated), not its spec.
LOGGED_FIELDS = ("role", "tokens", "steps", "rows", "n_params", "world_size")


def stage_key(kind: str, spec: dict) -> str:
    return hash_json({"kind": kind, "stage_version": STAGE_VERSION, "spec": spec})[:16]


def stage_dir(kind: str, spec: dict) -> Path:
    return paths.stages_dir() / f"{kind}-{stage_key(kind, spec)}"


def is_finished(path: Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def read_manifest(path: Path) -> dict:
    return json.loads((Path(path) / MANIFEST).read_text())


def write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def log_stage(path: Path, event: str, started: float, ended: float) -> None:
    """One line of the stage log, if one is set; never fails the stage it describes."""
    log = os.environ.get(STAGE_LOG_ENV)
    if not log:
        return
    try:
        manifest = read_manifest(path)
        line = {"kind": manifest["kind"], "key": manifest["key"], "event": event, "pid": os.getpid(),
                "start": round(started, 3), "end": round(ended, 3), "seconds": round(ended - started, 3),
                "build_seconds": manifest.get("stage_seconds", manifest.get("wall_seconds")),
                **{k: manifest[k] for k in LOGGED_FIELDS if k in manifest}}
        with open(log, "a") as f:  # one short write in append mode: lines of parallel processes do not interleave
            f.write(json.dumps(line) + "\n")
    except OSError:
        pass


def run_stage(kind: str, spec: dict, build: Callable[[Path], dict]) -> Path:
    final = stage_dir(kind, spec)
    called = time.time()
    if is_finished(final):
        log_stage(final, "reused", called, time.time())
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.with_name(final.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_finished(final):  # built by another process while we waited
            log_stage(final, "waited", called, time.time())
            return final
        work = final.with_name(final.name + ".partial")
        work.mkdir(exist_ok=True)
        started = time.time()
        fields = build(work)
        manifest = {
            "kind": kind,
            "key": stage_key(kind, spec),
            "spec": spec,
            "wall_seconds": round(time.time() - started, 2),
            **fields,  # may carry its own wall_seconds (a released ancestor: the time its training took)
            "stage_seconds": round(time.time() - started, 2),  # always this stage's own build time
            "provenance": provenance(),
        }
        write_json_atomic(work / MANIFEST, manifest)
        if final.exists():  # a stale unfinished directory from an older layout
            shutil.rmtree(final)
        os.rename(work, final)
    log_stage(final, "built", started, time.time())
    return final
