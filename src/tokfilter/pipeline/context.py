"""What every pipeline step reads: the experiment, the output directory and the results of the steps before it."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from tokfilter.jsonl import json_lines
from tokfilter.pipeline.cache import Stages
from tokfilter.pipeline.experiment import Experiment
from tokfilter.tokenizer import Tokenizer, load_tokenizer


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Context:
    exp: Experiment
    out: Path
    stages: Stages
    # documents the plan already read, split and spliced ({"report", "parts", "benchmark"}): the corpus step uses
    # them instead of reading the corpus a second time
    prepared: dict = field(default_factory=dict)

    def result(self, step: str):
        """The recorded result of an earlier step (run or cached)."""
        return self.stages.results[step]

    def tokenizer(self) -> Tokenizer:
        return load_tokenizer(self.result("tokenizer")["spec"])

    def held_out_texts(self, domain: str) -> list[str]:
        """Clean held-out (test split) texts of one domain: what the domain losses and the attack measure."""
        path = self.out / "benchmark" / "eval-clean.jsonl"
        with path.open(encoding="utf-8") as fh:
            return [r["text"] for _, r in json_lines(fh, path) if r["domain"] == domain]

    def run_dir(self, name: str) -> Path:
        return self.out / "runs" / name

    def seeds(self) -> list[int]:
        """The pretraining seeds (Experiment.seed_list)."""
        return self.exp.seed_list()

    def main_runs(self, runs: list[dict], seed: int | None = None) -> dict[str, dict]:
        """The largest size's run of each mode at the first threshold: the models the attacks compare. With `seed`,
        only that seed's runs (each seed's models are attacked and refusal-trained on their own); with one seed
        every run is that seed's (records cached before runs carried `seed` included)."""
        size = self.exp.pretrain.sizes[-1]
        several = len(self.seeds()) > 1
        chosen: dict[str, dict] = {}
        for run in runs:
            if several and seed is not None and run.get("seed") != seed:
                continue
            if run.get("size", size) == size and run["mode"] not in chosen:
                chosen[run["mode"]] = run
        return chosen
