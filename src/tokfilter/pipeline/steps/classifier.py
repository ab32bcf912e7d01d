"""classifier: the main token classifier into classifier/ and each baseline into baselines/KIND/.

Trained on the label part of the benchmark's train split (exact spans, or weak labels with `[classifier] labels`),
threshold chosen by validation F1, metrics on the test split and on the natural-text dev set (classify/devset:
hand-labelled real documents, never trained on). `[classifier] min_f1` is a quality gate applied by run.py before
pretraining.

Out of fold: the label part (`[classifier] label_fraction` of the train documents, pipeline/folds.py) and the
pretrain part in shards/ are disjoint, so the classifier annotates only text it never trained on. The ids it trained
on are written to classifier/label_ids.json, and the result's `out_of_fold` counts the two parts and the source
documents they share, read from the shards actually written (0, or the step fails).
"""

from __future__ import annotations

import shutil
from dataclasses import asdict

from tokfilter.atomic import write_json
from tokfilter.classify.devset import evaluate_on_devset
from tokfilter.classify.train import train_classifiers
from tokfilter.corpus.document import Document
from tokfilter.corpus.normalize import unit_hash
from tokfilter.errors import UserError
from tokfilter.labels.benchmark import load_benchmark
from tokfilter.labels.teacher import teacher_labels, teacher_metrics
from tokfilter.pipeline.context import Context, log
from tokfilter.pipeline.folds import label_and_pretrain, out_of_fold
from tokfilter.shards import ShardSet

NAME = "classifier"
NEEDS = ["shards"]
# Validation F1 of the shipped demos' biLM, printed beside a run's own so a user sees a weak classifier early.
DEMO_REFERENCE_F1 = {"quick": 0.87, "full": 0.89}  # test F1 of the demos (docs/results/demo-*.json)
METRIC_KEYS = ("kind", "params", "flops_per_token", "f1", "auroc", "precision", "recall", "threshold", "pr_curve",
               "score_tokens_per_second", "valid", "test", "document")


def config(ctx: Context) -> dict:
    return {k: v for k, v in asdict(ctx.exp.classifier).items() if k != "min_f1"}  # the gate retrains nothing


def _entry(kind: str, metrics: dict) -> dict:
    return {k: metrics[k] for k in METRIC_KEYS if k in metrics} | {"kind": kind}


def run(ctx: Context) -> dict:
    c, out = ctx.exp.classifier, ctx.out
    shutil.rmtree(out / "classifier", ignore_errors=True)
    shutil.rmtree(out / "baselines", ignore_errors=True)
    split = {name: load_benchmark(out / "benchmark", name) for name in ("train", "valid", "test")}
    label, _ = label_and_pretrain(split["train"], c.label_fraction)
    fold = _out_of_fold(ctx, label)
    log(f"classifier: trains on {fold['label_documents']:,} label-part documents; the {fold['pretrain_documents']:,} "
        "pretrain-part documents in shards/ are scored out of sample")
    train_items, teacher = [(b.document, b.spans) for b in label], None
    if c.labels != "exact":  # weak-to-strong: learn from a weak teacher's labels, measure against the exact spans
        train_items, teacher = _weak_items(ctx, label, split["test"])
    kinds = [c.kind, *[k for k in c.baselines if k != c.kind]]
    out_dirs = {kind: out / ("classifier" if kind == c.kind else f"baselines/{kind}") for kind in kinds}
    metrics = train_classifiers(kinds, train_items, [(b.document, b.spans) for b in split["valid"]],
                                ctx.tokenizer(), out / "baselines", budget=c.budget,
                                test_items=[(b.document, b.spans) for b in split["test"]], seed=ctx.exp.seed,
                                overrides=dict(c.settings), log=log, out_dirs=out_dirs,
                                natural_exclude=_corpus_documents(split))
    write_json(out / "classifier" / "label_ids.json", sorted(b.document.id for b in label))
    baselines = [_entry(kind, metrics[kind]) | {"natural": evaluate_on_devset(out_dirs[kind])}
                 for kind in kinds[1:] if kind in metrics]
    return {**_entry(c.kind, metrics[c.kind]), "labels": c.labels,
            "natural": evaluate_on_devset(out_dirs[c.kind]), "baselines": baselines, "out_of_fold": fold} | (
        {"teacher": teacher} if teacher else {})


