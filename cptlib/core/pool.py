"""Both cores busy: independent stages (trainings, evaluations) built side by side in worker processes.

    pool.build([(fam.cpt, (profile, base, seed)), (fam.cpt, (profile, inst, seed))], processes=2)
    cpt_base = fam.cpt(profile, base, seed)   # then read back from the cache, in order, as before

`build` asks each call, under `stages.probe()`, whether it would build anything; the calls that would run in
`processes` worker processes (`python -m cptlib.core.pool`), each with one torch thread (the testbed's ~1M-parameter models are no
faster with a second thread, and two 2-thread processes on 2 cores slow each other ~3x), taking the next call
as soon as it is free. Thread counts do not enter a stage's key or its numbers (cptlib.family.runtime_spec;
tests/test_pool.py checks that a stage trained here equals one trained in the notebook's process bit for bit),
so the cache is the same either way. Workers are fresh Python processes fed pickled calls on stdin, not
multiprocessing (a fork can deadlock torch's thread pool, and spawn re-imports the caller's __main__ script).
Their stage builds are logged like any other (CPTLIB_STAGE_LOG is inherited), and a failure in one call is
reported with its traceback after the others finish. After a build that went through, the workers wait, idle on
their stdin, for the next build of this process (a notebook builds several batches of evaluations: notebook 04
three), which saves each batch after the first a worker's start-up (Python, torch, transformers, lm-eval's task
index: ~6 s of both cores). A worker is only reused by a build with the same threads, environment, `sys.path` and
working directory as when it started, since it reads them then (e.g. CPTLIB_BUILD_DIR); the rest are closed, as are
all of them when this process exits (or by `close_idle()`: a worker runs the code it imported, so code edited since
in a long session needs it).
"""
from __future__ import annotations

import atexit
import os
import pickle
import select
import struct
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence

from cptlib.core import stages
from cptlib.core.progress import quiet_if_asked
from cptlib.core.shutdown import skip_final_collection

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


_HEADER = struct.Struct("!Q")


def _send(stream, obj) -> None:
    data = pickle.dumps(obj)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream):
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the worker process ended")
    return pickle.loads(stream.read(_HEADER.unpack(header)[0]))


def pending(calls: Sequence[Call]) -> list[Call]:
    """The calls that would build a stage (the rest are cached, or repeat an earlier call of the list). Only
    for calls that end in cptlib.core.stages.run_stage: anything else would simply run here."""
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
    """What a worker reads when it starts: a worker started under another context is not reused."""
    return threads, tuple(sorted(os.environ.items())), tuple(sys.path), os.getcwd()


class _Worker:
    """`python -m cptlib.core.pool THREADS FD`: reads pickled calls on stdin, answers on the pipe FD; what its calls
    print goes to the stdout and stderr it shares with this process (in a notebook, the kernel's: a Trainer's loss
    line stays a stdout line, not a red stderr one)."""

    def __init__(self, threads: int):
        self.context = _context(threads)
        read, write = os.pipe()
        self.proc = subprocess.Popen([sys.executable, "-m", "cptlib.core.pool", str(threads), str(write)],
                                     stdin=subprocess.PIPE, pass_fds=(write,))
        os.close(write)
        self.answers = os.fdopen(read, "rb")
        _send(self.proc.stdin, list(sys.path))  # so that the calls' modules import there as here
        self.call: Call | None = None

    def give(self, call: Call) -> None:
        self.call = call
        _send(self.proc.stdin, call)

    def close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.answers.close()


_IDLE: list[_Worker] = []  # this process' workers between builds


def _workers(n: int, threads: int) -> list[_Worker]:
    """`n` workers: idle ones started under this context first, new ones for the rest; other idle ones are closed."""
    context = _context(threads)
    reusable = [w for w in _IDLE if w.context == context and w.proc.poll() is None]
    for w in _IDLE:
        if w not in reusable:
            w.close()
    _IDLE[:] = reusable[n:]
    return reusable[:n] + [_Worker(threads) for _ in range(n - len(reusable[:n]))]


def close_idle() -> None:
    """End the idle workers (at this process' exit, or to free their memory)."""
    while _IDLE:
        _IDLE.pop().close()


atexit.register(close_idle)


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
    workers = _workers(min(processes, len(todo)), threads)
    print(f"building {len(todo)} {what} in {len(workers)} processes ({threads} torch thread each)", flush=True)
    queue, started, failed, done, finished = list(todo), time.time(), [], 0, False
    try:
        for w in workers:
            w.give(queue.pop(0))
        busy = {w.answers.fileno(): w for w in workers}
        while busy:
            ready, _, _ = select.select(list(busy), [], [])
            for fd in ready:
                w = busy[fd]
                fn, _ = w.call
                try:
                    status, detail = _receive(w.answers)
                except EOFError:
                    status, detail = "error", (f"its worker process died (exit {w.proc.wait()}; its error output is "
                                               "above; -9: killed, e.g. out of memory)")
                    del busy[fd]
                done += 1
                if status == "ok":
                    print(f"  [{done}/{len(todo)}] {fn.__name__} done in {detail:.0f} s "
                          f"({time.time() - started:.0f} s elapsed)", flush=True)
                else:
                    failed.append(f"{fn.__module__}.{fn.__name__} failed:\n{detail}")
                if fd in busy:
                    if queue:
                        w.give(queue.pop(0))
                    else:
                        del busy[fd]
        finished = not failed
    finally:
        for w in workers:  # kept only after a build that went through: none of them holds an unread answer then
            if finished and w.proc.poll() is None:
                _IDLE.append(w)
            else:
                w.close()
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(todo)} {what} failed:\n" + "\n".join(failed))
    return len(todo)


def _serve(threads: int, answer_fd: int) -> None:
    """The worker's loop: one call at a time until stdin closes."""
    os.environ[THREADS_ENV] = str(threads)
    answers = os.fdopen(answer_fd, "wb")
    sys.stdout.reconfigure(line_buffering=True)  # a pipe (a notebook kernel's capture): each line as it is printed
    quiet_if_asked()  # a notebook's worker: no library progress bars either (cptlib.core.progress)
    skip_final_collection()  # the notebook waits for its workers to exit (cptlib.core.shutdown)
    import torch

    torch.set_num_threads(threads)
    requests = sys.stdin.buffer
    sys.path[:] = _receive(requests)
    while True:
        try:
            call = _receive(requests)
        except (EOFError, KeyboardInterrupt):  # stdin closed, or an idle worker interrupted with its notebook's kernel
            return
        except Exception:  # noqa: BLE001 -- e.g. a call whose function cannot be imported here
            _send(answers, ("error", traceback.format_exc()))
            continue
        started = time.time()
        try:
            fn, args = call
            fn(*args)
            _send(answers, ("ok", time.time() - started))
        except BaseException:  # noqa: BLE001 -- reported to the parent, which raises
            _send(answers, ("error", traceback.format_exc()))


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))
