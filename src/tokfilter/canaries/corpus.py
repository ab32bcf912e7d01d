"""Plant canary facts into a training corpus: standalone canary documents and single sentences inside hosts.

`plant_canaries(documents, settings, seed)` is what a pipeline calls on its TRAIN documents, before tokenization:

- facts placed `standalone` get short documents of their own domain's canary sentences
  (`sentences_per_document` consecutive sentences of the shuffled mentions), interleaved at seeded positions;
- facts placed `embedded` appear ONLY as single sentences inserted at a sentence boundary into host documents of
  the other side: medical facts into biology or general documents, biology facts into medical documents; the
  mentions go round-robin over the shuffled hosts, so a host gets one sentence while hosts last, and a
  document-level filter keeps (or drops) the host as it would without the canary.

Each of a fact's `exposures` mentions uses the next of its relation's seen templates (round-robin). The returned
documents carry NO truth about the canaries: canary documents have `domain=None`, a neutral id (`canary-NNNN`) and
meta `{"source": "canary", "split": "train"}`; host documents keep their id, domain and meta unchanged. Canary text
therefore reaches training only through the tokenizer and the token classifier's scores, like any other text. The
manifest (facts, insertions, counts) is for evaluation and reporting; no training path reads it. A pipeline that
keeps character-span truth labels for its host documents moves them with `shift_spans`.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict

from tokfilter.canaries.facts import Fact, make_facts
from tokfilter.canaries.names import names_in, words_of
from tokfilter.canaries.settings import CanarySettings
from tokfilter.corpus.document import Document
from tokfilter.errors import UserError
from tokfilter.labels.coarse import sentence_bounds

FORMAT = "tokfilter-canaries"
VERSION = 1
HOST_DOMAINS = {"forget": ("retain", "general"), "retain": ("forget",)}


def mentions(fact: Fact, rng: random.Random) -> list[str]:
    """The fact's `exposures` training sentences, cycling through its seen templates from a seeded offset."""
    offset = rng.randrange(len(fact.seen))
    return [fact.sentence(fact.seen[(offset + k) % len(fact.seen)]) for k in range(fact.exposures)]


def _is_train(doc: Document) -> bool:
    return doc.meta.get("split", "train") in ("train", None)


def _insert_sentences(text: str, sentences: list[str], rng: random.Random) -> tuple[str, list[tuple[int, int, int]]]:
    """Insert sentences at distinct interior sentence starts of `text` (appended at the end when there are none).

    Returns (new text, [(position in the original text, start, end in the new text), ...]) in sentence order."""
    starts = sorted({s for s, _ in sentence_bounds(text) if s > 0})
    if len(starts) >= len(sentences):
        points = rng.sample(starts, len(sentences))
    else:
        points = [rng.choice(starts) if starts else len(text.rstrip()) for _ in sentences]
    order = sorted(range(len(sentences)), key=lambda i: (points[i], i))
    pieces, placed, cursor, added = [], [None] * len(sentences), 0, 0
    for i in order:
        at = points[i]
        pieces.append(text[cursor:at])
        if at >= len(text.rstrip()):  # appended after the last sentence
            chunk, offset = " " + sentences[i], 1
        else:
            chunk, offset = sentences[i] + " ", 0
        start = at + added + offset
        placed[i] = (at, start, start + len(sentences[i]))
        pieces.append(chunk)
        added += len(chunk)
        cursor = at
    pieces.append(text[cursor:])
    return "".join(pieces), placed


def plant_canaries(documents: list[Document], settings: CanarySettings, seed: int
                   ) -> tuple[list[Document], dict]:
    """(documents with canaries planted, manifest); see the module docstring.

    `documents` are the training documents (those with a `split` other than train are never hosts); the result
    keeps their order, replaces hosts by their planted copies and inserts the canary documents at seeded positions.
    Raises `UserError` when a fictional name occurs in `documents` or a placement has no host of the right domain.
    """
    settings.validate()
    seed = settings.resolved_seed(seed)
    facts = make_facts(settings, seed)
    corpus_words: set[str] = set()
    for doc in documents:
        corpus_words |= words_of(doc.text)
    clash = names_in({f.entity for f in facts}, corpus_words)
    if clash:
        raise UserError(f"canary names occur in the corpus ({', '.join(clash[:3])}); pick another canaries.seed")
    rng = random.Random(f"canary-place:{seed}")
    sentences = {f.id: mentions(f, rng) for f in facts}
    by_id = {f.id: f for f in facts}

    # standalone documents: each domain's standalone mentions, shuffled, a few sentences per document
    canary_docs: list[Document] = []
    doc_facts: dict[str, list[str]] = {}
    for domain in ("forget", "retain"):
        pool = [(fid, s) for fid, ss in sentences.items() if by_id[fid].domain == domain
                and by_id[fid].placement == "standalone" for s in ss]
        rng.shuffle(pool)
        k = settings.sentences_per_document
        for j in range(0, len(pool), k):
            chunk = pool[j: j + k]
            doc_id = f"canary-{len(canary_docs):04d}"
            canary_docs.append(Document(doc_id, " ".join(s for _, s in chunk), None,
                                        {"source": "canary", "split": "train"}))
            doc_facts[doc_id] = [fid for fid, _ in chunk]

    # embedded sentences: round-robin over shuffled hosts of the other side, a fact's mentions in distinct hosts
    assigned: dict[int, list[tuple[str, str]]] = {}
    for domain in ("forget", "retain"):
        queue = [[(fid, s) for s in sentences[fid]] for fid in sorted(sentences)
                 if by_id[fid].domain == domain and by_id[fid].placement == "embedded"]
        interleaved = [m for round_ in _round_robin(queue) for m in round_]
        if not interleaved:
            continue
        hosts = [i for i, d in enumerate(documents) if d.domain in HOST_DOMAINS[domain] and _is_train(d)]
        if not hosts:
            raise UserError(f"canaries: no {'/'.join(HOST_DOMAINS[domain])} training documents to host embedded "
                            f"{domain} facts; set canaries.embedded_fraction_{domain} = 0")
        rng.shuffle(hosts)
        for j, mention in enumerate(interleaved):
            assigned.setdefault(hosts[j % len(hosts)], []).append(mention)

    out = list(documents)
    insertions: list[dict] = []
    for index in sorted(assigned):
        host = documents[index]
        text, placed = _insert_sentences(host.text, [s for _, s in assigned[index]], rng)
        out[index] = Document(host.id, text, host.domain, dict(host.meta), host.id_assigned)
        for (fid, sentence), (at, start, end) in zip(assigned[index], placed, strict=True):
            assert text[start:end] == sentence
            insertions.append({"doc": host.id, "host_domain": host.domain, "fact": fid, "at": at,
                               "start": start, "end": end, "added": len(sentence) + 1})
    for doc in canary_docs:  # seeded positions, so canaries are spread through the document order
        out.insert(rng.randrange(len(out) + 1), doc)
    manifest = {
        "format": FORMAT, "version": VERSION, "seed": seed, "settings": asdict(settings),
        "facts": [f.to_json() for f in facts],
        "documents": [{"id": d.id, "facts": doc_facts[d.id]} for d in canary_docs],
        "insertions": insertions,
        "counts": _counts(facts, canary_docs, doc_facts, insertions, settings),
    }
    return out, manifest


