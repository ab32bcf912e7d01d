"""Measure every weak labeler against the exact-span benchmark (the table in docs/labels.md).

    python scripts/measure_weak_labels.py [--seed 0] [--splits valid test]

Builds the benchmark from the embedded demo corpus in memory, labels each split with each labeler (defaults and a
few variants), and prints token-level precision / recall / F1 on the packaged demo BPE tokenizer, one row per
(labeler, split), over all documents and over the spliced documents only (forget passages hidden in retain/general
hosts: the case document filters cannot handle), then one JSON object with all figures. Needs ../shared/data/lexicons. ~1-2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json

from tokfilter.labels import coarse, lexicon
from tokfilter.labels.benchmark import build_benchmark
from tokfilter.labels.metrics import label_metrics
from tokfilter.tokenizer import load_tokenizer
from tokfilter.tokenizer.core import default_tokenizer_spec

MED = list(lexicon.MEDICAL_LEXICONS)


def labelers():
    """(name, function documents -> {id: spans}) for the defaults and the variants worth comparing."""
    def lex(lexicons, exclude, grow=None, grow_exclude=()):
        labeler = lexicon.LexiconLabeler(lexicon.build_matcher(lexicons, exclude),
                                         lexicon.build_matcher(grow, grow_exclude) if grow else None)
        return lambda docs: dict(labeler.label_documents(docs))

    def sent(exclude, window=1, threshold=0.08):
        matcher = lexicon.build_matcher(MED, exclude)
        return lambda docs: dict(coarse.label_sentences(docs, matcher, threshold, window=window))

    return [
        ("lexicon hpo_terms", lex(["hpo_terms"], [])),
        ("lexicon hpo_terms+icd10cm", lex(["hpo_terms", "icd10cm_descriptions"], [])),
        ("lexicon med3 (hpo+drug+hunspell)", lex(MED, [])),
        ("lexicon med3 - go", lex(MED, ["go_terms"])),
        ("lexicon med3 - go - common:3000", lex(MED, ["go_terms", "common:3000"])),
        ("lexicon med3 - go - learned", lex(MED, list(lexicon.MEDICAL_EXCLUDE))),
        ("lexicon DEFAULT (- learned, grow)", lex(MED, list(lexicon.MEDICAL_EXCLUDE), MED,
                                                   list(lexicon.MEDICAL_GROW_EXCLUDE))),
        ("lexicon - learned, grow incl. common words", lex(MED, list(lexicon.MEDICAL_EXCLUDE), MED, ["go_terms"])),
        ("sentence med3 - go", sent(["go_terms"], threshold=0.4)),
        ("sentence - learned, window 0", sent(list(lexicon.MEDICAL_EXCLUDE), window=0)),
        ("sentence DEFAULT (- learned, window 1, 0.08)", sent(list(lexicon.MEDICAL_EXCLUDE))),
        ("document density (- learned, 0.12)", lambda docs: dict(coarse.label_documents(
            docs, "density", matcher=lexicon.build_matcher(MED, list(lexicon.MEDICAL_EXCLUDE))))),
        ("document provenance", lambda docs: dict(coarse.label_documents(docs, "domain"))),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--splits", nargs="+", default=["valid", "test"])
    args = parser.parse_args()
    bench = build_benchmark(None, seed=args.seed)
    tokenizer = load_tokenizer(default_tokenizer_spec())
    results = {}
    for name, run in labelers():
        for split in args.splits:
            docs = [b.document for b in bench[split]]
            gold = [(b.document.id, b.document.text, b.spans) for b in bench[split]]
            predicted = run(docs)
            token = label_metrics(predicted, gold, tokenizer)["token"]
            mixed_gold = [g for g, d in zip(gold, docs) if "passage" in d.meta]
            mixed = label_metrics(predicted, mixed_gold, tokenizer)["token"]
            results.setdefault(name, {})[split] = {"all": token, "spliced_documents": mixed}
            print(f"{name:48s} {split:5s} P {token['precision']:.3f} R {token['recall']:.3f} F1 {token['f1']:.3f} "
                  f"labelled {token['predicted_fraction']:.3f} (gold {token['gold_fraction']:.3f}) | spliced docs "
                  f"P {mixed['precision']:.3f} R {mixed['recall']:.3f} F1 {mixed['f1']:.3f}", flush=True)
    print(json.dumps({"seed": args.seed, "tokenizer": tokenizer.spec, "results": results}))


if __name__ == "__main__":
    main()
