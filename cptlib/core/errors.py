"""The project's errors: one base class, `CptlibError`, for a failure the user can fix from its message.

Every error cptlib raises on purpose for bad input (a profile, a path, an option, a file that is not what it should
be) derives from `CptlibError`; its message names the thing and the fix. The command line catches `CptlibError`
only (`cptlib.cli.main`), prints the message as one line and exits 2 -- with `--debug` or `CPTLIB_DEBUG=1` it shows
the traceback too. Any other exception is a bug (in cptlib or a library) and keeps its traceback.

The subclasses also derive from the built-in exception a library caller would expect (a bad value is a
`ValueError`, a missing file a `FileNotFoundError`), so `except ValueError` in code that calls cptlib keeps working.
"""
from __future__ import annotations


class CptlibError(Exception):
    """A failure the user can fix; the message says what and how."""


class InputError(CptlibError, ValueError):
    """A bad value: an option, a profile key, the content of an input file."""


class MissingInputError(CptlibError, FileNotFoundError):
    """A file or folder a step needs does not exist (or is not what the step needs)."""


class OutputExistsError(CptlibError, FileExistsError):
    """An output would overwrite something that already exists."""