def _corpus_documents(split: dict[str, list]) -> list[Document]:
    """Every document of the corpus being scored, and (text-less) every passage donor spliced into one: a
    hand-labelled natural training document among them is left out of training (classify/natural.py)."""
    documents = [b.document for part in split.values() for b in part]
    donors = [Document(d.meta["passage"]["id"], "", d.domain) for d in documents if "passage" in d.meta]
    return documents + donors


def _weak_items(ctx: Context, label: list, test: list) -> tuple[list, dict]:
    """(training items with the teacher's labels, the teacher's record): `[classifier] labels` on the label part
    (capped at `label_docs` documents, chosen by id hash), and the same teacher scored against the exact spans of
    the test split (for `sae`, which reads ~100-200 tokens/s per thread, a quarter as many test documents, >= 40).
    The SAE's reference text comes from label-part documents it does not label (all of them when none is left)."""
    c = ctx.exp.classifier
    chosen = sorted(label, key=lambda b: unit_hash(f"teacher:{b.document.id}"))
    chosen = chosen[: c.label_docs] if c.label_docs else chosen
    test_docs = test[: max(c.label_docs // 4, 40)] if c.labels == "sae" else test
    chosen_ids = {b.document.id for b in chosen}
    reference = [b for b in label if b.document.id not in chosen_ids] or label
    weak, info = teacher_labels(c.labels, [b.document for b in chosen + test_docs], reference=reference,
                                sae_model=c.sae_model, sae_layer=c.sae_layer, seed=ctx.exp.seed, log=log)
    tokenizer = ctx.tokenizer()
    teacher = {"labels": c.labels, "documents": len(chosen), "test": teacher_metrics(weak, test_docs, tokenizer),
               "label_part": teacher_metrics(weak, chosen, tokenizer)} | (
        {"sae": {k: v for k, v in info.items() if k != "sae_training"}} if info else {})
    log(f"classifier: teacher '{c.labels}' labelled {len(chosen):,} documents; its token F1 against the exact spans: "
        f"{teacher['test']['f1']:.3f} on the test split")
    return [(b.document, weak.get(b.document.id, [])) for b in chosen], teacher


def _out_of_fold(ctx: Context, label: list) -> dict:
    """The out_of_fold record from the label documents and the documents in shards/ (see folds.out_of_fold)."""
    shards = ShardSet(ctx.out / "shards")
    pretrain_meta = [meta for index in range(shards.num_shards) for meta in shards.doc_meta(index)]
    fold = out_of_fold(({"id": b.document.id, **b.document.meta} for b in label), pretrain_meta,
                       ctx.exp.classifier.label_fraction)
    if not fold["label_documents"]:
        raise UserError(f"no document of the train split falls in the label part: raise [classifier] label_fraction "
                        f"(now {ctx.exp.classifier.label_fraction}) or add data")
    if fold["shared_documents"]:  # an invariant of folds.divide and the benchmark's one-host-per-donor splicing
        raise RuntimeError(f"classifier: {fold['shared_documents']} documents are both trained on and in shards/")
    return fold


def validation_f1(result: dict) -> float | None:
    valid = result.get("valid")
    return valid.get("f1") if isinstance(valid, dict) else None


def quality_gate(ctx: Context, result: dict) -> None:
    """Print the validation F1 beside the demo's reference; stop before pretraining when below `min_f1`."""
    f1 = validation_f1(result)
    test_f1 = result.get("f1")
    reference = DEMO_REFERENCE_F1.get(ctx.exp.classifier.budget)
    shown = f"{f1:.3f}" if f1 is not None else "n/a"
    log(f"classifier {result.get('kind')}: validation F1 {shown}, test F1 {test_f1:.3f}"
        + (f" (the demo's {ctx.exp.classifier.budget} biLM: ~{reference:.2f})" if reference else ""))
    natural = (result.get("natural") or {}).get("all")
    if natural:
        log(f"classifier {result.get('kind')}: natural-text dev set F1 {natural['f1']:.3f}")
    gate = ctx.exp.classifier.min_f1
    if gate > 0 and (f1 if f1 is not None else test_f1) < gate:
        raise UserError(f"classifier validation F1 {shown} is below [classifier] min_f1 = {gate}: improve the labels "
                        "or the classifier budget (or lower min_f1) before pretraining")
