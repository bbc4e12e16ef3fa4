"""Files written whole or not at all, and their content hashes: the one place for both.

    with atomic_file(path) as tmp:   # write tmp any way (a library's save function, open(), ...)
        fig.savefig(tmp)
    write_text_atomic(path, text); write_json_atomic(path, obj)
    with atomic_dir(folder, replace=True) as tmp:   # fill a folder that appears only when complete
        ...
    hash_file(path), hash_json(obj)   # sha256 hex digests

A reader (a later step, another process, `make`) never sees half a file or half a folder: the content is written
beside the target under a hidden temporary name and renamed over it (an atomic step on one file system). If the
writing fails, the temporary is removed and the target is as before.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_file(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path` (hidden, unique to this process); on success it replaces `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path | str, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: Path | str, obj) -> None:
    """`obj` as indented JSON with sorted keys (the form of every manifest and record the project writes)."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def atomic_dir(path: Path | str, replace: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on success it becomes `path` (an existing `path` is
    removed first only with `replace`, else the rename fails). On failure the temporary folder is removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if replace and path.exists():
            shutil.rmtree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


_HASHES: dict[tuple, str] = {}


def hash_file(path: Path | str, chunk: int = 16 << 20) -> str:
    """sha256 of a file's bytes; remembered in this process while its size, mtime and inode stay the same (a
    notebook keys hundreds of evaluations on the same model and data files)."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def hash_json(obj) -> str:
    """sha256 of the canonical JSON form (sorted keys), for config- and content-addressing."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
