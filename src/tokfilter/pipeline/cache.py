"""Cached pipeline stages: each stage's output is keyed by a hash of its config and of its inputs' keys.

A stage is a function that writes its outputs under the run directory and returns a JSON-able result. `Stages.run`
hashes (stage name, the stage's config, the keys of the stages it reads, the tokfilter version); when
`.stages/NAME.json` holds the same key, the stage is skipped and its recorded result reused, so rerunning an
unchanged experiment costs seconds, and changing one setting recomputes only what depends on it. The marker is
written atomically after the stage's outputs, so a killed stage reruns rather than looking finished.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tokfilter import __version__
from tokfilter.atomic import write_json


def stable_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Stages:
    """Runs named stages in order with caching and a progress line (stage i/n, elapsed, ETA)."""

    def __init__(self, out_dir: Path, planned: list[str], estimates: dict[str, float] | None = None,
                 force: bool = False, log: Callable[[str], None] | None = None):
        self.out_dir = Path(out_dir)
        self.marker_dir = self.out_dir / ".stages"
        self.planned = planned
        self.estimates = estimates or {}
        self.force = force
        self.keys: dict[str, str] = {}
        self.results: dict[str, Any] = {}
        self.timings: dict[str, float] = {}
        self.cached: list[str] = []
        self.started = time.time()
        self.log = log or (lambda message: print(message, file=sys.stderr, flush=True))

    def _eta(self, name: str) -> str:
        remaining = self.planned[self.planned.index(name):] if name in self.planned else [name]
        estimate = sum(self.estimates.get(stage, 0.0) for stage in remaining)
        return f", ETA ~{estimate / 60:.1f} min" if estimate else ""

    def run(self, name: str, config: Any, needs: list[str], fn: Callable[[], Any]) -> Any:
        key = stable_hash({"stage": name, "config": config, "needs": {n: self.keys[n] for n in needs},
                           "version": __version__})
        marker = self.marker_dir / f"{name}.json"
        position = f"[{self.planned.index(name) + 1}/{len(self.planned)}]" if name in self.planned else "[+]"
        if not self.force and marker.is_file():
            recorded = json.loads(marker.read_text())
            if recorded.get("key") == key:
                self.keys[name] = key
                self.results[name] = recorded["result"]
                self.timings[name] = 0.0
                self.cached.append(name)
                self.log(f"{position} {name}: cached")
                return recorded["result"]
        elapsed = time.time() - self.started
        self.log(f"{position} {name} (elapsed {elapsed:.0f} s{self._eta(name)})")
        start = time.time()
        result = fn()
        seconds = time.time() - start
        write_json(marker, {"key": key, "seconds": round(seconds, 2), "result": result})
        self.keys[name] = key
        self.results[name] = result
        self.timings[name] = round(seconds, 2)
        self.estimates[name] = 0.0
        self.log(f"{position} {name}: done in {seconds:.1f} s")
        return result
