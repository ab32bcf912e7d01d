"""`tokfilter label sae` end to end on a tiny random Llama: train, save, reload, reuse a selection; bad input."""

from __future__ import annotations

import argparse
import json

import pytest

from tokfilter.cli import main
from tokfilter.errors import UserError
from tokfilter.labels.sae.cli import add_sae_parser
from tokfilter.labels.spans import load_labels


def test_cli_label_sae_trains_saves_and_reloads(tiny_model, demo_texts, tmp_path):
    def write(name, texts):
        path = tmp_path / name
        path.write_text("".join(json.dumps({"id": f"{name}-{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
        return str(path)

    forget, other = write("forget.jsonl", demo_texts["forget"][:25]), write("other.jsonl", demo_texts["other"][:25])
    corpus = write("corpus.jsonl", [d.text for d in demo_texts["label"]])
    parser = argparse.ArgumentParser()
    add_sae_parser(parser.add_subparsers())
    common = [corpus, "--model", str(tiny_model), "--reference-forget", forget, "--reference-other", other,
              "-z", "1", "--min-specificity", "0.5", "--max-latents", "16", "--max-tokens", "64"]
    args = parser.parse_args(["sae", *common, "--layer", "2", "--train-sae", "--sae-width", "64", "--sae-topk", "6",
                              "--sae-steps", "100", "--sae-out", str(tmp_path / "sae"),
                              "--selection-out", str(tmp_path / "sel.json"), "--out", str(tmp_path / "a.jsonl")])
    assert args.func(args) == 0
    first = load_labels(tmp_path / "a.jsonl")
    assert len(first) == len(demo_texts["label"])
    selection = json.loads((tmp_path / "sel.json").read_text())
    assert selection["k"] == 2 and selection["latents"]
    assert all(row["specificity"] >= 0.5 for row in selection["latents"])
    # reload the saved SAE: the layer comes from its cfg, and the labels are identical
    args = parser.parse_args(["sae", *common, "--sae", str(tmp_path / "sae"), "--out", str(tmp_path / "b.jsonl")])
    assert args.func(args) == 0
    assert load_labels(tmp_path / "b.jsonl") == first
    # reuse the saved selection: no reference text is read, and the labels are still identical
    reuse = [corpus, "--model", str(tiny_model), "--sae", str(tmp_path / "sae"), "--selection",
             str(tmp_path / "sel.json"), "-z", "1", "--max-tokens", "64"]
    args = parser.parse_args(["sae", *reuse, "--out", str(tmp_path / "d.jsonl")])
    assert args.func(args) == 0
    assert load_labels(tmp_path / "d.jsonl") == first
    args = parser.parse_args(["sae", *reuse, "--layer", "1", "--out", str(tmp_path / "e.jsonl")])
    with pytest.raises(UserError, match="made for layer 2"):
        args.func(args)
    bad = parser.parse_args(["sae", *common, "--layer", "3", "--train-sae", "--out", str(tmp_path / "c.jsonl")])
    with pytest.raises(UserError, match="layers 1..2"):
        bad.func(bad)
    assert not (tmp_path / "c.jsonl").exists()
    missing = parser.parse_args(["sae", corpus, "--model", str(tmp_path / "none"), "--layer", "1", "--train-sae",
                                 "--reference-forget", forget, "--reference-other", other, "--out", "x.jsonl"])
    with pytest.raises(UserError, match="no such local model"):
        missing.func(missing)


def test_top_level_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": "The patient had a fever."}) + "\n")
    base = ["label", "sae", str(corpus), "--out", str(tmp_path / "out.jsonl")]
    assert main([*base, "--model", str(tmp_path / "missing"), "--layer", "1", "--train-sae",
                 "--reference-forget", str(corpus), "--reference-other", str(corpus)]) == 2
    assert "no such local model" in capsys.readouterr().err
    assert main([*base, "--model", str(tmp_path), "--layer", "1", "--sae", str(tmp_path / "nosae")]) == 2
    assert "not an SAE directory" in capsys.readouterr().err
    assert main([*base, "--model", str(tmp_path), "--layer", "1", "--train-sae", "-k", "0",
                 "--reference-forget", str(corpus), "--reference-other", str(corpus)]) == 2
    assert "-k must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()
