"""The bad-input cases of the reliability suite, as data: one row per (input, command).

Each `Case` names a bad input, the `tokfilter` command line that reads it, a `setup` that creates the bad input in
a fresh working directory, and the output path that must not exist afterwards (no partial outputs). The suite
(test_bad_input.py) runs every case in-process through `tokfilter.cli.main` and checks: exit code 2, exactly one
line on stderr, no "Traceback", the output path absent. scripts/reliability_table.py runs the same cases and writes
the table in docs/reliability.md; test_bad_input.py checks that the table matches what the cases print, so the
document and the tests cannot drift apart.

`build_env(root)` makes the good inputs the cases start from (once per session, ~5 s): the packaged demo BPE
tokenizer, a small real shard directory from the embedded demo corpus (scored and unscored), another tokenizer, a
random tiny GPT checkpoint and random biLM classifiers for both tokenizers.
"""

from __future__ import annotations

import gzip
import json
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WORK = "WORK"  # placeholder for the case's working directory in messages and the doc table
ENV = "ENV"  # placeholder for the shared good inputs


@dataclass
class Case:
    id: str
    input: str  # what is wrong, in words (the doc table's first column)
    argv: list[str]  # command line; "{w}" = working directory, "{shards}", "{ckpt}", ... = good inputs
    setup: Callable[[Path, dict], None] | None = None
    output: str | None = None  # path (formatted like argv) that must not exist afterwards
    expect: str = ""  # a substring the message must contain (case-insensitive), to show it names the problem
    shared_data: bool = False  # the command reads ../shared/data (the default medical lexicons): skipped without it

    def args(self, work: Path, env: dict) -> list[str]:
        return [a.format(w=work, **env) for a in self.argv]

    def output_path(self, work: Path, env: dict) -> Path | None:
        return Path(self.output.format(w=work, **env)) if self.output else None

    def command(self) -> str:
        return "tokfilter " + " ".join(a.replace("{w}/", "").replace("{", "").replace("}", "").upper()
                                       if "{" in a else a for a in self.argv)


# ----- good inputs -----


def build_env(root: Path) -> dict[str, str]:
    """Good inputs shared by every case (see the module docstring); returns their paths for `Case.argv`."""
    import torch

    from tokfilter.classify.bilm import BiLM, BiLMConfig
    from tokfilter.classify.interface import save_classifier
    from tokfilter.corpus.demo import load_demo
    from tokfilter.model import GPT, GPTConfig
    from tokfilter.shards import ShardSet, write_shards
    from tokfilter.tokenizer import load_tokenizer, train_tokenizer
    from tokfilter.tokenizer.core import default_tokenizer_spec
    from tokfilter.train.checkpoint import save_checkpoint

    root.mkdir(parents=True, exist_ok=True)
    docs = load_demo("valid")[::10][:40]
    corpus = root / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": d.id, "text": d.text, "domain": d.domain}) + "\n" for d in docs))
    tokenizer = load_tokenizer(default_tokenizer_spec())
    write_shards(docs, tokenizer, root / "shards", sources=[str(corpus)], shard_tokens=4000, progress=False)
    shutil.copytree(root / "shards", root / "scored")
    scored = ShardSet(root / "scored")
    rng = np.random.default_rng(0)
    from tokfilter.atomic import save_npy

    for i in range(scored.num_shards):
        save_npy(scored.score_path(i, "forget"), rng.random(len(scored.tokens(i))).astype(np.float16))
    other = train_tokenizer([d.text for d in docs], 300, root / "other-tokenizer.json")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, n_layer=1, n_head=2, d_model=16, seq_len=32))
    save_checkpoint(root / "ckpt", model, tokenizer=tokenizer)
    for name, tok in (("clf", tokenizer), ("other-clf", other)):
        cfg = BiLMConfig(vocab_size=tok.vocab_size, d_model=16, n_layer=1, n_head=2, seq_len=32)
        save_classifier(root / name, "bilm", tok, BiLM(cfg).state_dict(), {"bilm": cfg.to_dict()}, 0.5)
    labels = root / "labels.jsonl"
    labels.write_text("".join(json.dumps({"id": d.id, "spans": [[0, 5, 1.0]]}) + "\n" for d in docs))
    return {"root": str(root), "corpus": str(corpus), "tokenizer": default_tokenizer_spec(),
            "other_tokenizer": str(root / "other-tokenizer.json"), "shards": str(root / "shards"),
            "scored": str(root / "scored"), "ckpt": str(root / "ckpt"), "clf": str(root / "clf"),
            "other_clf": str(root / "other-clf"), "labels": str(labels)}


