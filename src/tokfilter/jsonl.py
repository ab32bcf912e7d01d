"""JSON Lines reading: the one line loop every reader of records uses (corpora, labels, canary questions, chat data).

Why one loop: each reader used to carry its own copy, with its own idea of blank lines, line numbers and error text.
Here a blank line is skipped, lines count from 1, and a line that is not UTF-8 or not JSON is a one-line UserError
naming the file and line (`PATH:LINE: malformed JSON (...)`), so bad input reads alike whichever command met it.
Opening the file (gzip, zstd, plain) stays with the caller; this only reads its lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tokfilter.errors import UserError


def json_lines(lines: Iterable[str | bytes], path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for every non-blank line of `lines` (text, or bytes decoded as UTF-8 here so that
    a bad byte is reported with its line)."""
    for line_no, line in enumerate(lines, 1):  # the file:line text is built only for an error (a hot loop)
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as err:
                raise UserError(f"{path}:{line_no}: invalid UTF-8 ({err.reason} at byte {err.start})") from None
        if not line.strip():
            continue
        try:
            value = json.loads(line.rstrip("\r\n"))  # so a line cut short reports its own last column
        except json.JSONDecodeError as err:
            message = err.msg.removesuffix(" at")  # "Unterminated string starting at" + " at column N"
            raise UserError(f"{path}:{line_no}: malformed JSON ({message} at column {err.colno})") from None
        yield line_no, value
