"""Library progress bars off in a notebook: `quiet_library_bars()` (the notebooks' setup; their stage workers too).

A stage built in the kernel or in one of its workers (cptlib.core.pool, whose output the kernel captures) draws
lm-eval's, datasets' and transformers' bars ("Running loglikelihood requests", "Generating test split", "Loading
weights"): not widgets there but red stderr text, ~100 outputs per cold smoke run in the executed notebooks and in
JupyterLab, where a warning would hide among them. A notebook's progress is cptlib's own line per finished stage and
the Trainer's loss lines, on stdout; the command line (`cptlib build`, `cptlib eval`) keeps every bar. lm-eval passes
`disable=` explicitly, which tqdm's TQDM_DISABLE default cannot override, so tqdm's constructor is wrapped to force
it; tqdm.write (the Trainer's loss lines) still prints.
"""
from __future__ import annotations

import functools
import os

ENV = "CPTLIB_QUIET_BARS"  # set by quiet_library_bars(): the worker processes started afterwards quiet theirs too
_DISABLE_ARG = 10  # tqdm(iterable, desc, total, leave, file, ncols, mininterval, maxinterval, miniters, ascii, disable)


def quiet_library_bars() -> None:
    """Turn every tqdm bar of this process off (idempotent), and of the stage workers it starts (ENV)."""
    os.environ[ENV] = "1"
    import tqdm.std

    init = tqdm.std.tqdm.__init__
    if getattr(init, "_cptlib_quiet", False):
        return

    @functools.wraps(init)
    def quiet(self, *args, **kwargs):
        if len(args) > _DISABLE_ARG:
            args = (*args[:_DISABLE_ARG], True, *args[_DISABLE_ARG + 1:])
        else:
            kwargs["disable"] = True
        init(self, *args, **kwargs)

    quiet._cptlib_quiet = True
    tqdm.std.tqdm.__init__ = quiet


def quiet_if_asked() -> None:
    """In a stage worker started by a process that called quiet_library_bars() (a notebook's kernel)."""
    if os.environ.get(ENV) == "1":
        quiet_library_bars()
