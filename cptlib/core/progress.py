"""Library progress bars off in a notebook's kernel: `quiet_library_bars()` (called by the notebooks' setup).

A stage the kernel builds itself (one evaluation, a model loaded to score it) draws lm-eval's, datasets' and
transformers' bars ("Running loglikelihood requests", "Generating test split", "Loading weights"): in the kernel they
are not widgets but red stderr text, ~100 outputs per smoke run in the executed notebooks and in JupyterLab, where a
warning would hide among them. The notebook's progress is cptlib's own line per finished stage and the Trainer's loss
lines, on stdout; the stage workers' bars (cptlib.core.pool) still go where the kernel's own output goes (the make
log, or JupyterLab's terminal), and the command line (`cptlib build`, `cptlib eval`) keeps every bar. lm-eval passes
`disable=` explicitly, which tqdm's TQDM_DISABLE default cannot override, so tqdm's constructor is wrapped to force
it; tqdm.write (the Trainer's loss lines) still prints.
"""
from __future__ import annotations

import functools

_DISABLE_ARG = 10  # tqdm(iterable, desc, total, leave, file, ncols, mininterval, maxinterval, miniters, ascii, disable)


def quiet_library_bars() -> None:
    """Turn every tqdm bar of this process off (idempotent)."""
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
