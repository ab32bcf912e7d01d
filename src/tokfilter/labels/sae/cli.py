"""CLI: `tokfilter label sae` (its parser and its handler `run_label_sae`).

Runs the whole SAE labeler: load the LM and the SAE (or train one on the reference text), select forget latents
contrastively or with an LLM judge (or reuse a `--selection-out` file), label the corpus and write char-span labels
(DESIGN.md format) with a JSON summary on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from itertools import islice

import torch

from tokfilter.atomic import write_json
from tokfilter.corpus import read_corpus
from tokfilter.errors import UserError
from tokfilter.labels.sae.judge import JudgeSelector, openai_judge
from tokfilter.labels.sae.label import (
    SAELabeler,
    build_labeler,
    label_documents,
    load_selection,
    selection_record,
)
from tokfilter.labels.sae.model import layer_from_hook_name, load_sae, save_sae
from tokfilter.labels.sae.reader import ResidualReader, load_lm
from tokfilter.labels.sae.select import ContrastiveSelector
from tokfilter.labels.sae.train import SAETrainOptions
from tokfilter.labels.spans import write_counted_labels


def register(label_subparsers: argparse._SubParsersAction) -> None:
    """Called by `tokfilter.labels.cli.register`: adds `tokfilter label sae`."""
    add_sae_parser(label_subparsers)


def add_sae_parser(label_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `sae` to the `tokfilter label` subcommands."""
    p = label_subparsers.add_parser(
        "sae", help="label forget tokens with SAE latents of a causal LM's residual stream",
        description="Run a Hugging Face causal LM (directory or GGUF) over the corpus, encode layer L's residual "
                    "stream with a sparse autoencoder (loaded with --sae, or trained here on the reference text), "
                    "select forget latents contrastively (forget vs other reference text) or with an LLM judge, and "
                    "label a token forget when >= k selected latents fire at >= z std above their mean; spans then "
                    "grow over adjacent tokens with any positive selected activation. Writes char-span labels.")
    p.add_argument("corpus", nargs="+", metavar="CORPUS", help="documents to label (path, glob, DOMAIN=PATH, demo)")
    p.add_argument("--model", required=True, help="local HF model directory, or a .gguf file")
    p.add_argument("--gguf-file", help="GGUF file name inside the --model directory")
    p.add_argument("--layer", type=int, help="residual stream after this many blocks (default: from the SAE cfg)")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--sae", metavar="DIR", help="SAE directory in the SAELens layout (cfg.json + safetensors)")
    group.add_argument("--train-sae", action="store_true", help="train an SAE on the reference activations")
    p.add_argument("--sae-out", metavar="DIR", help="save the trained SAE here (SAELens layout)")
    p.add_argument("--sae-width", type=int, default=2048, help="latents of a trained SAE (default 2048)")
    p.add_argument("--sae-kind", choices=["topk", "standard"], default="topk",
                   help="topk (default) or standard (ReLU + L1)")
    p.add_argument("--sae-topk", type=int, default=32, help="k of a TopK SAE (default 32)")
    p.add_argument("--sae-l1", type=float, default=5.0, help="L1 coefficient of a ReLU SAE (default 5)")
    p.add_argument("--sae-steps", type=int, default=1000, help="training steps (default 1000)")
    p.add_argument("--reference-forget", nargs="+", metavar="SPEC", help="forget-domain text (required unless "
                   "--selection)")
    p.add_argument("--reference-other", nargs="+", metavar="SPEC", help="retain + general text (required unless "
                   "--selection)")
    p.add_argument("--max-reference-docs", type=int, default=500,
                   help="per side (default 500); their activations stay in memory: tokens x width x 4 bytes")
    p.add_argument("--reference-chars", type=int, help="use only the first N characters of each reference doc")
    p.add_argument("--selection", metavar="JSON", help="with --sae: reuse the latents, means and stds of a "
                   "--selection-out file instead of reading reference text again")
    p.add_argument("--max-docs", type=int, help="label at most this many corpus documents")
    p.add_argument("-k", type=int, default=2, help="selected latents a token must activate (default 2)")
    p.add_argument("-z", type=float, default=4.0, help="standard deviations above the latent mean (default 4)")
    p.add_argument("--selector", choices=["contrastive", "judge"], default="contrastive")
    p.add_argument("--min-specificity", type=float, default=0.7,
                   help="contrastive selector threshold: keep latents with p_forget / (p_forget + p_other) >= this (0.7)")
    p.add_argument("--min-forget-rate", type=float, default=0.002,
                   help="a selected latent fires on at least this fraction of forget tokens (0.002)")
    p.add_argument("--max-latents", type=int, default=512, help="cap on selected latents (512)")
    p.add_argument("--judge-url", help="OpenAI-compatible base URL, e.g. https://api.openai.com/v1")
    p.add_argument("--judge-model", default="gpt-4o-mini")
    p.add_argument("--judge-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    p.add_argument("--judge-threshold", type=float, default=0.9, help="keep latents the judge scores >= this")
    p.add_argument("--forget-description", default="clinical medicine (symptoms, diagnoses, treatments, drugs, "
                   "medical devices and procedures, human physiology, virology, immunology, pathology, disease)",
                   help="what the forget domain is, for the judge")
    p.add_argument("--selection-out", metavar="JSON", help="write the selected latents and their statistics here")
    p.add_argument("--max-tokens", type=int, default=256, help="LM window length in tokens (default 256)")
    p.add_argument("--batch-size", type=int, default=8, help="LM windows per forward pass (default 8)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--text-field", default="text")
    p.add_argument("--out", required=True, metavar="LABELS.jsonl")
    p.set_defaults(func=run_label_sae)
    return p


def _read_texts(specs: list[str], limit: int, text_field: str, chars: int | None = None) -> list[str]:
    return [d.text[:chars] for d in islice(read_corpus(specs, text_field=text_field), limit)]


def run_label_sae(args: argparse.Namespace) -> int:
    """Handler of `tokfilter label sae`: prints a JSON summary on stdout."""
    def log(message: str) -> None:
        print(message, file=sys.stderr)

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.k < 1 or args.z < 0:
        raise UserError(f"-k must be >= 1 and -z >= 0, got k={args.k}, z={args.z}")
    t0 = time.perf_counter()
    sae, layer = None, args.layer
    if args.sae:
        sae, cfg = load_sae(args.sae)
        meta = {**cfg, **(cfg.get("metadata") or {})}
        if layer is None:
            layer = meta.get("hook_layer") if "hook_name" not in meta else layer_from_hook_name(meta["hook_name"])
    if layer is None:
        raise UserError("--layer is required (the SAE cfg names no hook_name/hook_layer)")
    model, tokenizer = load_lm(args.model, args.gguf_file)
    if sae is not None and sae.d_in != model.config.hidden_size:
        raise UserError(f"--sae {args.sae}: d_in={sae.d_in} but the model's width is {model.config.hidden_size}")
    if args.selection:
        if sae is None:
            raise UserError("--selection needs --sae (the SAE the selection was made with)")
        latents, mean, std = load_selection(args.selection, sae.d_sae, layer)
        reader = ResidualReader(model, tokenizer, layer, max_tokens=args.max_tokens, batch_size=args.batch_size)
        labeler = SAELabeler(reader, sae, latents, mean, std, args.k, args.z)
        info = {"layer": layer, "selection": str(args.selection), "selected_latents": int(len(latents))}
        return _label_corpus(args, labeler, info, t0)
    if not args.reference_forget or not args.reference_other:
        raise UserError("--reference-forget and --reference-other are required (or --sae with --selection)")
    forget_texts = _read_texts(args.reference_forget, args.max_reference_docs, args.text_field, args.reference_chars)
    other_texts = _read_texts(args.reference_other, args.max_reference_docs, args.text_field, args.reference_chars)
    if args.selector == "judge":
        if not args.judge_url:
            raise UserError("--selector judge needs --judge-url (an OpenAI-compatible endpoint)")
        selector = JudgeSelector(openai_judge(args.judge_url, args.judge_model, args.judge_key_env),
                                 args.forget_description, threshold=args.judge_threshold,
                                 max_latents=args.max_latents)
        top_examples = selector.examples
    else:
        selector = ContrastiveSelector(args.min_specificity, args.min_forget_rate, args.max_latents)
        top_examples = 5 if args.selection_out else 0
    train = SAETrainOptions(d_sae=args.sae_width, architecture=args.sae_kind, k=args.sae_topk,
                            l1_coeff=args.sae_l1, steps=args.sae_steps, seed=args.seed)
    labeler, stats, info = build_labeler(model, tokenizer, layer, forget_texts, other_texts, sae=sae, train=train,
                                         selector=selector, k=args.k, z=args.z, max_tokens=args.max_tokens,
                                         batch_size=args.batch_size, top_examples=top_examples, log=log)
    if args.sae_out and args.train_sae:
        save_sae(labeler.sae, args.sae_out, {"hook_name": f"blocks.{layer}.hook_resid_pre", "hook_layer": layer,
                                             "model_name": str(args.model), "trained_by": "tokfilter",
                                             **info.get("sae_training", {})})
    if args.selection_out:
        write_json(args.selection_out, selection_record(labeler, stats, selector))
    return _label_corpus(args, labeler, info, t0)


def _label_corpus(args: argparse.Namespace, labeler: SAELabeler, info: dict, t0: float) -> int:
    """Label args.corpus with a ready labeler, write args.out, print the JSON summary."""
    t1 = time.perf_counter()
    chars = 0
    documents = read_corpus(args.corpus, text_field=args.text_field)
    if args.max_docs is not None:
        documents = islice(documents, args.max_docs)

    def counted():
        nonlocal chars
        for document in documents:
            chars += len(document.text)
            yield document

    counts = write_counted_labels(args.out, label_documents(labeler, counted()), ", ".join(args.corpus))
    counts.pop("spans")
    counts["chars"] = chars
    info.update(counts, out=str(args.out), seconds_labelling=round(time.perf_counter() - t1, 2),
                seconds_total=round(time.perf_counter() - t0, 2),
                labelled_char_fraction=round(counts["labelled_chars"] / max(counts["chars"], 1), 4))
    print(json.dumps(info))
    return 0
