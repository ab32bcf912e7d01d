"""One tokenizer interface over Hugging Face `tokenizers` JSON files and `tiktoken` encodings.

Everything downstream (shards, labels, classifiers, models) needs the same four things from a tokenizer: ids,
character offsets (to move char-span labels onto tokens), an end-of-text id that separates documents, and a
`<|hidden|>` id that token removal writes in place of forget tokens. `load_tokenizer(SPEC)` accepts

    path/to/tokenizer.json     a Hugging Face tokenizers file (e.g. one made by `tokfilter tokenizer train`)
    path/to/NAME.tiktoken      a tiktoken ranks file (e.g. ../shared/data/tokenizers/gpt2.tiktoken)
    tiktoken:NAME              a named tiktoken encoding (needs its cache or network)

Special-token strings inside a document are encoded as ordinary text, so a document can never inject an end-of-text.
The tokenizer `hash` (sha256 over the vocabulary file and special ids) is written into shard manifests and
checkpoints; readers refuse data made with another tokenizer.
"""

from tokfilter.tokenizer.core import (
    EOT_TOKEN,
    HIDDEN_TOKEN,
    HFTokenizer,
    TiktokenTokenizer,
    Tokenizer,
    load_tokenizer,
)
from tokfilter.tokenizer.train import train_tokenizer

__all__ = [
    "EOT_TOKEN",
    "HIDDEN_TOKEN",
    "HFTokenizer",
    "TiktokenTokenizer",
    "Tokenizer",
    "load_tokenizer",
    "train_tokenizer",
]
