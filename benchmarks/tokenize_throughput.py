"""Tokenize throughput: `tokfilter tokenize` end to end vs raw Hugging Face `tokenizers` `encode_batch`.

Both sides use the same BPE tokenizer on the same real corpus, measured in one run. Ours reads the compressed JSON
Lines, tokenizes, writes shards atomically and hashes them; raw only calls `encode_batch` on texts already in memory,
so the ratio (ours / raw tokens per second) is the price of the whole pipeline. Target >= 0.8 on 2 cores.
Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "corpora" / "medquad_answers.jsonl.gz"


def main() -> None:
    from tokenizers import Tokenizer

    from tokfilter.corpus import read_corpus
    from tokfilter.tokenizer.core import default_tokenizer_spec

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS) if DEFAULT_CORPUS.exists() else "demo")
    parser.add_argument("--tokenizer", default=default_tokenizer_spec())
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    texts = [d.text for d in read_corpus(args.corpus)]
    raw = Tokenizer.from_file(args.tokenizer)
    raw_times, our_times = [], []
    n_tokens = 0
    for _ in range(args.repeats):  # interleave the two sides so drifting machine load hits both alike
        start = time.perf_counter()
        encodings = raw.encode_batch(texts, add_special_tokens=False)
        raw_times.append(time.perf_counter() - start)
        n_tokens = sum(len(e.ids) for e in encodings) + len(texts)  # + one eot per document, as in shards
        out = Path(tempfile.mkdtemp()) / "shards"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tokfilter.cli", "tokenize", args.corpus, "--tokenizer",
                        args.tokenizer, "--out", str(out), "--quiet", "--workers", "1"], check=True,
                       stdout=subprocess.DEVNULL)
        our_times.append(time.perf_counter() - start)
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["num_tokens"] == n_tokens, (manifest["num_tokens"], n_tokens)
        shutil.rmtree(out.parent)
    raw_tps = n_tokens / min(raw_times)
    our_tps = n_tokens / min(our_times)
    print(f"corpus: {args.corpus}  documents: {len(texts)}  tokens: {n_tokens}  cores: {os.cpu_count()}")
    print(f"raw encode_batch: {raw_tps:,.0f} tok/s   tokfilter tokenize (end to end, CLI): {our_tps:,.0f} tok/s")
    print(json.dumps({"benchmark": "tokenize_throughput", "tokens": n_tokens, "raw_tokens_per_s": round(raw_tps),
                      "ours_tokens_per_s": round(our_tps), "ratio": round(our_tps / raw_tps, 3)}))


if __name__ == "__main__":
    main()
