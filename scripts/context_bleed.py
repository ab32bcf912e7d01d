"""How far a token classifier's verdict bleeds from a document's context into a sentence of the other side.

The canary study's biology facts that live only inside medical documents, and single medical sentences inside
biology or news text, are where token filtering should beat document filtering; both depend on the classifier
scoring a sentence by what it says rather than by the document around it. This script measures that directly on a
finished demo's test split (documents no classifier saw) for each classifier given:

  - keep-in-forget: a real biology-textbook sentence inserted at a sentence boundary of a pure medical document;
  - forget-in-keep: a real medical sentence inserted into a pure biology or general document;
  - canary-in-forget: a biology canary sentence (each retain relation) inserted into a pure medical document;
  - canary-alone: a standalone 4-sentence biology canary document (each retain relation), as the demo plants them;
  - biology documents: every token of the pure biology test documents (the base rate).

For each: the share of the inserted sentence's tokens (or the document's) with p(forget) >= each threshold. Canary
facts are drawn with the canary generator (seed 0, all three retain relations); their text never enters training.

    python scripts/context_bleed.py --run OUT_OF_TOKFILTER_DEMO --classifier DIR [--classifier DIR ...] \
        [--samples 80] [--json FILE]

About 20 s per classifier on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from tokfilter.atomic import write_json
from tokfilter.canaries.facts import make_facts
from tokfilter.canaries.settings import CanarySettings
from tokfilter.classify.interface import load_tokenizer_copy, read_classifier_config
from tokfilter.classify.registry import load_classifier
from tokfilter.labels.benchmark import load_benchmark
from tokfilter.labels.coarse import sentence_bounds

THRESHOLDS = (0.1, 0.3, 0.5)
RETAIN_RELATIONS = ("diet", "habitat", "predator")


def _sentences(texts: list[str]) -> list[str]:
    return [t[a:b] for t in texts for a, b in sentence_bounds(t) if 60 < b - a < 200]


def _inserted_share(clf, tokenizer, hosts: list[str], sentences: list[str], samples: int, rng: random.Random
                    ) -> list[float]:
    """Per sample: scores of the inserted sentence's tokens, returned as one flat array per sample."""
    out = []
    for _ in range(samples):
        host, sentence = rng.choice(hosts), rng.choice(sentences)
        bounds = sentence_bounds(host)
        cut = bounds[rng.randrange(1, len(bounds))][0] if len(bounds) > 1 else len(host)
        text = host[:cut] + sentence + " " + host[cut:]
        ids, offsets = tokenizer.encode(text)
        scores = clf.score_batch([np.asarray(ids, dtype=np.int64)])[0]
        inside = np.array([cut <= start < cut + len(sentence) for start, _ in offsets])
        out.append(scores[inside])
    return out


def _shares(score_groups: list[np.ndarray]) -> dict[str, float]:
    scores = np.concatenate(score_groups)
    return {f"p>={t}": round(float((scores >= t).mean()), 3) for t in THRESHOLDS}


def inputs(test_items: list) -> dict:
    """What every measurement inserts and where, from a benchmark's test (document, spans) items: built once, shared
    by every classifier measured."""
    medical = [doc.text for doc, _ in test_items if doc.domain == "forget" and "passage" not in doc.meta]
    keep = [doc for doc, spans in test_items if doc.domain != "forget" and not spans]
    biology = [doc.text for doc in keep if doc.meta.get("source") == "biology_textbooks"]
    facts = make_facts(CanarySettings(enabled=True, facts_per_domain=24, relations_per_domain=3, exposures=[256, 512],
                                      train_templates=7, heldout_templates=1).validate(), 0)
    return {"medical": medical, "keep": [doc.text for doc in keep], "biology": biology,
            "biology_sentences": _sentences(biology), "medical_sentences": _sentences(medical),
            "canary": {rel: [f.sentence(t) for f in facts if f.relation == rel for t in f.seen]
                       for rel in RETAIN_RELATIONS}}


def load_inputs(run: Path) -> dict:
    """`inputs` of a finished demo's benchmark test split."""
    return inputs([(b.document, b.spans) for b in load_benchmark(run / "benchmark", "test")])


def measure(material: dict, classifier: str, samples: int = 80) -> dict:
    """Every row of the module docstring for one classifier folder, on `inputs` (`material`)."""
    medical, canary = material["medical"], material["canary"]
    clf, tokenizer = load_classifier(classifier), load_tokenizer_copy(classifier, read_classifier_config(classifier))
    rng = random.Random(0)
    rows = {"keep-in-forget": _shares(_inserted_share(clf, tokenizer, medical, material["biology_sentences"],
                                                      samples, rng)),
            "forget-in-keep": _shares(_inserted_share(clf, tokenizer, material["keep"], material["medical_sentences"],
                                                      samples, rng))}
    for rel, sentences in canary.items():
        rows[f"canary-in-forget ({rel})"] = _shares(_inserted_share(clf, tokenizer, medical, sentences, samples, rng))
    for rel, sentences in canary.items():
        docs = [" ".join(rng.sample(sentences, 4)) for _ in range(samples)]
        rows[f"canary-alone ({rel})"] = _shares(
            clf.score_batch([np.asarray(tokenizer.encode(d)[0], dtype=np.int64) for d in docs]))
    rows["biology documents"] = _shares(
        clf.score_batch([np.asarray(tokenizer.encode(t)[0], dtype=np.int64) for t in material["biology"]]))
    return {"classifier": classifier, "threshold": round(float(clf.threshold), 3), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, type=Path, help="output folder of a finished demo (holds benchmark/)")
    parser.add_argument("--classifier", action="append", required=True, help="classifier folder (repeatable)")
    parser.add_argument("--samples", type=int, default=80, help="insertions per row (default 80)")
    parser.add_argument("--json", type=Path, help="write every measurement here too")
    args = parser.parse_args()
    results, material = [], load_inputs(args.run)
    for classifier in args.classifier:
        result = measure(material, classifier, args.samples)
        print(json.dumps(result), flush=True)
        results.append(result)
    if args.json:
        write_json(args.json, {"run": str(args.run), "samples": args.samples, "thresholds": list(THRESHOLDS),
                               "results": results})


if __name__ == "__main__":
    main()
