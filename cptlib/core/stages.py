"""Content-addressed stages: an output directory keyed by a hash of everything that determines it.

    path = run_stage("pretrain", spec, build)   # build(work_dir) -> dict of manifest fields

- finished (`<dir>/cptlib_manifest.json` exists): reused, nothing runs;
- interrupted: the work happens in `<dir>.partial/`, which `build` may resume from (Trainer checkpoints);
- failed: `<dir>.partial/` stays for resuming but never counts as finished — only the final rename does; a
  resumed stage's `wall_seconds` adds the earlier attempts' time (each until the last file it wrote);
A lock file keeps two processes (e.g. `make -j`) from building the same stage at once.

Where the environment names a stage log (`CPTLIB_STAGE_LOG`, set by `cptlib notebook run` for each notebook), every
call appends one JSON line: the stage, whether it was built or reused, when it ran and for how long (a reused
stage with the seconds its build took). `cptlib cost` turns those lines into the run's cost model.
"""
from __future__ import annotations

import contextvars
import errno
import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cptlib.core import paths
from cptlib.core.files import hash_json, write_json_atomic
from cptlib.core.provenance import provenance

# Bump when a stage's code changes what it produces, so stale outputs are not reused.
STAGE_VERSION = 1
MANIFEST = "cptlib_manifest.json"
STAGE_LOG_ENV = "CPTLIB_STAGE_LOG"
ATTEMPTS = "cptlib_attempts.json"  # in <dir>.partial/: when each attempt at building the stage started
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


def _earlier_attempts(work: Path, started: float) -> list[dict]:
    """The attempts before this one at building the stage in `work` (interrupted, then resumed), each with its
    seconds: from its start to the last file it wrote in `work` (a killed process leaves no end time; its last
    write, e.g. a Trainer checkpoint, is when its work stopped counting). Records this attempt's start."""
    record = work / ATTEMPTS
    attempts = json.loads(record.read_text()) if record.is_file() else []
    if attempts and "seconds" not in attempts[-1]:
        last_write = max((f.stat().st_mtime for f in work.rglob("*") if f.is_file() and f != record), default=0.0)
        attempts[-1]["seconds"] = round(max(0.0, last_write - attempts[-1]["started"]), 2)
        attempts[-1]["estimated"] = "until its last write (it was interrupted)"
    write_json_atomic(record, [*attempts, {"started": round(started, 3)}])
    return attempts


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


class Unfinished(Exception):
    """Raised by run_stage inside `probe()` for a stage that is not built yet (nothing is built)."""

    def __init__(self, kind: str, key: str):
        super().__init__(f"stage {kind}-{key} is not built yet")
        self.kind, self.key = kind, key


_probing = contextvars.ContextVar("cptlib_stage_probe", default=False)


@contextmanager
def probe() -> Iterator[None]:
    """Within the block, run_stage returns finished stages as usual and raises Unfinished instead of building:
    `with probe(): fam.cpt(...)` says whether a call would train, without training (cptlib.core.pool uses it)."""
    token = _probing.set(True)
    try:
        yield
    finally:
        _probing.reset(token)


def run_stage(kind: str, spec: dict, build: Callable[[Path], dict]) -> Path:
    final = stage_dir(kind, spec)
    called = time.time()
    if is_finished(final):
        if not _probing.get():
            log_stage(final, "reused", called, time.time())
        return final
    if _probing.get():
        raise Unfinished(kind, stage_key(kind, spec))
    final.parent.mkdir(parents=True, exist_ok=True)
    lock_path = final.with_name(final.name + ".lock")
    with open(lock_path, "a+") as lock:
        _lock_or_wait(lock, lock_path, final)
        if is_finished(final):  # built by another process while we waited
            log_stage(final, "waited", called, time.time())
            return final
        work = final.with_name(final.name + ".partial")
        work.mkdir(exist_ok=True)
        started = time.time()
        earlier = _earlier_attempts(work, started)
        try:
            fields = build(work)
        except Exception as err:  # a full disk (safetensors and datasets wrap it) names the stage being written
            if disk_full(err) and not getattr(err, "filename", None):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(work)) from err
            raise
        seconds = round(time.time() - started + sum(a["seconds"] for a in earlier), 2)
        manifest = {
            "kind": kind,
            "key": stage_key(kind, spec),
            "spec": spec,
            "wall_seconds": seconds,
            **fields,  # may carry its own wall_seconds (a released ancestor: the time its training took)
            "stage_seconds": seconds,  # always this stage's own build time, over all its attempts
            "attempts": [*earlier, {"started": round(started, 3), "seconds": round(time.time() - started, 2)}],
            "provenance": provenance(),
        }
        (work / ATTEMPTS).unlink(missing_ok=True)
        write_json_atomic(work / MANIFEST, manifest)
        if final.exists():  # a stale unfinished directory from an older layout
            shutil.rmtree(final)
        os.rename(work, final)
    log_stage(final, "built", started, time.time())
    return final


def _lock_or_wait(lock, lock_path: Path, final: Path) -> None:
    """Take the stage's lock; if another process holds it, say so once (who, and what), then wait for it. The
    holder writes its pid into the lock file."""
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        print(f"cptlib: waiting for {final.name}, which process {holder} is building (lock {lock_path}); it is "
              "used as soon as that finishes", file=sys.stderr, flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()


def disk_full(err: BaseException) -> bool:
    """A write that failed for lack of space: OSError ENOSPC, or safetensors' and datasets' wrapped forms."""
    return (isinstance(err, OSError) and err.errno == errno.ENOSPC) or any(
        text in str(err) for text in ("No space left on device", "StorageFull"))


def _bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def clean_partial(dry_run: bool = False) -> list[tuple[Path, int]]:
    """Remove what failed or killed runs left in the stage folder: `<dir>.partial/` folders (an interrupted stage
    would resume from one; removing it means starting that stage over) and lock files with no stage being built.
    Anything a running process holds locked is kept. Returns (path, bytes) for each thing removed."""
    removed, root = [], paths.stages_dir()
    if not root.is_dir():
        return removed
    for lock_path in sorted(root.glob("*.lock")):
        stage = lock_path.with_suffix("")
        partial = stage.with_name(stage.name + ".partial")
        with open(lock_path, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # being built right now
                continue
            if partial.is_dir():
                removed.append((partial, _bytes(partial)))
                if not dry_run:
                    shutil.rmtree(partial)
            removed.append((lock_path, 0))
            if not dry_run:
                lock_path.unlink()
    for partial in sorted(root.glob("*.partial")):  # a partial without its lock file
        if partial.is_dir() and not partial.with_suffix(".lock").exists():
            removed.append((partial, _bytes(partial)))
            if not dry_run:
                shutil.rmtree(partial)
    return removed


def _clean_partial(args) -> None:
    removed = clean_partial(args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for path, size in removed:
        if path.suffix == ".partial":
            print(f"{verb} {path} ({size / 1e6:.1f} MB, an unfinished stage)")
    locks = sum(1 for p, _ in removed if p.suffix == ".lock")
    print(f"{verb} {sum(1 for p, _ in removed if p.suffix == '.partial')} unfinished stage(s) and {locks} idle lock "
          f"file(s) in {paths.stages_dir()}")


def register(subparsers) -> None:
    p = subparsers.add_parser("clean-partial", help="remove unfinished stages and idle lock files left by failed runs",
                              description=clean_partial.__doc__)
    p.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    p.set_defaults(func=_clean_partial)
