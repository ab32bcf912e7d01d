"""Training throughput: our trainer step vs Hugging Face `LlamaForCausalLM` of the same shape, same batch, one run.

Both models: the same width, depth, heads, vocabulary (the default 4096-token BPE) and sequence length, tied input /
output embeddings, no biases, SDPA attention, fp32, AdamW with the same hyper-parameters, gradient clipping 1.0, and
the same batch of real demo-corpus tokens. Llama's MLP is SwiGLU; its intermediate size is set to 8/3 d (rounded to
a multiple of 8) so both MLPs hold the same ~8 d^2 parameters per layer. Ours is `tokfilter.train.loop.train_step`
(the function the trainer runs) on `tokfilter.model.GPT`; HF's is `model(input_ids, labels=...)`, backward, clip, step.
Steps alternate between the contenders (after warm-up) so machine load affects all alike; we report median step
times. "ratio" = our trainer's tokens/s as it runs with `run.compile = true` (torch.compile of the model; the
recommended setting for long runs) / HF's tokens/s as `transformers` trains by default (eager). Target >= 1.5.
Also reported: "ratio_eager" (both eager) and, with `--hf-compile`, "ratio_vs_hf_compiled" (both compiled), so it
is visible how much of the gap is the model code and how much is compilation. `--no-compile` times eager only
("ratio" is then the eager ratio). Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch


def real_batch(batch: int, seq_len: int, seed: int = 0) -> tuple[torch.Tensor, int]:
    from tokfilter.corpus.demo import load_demo
    from tokfilter.tokenizer import load_tokenizer
    from tokfilter.tokenizer.core import default_tokenizer_spec

    tokenizer = load_tokenizer(default_tokenizer_spec())
    ids: list[int] = []
    for domain in ("forget", "retain", "general"):
        for doc in load_demo("valid", domain)[:40]:
            ids += tokenizer.encode_ids(doc.text) + [tokenizer.eot_id]
    stream = np.array(ids, dtype=np.int64)
    starts = np.random.default_rng(seed).integers(0, len(stream) - seq_len - 1, size=batch)
    return torch.from_numpy(np.stack([stream[s:s + seq_len + 1] for s in starts])), tokenizer.vocab_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--n-layer", type=int, default=3)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave as is)")
    parser.add_argument("--no-compile", action="store_true", help="time eager steps only")
    parser.add_argument("--hf-compile", action="store_true", help="also time HF's step under torch.compile")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from transformers import LlamaConfig, LlamaForCausalLM

    from tokfilter.model import GPT, GPTConfig
    from tokfilter.train.loop import train_step

    rows, vocab = real_batch(args.batch, args.seq_len)
    x, y = rows[:, :-1].contiguous(), rows[:, 1:].contiguous()
    n_targets = float(y.numel())
    torch.manual_seed(0)
    ours = GPT(GPTConfig(vocab_size=vocab, n_layer=args.n_layer, n_head=args.n_head, d_model=args.d_model,
                         seq_len=args.seq_len, mup_base_width=args.d_model))
    ours_opt = torch.optim.AdamW(ours.param_groups(0.1), lr=1e-3, betas=(0.9, 0.95))
    inter = int(round(8 * args.d_model / 3 / 8)) * 8
    hf = LlamaForCausalLM(LlamaConfig(
        vocab_size=vocab, hidden_size=args.d_model, intermediate_size=inter, num_hidden_layers=args.n_layer,
        num_attention_heads=args.n_head, num_key_value_heads=args.n_head, max_position_embeddings=args.seq_len,
        tie_word_embeddings=True, attention_bias=False, mlp_bias=False, rope_theta=10000.0,
        attn_implementation="sdpa"))
    hf.train()
    hf_opt = torch.optim.AdamW(hf.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)

    def step_ours(model=ours):
        train_step(ours, model, ours_opt, x, y, n_targets, grad_clip=1.0)

    def step_hf(model=hf):
        loss = model(input_ids=x, labels=x).loss  # HF shifts labels inside: T-1 targets per row
        loss.backward()
        torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0)
        hf_opt.step()
        hf_opt.zero_grad(set_to_none=True)

    contenders = {"ours": step_ours, "hf": step_hf}
    if not args.no_compile:
        compiled = torch.compile(ours)
        contenders["ours_compiled"] = lambda: step_ours(compiled)
    if args.hf_compile:
        hf_compiled = torch.compile(hf)
        contenders["hf_compiled"] = lambda: step_hf(hf_compiled)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for i in range(args.warmup + args.steps):
        for name, fn in contenders.items():
            t = time.perf_counter()
            fn()
            if i >= args.warmup:
                times[name].append(time.perf_counter() - t)
    tokens = args.batch * args.seq_len
    tps = {name: tokens / statistics.median(ts) for name, ts in times.items()}
    for name, value in tps.items():
        print(f"{name:>14}: {value:10,.0f} tokens/s  (median step {1000 * tokens / value:.1f} ms)")
    result = {
        "benchmark": "train_throughput",
        "ratio": tps["ours" if args.no_compile else "ours_compiled"] / tps["hf"],
        "ratio_eager": tps["ours"] / tps["hf"],
        "ours_tokens_per_s": tps["ours"], "hf_tokens_per_s": tps["hf"],
        "params_ours": ours.num_params(), "params_hf": sum(p.numel() for p in hf.parameters()),
        "shape": {"d_model": args.d_model, "n_layer": args.n_layer, "n_head": args.n_head, "seq_len": args.seq_len,
                  "batch": args.batch, "vocab": vocab},
        "threads": torch.get_num_threads(), "device": "cpu",
    }
    if args.hf_compile:
        result["ratio_vs_hf_compiled"] = tps["ours_compiled" if not args.no_compile else "ours"] / tps["hf_compiled"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
