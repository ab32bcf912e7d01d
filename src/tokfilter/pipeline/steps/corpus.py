"""corpus: the exact-span benchmark from the experiment's corpus, plus held-out clean documents per domain.

Records are read with `prepare_corpus`: missing ids become `<source>:<line>`, duplicate ids are deduplicated
(identical text) or made unique (different text), and records without a `split` get one from a hash of their id
(`[data] valid_frac`, `test_frac`, `split_seed`); every count is in the step's result. Forget passages are then
spliced into retain/general train documents at known offsets (the train split is the pretraining corpus), and the
test split, untouched, becomes `benchmark/eval-clean.jsonl` for the domain losses.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from tokfilter.atomic import write_text
from tokfilter.corpus import prepare_corpus
from tokfilter.errors import UserError
from tokfilter.labels.benchmark import BenchmarkConfig, benchmark_counts, make_benchmark, write_benchmark
from tokfilter.pipeline.context import Context, log
from tokfilter.pipeline.experiment import Experiment

NAME = "corpus"
NEEDS: list[str] = []
DOMAINS = ("forget", "retain", "general")


def config(ctx: Context) -> dict:
    return {"data": asdict(ctx.exp.data), "seed": ctx.exp.seed}


def _stable_order(doc_id: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{doc_id}".encode()).hexdigest()


def cap(documents: list, per_domain: int, seed: int) -> list:
    """At most `per_domain` documents of each domain, chosen by a seeded hash (stable under corpus growth)."""
    if per_domain <= 0:
        return documents
    by_domain: dict[str, list] = {}
    for doc in documents:
        by_domain.setdefault(doc.domain, []).append(doc)
    kept = []
    for docs in by_domain.values():
        kept.extend(sorted(docs, key=lambda d: _stable_order(d.id, seed))[:per_domain])
    return sorted(kept, key=lambda d: _stable_order(d.id, seed))


def read_documents(exp: Experiment) -> tuple[list, dict]:
    """The experiment's documents (ids unique, every record with a split) and the corpus report."""
    d = exp.data
    documents, report = prepare_corpus(d.corpus, d.valid_frac, d.test_frac, seed=d.split_seed)
    for doc in documents:
        if doc.domain not in DOMAINS:
            raise UserError(f"document {doc.id!r} has domain {doc.domain!r}; tag the corpus sources as "
                            "forget=PATH, retain=PATH and general=PATH")
    return documents, report.as_dict() | {"summary": report.summary()}


def split_documents(exp: Experiment, documents: list) -> dict[str, list]:
    """{train, valid, test, eval} after the per-domain caps of `[data]` (eval: test documents for the losses)."""
    d, seed = exp.data, exp.seed
    by_split = {name: [doc for doc in documents if doc.meta.get("split", "train") == name]
                for name in ("train", "valid", "test")}
    if not by_split["valid"] and not by_split["test"]:
        raise UserError("the corpus has no held-out documents: set [data] valid_frac / test_frac above 0, or give "
                        "records a 'split' of train/valid/test")
    return {"train": cap(by_split["train"], d.docs_per_domain, seed),
            "valid": cap(by_split["valid"], d.heldout_docs_per_domain, seed),
            "test": cap(by_split["test"], d.heldout_docs_per_domain, seed),
            "eval": cap(by_split["test"], d.eval_docs_per_domain, seed)}


def benchmark_config(exp: Experiment) -> BenchmarkConfig:
    """The splicing settings of `[data]` (per-domain fractions override the shared one when >= 0)."""
    d = exp.data
    config = BenchmarkConfig(seed=exp.seed, splice_fraction=d.splice_fraction,
                             splice_fraction_forget=d.splice_fraction_forget)
    for field_name in ("splice_fraction_retain", "splice_fraction_general"):
        value = getattr(d, field_name)
        if value >= 0:
            setattr(config, field_name, value)
    return config


def run(ctx: Context) -> dict:
    d = ctx.exp.data
    config = benchmark_config(ctx.exp)
    if ctx.prepared:  # the plan read, split and spliced the corpus already (the same calls, deterministic)
        report, parts, bench = (ctx.prepared[key] for key in ("report", "parts", "benchmark"))
    else:
        documents, report = read_documents(ctx.exp)
        parts = split_documents(ctx.exp, documents)
        bench = make_benchmark(parts["train"] + parts["valid"] + parts["test"], config)
    log(f"corpus: {report['summary']}")
    write_benchmark(bench, ctx.out / "benchmark", config, list(d.corpus))
    records = [{"id": doc.id, "text": doc.text, "domain": doc.domain} for doc in parts["eval"]]
    write_text(ctx.out / "benchmark" / "eval-clean.jsonl",
               "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return {"counts": benchmark_counts(bench), "eval_documents": len(records), "report": report}
