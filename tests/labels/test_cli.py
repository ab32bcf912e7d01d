"""`tokfilter label ...` and `tokfilter labels eval` end to end on small files (no shared data needed)."""

from __future__ import annotations

import json

from tokfilter.cli import main
from tokfilter.labels.spans import load_labels


def write_corpus(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_label_commands_write_spans(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "c.jsonl", [
        {"id": "m", "text": "Fever and cough. Rest at home.", "domain": "forget"},
        {"id": "g", "text": "The match ended in a draw.", "domain": "general"},
    ])
    terms = tmp_path / "terms.txt"
    terms.write_text("fever\ncough\n")
    out = tmp_path / "lex.jsonl"
    assert main(["label", "lexicon", str(corpus), "--out", str(out), "--lexicon", str(terms),
                 "--exclude", "none"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["documents"] == 2 and summary["labelled_documents"] == 1
    assert load_labels(out) == {"m": [(0, 5, 1.0), (10, 15, 1.0)], "g": []}
    assert main(["label", "sentence", str(corpus), "--out", str(out), "--lexicon", str(terms),
                 "--exclude", "none", "--window", "0", "--threshold", "0.5"]) == 0
    assert load_labels(out) == {"m": [(0, 16, 1.0)], "g": []}
    assert main(["label", "document", str(corpus), "--out", str(out)]) == 0
    assert load_labels(out) == {"m": [(0, 30, 1.0)], "g": []}


def test_label_errors_exit_2_and_leave_nothing(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "c.jsonl", [{"id": "a", "text": "x"}])
    out = tmp_path / "out.jsonl"
    assert main(["label", "lexicon", str(corpus), "--out", str(out), "--lexicon", str(tmp_path / "nope.txt")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["label", "sentence", str(corpus), "--out", str(out), "--threshold", "2"]) == 2
    for labeler in ("lexicon", "sentence", "document"):
        assert main(["label", labeler, str(corpus), "--out", str(out), "--lexicon-dir", str(tmp_path / "nodir")]) == 2
        assert "--lexicon-dir" in capsys.readouterr().err
    dup = write_corpus(tmp_path / "d.jsonl", [{"id": "a", "text": "x y"}, {"id": "a", "text": "z"}])
    assert main(["label", "document", str(dup), "--out", str(out)]) == 2
    assert "twice" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))


def test_labels_eval_scores_a_label_file(tmp_path, capsys):
    bench = tmp_path / "bench"
    assert main(["labels", "benchmark", "--out", str(bench), "--seed", "0"]) == 0
    capsys.readouterr()
    labels = tmp_path / "doc.jsonl"
    assert main(["label", "document", str(bench / "valid.jsonl.gz"), "--out", str(labels)]) == 0
    capsys.readouterr()
    assert main(["labels", "eval", str(labels), "--benchmark", str(bench), "--split", "valid"]) == 0
    result = json.loads(capsys.readouterr().out)
    # provenance labels are exact on untouched forget documents and miss every spliced passage
    assert result["token"]["precision"] == 1.0 and 0.5 < result["token"]["recall"] < 1.0
    wrong = tmp_path / "other.jsonl"
    wrong.write_text(json.dumps({"id": "not-a-doc", "spans": []}) + "\n")
    assert main(["labels", "eval", str(wrong), "--benchmark", str(bench)]) == 2
    capsys.readouterr()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["labels", "eval", str(empty), "--benchmark", str(bench)]) == 2
    assert "holds no labels" in capsys.readouterr().err
    assert main(["labels", "eval", str(tmp_path), "--benchmark", str(bench)]) == 2
    assert "is a directory" in capsys.readouterr().err
    for threshold in ("7", "-1"):
        assert main(["labels", "eval", str(labels), "--benchmark", str(bench), "--threshold", threshold]) == 2
        assert "--threshold must be in [0, 1]" in capsys.readouterr().err
