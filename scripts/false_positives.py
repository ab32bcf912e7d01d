"""Where a classifier flags keep text on the natural-text dev set: each flagged keep token by its sentence's relation
to the hand-labelled forget text (docs/classifiers.md, "Where it fails").

    python scripts/false_positives.py --classifier OUT/classifier [--examples 10] [--json FILE]

A keep token at or above the classifier's saved threshold is a false positive. Its sentence (the scorer's own
segments, classify/segments.py) either holds forget tokens itself (`same sentence`: a clause boundary inside one
sentence; the labels are clause-level), sits next to a sentence that does (`next to forget`: the document's verdict
spreading into a neighbour), or neither (`isolated`: a sentence read as medical on its own, such as a health-policy
sentence). Per dev-set group: keep tokens, flagged share, the three causes, and the sentences with the most flagged
tokens. The same split tells which lever could help: sentence-local scoring acts on the second cause, better labels or
a stronger model on the third.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tokfilter.atomic import write_json
from tokfilter.classify.data import tokenize_labeled
from tokfilter.classify.devset import GROUPS, groups, load_devset
from tokfilter.classify.interface import load_tokenizer_copy, read_classifier_config
from tokfilter.classify.registry import load_classifier
from tokfilter.classify.segments import boundary_tables, sentence_segments

CAUSES = ("same sentence", "next to forget", "isolated")


def cause(gold: np.ndarray, segments: list[tuple[int, int]], k: int) -> str:
    """Why sentence k's flagged keep tokens are there (see the module doc); gold is the document's bool labels."""
    a, b = segments[k]
    if gold[a:b].any():
        return "same sentence"
    neighbours = [segments[j] for j in (k - 1, k + 1) if 0 <= j < len(segments)]
    return "next to forget" if any(gold[s:e].any() for s, e in neighbours) else "isolated"


def false_positives(classifier: str | Path, examples: int = 10) -> dict:
    """{group: {"keep_tokens", "flagged", "keep_flagged", "causes": {cause: tokens}, "examples": [...]}}."""
    config = read_classifier_config(classifier)
    tokenizer = load_tokenizer_copy(classifier, config)
    clf = load_classifier(classifier)
    ends, spaced = boundary_tables(tokenizer)
    documents, labels = load_devset()
    docs = {d.id: d for d in tokenize_labeled([(doc, labels.get(doc.id, [])) for doc in documents], tokenizer)}
    members = groups(documents)
    out = {}
    for group in GROUPS:
        picked = [docs[i] for i in members[group] if i in docs]
        scores = clf.score_batch([d.ids for d in picked])
        causes, found, keep = dict.fromkeys(CAUSES, 0), [], 0
        for doc, score in zip(picked, scores):
            gold = doc.labels >= 0.5
            keep += int((~gold).sum())
            segments = sentence_segments(doc.ids, ends, spaced)
            for k, (a, b) in enumerate(segments):
                flagged = int(((score[a:b] >= clf.threshold) & ~gold[a:b]).sum())
                if flagged:
                    why = cause(gold, segments, k)
                    causes[why] += flagged
                    found.append({"flagged_tokens": flagged, "cause": why, "document": doc.id,
                                  "mean_score": round(float(score[a:b].mean()), 3),
                                  "sentence": tokenizer.decode(doc.ids[a:b].tolist()).strip()})
        total = sum(causes.values())
        out[group] = {"keep_tokens": keep, "flagged": total, "keep_flagged": round(total / max(keep, 1), 4),
                      "causes": {k: {"tokens": v, "share": round(v / max(total, 1), 3)} for k, v in causes.items()},
                      "examples": sorted(found, key=lambda e: -e["flagged_tokens"])[:examples]}
    return {"classifier": str(classifier), "threshold": clf.threshold, "groups": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classifier", required=True, type=Path, help="a saved biLM / forward-only classifier")
    parser.add_argument("--examples", type=int, default=10, help="sentences with the most flagged tokens per group")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = false_positives(args.classifier, args.examples)
    for group, row in result["groups"].items():
        causes = ", ".join(f"{k} {v['share']:.0%}" for k, v in row["causes"].items())
        print(f"{group}: {row['flagged']:,} of {row['keep_tokens']:,} keep tokens flagged ({row['keep_flagged']:.1%}):"
              f" {causes}")
        for e in row["examples"]:
            print(f"  {e['flagged_tokens']:3d} {e['cause']:<15} {e['mean_score']:.2f}  {e['sentence'][:110]}")
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
