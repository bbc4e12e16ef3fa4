"""Both cores busy: independent stages (trainings, evaluations) built side by side in worker processes.

    pool.build([(fam.cpt, (profile, base, seed)), (fam.cpt, (profile, inst, seed))], processes=2)
    cpt_base = fam.cpt(profile, base, seed)   # then read back from the cache, in order, as before

`build` asks each call, under `stages.probe()`, whether it would build anything; the calls that would run in
`processes` workers of loky's reusable `concurrent.futures` executor, each with one torch thread (the testbed's
~1M-parameter models are no faster with a second thread, and two 2-thread processes on 2 cores slow each other ~3x),
each taking the next call as soon as it is free. Thread counts do not enter a stage's key or its numbers
(cptlib.family.runtime_spec; tests/test_pool.py checks that a stage trained here equals one trained in the notebook's
process bit for bit), so the cache is the same either way.

Why loky rather than the standard library's ProcessPoolExecutor: its workers are fresh interpreters (fork + exec: a
plain fork can deadlock torch's thread pool) that do not re-import the caller's `__main__` script (the standard
`spawn` context runs an unguarded script again in every worker, which then fails while bootstrapping), and the
executor is reused by the next build. A notebook builds several batches of evaluations (notebook 04 three), and each
batch after the first saves a worker's start-up (Python, torch, transformers, lm-eval's task index: ~6 s of both
cores). Workers are only reused by a build with the same threads, environment, `sys.path` and working directory as
when they started, since they read them then (e.g. CPTLIB_BUILD_DIR); otherwise loky starts new ones. What a call
prints goes to the stdout and stderr the workers share with this process (in a notebook, the kernel's: a Trainer's
loss line stays a stdout line), their stage builds are logged like any other (CPTLIB_STAGE_LOG is inherited), and a
failure in one call is reported with its traceback after the others finish. The workers end when this process exits,
after a build that failed, or with `close_idle()` (a worker runs the code it imported, so code edited since in a long
session needs it).
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import as_completed

from cptlib.core import stages

Call = tuple[Callable, tuple]
THREADS_ENV = "CPTLIB_TORCH_THREADS"  # a worker's torch threads; cptlib.training.train.configure_runtime reads it


def env_threads() -> int:
    """CPTLIB_TORCH_THREADS as a thread count (0 when unset); a value that is not a positive whole number is refused
    in one line rather than ignored or raised from int()."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return 0
    if not value.isdigit() or int(value) < 1:
        from cptlib.core.errors import InputError

        raise InputError(f"{THREADS_ENV}={value!r}: set it to a positive whole number of torch threads per process "
                         "(e.g. 1), or unset it to use the machine's cores")
    return int(value)


def pending(calls: Sequence[Call]) -> list[Call]:
    """The calls that would build a stage (the rest are cached, or repeat an earlier call of the list). Only
    for calls that end in cptlib.core.stages.run_stage: anything else would simply run here."""
    import pickle

    todo, seen = [], set()
    for fn, args in calls:
        key = pickle.dumps((fn.__module__, fn.__qualname__, args))
        if key in seen:  # the same call twice builds once
            continue
        seen.add(key)
        try:
            with stages.probe():
                fn(*args)
        except stages.Unfinished:
            todo.append((fn, args))
    return todo


def _context(threads: int) -> tuple:
    """What a worker reads when it starts: the executor's initargs, so that loky reuses its workers only for a build
    under the same context (`reuse="auto"` compares them) and starts new ones otherwise."""
    return threads, tuple(sorted(os.environ.items())), tuple(sys.path), os.getcwd()


def _start_worker(threads: int, *_context) -> None:
    """A worker's set-up, once, before its first call."""
    from cptlib.core.progress import quiet_if_asked
    from cptlib.core.shutdown import skip_final_collection

    os.environ[THREADS_ENV] = str(threads)
    sys.stdout.reconfigure(line_buffering=True)  # a pipe (a notebook kernel's capture): each line as it is printed
    quiet_if_asked()  # a notebook's worker: no library progress bars either (cptlib.core.progress)
    skip_final_collection()  # the notebook waits for its workers to exit (cptlib.core.shutdown)
    import torch

    torch.set_num_threads(threads)


def _timed(fn: Callable, args: tuple) -> float:
    """Run one call in a worker; its seconds."""
    started = time.time()
    fn(*args)
    return time.time() - started


_current: list = []  # the executor of this process' last build (loky keeps one per process), for close_idle()


def _executor(processes: int, threads: int):
    from loky import get_reusable_executor

    # timeout=None: idle workers wait for the next build of this process (loky's default ends them after 10 s)
    executor = get_reusable_executor(max_workers=processes, timeout=None, reuse="auto", initializer=_start_worker,
                                     initargs=_context(threads))
    _current[:] = [executor]
    return executor


def close_idle() -> None:
    """End the workers (loky does at this process' exit; call it to free their memory, or to load edited code)."""
    while _current:
        _current.pop().shutdown(wait=True)


def build(calls: Sequence[Call], processes: int = 2, threads: int = 1, what: str = "stages") -> int:
    """Build every stage `calls` would build, `processes` at a time; returns how many calls ran. With one
    process, or one call to run, the calls run here, in this process, as if called directly."""
    todo = pending(calls)
    if not todo:
        return 0
    if processes <= 1 or len(todo) == 1:
        for fn, args in todo:
            fn(*args)
        return len(todo)
    n = min(processes, len(todo))
    executor = _executor(n, threads)
    print(f"building {len(todo)} {what} in {n} processes ({threads} torch thread each)", flush=True)
    started, failed = time.time(), []
    try:
        futures = {executor.submit(_timed, fn, args): fn for fn, args in todo}
        for done, future in enumerate(as_completed(futures), 1):
            fn = futures[future]
            try:
                seconds = future.result()
            except Exception as err:  # noqa: BLE001 -- every failure is reported together once the rest are done
                detail = "".join(traceback.format_exception(err))  # with the worker's traceback (loky: the cause)
                failed.append(f"{fn.__module__}.{fn.__name__} failed:\n{detail}")
                continue
            print(f"  [{done}/{len(todo)}] {fn.__name__} done in {seconds:.0f} s "
                  f"({time.time() - started:.0f} s elapsed)", flush=True)
    except BaseException:  # Ctrl-C while waiting: the workers stop too, not after their calls
        executor.shutdown(wait=False, kill_workers=True)
        raise
    if failed:
        executor.shutdown(wait=True, kill_workers=True)  # the next build starts clean workers
        raise RuntimeError(f"{len(failed)} of {len(todo)} {what} failed:\n" + "\n".join(failed))
    return len(todo)
