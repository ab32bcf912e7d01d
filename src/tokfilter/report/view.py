"""`tokfilter view`: a static, self-contained HTML page to audit token scores by eye.

Documents are shown with every token shaded by its score; a threshold slider (starting at the threshold the
classifier recommends) and a mode switch show what mask (struck through: no loss on that target), remove (blacked
out: hidden in the input too) and document filtering (whole document greyed out) would hide; side links jump to
the most- and least-flagged documents, and exact labels (the `truth` score, when the shards have one) can be
underlined for comparison. Everything (data, CSS, JS) is inline:
no CDN, no network, one file to mail around.

Which documents: all documents are ranked by mean score and `--docs N` of them are taken evenly along that ranking
(so both extremes and the middle are shown), then displayed in corpus order. Long documents show their first
`MAX_TOKENS` tokens (the mean score covers the whole document).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from tokfilter.atomic import write_text
from tokfilter.errors import UserError
from tokfilter.filtering import document_scores
from tokfilter.shards import ShardSet

TEMPLATE = Path(__file__).with_name("view.html")
MAX_TOKENS = 1500


def resolve_shards(path: str | Path) -> tuple[ShardSet, Path | None]:
    """(shards, run directory or None) for a shard directory or a run/demo directory holding `shards/`."""
    path = Path(path)
    if (path / "manifest.json").is_file():
        return ShardSet(path), None
    if (path / "shards" / "manifest.json").is_file():
        return ShardSet(path / "shards"), path
    raise UserError(f"{path}: neither a shard directory nor a run directory with shards/ in it")


def _pieces(text: str, offsets: np.ndarray) -> list[str]:
    """Text cut at token starts, so the pieces concatenate back to the text (gaps go to the preceding token)."""
    if not len(offsets):
        return []
    starts = np.maximum.accumulate(np.concatenate([[0], np.asarray(offsets)[1:, 0]])).tolist()
    bounds = [*starts, len(text)]
    return [text[bounds[i]:max(bounds[i], bounds[i + 1])] for i in range(len(starts))]


def build_page(shards: ShardSet, name: str, n_docs: int = 40, title: str | None = None) -> tuple[str, dict]:
    """The HTML page and a small summary of what it shows."""
    from tokfilter.annotate.export import document_text_and_offsets

    if name not in shards.score_names():
        available = ", ".join(shards.score_names()) or "none"
        raise UserError(f"{shards.dir}: no complete '{name}' scores (available: {available}; "
                        f"run `tokfilter annotate --name {name}`)")
    has_truth = name != "truth" and "truth" in shards.score_names()
    ranked = []  # (mean score, shard, doc index)
    for s in range(shards.num_shards):
        means = document_scores(shards.scores(s, name), shards.doc_ends(s), "mean", 0.5)
        ranked.extend((float(m), s, d) for d, m in enumerate(means))
    if not ranked:
        raise UserError(f"{shards.dir}: no documents")
    ranked.sort(key=lambda r: (-r[0], r[1], r[2]))
    n = max(1, min(n_docs, len(ranked)))
    picks = sorted({ranked[int(round(k * (len(ranked) - 1) / max(n - 1, 1)))] for k in range(n)},
                   key=lambda r: (r[1], r[2]))
    tokenizer = shards.tokenizer()
    docs = []
    for mean, s, d in picks:
        a, b = shards.documents(s)[d]
        keep = min(b - a, MAX_TOKENS)
        ids = np.asarray(shards.tokens(s)[a:a + keep])
        text, offsets = document_text_and_offsets(tokenizer, ids)
        scores = np.asarray(shards.scores(s, name)[a:a + keep], dtype=np.float32)
        meta = shards.doc_meta(s)[d]
        truth = None
        if has_truth:
            truth = (np.asarray(shards.scores(s, "truth")[a:a + keep], dtype=np.float32) >= 0.5).astype(int).tolist()
        docs.append({"id": str(meta.get("id")), "domain": str(meta.get("domain")), "shard": s, "n": b - a,
                     "truncated": keep < b - a, "mean": round(mean, 4), "pieces": _pieces(text, offsets),
                     "s": np.rint(np.clip(scores, 0, 1) * 1000).astype(int).tolist(), "t": truth})
    from tokfilter.annotate.score import default_threshold

    threshold = default_threshold(shards.dir, name)
    data = {"name": name, "has_truth": has_truth, "num_documents": len(ranked), "threshold": threshold,
            "docs": docs}
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/").replace("<!--", "<\\!--")
    title = html.escape(title or f"{shards.dir.name} · {name}")
    page = TEMPLATE.read_text(encoding="utf-8").replace("__TITLE__", title).replace("__DATA__", payload)
    return page, {"name": name, "documents_shown": len(docs), "documents": len(ranked), "truth": has_truth,
                  "threshold": threshold}


def write_view(path: str | Path, out: str | Path | None = None, name: str | None = None, docs: int = 40) -> dict:
    """Write the viewer page for a shard or run directory (what `tokfilter view` does); returns a summary.

    `name` defaults to `forget` when present, else the first score name other than `truth`; `out` defaults to
    RUN/view.html for a run directory and ./view.html for a shard directory."""
    shards, run_dir = resolve_shards(path)
    if name is None:
        names = shards.score_names()
        candidates = [n for n in names if n != "truth"] or names
        if not candidates:
            raise UserError(f"{shards.dir}: no scores yet (run `tokfilter annotate` first)")
        name = "forget" if "forget" in candidates else candidates[0]
    if docs < 1:
        raise UserError(f"--docs {docs} must be at least 1")
    out = Path(out) if out else (run_dir / "view.html" if run_dir else Path("view.html"))
    page, summary = build_page(shards, name, docs)
    write_text(out, page)
    return {"out": str(out), **summary}
