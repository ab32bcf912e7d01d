"""CLI: `tokfilter canaries generate` (plant canary facts, write documents + questions + manifest) and
`tokfilter canaries eval` (score a checkpoint on canary questions; one JSON object on stdout).

    tokfilter canaries generate --out DIR [--corpus SPEC ...] [--docs-per-domain N] [--seed N]
                                [--facts-per-domain N] [--exposures 128,512] [--embedded-fraction-forget F]
                                [--embedded-fraction-retain F] [--train-templates N] [--heldout-templates N]
    tokfilter canaries eval --model RUN --questions DIR/questions.jsonl [--device D] [--out FILE]

`generate` reads the host corpus (default `demo::train`, the embedded demo corpus's train split; `none` for no
hosts, which needs both embedded fractions 0), optionally keeps `--docs-per-domain` documents per domain in a
seeded order, plants the canaries and writes DIR/documents.jsonl (the planted training corpus, ready for
`tokfilter tokenize`), DIR/questions.jsonl (generic MCQ JSONL) and DIR/manifest.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from tokfilter.atomic import emit_json, write_json, write_text
from tokfilter.canaries.corpus import plant_canaries
from tokfilter.canaries.questions import make_questions, write_questions
from tokfilter.canaries.settings import CanarySettings
from tokfilter.corpus import read_corpus
from tokfilter.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("canaries", help="plant fictional canary facts and measure what a model learnt",
                                   description="Canary facts: fictional entities with real medical / biology "
                                   "answers, planted with known exposure counts and asked back as MCQ.")
    sub = parser.add_subparsers(dest="canaries_command", metavar="ACTION")
    sub.required = True
    defaults = CanarySettings()
    gen = sub.add_parser("generate", help="plant canaries into a corpus; write documents, questions, manifest")
    gen.add_argument("--out", required=True, help="output directory")
    gen.add_argument("--corpus", nargs="+", default=["demo::train"], metavar="SPEC",
                     help="host corpus specs (default demo::train); 'none' for standalone canaries only")
    gen.add_argument("--docs-per-domain", type=int, default=0, help="keep this many host documents per domain "
                     "(seeded order; 0 = all)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--facts-per-domain", type=int, default=defaults.facts_per_domain)
    gen.add_argument("--exposures", default=",".join(map(str, defaults.exposures)),
                     help="comma-separated mentions per fact, spread over the facts (default %(default)s)")
    gen.add_argument("--embedded-fraction-forget", type=float, default=defaults.embedded_fraction_forget)
    gen.add_argument("--embedded-fraction-retain", type=float, default=defaults.embedded_fraction_retain)
    gen.add_argument("--train-templates", type=int, default=defaults.train_templates)
    gen.add_argument("--heldout-templates", type=int, default=defaults.heldout_templates)
    gen.add_argument("--sentences-per-document", type=int, default=defaults.sentences_per_document)
    gen.set_defaults(func=run_generate)
    ev = sub.add_parser("eval", help="score a checkpoint on canary questions (one JSON object on stdout)")
    ev.add_argument("--model", required=True, help="checkpoint directory (or a run directory holding checkpoint/)")
    ev.add_argument("--questions", required=True, help="questions.jsonl written by `canaries generate`")
    ev.add_argument("--tokenizer", help="tokenizer SPEC the checkpoint must have been trained with (checked)")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--out", help="also write the JSON result to this file")
    ev.set_defaults(func=run_eval)


def _exposures(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise UserError(f"--exposures {text!r}: expected comma-separated integers, e.g. 16,32,64") from None
    return values


def _cap(documents: list, per_domain: int, seed: int) -> list:
    """At most `per_domain` documents per domain, chosen by a seeded hash of the id, in input order."""
    if per_domain <= 0:
        return documents
    keep: set[int] = set()
    by_domain: dict = {}
    for i, doc in enumerate(documents):
        by_domain.setdefault(doc.domain, []).append(i)
    for indices in by_domain.values():
        ranked = sorted(indices, key=lambda i: hashlib.sha256(f"{seed}:{documents[i].id}".encode()).hexdigest())
        keep.update(ranked[:per_domain])
    return [doc for i, doc in enumerate(documents) if i in keep]


def _record(doc) -> dict:
    record = {"id": doc.id, "text": doc.text}
    if doc.domain is not None:
        record["domain"] = doc.domain
    record.update(doc.meta)
    return record


def run_generate(args: argparse.Namespace) -> int:
    if args.docs_per_domain < 0:
        raise UserError(f"--docs-per-domain must be >= 0 (0 = all), not {args.docs_per_domain}")
    settings = CanarySettings(enabled=True, seed=args.seed, facts_per_domain=args.facts_per_domain,
                              exposures=_exposures(args.exposures),
                              embedded_fraction_forget=args.embedded_fraction_forget,
                              embedded_fraction_retain=args.embedded_fraction_retain,
                              train_templates=args.train_templates, heldout_templates=args.heldout_templates,
                              sentences_per_document=args.sentences_per_document).validate()
    hosts = [] if args.corpus == ["none"] else _cap(list(read_corpus(args.corpus)), args.docs_per_domain, args.seed)
    documents, manifest = plant_canaries(hosts, settings, args.seed)
    questions = make_questions(manifest)
    out = Path(args.out)
    write_text(out / "documents.jsonl",
               "".join(json.dumps(_record(d), ensure_ascii=False) + "\n" for d in documents))
    write_questions(out / "questions.jsonl", questions)
    write_json(out / "manifest.json", {**manifest, "corpus": list(args.corpus), "docs_per_domain": args.docs_per_domain})
    return emit_json({"out": str(out), "documents": len(documents), "questions": len(questions),
                      "counts": manifest["counts"]})


def run_eval(args: argparse.Namespace) -> int:
    from tokfilter.canaries.evaluate import evaluate_checkpoint

    result = evaluate_checkpoint(args.model, args.questions, device=args.device, tokenizer_spec=args.tokenizer)
    return emit_json({"model": str(args.model), "questions": str(args.questions), **result}, args.out)
