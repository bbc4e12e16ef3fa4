"""The testbed tokenizer: byte-level BPE trained offline with `tokenizers`, saved as a normal HF directory.

Byte-level so that any generated text decodes back exactly (IFEval checks commas, quotes, JSON, newlines),
and BPE so that the testbed's small word list ends up as mostly one token per word.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from cptlib.chat_format import BOS, CHAT_TEMPLATE, EOS, PAD, ROLE_TOKENS, SPECIAL_TOKENS
from cptlib.core.errors import MissingInputError


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts`; deterministic for a given text order."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=ROLE_TOKENS,
        model_max_length=4096,
        clean_up_tokenization_spaces=False,
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def save_tokenizer(tok: PreTrainedTokenizerFast, out_dir: Path) -> None:
    """Save as a HF directory that transformers 4.x loads too (v5 writes `TokenizersBackend` as the class)."""
    tok.save_pretrained(out_dir)
    config_path = Path(out_dir) / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def load_tokenizer(path: Path) -> PreTrainedTokenizerFast:
    """Load offline from a local directory (never a hub id)."""
    if not (Path(path) / "tokenizer.json").is_file():
        raise MissingInputError(f"no tokenizer.json in {path}: pass a model directory saved with its tokenizer (a "
                                "cptlib stage, a released ancestor in models/, or save_pretrained of model and tokenizer)")
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
