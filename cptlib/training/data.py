"""Training datasets through `datasets`: packed causal-LM sequences and chat SFT examples.

Both are deterministic functions of their files, the tokenizer and a seed.

Tokenized documents are kept in `datasets`' own cache (inside the project, `cptlib.core.paths.use_project_caches`) under a
fingerprint of the files' bytes and the tokenizer's content (`tokenized_docs`): every CPT and SFT stage of the study
replays the same 9M-token era-A corpus, which took ~5 s of one core to tokenize each time. datasets' default
fingerprint of the tokenizing function hashes the tokenizer object, whose state changes once it has been called, so
it missed its own cache and wrote a new copy per stage.
"""
from __future__ import annotations

from pathlib import Path

from datasets import Dataset, concatenate_datasets, load_dataset
from transformers import PreTrainedTokenizerBase

from cptlib.core.files import hash_file, hash_json
from cptlib.core.provenance import library_versions
from cptlib.core.errors import InputError, MissingInputError

# Bump when `_tokenize_docs` changes what it produces: it is part of the cache fingerprint.
TOKENIZE_VERSION = 1


def _load_jsonl(files: list[Path]) -> Dataset:
    missing = [str(f) for f in files if not Path(f).is_file()]
    if missing:
        raise MissingInputError(f"training data not found: {missing}; build the testbed first (`cptlib build`)")
    return load_dataset("json", data_files=[str(f) for f in files], split="train")


def _tokenize_docs(ds: Dataset, tokenizer: PreTrainedTokenizerBase, fingerprint: str | None = None) -> Dataset:
    """Each document becomes its tokens followed by eos (the document boundary the model learns)."""
    eos = tokenizer.eos_token_id

    def encode(batch):
        ids = tokenizer(batch["text"], add_special_tokens=False)["input_ids"]
        return {"input_ids": [x + [eos] for x in ids]}

    return ds.map(encode, batched=True, remove_columns=ds.column_names, desc="tokenize", new_fingerprint=fingerprint)


def docs_fingerprint(files: list[Path], tokenizer: PreTrainedTokenizerBase) -> str | None:
    """What decides `tokenized_docs(files, tokenizer)`: the files' bytes, the tokenizer's full serialized state (a
    fast tokenizer's JSON: vocabulary, merges, normalizer, added tokens), its eos id and the libraries that tokenize.
    None for a tokenizer without a serialized form (datasets then fingerprints the call itself, as before)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    versions = library_versions()
    return hash_json({
        "files": [hash_file(f) for f in files], "tokenizer": hash_json(backend.to_str()), "eos": tokenizer.eos_token_id,
        "tokenize_version": TOKENIZE_VERSION, "libraries": {k: versions[k] for k in ("tokenizers", "transformers", "datasets")},
    })[:32]


def tokenized_docs(files: list[Path], tokenizer: PreTrainedTokenizerBase) -> Dataset:
    """The documents of `files`, each as its tokens followed by eos, from datasets' cache when it holds them."""
    return _tokenize_docs(_load_jsonl(files), tokenizer, docs_fingerprint(files, tokenizer))


def _replay_docs(replay_files: list[Path] | None, tokenizer: PreTrainedTokenizerBase, seed: int) -> Dataset:
    """The era-A documents to replay, tokenized and shuffled (a replay share needs them)."""
    if not replay_files:
        raise InputError("replay_frac > 0 needs replay files (the era-A corpus)")
    return tokenized_docs(replay_files, tokenizer).shuffle(seed=seed)


def _first_tokens(docs: Dataset, target_tokens: int) -> Dataset:
    """The leading documents of `docs` that together hold at least `target_tokens` tokens (reads only those: the
    replay corpus is ~45x what a CPT stage takes from it)."""
    total, n = 0, 0
    for batch in docs.iter(batch_size=256):
        for ids in batch["input_ids"]:
            n += 1
            total += len(ids)
            if total >= target_tokens:
                return docs.select(range(n))
    return docs.select(range(n))


def packed_lm_dataset(
    files: list[Path],
    tokenizer: PreTrainedTokenizerBase,
    seq_len: int,
    seed: int,
    replay_files: list[Path] | None = None,
    replay_frac: float = 0.0,
) -> Dataset:
    """Shuffle documents, concatenate, cut into `seq_len` blocks (the run_clm recipe).

    With `replay_frac` > 0, documents from `replay_files` are mixed in so that they make up about that
    share of all tokens (era-A replay during CPT).
    """
    docs = tokenized_docs(files, tokenizer)
    if replay_frac > 0:
        main_tokens = sum(len(x) for x in docs["input_ids"])
        wanted = int(main_tokens * replay_frac / (1 - replay_frac))
        docs = concatenate_datasets([docs, _first_tokens(_replay_docs(replay_files, tokenizer, seed), wanted)])
    docs = docs.shuffle(seed=seed)

    def group(batch):
        flat = [t for ids in batch["input_ids"] for t in ids]
        n = len(flat) // seq_len * seq_len
        return {"input_ids": [flat[i : i + seq_len] for i in range(0, n, seq_len)]}

    packed = docs.map(group, batched=True, batch_size=2000, desc="pack")
    if len(packed) == 0:
        raise InputError(f"corpus {files} holds fewer than seq_len={seq_len} tokens")
    return packed


def sft_dataset(
    file: Path,
    tokenizer: PreTrainedTokenizerBase,
    max_len: int,
    seed: int,
    replay_files: list[Path] | None = None,
    replay_frac: float = 0.0,
) -> Dataset:
    """Chat conversations through the tokenizer's chat template; loss on assistant tokens only.

    `replay_frac` > 0 mixes in plain era-A documents (all tokens trained, cut to `max_len`) so SFT forgets
    less of pre-training.
    """
    convs = _load_jsonl([file])

    def encode(example):
        out = tokenizer.apply_chat_template(
            example["messages"], tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        ids, mask = out["input_ids"], out["assistant_masks"]
        return {"input_ids": ids, "labels": [t if m else -100 for t, m in zip(ids, mask)]}

    ds = convs.map(encode, remove_columns=convs.column_names, desc="chat template")
    longest = max(len(x) for x in ds["input_ids"])
    if longest > max_len:
        n_long = sum(len(x) > max_len for x in ds["input_ids"])
        raise InputError(
            f"{n_long} conversations in {file} are longer than sft.max_len={max_len} tokens "
            f"(longest {longest}); raise sft.max_len in the profile"
        )
    if replay_frac > 0:
        docs = _replay_docs(replay_files, tokenizer, seed)
        n = min(len(docs), round(len(ds) * replay_frac / (1 - replay_frac)))
        bos = tokenizer.bos_token_id
        docs = docs.select(range(n)).map(
            lambda ex: {"input_ids": [bos, *ex["input_ids"]][:max_len], "labels": [bos, *ex["input_ids"]][:max_len]}
        )
        ds = concatenate_datasets([ds, docs])
    ds = ds.map(lambda ex: {"attention_mask": [1] * len(ex["input_ids"])})
    return ds.shuffle(seed=seed)
