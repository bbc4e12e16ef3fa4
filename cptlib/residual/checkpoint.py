"""Hugging Face safetensors model directories, read one tensor at a time: `Checkpoint("path/to/model")`.

A directory holds either `model.safetensors` or `model.safetensors.index.json` plus the shards it names.
Headers are parsed up front (names, shapes, dtypes, offsets), so every shape check runs before any tensor
byte is read; a tensor is then memory-mapped on demand and released when the caller drops it.
"""
from __future__ import annotations

import json
import math
import re
import shutil
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from types import EllipsisType
from typing import Iterator

import torch
from safetensors import SafetensorError, safe_open

from cptlib.core.files import hash_file
from cptlib.core.errors import InputError, MissingInputError
from cptlib.residual.options import EMBED_POLICIES

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
MANIFEST_FILE = "residual_manifest.json"  # what makes a folder a residual directory (cptlib.residual.vector)
LM_HEAD = "lm_head.weight"
CHUNK_ELEMENTS = 1 << 22  # entries per block when streaming a tensor (16 MB in fp32)
# Tensors indexed by vocabulary row: the only ones `embed_policy` may slice or skip.
VOCAB_TENSOR = re.compile(r"(^|\.)(embed_tokens|lm_head|wte|embed_in|embed_out)\.weight$")
# What makes a model chat like the instruct model; copied from the instruct side into every output.
CHAT_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
    "generation_config.json",
)
DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
DTYPE_CODES = {dtype: code for code, dtype in DTYPES.items()}


class ResidualError(InputError):
    """An input the residual engine refuses; the message names the tensor or file and what to do."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    file: Path
    offset: int  # position in its file: reading in this order is sequential on disk


def read_header(file: Path) -> dict[str, TensorInfo]:
    """Names, shapes and dtypes of one safetensors file; a file that does not parse is a `ResidualError`."""
    if not file.is_file():
        raise MissingInputError(f"{file}: safetensors file is missing")
    try:
        # safe_open validates what the raw parse below does not: offsets that overlap or miss the file size.
        with safe_open(file, framework="pt"):
            pass
        with open(file, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
    except (SafetensorError, struct.error, ValueError) as err:
        raise ResidualError(f"{file}: corrupt safetensors file ({err}); re-download or re-save it") from err
    header.pop("__metadata__", None)
    infos = {}
    for name, entry in header.items():
        if entry["dtype"] not in DTYPES:
            raise ResidualError(f"{file}: tensor {name} has unsupported dtype {entry['dtype']}")
        infos[name] = TensorInfo(name, tuple(entry["shape"]), DTYPES[entry["dtype"]], file, entry["data_offsets"][0])
    return infos


class Checkpoint:
    """One model directory: its tensors (in on-disk order), config, and the files beside the weights."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise MissingInputError(f"{self.path}: no such model directory")
        index_path, single_path = self.path / INDEX_FILE, self.path / SINGLE_FILE
        if index_path.is_file():
            try:
                weight_map = json.loads(index_path.read_text())["weight_map"]
            except (ValueError, KeyError) as err:
                raise ResidualError(f"{index_path}: corrupt index ({err!r}); re-download or re-save it") from err
            self.files = [self.path / f for f in dict.fromkeys(weight_map.values())]
        elif single_path.is_file():
            weight_map, self.files = None, [single_path]
        else:
            raise MissingInputError(
                f"{self.path}: neither {SINGLE_FILE} nor {INDEX_FILE}; only safetensors checkpoints are read "
                "(re-save a pytorch_model.bin model with save_pretrained(..., safe_serialization=True))"
            )
        infos: dict[str, TensorInfo] = {}
        for file in self.files:
            for name, info in read_header(file).items():
                if weight_map is not None and weight_map.get(name) != file.name:
                    raise ResidualError(f"{index_path}: tensor {name} is in {file.name} but the index says "
                                        f"{weight_map.get(name)}; the index is stale, re-save the model")
                infos[name] = info
        if weight_map is not None and (missing := sorted(set(weight_map) - set(infos))):
            raise ResidualError(f"{index_path}: the index lists {missing[:3]} but no shard holds them")
        order = {file: i for i, file in enumerate(self.files)}
        self.tensors = dict(sorted(infos.items(), key=lambda kv: (order[kv[1].file], kv[1].offset)))
        config_path = self.path / "config.json"
        try:
            self.config = json.loads(config_path.read_text()) if config_path.is_file() else {}
        except (UnicodeDecodeError, ValueError) as err:
            raise ResidualError(f"{config_path}: not valid JSON ({err}); re-download or re-save the model") from None
        if not isinstance(self.config, dict):
            raise ResidualError(f"{config_path}: a model config is a JSON object, got {type(self.config).__name__}; "
                                "re-download or re-save the model")
        self.tied = self._tied_embeddings()

    def _tied_embeddings(self) -> bool:
        """True when lm_head is stored as embed_tokens (no lm_head tensor); a config that disagrees is an error."""
        tied = LM_HEAD not in self.tensors
        if tied and self.config.get("tie_word_embeddings") is False:
            raise ResidualError(f"{self.path}: config.json says tie_word_embeddings=false but there is no "
                                f"{LM_HEAD} tensor; the checkpoint is incomplete")
        return tied

    @property
    def names(self) -> list[str]:
        return list(self.tensors)

    def get(self, name: str) -> torch.Tensor:
        """The tensor as stored; memory-mapped, so untouched pages cost nothing and are freed with the tensor."""
        with safe_open(self.tensors[name].file, framework="pt") as f:
            return self._finite(name, f.get_tensor(name))

    def _finite(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        """Every read goes through here: a NaN or inf in a stored weight (a damaged file whose header still parses)
        would otherwise flow into a residual, a norm or a restored model as NaN, and the run would succeed."""
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ResidualError(f"{self.tensors[name].file}: tensor {name} holds NaN or inf; the file is damaged: "
                                "re-download or re-save the model")
        return tensor

    def chunks(self, name: str, stop: int | None = None) -> Iterator[tuple[slice | EllipsisType, torch.Tensor]]:
        """(rows, block) over the first `stop` rows of a tensor, in blocks of about CHUNK_ELEMENTS entries.

        Each block is mapped through its own safe_open handle: pages touched through a mapping count as
        resident until it is unmapped, so one handle per tensor would keep the whole tensor resident.
        Blocks depend on the shape only, so two tensors of one shape and any dtypes chunk alike.
        """
        info = self.tensors[name]
        if not info.shape:
            yield ..., self.get(name)
            return
        rows = info.shape[0] if stop is None else stop
        step = max(1, CHUNK_ELEMENTS // max(1, math.prod(info.shape[1:])))
        for start in range(0, rows, step):
            with safe_open(info.file, framework="pt") as f:
                block = slice(start, min(start + step, rows))
                yield block, self._finite(name, f.get_slice(name)[block])

    def nbytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)

    def copy_config(self, dest: Path) -> None:
        if (self.path / "config.json").is_file():
            shutil.copy2(self.path / "config.json", dest / "config.json")


def copy_chat_files(src: Path, dest: Path) -> list[str]:
    """Tokenizer, chat template and generation config: what makes the output chat like the instruct model."""
    copied = [name for name in CHAT_FILES if (src / name).is_file()]
    for name in copied:
        shutil.copy2(src / name, dest / name)
    return copied


class BackgroundHashes:
    """{source: {file: sha256}}, computed on a daemon thread while tensors stream (hashlib releases the GIL,
    so on 2 cores provenance costs little wall time; a failed run exits without waiting for it)."""

    def __init__(self, sources: dict[str, list[Path]]):
        self._result: dict | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(sources,), daemon=True)
        self._thread.start()

    def _run(self, sources: dict[str, list[Path]]) -> None:
        try:
            self._result = {key: {f.name: hash_file(f) for f in files} for key, files in sources.items()}
        except BaseException as err:  # re-raised in the caller's thread by result()
            self._error = err

    def result(self) -> dict[str, dict[str, str]]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result




