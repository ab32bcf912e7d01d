"""`tokfilter shards verify`: check every invariant of a shard directory and name the first violation.

Checked: manifest format/version/keys; the stored tokenizer copy hashes to the manifest's hash (and to a tokenizer
given on the command line); per shard: files present, dtypes, 1-D shapes, lengths equal to the manifest, sha256 of
every file, document end offsets strictly increasing and ending at the token count, exactly one eot per document and
it is the document's last token, token ids below the vocabulary size, one metadata line per document; score sidecars:
float16, one value per token, finite and within [0, 1]; totals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tokfilter.atomic import sha256_file
from tokfilter.errors import UserError
from tokfilter.shards.format import ShardSet, docs_file, load_npy, meta_file, tokens_file


def verify(directory: str | Path, tokenizer_spec: str | None = None, check_hashes: bool = True) -> dict:
    """Raise UserError naming the first violated invariant; return a summary dict when all hold."""
    shards = ShardSet(directory)
    manifest = shards.manifest
    where = Path(directory)
    tokenizer = shards.tokenizer()  # checks the stored copy against the manifest hash
    if tokenizer_spec is not None:
        from tokfilter.tokenizer import load_tokenizer

        given = load_tokenizer(tokenizer_spec)
        if given.hash != shards.tokenizer_hash:
            raise UserError(f"{where}: tokenizer {tokenizer_spec} (hash {given.hash[:12]}) differs from the "
                            f"manifest's ({shards.tokenizer_hash[:12]})")
    if np.dtype(manifest["dtype"]) not in (np.dtype(np.uint16), np.dtype(np.uint32)):
        raise UserError(f"{where}/manifest.json: dtype {manifest['dtype']} is not uint16 or uint32")
    if shards.eot_id != tokenizer.eot_id or shards.hidden_id != tokenizer.hidden_id:
        raise UserError(f"{where}/manifest.json: eot/hidden ids disagree with the tokenizer")
    score_names = sorted({p.name.split(".")[2] for p in where.glob("[0-9]*.scores.*.npy")})
    total_tokens = total_docs = 0
    for index, entry in enumerate(manifest["shards"]):
        tokens_path, docs_path, meta_path = (where / f(index) for f in (tokens_file, docs_file, meta_file))
        tokens = load_npy(tokens_path)
        ends = load_npy(docs_path)
        if tokens.dtype != shards.dtype or tokens.ndim != 1:
            raise UserError(f"{tokens_path}: expected 1-D {shards.dtype}, got {tokens.ndim}-D {tokens.dtype}")
        if ends.dtype != np.uint64 or ends.ndim != 1:
            raise UserError(f"{docs_path}: expected 1-D uint64, got {ends.ndim}-D {ends.dtype}")
        if len(tokens) != entry["tokens"]:
            raise UserError(f"{tokens_path}: {len(tokens)} tokens, manifest says {entry['tokens']}")
        if len(ends) != entry["documents"]:
            raise UserError(f"{docs_path}: {len(ends)} documents, manifest says {entry['documents']}")
        if check_hashes:
            for kind, path in (("tokens", tokens_path), ("docs", docs_path), ("meta", meta_path)):
                if sha256_file(path) != entry["sha256"][kind]:
                    raise UserError(f"{path}: sha256 differs from the manifest (file modified or truncated)")
        if len(ends) == 0 or int(ends[-1]) != len(tokens):
            raise UserError(f"{docs_path}: last document end must equal the token count {len(tokens)}")
        if np.any(np.diff(ends.astype(np.int64)) <= 0) or int(ends[0]) <= 0:
            raise UserError(f"{docs_path}: document end offsets are not strictly increasing")
        eot_positions = np.flatnonzero(tokens == shards.eot_id)
        if len(eot_positions) != len(ends) or np.any(eot_positions != ends.astype(np.int64) - 1):
            raise UserError(f"{tokens_path}: end-of-text tokens do not match document ends")
        if len(tokens) and int(tokens.max()) >= shards.vocab_size:
            raise UserError(f"{tokens_path}: token id {int(tokens.max())} >= vocabulary size {shards.vocab_size}")
        lines = meta_path.read_bytes().count(b"\n")
        if lines != len(ends):
            raise UserError(f"{meta_path}: {lines} metadata lines for {len(ends)} documents")
        for name in score_names:
            scores = shards.scores(index, name)
            values = np.asarray(scores, dtype=np.float32)
            if not np.all(np.isfinite(values)) or values.min(initial=0) < 0 or values.max(initial=0) > 1:
                raise UserError(f"{shards.score_path(index, name)}: scores must be finite and within [0, 1]")
        total_tokens += len(tokens)
        total_docs += len(ends)
    if total_tokens != manifest.get("num_tokens", total_tokens) or total_docs != manifest.get("num_documents",
                                                                                                 total_docs):
        raise UserError(f"{where}/manifest.json: totals disagree with the shards")
    return {"shards": shards.num_shards, "documents": total_docs, "tokens": total_tokens, "scores": score_names,
            "tokenizer_hash": shards.tokenizer_hash}
