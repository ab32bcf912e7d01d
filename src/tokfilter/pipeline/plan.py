"""The plan of an experiment, checked before any expensive step: what data each stage gets, what each run costs.

`make_plan(exp)` reads the corpus exactly as the corpus step will (ids made unique, splits assigned, per-domain caps,
the same in-memory benchmark), counts documents and tokens per domain and split, lists the runs with their budgets
in effective tokens and optimizer steps, and checks every stage's data needs:

    classifier   in the label part of the train split, documents with forget text and retain/general documents;
                 valid and test documents to pick the threshold and to measure it
    pretraining  documents in the pretrain part of the train split (shards/, scored out of sample)
    evaluation   held-out (test split) documents of every domain, for the domain losses
    robustness   whole forget documents in the valid split (the attack's and RMU's training text) and retain
                 documents there (RMU's retain term); held-out forget documents (what the attack measures)
    refusal      the instruction data shipped with the package (posthoc/data) holds enough examples

The train split after splicing is divided by `[classifier] label_fraction` (pipeline/folds.py) into the label part
(the classifier trains on it) and the pretrain part (the pretraining corpus): the plan counts both (`parts`), and
its pretraining numbers (annotation time, epochs of each run over the corpus) use the pretrain part only.

A need that is not met is a problem: `tokfilter run` stops before its first step with one line that names the
setting or data that fixes it. A stage whose experiment section says `optional = true` is skipped instead, with the
reason recorded in results.json. `tokfilter run EXPERIMENT.toml --plan` prints the plan, with a wall-time estimate
from per-step times measured on this machine (a few real training steps of each model size), and trains nothing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from tokfilter.errors import UserError
from tokfilter.labels.benchmark import kind_counts, make_benchmark
from tokfilter.pipeline.experiment import Experiment
from tokfilter.pipeline.folds import label_and_pretrain
from tokfilter.pipeline.steps import corpus, pretrain
from tokfilter.posthoc.chat import (
    default_general_path,
    default_questions_path,
    read_chat_file,
    read_questions,
)
from tokfilter.tokenizer import Tokenizer, load_tokenizer
from tokfilter.tokenizer.core import default_tokenizer_spec

MIN_TRAIN_DOCS = 20  # in the label part: documents with forget text, and retain+general ones, for a useful classifier
MIN_ATTACK_DOCS = 2  # whole forget documents in the valid split for the attack / RMU text
SAMPLE_DOCS = 500  # documents per (split, domain) tokenized to estimate tokens per character
PROBE_MAX_PARAMS = 3_000_000  # larger models are not timed here: estimated from FLOPs at the measured matmul rate
LARGE_MODEL_EFFICIENCY = 0.3  # share of the matmul rate a training step reaches (an assumption, not a measurement)


@dataclass
class Plan:
    experiment: str
    corpus: dict  # the corpus report (documents read, ids assigned, duplicates, splits assigned)
    counts: dict  # {split: {domain: {"documents": n, "tokens": n}}} after the caps
    benchmark: dict  # {split: {kind: documents}} of the spliced benchmark
    runs: list[dict]  # name, mode, size, params, effective_tokens, steps, epochs (over the pretrain part)
    # the train split after splicing, divided: {"label"|"pretrain": {"documents", "forget_documents" (with forget
    # text: whole forget documents and spliced hosts), "tokens", "kinds": {kind: documents}}}
    parts: dict = field(default_factory=dict)
    label_fraction: float = 0.5
    skipped: dict[str, str] = field(default_factory=dict)  # stage -> reason
    problems: list[str] = field(default_factory=list)
    estimate_seconds: dict[str, float] = field(default_factory=dict)
    tokens_estimated_with: str = ""
    # what the corpus step would compute again: {"report", "parts", "benchmark"} (in memory, not printed)
    prepared: dict = field(default_factory=dict, repr=False)

    def check(self) -> None:
        """Raise the first problem as a one-line UserError (what is short and which setting or data fixes it)."""
        if self.problems:
            more = f" (and {len(self.problems) - 1} more: see `tokfilter run EXPERIMENT.toml --plan`)" \
                if len(self.problems) > 1 else ""
            raise UserError(self.problems[0] + more)


def _count_tokens(tokenizer: Tokenizer, docs: list) -> int:
    """Tokens of `docs`, measured on a sample of at most SAMPLE_DOCS and scaled by characters."""
    if not docs:
        return 0
    sample = docs[:SAMPLE_DOCS]
    ids = tokenizer.encode_batch_ids([d.text for d in sample])
    per_char = (sum(len(x) + 1 for x in ids)) / max(sum(len(d.text) for d in sample), 1)
    return int(round(per_char * sum(len(d.text) for d in docs)))


def _params(size: str, vocab_size: int, seq_len: int) -> int:
    from tokfilter.model import GPTConfig  # torch (the module); the count itself is arithmetic

    return GPTConfig.preset(size, vocab_size, seq_len).num_params()


def _train_settings(exp: Experiment) -> dict:
    config = pretrain.base_train_config(exp)
    return {"batch_size": config.data.batch_size, "seq_len": config.model.seq_len,
            "tokens_per_param": config.budget.tokens_per_param, "tokens": config.budget.tokens}


def _check_needs(exp: Experiment, counts: dict, bench: dict, plan: Plan) -> None:
    def docs(split: str, domain: str) -> int:
        return counts.get(split, {}).get(domain, {}).get("documents", 0)

    d, fraction = exp.data, exp.classifier.label_fraction
    label = plan.parts["label"]
    if label["forget_documents"] < MIN_TRAIN_DOCS:
        plan.problems.append(f"classifier: {label['forget_documents']} documents with forget text in the label part "
                             f"of the train split (needs >= {MIN_TRAIN_DOCS}): add forget=PATH data, raise [data] "
                             f"docs_per_domain or [classifier] label_fraction (now {fraction})")
    if label["documents"] - label["kinds"].get("forget", 0) < MIN_TRAIN_DOCS:
        plan.problems.append("classifier: too few retain/general documents in the label part of the train split "
                             f"(needs >= {MIN_TRAIN_DOCS}): add retain=PATH / general=PATH data or raise "
                             f"[classifier] label_fraction (now {fraction})")
    if plan.parts["pretrain"]["documents"] == 0:
        plan.problems.append("pretraining: no document of the train split is in the pretrain part: lower "
                             f"[classifier] label_fraction (now {fraction}) or add data")
    for split, setting in (("valid", "valid_frac"), ("test", "test_frac")):
        if docs(split, "forget") == 0 or docs(split, "retain") + docs(split, "general") == 0:
            plan.problems.append(f"classifier: the {split} split needs forget and retain/general documents (threshold "
                                 f"choice and test metrics): raise [data] {setting} (now "
                                 f"{getattr(d, setting)}) or [data] heldout_docs_per_domain")
    for domain in ("forget", "retain", "general"):
        if counts.get("eval", {}).get(domain, {}).get("documents", 0) == 0:
            plan.problems.append(f"evaluation: no held-out {domain} documents for the {domain} loss: raise [data] "
                                 f"test_frac (now {d.test_frac}) or eval_docs_per_domain, or add {domain}=PATH data")
    needs = []
    whole_forget = bench.get("valid", {}).get("forget", 0)
    if whole_forget < MIN_ATTACK_DOCS:
        needs.append(f"{whole_forget} whole forget documents in the valid split after splicing (the attack and RMU "
                     f"train on them; needs >= {MIN_ATTACK_DOCS}): raise [data] valid_frac (now {d.valid_frac}) or "
                     "heldout_docs_per_domain, or lower [data] splice_fraction")
    if bench.get("valid", {}).get("retain", 0) + bench.get("valid", {}).get("retain+passage", 0) == 0:
        needs.append("no retain documents in the valid split for RMU's retain term: raise [data] valid_frac or "
                     "add retain=PATH data")
    if "none" not in exp.pretrain.modes:
        needs.append("no unfiltered run to attack RMU on: add 'none' to [pretrain] modes")
    if exp.robustness.enabled and needs:
        if exp.robustness.optional:
            plan.skipped["robustness"] = "; ".join(needs)
        else:
            plan.problems.append("robustness: " + needs[0] + " (or set [robustness] enabled = false, or "
                                 "optional = true to skip it when the data cannot support it)")
    if exp.refusal.enabled:

        # refusal trains on one seeded half of each kind and evaluates on the other
        available = min(len(read_questions(default_questions_path())), len(read_chat_file(default_general_path()))) // 2
        need = max(exp.refusal.n_train, exp.refusal.n_eval)
        if need > available:
            reason = (f"[refusal] n_train / n_eval ask for {need} examples of each kind but each half of the shipped "
                      f"instruction data holds {available}: lower n_train / n_eval")
            if exp.refusal.optional:
                plan.skipped["refusal"] = reason
            else:
                plan.problems.append("refusal: " + reason)


def make_plan(exp: Experiment, measure: bool = False) -> Plan:
    """The plan of `exp` (see the module docstring); `measure` times real steps to estimate wall time."""
    documents, report = corpus.read_documents(exp)
    parts = corpus.split_documents(exp, documents)
    spec = exp.tokenizer.spec or default_tokenizer_spec()
    tokenizer = load_tokenizer(spec)
    counts: dict = {}
    for split, docs in parts.items():
        for domain in corpus.DOMAINS:
            members = [doc for doc in docs if doc.domain == domain]
            counts.setdefault(split, {})[domain] = {"documents": len(members),
                                                    "tokens": _count_tokens(tokenizer, members)}
    benchmark = make_benchmark(parts["train"] + parts["valid"] + parts["test"], corpus.benchmark_config(exp))
    bench = {split: kind_counts(items) for split, items in benchmark.items()}
    train_chars = sum(len(doc.text) for doc in parts["train"])
    tokens_per_char = sum(c["tokens"] for c in counts["train"].values()) / max(train_chars, 1)
    fraction = exp.classifier.label_fraction
    folds = dict(zip(("label", "pretrain"), label_and_pretrain(benchmark["train"], fraction),
                     strict=True))
    fold_counts = {name: {"documents": len(items), "forget_documents": sum(1 for b in items if b.spans),
                          "tokens": int(round(tokens_per_char * sum(len(b.document.text) for b in items))),
                          "kinds": kind_counts(items)} for name, items in folds.items()}
    settings = _train_settings(exp)
    vocab = max(tokenizer.vocab_size, 1)
    runs = []
    for run in pretrain.plan(exp):
        params = _params(run["size"], vocab, settings["seq_len"])
        budget = settings["tokens"] or int(settings["tokens_per_param"] * params)
        steps = math.ceil(budget / (settings["batch_size"] * settings["seq_len"]))
        corpus_tokens = fold_counts["pretrain"]["tokens"]
        runs.append({**{k: run[k] for k in ("name", "mode", "size", "threshold")}, "params": params,
                     "effective_tokens": budget, "steps": steps,
                     "epochs": round(budget / corpus_tokens, 2) if corpus_tokens else None})
    plan = Plan(experiment=exp.name, corpus=report, counts=counts, benchmark=bench, runs=runs, parts=fold_counts,
                label_fraction=fraction,
                tokens_estimated_with=f"{tokenizer.spec} (a sample of <= {SAMPLE_DOCS} documents per split/domain)",
                prepared={"report": report, "parts": parts, "benchmark": benchmark})
    _check_needs(exp, counts, bench, plan)
    if measure:
        plan.estimate_seconds = estimate_seconds(exp, plan, vocab, settings)
    return plan


def _matmul_flops(n: int = 512, repeats: int = 4) -> float:
    """fp32 matmul FLOP/s of this machine (torch's default threads)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / max(time.perf_counter() - start, 1e-9)


def _step_seconds(size: str, vocab: int, batch_size: int, seq_len: int, repeats: int = 1) -> float:
    """Seconds per optimizer step of a model size on this machine: 1 warm-up step, then the mean of `repeats`
    (models over PROBE_MAX_PARAMS: estimated from their FLOPs instead)."""
    import torch

    from tokfilter.model import GPT, GPTConfig
    from tokfilter.train.optim import finetune_step, make_optimizer

    cfg = GPTConfig.preset(size, vocab, seq_len)
    if cfg.num_params() > PROBE_MAX_PARAMS:  # too slow to time here: FLOPs at the measured matmul rate
        return cfg.flops_per_token() * batch_size * seq_len / (_matmul_flops() * LARGE_MODEL_EFFICIENCY)
    model = GPT(cfg)
    optimizer = make_optimizer(model, 1e-3)
    x = torch.randint(0, vocab, (batch_size, seq_len))
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        finetune_step(model, optimizer, x, x)  # forward, backward, clip, AdamW step: what a training step costs
        times.append(time.perf_counter() - start)
    return sum(times[1:]) / repeats


def estimate_seconds(exp: Experiment, plan: Plan, vocab: int, settings: dict) -> dict[str, float]:
    """Wall-time estimate per stage from step times measured here (training dominates; the rest is scaled)."""
    per_step = {size: _step_seconds(size, vocab, settings["batch_size"], settings["seq_len"])
                for size in dict.fromkeys(run["size"] for run in plan.runs)}
    out: dict[str, float] = {}
    pretrain_seconds = 0.0
    for run in plan.runs:
        step = per_step.get(run["size"])
        if step is not None:
            pretrain_seconds += step * run["steps"] * 1.15  # evaluation and data loading: ~15% measured on the demo
    out["pretrain"] = round(pretrain_seconds, 1)
    pretrain_tokens = plan.parts.get("pretrain", {}).get("tokens", 0)  # annotation scores the pretrain part only
    out["annotate"] = round(pretrain_tokens / 60_000, 1)  # biLM scoring ~60k tokens/s over 2 cores (docs/benchmarks.md)
    largest = per_step.get(exp.pretrain.sizes[-1])
    if largest is not None:
        tokens_per_step = settings["batch_size"] * settings["seq_len"]
        if exp.robustness.enabled and "robustness" not in plan.skipped:
            attack_steps = exp.robustness.max_tokens / tokens_per_step * len(exp.robustness.lrs) * len(exp.pretrain.modes)
            rmu_steps = exp.robustness.rmu_steps * len(exp.robustness.rmu_coeffs) * len(exp.robustness.rmu_alphas)
            out["robustness"] = round((attack_steps + rmu_steps) * largest * 1.5 * len(exp.seed_list()), 1)
        if exp.refusal.enabled and "refusal" not in plan.skipped:
            out["refusal"] = round(exp.refusal.steps * len(exp.pretrain.modes) * largest * 2.0 * len(exp.seed_list()), 1)
    out["total"] = round(sum(out.values()), 1)
    return out


def format_plan(plan: Plan) -> str:
    """The plan as text: data per split and domain, the runs, skipped stages, problems and the time estimate."""
    lines = [f"plan of experiment {plan.experiment!r}", f"corpus: {plan.corpus.get('summary', '')}",
             f"{'split':<7}{'domain':<9}{'documents':>11}{'tokens':>13}"]
    for split, domains in plan.counts.items():
        for domain, c in domains.items():
            lines.append(f"{split:<7}{domain:<9}{c['documents']:>11,}{c['tokens']:>13,}")
    lines.append(f"(tokens estimated with {plan.tokens_estimated_with}; 'eval' = held-out documents for the losses)")
    lines.append("benchmark after splicing: " + "; ".join(
        f"{split} " + ", ".join(f"{k} {v:,}" for k, v in kinds.items()) for split, kinds in plan.benchmark.items()))
    lines.append(f"train split divided by [classifier] label_fraction = {plan.label_fraction:g} (no document in both):")
    for name, role in (("label", "the classifier trains on it"),
                       ("pretrain", "shards/: annotated out of sample and pretrained on")):
        part = plan.parts.get(name, {})
        kinds = ", ".join(f"{k} {v:,}" for k, v in part.get("kinds", {}).items())
        lines.append(f"  {name:<9}{part.get('documents', 0):>7,} documents{part.get('tokens', 0):>13,} tokens  "
                     f"({role}; {kinds})")
    lines.append(f"{'run':<28}{'params':>11}{'effective tokens':>18}{'steps':>8}{'epochs':>8}")
    for run in plan.runs:
        epochs = f"{run['epochs']:>8.2f}" if run.get("epochs") is not None else f"{'-':>8}"
        lines.append(f"{run['name']:<28}{run['params']:>11,}{run['effective_tokens']:>18,}{run['steps']:>8,}{epochs}")
    lines.append("(epochs: effective tokens / tokens of the pretrain part; above 1 the runs repeat documents)")
    for stage, reason in plan.skipped.items():
        lines.append(f"skipped: {stage}: {reason}")
    for problem in plan.problems:
        lines.append(f"PROBLEM: {problem}")
    if plan.estimate_seconds:
        parts = ", ".join(f"{k} {v / 60:.1f} min" for k, v in plan.estimate_seconds.items() if k != "total")
        lines.append(f"estimated wall time on this machine: {plan.estimate_seconds['total'] / 60:.1f} min ({parts}; "
                     "plus the classifier stage)")
    lines.append("nothing was trained" if not plan.problems else "the run would stop here: fix the problems above")
    return "\n".join(lines)
