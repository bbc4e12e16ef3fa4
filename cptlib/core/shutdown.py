"""A quick interpreter exit for the project's long-lived worker processes (notebook kernels, evaluation workers).

With torch and transformers imported, CPython's exit spends ~1.5-2.5 s on this 2-core CPU in its last garbage
collection, walking the millions of objects those libraries create at import (measured: a process that imported
`transformers.models.llama.modeling_llama` exits in 1.73 s, 0.26 s with `gc.freeze()` before exit). A notebook's
kernel and every evaluation worker pay it once, and the notebook waits for them. `gc.freeze()` at exit moves the
objects alive then out of the collector's reach, so the final collection skips them. Objects still freed by reference
counting when the interpreter clears its modules are freed as before (their `__del__` runs, an open file is flushed);
only objects kept alive by a reference cycle are left to the operating system, unfinalized. The project writes its
files through `with` blocks and atomic renames (cptlib.core.stages), never through such finalizers."""
from __future__ import annotations

import atexit
import gc

_registered = False


def skip_final_collection() -> None:
    """Make this process's exit skip the final garbage collection over what is alive then (once per process)."""
    global _registered
    if not _registered:
        atexit.register(gc.freeze)  # atexit runs last-registered first: this one runs before the others
        _registered = True
