"""Streaming safetensors output: size-capped shards plus the standard index, in a directory that only
appears, complete, when everything succeeded (`with output_dir(out) as tmp: ...`).

Every output tensor's name, shape and dtype is known before the first byte is written, so each shard's
header is written first and tensors are appended one at a time: at most one tensor is ever in memory.
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import sys
import struct
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import torch

from cptlib.residual.checkpoint import CHUNK_ELEMENTS, DTYPE_CODES, INDEX_FILE, SINGLE_FILE
from cptlib.core.errors import InputError, OutputExistsError



def parse_size(size: str | int) -> int:
    """'5GB', '500MB', '20KB' (powers of 1000, as transformers' max_shard_size) or a byte count."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?i?B)?\s*", size, flags=re.IGNORECASE)
    if not match:
        raise InputError(f"shard size {size!r}: write it like 5GB, 500MB or a byte count")
    units = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
    return int(float(match[1]) * units[(match[2] or "B").upper()])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Delete the temporary siblings of `out` (`.<name>.tmp-<pid>-*`) left by a run that was killed (SIGKILL, a lost
    machine): their process is gone. A run still writing keeps its folder. Says what it removed."""
    removed = []
    for tmp in out.parent.glob(f".{out.name}.tmp-*"):
        pid = tmp.name[len(f".{out.name}.tmp-"):].split("-")[0]
        if tmp.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
            print(f"removed {tmp}, the unfinished output of a run (pid {pid}) that was killed", file=sys.stderr)
            removed.append(tmp)
    return removed


@contextmanager
def output_dir(out: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of `out`; rename it to `out` on success, delete it on any failure."""
    out = Path(out)
    if out.exists():
        raise OutputExistsError(f"{out} already exists; choose another output directory or remove it first")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(out)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    except OSError as err:  # read-only, not ours, or a folder that holds no files (/proc): before anything is read
        raise InputError(f"--out {out}: cannot create a folder in {out.parent} ({err.strerror}); choose a writable "
                         "folder for the output") from None
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the output should look like any other folder
        if out.exists():  # someone else wrote it meanwhile; rename would silently replace an empty folder
            raise OutputExistsError(f"{out} appeared while this run was writing; its output was discarded")
        tmp.rename(out)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        from cptlib.core.stages import disk_full

        if disk_full(err):  # name the output, whose disk is full (the error itself often names no file)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out)) from err
        raise


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def nbytes(self) -> int:
        numel = 1
        for dim in self.shape:
            numel *= dim
        return numel * self.dtype.itemsize


class ShardWriter:
    """Writes tensors in `self.order` into shards of at most `max_shard_bytes` (a larger tensor gets a shard
    of its own), named like save_pretrained's, plus `model.safetensors.index.json` when there are several."""

    def __init__(self, directory: Path, specs: list[TensorSpec], max_shard_bytes: int, metadata: dict | None = None):
        self.directory = Path(directory)
        self.metadata = {"format": "pt", **(metadata or {})}  # transformers refuses files without format=pt
        shards: list[list[TensorSpec]] = [[]]
        size = 0
        for spec in specs:
            if shards[-1] and size + spec.nbytes > max_shard_bytes:
                shards.append([])
                size = 0
            shards[-1].append(spec)
            size += spec.nbytes
        # Widest dtypes first within a shard, as safetensors does, so every tensor starts aligned.
        self.shards = [sorted(shard, key=lambda s: -s.dtype.itemsize) for shard in shards]
        n = len(self.shards)
        self.filenames = [SINGLE_FILE] if n == 1 else [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
        self.order = [spec for shard in self.shards for spec in shard]
        self.total_size = sum(spec.nbytes for spec in specs)
        self._next = 0
        self._file = None

    def write(self, name: str, data: torch.Tensor | Iterable[torch.Tensor]) -> None:
        """Append the next tensor, given whole or as consecutive blocks, cast block by block to its dtype."""
        spec = self.order[self._next]
        if name != spec.name or (isinstance(data, torch.Tensor) and tuple(data.shape) != spec.shape):
            shape = tuple(data.shape) if isinstance(data, torch.Tensor) else "blocks"
            raise RuntimeError(f"writer expected {spec.name} {spec.shape} next, got {name} {shape}")
        if isinstance(data, torch.Tensor):
            data = data.reshape(-1).split(CHUNK_ELEMENTS)
        shard, first = self._position(self._next)
        if first:
            self._open(shard)
        written = 0
        for block in data:
            raw = block.detach().to(spec.dtype).contiguous().reshape(-1).view(torch.uint8).numpy()
            self._file.write(memoryview(raw))  # the buffer itself: no bytes copy
            written += raw.nbytes
        if written != spec.nbytes:  # the header already promised spec.nbytes
            raise RuntimeError(f"writer got {written} bytes for {spec.name}, expected {spec.nbytes}")
        self._next += 1
        if self._next == len(self.order) or self._position(self._next)[1]:
            self._file.close()
            self._file = None

    def close(self) -> None:
        if self._next != len(self.order):
            raise RuntimeError(f"writer closed after {self._next} of {len(self.order)} tensors")
        if len(self.filenames) > 1:
            weight_map = {spec.name: self.filenames[i] for i, shard in enumerate(self.shards) for spec in shard}
            index = {"metadata": {"total_size": self.total_size}, "weight_map": dict(sorted(weight_map.items()))}
            (self.directory / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")

    def _position(self, k: int) -> tuple[int, bool]:
        for shard, specs in enumerate(self.shards):
            if k < len(specs):
                return shard, k == 0
            k -= len(specs)
        raise IndexError(k)

    def _open(self, shard: int) -> None:
        header: dict = {"__metadata__": self.metadata}
        offset = 0
        for spec in self.shards[shard]:
            header[spec.name] = {"dtype": DTYPE_CODES[spec.dtype], "shape": list(spec.shape),
                                 "data_offsets": [offset, offset + spec.nbytes]}
            offset += spec.nbytes
        blob = json.dumps(header, separators=(",", ":")).encode()
        blob += b" " * (-len(blob) % 8)  # the format allows trailing spaces; 8-byte alignment of the data
        self._file = open(self.directory / self.filenames[shard], "wb")
        self._file.write(struct.pack("<Q", len(blob)) + blob)
