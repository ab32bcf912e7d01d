"""The `Document` record every corpus reader yields and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Document:
    """One document: an id, its text, an optional domain tag (provenance) and any other metadata."""

    id: str
    text: str
    domain: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
