"""`tokfilter run EXPERIMENT.toml` / `tokfilter demo`: every stage of the method, cached, into one output directory.

Stages (each cached under a hash of its config and inputs, see `stages.py`):

    corpus      exact-span benchmark from the experiment's corpus: forget passages spliced into retain/general
                documents at known offsets (train split = the pretraining corpus), plus held-out clean documents
    tokenizer   the packaged demo BPE, a given SPEC, or a BPE trained on the train split
    shards      train and held-out shards, with the exact labels as a `truth` score sidecar
    classifier  biLM token classifier + baselines on the benchmark (threshold by validation F1, metrics on test)
    annotate    p(forget) for every training token (`scores.forget`)
    pretrain    one run per size x mode x threshold (none / document / mask / remove), losses per domain
    mcq         multiple choice on the probe sets (and any standard files named in the experiment)
    slowdown    compute slowdown of each filtered run against the unfiltered runs' power law
    robustness  finetuning attack on each filtered model and on the RMU-unlearned baseline
    refusal     refusal training on each mode's model
    report      results.json, figures/*.png, report.html, view.html

Output layout (a contract): results.json, report.html, figures/, classifier/, shards/, eval-shards/, runs/<name>/,
view.html, benchmark/, tokenizer.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tokfilter import __version__
from tokfilter.atomic import write_json, write_text
from tokfilter.errors import UserError
from tokfilter.experiment import Experiment
from tokfilter.stages import Stages

STAGES = ["corpus", "tokenizer", "shards", "classifier", "annotate", "pretrain", "mcq", "slowdown", "robustness",
          "refusal", "report"]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _stable_order(doc_id: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{doc_id}".encode()).hexdigest()


def _cap(documents: list, per_domain: int, seed: int) -> list:
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


class Pipeline:
    def __init__(self, exp: Experiment, out: Path, force: bool = False, estimates: dict[str, float] | None = None):
        self.exp = exp
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.stages = Stages(self.out, STAGES, estimates=estimates, force=force)
        self.results: dict = {}

    # ---------------------------------------------------------------- corpus
    def corpus(self) -> dict:
        from tokfilter.corpus import read_corpus
        from tokfilter.labels.benchmark import (
            BenchmarkConfig,
            benchmark_counts,
            make_benchmark,
            write_benchmark,
        )

        d = self.exp.data
        documents = list(read_corpus(d.corpus))
        for doc in documents:
            if doc.domain not in ("forget", "retain", "general"):
                raise UserError(f"document {doc.id!r} has domain {doc.domain!r}; tag the corpus sources as "
                                "forget=PATH, retain=PATH and general=PATH")
        splits = {doc.meta.get("split") for doc in documents}
        train = [doc for doc in documents if doc.meta.get("split", "train") == "train"]
        held_out = [doc for doc in documents if doc.meta.get("split") in ("valid", "test")]
        if not held_out or splits == {None}:
            raise UserError("the corpus needs held-out documents: give records a 'split' of train/valid/test")
        selected = (_cap(train, d.docs_per_domain, self.exp.seed)
                    + _cap([doc for doc in held_out if doc.meta.get("split") == "valid"], d.heldout_docs_per_domain,
                           self.exp.seed)
                    + _cap([doc for doc in held_out if doc.meta.get("split") == "test"], d.heldout_docs_per_domain,
                           self.exp.seed))
        config = BenchmarkConfig(seed=self.exp.seed, splice_fraction=d.splice_fraction)
        for field_name in ("splice_fraction_retain", "splice_fraction_general"):
            value = getattr(d, field_name)
            if value >= 0 and hasattr(config, field_name):
                setattr(config, field_name, value)
        bench = make_benchmark(selected, config)
        bench_dir = self.out / "benchmark"
        write_benchmark(bench, bench_dir, config, list(d.corpus))
        # held-out clean documents for the domain losses: the test split, untouched, capped per domain
        test_docs = _cap([doc for doc in documents if doc.meta.get("split") == "test"], d.eval_docs_per_domain,
                         self.exp.seed)
        records = [{"id": doc.id, "text": doc.text, "domain": doc.domain} for doc in test_docs]
        write_text(self.out / "benchmark" / "eval-clean.jsonl",
                   "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        return {"counts": benchmark_counts(bench), "eval_documents": len(records)}

    # ---------------------------------------------------------------- tokenizer
    def tokenizer(self) -> dict:
        from tokfilter.labels.benchmark import load_benchmark
        from tokfilter.tokenizer import load_tokenizer, train_tokenizer
        from tokfilter.tokenizer.core import default_tokenizer_spec

        t = self.exp.tokenizer
        target = self.out / "tokenizer.json"
        if t.spec:
            tokenizer = load_tokenizer(t.spec)
            if tokenizer.kind != "hf":
                return {"spec": t.spec, "hash": tokenizer.hash}
            shutil.copyfile(tokenizer.path, target)
        elif self.exp.data.corpus == ["demo"] and t.vocab_size == 4096:
            shutil.copyfile(default_tokenizer_spec(), target)  # trained on the demo's train split, shipped
        else:
            texts = (b.document.text for b in load_benchmark(self.out / "benchmark", "train"))
            train_tokenizer(texts, t.vocab_size, target)
        return {"spec": str(target), "hash": load_tokenizer(target).hash}

    def _tokenizer(self):
        from tokfilter.tokenizer import load_tokenizer

        return load_tokenizer(self.stages.results["tokenizer"]["spec"])

    # ---------------------------------------------------------------- shards
    def shards(self) -> dict:
        from tokfilter.corpus import read_corpus
        from tokfilter.labels.benchmark import load_benchmark
        from tokfilter.labels.sidecar import write_label_sidecar
        from tokfilter.shards import ShardSet, write_shards

        tokenizer = self._tokenizer()
        train = load_benchmark(self.out / "benchmark", "train")
        shutil.rmtree(self.out / "shards", ignore_errors=True)
        shutil.rmtree(self.out / "eval-shards", ignore_errors=True)
        # shards of ~128k tokens: small enough that annotation spreads over every core
        write_shards((b.document for b in train), tokenizer, self.out / "shards", sources=["benchmark/train"],
                     shard_tokens=1 << 17, workers=1, progress=False)
        truth = write_label_sidecar(ShardSet(self.out / "shards"), {b.document.id: b.spans for b in train}, "truth",
                                    progress=False)
        clean = list(read_corpus(str(self.out / "benchmark" / "eval-clean.jsonl")))
        write_shards(iter(clean), tokenizer, self.out / "eval-shards", sources=["benchmark/eval-clean.jsonl"],
                     workers=1, progress=False)
        eval_labels = {doc.id: ([(0, len(doc.text), 1.0)] if doc.domain == "forget" else []) for doc in clean}
        write_label_sidecar(ShardSet(self.out / "eval-shards"), eval_labels, "truth", progress=False)
        train_set, eval_set = ShardSet(self.out / "shards"), ShardSet(self.out / "eval-shards")
        return {"train_tokens": train_set.num_tokens, "train_documents": train_set.num_documents,
                "eval_tokens": eval_set.num_tokens, "eval_documents": eval_set.num_documents,
                "truth_forget_frac": truth["labelled_frac"]}

    # ---------------------------------------------------------------- classifier
    def classifier(self) -> dict:
        """Train the main classifier into classifier/ and each baseline into baselines/KIND/ (shared biLM)."""
        from tokfilter.classify.train import train_classifiers
        from tokfilter.labels.benchmark import load_benchmark

        c = self.exp.classifier
        shutil.rmtree(self.out / "classifier", ignore_errors=True)
        shutil.rmtree(self.out / "baselines", ignore_errors=True)
        split = {name: load_benchmark(self.out / "benchmark", name) for name in ("train", "valid", "test")}
        train_items = [(b.document, b.spans) for b in split["train"]]
        if c.labels == "lexicon":  # weak-to-strong: learn from weak labels, measure against the exact spans
            from tokfilter.labels.weak import weak_labels

            weak = weak_labels([doc for doc, _ in train_items], "sentence")
            train_items = [(doc, weak.get(doc.id, [])) for doc, _ in train_items]
        kinds = [c.kind, *[k for k in c.baselines if k != c.kind]]
        out_dirs = {kind: self.out / ("classifier" if kind == c.kind else f"baselines/{kind}") for kind in kinds}
        metrics = train_classifiers(kinds, train_items, [(b.document, b.spans) for b in split["valid"]],
                                    self._tokenizer(), self.out / "baselines", budget=c.budget,
                                    test_items=[(b.document, b.spans) for b in split["test"]], seed=self.exp.seed,
                                    overrides=dict(c.settings), log=_log, out_dirs=out_dirs)
        main = metrics[c.kind]

        def entry(kind: str, m: dict) -> dict:
            keep = ("kind", "params", "flops_per_token", "f1", "auroc", "precision", "recall", "threshold",
                    "pr_curve", "score_tokens_per_second", "valid", "test", "document")
            return {k: m[k] for k in keep if k in m} | {"kind": kind}

        return {**entry(c.kind, main), "labels": c.labels,
                "baselines": [entry(kind, metrics[kind]) for kind in kinds[1:] if kind in metrics]}

    # ---------------------------------------------------------------- annotate
    def annotate(self) -> dict:
        from tokfilter.annotate.pipeline import annotate

        a = self.exp.annotate
        for stale in (self.out / "shards").glob("*.scores.forget*"):
            stale.unlink()
        workers = a.workers or os.cpu_count() or 1
        summary = annotate(self.out / "classifier", self.out / "shards", name="forget", executor=a.executor,
                           workers=workers, progress=False)
        return {key: summary[key] for key in summary if key != "shards"}

    # ---------------------------------------------------------------- pretrain
    def run_plan(self) -> list[dict]:
        p = self.exp.pretrain
        plan = []
        for size in p.sizes:
            for mode in p.modes:
                thresholds = [None] if mode == "none" else (p.doc_thresholds if mode == "document" else p.thresholds)
                for threshold in thresholds:
                    name = f"{mode}-{size}" if threshold is None else f"{mode}-t{threshold:g}-{size}"
                    run = {"name": name, "size": size, "mode": mode, "threshold": threshold}
                    if mode == "document":  # the token threshold behind the fraction-of-forget-tokens aggregate
                        run["token_threshold"] = p.doc_token_threshold
                    plan.append(run)
        for size in p.baseline_sizes:
            if size not in p.sizes:
                plan.append({"name": f"none-{size}", "size": size, "mode": "none", "threshold": None})
        return plan

    def pretrain_one(self, run: dict) -> dict:
        from tokfilter.train.config import TrainConfig, set_value, validate
        from tokfilter.train.loop import train

        p = self.exp.pretrain
        config = TrainConfig()
        for key, value in p.train.items():
            set_value(config, key, value, where="pretrain.train")
        config.model.preset = run["size"]
        config.data.shards = str(self.out / "shards")
        config.eval.shards = str(self.out / "eval-shards")
        config.eval.labels = "truth"
        config.filter.mode = run["mode"]
        config.filter.scores = p.scores
        if run["mode"] == "document":
            config.filter.doc_aggregate = p.doc_aggregate
            config.filter.doc_threshold = run["threshold"]
            config.filter.threshold = run["token_threshold"]
        elif run["threshold"] is not None:
            config.filter.threshold = run["threshold"]
        config.run.seed = self.exp.seed
        config.run.progress = False
        validate(config)
        run_dir = self.out / "runs" / run["name"]
        shutil.rmtree(run_dir, ignore_errors=True)
        summary = train(config, run_dir)
        return _run_record(run, summary)

    # ---------------------------------------------------------------- evaluation
    def mcq_sets(self) -> dict[str, tuple[str, str]]:
        """{set name: (path, format)} for every MCQ set of the experiment (`probes` = the shipped probe sets)."""
        from tokfilter.evaluate.probes import probe_path

        sets: dict[str, tuple[str, str]] = {}
        for entry in self.exp.eval.mcq:
            if entry == "probes":
                sets.update({f"probes_{kind}": (str(probe_path(kind)), "jsonl") for kind in ("forget", "retain")})
            else:
                fmt, sep, path = entry.partition(":")
                if not sep:
                    raise UserError(f"eval.mcq entry {entry!r}: expected 'probes' or FORMAT:PATH")
                sets[Path(path).stem] = (path, fmt)
        return sets

    def mcq_one(self, run_name: str) -> dict:
        from tokfilter.evaluate.loading import load_checkpoint
        from tokfilter.evaluate.mcq import evaluate_sets

        model, tokenizer = load_checkpoint(self.out / "runs" / run_name, device="cpu")
        return evaluate_sets(model, tokenizer, self.mcq_sets(), limit=self.exp.eval.mcq_limit or None)

    def slowdown(self, runs: list[dict]) -> dict:
        from tokfilter.evaluate.slowdown import slowdown_for_results

        baselines = [r for r in runs if r["mode"] == "none"]
        if len({r["flops"] for r in baselines}) < 2:
            return {"skipped": "needs unfiltered runs at two or more compute budgets (add sizes)"}
        return slowdown_for_results({"runs": runs}, samples=1000, seed=self.exp.seed)

    # ---------------------------------------------------------------- robustness, refusal
    def _main_runs(self, runs: list[dict]) -> dict[str, dict]:
        """The largest size's run of each mode at the first threshold: the models the attacks compare."""
        size = self.exp.pretrain.sizes[-1]
        chosen: dict[str, dict] = {}
        for run in runs:
            if run["name"].endswith(f"-{size}") and run["mode"] not in chosen:
                chosen[run["mode"]] = run
        return chosen

    def _held_out_texts(self, domain: str) -> list[str]:
        path = self.out / "benchmark" / "eval-clean.jsonl"
        return [r["text"] for r in map(json.loads, path.read_text().splitlines()) if r["domain"] == domain]

    def robustness(self, runs: list[dict]) -> dict:
        from tokfilter.labels.benchmark import load_benchmark
        from tokfilter.posthoc.suite import rmu_name, robustness_section

        main = self._main_runs(runs)
        if "none" not in main:
            return {"skipped": "needs an unfiltered run"}
        train = load_benchmark(self.out / "benchmark", "valid")
        forget_train = [b.document.text for b in train if b.document.domain == "forget"]
        retain_train = [b.document.text for b in train if b.document.domain == "retain"]
        baseline = main["none"]["name"]
        models = {run["name"]: self.out / "runs" / run["name"] for run in main.values()}
        return robustness_section(models, baseline, forget_train, retain_train, self._held_out_texts("forget"),
                                  self.out / "runs" / rmu_name(baseline), self.exp.robustness, self.exp.seed)

    def refusal(self, runs: list[dict]) -> dict:
        from tokfilter.posthoc.suite import refusal_section

        models = {run["name"]: self.out / "runs" / run["name"] for run in self._main_runs(runs).values()}
        return refusal_section(models, self.exp.refusal, self.exp.seed)

    # ---------------------------------------------------------------- all
    def run(self) -> dict:
        started = time.time()
        exp, st = self.exp, self.stages
        data_cfg = asdict(exp.data)
        st.run("corpus", {"data": data_cfg, "seed": exp.seed}, [], self.corpus)
        st.run("tokenizer", asdict(exp.tokenizer), ["corpus"], self.tokenizer)
        st.run("shards", {}, ["corpus", "tokenizer"], self.shards)
        classifier = st.run("classifier", asdict(exp.classifier), ["shards"], self.classifier)
        st.run("annotate", asdict(exp.annotate), ["classifier", "shards"], self.annotate)
        upstream = ["shards", "annotate"] if exp.pretrain.scores == "forget" else ["shards"]
        pretrain_cfg = {k: v for k, v in asdict(exp.pretrain).items() if k not in ("sizes", "modes", "thresholds",
                                                                                    "doc_thresholds",
                                                                                    "doc_token_threshold",
                                                                                    "baseline_sizes")}
        runs = []
        for run in self.run_plan():
            st.planned.insert(st.planned.index("pretrain"), f"pretrain:{run['name']}")
            runs.append(st.run(f"pretrain:{run['name']}", {**pretrain_cfg, **run, "seed": exp.seed}, upstream,
                               lambda run=run: self.pretrain_one(run)))
        for run in runs:
            run["mcq"] = st.run(f"mcq:{run['name']}", {"eval": asdict(exp.eval)}, [f"pretrain:{run['name']}"],
                                lambda run=run: self.mcq_one(run["name"]))
        run_keys = [f"pretrain:{run['name']}" for run in runs]
        slowdown = st.run("slowdown", {}, run_keys, lambda: self.slowdown(runs))
        robustness = (st.run("robustness", asdict(exp.robustness), run_keys, lambda: self.robustness(runs))
                      if exp.robustness.enabled else {})
        refusal = (st.run("refusal", asdict(exp.refusal), run_keys, lambda: self.refusal(runs))
                   if exp.refusal.enabled else {})
        from tokfilter.evaluate.pareto import pareto_summary

        results = {
            "tokfilter_version": __version__, "experiment": exp.name, "seed": exp.seed,
            "wall_seconds": round(time.time() - started, 2),
            "classifier": classifier, "runs": runs, "pareto": pareto_summary(runs), "slowdown": slowdown,
            "robustness": robustness,
            "refusal": refusal,
            "corpus": {**st.results["corpus"], **st.results["shards"]},
            "stages": {"seconds": st.timings, "cached": st.cached},
            "config": exp.to_dict(),
        }
        write_json(self.out / "results.json", results)
        self.report()
        self.results = results
        return results

    def report(self) -> None:
        from tokfilter.report.html import make_report

        make_report(self.out)
        try:
            from tokfilter.report.view import write_view

            write_view(self.out / "shards", self.out / "view.html", name="forget")
        except ImportError:
            pass


