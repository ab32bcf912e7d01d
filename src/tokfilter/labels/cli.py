"""CLI: `tokfilter label {lexicon,sentence,document} CORPUS... --out LABELS.jsonl` and `tokfilter labels ...`.

`label` runs a weak labeler over a corpus and writes char-span labels (DESIGN.md format), one line per document.
`labels benchmark` builds the exact-span benchmark; `labels eval` scores a label file against it (JSON on stdout).

`label sae` is registered by the SAE package (`tokfilter.labels.sae.cli.register`). A new labeler adds its parser
with `add_label_parser(label_subparsers, NAME, ...)` (which adds CORPUS..., --out and --text-field) and writes with
`write_label_records(args, records)`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from tqdm import tqdm

from tokfilter.corpus import read_corpus
from tokfilter.corpus.document import Document
from tokfilter.errors import UserError
from tokfilter.labels import benchmark
from tokfilter.labels.benchmark import BenchmarkConfig, build_benchmark, load_benchmark
from tokfilter.labels.coarse import label_documents, label_sentences
from tokfilter.labels.lexicon import (
    MEDICAL_EXCLUDE,
    MEDICAL_GROW,
    MEDICAL_GROW_EXCLUDE,
    MEDICAL_LEXICONS,
    LexiconLabeler,
    build_matcher,
)
from tokfilter.labels.metrics import label_metrics
from tokfilter.labels.sae import cli as sae_cli
from tokfilter.labels.spans import Span, load_labels, write_counted_labels
from tokfilter.tokenizer import load_tokenizer
from tokfilter.tokenizer.core import default_tokenizer_spec


def add_label_parser(label_subparsers: argparse._SubParsersAction, name: str, help: str,
                     description: str | None = None) -> argparse.ArgumentParser:
    """A `tokfilter label NAME` parser with the shared arguments: CORPUS..., --out, --text-field."""
    parser = label_subparsers.add_parser(name, help=help, description=description or help)
    parser.add_argument("corpus", nargs="+", metavar="CORPUS",
                        help="corpus specs: files, globs, DOMAIN=PATH, demo, or a benchmark split file")
    parser.add_argument("--out", required=True, metavar="LABELS.jsonl", help="label file to write")
    parser.add_argument("--text-field", default="text", help="JSON/Parquet field holding the text")
    return parser


def read_documents(args: argparse.Namespace) -> Iterator[Document]:
    """Documents of `args.corpus`, with a progress bar on stderr."""
    yield from tqdm(read_corpus(args.corpus, text_field=args.text_field), desc="labelling", unit="doc",
                    file=sys.stderr, disable=None)


def write_label_records(args: argparse.Namespace, records: Iterable[tuple[str, list[Span]]]) -> dict:
    """Write (doc_id, spans) to args.out atomically; print and return a JSON summary."""
    stats = write_counted_labels(args.out, records, ", ".join(args.corpus))
    summary = {"out": str(args.out), **stats}
    print(json.dumps(summary))
    return summary


def _add_lexicon_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lexicon", action="append", metavar="SPEC",
                        help=f"term list: NAME in the lexicon dir, a file, or common:N (repeatable; default: "
                             f"{' '.join(MEDICAL_LEXICONS)})")
    parser.add_argument("--exclude", action="append", metavar="SPEC",
                        help=f"terms to drop, same specs (repeatable; default: {' '.join(MEDICAL_EXCLUDE)}; "
                             "pass --exclude none for no exclusions)")
    parser.add_argument("--lexicon-dir", metavar="DIR", help="where bare lexicon names are looked up "
                        "(default: $TOKFILTER_LEXICONS or ../shared/data/lexicons)")
    parser.add_argument("--min-chars", type=int, default=3, help="ignore terms shorter than this")


def _lexicon_specs(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    lexicons = args.lexicon or list(MEDICAL_LEXICONS)
    exclude = args.exclude if args.exclude is not None else list(MEDICAL_EXCLUDE)
    exclude = [e for e in exclude if e != "none"]
    return lexicons, exclude


def _matcher(args: argparse.Namespace):
    lexicons, exclude = _lexicon_specs(args)
    return build_matcher(lexicons, exclude, args.lexicon_dir, args.min_chars)


def _check_lexicon_dir(args: argparse.Namespace) -> None:
    if args.lexicon_dir is not None and not Path(args.lexicon_dir).is_dir():
        raise UserError(f"--lexicon-dir {args.lexicon_dir}: no such directory")


def _check_threshold(value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise UserError(f"--threshold must be in [0, 1], not {value}")


def run_lexicon(args: argparse.Namespace) -> int:
    _check_lexicon_dir(args)
    grow_specs = args.grow_lexicon or ([] if args.lexicon else list(MEDICAL_GROW))
    grow_specs = [g for g in grow_specs if g != "none"]
    grow = None
    if grow_specs:
        grow_exclude = [e for e in (args.grow_exclude or MEDICAL_GROW_EXCLUDE) if e != "none"]
        grow = build_matcher(grow_specs, grow_exclude, args.lexicon_dir, args.min_chars)
    labeler = LexiconLabeler(_matcher(args), grow)
    write_label_records(args, labeler.label_documents(read_documents(args)))
    return 0


def run_sentence(args: argparse.Namespace) -> int:
    _check_lexicon_dir(args)
    _check_threshold(args.threshold)
    if args.window < 0:
        raise UserError(f"--window must be >= 0, got {args.window}")
    records = label_sentences(read_documents(args), _matcher(args), args.threshold, args.score, args.window)
    write_label_records(args, records)
    return 0


def run_document(args: argparse.Namespace) -> int:
    _check_lexicon_dir(args)
    _check_threshold(args.threshold)
    matcher = _matcher(args) if args.rule == "density" else None
    records = label_documents(read_documents(args), args.rule, args.forget_domain or ["forget"], matcher,
                              args.threshold, args.score)
    write_label_records(args, records)
    return 0


def run_eval(args: argparse.Namespace) -> int:
    _check_threshold(args.threshold)
    predicted = load_labels(args.labels)
    if not predicted:
        raise UserError(f"{args.labels}: the label file holds no labels")
    docs = load_benchmark(args.benchmark, args.split)
    tokenizer = load_tokenizer(args.tokenizer or default_tokenizer_spec())
    gold = [(d.document.id, d.document.text, d.spans) for d in docs]
    result = label_metrics(predicted, gold, tokenizer, threshold=args.threshold)
    if result["unknown_ids"] and not set(predicted) & {g[0] for g in gold}:
        raise UserError(f"{args.labels}: no label id matches a document of {args.benchmark} ({args.split})")
    result = {"labels": str(args.labels), "benchmark": str(args.benchmark), "split": args.split,
              "tokenizer": tokenizer.spec, **result}
    print(json.dumps(result, indent=2))
    return 0


def _register_benchmark(subparsers: argparse._SubParsersAction) -> None:
    """Add `benchmark` under the `tokfilter labels` group."""
    parser = subparsers.add_parser("benchmark", help="build the exact-span benchmark (spliced forget passages)",
                                   description=benchmark.__doc__.split("\n\n")[1])
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--source", nargs="+", default=["demo"], metavar="SPEC",
                        help="'demo' (default) or corpus specs tagged forget=PATH retain=PATH general=PATH")
    parser.add_argument("--splice-fraction", type=float, default=0.4)
    parser.add_argument("--min-words", type=int, default=30)
    parser.add_argument("--max-words", type=int, default=150)
    parser.set_defaults(func=run_benchmark)


def run_benchmark(args: argparse.Namespace) -> int:
    if not 0.0 <= args.splice_fraction <= 1.0:
        raise UserError(f"--splice-fraction must be in [0, 1], got {args.splice_fraction}")
    if not 0 < args.min_words <= args.max_words:
        raise UserError(f"--min-words/--max-words must satisfy 0 < min <= max, got {args.min_words}, {args.max_words}")
    config = BenchmarkConfig(seed=args.seed, splice_fraction=args.splice_fraction, min_words=args.min_words,
                             max_words=args.max_words)
    build_benchmark(args.out, args.seed, args.source, config)
    manifest = json.loads((Path(args.out) / "manifest.json").read_text())
    print(json.dumps({"out": str(args.out), "seed": args.seed, "counts": manifest["counts"]}, indent=2))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    label = subparsers.add_parser("label", help="weak labelers: corpus -> char-span labels",
                                  description="Run a weak labeler over a corpus; writes char-span labels.")
    sub = label.add_subparsers(dest="label_command", metavar="LABELER")
    sub.required = True

    lexicon = add_label_parser(sub, "lexicon", "label whole-word term hits (Aho-Corasick, case-insensitive)")
    _add_lexicon_options(lexicon)
    lexicon.add_argument("--grow-lexicon", action="append", metavar="SPEC",
                         help="grow hits over adjacent words matched by these lexicons (span growth; default with "
                              "the default lexicons: the same lexicons without the learned stoplist; none = off)")
    lexicon.add_argument("--grow-exclude", action="append", metavar="SPEC",
                         help="terms the growth lexicons drop (default: go_terms common:300)")
    lexicon.set_defaults(func=run_lexicon)

    sentence = add_label_parser(sub, "sentence", "label whole sentences by lexicon-hit density")
    _add_lexicon_options(sentence)
    sentence.add_argument("--threshold", type=float, default=0.08,
                          help="label a sentence when this fraction of its words are lexicon hits")
    sentence.add_argument("--window", type=int, default=1,
                          help="average the density over +-N neighbouring sentences (0 = the sentence alone)")
    sentence.add_argument("--score", choices=["hard", "density"], default="hard",
                          help="hard: score 1.0 above threshold; density: every sentence scored by its density")
    sentence.set_defaults(func=run_sentence)

    document = add_label_parser(sub, "document", "label whole documents by provenance or lexicon-hit density")
    _add_lexicon_options(document)
    document.add_argument("--rule", choices=["domain", "density"], default="domain",
                          help="domain: documents tagged with a forget domain; density: lexicon-hit density")
    document.add_argument("--forget-domain", action="append", metavar="TAG",
                          help="domain tags that count as forget for --rule domain (default: forget)")
    document.add_argument("--threshold", type=float, default=0.12,
                          help="--rule density: label a document when this fraction of its words are lexicon hits")
    document.add_argument("--score", choices=["hard", "density"], default="hard")
    document.set_defaults(func=run_document)

    sae_cli.register(sub)

    labels = subparsers.add_parser("labels", help="label benchmark and evaluation",
                                   description="Build the exact-span benchmark; score label files against it.")
    labels_sub = labels.add_subparsers(dest="labels_command", metavar="ACTION")
    labels_sub.required = True
    _register_benchmark(labels_sub)
    evaluate = labels_sub.add_parser("eval", help="precision/recall/F1 of a label file against the benchmark",
                                     description="Char- and token-level precision, recall and F1 of LABELS "
                                                 "against the exact spans of a benchmark split (JSON on stdout).")
    evaluate.add_argument("labels", metavar="LABELS.jsonl")
    evaluate.add_argument("--benchmark", required=True, metavar="DIR", help="output of `labels benchmark`")
    evaluate.add_argument("--split", default="valid", choices=["train", "valid", "test"])
    evaluate.add_argument("--tokenizer", metavar="SPEC", help="tokenizer for token-level scores "
                          "(default: the packaged demo BPE)")
    evaluate.add_argument("--threshold", type=float, default=0.5, help="a predicted span counts if score >= this")
    evaluate.set_defaults(func=run_eval)