# ----- setup helpers (each writes one bad input into the working directory `w`) -----


def write(name: str, data: str | bytes) -> Callable[[Path, dict], None]:
    def setup(w: Path, env: dict) -> None:
        path = w / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return setup


def truncated_gzip(name: str) -> Callable[[Path, dict], None]:
    def setup(w: Path, env: dict) -> None:
        blob = gzip.compress(Path(env["corpus"]).read_bytes())
        (w / name).write_bytes(blob[: len(blob) // 2])
    return setup


def copy(key: str, name: str, then: Callable[[Path], None] | None = None) -> Callable[[Path, dict], None]:
    """Copy a good input (shards, checkpoint, classifier) into the working directory and damage it with `then`."""
    def setup(w: Path, env: dict) -> None:
        target = w / name
        shutil.copytree(env[key], target)
        if then is not None:
            then(target)
    return setup


def edit_json(name: str, change: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(directory: Path) -> None:
        path = directory / name
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    return damage


def replace_file(name: str, data: bytes) -> Callable[[Path], None]:
    def damage(directory: Path) -> None:
        (directory / name).write_bytes(data)
    return damage


def save_array(name: str, array: np.ndarray, allow_pickle: bool = False) -> Callable[[Path], None]:
    def damage(directory: Path) -> None:
        np.save(directory / name, array, allow_pickle=allow_pickle)
    return damage


def truncate(name: str, keep: float = 0.5) -> Callable[[Path], None]:
    def damage(directory: Path) -> None:
        path = directory / name
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
    return damage


def flip_byte(name: str) -> Callable[[Path], None]:
    def damage(directory: Path) -> None:
        path = directory / name
        data = bytearray(path.read_bytes())
        data[-3] ^= 0x01
        path.write_bytes(bytes(data))
    return damage


def pickled_checkpoint(name: str) -> Callable[[Path], None]:
    """Replace model.safetensors by a pickle (what torch.save writes): a file that runs code when unpickled."""
    def damage(directory: Path) -> None:
        (directory / "model.safetensors").unlink()
        (directory / name).write_bytes(pickle.dumps({"wte.weight": [0.0] * 4}))
    return damage


def both(*damages: Callable[[Path], None]) -> Callable[[Path], None]:
    def damage(directory: Path) -> None:
        for d in damages:
            d(directory)
    return damage


def _wider_bilm(config: dict) -> None:
    config["bilm"]["d_model"] *= 2


def _drop_docs(m: dict) -> None:
    m["num_documents"] += 1


def _bad_dtype(m: dict) -> None:
    m["dtype"] = "float64"


def _manifest_format(m: dict) -> None:
    m["format"] = "something-else"


def _tokenizer_hash(m: dict) -> None:
    m["tokenizer"]["hash"] = "f" * 64


CORPUS_LINE = json.dumps({"id": "a", "text": "Hello world. The heart pumps blood."}) + "\n"
TOML_MODEL = '[data]\nshards = "{shards}"\n[model]\npreset = "tiny-0.1m"\nseq_len = 32\n[budget]\nmax_steps = 1\n'


def toml(name: str, text: str) -> Callable[[Path, dict], None]:
    def setup(w: Path, env: dict) -> None:
        (w / name).write_text(text.format(**env))
    return setup


# ----- the cases -----

CASES: list[Case] = [
    # usage errors (argparse)
    Case("usage-missing-required", "required option missing (--out)",
         ["tokenize", "{corpus}", "--tokenizer", "{tokenizer}"], None, None, "--out"),
    Case("usage-not-a-number", "--threshold abc (not a number)",
         ["export", "dolma", "--shards", "{scored}", "--threshold", "abc", "--out", "{w}/o.jsonl"], None,
         "{w}/o.jsonl", "abc"),
    Case("usage-unknown-option", "unknown option", ["train", "--steps", "5"], None, None, "--steps"),
    # tokenize
    Case("tokenize-missing-file", "corpus file does not exist",
         ["tokenize", "{w}/missing.jsonl", "--tokenizer", "{tokenizer}", "--out", "{w}/out", "--workers", "1",
          "--quiet"], None, "{w}/out", "missing.jsonl"),
    Case("tokenize-malformed-json", "JSON Lines corpus with a malformed line",
         ["tokenize", "{w}/c.jsonl", "--tokenizer", "{tokenizer}", "--out", "{w}/out", "--workers", "1", "--quiet"],
         write("c.jsonl", CORPUS_LINE + '{"id": "b", "text": "unterminated\n' + CORPUS_LINE), "{w}/out", "c.jsonl"),
    Case("tokenize-truncated-gzip", "truncated .jsonl.gz corpus",
         ["tokenize", "{w}/c.jsonl.gz", "--tokenizer", "{tokenizer}", "--out", "{w}/out", "--workers", "1",
          "--quiet"], truncated_gzip("c.jsonl.gz"), "{w}/out", "c.jsonl.gz"),
    Case("tokenize-latin1", "corpus in Latin-1, not UTF-8",
         ["tokenize", "{w}/c.jsonl", "--tokenizer", "{tokenizer}", "--out", "{w}/out", "--workers", "1", "--quiet"],
         write("c.jsonl", '{"id": "a", "text": "caf\u00e9 na\u00efve"}\n'.encode("latin-1")), "{w}/out", "c.jsonl"),
    Case("tokenize-utf16", "corpus in UTF-16",
         ["tokenize", "{w}/c.jsonl", "--tokenizer", "{tokenizer}", "--out", "{w}/out", "--workers", "1", "--quiet"],
         write("c.jsonl", CORPUS_LINE.encode("utf-16")), "{w}/out", "c.jsonl"),
    Case("tokenize-empty-file", "empty corpus file (0 bytes)",
         ["tokenize", "{w}/c.jsonl", "--tokenizer", "{tokenizer}", "--out", "{w}/out", "--workers", "1", "--quiet"],
         write("c.jsonl", ""), "{w}/out", "empty"),
    Case("tokenize-empty-texts", "every document's text is empty",
         ["tokenize", "{w}/c.jsonl", "--tokenizer", "{tokenizer}", "--out", "{w}/out", "--workers", "1", "--quiet"],
         write("c.jsonl", '{"id": "a", "text": ""}\n{"id": "b", "text": ""}\n'), "{w}/out", "empty"),
    Case("tokenize-text-not-string", "`text` field is a number (wrong type)",
         ["tokenize", "{w}/c.jsonl", "--tokenizer", "{tokenizer}", "--out", "{w}/out", "--workers", "1", "--quiet"],
         write("c.jsonl", '{"id": "a", "text": 42}\n'), "{w}/out", "text"),
    Case("tokenize-no-text-field", "records have no `text` field",
         ["tokenize", "{w}/c.jsonl", "--tokenizer", "{tokenizer}", "--out", "{w}/out", "--workers", "1", "--quiet"],
         write("c.jsonl", '{"id": "a", "body": "hello"}\n'), "{w}/out", "text"),
    Case("tokenize-json-array", "a JSON array instead of JSON Lines",
         ["tokenize", "{w}/c.jsonl", "--tokenizer", "{tokenizer}", "--out", "{w}/out", "--workers", "1", "--quiet"],
         write("c.jsonl", '[{"id": "a", "text": "hello"}]\n'), "{w}/out", "c.jsonl"),
    Case("tokenize-missing-tokenizer", "tokenizer file does not exist",
         ["tokenize", "{corpus}", "--tokenizer", "{w}/nope.json", "--out", "{w}/out", "--workers", "1", "--quiet"],
         None, "{w}/out", "nope.json"),
    Case("tokenize-bad-tokenizer", "tokenizer.json is not a tokenizer",
         ["tokenize", "{corpus}", "--tokenizer", "{w}/tokenizer.json", "--out", "{w}/out", "--workers", "1",
          "--quiet"], write("tokenizer.json", '{"not": "a tokenizer"}'), "{w}/out", "tokenizer.json"),
    Case("tokenize-truncated-tokenizer", "truncated tokenizer.json",
         ["tokenize", "{corpus}", "--tokenizer", "{w}/tokenizer.json", "--out", "{w}/out", "--workers", "1",
          "--quiet"], lambda w, env: (w / "tokenizer.json").write_bytes(
              Path(env["tokenizer"]).read_bytes()[:5000]), "{w}/out", "tokenizer.json"),
    Case("tokenize-out-holds-other-shards", "--out already holds shards of another tokenizer",
         ["tokenize", "{corpus}", "--tokenizer", "{other_tokenizer}", "--out", "{w}/out", "--workers", "1",
          "--quiet"], copy("shards", "out"), None, "another"),
    Case("tokenize-zero-workers", "--workers 0 (out of range)",
         ["tokenize", "{corpus}", "--tokenizer", "{tokenizer}", "--out", "{w}/out", "--workers", "0", "--quiet"],
         None, "{w}/out", "workers"),
    # tokenizer train, corpus stats
    Case("tokenizer-train-empty", "empty corpus",
         ["tokenizer", "train", "{w}/c.jsonl", "--vocab-size", "300", "--out", "{w}/tok.json"],
         write("c.jsonl", ""), "{w}/tok.json", "empty"),
    Case("tokenizer-train-vocab-range", "--vocab-size 10 (below the byte alphabet)",
         ["tokenizer", "train", "{corpus}", "--vocab-size", "10", "--out", "{w}/tok.json"],
         None, "{w}/tok.json", "vocab"),
    Case("tokenizer-train-out-under-file", "--out inside a path that is a file",
         ["tokenizer", "train", "{corpus}", "--vocab-size", "300", "--out", "{w}/f/tok.json"],
         write("f", "a file, not a folder"), "{w}/f/tok.json", "is a file, so nothing can be written"),
    Case("corpus-stats-malformed", "malformed JSON Lines",
         ["corpus", "stats", "{w}/c.jsonl"], write("c.jsonl", "{not json\n"), None, "c.jsonl"),
    # shards verify
    Case("verify-missing-dir", "shard directory does not exist",
         ["shards", "verify", "{w}/nope"], None, None, "nope"),
    Case("verify-manifest-invalid-json", "manifest.json is not JSON",
         ["shards", "verify", "{w}/s"], copy("shards", "s", replace_file("manifest.json", b"{oops")), None,
         "manifest"),
    Case("verify-manifest-counts", "tampered manifest: num_documents off by one",
         ["shards", "verify", "{w}/s"], copy("shards", "s", edit_json("manifest.json", _drop_docs)), None,
         "totals"),
    Case("verify-manifest-dtype", "tampered manifest: dtype float64",
         ["shards", "verify", "{w}/s"], copy("shards", "s", edit_json("manifest.json", _bad_dtype)), None, "dtype"),
    Case("verify-manifest-format", "manifest of another format",
         ["shards", "verify", "{w}/s"], copy("shards", "s", edit_json("manifest.json", _manifest_format)), None,
         "manifest"),
    Case("verify-tokens-wrong-dtype", "tokens saved as float32",
         ["shards", "verify", "{w}/s"],
         copy("shards", "s", save_array("00000.tokens.npy", np.zeros(10, dtype=np.float32))), None, "float32"),
    Case("verify-tokens-truncated", "truncated tokens .npy",
         ["shards", "verify", "{w}/s"], copy("shards", "s", truncate("00000.tokens.npy")), None, "00000"),
    Case("verify-tokens-bitflip", "one flipped byte in a tokens file",
         ["shards", "verify", "{w}/s"], copy("shards", "s", flip_byte("00000.tokens.npy")), None, "00000"),
    Case("verify-docs-object-array", "docs .npy holding a pickled object array",
         ["shards", "verify", "{w}/s"],
         copy("shards", "s", save_array("00000.docs.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)),
         None, "00000"),
    Case("verify-scores-length", "scores sidecar shorter than its tokens",
         ["shards", "verify", "{w}/s"],
         copy("scored", "s", save_array("00000.scores.forget.npy", np.zeros(3, dtype=np.float16))), None, "scores"),
    Case("verify-mismatched-tokenizer", "--tokenizer is not the one that made the shards",
         ["shards", "verify", "{shards}", "--tokenizer", "{other_tokenizer}"], None, None, "tokenizer"),
    # label / labels
    Case("label-lexicon-missing-corpus", "corpus file does not exist",
         ["label", "lexicon", "{w}/nope.jsonl", "--out", "{w}/labels.jsonl"], None, "{w}/labels.jsonl", "nope",
         shared_data=True),
    Case("label-lexicon-missing-lexicon", "lexicon file does not exist",
         ["label", "lexicon", "{corpus}", "--lexicon", "{w}/nope.txt", "--out", "{w}/labels.jsonl"], None,
         "{w}/labels.jsonl", "nope.txt"),
    Case("label-document-threshold", "--threshold 1.5 (out of range)",
         ["label", "document", "{corpus}", "--rule", "density", "--threshold", "1.5", "--out", "{w}/labels.jsonl"],
         None, "{w}/labels.jsonl", "threshold"),
    Case("label-sentence-malformed", "corpus with invalid UTF-8",
         ["label", "sentence", "{w}/c.jsonl", "--out", "{w}/labels.jsonl"],
         write("c.jsonl", b'{"id": "a", "text": "\xff\xfe bad"}\n'), "{w}/labels.jsonl", "c.jsonl",
         shared_data=True),
    Case("label-sae-missing-model", "--model directory does not exist",
         ["label", "sae", "{corpus}", "--model", "{w}/nope", "--layer", "0", "--train-sae", "--out", "{w}/labels.jsonl"], None,
         "{w}/labels.jsonl", "nope"),
    Case("labels-eval-malformed", "label file with a malformed line",
         ["labels", "eval", "{w}/l.jsonl", "--benchmark", "{w}/bench"], write("l.jsonl", '{"id": "a", "spans": [[0,'),
         None, "l.jsonl"),
    Case("labels-eval-missing-benchmark", "benchmark directory does not exist",
         ["labels", "eval", "{labels}", "--benchmark", "{w}/bench"], None, None, "bench"),
    Case("labels-benchmark-fraction", "--splice-fraction 1.5 (out of range)",
         ["labels", "benchmark", "--out", "{w}/bench", "--splice-fraction", "1.5"], None, "{w}/bench", "fraction"),
    # classifier
    Case("classifier-train-missing-data", "--data does not exist",
         ["classifier", "train", "--data", "{w}/nope", "--tokenizer", "{tokenizer}", "--out", "{w}/clf"], None,
         "{w}/clf", "nope"),
    Case("classifier-train-unknown-key", "--set with an unknown key",
         ["classifier", "train", "--data", "{corpus}", "--labels", "{labels}", "--tokenizer", "{tokenizer}",
          "--out", "{w}/clf", "--set", "bogus_key=1"], None, "{w}/clf", "bogus_key"),
    Case("classifier-train-bad-labels", "labels with a score of 2.0 (out of range)",
         ["classifier", "train", "--data", "{corpus}", "--labels", "{w}/l.jsonl", "--tokenizer", "{tokenizer}",
          "--out", "{w}/clf"], write("l.jsonl", '{"id": "x", "spans": [[0, 4, 2.0]]}\n'), "{w}/clf", "l.jsonl"),
    Case("classifier-eval-bad-config", "classifier config.json is not JSON",
         ["classifier", "eval", "--classifier", "{w}/c", "--data", "{corpus}", "--labels", "{labels}"],
         copy("clf", "c", replace_file("config.json", b"{")), None, "config.json"),
    Case("classifier-eval-pickle", "classifier weights as a pickled model.pt",
         ["classifier", "eval", "--classifier", "{w}/c", "--data", "{corpus}", "--labels", "{labels}"],
         copy("clf", "c", pickled_checkpoint("model.pt")), None, "safetensors"),
    # annotate / export / view
    Case("classifier-eval-config-shape", "classifier config.json names another width than its weights",
         ["classifier", "eval", "--classifier", "{w}/c", "--data", "{corpus}", "--labels", "{labels}"],
         copy("clf", "c", edit_json("config.json", _wider_bilm)), None, "does not describe model.safetensors"),
    Case("classifier-eval-threshold-range", "--threshold 3 (not a probability)",
         ["classifier", "eval", "--classifier", "{clf}", "--data", "{corpus}", "--labels", "{labels}",
          "--threshold", "3", "--pr-curve", "{w}/pr.png"], None, "{w}/pr.png", "[0, 1]"),
    Case("classifier-eval-group-by-missing", "--group-by names a field the documents lack",
         ["classifier", "eval", "--classifier", "{clf}", "--data", "{corpus}", "--labels", "{labels}",
          "--group-by", "ward", "--pr-curve", "{w}/pr.png"], None, "{w}/pr.png", "have no 'ward' field"),
    Case("classifier-train-bad-head", "--set head=bogus (no such head)",
         ["classifier", "train", "--data", "{corpus}", "--labels", "{labels}", "--tokenizer", "{tokenizer}",
          "--out", "{w}/clf", "--set", "head=bogus"], None, "{w}/clf", "head = 'bogus'"),
    Case("classifier-train-out-is-file", "--out is an existing file",
         ["classifier", "train", "--data", "{corpus}", "--labels", "{labels}", "--tokenizer", "{tokenizer}",
          "--out", "{w}/f"], write("f", "a file"), None, "is a file"),
    Case("annotate-missing-classifier", "classifier directory does not exist",
         ["annotate", "--classifier", "{w}/nope", "--shards", "{w}/s", "--quiet"], copy("shards", "s"),
         "{w}/s/00000.scores.forget.npy", "nope"),
    Case("annotate-pickled-classifier", "classifier weights as a pickled pytorch_model.bin",
         ["annotate", "--classifier", "{w}/c", "--shards", "{w}/s", "--quiet"],
         lambda w, env: (copy("clf", "c", pickled_checkpoint("pytorch_model.bin"))(w, env), copy("shards", "s")(w, env)),
         "{w}/s/00000.scores.forget.npy", "safetensors"),
    Case("annotate-mismatched-tokenizer", "classifier trained for another tokenizer",
         ["annotate", "--classifier", "{other_clf}", "--shards", "{w}/s", "--quiet"], copy("shards", "s"),
         "{w}/s/00000.scores.forget.npy", "tokenizer"),
    Case("annotate-truncated-weights", "truncated classifier model.safetensors",
         ["annotate", "--classifier", "{w}/c", "--shards", "{w}/s", "--quiet"],
         lambda w, env: (copy("clf", "c", truncate("model.safetensors"))(w, env), copy("shards", "s")(w, env)),
         "{w}/s/00000.scores.forget.npy", "model.safetensors"),
    Case("export-doc-threshold", "--doc-threshold -1 (out of range)",
         ["export", "hf", "--shards", "{scored}", "--mode", "document", "--doc-threshold", "-1", "--out", "{w}/hf",
          "--quiet"], None, "{w}/hf", "doc-threshold"),
    Case("train-doc-threshold-range", "filter.doc_threshold = 2 (out of range)",
         ["train", "--config", "{w}/c.toml", "--out", "{w}/run"],
         toml("c.toml", TOML_MODEL + '[filter]\nmode = "document"\ndoc_threshold = 2.0\n'), "{w}/run", "doc_threshold"),
    Case("annotate-tampered-manifest", "tampered manifest (tokenizer hash)",
         ["annotate", "--classifier", "{clf}", "--shards", "{w}/s", "--quiet"],
         copy("shards", "s", edit_json("manifest.json", _tokenizer_hash)), "{w}/s/00000.scores.forget.npy",
         "tokenizer"),
    Case("annotate-truncated-tokens", "truncated tokens .npy",
         ["annotate", "--classifier", "{clf}", "--shards", "{w}/s", "--quiet"],
         copy("shards", "s", truncate("00000.tokens.npy")), "{w}/s/00000.scores.forget.npy", "00000"),
    Case("export-hf-truncated-shard", "a truncated tokens.npy in the shards being exported",
         ["export", "hf", "--shards", "{w}/s", "--out", "{w}/hf", "--quiet"],
         copy("scored", "s", truncate("00000.tokens.npy")), "{w}/hf", "00000.tokens.npy"),
    Case("export-threshold", "--threshold 1.5 (out of range)",
         ["export", "dolma", "--shards", "{scored}", "--threshold", "1.5", "--out", "{w}/out.jsonl", "--quiet"],
         None, "{w}/out.jsonl", "threshold"),
    Case("export-no-scores", "shards without the named scores",
         ["export", "dolma", "--shards", "{shards}", "--out", "{w}/out.jsonl", "--quiet"], None, "{w}/out.jsonl",
         "forget"),
    # canaries
    Case("canaries-generate-bad-exposures", "--exposures 0 (a fact must be mentioned at least once)",
         ["canaries", "generate", "--out", "{w}/can", "--exposures", "0"], None, "{w}/can", "exposures"),
    Case("canaries-eval-missing-questions", "--questions does not exist",
         ["canaries", "eval", "--model", "{ckpt}", "--questions", "{w}/nope.jsonl"], None, None, "nope.jsonl"),
    Case("view-not-shards", "a directory that holds no shards",
         ["view", "{w}", "--out", "{w}/view.html"], None, "{w}/view.html", "shards"),
    # train
    Case("train-missing-config", "config file does not exist",
         ["train", "--config", "{w}/nope.toml", "--out", "{w}/run"], None, "{w}/run", "nope.toml"),
    Case("train-invalid-toml", "invalid TOML",
         ["train", "--config", "{w}/c.toml", "--out", "{w}/run"], toml("c.toml", "[model\npreset = 1\n"), "{w}/run",
         "c.toml"),
    Case("train-unknown-key", "unknown config key (typo)",
         ["train", "--config", "{w}/c.toml", "--out", "{w}/run"], toml("c.toml", TOML_MODEL + "[filter]\nthreshhold = 0.5\n"),
         "{w}/run", "threshhold"),
    Case("train-unknown-section", "unknown config section",
         ["train", "--config", "{w}/c.toml", "--out", "{w}/run"], toml("c.toml", TOML_MODEL + "[optimiser]\nlr = 1\n"),
         "{w}/run", "optimiser"),
    Case("train-wrong-type", "a string where a number belongs",
         ["train", "--config", "{w}/c.toml", "--out", "{w}/run"], toml("c.toml", TOML_MODEL + "[optim]\nlr = \"fast\"\n"),
         "{w}/run", "lr"),
    Case("train-threshold-range", "filter.threshold = 1.5 (out of range)",
         ["train", "--config", "{w}/c.toml", "--out", "{w}/run"],
         toml("c.toml", TOML_MODEL.replace("{shards}", "{scored}") + '[filter]\nmode = "mask"\nthreshold = 1.5\n'), "{w}/run", "threshold"),
    Case("train-noise-range", "filter.noise = -0.1 (out of range)",
         ["train", "--config", "{w}/c.toml", "--out", "{w}/run"],
         toml("c.toml", TOML_MODEL + '[filter]\nmode = "mask"\nnoise = -0.1\n'), "{w}/run", "noise"),
    Case("train-bad-mode", "filter.mode = 'erase' (unknown)",
         ["train", "--config", "{w}/c.toml", "--out", "{w}/run"], toml("c.toml", TOML_MODEL + '[filter]\nmode = "erase"\n'),
         "{w}/run", "mode"),
    Case("train-bad-set", "--set without '='",
         ["train", "--set", "filter.mode", "--out", "{w}/run"], None, "{w}/run", "filter.mode"),
    Case("train-missing-shards", "data.shards does not exist",
         ["train", "--set", "data.shards={w}/nope", "--out", "{w}/run"], None, "{w}/run", "nope"),
    Case("train-missing-scores", "mask mode on shards without scores",
         ["train", "--config", "{w}/c.toml", "--out", "{w}/run"], toml("c.toml", TOML_MODEL + '[filter]\nmode = "mask"\n'),
         "{w}/run", "forget"),
    Case("train-mismatched-checkpoint", "--out holds a run with another config",
         ["train", "--config", "{w}/c.toml", "--out", "{w}/run"],
         lambda w, env: (toml("c.toml", TOML_MODEL)(w, env), _run_with_other_config(w, env)), None, "config"),
    # eval / slowdown / report
    Case("eval-loss-missing-model", "--model does not exist",
         ["eval", "loss", "--model", "{w}/nope", "--data", "{shards}", "--no-progress"], None, None, "nope"),
    Case("eval-loss-pickled-model", "checkpoint with pytorch_model.bin (pickle) instead of safetensors",
         ["eval", "loss", "--model", "{w}/m", "--data", "{shards}", "--no-progress"],
         copy("ckpt", "m", pickled_checkpoint("pytorch_model.bin")), None, "safetensors"),
    Case("eval-loss-truncated-weights", "truncated model.safetensors",
         ["eval", "loss", "--model", "{w}/m", "--data", "{shards}", "--no-progress"],
         copy("ckpt", "m", truncate("model.safetensors")), None, "model.safetensors"),
    Case("eval-loss-bad-config", "checkpoint config.json is not JSON",
         ["eval", "loss", "--model", "{w}/m", "--data", "{shards}", "--no-progress"],
         copy("ckpt", "m", replace_file("config.json", b"{")), None, "config.json"),
    Case("eval-loss-mismatched-tokenizer", "shards of another tokenizer than the model's",
         ["eval", "loss", "--model", "{w}/m", "--data", "{w}/s", "--no-progress"],
         lambda w, env: (copy("ckpt", "m")(w, env), _other_tokenizer_shards(w, env)), None, "tokenizer"),
    Case("eval-mcq-no-questions", "MCQ JSONL whose every line is malformed",
         ["eval", "mcq", "--model", "{ckpt}", "--data", "{w}/q.jsonl", "--format", "jsonl", "--no-progress",
          "--out", "{w}/mcq.json"], write("q.jsonl", '{"question": "q?", "choices": ["a", "b"]\n{"question": '),
         "{w}/mcq.json", "q.jsonl"),
    Case("eval-mcq-missing-data", "MCQ file does not exist",
         ["eval", "mcq", "--model", "{ckpt}", "--data", "{w}/nope.jsonl", "--format", "jsonl", "--no-progress"],
         None, None, "nope.jsonl"),
    Case("eval-probes-missing-data", "--shared-data directory does not exist",
         ["eval", "probes", "build", "--out", "{w}/probes", "--shared-data", "{w}/nope"], None, "{w}/probes",
         "nope"),
    Case("eval-lmeval-missing-model", "--model does not exist",
         ["eval", "lmeval", "--model", "{w}/nope", "--tasks", "arc_easy", "--no-progress"], None, None, "nope"),
    Case("slowdown-no-runs", "run directories without summary.json",
         ["slowdown", "--runs", "{w}"], None, None, "summary"),
    Case("slowdown-malformed-summary", "summary.json is not JSON",
         ["slowdown", "--runs", "{w}/r"], write("r/summary.json", "{"), None, "summary.json"),
    Case("report-missing-results", "directory without results.json",
         ["report", "{w}"], None, "{w}/report.html", "results.json"),
    Case("report-malformed-results", "results.json is not JSON",
         ["report", "{w}"], write("results.json", '{"runs": ['), "{w}/report.html", "results.json"),
    # robustness
    Case("attack-pickled-model", "checkpoint with model.pt (pickle)",
         ["attack", "finetune", "--model", "{w}/m", "--data", "{corpus}", "--eval", "{corpus}", "--no-progress",
          "--json-out", "{w}/out.json"], copy("ckpt", "m", pickled_checkpoint("model.pt")), "{w}/out.json",
         "safetensors"),
    Case("unlearn-missing-model", "--model does not exist",
         ["unlearn", "rmu", "--model", "{w}/nope", "--forget", "{corpus}", "--retain", "{corpus}", "--out", "{w}/u",
          "--no-progress"], None, "{w}/u", "nope"),
    Case("unlearn-out-is-a-user-file", "--out is an existing file of the user's",
         ["unlearn", "rmu", "--model", "{ckpt}", "--forget", "{corpus}", "--retain", "{corpus}", "--out",
          "{w}/notes.txt", "--no-progress"], write("notes.txt", "mine"), None, "is a file"),
    Case("unlearn-out-is-a-user-folder", "--out is a folder holding other files",
         ["unlearn", "rmu", "--model", "{ckpt}", "--forget", "{corpus}", "--retain", "{corpus}", "--out", "{w}",
          "--no-progress"], write("notes.txt", "mine"), None, "not a checkpoint"),
    Case("align-missing-model", "--model does not exist",
         ["align", "refusal", "--model", "{w}/nope", "--out", "{w}/a", "--no-progress"], None, "{w}/a", "nope"),
    Case("generate-missing-qa", "--qa file does not exist",
         ["generate", "--model", "{ckpt}", "--qa", "{w}/nope.jsonl", "--no-progress", "--json-out", "{w}/g.json"],
         None, "{w}/g.json", "nope.jsonl"),
    # run / demo
    Case("run-missing-experiment", "experiment file does not exist",
         ["run", "{w}/nope.toml", "--out", "{w}/out"], None, "{w}/out/results.json", "nope.toml"),
    Case("run-invalid-toml", "invalid TOML",
         ["run", "{w}/e.toml", "--out", "{w}/out"], toml("e.toml", 'name = "x"\n[corpus\n'), "{w}/out/results.json",
         "e.toml"),
    Case("run-unknown-key", "unknown experiment key",
         ["run", "{w}/e.toml", "--out", "{w}/out"], toml("e.toml", 'name = "x"\nbogus_key = 1\n'),
         "{w}/out/results.json", "bogus_key"),
    Case("demo-out-is-file", "--out is an existing file",
         ["demo", "--quick", "--out", "{w}/f"], write("f", "not a directory"), None, "f"),
]


def _run_with_other_config(w: Path, env: dict) -> None:
    """A finished-looking run directory whose checkpoint was trained with another config."""
    import torch

    from tokfilter.model import GPT, GPTConfig
    from tokfilter.train.checkpoint import save_checkpoint
    from tokfilter.train.config import TrainConfig

    other = TrainConfig()
    other.data.shards = env["shards"]
    other.optim.lr = 0.5
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=16, n_layer=1, n_head=2, d_model=16, seq_len=32))
    save_checkpoint(w / "run" / "checkpoint", model, other.to_dict(),
                    train_state={"step": 1, "effective_tokens": 1, "train_tokens": 1, "done": False, "data": {}})


def _other_tokenizer_shards(w: Path, env: dict) -> None:
    from tokfilter.corpus import read_corpus
    from tokfilter.shards import write_shards
    from tokfilter.tokenizer import load_tokenizer

    write_shards(read_corpus([env["corpus"]]), load_tokenizer(env["other_tokenizer"]), w / "s", progress=False)


def normalize(message: str, work: Path, env: dict) -> str:
    """The message with the temporary paths replaced by WORK / ENV (stable across runs), and no '|' (table)."""
    text = message.replace(str(work), WORK).replace(env["root"], ENV).replace(env["tokenizer"], "DEMO_TOKENIZER")
    return text.replace("|", "/")


def run_case(case: Case, work: Path, env: dict) -> tuple[int, str, str, str | None]:
    """Run one case in this process: (exit code, stdout, stderr, traceback text or None)."""
    import contextlib
    import io
    import traceback

    from tokfilter.cli import main

    work.mkdir(parents=True, exist_ok=True)
    if case.setup is not None:
        case.setup(work, env)
    out, err = io.StringIO(), io.StringIO()
    trace = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(case.args(work, env))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception:
            trace = traceback.format_exc()
            code = -1
    return code, out.getvalue(), err.getvalue(), trace
