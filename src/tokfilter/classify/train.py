"""Train and evaluate token classifiers of every kind: what the CLI and the demo call.

    from tokfilter.classify import train_classifier, train_classifiers, evaluate_classifier
    metrics = train_classifier("bilm", train_items, valid_items, tokenizer, "out/classifier", budget="quick",
                               test_items=test_items)
    all_metrics = train_classifiers(["bilm", "forward", "windowed", "document"], train_items, valid_items,
                                    tokenizer, "out/classifiers", budget="quick", test_items=test_items)
    metrics = evaluate_classifier("out/classifier", test_items)

Items are (Document, spans) pairs or benchmark documents (anything with `.document` and `.spans`); spans are exact
or weak char-span labels. The threshold is the one maximising F1 on the validation items; test metrics use it
unchanged. `train_classifiers` pretrains the biLM's two LMs once and reuses them for the forward-only and document
classifiers (the forward-only baseline gets exactly the forward LM the biLM started from, and the same fine-tuning
steps).

Budgets (`BUDGETS`): `quick` fits the demo's ~60-90 s classifier stage on 2 cores; `full` trains longer and wider.
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from tokfilter.atomic import write_json
from tokfilter.classify import bilm as B
from tokfilter.classify.augment import sentence_mixes
from tokfilter.classify.baselines import DocumentClassifier, fit_document, fit_windowed
from tokfilter.classify.data import TokenDoc, TokenWindowSampler, tokenize_labeled
from tokfilter.classify.encoder import copy_encoder_tokenizer, train_encoder
from tokfilter.classify.init import load_init
from tokfilter.classify.interface import (
    KINDS,
    check_tokenizer,
    load_tokenizer_copy,
    read_classifier_config,
    save_classifier,
)
from tokfilter.classify.metrics import best_threshold, pr_curve_png, token_metrics
from tokfilter.classify.natural import natural_items, teacher_items
from tokfilter.classify.registry import load_classifier
from tokfilter.classify.segments import boundary_tables
from tokfilter.classify.settings import BUDGETS, ClassifierSettings, budget_settings  # noqa: F401
from tokfilter.corpus.document import Document
from tokfilter.errors import UserError


def _log_default(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def as_items(items: Sequence) -> list:
    """(Document, spans) pairs from pairs or benchmark documents."""
    out = []
    for item in items:
        if hasattr(item, "document") and hasattr(item, "spans"):
            out.append((item.document, item.spans))
        else:
            doc, spans = item
            out.append((doc, spans))
    return out


def _labels(docs: Sequence[TokenDoc]) -> np.ndarray:
    return np.concatenate([d.labels for d in docs]) if docs else np.zeros(0, np.float32)


def score_and_measure(clf, valid: Sequence[TokenDoc], test: Sequence[TokenDoc] | None) -> tuple[dict, np.ndarray,
                                                                                                  np.ndarray]:
    """Validation threshold + metrics (and test metrics with that threshold). Returns (metrics, test or valid
    scores, their gold labels) for plotting."""
    t0 = time.perf_counter()
    valid_scores = np.concatenate(clf.score_batch([d.ids for d in valid]))
    seconds = time.perf_counter() - t0
    threshold, _ = best_threshold(valid_scores, _labels(valid))
    metrics = {"kind": clf.kind, "params": int(clf.params), "flops_per_token": float(clf.flops_per_token),
               "threshold": float(threshold), "valid": token_metrics(valid_scores, _labels(valid), threshold),
               "score_tokens_per_second": round(len(valid_scores) / max(seconds, 1e-9), 1)}
    scores, gold = valid_scores, _labels(valid)
    if test:
        scores = np.concatenate(clf.score_batch([d.ids for d in test]))
        gold = _labels(test)
        metrics["test"] = token_metrics(scores, gold, threshold)
    headline = metrics.get("test", metrics["valid"])
    metrics.update({k: headline[k] for k in ("precision", "recall", "f1", "auroc")})
    metrics["split"] = "test" if test else "valid"
    return metrics, scores, gold


def _save(clf, kind: str, tokenizer, out_dir: Path, settings: dict, metrics: dict, scores, gold) -> None:
    extra = {}
    if kind in ("bilm", "forward"):
        extra = clf.settings()
    elif kind == "windowed":
        extra = {"window": clf.window}
    elif kind == "document":
        extra = clf.settings()
    elif kind == "encoder":
        extra = clf.settings()
        copy_encoder_tokenizer(clf, out_dir)
    extra["training"] = {k: settings[k] for k in sorted(settings)}
    save_classifier(out_dir, kind, tokenizer, clf.tensors(), extra, metrics["threshold"], metrics)
    pr_curve_png(scores, gold, out_dir / "pr_curve.png", f"{kind}: {metrics['split']} F1 {metrics['f1']:.3f}",
                 metrics["threshold"])


def bilm_classifier(model: B.BiLM, tokenizer, kind: str, settings: dict) -> B.BiLMClassifier:
    """A trained biLM (or forward-only LM) as a classifier, scoring the way `settings["scoring"]` says."""
    boundaries = boundary_tables(tokenizer) if settings["scoring"] == "sentence-min" else None
    return B.BiLMClassifier(model, tokenizer.hash, kind, scoring=settings["scoring"], boundaries=boundaries)


def pretrain_bilm(train: Sequence[TokenDoc], tokenizer, settings: dict, seed: int = 0,
                  log: Callable[[str], None] = _log_default, directions: str = "both") -> tuple[B.BiLM, dict]:
    """Both LMs pretrained on the training documents' text (next-token forward, previous-token backward); with
    directions="forward" only the forward one (initialised identically)."""
    torch.manual_seed(seed)
    cfg = B.BiLMConfig(vocab_size=tokenizer.vocab_size, seq_len=settings["seq_len"], n_layer=settings["n_layer"],
                       directions=directions,
                       d_model=settings["d_model"], n_head=settings["n_head"], layers=list(settings["layers"]),
                       head=settings["head"], head_hidden=settings["head_hidden"],
                       conv_kernel=settings["conv_kernel"], pad_id=tokenizer.eot_id)
    model = B.BiLM(cfg)
    stats = {"steps": 0, "seconds": 0.0}
    if settings["init"]:
        meta = load_init(model, settings["init"], tokenizer.hash)
        seen = meta.get("training", {}).get("tokens_seen", 0)
        stats["init"] = {"from": settings["init"], "tokens_seen": seen, "steps": meta.get("training", {}).get("steps")}
        log(f"pretrain: LMs start from {settings['init']!r} (trained on {seen:,} tokens of broad text)")
    if settings["pretrain_steps"]:
        sampler = TokenWindowSampler(train, cfg.seq_len, seed=seed)
        stats |= B.run_steps(model, sampler, settings["pretrain_steps"], settings["batch_size"], settings["lr"],
                             B.lm_loss, log=lambda m: log(f"pretrain {m}"))
    return model, stats


def finetune(model: B.BiLM, train: Sequence[TokenDoc], settings: dict, seed: int = 0,
             log: Callable[[str], None] = _log_default) -> dict:
    sampler = TokenWindowSampler(train, model.config.seq_len, seed=seed + 1)
    lm_weight = settings["lm_weight"]

    def loss(m, x, lengths, y):
        return B.bce_loss(m, x, lengths, y, lm_weight=lm_weight)

    return B.run_steps(model, sampler, settings["finetune_steps"], settings["batch_size"], settings["finetune_lr"],
                       loss, log=lambda m: log(f"finetune {m}"))


def fit_frozen_probe(base: B.BiLM, train: Sequence[TokenDoc], valid: Sequence[TokenDoc], seed: int = 0,
                     windows: int = 400, log: Callable[[str], None] = _log_default) -> tuple[B.BiLM, dict]:
    """The paper's probe: logistic regression on frozen features of one residual-stream layer (both directions
    concatenated), the layer chosen by validation F1 (a sweep over every layer). Returns a BiLM whose linear head
    holds the probe, and the sweep."""
    from sklearn.linear_model import LogisticRegression

    cfg = base.config
    train_rows = TokenWindowSampler(train, cfg.seq_len, seed=seed + 3).sample(windows)
    valid_rows = TokenWindowSampler(valid, cfg.seq_len, seed=seed + 4).sample(max(windows // 4, 1))
    xs, y = B.collect_features(base, train_rows)
    vs, vy = B.collect_features(base, valid_rows)
    sweep, best = {}, None
    for layer, (x, v) in enumerate(zip(xs, vs)):
        probe = LogisticRegression(C=1.0, max_iter=500).fit(x, y >= 0.5)
        _, f1 = best_threshold(probe.decision_function(v), vy)
        sweep[layer] = round(f1, 4)
        if best is None or f1 > sweep[best[0]]:
            best = (layer, probe)
    layer, probe = best
    log(f"frozen probe layer sweep (valid-window F1): {sweep}; using layer {layer}")
    model = B.BiLM(B.BiLMConfig.from_dict({**cfg.to_dict(), "layers": [layer], "head": "linear"}))
    model.fwd.load_state_dict(base.fwd.state_dict())
    if base.bwd is not None:
        model.bwd.load_state_dict(base.bwd.state_dict())
    with torch.no_grad():
        model.head.out.weight.copy_(torch.from_numpy(probe.coef_.astype(np.float32)))
        model.head.out.bias.fill_(float(probe.intercept_[0]))
    return model.eval(), {"layer_sweep_valid_f1": sweep, "layer": layer, "train_tokens": int(len(y))}


def forward_only(model: B.BiLM) -> B.BiLM:
    """A forward-only BiLM sharing nothing with `model` but a copy of its forward LM weights."""
    cfg = B.BiLMConfig.from_dict({**model.config.to_dict(), "directions": "forward"})
    torch.manual_seed(0)
    fwd = B.BiLM(cfg)
    fwd.fwd.load_state_dict(model.fwd.state_dict())
    return fwd


def train_classifiers(kinds: Sequence[str], train_items: Sequence, valid_items: Sequence, tokenizer,
                      out_root: str | Path, budget: str | dict = "quick", test_items: Sequence | None = None,
                      seed: int = 0, overrides: dict | None = None, log: Callable[[str], None] = _log_default,
                      out_dirs: dict[str, str | Path] | None = None,
                      natural_exclude: Sequence[Document] = ()) -> dict[str, dict]:
    """Train several kinds on the same data (one shared LM pretraining); each is saved to out_root/KIND (or
    out_dirs[KIND]). Returns {kind: metrics}.

    With `natural_copies` > 0 the hand-labelled natural documents (classify/natural.py) join the training documents,
    with `teacher_copies` > 0 the teacher-labelled ones, except any that is one of the train / valid / test documents
    or of `natural_exclude` (the corpus being scored)."""
    for kind in kinds:
        if kind.removesuffix("-frozen") not in KINDS:
            raise UserError(f"unknown classifier kind {kind!r} (expected one of {', '.join(KINDS)})")
    settings = budget_settings(budget, overrides)
    torch_threads = torch.get_num_threads()
    t0 = time.perf_counter()
    train_items = as_items(train_items)
    mixes = sentence_mixes(train_items, settings["mix_fraction"], seed, settings["mix_max_inserts"],
                           settings["mix_max_sentences"])
    if mixes:
        log(f"classifier data: {len(mixes):,} sentence mixes added to {len(train_items):,} training documents")
    train_items = train_items + mixes
    seen = [doc for items in (train_items, as_items(valid_items), as_items(test_items or [])) for doc, _ in items]
    for name, items_of, what in (("natural_copies", natural_items, "hand-labelled natural"),
                                 ("teacher_copies", teacher_items, "teacher-labelled")):
        if settings[name]:
            extra = items_of(settings[name], [*seen, *natural_exclude])
            log(f"classifier data: {len(extra) // settings[name]:,} {what} documents added, each {settings[name]} "
                f"times (classify/{name.split('_')[0]})")
            train_items = train_items + extra
    train = tokenize_labeled(train_items, tokenizer)
    valid = tokenize_labeled(as_items(valid_items), tokenizer)
    test = tokenize_labeled(as_items(test_items), tokenizer) if test_items else None
    if not train or not valid:
        raise UserError("classifier training needs non-empty training and validation documents")
    if not any(d.labels.max() >= 0.5 for d in train):
        raise UserError("the training labels mark no token as forget: nothing to learn")
    log(f"classifier data: {sum(len(d.ids) for d in train)} train / {sum(len(d.ids) for d in valid)} valid tokens "
        f"({time.perf_counter() - t0:.1f} s)")
    out_root = Path(out_root)
    dirs = {k: Path((out_dirs or {}).get(k, out_root / k)) for k in kinds}
    variants = {k: k.removesuffix("-frozen") for k in kinds}
    results: dict[str, dict] = {}
    pretrained, pre_stats = None, None

    def get_pretrained():
        nonlocal pretrained, pre_stats
        if pretrained is None:
            directions = "both" if {"bilm", "bilm-frozen", "document"} & set(kinds) else "forward"
            pretrained, pre_stats = pretrain_bilm(train, tokenizer, settings, seed, log, directions)
        return pretrained

    for variant in kinds:
        kind = variants[variant]
        start = time.perf_counter()
        stages: dict = {}
        if variant in ("bilm-frozen", "forward-frozen"):
            base = get_pretrained()
            stages["pretrain"] = pre_stats
            base = base if kind == "bilm" or base.bwd is None else forward_only(base)
            model, stages["probe"] = fit_frozen_probe(base, train, valid, seed, log=log)
            clf = bilm_classifier(model, tokenizer, kind, settings)
        elif kind == "windowed":
            clf = fit_windowed(train, tokenizer.vocab_size, tokenizer.hash, seed=seed)
        elif kind in ("bilm", "forward"):
            base = get_pretrained()
            stages["pretrain"] = pre_stats
            model = copy.deepcopy(base) if kind == "bilm" or base.bwd is None else forward_only(base)
            torch.manual_seed(seed + 2)
            stages["finetune"] = finetune(model, train, settings, seed, log)
            clf = bilm_classifier(model, tokenizer, kind, settings)
        elif kind == "document":
            base = get_pretrained()
            stages["pretrain"] = pre_stats
            clf = fit_document(base, train, tokenizer.hash, settings["doc_label"], settings["doc_fraction"], seed)
        else:
            if not settings["encoder_steps"]:
                log("encoder: skipped (encoder_steps = 0 in this budget)")
                continue
            clf, stages["finetune"] = train_encoder([(d.text, s) for d, s in train_items], tokenizer,
                                                    settings["encoder_steps"], seed=seed, log=log)
        train_seconds = time.perf_counter() - start
        metrics, scores, gold = score_and_measure(clf, valid, test)
        if kind == "document":
            metrics["document"] = clf.document_metrics(valid, test)
        metrics["train"] = {"seconds": round(train_seconds, 2), **stages}
        metrics["seconds"] = round(time.perf_counter() - start, 2)
        metrics["variant"] = variant
        _save(clf, kind, tokenizer, dirs[variant], {**settings, "variant": variant}, metrics, scores, gold)
        log(f"classifier {variant}: F1 {metrics['f1']:.4f} AUROC {metrics['auroc']:.4f} ({metrics['split']}), "
            f"{metrics['seconds']:.1f} s")
        results[variant] = metrics
    torch.set_num_threads(torch_threads)
    return results


def train_classifier(kind: str, train_items: Sequence, valid_items: Sequence, tokenizer, out_dir: str | Path,
                     budget: str | dict = "quick", test_items: Sequence | None = None, seed: int = 0,
                     overrides: dict | None = None, log: Callable[[str], None] = _log_default,
                     natural_exclude: Sequence[Document] = ()) -> dict:
    """Train one classifier of `kind` into `out_dir`; returns its metrics (also in out_dir/metrics.json)."""
    results = train_classifiers([kind], train_items, valid_items, tokenizer, Path(out_dir).parent, budget,
                                test_items, seed, overrides, log, out_dirs={kind: out_dir},
                                natural_exclude=natural_exclude)
    if kind not in results:
        raise UserError(f"classifier kind {kind!r} was skipped by budget {budget!r}")
    return results[kind]


def evaluate_classifier(directory: str | Path, items: Sequence, threshold: float | None = None,
                        valid_items: Sequence | None = None, pr_curve: str | Path | None = None,
                        groups: dict[str, Sequence[str]] | None = None) -> dict:
    """Metrics of a saved classifier on labelled items, tokenized with the classifier's own tokenizer copy.

    The threshold is the saved one, or `threshold`, or (with `valid_items`) the F1-maximising one on those.
    `groups` ({name: document ids}) adds `metrics["groups"][name]`: the same metrics on those documents only, from
    the same scores (a document's scores do not depend on what it is batched with)."""
    config = read_classifier_config(directory)
    tokenizer = load_tokenizer_copy(directory, config)
    clf = load_classifier(directory)
    check_tokenizer(clf, tokenizer.hash, f"{directory}/{config['tokenizer_file']}")
    docs = tokenize_labeled(as_items(items), tokenizer)
    if not docs:
        raise UserError("no (non-empty) documents to evaluate on")
    if valid_items is not None:
        valid = tokenize_labeled(as_items(valid_items), tokenizer)
        threshold, _ = best_threshold(np.concatenate(clf.score_batch([d.ids for d in valid])), _labels(valid))
    elif threshold is None:
        threshold = clf.threshold
    t0 = time.perf_counter()
    per_doc = clf.score_batch([d.ids for d in docs])
    seconds = time.perf_counter() - t0
    scores = np.concatenate(per_doc)
    gold = _labels(docs)
    metrics = {"kind": clf.kind, **token_metrics(scores, gold, threshold), "params": int(clf.params),
               "flops_per_token": float(clf.flops_per_token), "documents": len(docs),
               "score_tokens_per_second": round(len(scores) / max(seconds, 1e-9), 1)}
    if pr_curve:
        pr_curve_png(scores, gold, pr_curve, f"{clf.kind}: F1 {metrics['f1']:.3f}", threshold)
        metrics["pr_curve"] = str(pr_curve)
    if groups:
        metrics["groups"] = {}
        for name, ids in groups.items():
            members = set(ids)
            picked = [i for i, d in enumerate(docs) if d.id in members]
            metrics["groups"][name] = {**token_metrics(np.concatenate([per_doc[i] for i in picked]),
                                                       _labels([docs[i] for i in picked]), threshold),
                                       "documents": len(picked)}
    return metrics


def write_metrics(path: str | Path, metrics: dict) -> None:
    write_json(path, metrics)


def results_block(results: dict[str, dict], main: str = "bilm") -> dict:
    """The `classifier` block of results.json (DESIGN.md) from `train_classifiers`' output."""
    def row(name: str, m: dict) -> dict:
        return {"kind": name, "params": m["params"], "f1": m["f1"], "auroc": m["auroc"], "threshold": m["threshold"],
                "precision": m["precision"], "recall": m["recall"], "flops_per_token": m["flops_per_token"],
                "split": m["split"], "seconds": m["seconds"]}

    if main not in results:
        raise UserError(f"no {main!r} classifier among {', '.join(results)}")
    block = row(main, results[main])
    block["baselines"] = [row(name, m) for name, m in results.items() if name != main]
    if "document" in results and "document" in results["document"]:
        block["document_level"] = results["document"]["document"]
    return block


__all__ = ["BUDGETS", "DocumentClassifier", "evaluate_classifier", "results_block", "train_classifier",
           "train_classifiers"]
