"""tokfilter.jsonl: the shared JSON Lines loop, and the readers that use it reporting bad lines alike."""

from __future__ import annotations

import gzip

import pytest

from tokfilter.canaries.names import corpus_words
from tokfilter.canaries.questions import read_questions
from tokfilter.errors import UserError
from tokfilter.jsonl import json_lines
from tokfilter.labels.spans import read_labels
from tokfilter.posthoc.chat import read_chat_file


def test_json_lines_skips_blank_lines_and_counts_from_one():
    lines = ['{"a": 1}\n', "\n", "   \n", '[2, 3]\n', b'{"b": "\xc3\xa9"}\n']
    assert list(json_lines(lines, "f.jsonl")) == [(1, {"a": 1}), (4, [2, 3]), (5, {"b": "é"})]


@pytest.mark.parametrize(("line", "message"), [
    ('{"a": \n', r"^f\.jsonl:2: malformed JSON \(Expecting value at column 7\)$"),
    (b'{"a": "caf\xe9"}\n', r"^f\.jsonl:2: invalid UTF-8 \(invalid continuation byte at byte 10\)$"),
])
def test_json_lines_names_the_file_and_line_of_a_bad_line(line, message):
    first = b'{"ok": 1}\n' if isinstance(line, bytes) else '{"ok": 1}\n'
    records = json_lines([first, line, first], "f.jsonl")
    assert next(records) == (1, {"ok": 1})
    with pytest.raises(UserError, match=message):
        next(records)


def test_readers_report_a_malformed_line_the_same_way(tmp_path):
    """Labels (plain and gzip), canary questions, chat data and the canary name check's corpus words all name the file
    and the line of a malformed record."""
    for name, reader in (("l.jsonl", read_labels), ("q.jsonl", read_questions), ("c.jsonl", read_chat_file),
                         ("w.jsonl", lambda path: corpus_words([path]))):
        path = tmp_path / name
        path.write_text('\n  \n{"id": "d2", "spans": [\n', encoding="utf-8")
        with pytest.raises(UserError, match=rf"{name}:3: malformed JSON \(Expecting value at column 24\)"):
            list(reader(path))
    gz = tmp_path / "l.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as fh:
        fh.write('{"id": "d1", "spans": [[0, 3, 1.0]]}\n\xe9t\xe9\n')
    with pytest.raises(UserError, match=r"l\.jsonl\.gz:2: malformed JSON"):
        list(read_labels(gz))
