"""Shared fixtures: a tiny corpus, tokenizer and model built in seconds, independent of the testbed.

`make test` runs the suite in one pytest-xdist worker per core (`-n 2 --dist loadfile`). Each worker then trains
and evaluates with one torch thread (CPTLIB_TORCH_THREADS, which the notebooks and processes the tests start
inherit): two workers with two threads each would wait on each other's busy core. A run without xdist (`pytest
tests/x.py`) uses one thread too: one and two threads give the same weights bit for bit for the models
tests/test_pool.py trains, but not for every model — the smoke release's `sizes/mini/instruct_v1` rebuilt with two
threads differs in its last bits from the committed one, which a one-thread rebuild matches (tests/test_ancestors.py,
2026-12-08), so a test that compares bits must not depend on how it was started.
"""
import json
import os
import random

import pytest

from cptlib.core.paths import use_project_caches

use_project_caches()  # the suite is an entry point: library caches inside the project, before any library import

from cptlib.tokenizer import save_tokenizer, train_tokenizer  # noqa: E402

for var in ("CPTLIB_TORCH_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # before any test module imports torch
    os.environ.setdefault(var, "1")

WORDS = "the a of in for and city company born works founded makes chief engineer north river stone".split()


def write_corpus(path, n_docs: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(n_docs):
            f.write(json.dumps({"text": " ".join(rng.choice(WORDS) for _ in range(40)) + "."}) + "\n")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """corpus.jsonl (200 docs) + a BPE tokenizer trained on it, in one directory."""
    root = tmp_path_factory.mktemp("tiny")
    write_corpus(root / "corpus.jsonl", 200, seed=0)
    write_corpus(root / "replay.jsonl", 50, seed=1)
    tok = train_tokenizer((json.loads(line)["text"] for line in open(root / "corpus.jsonl")), vocab_size=320)
    save_tokenizer(tok, root / "tokenizer")
    return root
