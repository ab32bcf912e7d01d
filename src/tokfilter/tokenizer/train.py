"""Train a byte-level BPE tokenizer on a corpus with the `tokenizers` library.

The result always has `<|endoftext|>` (document separator) and `<|hidden|>` (what token removal writes in place of
a forget token) as special tokens, and round-trips any text byte-exactly (byte-level alphabet, no normalization).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokfilter.atomic import write_text
from tokfilter.errors import UserError
from tokfilter.tokenizer.core import EOT_TOKEN, HIDDEN_TOKEN, HFTokenizer


def train_tokenizer(texts: Iterable[str], vocab_size: int, out: str | Path, min_frequency: int = 2) -> HFTokenizer:
    """Train byte-level BPE with `vocab_size` entries (special tokens included) and save it to `out`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < 300:
        raise UserError(f"--vocab-size {vocab_size} is too small for byte-level BPE (needs >= 300)")
    if min_frequency < 0:
        raise UserError(f"--min-frequency must be >= 0, not {min_frequency}")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOT_TOKEN, HIDDEN_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    seen = 0

    def counted(stream: Iterable[str]) -> Iterable[str]:
        nonlocal seen
        for text in stream:
            seen += 1
            yield text

    tokenizer.train_from_iterator(counted(texts), trainer=trainer)
    if seen == 0:
        raise UserError("cannot train a tokenizer on an empty corpus")
    write_text(out, tokenizer.to_str())
    return HFTokenizer(out)
