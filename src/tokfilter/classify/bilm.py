"""The biLM token classifier (PAPER.md, "Cheap classifier"): a forward and a backward causal LM plus a small head.

Both directions are `tokfilter.model.GPT`s. The backward model is trained and run on *reversed* token sequences (the
authors' research code forgot this): a row of L real tokens x_0..x_{L-1} is reversed to x_{L-1}..x_0 (padding stays
at the end, so causal attention never sees it), run through the backward GPT, and its outputs are reversed back. So
at position t the forward feature has read x_0..x_t, the backward feature has read x_t..x_{L-1}, and the backward
LM's output at t predicts the *previous* token x_{t-1} (`previous_token_logits`).

Features of a token = the chosen residual-stream layers of both directions (each RMS-normalised, without a gain, so
layers of different scale mix), concatenated. Heads: `linear` (the paper's logistic probe), `mlp`, or `conv` (a
1-D convolution over neighbouring positions' features, then a linear layer: the cheap way to let a token's decision
use its neighbours' bidirectional features). Training, in `train_bilm`:
  1. pretrain both LMs on the mixed corpus (next-token loss forward, previous-token loss backward);
  2. either fit a logistic probe on frozen features (`probe="frozen"`, layer sweep by validation F1), or fine-tune
     everything end to end with BCE on the token labels (`probe="finetune"`), keeping a small LM loss so the
     features stay language-model features.
`forward` kind = the same pipeline with the forward LM only (the forward-only baseline).

Measured on the demo exact-span benchmark (docs/benchmarks.md "classifier"; 2 cores): see train.py's BUDGETS.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tokfilter.classify.data import TokenDoc, TokenWindowSampler, pad_rows, window_plan
from tokfilter.classify.interface import check_ids, load_tokenizer_copy
from tokfilter.classify.segments import boundary_tables, sentence_segments
from tokfilter.classify.settings import SCORINGS  # BiLMClassifier.scoring: see `score_sentence_min`
from tokfilter.config import from_dict
from tokfilter.filtering import IGNORE_INDEX
from tokfilter.model import GPT, GPTConfig
from tokfilter.train.optim import lr_factor

BATCH_ROWS = 16  # scoring batch: always exactly this many rows of seq_len tokens, so results never depend on grouping


@dataclass
class BiLMConfig:
    vocab_size: int = 4096
    seq_len: int = 128
    n_layer: int = 2
    d_model: int = 96
    n_head: int = 4
    directions: str = "both"  # "both" (biLM) or "forward" (forward-only baseline)
    layers: list[int] = field(default_factory=lambda: [-1])  # indices into GPT.hidden_states (0 = embeddings)
    head: str = "linear"  # linear | mlp | conv
    head_hidden: int = 64
    conv_kernel: int = 9
    pad_id: int = 0

    def gpt(self) -> GPTConfig:
        return GPTConfig(vocab_size=self.vocab_size, n_layer=self.n_layer, n_head=self.n_head,
                         d_model=self.d_model, seq_len=self.seq_len)

    @property
    def n_directions(self) -> int:
        return 2 if self.directions == "both" else 1

    @property
    def feature_dim(self) -> int:
        return self.n_directions * len(self.layers) * self.d_model

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "biLM config") -> BiLMConfig:
        """From a saved classifier's config; an unknown key or a wrong type is a UserError."""
        return from_dict(cls, d, where)


