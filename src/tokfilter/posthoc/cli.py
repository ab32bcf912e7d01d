"""CLI for robustness and alignment: `tokfilter attack finetune`, `tokfilter unlearn rmu`, `tokfilter align refusal`,
`tokfilter generate`.

Each command prints one JSON object on stdout (and, with --json-out, writes it atomically); progress bars go to
stderr. Text inputs are corpus specs (files, globs, `DOMAIN=PATH`) or `demo:DOMAIN[:SPLIT]` for a part of the
embedded demo corpus (e.g. `demo:forget:train`). The implementations live in tokfilter.posthoc.{attack, rmu,
refusal, generate, judge}; see their docstrings for the procedures. Flag defaults come from posthoc.settings
(the experiment file's [robustness] / [refusal] defaults), so the command and `tokfilter demo` agree.
"""

from __future__ import annotations

import argparse

from tokfilter.atomic import emit_json
from tokfilter.errors import UserError
from tokfilter.posthoc.chat import default_qa_path, read_qa_pairs
from tokfilter.posthoc.judge import DEFAULT_KEY_ENV, OpenAIJudge
from tokfilter.posthoc.settings import (
    ATTACK_BATCH_SIZE,
    EVAL_MAX_TOKENS,
    GENERATE_MAX_NEW_TOKENS,
    REFUSAL_DEFAULTS,
    REFUSAL_MAX_NEW_TOKENS,
    RMU_C_SCALE,
    RMU_MAX_RETAIN_INCREASE,
    ROBUSTNESS_DEFAULTS,
    SFT_BATCH_SIZE,
    SFT_LR,
    TEMPERATURE,
)
from tokfilter.runtime import set_threads

# The modules that train (attack, rmu, refusal, generate, evaluate.loading, train.checkpoint) import torch; the
# handlers import them when they run, so `tokfilter --help` and the other commands stay fast.


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"{what} {text!r}: expected comma-separated numbers") from None
    if not values:
        raise UserError(f"{what}: no values")
    return values


def _csv(values) -> str:
    """A default list of numbers as the comma-separated text the flags take."""
    return ",".join(f"{v:g}" for v in values)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, ...")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads on CPU (0 = leave as is)")
    p.add_argument("--json-out", metavar="FILE", help="also write the JSON result to this file")
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")


def _add_judge(p: argparse.ArgumentParser) -> None:
    p.add_argument("--judge-url", help="OpenAI-compatible endpoint base URL (e.g. https://host/v1); optional")
    p.add_argument("--judge-model", default="gpt-4o-mini", help="judge model name")
    p.add_argument("--judge-key-env", default=DEFAULT_KEY_ENV,
                   help="environment variable holding the judge's API key (never printed)")


def _judge(args: argparse.Namespace) -> OpenAIJudge | None:
    if not args.judge_url:
        return None
    return OpenAIJudge(args.judge_url, args.judge_model, key_env=args.judge_key_env)


def _check_same_tokenizer(model: str, baseline: str) -> None:
    from tokfilter.train.checkpoint import read_checkpoint_config

    a, b = (read_checkpoint_config(p).get("tokenizer") or {} for p in (model, baseline))
    if a.get("hash") != b.get("hash"):
        raise UserError(f"{baseline}: baseline uses another tokenizer than {model}; losses are not comparable")


def run_attack(args: argparse.Namespace) -> int:
    """`tokfilter attack finetune`."""
    from tokfilter.posthoc.attack import baseline_loss_of, finetune_attack
    from tokfilter.posthoc.texts import read_texts

    set_threads(args.threads)
    _check_outputs(args)
    if args.baseline_loss is not None and args.baseline:
        raise UserError("give --baseline-loss or --baseline, not both")
    lrs = _floats(args.lrs, "--lrs")
    train = read_texts(args.data, "--data")
    held = read_texts(args.eval, "--eval")
    baseline = args.baseline_loss
    if args.baseline:
        _check_same_tokenizer(args.model, args.baseline)
        baseline = baseline_loss_of(args.baseline, held, args.eval_tokens, args.device)
    result = finetune_attack(args.model, train, held, baseline, lrs, args.tokens, args.batch_size, args.seed,
                             args.eval_tokens, args.device, progress=not args.no_progress)
    return emit_json({"model": str(args.model), **result}, args.json_out)


