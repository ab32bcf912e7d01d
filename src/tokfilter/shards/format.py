"""The token shard format (a DESIGN.md contract) and its reader.

A shard directory holds `manifest.json` and, per shard `NNNNN`:

    NNNNN.tokens.npy          uint16 / uint32 token ids; every document ends with one end-of-text (eot) token
    NNNNN.docs.npy            uint64 exclusive end offset of each document (its eot included): doc i = [e[i-1], e[i])
    NNNNN.meta.jsonl          one JSON object per document: {"id", "domain", ...source metadata}
    NNNNN.scores.NAME.npy     float16 p(forget) per token, same length as tokens (written by `tokfilter annotate`)

The manifest records the format name and version, the tokenizer (spec, sha256 hash, eot and hidden ids, a copy of
its file), the dtype, counts and a sha256 per shard file. Scores are stored, never thresholds, so any threshold,
noise level or delay is applied at load time without re-annotating.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import numpy as np

from tokfilter.errors import UserError

FORMAT_NAME = "tokfilter-shards"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def shard_name(index: int) -> str:
    return f"{index:05d}"


def tokens_file(index: int) -> str:
    return f"{shard_name(index)}.tokens.npy"


def docs_file(index: int) -> str:
    return f"{shard_name(index)}.docs.npy"


def meta_file(index: int) -> str:
    return f"{shard_name(index)}.meta.jsonl"


def scores_file(index: int, name: str) -> str:
    return f"{shard_name(index)}.scores.{name}.npy"


def load_npy(path: Path, mmap: bool = True) -> np.ndarray:
    """Load a .npy file without pickles; a missing or unreadable file is a UserError naming it."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"{path}: missing shard file") from None
    except (ValueError, OSError) as err:
        raise UserError(f"{path}: unreadable .npy file ({err})") from None


class ShardSet:
    """Read-only view of a shard directory; arrays are memory-mapped.

    `expect_tokenizer_hash` makes the reader refuse shards made with another tokenizer.
    """

    def __init__(self, directory: str | Path, expect_tokenizer_hash: str | None = None):
        self.dir = Path(directory)
        manifest_path = self.dir / MANIFEST
        if not manifest_path.is_file():
            raise UserError(f"{self.dir}: not a shard directory (no {MANIFEST}; run `tokfilter tokenize` first)")
        try:
            self.manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise UserError(f"{manifest_path}: corrupt manifest ({err})") from None
        if not isinstance(self.manifest, dict) or self.manifest.get("format") != FORMAT_NAME:
            raise UserError(f"{manifest_path}: not a {FORMAT_NAME} manifest")
        if self.manifest.get("version") != FORMAT_VERSION:
            raise UserError(f"{manifest_path}: format version {self.manifest.get('version')} "
                            f"is not supported (expected {FORMAT_VERSION})")
        for key in ("tokenizer", "dtype", "shards", "eot_id", "hidden_id"):
            if key not in self.manifest:
                raise UserError(f"{manifest_path}: manifest lacks '{key}'")
        if expect_tokenizer_hash is not None and expect_tokenizer_hash != self.tokenizer_hash:
            raise UserError(f"{self.dir}: shards were made with another tokenizer "
                            f"(manifest hash {self.tokenizer_hash[:12]}, expected {expect_tokenizer_hash[:12]})")

    @property
    def tokenizer_hash(self) -> str:
        return self.manifest["tokenizer"]["hash"]

    @property
    def eot_id(self) -> int:
        return int(self.manifest["eot_id"])

    @property
    def hidden_id(self) -> int:
        return int(self.manifest["hidden_id"])

    @property
    def vocab_size(self) -> int:
        return int(self.manifest["tokenizer"]["vocab_size"])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.manifest["dtype"])

    @property
    def num_shards(self) -> int:
        return len(self.manifest["shards"])

    @property
    def num_tokens(self) -> int:
        return int(sum(s["tokens"] for s in self.manifest["shards"]))

    @property
    def num_documents(self) -> int:
        return int(sum(s["documents"] for s in self.manifest["shards"]))

    def tokens(self, index: int) -> np.ndarray:
        return load_npy(self.dir / tokens_file(index))

    def doc_ends(self, index: int) -> np.ndarray:
        return load_npy(self.dir / docs_file(index))

    def doc_starts(self, index: int) -> np.ndarray:
        ends = self.doc_ends(index)
        return np.concatenate([[0], ends[:-1]]).astype(np.uint64)

    def doc_meta(self, index: int) -> list[dict]:
        path = self.dir / meta_file(index)
        try:
            return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        except FileNotFoundError:
            raise UserError(f"{path}: missing shard file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise UserError(f"{path}: corrupt document metadata ({err})") from None

    def score_path(self, index: int, name: str) -> Path:
        return self.dir / scores_file(index, name)

    def has_scores(self, name: str) -> bool:
        return all(self.score_path(i, name).is_file() for i in range(self.num_shards))

    def score_names(self) -> list[str]:
        names = {p.name.split(".")[2] for p in self.dir.glob("*.scores.*.npy") if not p.name.startswith(".")}
        return sorted(n for n in names if self.has_scores(n))

    def scores(self, index: int, name: str) -> np.ndarray:
        path = self.score_path(index, name)
        if not path.is_file():
            raise UserError(f"{path}: no '{name}' scores for shard {shard_name(index)} "
                            f"(run `tokfilter annotate --name {name}`)")
        scores = load_npy(path)
        expected = self.manifest["shards"][index]["tokens"]
        if scores.dtype != np.float16 or scores.shape != (expected,):
            raise UserError(f"{path}: scores must be float16 with {expected} values, "
                            f"got {scores.dtype} {tuple(scores.shape)}")
        return scores

    def documents(self, index: int) -> list[tuple[int, int]]:
        """(start, end) token range of each document of shard `index`, eot excluded."""
        ends = self.doc_ends(index).astype(np.int64)
        starts = np.concatenate([[0], ends[:-1]])
        return list(zip(starts.tolist(), (ends - 1).tolist()))

    @cached_property
    def _tokenizer(self):
        from tokfilter.tokenizer import load_tokenizer

        info = self.manifest["tokenizer"]
        spec = info.get("file") or info["spec"]
        tokenizer = load_tokenizer(spec, base_dir=self.dir)
        if tokenizer.hash != self.tokenizer_hash:
            raise UserError(f"{self.dir}: tokenizer {spec} has hash {tokenizer.hash[:12]}, "
                            f"manifest says {self.tokenizer_hash[:12]}")
        return tokenizer

    def tokenizer(self):
        """The tokenizer these shards were made with (from the copy stored beside them)."""
        return self._tokenizer