def match_tensors(a: dict[str, tuple[int, ...]], b: dict[str, tuple[int, ...]], labels: tuple[str, str],
                  embed_policy: str = "error") -> dict[str, str]:
    """For each tensor name, "same", "slice" or "skip" (vocabulary rows differ, by `embed_policy`).

    Different name sets and different shapes are errors that name the tensors; so is a vocabulary difference
    under embed_policy="error". Tied vs untied embeddings get their own message: it is the common cause.
    """
    if embed_policy not in EMBED_POLICIES:
        raise InputError(f"embed policy {embed_policy!r}: choose one of {', '.join(EMBED_POLICIES)}")
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if LM_HEAD in only_a or LM_HEAD in only_b:
        untied, tied = labels if LM_HEAD in only_a else labels[::-1]
        raise ResidualError(f"{untied} has a separate {LM_HEAD} (untied embeddings) but {tied} ties it to "
                            "embed_tokens; a residual moves only between models that tie alike")
    if only_a or only_b:
        raise ResidualError(f"tensor names differ: only in {labels[0]}: {only_a[:5]}{' …' * (len(only_a) > 5)}; "
                            f"only in {labels[1]}: {only_b[:5]}{' …' * (len(only_b) > 5)}; are these the same architecture?")
    actions = {}
    for name, shape_a in a.items():
        shape_b = b[name]
        if shape_a == shape_b:
            actions[name] = "same"
            continue
        if not (VOCAB_TENSOR.search(name) and len(shape_a) == len(shape_b) and shape_a[1:] == shape_b[1:]):
            raise ResidualError(f"tensor {name}: shape {list(shape_a)} in {labels[0]} but {list(shape_b)} in "
                                f"{labels[1]}; the models do not share an architecture")
        if embed_policy == "error":
            raise ResidualError(
                f"tensor {name}: {shape_a[0]} vocabulary rows in {labels[0]} but {shape_b[0]} in {labels[1]} "
                f"(shapes {list(shape_a)} and {list(shape_b)}); pass --embed-policy slice to use the "
                f"{min(shape_a[0], shape_b[0])} shared rows, or --embed-policy skip to leave this tensor out")
        actions[name] = embed_policy
    return actions