def run_unlearn(args: argparse.Namespace) -> int:
    """`tokfilter unlearn rmu` (with --attack, then the finetuning attack on the result)."""
    from tokfilter.posthoc.attack import finetune_attack
    from tokfilter.posthoc.rmu import rmu_unlearn
    from tokfilter.posthoc.texts import read_texts

    set_threads(args.threads)
    _check_outputs(args)
    forget = read_texts(args.forget, "--forget")
    retain = read_texts(args.retain, "--retain")
    forget_eval = read_texts(args.forget_eval, "--forget-eval") if args.forget_eval else None
    retain_eval = read_texts(args.retain_eval, "--retain-eval") if args.retain_eval else None
    if args.attack and forget_eval is None:
        raise UserError("--attack needs --forget-eval (held-out forget text for the attack's loss curve)")
    # With --attack, --forget-eval is what the attack measures, so RMU's setting is chosen on every 10th --forget /
    # --retain document instead: selection and measurement never share a text.
    selection_forget, selection_retain = (None, None) if args.attack else (forget_eval, retain_eval)
    report = rmu_unlearn(args.model, forget, retain, args.out, layer=args.layer,
                         coeffs=_floats(args.steering_coeff, "--steering-coeff"),
                         alphas=_floats(args.alpha, "--alpha"), c_scale=args.c_scale, steps=args.steps, lr=args.lr,
                         batch_size=args.batch_size, seed=args.seed, forget_eval_docs=selection_forget,
                         retain_eval_docs=selection_retain, max_retain_increase=args.max_retain_increase,
                         device=args.device, progress=not args.no_progress)
    if args.attack:
        report["selection"] = "every 10th --forget / --retain document (disjoint from --forget-eval)"
        report["attack"] = finetune_attack(args.out, forget, forget_eval, report["before"]["forget"],
                                           _floats(args.lrs, "--lrs"), args.tokens, seed=args.seed,
                                           device=args.device, progress=not args.no_progress)
    return emit_json(report, args.json_out)


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse an unusable --out / --json-out before any training (a checkpoint folder never replaces user files)."""
    from tokfilter.atomic import check_writable
    from tokfilter.train.checkpoint import check_target

    if getattr(args, "out", None):
        check_target(args.out)
    if getattr(args, "json_out", None):
        check_writable(args.json_out)


def _check_sampling(args: argparse.Namespace) -> None:
    """Sampling settings shared by `align refusal` and `generate`."""
    if args.temperature < 0:
        raise UserError(f"--temperature must be >= 0, not {args.temperature}")


def run_align(args: argparse.Namespace) -> int:
    """`tokfilter align refusal`."""
    from tokfilter.posthoc.refusal import refusal_train_and_eval

    set_threads(args.threads)
    _check_outputs(args)
    _check_sampling(args)
    result = refusal_train_and_eval(args.model, args.out, n_train=args.n_train, n_eval=args.n_eval,
                                    steps=args.steps, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                                    questions_path=args.questions, general_path=args.general,
                                    max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                                    judge=_judge(args), device=args.device, progress=not args.no_progress)
    return emit_json(result, args.json_out)


def run_generate(args: argparse.Namespace) -> int:
    """`tokfilter generate`."""
    from tokfilter.evaluate.loading import load_checkpoint
    from tokfilter.posthoc.generate import freeform_eval

    set_threads(args.threads)
    _check_outputs(args)
    _check_sampling(args)
    if args.n < 1:
        raise UserError(f"--n must be >= 1, not {args.n}")
    pairs = read_qa_pairs(args.qa or default_qa_path())
    if args.limit:
        pairs = pairs[: args.limit]
    model, tokenizer = load_checkpoint(args.model, device=args.device)
    result = freeform_eval(model, tokenizer, pairs, n=args.n, max_new_tokens=args.max_new_tokens,
                           temperature=args.temperature, seed=args.seed, judge=_judge(args),
                           progress=not args.no_progress)
    return emit_json({"model": str(args.model), **result}, args.json_out)


def _group(subparsers: argparse._SubParsersAction, name: str, help: str, description: str):
    """A command with required subcommands (`tokfilter NAME COMMAND ...`); returns its subparsers."""
    parser = subparsers.add_parser(name, help=help, description=description)
    sub = parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND")
    sub.required = True
    return sub


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `attack finetune`, `unlearn rmu`, `align refusal` and `generate`; defaults from settings.py."""
    robust, refusal = ROBUSTNESS_DEFAULTS, REFUSAL_DEFAULTS
    attack_sub = _group(subparsers, "attack", "adversarial finetuning attacks", "Adversarial attacks on a checkpoint.")
    p = attack_sub.add_parser(
        "finetune", help="finetune on forget text; tokens until the baseline loss is recovered",
        description="Full finetuning at constant learning rate (swept) on forget-domain text; prints the held-out "
                    "forget-loss curve and the tokens needed to reach the unfiltered baseline's loss.")
    p.add_argument("--model", required=True, help="checkpoint (or run) directory to attack")
    p.add_argument("--data", required=True, nargs="+", help="forget-domain finetuning text (corpus specs)")
    p.add_argument("--eval", required=True, nargs="+", help="held-out forget-domain text (corpus specs)")
    p.add_argument("--lrs", default=_csv(robust.lrs), help="learning rates to sweep (comma-separated)")
    p.add_argument("--tokens", type=int, default=robust.max_tokens, help="finetuning token budget per learning rate")
    p.add_argument("--batch-size", type=int, default=ATTACK_BATCH_SIZE, help="sequences per step")
    p.add_argument("--eval-tokens", type=int, default=EVAL_MAX_TOKENS, help="held-out tokens per evaluation")
    p.add_argument("--baseline-loss", type=float, help="target loss (the unfiltered model's)")
    p.add_argument("--baseline", help="unfiltered checkpoint; its loss on --eval is the target")
    _add_common(p)
    p.set_defaults(func=run_attack)

    unlearn_sub = _group(subparsers, "unlearn", "post-hoc unlearning baselines", "Post-hoc unlearning baselines.")
    p = unlearn_sub.add_parser(
        "rmu", help="RMU unlearning (WMDP), hyperparameters swept",
        description="RMU: steer layer-l activations on forget text toward c*u, keep retain activations, update the "
                    "MLPs of blocks l-2..l; sweeps c and alpha and keeps the best setting.")
    p.add_argument("--model", required=True, help="checkpoint to unlearn (usually the unfiltered baseline)")
    p.add_argument("--forget", required=True, nargs="+", help="forget-domain text (corpus specs)")
    p.add_argument("--retain", required=True, nargs="+", help="retain-domain text (corpus specs)")
    p.add_argument("--out", required=True, help="output checkpoint directory")
    p.add_argument("--forget-eval", nargs="+", help="held-out forget text: RMU's selection and before/after losses (default: every 10th --forget "
                        "doc); with --attack it is what the attack measures, and selection uses every 10th --forget "
                        "doc, so the two never share a text")
    p.add_argument("--retain-eval", nargs="+", help="held-out retain text (default: every 10th --retain doc)")
    p.add_argument("--layer", type=int, help="block index l (0-based; default the middle block)")
    p.add_argument("--steering-coeff", default=_csv(robust.rmu_coeffs), help="c values to sweep (comma-separated)")
    p.add_argument("--c-scale", default=RMU_C_SCALE, choices=("norm", "absolute"),
                   help="c in units of the layer's mean activation norm (default) or absolute")
    p.add_argument("--alpha", default=_csv(robust.rmu_alphas), help="retain weights to sweep (comma-separated)")
    p.add_argument("--steps", type=int, default=robust.rmu_steps)
    p.add_argument("--lr", type=float, default=robust.rmu_lr)
    p.add_argument("--batch-size", type=int, default=robust.rmu_batch_size, help="windows per step (forget and retain each)")
    p.add_argument("--max-retain-increase", type=float, default=RMU_MAX_RETAIN_INCREASE,
                   help="largest acceptable retain-loss rise (nats) when choosing the setting")
    p.add_argument("--attack", action="store_true",
                   help="then run the finetuning attack on the result (target: the model's loss before RMU)")
    p.add_argument("--lrs", default=_csv(robust.lrs), help="attack learning rates")
    p.add_argument("--tokens", type=int, default=robust.max_tokens, help="attack token budget")
    _add_common(p)
    p.set_defaults(func=run_unlearn)

    align_sub = _group(subparsers, "align", "alignment finetuning", "Alignment finetuning.")
    p = align_sub.add_parser(
        "refusal", help="refusal SFT on half of HealthSearchQA + Alpaca; refusal rates on held-out prompts",
        description="SFT in the chat format: medical questions -> refusal sentences, Alpaca -> its answers; then "
                    "refusal rates (documented rules, optional LLM judge) on held-out medical and general prompts.")
    p.add_argument("--model", required=True, help="pretrained checkpoint")
    p.add_argument("--out", required=True, help="output checkpoint directory for the SFT model")
    p.add_argument("--questions", help="medical questions, one per line (default: shipped HealthSearchQA)")
    p.add_argument("--general", help="Alpaca-style JSON/JSONL (default: shipped Alpaca sample)")
    p.add_argument("--n-train", type=int, default=refusal.n_train, help="training examples of each kind")
    p.add_argument("--n-eval", type=int, default=refusal.n_eval, help="held-out prompts of each kind")
    p.add_argument("--steps", type=int, default=refusal.steps)
    p.add_argument("--lr", type=float, default=SFT_LR)
    p.add_argument("--batch-size", type=int, default=SFT_BATCH_SIZE)
    p.add_argument("--max-new-tokens", type=int, default=REFUSAL_MAX_NEW_TOKENS)
    p.add_argument("--temperature", type=float, default=TEMPERATURE)
    _add_judge(p)
    _add_common(p)
    p.set_defaults(func=run_align)

    p = subparsers.add_parser(
        "generate", help="free-form answers to held-out medical questions + likelihood proxy",
        description="Sample answers (T=0.8, 128 tokens, seeded) to medical questions in the chat format; score "
                    "the mean token log-likelihood of reference answers (offline proxy); optional LLM judge.")
    p.add_argument("--model", required=True, help="checkpoint (ideally after chat SFT)")
    p.add_argument("--qa", help="JSONL of {question, answer} (default: shipped MedQuAD sample)")
    p.add_argument("--limit", type=int, default=0, help="score only the first N pairs (0 = all)")
    p.add_argument("--n", type=int, default=16, help="questions to sample answers for")
    p.add_argument("--max-new-tokens", type=int, default=GENERATE_MAX_NEW_TOKENS)
    p.add_argument("--temperature", type=float, default=TEMPERATURE)
    _add_judge(p)
    _add_common(p)
    p.set_defaults(func=run_generate)
