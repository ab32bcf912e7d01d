"""Fixtures of the pipeline tests: the micro experiment (every stage on a few dozen embedded documents, seconds).

`micro_experiment(name, extra="")` returns its TOML text; `extra` lines go after `seed` (e.g. "seeds = [0, 1]").
"""

from __future__ import annotations

import pytest

MICRO = """
name = "{name}"
seed = 0
{extra}

[data]
docs_per_domain = 50  # the label part (half) keeps >= MIN_TRAIN_DOCS documents with forget text
heldout_docs_per_domain = 12
eval_docs_per_domain = 8

[classifier]
budget = "quick"
baselines = ["windowed"]

[classifier.settings]
pretrain_steps = 4
finetune_steps = 4
d_model = 32
n_head = 2
batch_size = 8

[pretrain]
sizes = ["tiny-0.1m"]
baseline_sizes = ["tiny-0.2m"]
thresholds = [0.5]
doc_thresholds = [0.1]
scores = "truth"  # filter on the exact labels: the micro classifier is too small to matter

[pretrain.train]
"budget.tokens" = 6000
"data.batch_size" = 8
"model.seq_len" = 64
"eval.max_tokens" = 2048

[eval]
mcq_limit = 8

[robustness]
lrs = [0.003]
max_tokens = 1024
rmu_steps = 2

[refusal]
n_train = 6
n_eval = 3
steps = 2
"""


@pytest.fixture(scope="session")
def micro_experiment():
    def make(name: str = "micro", extra: str = "") -> str:
        return MICRO.replace("{name}", name).replace("{extra}", extra)

    return make
