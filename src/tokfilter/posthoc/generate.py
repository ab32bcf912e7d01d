"""Free-form answers: seeded sampling from a checkpoint in the chat format, and an offline quality proxy.

PAPER.md ("Free response") samples answers at temperature 0.8, up to 128 tokens, to HealthSearchQA questions and has
an LLM judge rate them. Offline we add a proxy that needs no judge: the mean per-token log-likelihood the model
assigns to a *reference* answer (MedQuAD's NIH answer to the same question) after the chat prompt. A model that
lost medical knowledge assigns the reference a lower likelihood; the proxy is deterministic and cheap, so it can be
compared across models exactly. The reference is cut to its first `max_answer_tokens` tokens, so the question always
stays inside the context window; scoring goes through the evaluation helper's `LogLikelihoodScorer`.

Sampling (`sample`) batches prompts of any length without a KV cache: each row keeps its own length, rows are
right-padded (causal attention keeps padding invisible to earlier positions) and the logits are read at each row's
last real position; a row longer than the model's `seq_len` keeps its last `seq_len` tokens. A torch.Generator with
the given seed makes the samples reproducible on one device. The judge (judge.py) is optional.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from tqdm import tqdm

from tokfilter.evaluate.loading import scorer_for
from tokfilter.posthoc.chat import prompt_ids, response_ids
from tokfilter.posthoc.settings import GENERATE_MAX_NEW_TOKENS, TEMPERATURE


@torch.no_grad()
def sample(model, prompts: list[list[int]], max_new_tokens: int = GENERATE_MAX_NEW_TOKENS,
           temperature: float = TEMPERATURE, stop_id: int | None = None, seed: int = 0, batch_size: int = 32,
           progress: bool = False, banned_ids: tuple[int, ...] = ()) -> list[list[int]]:
    """New token ids for each prompt (without the prompt; the stop id, when sampled, is not included).

    temperature 0 means greedy. `banned_ids` (e.g. the `<|hidden|>` id) are never sampled.
    """
    device = next(model.parameters()).device
    seq_len = model.config.seq_len
    gen = torch.Generator(device="cpu").manual_seed(seed)
    was_training = model.training
    model.eval()
    outputs: list[list[int]] = [[] for _ in prompts]
    bar = tqdm(total=len(prompts), desc="sampling", unit="prompt", file=sys.stderr, disable=not progress,
               leave=False)
    for start in range(0, len(prompts), batch_size):
        rows = list(range(start, min(start + batch_size, len(prompts))))
        seqs = {i: list(prompts[i]) for i in rows}
        active = list(rows)
        for _ in range(max_new_tokens):
            if not active:
                break
            windows = [seqs[i][-seq_len:] for i in active]
            T = max(len(w) for w in windows)
            idx = torch.zeros((len(active), T), dtype=torch.long)
            for b, w in enumerate(windows):
                idx[b, : len(w)] = torch.tensor(w, dtype=torch.long)
            logits = model(idx.to(device))
            last = torch.tensor([len(w) - 1 for w in windows], device=logits.device)
            step = logits[torch.arange(len(active), device=logits.device), last].float().cpu()
            if banned_ids:
                step[:, list(banned_ids)] = float("-inf")
            if temperature <= 0:
                nxt = step.argmax(dim=-1)
            else:
                probs = torch.softmax(step / temperature, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=gen)[:, 0]
            still = []
            for b, i in enumerate(active):
                token = int(nxt[b])
                if stop_id is not None and token == stop_id:
                    continue
                seqs[i].append(token)
                outputs[i].append(token)
                still.append(i)
            active = still
        bar.update(len(rows))
    bar.close()
    model.train(was_training)
    return outputs


def answer_questions(model, tokenizer, questions: list[str], max_new_tokens: int = GENERATE_MAX_NEW_TOKENS,
                     temperature: float = TEMPERATURE, seed: int = 0, progress: bool = False) -> list[str]:
    """Sampled chat answers (decoded text) to each question."""
    prompts = [prompt_ids(tokenizer, q) for q in questions]
    banned = tuple(i for i in (getattr(tokenizer, "hidden_id", None),) if i is not None)
    new = sample(model, prompts, max_new_tokens, temperature, stop_id=tokenizer.eot_id, seed=seed,
                 progress=progress, banned_ids=banned)
    return [tokenizer.decode(ids).strip() for ids in new]


def reference_loglik(model, tokenizer, pairs: list[tuple[str, str]], max_answer_tokens: int = 96) -> dict:
    """Mean per-token log-likelihood (nats) of reference answers after the chat prompt; higher = better.

    Returns {"mean_token_loglik" (mean over answers of each answer's mean), "per_answer": [...], "tokens"}.
    """
    scorer = scorer_for(model, tokenizer)
    requests = []
    for question, answer in pairs:
        context = prompt_ids(tokenizer, question)
        cont = response_ids(tokenizer, answer)[:-1][:max_answer_tokens]  # answer start, without the final eot
        requests.append((context, cont))
    per_token = [lp for lp, _ in scorer.token_logprobs(requests)]
    per_answer = [float(lp.mean()) if len(lp) else float("nan") for lp in per_token]
    return {"mean_token_loglik": float(np.nanmean(per_answer)) if per_answer else float("nan"),
            "per_answer": per_answer, "tokens": int(sum(len(lp) for lp in per_token))}


def freeform_eval(model, tokenizer, pairs: list[tuple[str, str]], n: int = 32,
                  max_new_tokens: int = GENERATE_MAX_NEW_TOKENS, temperature: float = TEMPERATURE, seed: int = 0, judge=None, max_answer_tokens: int = 96,
                  progress: bool = False) -> dict:
    """Sample answers to the first `n` questions, score the reference answers of all pairs (the proxy), and, with
    a judge (see judge.py), rate each sampled answer. Returns a JSON-able dict with the samples."""
    proxy = reference_loglik(model, tokenizer, pairs, max_answer_tokens)
    chosen = pairs[:n]
    answers = answer_questions(model, tokenizer, [q for q, _ in chosen], max_new_tokens, temperature, seed,
                               progress)
    samples = [{"question": q, "answer": a, "reference": r} for (q, r), a in zip(chosen, answers)]
    result = {"n_scored": len(pairs), "proxy_mean_token_loglik": proxy["mean_token_loglik"],
              "proxy_tokens": proxy["tokens"], "n_sampled": len(samples), "temperature": temperature,
              "max_new_tokens": max_new_tokens, "seed": seed, "samples": samples}
    if judge is not None:
        ratings = [judge.rate(s["question"], s["answer"], s["reference"]) for s in samples]
        for s, rating in zip(samples, ratings):
            s["judge"] = rating
        keys = sorted({k for r in ratings for k, v in r.items() if isinstance(v, (int, float))})
        result["judge_means"] = {k: float(np.mean([r[k] for r in ratings if k in r])) for k in keys}
    return result
