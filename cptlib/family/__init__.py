"""Where the models come from: the testbed's trained family (build), its released ancestors (ancestors), real
checkpoints by hub id or folder (released), one resolver over the three (resolve), and their commands (cli).

The family's API is importable from here without loading torch until it is used:
`from cptlib.family import build_family, cpt` (the names of cptlib.family.resolve).
"""
import importlib

from cptlib.members import Member

# The family's members, here (not in build) so that the command line can name them without loading torch.
MEMBERS = tuple(Member)
_API = ("build_family", "continue_lm", "cpt", "instruct", "pretrain", "size_members", "testbed_data",
        "tokenizer_stage", "train_family", "train_size", "with_size")


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module("cptlib.family.resolve"), name)
    raise AttributeError(f"module 'cptlib.family' has no attribute {name!r}")