def _run_record(run: dict, summary: dict) -> dict:
    """One `runs[]` entry of results.json (DESIGN.md) from a training summary."""
    return {
        "name": run["name"], "mode": run["mode"], "threshold": run["threshold"], "size": run["size"],
        "params": summary.get("params"), "train_tokens": summary.get("train_tokens"),
        "effective_tokens": summary.get("effective_tokens"), "flops": summary.get("flops"),
        "tokens_filtered_frac": summary.get("tokens_filtered_frac"),
        "loss": summary.get("loss", {}), "loss_own": summary.get("loss_own", {}), "bpb": summary.get("bpb", {}),
        "seconds": summary.get("seconds"),
    }


def print_summary(results: dict) -> None:
    """The runs' losses side by side, the classifier and the headline comparisons, on stdout."""
    c = results.get("classifier") or {}
    if c:
        print(f"classifier {c.get('kind')}: F1 {c.get('f1', 0):.3f}  AUROC {c.get('auroc', 0):.3f}  "
              f"threshold {c.get('threshold', 0):.2f}")
        for b in c.get("baselines", []):
            print(f"  baseline {b.get('kind'):<10} F1 {b.get('f1', 0):.3f}")
    print(f"{'run':<28}{'forget':>9}{'retain':>9}{'general':>9}{'filtered':>10}")
    for run in results.get("runs", []):
        loss = run.get("loss", {})
        print(f"{run['name']:<28}{loss.get('forget', float('nan')):>9.3f}{loss.get('retain', float('nan')):>9.3f}"
              f"{loss.get('general', float('nan')):>9.3f}{run.get('tokens_filtered_frac') or 0:>10.1%}")
    from tokfilter.evaluate.pareto import describe

    lines = describe(results.get("pareto") or {})
    if lines:
        print("token removal vs document filtering (loss change against the unfiltered run of the same size):")
        for line in lines:
            print(f"  {line}")
