"""shards: train and held-out token shards, with the exact labels as a `truth` score sidecar.

Only the pretrain part of the benchmark's train split goes to shards/ (pipeline/folds.py): the label part trains the
classifier and is never pretrained on, so every token the classifier annotates is out of sample.
Train shards hold ~128k tokens each: small enough that annotation spreads over every core. The held-out shards
carry document-level truth (a forget document's every token is forget) for the own-domain losses.

With `[canaries] enabled`, canary facts are planted into the pretrain part's text here, before tokenization
(canaries/corpus.py): the classifier (trained on the label part) never sees them or their truth, and scores them
like any other text in the annotate step. `canaries/manifest.json` and `canaries/questions.jsonl` are written
beside the shards; the `truth` sidecar marks medical canary text as forget.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict

from tokfilter.atomic import write_json
from tokfilter.canaries import make_questions, plant_canaries, planted_truth, write_questions
from tokfilter.corpus import read_corpus
from tokfilter.errors import UserError
from tokfilter.labels.benchmark import load_benchmark
from tokfilter.labels.sidecar import write_label_sidecar
from tokfilter.pipeline.context import Context
from tokfilter.pipeline.folds import label_and_pretrain
from tokfilter.shards import ShardSet, write_shards

NAME = "shards"
NEEDS = ["corpus", "tokenizer"]


def config(ctx: Context) -> dict:
    out = {"label_fraction": ctx.exp.classifier.label_fraction}  # which train documents are pretrained on
    if ctx.exp.canaries.enabled:
        out["canaries"] = asdict(ctx.exp.canaries) | {"seed": ctx.exp.canaries.resolved_seed(ctx.exp.seed)}
    return out


def plant(ctx: Context, documents: list, spans: dict) -> tuple[list, dict, dict]:
    """(documents, truth spans, counts) with the experiment's canaries planted; writes canaries/*."""
    documents, manifest = plant_canaries(documents, ctx.exp.canaries, ctx.exp.seed)
    truth = planted_truth(spans, documents, manifest)
    (ctx.out / "canaries").mkdir(parents=True, exist_ok=True)
    write_json(ctx.out / "canaries" / "manifest.json", manifest)
    write_questions(ctx.out / "canaries" / "questions.jsonl", make_questions(manifest))
    return documents, truth, manifest["counts"]


def run(ctx: Context) -> dict:
    out = ctx.out
    tokenizer = ctx.tokenizer()
    fraction = ctx.exp.classifier.label_fraction
    label, train = label_and_pretrain(load_benchmark(out / "benchmark", "train"), fraction)
    if not train:
        raise UserError(f"no document of the train split falls in the pretrain part ({len(label)} in the label part): "
                        f"lower [classifier] label_fraction (now {fraction}) or add data")
    shutil.rmtree(out / "shards", ignore_errors=True)
    shutil.rmtree(out / "eval-shards", ignore_errors=True)
    shutil.rmtree(out / "canaries", ignore_errors=True)
    documents, spans, canaries = [b.document for b in train], {b.document.id: b.spans for b in train}, None
    sources = [f"benchmark/train.jsonl.gz: pretrain part (label_fraction {fraction})"]
    if ctx.exp.canaries.enabled:
        documents, spans, canaries = plant(ctx, documents, spans)
        sources.append("canaries/manifest.json: canary facts planted")
    write_shards(iter(documents), tokenizer, out / "shards", sources=sources, shard_tokens=1 << 17, workers=1,
                 progress=False)
    truth = write_label_sidecar(ShardSet(out / "shards"), spans, "truth", progress=False)
    clean = list(read_corpus(str(out / "benchmark" / "eval-clean.jsonl")))
    write_shards(iter(clean), tokenizer, out / "eval-shards", sources=["benchmark/eval-clean.jsonl"],
                 workers=1, progress=False)
    eval_labels = {doc.id: ([(0, len(doc.text), 1.0)] if doc.domain == "forget" else []) for doc in clean}
    write_label_sidecar(ShardSet(out / "eval-shards"), eval_labels, "truth", progress=False)
    train_set, eval_set = ShardSet(out / "shards"), ShardSet(out / "eval-shards")
    return {"train_tokens": train_set.num_tokens, "train_documents": train_set.num_documents,
            "eval_tokens": eval_set.num_tokens, "eval_documents": eval_set.num_documents,
            "truth_forget_frac": truth["labelled_frac"]} | ({"canaries": canaries} if canaries else {})
