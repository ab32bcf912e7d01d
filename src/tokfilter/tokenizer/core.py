"""Tokenizer implementations behind one interface (see the package docstring)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tokfilter.atomic import write_bytes
from tokfilter.errors import UserError

EOT_TOKEN = "<|endoftext|>"
HIDDEN_TOKEN = "<|hidden|>"

# Pre-tokenization patterns of the public tiktoken encodings, for loading their ranks from a local file.
R50K_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|"""
    r"""\s+(?!\S)|\s"""
)
KNOWN_TIKTOKEN_FILES = {  # file stem -> (pattern, end-of-text id)
    "gpt2": (R50K_PATTERN, 50256),
    "r50k_base": (R50K_PATTERN, 50256),
    "p50k_base": (R50K_PATTERN, 50256),
    "cl100k_base": (CL100K_PATTERN, 100257),
}


class Tokenizer:
    """Common interface. Subclasses set `kind`, `spec`, `eot_id`, `hidden_id`, `vocab_size` and `hash`."""

    kind: str
    spec: str
    eot_id: int
    hidden_id: int
    vocab_size: int  # rows an embedding table needs: max id + 1, special tokens included
    hash: str

    def encode_ids(self, text: str) -> list[int]:
        raise NotImplementedError

    def encode_batch_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode_ids(text) for text in texts]

    def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Token ids (int64) and character offsets (n, 2) int64 [start, end) into `text`."""
        raise NotImplementedError

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        raise NotImplementedError

    @property
    def id_dtype(self) -> np.dtype:
        return np.dtype(np.uint16) if self.vocab_size <= 2**16 else np.dtype(np.uint32)

    def manifest(self) -> dict:
        """What shard manifests and checkpoints record about this tokenizer."""
        return {"kind": self.kind, "spec": self.spec, "hash": self.hash, "vocab_size": self.vocab_size,
                "eot_id": self.eot_id, "hidden_id": self.hidden_id}

    def save_to(self, directory: str | Path) -> str:
        """Copy the tokenizer file into `directory` (if it has one); returns the spec to load the copy."""
        raise NotImplementedError


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class HFTokenizer(Tokenizer):
    """A Hugging Face `tokenizers` JSON file. Adds `<|hidden|>` (and `<|endoftext|>`) if the file lacks them."""

    kind = "hf"

    def __init__(self, path: str | Path):
        from tokenizers import Tokenizer as RawTokenizer

        self.path = Path(path)
        self.spec = str(path)
        try:
            data = self.path.read_bytes()
            self._tok = RawTokenizer.from_str(data.decode("utf-8"))
        except FileNotFoundError:
            raise UserError(f"{path}: tokenizer file not found") from None
        except Exception as err:
            raise UserError(f"{path}: not a Hugging Face tokenizer.json ({str(err).splitlines()[0]})") from None
        missing = [t for t in (EOT_TOKEN, HIDDEN_TOKEN) if self._tok.token_to_id(t) is None]
        if missing:
            self._tok.add_special_tokens(missing)
        self._tok.encode_special_tokens = True  # special-token strings inside documents stay plain text
        self.eot_id = self._tok.token_to_id(EOT_TOKEN)
        self.hidden_id = self._tok.token_to_id(HIDDEN_TOKEN)
        self.vocab_size = self._tok.get_vocab_size(with_added_tokens=True)
        self.hash = _sha256(data + json.dumps(missing).encode())

    def encode_ids(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch_ids(self, texts: Sequence[str]) -> list[list[int]]:
        # encode_batch_fast (tokenizers >= 0.21) skips the character offsets, which shards do not store
        encode = getattr(self._tok, "encode_batch_fast", self._tok.encode_batch)
        return [enc.ids for enc in encode(list(texts), add_special_tokens=False)]

    def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        enc = self._tok.encode(text, add_special_tokens=False)
        ids = np.asarray(enc.ids, dtype=np.int64)
        offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
        return ids, offsets

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)

    def save_to(self, directory: str | Path) -> str:
        target = Path(directory) / "tokenizer.json"
        if target.resolve() != self.path.resolve():

            write_bytes(target, self.path.read_bytes())
        return target.name


class TiktokenTokenizer(Tokenizer):
    """A tiktoken encoding, by name (`tiktoken:NAME`) or from a local `.tiktoken` ranks file."""

    kind = "tiktoken"

    def __init__(self, spec: str):
        import tiktoken

        self.spec = spec
        self.path: Path | None = None
        if spec.startswith("tiktoken:"):
            name = spec.split(":", 1)[1]
            try:
                base = tiktoken.get_encoding(name)
            except Exception as err:
                raise UserError(f"{spec}: cannot load tiktoken encoding '{name}' ({str(err).splitlines()[0]}); "
                                "offline, pass a local .tiktoken ranks file instead") from None
            ranks, pattern = base._mergeable_ranks, base._pat_str
            eot = base.eot_token
            content_hash = _sha256(name.encode())
        else:
            from tiktoken.load import load_tiktoken_bpe

            self.path = Path(spec)
            if not self.path.is_file():
                raise UserError(f"{spec}: tokenizer file not found")
            try:
                data = self.path.read_bytes()
                ranks = load_tiktoken_bpe(str(self.path))
            except Exception as err:
                raise UserError(f"{spec}: not a tiktoken ranks file ({str(err).splitlines()[0]})") from None
            stem = self.path.name.split(".")[0]
            pattern, eot = KNOWN_TIKTOKEN_FILES.get(stem, (R50K_PATTERN, len(ranks)))
            content_hash = _sha256(data)
        self.eot_id = eot
        self.hidden_id = max(max(ranks.values()), eot) + 1
        self.vocab_size = self.hidden_id + 1
        self._enc = tiktoken.Encoding(
            name=f"tokfilter-{Path(spec).stem}", pat_str=pattern, mergeable_ranks=ranks,
            special_tokens={EOT_TOKEN: self.eot_id, HIDDEN_TOKEN: self.hidden_id},
        )
        self.hash = _sha256(f"{content_hash}:{self.eot_id}:{self.hidden_id}".encode())

    def encode_ids(self, text: str) -> list[int]:
        return self._enc.encode_ordinary(text)

    def encode_batch_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self._enc.encode_ordinary_batch(list(texts), num_threads=1)

    def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        ids = self._enc.encode_ordinary(text)
        token_bytes = [self._enc.decode_single_token_bytes(i) for i in ids]
        return np.asarray(ids, dtype=np.int64), _byte_tokens_to_char_offsets(text, token_bytes)

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        return self._enc.decode([int(i) for i in ids])

    def save_to(self, directory: str | Path) -> str:
        if self.path is None:
            return self.spec
        target = Path(directory) / self.path.name
        if target.resolve() != self.path.resolve():
            shutil.copyfile(self.path, target)
        return target.name


def _byte_tokens_to_char_offsets(text: str, token_bytes: list[bytes]) -> np.ndarray:
    """Character [start, end) of each token from its bytes; a token inside a multi-byte character covers it."""
    encoded = text.encode("utf-8")
    # char index of every byte: bytes that continue a character (0b10xxxxxx) belong to the previous start
    byte_array = np.frombuffer(encoded, dtype=np.uint8)
    is_start = (byte_array & 0xC0) != 0x80
    char_of_byte = np.cumsum(is_start) - 1
    lengths = np.fromiter((len(b) for b in token_bytes), dtype=np.int64, count=len(token_bytes))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    offsets = np.zeros((len(token_bytes), 2), dtype=np.int64)
    if len(token_bytes):
        offsets[:, 0] = char_of_byte[np.minimum(starts, len(encoded) - 1)]
        offsets[:, 1] = char_of_byte[ends - 1] + 1
    return offsets


def load_tokenizer(spec: str | Path, base_dir: str | Path | None = None) -> Tokenizer:
    """Load a tokenizer from a SPEC (see module docstring). A relative path is resolved against `base_dir`."""
    spec = str(spec)
    if spec.startswith("tiktoken:"):
        return TiktokenTokenizer(spec)
    path = Path(spec)
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    if path.suffix == ".tiktoken":
        return TiktokenTokenizer(str(path))
    if path.suffix == ".json" or path.is_file():
        return HFTokenizer(path)
    raise UserError(f"{spec}: tokenizer not found (expected tokenizer.json, a .tiktoken file or tiktoken:NAME)")


def default_tokenizer_spec() -> str:
    """The BPE tokenizer shipped with the package (4096 tokens, trained on the embedded demo corpus)."""
    return str(Path(__file__).parent / "data" / "demo-bpe-4096.json")
