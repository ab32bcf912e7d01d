"""The pretraining loop: `train(config, out_dir) -> summary`, single process or DDP under torchrun.

Recipe (PAPER.md, "Pretraining"): AdamW (0.9, 0.95), 10% linear warmup, cosine decay to 0.1x, gradient clipping at
1.0, muP learning-rate multipliers per parameter group. The budget is counted in *effective* tokens (targets that take
a loss), 20 per parameter by default; the schedule's progress is effective tokens / budget. (`budget.unit = "train"`
counts every token read instead, for compute-matched comparisons.)

Equal steps (`data.batch_targets = "fixed"`, the default; see data.py): every optimizer step has exactly
batch_size x seq_len loss-bearing targets whatever the mode, so a run takes ceil(budget / (batch_size x seq_len))
steps and every mode of one size takes the same number of steps with the same lr at each step; a filtered run reads
more windows per step to get there. (`"rows"`: batch_size windows per step, the old behaviour, where a masked run
needs 15-33% more, smaller steps for the same effective tokens, and at CPU budgets those extra steps lower all of
its losses.)

Compute, one definition for every mode: `flops = flops_per_token x effective_tokens` (the paper budgets runs in
effective tokens; a document run's effective tokens are all it reads), the number every fit and table uses;
`flops_processed = flops_per_token x train_tokens` counts every position that went through the model, masked or not
(>= flops; equal for `none` and `document`). Padding rows added for DDP (see data.py) are counted in neither.

Each optimizer step draws one global batch; every process keeps its own rows and the
loss is normalised by the number of unmasked targets across all processes and micro-batches, so 1 process and N
processes take the same step (up to float summation order). Micro-batches hold `data.micro_batch_size` rows
(default batch_size / processes); a `fixed` step with more rows than that accumulates over several micro-batches.
An all-masked step (`rows` only) takes a zero-gradient step.

Run directory:
    checkpoint/    the latest checkpoint (see checkpoint.py), loadable by `load_model(run_dir)`
    log.jsonl      one JSON object per logged step ({"step", "loss", "lr", ...}) and per evaluation ({"eval": ...})
    summary.json   the final summary returned by `train`
Re-running with the same config and directory resumes from `checkpoint/` and continues the identical loss sequence
(weights, optimizer moments, data RNG and cursor are restored); a finished run is not retrained.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from tokfilter.atomic import write_json, write_text
from tokfilter.errors import UserError
from tokfilter.filtering import IGNORE_INDEX
from tokfilter.model import GPT, GPTConfig
from tokfilter.shards import ShardSet
from tokfilter.train.checkpoint import load_training_state, save_checkpoint
from tokfilter.train.config import TrainConfig
from tokfilter.train.data import BatchSource
from tokfilter.train.heldout import HeldOut
from tokfilter.train.optim import lr_factor  # noqa: F401  (re-exported for older imports)

# Config keys that may differ between a run and its resumption (they do not change the numbers).
RESUME_IGNORED = {("run", "out"), ("run", "progress"), ("run", "threads"), ("run", "log_every"),
                  ("run", "save_every"), ("run", "compile"), ("eval", "every")}


def model_config(config: TrainConfig, vocab_size: int) -> GPTConfig:
    m = config.model
    extra = {"rope_base": m.rope_base, "mup_base_width": m.mup_base_width, "init_std": m.init_std}
    if m.preset:
        try:
            cfg = GPTConfig.preset(m.preset, vocab_size, m.seq_len, **extra)
        except KeyError as err:
            raise UserError(f"config: model.preset {err.args[0]}") from None
    else:
        cfg = GPTConfig(vocab_size=vocab_size, seq_len=m.seq_len, n_layer=1, n_head=1, d_model=64, **extra)
    for key in ("n_layer", "d_model", "n_head"):
        if getattr(m, key) > 0:
            setattr(cfg, key, getattr(m, key))
    try:
        return GPTConfig.from_dict(cfg.to_dict())  # re-validate after overrides
    except ValueError as err:
        raise UserError(f"config: {err}") from None


def filter_fields(config: TrainConfig) -> dict:
    """The filter's settings as summary.json records them, each key present for every mode (null where unused):

    threshold      the *token* threshold (p(forget) >= threshold is forget): mask / remove, and document runs with
                   doc_aggregate = "frac" (the fraction of tokens at or above it); null for none and "mean" documents;
    doc_threshold  document runs: a document is dropped when its aggregate >= doc_threshold; null otherwise;
    doc_aggregate  document runs: "mean" or "frac"; null otherwise;
    noise, delay   label-noise rate and delayed-start fraction (0 for none);
    granularity    mask / remove runs that decide per sentence or document (absent for per-token decisions)."""
    fc = config.filter
    document = fc.mode == "document"
    token_threshold = fc.mode in ("mask", "remove") or (document and fc.doc_aggregate == "frac")
    return {"threshold": fc.threshold if token_threshold else None,
            "doc_threshold": fc.doc_threshold if document else None,
            "doc_aggregate": fc.doc_aggregate if document else None,
            "noise": fc.noise if fc.mode != "none" else 0.0, "delay": fc.delay if fc.mode != "none" else 0.0,
            **({"granularity": fc.granularity} if fc.mode in ("mask", "remove") and fc.granularity != "token" else {})}


def train_step(model: GPT, fwd_model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor, n_global: float, world_size: int = 1, micro: int | None = None,
               grad_clip: float = 1.0, autocast_dtype: torch.dtype | None = None) -> float:
    """One optimizer step on this process's rows (x, y); returns this process's summed loss.

    The loss is normalised by `n_global`, the unmasked targets of the whole global batch, times `world_size`
    because DDP averages gradients over processes: every process and micro-batch then contributes exactly its share
    of grad(sum of losses) / n_global. `fwd_model` is the model as wrapped for forward (DDP / compiled)."""
    micro = micro or len(x)
    scale = world_size / max(n_global, 1.0)
    loss_sum = torch.zeros((), device=x.device)
    for a in range(0, len(x), micro):
        last = a + micro >= len(x)
        sync = nullcontext() if (last or world_size == 1) else fwd_model.no_sync()
        with sync, torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            loss = fwd_model(x[a:a + micro], y[a:a + micro], reduction="sum")
            (loss * scale).backward()
        loss_sum += loss.detach().float()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss_sum)  # the step's one host sync


def _comparable(config: dict) -> dict:
    return {s: {k: v for k, v in vals.items() if (s, k) not in RESUME_IGNORED} for s, vals in config.items()}


class _Dist:
    """torchrun environment: rank, world size, device, and a sum-all-reduce that is a no-op on one process."""

    def __init__(self, device_setting: str):
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = torch.cuda.is_available() if device_setting == "auto" else device_setting == "cuda"
        if cuda and not torch.cuda.is_available():
            raise UserError("config: run.device = 'cuda' but no CUDA device is available")
        self.device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
        if cuda:
            torch.cuda.set_device(self.device)
        self.started = False
        if self.world_size > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
            self.started = True

    def sum(self, values: list[float]) -> list[float]:
        if self.world_size == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def close(self) -> None:
        if self.started:
            dist.destroy_process_group()


def train(config: TrainConfig, out_dir: str | Path | None = None) -> dict:
    """Train one model as `config` says into `out_dir` (default `config.run.out`); returns the summary dict:
    params, train_tokens, effective_tokens, flops, tokens_filtered_frac, steps, loss/eval per domain, ..."""
    out = Path(out_dir or config.run.out or "")
    if not str(out) or str(out) == ".":
        raise UserError("train: no output directory (set run.out or pass --out)")
    if not config.data.shards:
        raise UserError("config: data.shards is empty (the training shard directory)")
    ddp = _Dist(config.run.device)
    try:
        return _train(config, out, ddp)
    finally:
        ddp.close()


def _train(config: TrainConfig, out: Path, ddp: _Dist) -> dict:
    rc, oc, bc, fc = config.run, config.optim, config.budget, config.filter
    if rc.threads > 0 and ddp.device.type == "cpu":
        torch.set_num_threads(rc.threads)
    is_main = ddp.rank == 0
    shards = ShardSet(config.data.shards)
    mcfg = model_config(config, shards.vocab_size)
    if shards.vocab_size > mcfg.vocab_size:
        raise UserError(f"{shards.dir}: vocabulary of {shards.vocab_size} does not fit the model")
    torch.manual_seed(rc.seed)
    model = GPT(mcfg).to(ddp.device)
    params = model.num_params()
    budget = bc.tokens if bc.tokens > 0 else int(bc.tokens_per_param * params)
    source = BatchSource(shards, mcfg.seq_len, config.data.batch_size, fc.mode, fc.scores, fc.threshold,
                         fc.doc_threshold, fc.doc_aggregate, fc.noise, config.data.sampling, rc.seed,
                         ddp.rank, ddp.world_size, config.data.batch_targets, fc.granularity)
    local_rows = config.data.batch_size // ddp.world_size
    micro = config.data.micro_batch_size or local_rows
    if local_rows % micro:
        raise UserError(f"config: {local_rows} rows per process are not divisible by micro_batch_size {micro}")
    fused = ddp.device.type == "cuda"
    optimizer = torch.optim.AdamW(model.param_groups(oc.weight_decay), lr=oc.lr, betas=(oc.beta1, oc.beta2),
                                  fused=fused)

    # resume
    ckpt_dir, log_path = out / "checkpoint", out / "log.jsonl"
    state = {"step": 0, "effective_tokens": 0, "train_tokens": 0, "done": False}
    if (ckpt_dir / "train_state.json").is_file():
        weights, saved, opt_state = load_training_state(ckpt_dir)
        stored = json.loads((ckpt_dir / "config.json").read_text())["train"]
        stored.setdefault("data", {}).setdefault("batch_targets", "rows")  # checkpoints from before the setting
        if _comparable(stored) != _comparable(config.to_dict()):
            raise UserError(f"{out}: holds a run with a different config; use another output directory")
        model.load_state_dict(weights)
        if opt_state is not None:
            optimizer.load_state_dict(opt_state)
        source.load_state_dict(saved["data"])
        state = {k: saved[k] for k in state}
        if is_main and log_path.is_file():  # drop log lines written after the checkpoint
            lines = [ln for ln in log_path.read_text().splitlines() if ln.strip()]
            kept = [ln for ln in lines if json.loads(ln).get("step", 0) <= state["step"]]
            write_text(log_path, "".join(ln + "\n" for ln in kept))
    elif is_main and log_path.is_file():  # a run killed before its first checkpoint: its steps are redone
        log_path.unlink()
    if state["done"] and (out / "summary.json").is_file():
        return json.loads((out / "summary.json").read_text())

    autocast_dtype = None
    if rc.dtype == "bfloat16" or (rc.dtype == "auto" and ddp.device.type == "cuda"):
        autocast_dtype = torch.bfloat16
    fwd_model: torch.nn.Module = model
    if rc.compile:
        fwd_model = torch.compile(model)
    if ddp.world_size > 1:
        fwd_model = torch.nn.parallel.DistributedDataParallel(
            fwd_model, device_ids=[ddp.device.index] if ddp.device.type == "cuda" else None)

    heldout = None
    if config.eval.shards and is_main:
        ec = config.eval
        heldout = HeldOut(ShardSet(ec.shards), mcfg.seq_len, ec.labels, ec.threshold, ec.forget_domain,
                          ec.max_tokens, ec.batch_size)
    filtered_frac = source.filtered_fraction()
    tokenizer = None
    try:
        tokenizer = shards.tokenizer()
    except UserError:
        pass

    def log(record: dict) -> None:
        if is_main:
            with open(log_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")

    def run_eval() -> dict | None:
        result = heldout.evaluate(model, ddp.device, autocast_dtype) if heldout is not None else None
        if result is not None:
            log({"step": state["step"], "effective_tokens": state["effective_tokens"], "eval": result})
        ddp.barrier()
        return result

    def save() -> None:
        if is_main:
            save_checkpoint(ckpt_dir, model, config.to_dict(), optimizer,
                            {**state, "data": source.state_dict()}, tokenizer)
        ddp.barrier()

    if is_main:
        out.mkdir(parents=True, exist_ok=True)
    counter = "effective_tokens" if bc.unit == "effective" else "train_tokens"
    bar = tqdm(total=budget, initial=min(state[counter], budget), unit="tok", unit_scale=True, mininterval=1.0,
               disable=not (rc.progress and is_main), file=sys.stderr, desc=f"train {fc.mode}")
    model.train()
    t_last, tok_last, loss_window = time.perf_counter(), 0, []
    while state[counter] < budget and not (bc.max_steps and state["step"] >= bc.max_steps):
        filtered = state[counter] >= fc.delay * budget
        x, y = source.next_batch(filtered)
        n_local = int((y != IGNORE_INDEX).sum())
        (n_global,) = ddp.sum([float(n_local)])
        step_tokens = source.last_rows * mcfg.seq_len  # positions read this step, all processes
        progress = (state[counter] + (n_global if counter == "effective_tokens" else step_tokens)) / budget
        lr = oc.lr * lr_factor(progress, oc.warmup_frac, oc.min_lr_frac)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_mult"]
        loss_sum = train_step(model, fwd_model, optimizer, x.to(ddp.device, non_blocking=True),
                              y.to(ddp.device, non_blocking=True), n_global, ddp.world_size, micro, oc.grad_clip,
                              autocast_dtype)
        (loss_total,) = ddp.sum([loss_sum])
        step_loss = loss_total / max(n_global, 1.0)
        state["step"] += 1
        state["effective_tokens"] += int(n_global)
        state["train_tokens"] += step_tokens
        bar.update(min(state[counter], budget) - bar.n)
        loss_window.append(step_loss)
        if state["step"] % max(rc.log_every, 1) == 0 or state[counter] >= budget:
            now = time.perf_counter()
            tps = (state["train_tokens"] - tok_last) / max(now - t_last, 1e-9) if tok_last else 0.0
            t_last, tok_last = now, state["train_tokens"]
            bar.set_postfix(loss=f"{sum(loss_window) / len(loss_window):.3f}", tok_s=f"{tps:,.0f}")
            loss_window = []
        log({"step": state["step"], "loss": step_loss, "lr": lr, "targets": int(n_global), "rows": source.last_rows,
             "effective_tokens": state["effective_tokens"], "train_tokens": state["train_tokens"],
             "filtered": filtered})
        if config.eval.every and state["step"] % config.eval.every == 0:
            run_eval()
        if rc.save_every and state["step"] % rc.save_every == 0:
            save()
    bar.close()

    final_eval = run_eval()
    state["done"] = True
    save()
    fpt = model.flops_per_token()
    summary = {
        "mode": fc.mode, "seed": rc.seed, "params": params, "steps": state["step"],
        "train_tokens": state["train_tokens"], "effective_tokens": state["effective_tokens"], "budget_tokens": budget,
        "budget_unit": bc.unit, "batch_targets": config.data.batch_targets,
        "targets_per_step": config.data.batch_size * mcfg.seq_len if config.data.batch_targets == "fixed" else None,
        "flops_per_token": fpt, "flops": fpt * state["effective_tokens"], "flops_processed": fpt * state["train_tokens"],
        **filter_fields(config), "tokens_filtered_frac": filtered_frac, "world_size": ddp.world_size,
        "model": mcfg.to_dict(),
    }
    if final_eval is not None:
        summary["loss"] = {d: e["loss"] for d, e in final_eval.items()}
        if heldout.has_own:
            summary["loss_own"] = {d: e["own_loss"] for d, e in final_eval.items()}
        if all("bpb" in e for e in final_eval.values()):
            summary["bpb"] = {d: e["bpb"] for d, e in final_eval.items()}
        summary["eval"] = final_eval
    if is_main:
        write_json(out / "summary.json", summary)
    return summary