def reverse_valid(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first lengths[b] positions of every row along dim 1; positions beyond stay in place.
    Its own inverse. x: (B, T, ...)."""
    B, T = x.shape[:2]
    t = torch.arange(T, device=x.device).expand(B, T)
    L = lengths.to(x.device).view(B, 1)
    index = torch.where(t < L, L - 1 - t, t)
    if x.dim() > 2:
        index = index.view(B, T, *([1] * (x.dim() - 2))).expand_as(x)
    return torch.gather(x, 1, index)


def valid_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    return torch.arange(T, device=lengths.device).view(1, T) < lengths.view(-1, 1)


class Head(nn.Module):
    def __init__(self, cfg: BiLMConfig):
        super().__init__()
        self.kind = cfg.head
        F_in = cfg.feature_dim
        if cfg.head == "linear":
            self.out = nn.Linear(F_in, 1)
        elif cfg.head == "mlp":
            self.hidden = nn.Linear(F_in, cfg.head_hidden)
            self.out = nn.Linear(cfg.head_hidden, 1)
        elif cfg.head == "conv":
            self.conv = nn.Conv1d(F_in, cfg.head_hidden, cfg.conv_kernel, padding=cfg.conv_kernel // 2)
            self.out = nn.Linear(cfg.head_hidden, 1)
        else:
            raise ValueError(f"unknown head {cfg.head!r} (linear, mlp or conv)")

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """feats (B, T, F) with padding positions zeroed -> logits (B, T)."""
        if self.kind == "linear":
            return self.out(feats).squeeze(-1)
        if self.kind == "mlp":
            return self.out(F.gelu(self.hidden(feats))).squeeze(-1)
        h = F.gelu(self.conv(feats.transpose(1, 2))).transpose(1, 2)
        return self.out(h).squeeze(-1)

    def flops_per_token(self) -> float:
        return 2.0 * sum(p.numel() for p in self.parameters() if p.dim() > 1)


class BiLM(nn.Module):
    """Forward GPT (+ backward GPT on reversed rows) + token-classification head."""

    def __init__(self, cfg: BiLMConfig):
        super().__init__()
        self.config = cfg
        self.fwd = GPT(cfg.gpt())
        self.bwd = GPT(cfg.gpt()) if cfg.directions == "both" else None
        self.head = Head(cfg)

    def lms(self) -> list[GPT]:
        return [self.fwd] if self.bwd is None else [self.fwd, self.bwd]

    def _select(self, hidden: list[torch.Tensor]) -> list[torch.Tensor]:
        return [F.rms_norm(hidden[i], (hidden[i].size(-1),)) for i in self.config.layers]

    def all_features(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Every residual-stream layer, RMS-normalised, of the forward and (aligned) backward model."""
        fwd = [F.rms_norm(h, (h.size(-1),)) for h in self.fwd.hidden_states(x)]
        bwd = []
        if self.bwd is not None:
            hidden = self.bwd.hidden_states(reverse_valid(x, lengths))
            bwd = [reverse_valid(F.rms_norm(h, (h.size(-1),)), lengths) for h in hidden]
        return fwd, bwd

    def features(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, feature_dim): chosen layers of the forward model at t (read x_0..x_t) and of the backward model at
        t (read x_t..x_{L-1}); zero at padding positions."""
        parts = self._select(self.fwd.hidden_states(x))
        if self.bwd is not None:
            hidden = self.bwd.hidden_states(reverse_valid(x, lengths))
            parts += [reverse_valid(h, lengths) for h in self._select(hidden)]
        feats = torch.cat(parts, dim=-1)
        return feats * valid_mask(lengths, x.size(1)).unsqueeze(-1).to(feats.dtype)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Token logits (B, T) of p(forget)."""
        return self.head(self.features(x, lengths))

    def lm_losses(self, x: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """[forward next-token loss, backward previous-token loss] on the valid positions of each row."""
        T = x.size(1)
        valid = valid_mask(lengths, T)
        targets = torch.full_like(x, IGNORE_INDEX)
        targets[:, :-1] = torch.where(valid[:, 1:], x[:, 1:], IGNORE_INDEX)
        losses = [self.fwd(x, targets)]
        if self.bwd is not None:
            xr = reverse_valid(x, lengths)
            targets_r = torch.full_like(x, IGNORE_INDEX)
            targets_r[:, :-1] = torch.where(valid[:, 1:], xr[:, 1:], IGNORE_INDEX)
            losses.append(self.bwd(xr, targets_r))
        return losses

    @torch.no_grad()
    def previous_token_logits(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Backward LM logits aligned to the original order: row t is its distribution over x_{t-1}."""
        return reverse_valid(self.bwd(reverse_valid(x, lengths)), lengths)

    # ----- bookkeeping -----

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self) -> float:
        """Inference FLOPs per scored token: every weight matrix but the (unused) LM head, causal attention over
        seq_len/2 positions on average, the head; x2 for the half-overlapping scoring windows."""
        cfg = self.config
        per_lm = 2.0 * (cfg.n_layer * 12 * cfg.d_model**2) + 2.0 * cfg.n_layer * cfg.seq_len * cfg.d_model
        return 2.0 * (cfg.n_directions * per_lm + self.head.flops_per_token())

    def param_groups(self, weight_decay: float = 0.0) -> list[dict]:
        groups = []
        for lm in self.lms():
            groups += lm.param_groups(weight_decay)
        groups.append({"params": list(self.head.parameters()), "lr_mult": 1.0, "weight_decay": 0.0, "name": "head"})
        return groups


# ----- batches -----

def to_batch(rows: Sequence[TokenDoc], cfg: BiLMConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x, lengths = pad_rows([r.ids for r in rows], cfg.seq_len, cfg.pad_id)
    y, _ = pad_rows([r.labels for r in rows], cfg.seq_len, 0, dtype=np.float32)
    return torch.from_numpy(x), torch.from_numpy(lengths), torch.from_numpy(y)


# ----- training -----

def run_steps(model: BiLM, sampler: TokenWindowSampler, steps: int, batch_size: int, lr: float,
              loss_fn: Callable[[BiLM, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
              params: list[dict] | None = None, max_seconds: float | None = None, log: Callable | None = None,
              warmup_frac: float = 0.1) -> dict:
    """AdamW (0.9, 0.95) with the pretraining loop's warmup + cosine schedule (to 0.1x) and muP multipliers,
    gradient clipping at 1.0; stops early after `max_seconds` (the schedule then ends abruptly). Returns stats."""
    groups = params if params is not None else model.param_groups()
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))
    model.train()
    start, losses, done = time.perf_counter(), [], 0
    for step in range(steps):
        factor = lr_factor(step / max(steps, 1), warmup_frac, 0.1)
        for group in optimizer.param_groups:
            group["lr"] = lr * factor * group.get("lr_mult", 1.0)
        x, lengths, y = to_batch(sampler.sample(batch_size), model.config)
        loss = loss_fn(model, x, lengths, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        done = step + 1
        if log and (step % 50 == 0 or step == steps - 1):
            log(f"step {step}/{steps} loss {np.mean(losses[-50:]):.4f}")
        if max_seconds is not None and time.perf_counter() - start > max_seconds:
            break
    model.eval()
    return {"steps": done, "seconds": round(time.perf_counter() - start, 2),
            "final_loss": round(float(np.mean(losses[-20:])), 4) if losses else None,
            "tokens": done * batch_size * model.config.seq_len}


def lm_loss(model: BiLM, x, lengths, y) -> torch.Tensor:
    return sum(model.lm_losses(x, lengths))


def bce_loss(model: BiLM, x: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor, lm_weight: float = 0.0,
             pos_weight: float = 1.0) -> torch.Tensor:
    logits = model(x, lengths)
    mask = valid_mask(lengths, x.size(1)).float()
    weight = mask * torch.where(y > 0.5, pos_weight, 1.0)
    loss = (F.binary_cross_entropy_with_logits(logits, y, reduction="none") * weight).sum() / weight.sum()
    if lm_weight:
        loss = loss + lm_weight * sum(model.lm_losses(x, lengths))
    return loss


# ----- scoring -----

def _row_probabilities(model: BiLM, rows: list[np.ndarray], batch_rows: int, length: int) -> np.ndarray:
    """p(forget) of a batch of exactly `batch_rows` rows of `length` tokens (`rows` right-padded, empty rows added),
    on the model's device (bf16 autocast on CUDA): a fixed shape, so a row's numbers never depend on the others."""
    device = next(model.parameters()).device
    rows = rows + [np.zeros(0, dtype=np.int64)] * (batch_rows - len(rows))
    x, lengths = pad_rows(rows, length, model.config.pad_id)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logits = model(torch.from_numpy(x).to(device), torch.from_numpy(lengths).to(device))
    return torch.sigmoid(logits.float()).cpu().numpy()


@torch.no_grad()
def score_docs(model: BiLM, docs: Sequence[np.ndarray], batch_rows: int = BATCH_ROWS) -> list[np.ndarray]:
    """p(forget) per token of each document (any length), via the window plan of `classify.data`.

    Every batch holds exactly `batch_rows` rows of seq_len tokens (the last one filled with empty rows), so a
    document's scores are bitwise the same however documents are grouped into calls."""
    cfg = model.config
    model.eval()
    jobs = []  # (doc index, window start, length, owned from, owned to)
    for d, ids in enumerate(docs):
        for s, length, a, b in window_plan(len(ids), cfg.seq_len):
            jobs.append((d, s, length, a, b))
    out = [np.zeros(len(ids), dtype=np.float32) for ids in docs]
    for first in range(0, len(jobs), batch_rows):
        chunk = jobs[first:first + batch_rows]
        rows = [np.asarray(docs[d][s:s + n], dtype=np.int64) for d, s, n, _, _ in chunk]
        probs = _row_probabilities(model, rows, batch_rows, cfg.seq_len)
        for r, (d, s, _, a, b) in enumerate(chunk):
            out[d][a:b] = probs[r, a - s:b - s]
    return out


def _bucket(n: int, seq_len: int) -> int:
    """Row length for a sentence of n <= seq_len tokens: the next power of two from 16, at most seq_len."""
    length = 16
    while length < n:
        length *= 2
    return min(length, seq_len)


@torch.no_grad()
def score_sentences(model: BiLM, segments: Sequence[np.ndarray], batch_rows: int = BATCH_ROWS) -> list[np.ndarray]:
    """p(forget) per token of each segment read on its own. Segments up to seq_len tokens are grouped by padded
    length (16, 32, 64, ... seq_len) into batches of exactly `batch_rows` rows of that length, so a sentence costs
    about its own length and its scores never depend on the other sentences; longer ones go through `score_docs`."""
    cfg = model.config
    out: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * len(segments)
    long = [i for i, ids in enumerate(segments) if len(ids) > cfg.seq_len]
    for i, scores in zip(long, score_docs(model, [segments[i] for i in long], batch_rows)):
        out[i] = scores
    by_length: dict[int, list[int]] = {}
    for i, ids in enumerate(segments):
        if 0 < len(ids) <= cfg.seq_len:
            by_length.setdefault(_bucket(len(ids), cfg.seq_len), []).append(i)
    model.eval()
    for length, members in sorted(by_length.items()):
        for first in range(0, len(members), batch_rows):
            chunk = members[first:first + batch_rows]
            probs = _row_probabilities(model, [np.asarray(segments[i], dtype=np.int64) for i in chunk], batch_rows,
                                       length)
            for r, i in enumerate(chunk):
                out[i] = probs[r, :len(segments[i])]
    return out


def score_sentence_min(model: BiLM, docs: Sequence[np.ndarray], ends: np.ndarray, spaced: np.ndarray,
                       batch_rows: int = BATCH_ROWS) -> list[np.ndarray]:
    """min(window score, score of the token's sentence read alone) per token.

    A token is flagged only when it looks like forget text both in its document and on its own: a biology sentence
    inside a medical answer no longer inherits the answer's verdict (docs/classifiers.md, "Context bleeding"),
    while a medical sentence keeps the lower of its two scores. Costs one more pass over every token (no window
    overlap), so 1.5x the window scorer's FLOPs."""
    context = score_docs(model, docs, batch_rows)
    spans = [(d, a, b) for d, ids in enumerate(docs) for a, b in sentence_segments(ids, ends, spaced)]
    alone = score_sentences(model, [docs[d][a:b] for d, a, b in spans], batch_rows)
    out = [c.copy() for c in context]
    for (d, a, b), scores in zip(spans, alone):
        np.minimum(out[d][a:b], scores, out=out[d][a:b])
    return out


@torch.no_grad()
def collect_features(model: BiLM, rows: Sequence[TokenDoc], batch_rows: int = 32
                     ) -> tuple[list[np.ndarray], np.ndarray]:
    """Per layer index (all of GPT.hidden_states), the (N, n_directions * d) features of every valid token of
    `rows`, and the labels (N,)."""
    cfg = model.config
    per_layer: list[list[np.ndarray]] = []
    labels = []
    for first in range(0, len(rows), batch_rows):
        x, lengths, y = to_batch(rows[first:first + batch_rows], cfg)
        fwd, bwd = model.all_features(x, lengths)
        mask = valid_mask(lengths, x.size(1))
        if not per_layer:
            per_layer = [[] for _ in fwd]
        for i in range(len(fwd)):
            parts = [fwd[i]] + ([bwd[i]] if bwd else [])
            per_layer[i].append(torch.cat(parts, dim=-1)[mask].numpy())
        labels.append(y[mask].numpy())
    return [np.concatenate(p) for p in per_layer], np.concatenate(labels)


@torch.no_grad()
def document_features(model: BiLM, docs: Sequence[np.ndarray], batch_rows: int = BATCH_ROWS) -> np.ndarray:
    """(n_docs, feature_dim) mean of the head's input features over each document's tokens (window plan, fixed
    batches, so grouping never changes the numbers)."""
    cfg = model.config
    model.eval()
    jobs = []
    for d, ids in enumerate(docs):
        for s, length, a, b in window_plan(len(ids), cfg.seq_len):
            jobs.append((d, s, length, a, b))
    sums = np.zeros((len(docs), cfg.feature_dim), dtype=np.float64)
    for first in range(0, len(jobs), batch_rows):
        chunk = jobs[first:first + batch_rows]
        rows = [np.asarray(docs[d][s:s + n], dtype=np.int64) for d, s, n, _, _ in chunk]
        rows += [np.zeros(0, dtype=np.int64)] * (batch_rows - len(rows))
        x, lengths = pad_rows(rows, cfg.seq_len, cfg.pad_id)
        feats = model.features(torch.from_numpy(x), torch.from_numpy(lengths)).double().numpy()
        for r, (d, s, _, a, b) in enumerate(chunk):
            sums[d] += feats[r, a - s:b - s].sum(axis=0)
    counts = np.array([max(len(ids), 1) for ids in docs], dtype=np.float64)
    return (sums / counts[:, None]).astype(np.float32)


class BiLMClassifier:
    """The `TokenClassifier` interface over a trained BiLM (kinds "bilm" and "forward").

    `scoring`: "window" (every token scored in its document's half-overlapping windows, the paper's) or
    "sentence-min" (`score_sentence_min`; needs the tokenizer's sentence-boundary tables, `segments.boundary_tables`).
    """

    def __init__(self, model: BiLM, tokenizer_hash: str, kind: str = "bilm", threshold: float = 0.5,
                 scoring: str = "window", boundaries: tuple[np.ndarray, np.ndarray] | None = None):
        if scoring not in SCORINGS:
            raise ValueError(f"unknown scoring {scoring!r} (expected one of {', '.join(SCORINGS)})")
        if scoring == "sentence-min" and boundaries is None:
            raise ValueError("scoring 'sentence-min' needs the tokenizer's sentence-boundary tables")
        self.model = model.eval()
        self.kind = kind
        self.tokenizer_hash = tokenizer_hash
        self.threshold = threshold
        self.scoring = scoring
        self.boundaries = boundaries
        self.params = model.num_params()
        # sentence-min adds one pass without window overlap: half the window scorer's count again
        self.flops_per_token = model.flops_per_token() * (1.5 if scoring == "sentence-min" else 1.0)

    @classmethod
    def from_saved(cls, directory: str | Path, config: dict, tensors: dict[str, torch.Tensor]) -> BiLMClassifier:
        model = BiLM(BiLMConfig.from_dict(config["bilm"]))
        model.load_state_dict(tensors)
        scoring = config.get("scoring", "window")
        boundaries = None
        if scoring == "sentence-min":
            boundaries = boundary_tables(load_tokenizer_copy(directory, config))
        return cls(model, config["tokenizer"]["hash"], config["kind"], config.get("threshold", 0.5), scoring,
                   boundaries)

    def settings(self) -> dict:
        """What config.json records besides the weights."""
        return {"bilm": self.model.config.to_dict(), "scoring": self.scoring}

    def tensors(self) -> dict[str, torch.Tensor]:
        return {name: t.detach().cpu() for name, t in self.model.state_dict().items()}

    def to(self, device: str) -> BiLMClassifier:
        """Score on `device` ("cpu" or "cuda"; bf16 autocast on CUDA). Called by `tokfilter annotate --device`."""
        self.model.to(device)
        return self

    def score_tokens(self, ids: np.ndarray) -> np.ndarray:
        return self.score_batch([ids])[0]

    def score_batch(self, docs: list[np.ndarray]) -> list[np.ndarray]:
        docs = [check_ids(ids, self.model.config.vocab_size) for ids in docs]
        with torch.inference_mode():
            if self.scoring == "sentence-min":
                return score_sentence_min(self.model, docs, *self.boundaries)
            return score_docs(self.model, docs)
