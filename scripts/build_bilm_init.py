"""Pretrain the biLM's two language models once on broad real text and ship them as the classifiers' starting point.

Why: the demos' biLM learns its language model from the classifier's own training documents only (a few hundred
thousand tokens of nine sources), so it learns those sources' registers more than medicine, and misses medical
clauses written in a news or encyclopaedia voice (docs/classifiers.md). The paper pretrains its biLM on ~50/50 domain
and web text. This script does that at CPU scale: both directions (next-token forward, previous-token backward on the
reversed text) on every corpus in ../shared/data, each source capped so no single register dominates, *minus* every
document that shares a sentence with the embedded demo corpus (any split) or the natural-text dev set. So no
document a demo pretrains on, validates or tests with, and no dev-set document, is in the init; the classifier
still learns what is forget only from its labelled training part. Only LM weights are written (no head, no labels).

    python scripts/build_bilm_init.py --data ../shared/data --out src/tokfilter/classify/pretrained

writes OUT/lm.safetensors (float16 copies of both GPTs' weights, `fwd.*` / `bwd.*`) and OUT/lm.json (architecture,
the packaged tokenizer's hash, the sources with document / word counts, steps, tokens, final losses, seconds).
Deterministic for a given data folder, seed and torch build (CPU).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from tokfilter.atomic import atomic_path, write_json
from tokfilter.classify import bilm as B
from tokfilter.classify.data import TokenDoc, TokenWindowSampler
from tokfilter.classify.devset import load_devset
from tokfilter.classify.settings import budget_settings
from tokfilter.classify.train import pretrain_bilm
from tokfilter.corpus import read_corpus
from tokfilter.corpus.demo import load_demo
from tokfilter.labels.coarse import sentence_bounds
from tokfilter.tokenizer import load_tokenizer
from tokfilter.tokenizer.core import default_tokenizer_spec

SOURCES = ["pubmedqa_abstracts", "medquad_answers", "hpo_definitions", "patient_reviews", "go_definitions",
           "biology_textbooks", "bbc_news", "brown", "wikitext2_articles"]
WORDS_PER_SOURCE = 700_000  # MedQuAD alone has 3.4M words: capped, every source weighs at most this much
_NON_ALNUM = re.compile(r"[^a-z0-9]")


def sentence_keys(text: str) -> set[str]:
    """Sentences reduced to lower-case letters and digits (so WikiText's detokenised copy matches its raw form);
    sentences shorter than 25 such characters are too common to identify a document and are left out."""
    keys = (_NON_ALNUM.sub("", text[a:b].lower()) for a, b in sentence_bounds(text))
    return {k for k in keys if len(k) >= 25}


def banned_sentences() -> set[str]:
    """Every sentence of the embedded demo corpus (all splits) and of the natural-text dev set."""
    banned: set[str] = set()
    for doc in load_demo():
        banned |= sentence_keys(doc.text)
    documents, _ = load_devset()
    for doc in documents:
        banned |= sentence_keys(doc.text)
    return banned


def gather(data: Path, seed: int) -> tuple[list[str], list[dict]]:
    """Texts for LM pretraining (shuffled per source, capped) and one summary row per source."""
    banned = banned_sentences()
    texts, summary = [], []
    for name in SOURCES:
        docs = list(read_corpus(str(data / "corpora" / f"{name}.jsonl.gz")))
        random.Random(f"{seed}:{name}").shuffle(docs)
        kept, words, excluded = [], 0, 0
        for doc in docs:
            if words >= WORDS_PER_SOURCE:
                break
            if sentence_keys(doc.text) & banned:
                excluded += 1
                continue
            kept.append(doc.text.replace("<unk>", "").strip() if name == "wikitext2_articles" else doc.text)
            words += len(doc.text.split())
        texts.extend(kept)
        summary.append({"source": name, "documents": len(kept), "words": words, "excluded_overlap": excluded})
        print(f"{name}: {len(kept):,} documents, {words:,} words ({excluded:,} skipped: share a sentence with the "
              "demo corpus or the dev set)", file=sys.stderr, flush=True)
    return texts, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data", type=Path)
    parser.add_argument("--out", default="src/tokfilter/classify/pretrained", type=Path)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (args.data / "corpora").is_dir():
        sys.exit(f"error: {args.data}/corpora not found (pass --data ../shared/data)")
    tokenizer = load_tokenizer(default_tokenizer_spec())
    texts, summary = gather(args.data, args.seed)
    docs = [TokenDoc(str(i), ids, np.zeros(len(ids), np.float32)) for i, t in enumerate(texts)
            if len(ids := np.asarray(tokenizer.encode(t)[0], dtype=np.int64)) > 1]
    total = sum(len(d.ids) for d in docs)
    print(f"{len(docs):,} documents, {total:,} tokens", file=sys.stderr, flush=True)
    # the classifiers' own LM pretraining (train.pretrain_bilm), at the default biLM size, on the broad text
    settings = budget_settings("quick", {"pretrain_steps": args.steps, "batch_size": args.batch_size, "lr": args.lr})
    t0 = time.perf_counter()
    model, stats = pretrain_bilm(docs, tokenizer, settings, seed=args.seed,
                                 log=lambda m: print(m, file=sys.stderr, flush=True))
    cfg = model.config
    with torch.no_grad():  # the LM losses of each direction on 64 other windows of the same (training) text
        x, lengths, _ = B.to_batch(TokenWindowSampler(docs, cfg.seq_len, seed=args.seed + 99).sample(64), cfg)
        fwd_loss, bwd_loss = (float(v) for v in model.lm_losses(x, lengths))
    tensors = {f"fwd.{k}": v.detach().to(torch.float16).contiguous() for k, v in model.fwd.state_dict().items()}
    tensors |= {f"bwd.{k}": v.detach().to(torch.float16).contiguous() for k, v in model.bwd.state_dict().items()}
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out / "lm.safetensors", suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp))
    write_json(args.out / "lm.json", {
        "format": "tokfilter-bilm-init", "version": 1,
        "architecture": {"vocab_size": cfg.vocab_size, "seq_len": cfg.seq_len, "n_layer": cfg.n_layer,
                         "d_model": cfg.d_model, "n_head": cfg.n_head},
        "tokenizer_hash": tokenizer.hash, "tokenizer": "packaged demo BPE (tokenizer/data/demo-bpe-4096.json)",
        "sources": summary, "documents": len(docs), "tokens": total,
        "training": {"steps": stats["steps"], "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
                     "tokens_seen": stats["tokens"], "final_loss_sum": stats["final_loss"],
                     "sample_loss": {"forward": round(fwd_loss, 4), "backward": round(bwd_loss, 4)},
                     "seconds": round(time.perf_counter() - t0, 1)},
        "command": (f"python scripts/build_bilm_init.py --data ../shared/data --steps {args.steps} "
                    f"--batch-size {args.batch_size} --lr {args.lr} --seed {args.seed}"),  # paths are this machine's
    })
    print(json.dumps({"corpus_tokens": total, **stats}))


if __name__ == "__main__":
    main()