def _round_robin(queues: list[list]):
    """Rounds of one item from each non-empty queue: spreads each fact's mentions over the host order."""
    queues = [list(q) for q in queues]
    while any(queues):
        yield [q.pop(0) for q in queues if q]


def _counts(facts: list[Fact], canary_docs: list[Document], doc_facts: dict[str, list[str]],
            insertions: list[dict], settings: CanarySettings) -> dict:
    out = {}
    for domain in ("forget", "retain"):
        mine = [f for f in facts if f.domain == domain]
        ids = {f.id for f in mine}
        docs = [d for d in canary_docs if set(doc_facts[d.id]) & ids]
        ins = [i for i in insertions if i["fact"] in ids]
        out[domain] = {
            "facts": len(mine),
            "standalone_facts": sum(f.placement == "standalone" for f in mine),
            "embedded_facts": sum(f.placement == "embedded" for f in mine),
            "mentions": sum(f.exposures for f in mine),
            "standalone_documents": len(docs),
            "standalone_sentences": sum(len([x for x in doc_facts[d.id] if x in ids]) for d in docs),
            "embedded_sentences": len(ins),
            "host_documents": len({i["doc"] for i in ins}),
            "host_domains": dict(sorted(Counter(i["host_domain"] for i in ins).items())),
            "facts_per_exposure": {str(e): sum(f.exposures == e for f in mine) for e in settings.exposures},
            "chars": sum(len(d.text) for d in docs) + sum(i["end"] - i["start"] for i in ins),
        }
    return out


def shift_spans(spans: list[tuple[int, int, float]], insertions: list[dict]) -> list[tuple[int, int, float]]:
    """Move character spans of a host document's ORIGINAL text onto its planted text.

    `insertions` are the manifest's insertions for that document. A span that an insertion falls strictly inside
    is split around it, so canary text never inherits a host's label."""
    points = sorted((i["at"], i["added"]) for i in insertions)  # each chunk is inserted before original char `at`
    out = []
    for start, end, score in spans:
        cuts = [start] + sorted({at for at, _ in points if start < at < end}) + [end]
        for a, b in zip(cuts, cuts[1:]):
            out.append((a + sum(n for at, n in points if at <= a), b + sum(n for at, n in points if at < b), score))
    return out


def planted_truth(spans: dict[str, list], documents: list[Document], manifest: dict) -> dict[str, list]:
    """Exact forget spans of a planted corpus, for the `truth` sidecar (never for the classifier).

    `spans` are the exact spans of the documents before planting (by id); `documents` are `plant_canaries`'s output.
    Hosts' spans move with `shift_spans`; a medical canary sentence inside a host is a forget span of its own;
    a medical canary document is forget from end to end; biology canary text is never forget."""
    domain_of = {f["id"]: f["domain"] for f in manifest["facts"]}
    forget_docs = {d["id"] for d in manifest["documents"] if all(domain_of[f] == "forget" for f in d["facts"])}
    by_doc: dict[str, list[dict]] = {}
    for ins in manifest["insertions"]:
        by_doc.setdefault(ins["doc"], []).append(ins)
    out: dict[str, list] = {}
    for doc in documents:
        if doc.id in forget_docs:
            out[doc.id] = [(0, len(doc.text), 1.0)]
            continue
        own = list(spans.get(doc.id, []))
        inserted = by_doc.get(doc.id, [])
        if inserted:
            own = shift_spans(own, inserted)
            own += [(i["start"], i["end"], 1.0) for i in inserted if domain_of[i["fact"]] == "forget"]
        out[doc.id] = sorted(own)
    return out
