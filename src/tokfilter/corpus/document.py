"""The `Document` record every corpus reader yields and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Document:
    """One document: an id, its text, an optional domain tag (provenance) and any other metadata.

    `id_assigned` is True when the source record had no id and the reader made one up from its position
    (`<source>:<line>`); such an id changes when the corpus is reordered, so split assignment hashes the text instead.
    """

    id: str
    text: str
    domain: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    id_assigned: bool = field(default=False, compare=False, repr=False)
