"""lm-evaluation-harness adapter: the registered model `tokfilter` evaluates tokfilter checkpoints on any lm-eval task.

Install the optional extra (`pip install tokfilter[lmeval]`), then either

    tokfilter eval lmeval --model CKPT --tasks arc_easy,mmlu [--include-path MY_TASKS/] [--limit N]

or, from Python, import this module (which registers the model) and call lm-eval yourself:

    import tokfilter.evaluate.lmeval, lm_eval
    lm_eval.simple_evaluate(model="tokfilter", model_args="pretrained=runs/remove/checkpoint", tasks=[...])

`loglikelihood` and `loglikelihood_rolling` go through the same `LogLikelihoodScorer` as `tokfilter eval mcq`
(batched, left-truncated to the model's seq_len, end-of-text as the start-of-document token). As in lm-eval's own
models, trailing whitespace of a context moves to the front of the continuation before both are tokenized.
`tokfilter eval mcq` builds the same prompts as lm-eval 0.4.13's `mmlu`, `mmlu_continuation`, `medqa_4options`,
`medmcqa`, `arc_easy` and `arc_challenge` tasks (`prompts`), so on the same questions its `accuracy` equals lm-eval's
`acc` (and `accuracy_per_char` its `acc_norm`) through this model, request for request
(tests/evaluate/test_mcq_lmeval_agreement.py); its `accuracy_pmi` is not lm-eval's `acc_mutual_info` (see `mcq`).
`generate_until` is plain greedy decoding (tokfilter's models are small base models; generation tasks are for
completeness, not speed). Importing this module without lm-eval installed raises a UserError naming the extra.
"""

from __future__ import annotations

import sys

import torch
from tqdm import tqdm

from tokfilter.errors import UserError

try:
    from lm_eval.api.model import LM
    from lm_eval.api.registry import register_model
except ImportError:  # pragma: no cover - exercised only without the extra
    raise UserError("lm-evaluation-harness is not installed: pip install 'tokfilter[lmeval]' (or lm-eval)") from None


@register_model("tokfilter")
class TokfilterLM(LM):
    """lm-eval model for a tokfilter checkpoint: `model_args="pretrained=CKPT,device=cpu,batch_tokens=8192"`."""

    def __init__(self, pretrained: str, device: str = "auto", batch_tokens: int = 8192, tokenizer: str | None = None,
                 max_gen_toks: int = 128, **_ignored) -> None:
        super().__init__()
        from tokfilter.evaluate.loading import load_checkpoint, scorer_for

        self.model, self.tok = load_checkpoint(pretrained, tokenizer, device)
        self.scorer = scorer_for(self.model, self.tok, max_batch_tokens=int(batch_tokens))
        self.max_gen_toks = int(max_gen_toks)

    @property
    def eot_token_id(self) -> int:
        return self.tok.eot_id

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
        ctx = [self.tok.eot_id] + list(self.tok.encode_ids(context))
        return ctx, list(self.tok.encode_ids(continuation))

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        pairs = [self._encode_pair(*req.args) for req in requests]
        results = self.scorer.loglikelihoods(pairs, progress=not disable_tqdm)
        for req, result in zip(requests, results, strict=True):
            self.cache_hook.add_partial("loglikelihood", req.args, result)
        return results

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        sequences = [self.tok.encode_ids(req.args[0]) for req in requests]
        token_lps = self.scorer.rolling_token_logprobs(sequences, prefix_id=self.tok.eot_id,
                                                       progress=not disable_tqdm)
        results = [float(lp.sum()) for lp in token_lps]
        for req, result in zip(requests, results, strict=True):
            self.cache_hook.add_partial("loglikelihood_rolling", req.args, result)
        return results

    @torch.no_grad()
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        seq_len = self.model.config.seq_len
        device = next(self.model.parameters()).device
        outputs = []
        for req in tqdm(requests, desc="generate", file=sys.stderr, disable=disable_tqdm):
            context, kwargs = req.args[0], dict(req.args[1] if len(req.args) > 1 else {})
            until = kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            ids = [self.tok.eot_id] + list(self.tok.encode_ids(context))
            generated: list[int] = []
            text = ""
            for _ in range(int(kwargs.get("max_gen_toks", self.max_gen_toks))):
                window = torch.tensor([(ids + generated)[-seq_len:]], device=device)
                next_id = int(self.model(window)[0, -1].argmax())
                if next_id == self.tok.eot_id:
                    break
                generated.append(next_id)
                text = self.tok.decode(generated)
                if any(stop in text for stop in until):
                    break
            for stop in until:
                text = text.split(stop)[0]
            outputs.append(text)
            self.cache_hook.add_partial("generate_until", req.args, text)
        return outputs


def run_lmeval(model: str, tasks: list[str], include_path: str | None = None, limit: int | None = None,
               device: str = "auto", num_fewshot: int | None = None) -> dict:
    """Run lm-eval tasks on a checkpoint; returns {"results": per-task metrics, "n": per-task sample counts}."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    manager = None
    if include_path:  # indexing lm-eval's thousands of built-in tasks takes ~1 min on 2 cores: skip when unneeded
        manager = TaskManager(include_path=include_path, include_defaults=False)
        if not set(tasks) <= set(manager.all_tasks):
            manager = None
    manager = manager or TaskManager(include_path=include_path)
    lm = TokfilterLM(pretrained=model, device=device)
    try:
        out = lm_eval.simple_evaluate(model=lm, tasks=tasks, limit=limit, num_fewshot=num_fewshot,
                                      task_manager=manager, log_samples=False)
    except KeyError as err:
        raise UserError(f"lm-eval: unknown task {err} (pass --include-path for local task files)") from None
    return {"model": str(model), "tasks": tasks, "results": _jsonable(out.get("results", {})),
            "n": _jsonable(out.get("n-samples", {}))}


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (int, float, str, bool)) or obj is None:
        return obj
    return str(obj)
